"""The batch classes Ray Data runs, public so that realness fits into anyone's Ray pipeline.

Each is a callable class for ``Dataset.map_batches`` with an actor pool: the model (or
describer) is built once per actor in ``__init__``, and ``__call__`` turns one batch of
rows into a ``pyarrow.Table`` with a fixed schema (:mod:`realness.distributed.schema`),
one row out per row in, whatever failed::

    import ray
    from realness.distributed import ScoreBatches

    scores = ray.data.read_binary_files("s3://bucket/images/", include_paths=True).map_batches(
        ScoreBatches,
        fn_constructor_kwargs={"bytes_column": "bytes"},
        batch_size=32,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=4),
        num_cpus=1,
    )

Images are decoded inside the actor by :mod:`realness.io.inputs`, so a bad file gives the
same named reason as in one process. Nothing here imports ray at module level.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from realness.core import RealnessScorer
from realness.core.pretrained import WEIGHTS_NAME, resolve_core_dir
from realness.describers.factory import build_describer
from realness.distributed.schema import description_schema, pixel_hash_schema, rows_to_table, score_schema
from realness.errors import InvalidImageError
from realness.io.inputs import load_image, pixel_sha256
from realness.text.verdict import parse_verdict


def as_arrow(batch: Any):
    """A batch as a ``pyarrow.Table``, whatever ``batch_format`` Ray handed over."""
    # optional: pyarrow comes with the ray extra, so it is imported where a batch is handled, never at import
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, dict):
        return pa.Table.from_pydict({name: list(values) for name, values in batch.items()})
    return pa.Table.from_pandas(batch, preserve_index=False)  # pandas


def column_or_nones(table, name: str | None) -> list:
    """The values of column ``name``, or one None per row when there is no such column."""
    if name is not None and name in table.column_names:
        return table.column(name).to_pylist()
    return [None] * table.num_rows


def fetch_image(path: str, data: bytes | None) -> Any:
    """What :func:`realness.io.inputs.load_image` gets for one row: its bytes, else its path.

    A URI such as ``s3://bucket/a.png`` (anything with ``://``) is read through
    ``pyarrow.fs`` with the credentials the worker has; a local path is left to the input
    contract, which names a missing file as such.

    Raises:
        InvalidImageError: the URI cannot be read.
    """
    if data is not None:
        return bytes(data)
    if "://" not in path:
        return path
    import pyarrow.fs  # optional: the ray extra

    try:
        filesystem, inner = pyarrow.fs.FileSystem.from_uri(path)
        with filesystem.open_input_stream(inner) as stream:
            return stream.read()
    except Exception as error:  # pyarrow raises OSError, ArrowInvalid... per filesystem
        raise InvalidImageError(path, f"cannot read ({type(error).__name__}: {error})") from error


def set_torch_threads(threads: int | None) -> None:
    """Give torch the actor's CPUs: Ray sets ``OMP_NUM_THREADS=1`` in actors, and
    ``os.cpu_count()`` there is the whole node, so neither is the right number."""
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))


def weights_version(model: str | os.PathLike[str]) -> str:
    """A short id of a CORE model's exact weights: the first 12 hex digits of their sha256.

    :func:`~realness.distributed.score_dataset` calls it in the driver, which also fails
    fast on a model that cannot be found, before any actor starts.
    """
    digest = hashlib.sha256()
    with open(Path(resolve_core_dir(str(model))) / WEIGHTS_NAME, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


class ScoreBatches:
    """Score batches of rows with one :class:`~realness.core.scorer.RealnessScorer` per actor.

    Rows carry a ``path`` (the key the output keeps), and optionally the image's encoded
    bytes and a ``description``. The output has :func:`~realness.distributed.schema.score_schema`.

    Args:
        model: bundled model name, local model directory or Hub id (loaded once, in the actor).
        model_version: written in every row (default: :func:`weights_version`).
        batch_size: images per forward pass.
        device: ``cpu``, ``cuda``... (default: CUDA when the actor has a GPU).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``, as for ``RealnessScorer``.
        threads: torch threads; give the actor's ``num_cpus``.
        path_column: the column naming each image.
        bytes_column: a column of encoded image bytes (read instead of the path), if any.
        description_column: a column of descriptions, if any (missing or null: image-only).
    """

    def __init__(
        self,
        model: str = "realness-core-lite",
        *,
        model_version: str | None = None,
        batch_size: int = 32,
        device: str | None = None,
        precision: str = "auto",
        threads: int | None = None,
        path_column: str = "path",
        bytes_column: str | None = None,
        description_column: str = "description",
    ):
        set_torch_threads(threads)
        # num_workers=0: the actor's CPUs are the forward pass's; Ray parallelizes across actors.
        self.scorer = RealnessScorer.from_pretrained(
            str(model), device=device, precision=precision, batch_size=batch_size, num_workers=0
        )
        self.model = str(model)
        if model_version is None:
            model_version = weights_version(model)
        self.model_version = model_version
        self.path_column = path_column
        self.bytes_column = bytes_column
        self.description_column = description_column

    def __call__(self, batch: Any):
        """Score one batch; returns a ``pyarrow.Table`` with one row per input row."""
        table = as_arrow(batch)
        paths = [str(path) for path in table.column(self.path_column).to_pylist()]
        data = column_or_nones(table, self.bytes_column)
        texts = column_or_nones(table, self.description_column)
        rows = [self._row(path) for path in paths]
        items, positions = [], []
        for index, (path, blob) in enumerate(zip(paths, data)):
            try:
                items.append(fetch_image(path, blob))
                positions.append(index)
            except InvalidImageError as error:
                rows[index]["error"] = error.reason
        if items:
            result = self.scorer(items, [texts[i] for i in positions], on_error="skip", progress=False)
            for index, scored in zip(positions, result.to_rows()):
                rows[index].update({key: value for key, value in scored.items() if key != "path"})
        return rows_to_table(rows, score_schema())

    def _row(self, path: str) -> dict:
        return {"path": path, "scorer": self.model, "scorer_version": self.model_version}


class PixelHashBatches:
    """Hash each row's decoded pixels (:func:`realness.io.inputs.pixel_sha256`), the describe cache's key.

    Output columns: ``path``, ``image_sha256`` (null when the image failed) and ``error``
    (:func:`~realness.distributed.schema.pixel_hash_schema`), then the bytes column if any.

    Args:
        path_column: the column naming each image.
        bytes_column: a column of encoded image bytes, if any.
    """

    def __init__(self, *, path_column: str = "path", bytes_column: str | None = None):
        set_torch_threads(1)  # tiny per-image tensor ops only
        self.path_column = path_column
        self.bytes_column = bytes_column

    def __call__(self, batch: Any):
        """Hash one batch; returns a ``pyarrow.Table`` with one row per input row."""
        import pyarrow as pa  # optional: the ray extra (see as_arrow)

        table = as_arrow(batch)
        paths = [str(path) for path in table.column(self.path_column).to_pylist()]
        hashes, errors = [], []
        for path, blob in zip(paths, column_or_nones(table, self.bytes_column)):
            try:
                hashes.append(pixel_sha256(load_image(fetch_image(path, blob), name=path)))
                errors.append(None)
            except InvalidImageError as error:
                hashes.append(None)
                errors.append(error.reason)
        hashed = pa.table({"path": paths, "image_sha256": hashes, "error": errors}, schema=pixel_hash_schema())
        if self.bytes_column is not None and self.bytes_column in table.column_names:
            # Carried along so the describe stage need not read the source again.
            hashed = hashed.append_column(self.bytes_column, table.column(self.bytes_column))
        return hashed


class RequestSlots:
    """A requests-per-minute limit shared by every actor: run as one Ray actor, asked before each request.

    :meth:`reserve` hands out evenly spaced start times and answers how long the caller
    should wait for its slot. Waits are relative to this object's clock, so callers on
    other machines need no synchronized clocks.

    Args:
        requests_per_minute: the limit over the whole cluster.
    """

    def __init__(self, requests_per_minute: float):
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, not {requests_per_minute}")
        self.interval = 60.0 / requests_per_minute
        self.next_free = 0.0

    def reserve(self) -> float:
        """Take the next free slot; returns seconds to wait before sending."""
        now = time.monotonic()
        slot = max(now, self.next_free)
        self.next_free = slot + self.interval
        return slot - now


class DescribeBatches:
    """Describe batches of rows with many requests in flight per actor (cheap CPU actors).

    The describer is built in the actor without the sqlite cache: actors never open it
    (WAL does not work over network filesystems, and a per-node cache rarely hits); the
    stage's Parquet output is the cluster-wide cache instead (see
    :func:`realness.distributed.describe_dataset`). Rows carry a ``path`` and, when the
    hashing stage ran, its ``image_sha256``. The output has
    :func:`~realness.distributed.schema.description_schema`.

    Args:
        describer: a describer spec (see :func:`realness.describers.factory.build_describer`),
            e.g. ``"openai"`` or ``"http://host:8000/v1#model"``.
        concurrency: requests in flight at once in this actor.
        rate_limiter: a Ray actor handle of :class:`RequestSlots` (the global limit), or None.
        describer_options: passed to the describer's constructor (e.g. ``timeout``).
        path_column: the column naming each image.
        bytes_column: a column of encoded image bytes, if any.
    """

    def __init__(
        self,
        describer: str,
        *,
        concurrency: int = 16,
        rate_limiter: Any = None,
        describer_options: dict | None = None,
        path_column: str = "path",
        bytes_column: str | None = None,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        set_torch_threads(1)  # only tiny per-image tensor ops run here, from many threads
        self.describer = build_describer(describer, cache=False, **(describer_options or {}))
        self.pool = ThreadPoolExecutor(max_workers=concurrency)
        self.rate_limiter = rate_limiter
        self.path_column = path_column
        self.bytes_column = bytes_column

    def __call__(self, batch: Any):
        """Describe one batch; returns a ``pyarrow.Table`` with one row per input row."""
        table = as_arrow(batch)
        paths = [str(path) for path in table.column(self.path_column).to_pylist()]
        rows = list(
            self.pool.map(
                self._describe_one,
                paths,
                column_or_nones(table, self.bytes_column),
                column_or_nones(table, "image_sha256"),
            )
        )
        return rows_to_table(rows, description_schema())

    def _describe_one(self, path: str, blob: bytes | None, key: str | None) -> dict:
        row = {"path": path, "image_sha256": key, "describer": self.describer.model,
               "prompt_id": self.describer.prompt.id, "cached": False}
        try:
            image = load_image(fetch_image(path, blob), name=path, min_size=self.describer.min_size)
        except InvalidImageError as error:
            return {**row, "error": error.reason}
        row["image_sha256"] = key or pixel_sha256(image)
        if self.rate_limiter is not None:
            import ray  # optional: the ray extra; only a limiter handed over by Ray gets here

            time.sleep(ray.get(self.rate_limiter.reserve.remote()))
        description = self.describer.describe_tensors([image], [path])[0]
        if not description.ok:
            return {**row, "error": description.error or "no description"}
        return {**row, "description": description.text, "verdict": description.verdict}


def describe_rows_from_texts(paths: Sequence[str], keys: Sequence[str], texts: dict, model: str, prompt_id: str) -> list[dict]:
    """Rows for images whose pixel hash already has a text (cache hits): nothing is sent."""
    return [
        {"path": path, "image_sha256": key, "description": texts[key], "verdict": parse_verdict(texts[key]),
         "describer": model, "prompt_id": prompt_id, "cached": True}
        for path, key in zip(paths, keys)
    ]
