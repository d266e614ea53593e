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

from realness.io.schema import COLUMN_TYPES, RAY_DESCRIBE_COLUMNS, RAY_SCORE_COLUMNS

#: Columns of a score output, in order: ``path`` joins back to the input.
SCORE_COLUMNS = RAY_SCORE_COLUMNS
#: Columns of a describe output: ``image_sha256`` (see :func:`realness.io.inputs.pixel_sha256`) is the cache key.
DESCRIPTION_COLUMNS = RAY_DESCRIBE_COLUMNS


def _schema(columns: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    types = {str: pa.string(), float: pa.float64(), bool: pa.bool_(), int: pa.int64()}
    return pa.schema([(name, types[COLUMN_TYPES[name]]) for name in columns])


def score_schema() -> pa.Schema:
    """The ``pyarrow.Schema`` of a score output (:data:`SCORE_COLUMNS`).

    ``score`` is float64 and null where the image failed; ``error`` then says why.
    """
    return _schema(SCORE_COLUMNS)


def description_schema() -> pa.Schema:
    """The ``pyarrow.Schema`` of a describe output (:data:`DESCRIPTION_COLUMNS`).

    ``description`` is null and ``error`` set where the image failed; ``image_sha256`` is
    null only when the image could not even be decoded.
    """
    return _schema(DESCRIPTION_COLUMNS)


def pixel_hash_schema() -> pa.Schema:
    """The ``pyarrow.Schema`` of the hashing step before describing: ``path``, ``image_sha256``, ``error``."""
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("image_sha256", pa.string()), ("error", pa.string())])


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """A ``pyarrow.Table`` of ``rows`` with exactly ``schema``'s columns and types (missing keys are null)."""
    import pyarrow as pa

    return pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)
