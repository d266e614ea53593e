"""What a distributed run reads: image paths from a folder, a manifest or a list, and their descriptions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from realness.describers.descriptions import fill_missing, resolve_descriptions
from realness.distributed.output import ParquetOutput
from realness.distributed.schema import description_schema
from realness.errors import RealnessError, SkippedItem
from realness.io.files import expand_image_paths

#: Manifest files (a table with a path column) by suffix.
MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")
#: Path column names looked for in a manifest, in order.
PATH_COLUMN_ALIASES = ("path", "file", "filename", "file_name", "image", "image_path", "uri")

Source = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], Any]


def is_ray_dataset(source: Any) -> bool:
    """Whether ``source`` is a Ray Data ``Dataset`` (checked without importing ray)."""
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


def description_texts(descriptions: Any, paths: Sequence[str], roots: Sequence[str]) -> tuple[list[str | None], list[SkippedItem]]:
    """One description (or None) per path, and the paths a describer failed on.

    ``descriptions`` is read as at every entry point (:func:`~realness.describers.descriptions.resolve_descriptions`),
    plus one kind of its own: a ``Path`` to the output folder of ``describe_dataset``, read as the
    ``{path: text}`` table it holds. A describer (object or name) writes the missing texts here,
    on the driver.
    """
    if isinstance(descriptions, os.PathLike) and Path(descriptions).is_dir():
        described = ParquetOutput(descriptions, description_schema()).read().to_pydict()
        descriptions = {p: t for p, t in zip(described["path"], described["description"]) if t is not None}
    resolved = resolve_descriptions(descriptions, paths, roots=roots)
    if resolved.match is not None:
        resolved.match.warn()
    texts = resolved.texts
    failures = fill_missing(resolved.describer, paths, paths, texts, on_error="skip")
    return texts, failures
