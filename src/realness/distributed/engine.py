"""Run scoring and describing on Ray Data: sources in, a resumable Parquet folder out.

The driver (this process) lists the inputs, skips those the output already holds, checks
the cluster can run the actors it plans, and streams the finished blocks into the output
folder one atomic file each (:class:`~realness.distributed.output.ParquetOutput`). The
actors (:mod:`realness.distributed.batches`) do the decoding and the model work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from realness.distributed.cluster import connect, plan_actors, require_ray
from realness.distributed.output import ParquetOutput
from realness.distributed.runs import RunSummary, configured, keep_undone, naming_stalls, rows_dataset, stream_into
from realness.distributed.schema import description_schema, rows_to_table, score_schema
from realness.distributed.sources import Source, description_texts, is_ray_dataset, list_source_paths
from realness.errors import RealnessError
from realness.runtime.device import check_batch_size, check_precision

if TYPE_CHECKING:
    import ray.data


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
        descriptions: for path sources, as for ``RealnessScorer``: a ``Path`` to a descriptions
            table, a ``{path: text}`` mapping, texts aligned with the images, or a describer
            (object or name) that writes them on the driver; also a ``Path`` to the output folder
            of :func:`describe_dataset`. A ``str`` is never a file name. Ray Datasets carry a
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

    if is_ray_dataset(source):
        if descriptions is not None:
            raise ValueError("a Ray Dataset source carries its descriptions in a 'description' column")
        column = path_column or "path"
        if column not in source.schema().names:
            raise RealnessError(f"the Dataset has no {column!r} column (columns: {', '.join(source.schema().names)})")
        dataset = keep_undone(source, column, done, batch_size)
        summary.already_done = len(done)
    else:
        column = "path"
        paths = list_source_paths(source, path_column=path_column)
        if not paths:
            raise RealnessError(f"{source}: no images found")
        roots = [os.fspath(source)] if isinstance(source, (str, os.PathLike)) and Path(source).is_dir() else []
        texts, failures = description_texts(descriptions, paths, roots)
        # An image the describer failed on is a row with its error, as in RealnessScorer.
        failed = {item.index: item.reason for item in failures if paths[item.index] not in done}
        failed_rows = rows_to_table([{"path": paths[i], "error": reason} for i, reason in failed.items()], score_schema())
        rows = [{"path": p, "description": t} for i, (p, t) in enumerate(zip(paths, texts)) if p not in done and i not in failed]
        summary.already_done = len(paths) - len(rows) - len(failed)
        if failed and output is not None:
            output.write(failed_rows)
            summary.written += len(failed)
            summary.failed += len(failed)
        if not rows:
            summary.seconds = time.monotonic() - started
            return summary if output is not None else ray.data.from_arrow(failed_rows)
        dataset = rows_dataset(rows, batch_size)

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
    scored = configured(scored, stall_timeout, progress)
    if output is None:
        return scored.union(ray.data.from_arrow(failed_rows)) if failed else scored
    stream_into(scored, output, "score", summary)
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
    if is_ray_dataset(source):
        dataset = keep_undone(source, column, state.done, batch_size)
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
        dataset, column = rows_dataset(rows, batch_size), "path"

    pool = ray.data.ActorPoolStrategy(size=plan.actors)
    hashed = dataset.map_batches(
        PixelHashBatches,
        fn_constructor_kwargs={"path_column": column, "bytes_column": bytes_column},
        batch_size=batch_size, batch_format="pyarrow", compute=pool, num_cpus=plan.cpus_per_actor,
    )
    with naming_stalls("describe (hashing pixels)"):
        hashed = configured(hashed, stall_timeout, progress).materialize()
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
        described = configured(described, stall_timeout, progress)
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

        stream_into(described, output, "describe", summary, on_table=add_duplicates)
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
