"""Run scoring and describing on Ray Data: sources in, a resumable Parquet folder out.

The driver (this process) lists the inputs, skips those the output already holds, checks
the cluster can run the actors it plans, and streams the finished blocks into the output
folder one atomic file each (:class:`~realness.distributed.output.ParquetOutput`). The
actors (:mod:`realness.distributed.batches`) do the decoding and the model work.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from realness.describers.cache import DescriptionCache
from realness.describers.factory import build_describer
from realness.distributed.batches import (
    DescribeBatches,
    PixelHashBatches,
    RequestSlots,
    ScoreBatches,
    describe_rows_from_texts,
    weights_version,
)
from realness.distributed.output import ParquetOutput
from realness.distributed.schema import description_schema, rows_to_table, score_schema
from realness.errors import MissingDependencyError, RealnessError
from realness.io.files import expand_image_paths
from realness.runtime.device import check_batch_size, check_precision
from realness.text.descriptions import resolve_descriptions

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)

#: Seconds a stage may go without moving a block before the run fails naming it. Model
#: loading in new actors counts as no progress, so this is generous.
DEFAULT_STALL_TIMEOUT_S = 600.0
#: Environment variables handed to every worker (``runtime_env``): on a cluster a worker
#: sees none of the driver's environment otherwise.
FORWARDED_ENV_PREFIXES = ("HF_", "REALNESS_", "OPENAI_", "TRANSFORMERS_", "TORCH_HOME")
#: Manifest files (a table with a path column) by suffix.
MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")
#: Path column names looked for in a manifest, in order.
PATH_COLUMN_ALIASES = ("path", "file", "filename", "file_name", "image", "image_path", "uri")

Source = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], Any]


def require_ray():
    """Import ray (and Ray Data), or fail in one line naming the extra to install.

    Raises:
        MissingDependencyError: ray is not installed.
    """
    try:  # optional: the ray extra
        import ray
        import ray.data  # noqa: F401  (the part this engine uses; missing in a bare "ray" install)
    except ImportError as error:
        raise MissingDependencyError("ray[data]", "ray", "the ray engine (scaling out)") from error
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:10001``), or start a local one.

    Does nothing when this process is already connected (e.g. after your own ``ray.init``).
    Environment variables whose names start with :data:`FORWARDED_ENV_PREFIXES` reach
    the workers through ``runtime_env``.
    """
    ray = require_ray()
    if ray.is_initialized():
        return
    forwarded = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENV_PREFIXES)}
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            runtime_env={"env_vars": forwarded} if forwarded else None,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RealnessError(f"--ray-address {address}: cannot connect ({error})") from error


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a stage runs and what each holds.

    Attributes:
        actors: actors in the pool.
        cpus_per_actor: Ray ``num_cpus`` of each (fractions allowed).
        gpus_per_actor: Ray ``num_gpus`` of each (0 on a CPU cluster).
        threads: torch threads per actor (the whole CPUs it holds, at least 1).
    """

    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    threads: int


def plan_actors(
    stage: str,
    *,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
    resources: Mapping[str, float] | None = None,
    light: bool = False,
) -> ActorPlan:
    """Choose (or check) the actor pool of a stage against the cluster's resources, before starting.

    One whole CPU is always left free: Ray Data needs it to read and hand out blocks, and
    when actors hold every CPU the pipeline hangs without an error.

    Args:
        stage: the stage's name, for messages (``score``, ``describe``).
        actors: pool size (default: one per GPU, else one per spare CPU; 2 for light stages).
        cpus_per_actor: CPUs each actor holds (default: the spare CPUs shared out, at most 1
            for light stages, whole CPUs where they go round).
        gpus_per_actor: GPUs each actor holds (default: 1 when the cluster has GPUs and the
            stage is not light, else 0).
        resources: the cluster's resources (default: ``ray.cluster_resources()``).
        light: a stage of cheap actors waiting on the network (describing).

    Returns:
        The :class:`ActorPlan`.

    Raises:
        RealnessError: the cluster cannot hold that pool with one CPU to spare.
    """
    if resources is None:
        resources = require_ray().cluster_resources()
    total_cpus = float(resources.get("CPU", 0))
    total_gpus = float(resources.get("GPU", 0))
    spare = total_cpus - 1
    if actors is not None and actors < 1:
        raise RealnessError(f"--actors: must be at least 1, not {actors}")
    if spare <= 0:
        raise RealnessError(
            f"the {stage} stage needs a Ray cluster with at least 2 CPUs (one stays free for reading); "
            f"this one has {total_cpus:g}"
        )
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if total_gpus >= 1 and not light else 0.0
    if actors is None:
        if gpus_per_actor:
            actors = max(1, int(total_gpus // gpus_per_actor))
        elif light:
            actors = 2
        else:
            actors = max(1, int(spare // (cpus_per_actor or 1)))
    if cpus_per_actor is None:
        share = spare / actors
        cpus_per_actor = min(share, 1.0) if light else (float(math.floor(share)) if share >= 1 else share)
    needed_cpus = actors * cpus_per_actor + 1
    if needed_cpus > total_cpus + 1e-9:
        raise RealnessError(
            f"the {stage} stage needs {actors} actors x {cpus_per_actor:g} CPUs + 1 CPU left free = "
            f"{needed_cpus:g} CPUs, but the Ray cluster has {total_cpus:g}: lower --actors or --cpus-per-actor "
            "(with no CPU free, Ray Data hangs instead of failing)"
        )
    if actors * gpus_per_actor > total_gpus + 1e-9:
        raise RealnessError(
            f"the {stage} stage needs {actors} actors x {gpus_per_actor:g} GPUs, but the Ray cluster has "
            f"{total_gpus:g}: lower --actors"
        )
    return ActorPlan(actors, cpus_per_actor, gpus_per_actor, max(1, int(cpus_per_actor)))


# --- sources ------------------------------------------------------------------------------


def _is_ray_dataset(source: Any) -> bool:
    return type(source).__module__.startswith("ray.data") and hasattr(source, "map_batches")


def list_source_paths(source: Source, *, path_column: str | None = None) -> list[str]:
    """The image paths of a folder (recursive), a manifest CSV/Parquet, one file, or a list of them.

    A manifest's relative paths start from the manifest's folder; URIs (``s3://...``) are
    kept as they are and read by the workers through ``pyarrow.fs``.

    Raises:
        RealnessError: a manifest without a path column, or a source that does not exist.
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.lower().endswith(MANIFEST_SUFFIXES) and (Path(text).is_file() or "://" in text):
            return _manifest_paths(text, path_column)
        if not Path(text).exists() and "://" not in text and not any(c in text for c in "*?["):
            raise RealnessError(f"{text}: no such file or folder")
        return [str(path) for path in expand_image_paths([text])]
    return [str(path) for path in expand_image_paths([os.fspath(item) for item in source])]


def _manifest_paths(manifest: str, path_column: str | None) -> list[str]:
    # optional: pyarrow comes with the ray extra (as ray itself, below: require_ray, _rows_dataset, ...)
    import pyarrow.csv
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(manifest) if not manifest.lower().endswith(".csv") else pyarrow.csv.read_csv(manifest)
    except Exception as error:  # pyarrow: ArrowInvalid, OSError...
        raise RealnessError(f"{manifest}: cannot read the manifest ({type(error).__name__}: {error})") from error
    by_lower = {name.lower(): name for name in table.column_names}
    aliases = (path_column,) if path_column else PATH_COLUMN_ALIASES
    column = next((by_lower[a.lower()] for a in aliases if a.lower() in by_lower), None)
    if column is None:
        raise RealnessError(
            f"{manifest}: no path column (looked for {', '.join(aliases)}); found: {', '.join(table.column_names)}"
        )
    root = Path(manifest).parent if "://" not in manifest else None
    paths = []
    for value in table.column(column).to_pylist():
        if value is None or not str(value).strip():
            continue
        value = str(value).strip()
        relative = root is not None and "://" not in value and not os.path.isabs(value)
        paths.append(str(root / value) if relative else value)
    return paths


def _description_texts(descriptions: Any, paths: Sequence[str], roots: Sequence[str]) -> list[str | None]:
    """One description (or None) per path from a CSV, a mapping, a table or a describe output folder."""
    if descriptions is None:
        return [None] * len(paths)
    if isinstance(descriptions, (str, os.PathLike)) and Path(descriptions).is_dir():
        described = ParquetOutput(descriptions, description_schema()).read().to_pydict()
        descriptions = {p: t for p, t in zip(described["path"], described["description"]) if t is not None}
    elif isinstance(descriptions, str):
        descriptions = Path(descriptions)  # here a string names a table: there is no one-image text to give
    resolved = resolve_descriptions(descriptions, paths, roots=roots)
    if resolved.match is not None:
        resolved.match.warn()
    return resolved.texts


# --- running ------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What one run did (the CLI prints it).

    Attributes:
        stage: ``score`` or ``describe``.
        out: the output folder.
        written: rows written this run.
        failed: of those, rows with an error.
        already_done: inputs skipped because the output held them.
        set_aside: files moved aside as unreadable (their rows were redone).
        cached: (describe) rows answered without a request: from earlier runs, the sqlite
            cache, or a copy of an image described this run.
        seconds: wall time of the run, Ray start-up included.
        startup_seconds: time to connect to or start Ray.
    """

    stage: str
    out: str
    written: int = 0
    failed: int = 0
    already_done: int = 0
    set_aside: list = field(default_factory=list)
    cached: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        """Rows written per second of the run after Ray start-up."""
        busy = self.seconds - self.startup_seconds
        return self.written / busy if busy > 0 else 0.0

    def __str__(self) -> str:
        verb = "scored" if self.stage == "score" else "described"
        done = self.written - self.failed
        extra = f" ({self.cached} without a request)" if self.cached else ""
        aside = f", {len(self.set_aside)} damaged files set aside and redone" if self.set_aside else ""
        return (
            f"{done} {verb}{extra}, {self.failed} failed, {self.already_done} already in {self.out}{aside}; "
            f"{self.images_per_second:.2f} images/s ({self.seconds:.1f} s, Ray start-up {self.startup_seconds:.1f} s)"
        )


def _configured(dataset, stall_timeout: float | None, progress: bool):
    """``dataset`` with this run's stall limit and progress bars, set on its own context (not Ray's global one)."""
    if stall_timeout is None:
        # An explicit RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S wins; Ray's own default is 30 minutes.
        stall_timeout = float(os.environ.get("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", DEFAULT_STALL_TIMEOUT_S))
    dataset.context.execution_no_progress_timeout_s = stall_timeout
    dataset.context.enable_progress_bars = progress
    return dataset


def _stream_into(dataset, output, stage: str, summary: RunSummary, on_table=None) -> None:
    """Pull the finished blocks of ``dataset`` and write each as one atomic file."""
    with _naming_stalls(stage):
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            if table.num_rows == 0:
                continue
            if on_table is not None:
                table = on_table(table)
            output.write(table)
            succeeded = table.column("error").null_count
            summary.written += table.num_rows
            summary.failed += table.num_rows - succeeded


@contextlib.contextmanager
def _naming_stalls(stage: str) -> Iterator[None]:
    """Turn Ray Data's no-progress error into a one-line :class:`RealnessError` naming ``stage``."""
    try:
        yield
    except Exception as error:
        message = str(error)
        if "made no progress" not in message:
            raise
        first = next(line for line in message.splitlines() if "made no progress" in line).strip()
        raise RealnessError(
            f"the {stage} stage stalled: {first} (the stages still running are in the log above; raise "
            "the limit with RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S)"
        ) from error


def _rows_dataset(rows: list[dict], batch_size: int):
    import ray.data  # optional: the ray extra (require_ray has already named it when missing)

    # About one batch per block: a single block would leave every actor but one idle.
    blocks = max(1, math.ceil(len(rows) / batch_size))
    return ray.data.from_items(rows, override_num_blocks=blocks)


def _keep_undone(dataset, path_column: str, done: set, batch_size: int):
    if done:
        from ray.data.expressions import col  # optional: the ray extra

        dataset = dataset.filter(expr=col(path_column).not_in(sorted(done)))
    return dataset.repartition(target_num_rows_per_block=batch_size)


def score_dataset(
    source: Source,
    *,
    model: str | os.PathLike[str] = "realness-core-lite",
    descriptions: Any = None,
    out: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
    device: str | None = None,
    precision: str = "auto",
    address: str | None = None,
    path_column: str | None = None,
    bytes_column: str | None = None,
    retry_failed: bool = False,
    stall_timeout: float | None = None,
    progress: bool = True,
) -> RunSummary | ray.data.Dataset:
    """Score images on Ray Data with one CORE model per actor.

    Args:
        source: a folder (recursive), a manifest CSV/Parquet with a path column, an image
            path or a list of them, or a Ray ``Dataset`` with a path column (and optionally
            an encoded-bytes column and a ``description`` column).
        model: bundled model name, local directory or Hub id (every worker must reach it).
        descriptions: for path sources: a descriptions CSV, a ``{path: text}`` mapping, or
            the output folder of :func:`describe_dataset`. Ray Datasets carry a
            ``description`` column instead.
        out: the output folder of Parquet files; None returns the lazy Ray ``Dataset``
            (with :func:`~realness.distributed.schema.score_schema`) for you to consume.
        batch_size: images per forward pass (and rows per block).
        actors: scorer actors (default: one per GPU, else one per spare CPU).
        cpus_per_actor: CPUs per actor (torch threads follow it).
        gpus_per_actor: GPUs per actor (default 1 on a GPU cluster, else 0).
        device: the actors' torch device (default: CUDA where the actor holds a GPU).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``, as for ``RealnessScorer``.
        address: a Ray cluster to join (``auto``, ``ray://host:10001``); default local Ray,
            or the cluster this process is already connected to.
        path_column: the path column of a manifest or Dataset (default ``path`` or an alias).
        bytes_column: a Dataset column of encoded image bytes (e.g. ``bytes`` from
            ``ray.data.read_binary_files(..., include_paths=True)``).
        retry_failed: score again the inputs whose rows in ``out`` have an error.
        stall_timeout: seconds without progress before the run fails naming the stage.
        progress: show Ray's progress bars.

    Returns:
        A :class:`RunSummary` when ``out`` is given, else the Ray ``Dataset``.

    Raises:
        MissingDependencyError: ray is not installed (``pip install 'realness[ray]'``).
        RealnessError: the model cannot be found, the cluster cannot hold the actors, a
            source or the output folder is unusable, or a stage stalled.
    """
    check_batch_size(batch_size)
    check_precision(precision)
    started = time.monotonic()
    version = weights_version(model)  # fails fast on a missing model, before any actor starts
    output = ParquetOutput(out, score_schema()) if out is not None else None
    ray = require_ray()
    connect(address)
    summary = RunSummary("score", str(out), startup_seconds=time.monotonic() - started)
    plan = plan_actors("score", actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor)
    state = output.resume(retry_failed=retry_failed) if output is not None else None
    done = state.done if state is not None else set()
    if state is not None:
        summary.set_aside = state.set_aside

    if _is_ray_dataset(source):
        if descriptions is not None:
            raise ValueError("a Ray Dataset source carries its descriptions in a 'description' column")
        column = path_column or "path"
        if column not in source.schema().names:
            raise RealnessError(f"the Dataset has no {column!r} column (columns: {', '.join(source.schema().names)})")
        dataset = _keep_undone(source, column, done, batch_size)
        summary.already_done = len(done)
    else:
        column = "path"
        paths = list_source_paths(source, path_column=path_column)
        if not paths:
            raise RealnessError(f"{source}: no images found")
        roots = [os.fspath(source)] if isinstance(source, (str, os.PathLike)) and Path(source).is_dir() else []
        texts = _description_texts(descriptions, paths, roots)
        rows = [{"path": p, "description": t} for p, t in zip(paths, texts) if p not in done]
        summary.already_done = len(paths) - len(rows)
        if not rows:
            summary.seconds = time.monotonic() - started
            return summary if output is not None else ray.data.from_arrow(score_schema().empty_table())
        dataset = _rows_dataset(rows, batch_size)

    scored = dataset.map_batches(
        ScoreBatches,
        fn_constructor_kwargs={
            "model": str(model),
            "model_version": version,
            "batch_size": batch_size,
            "device": device,
            "precision": precision,
            "threads": plan.threads,
            "path_column": column,
            "bytes_column": bytes_column,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.cpus_per_actor,
        num_gpus=plan.gpus_per_actor or None,
    )
    scored = _configured(scored, stall_timeout, progress)
    if output is None:
        return scored
    _stream_into(scored, output, "score", summary)
    summary.seconds = time.monotonic() - started
    return summary


def describe_dataset(
    source: Source,
    *,
    describer: str,
    out: str | os.PathLike[str],
    concurrency: int = 16,
    requests_per_minute: float | None = None,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    batch_size: int | None = None,
    address: str | None = None,
    path_column: str | None = None,
    bytes_column: str | None = None,
    description_cache: str | os.PathLike[str] | None = None,
    describer_options: dict | None = None,
    retry_failed: bool = False,
    stall_timeout: float | None = None,
    progress: bool = True,
) -> RunSummary:
    """Describe images on Ray Data: many requests in flight per actor, each distinct image sent once.

    Two stages: cheap actors hash every image's pixels; the driver then answers every hash
    that already has a text (in ``out`` from earlier runs, or in ``description_cache``)
    and sends each remaining distinct image to the describer once, through
    :class:`~realness.distributed.batches.DescribeBatches` actors holding ``concurrency``
    requests in flight each, under one cluster-wide ``requests_per_minute`` limit.
    The output folder, keyed by ``path`` with each image's ``image_sha256``, is the
    cluster-wide cache: pass it to later runs (as ``out``) and to :func:`score_dataset`
    (as ``descriptions``). Actors never open the sqlite cache; only this process does,
    when ``description_cache`` is given (read before, filled after).

    Args:
        source: as for :func:`score_dataset`.
        describer: a describer spec, e.g. ``"openai"`` or ``"http://host:8000/v1#model"``.
        out: the output folder of Parquet files (required: it is the cache).
        concurrency: requests in flight per actor.
        requests_per_minute: the limit over all actors together (None: no limit).
        actors: describe actors (default 2).
        cpus_per_actor: CPUs per actor (default: up to 1, sharing the spare CPUs).
        batch_size: rows per block handed to an actor (default: ``concurrency``).
        address: a Ray cluster to join (default: local Ray, or the one already connected).
        path_column: the path column of a manifest or Dataset.
        bytes_column: a Dataset column of encoded image bytes.
        description_cache: a local sqlite description cache to read from and fill (driver only).
        describer_options: passed to the describer's constructor in each actor.
        retry_failed: describe again the inputs whose rows in ``out`` have an error.
        stall_timeout: seconds without progress before the run fails naming the stage.
        progress: show Ray's progress bars.

    Returns:
        A :class:`RunSummary`.

    Raises:
        MissingDependencyError: ray is not installed.
        RealnessError: a bad describer spec, a cluster too small, an unusable source or
            output, or a stalled stage.
    """
    if concurrency < 1:
        raise RealnessError(f"--concurrency: must be at least 1, not {concurrency}")
    started = time.monotonic()
    # Built here once for its model id and prompt id (the cache key) and to fail fast on a bad spec.
    probe = build_describer(describer, cache=False, **(describer_options or {}))
    model, prompt_id = probe.model, probe.prompt.id
    output = ParquetOutput(out, description_schema())
    ray = require_ray()
    connect(address)
    summary = RunSummary("describe", str(out), startup_seconds=time.monotonic() - started)
    plan = plan_actors("describe", actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=0, light=True)
    batch_size = batch_size or concurrency
    state = output.resume(retry_failed=retry_failed)
    summary.set_aside = state.set_aside
    known = _texts_by_hash(output, model, prompt_id)

    column = path_column or "path"
    if _is_ray_dataset(source):
        dataset = _keep_undone(source, column, state.done, batch_size)
        summary.already_done = len(state.done)
    else:
        paths = list_source_paths(source, path_column=path_column)
        if not paths:
            raise RealnessError(f"{source}: no images found")
        rows = [{"path": p} for p in paths if p not in state.done]
        summary.already_done = len(paths) - len(rows)
        if not rows:
            summary.seconds = time.monotonic() - started
            return summary
        dataset, column = _rows_dataset(rows, batch_size), "path"

    pool = ray.data.ActorPoolStrategy(size=plan.actors)
    hashed = dataset.map_batches(
        PixelHashBatches,
        fn_constructor_kwargs={"path_column": column, "bytes_column": bytes_column},
        batch_size=batch_size, batch_format="pyarrow", compute=pool, num_cpus=plan.cpus_per_actor,
    )
    with _naming_stalls("describe (hashing pixels)"):
        hashed = _configured(hashed, stall_timeout, progress).materialize()
    hash_rows = [
        row
        for block in ray.get(hashed.select_columns(["path", "image_sha256", "error"]).to_arrow_refs())
        for row in block.to_pylist()
    ]
    paths_by_hash: dict[str, list[str]] = {}
    failed_rows = []
    for row in hash_rows:
        if row["image_sha256"] is None:
            failed_rows.append({**row, "describer": model, "prompt_id": prompt_id, "cached": False})
        else:
            paths_by_hash.setdefault(row["image_sha256"], []).append(row["path"])
    if description_cache is not None:
        cache = DescriptionCache(description_cache)
        known.update(cache.get_many([k for k in paths_by_hash if k not in known], model, prompt_id))

    answered = []
    for key, key_paths in paths_by_hash.items():
        if key in known:
            answered.extend(describe_rows_from_texts(key_paths, [key] * len(key_paths), known, model, prompt_id))
    if failed_rows or answered:
        output.write(rows_to_table(failed_rows + answered, description_schema()))
        summary.written += len(failed_rows) + len(answered)
        summary.failed += len(failed_rows)
        summary.cached += len(answered)

    # One request per distinct image: the first path of each hash goes out, the rest reuse its text.
    first_paths = {key_paths[0]: key for key, key_paths in paths_by_hash.items() if key not in known}
    if first_paths:
        limiter = ray.remote(num_cpus=0)(RequestSlots).remote(requests_per_minute) if requests_per_minute else None
        from ray.data.expressions import col  # optional: the ray extra

        chosen = col("path").is_in(sorted(first_paths))
        to_describe = hashed.filter(expr=chosen).repartition(target_num_rows_per_block=batch_size)
        described = to_describe.map_batches(
            DescribeBatches,
            fn_constructor_kwargs={
                "describer": describer, "concurrency": concurrency, "rate_limiter": limiter,
                "describer_options": describer_options, "path_column": "path", "bytes_column": bytes_column,
            },
            batch_size=batch_size, batch_format="pyarrow", compute=pool, num_cpus=plan.cpus_per_actor,
        )
        described = _configured(described, stall_timeout, progress)
        fresh: dict[str, str] = {}

        def add_duplicates(table):
            rows = table.to_pylist()
            for row in list(rows):
                if row["description"] is not None:
                    fresh[row["image_sha256"]] = row["description"]
                for other in paths_by_hash.get(row["image_sha256"], [])[1:]:
                    rows.append({**row, "path": other, "cached": row["description"] is not None})
                    summary.cached += row["description"] is not None
            return rows_to_table(rows, description_schema())

        _stream_into(described, output, "describe", summary, on_table=add_duplicates)
        if description_cache is not None:
            cache.put_many(fresh, model, prompt_id)
    summary.seconds = time.monotonic() - started
    return summary


def _texts_by_hash(output, model: str, prompt_id: str) -> dict[str, str]:
    """``{image_sha256: text}`` of the successful rows an output folder holds for this model and prompt."""
    return {
        row["image_sha256"]: row["description"]
        for row in output.read().to_pylist()
        if row["image_sha256"] and row["description"] is not None and (row["describer"], row["prompt_id"]) == (model, prompt_id)
    }
