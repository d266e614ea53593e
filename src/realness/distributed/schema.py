"""The fixed Parquet schemas of the scale-out outputs (one row per input, always).

Every batch returns exactly these columns with exactly these types. Ray Data infers a
batch's types from its values, so a column that happens to be all null in one batch
would otherwise be written with another type, and the output folder could no longer be
read back as one table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

# pyarrow is optional (the ray extra): each function imports it, so this module imports without it.
if TYPE_CHECKING:
    import pyarrow as pa

#: Columns of a score output, in order: ``path`` joins back to the input.
SCORE_COLUMNS = ("path", "score", "description", "verdict", "error", "model", "model_version")
#: Columns of a describe output: ``image_sha256`` (see :func:`realness.io.inputs.pixel_sha256`) is the cache key.
DESCRIPTION_COLUMNS = ("path", "image_sha256", "description", "verdict", "error", "model", "prompt_id", "cached")


def score_schema() -> pa.Schema:
    """The ``pyarrow.Schema`` of a score output (:data:`SCORE_COLUMNS`).

    ``score`` is float64 and null where the image failed; ``error`` then says why.
    """
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("score", pa.float64()),
            ("description", pa.string()),
            ("verdict", pa.string()),
            ("error", pa.string()),
            ("model", pa.string()),
            ("model_version", pa.string()),
        ]
    )


def description_schema() -> pa.Schema:
    """The ``pyarrow.Schema`` of a describe output (:data:`DESCRIPTION_COLUMNS`).

    ``description`` is null and ``error`` set where the image failed; ``image_sha256`` is
    null only when the image could not even be decoded.
    """
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("image_sha256", pa.string()),
            ("description", pa.string()),
            ("verdict", pa.string()),
            ("error", pa.string()),
            ("model", pa.string()),
            ("prompt_id", pa.string()),
            ("cached", pa.bool_()),
        ]
    )


def pixel_hash_schema() -> pa.Schema:
    """The ``pyarrow.Schema`` of the hashing step before describing: ``path``, ``image_sha256``, ``error``."""
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("image_sha256", pa.string()), ("error", pa.string())])


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """A ``pyarrow.Table`` of ``rows`` with exactly ``schema``'s columns and types (missing keys are null)."""
    import pyarrow as pa

    return pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)
