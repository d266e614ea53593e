"""The tables users hand in and get back (CSV, JSON, JSON Lines, Parquet), read forgivingly and written safely.

Every table realness reads (descriptions, scores to resume, comparison tables, datasets) goes
through :func:`read_table`; every table it writes goes through :func:`write_table`, atomically
(:mod:`realness.io.atomic`), after :func:`check_output_path` refused, before any work, an output
that is one of the inputs, a directory, or cannot be written.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

from realness.errors import MissingDependencyError, OutputError, TableError, TableWarning
from realness.io.atomic import atomic_output, write_file_atomic
from realness.io.names import escape_undecodable, name_list

PathLike = Union[str, "os.PathLike[str]"]

#: Output table formats by file suffix (``--out``); reading also takes these, and CSV otherwise.
TABLE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def table_format(path: PathLike) -> str:
    """The format an output table's suffix names: ``csv``, ``json``, ``jsonl`` or ``parquet``.

    Raises:
        OutputError: any other suffix (so ``--out scores.xlsx`` fails before any work, rather
            than writing CSV under a name that says otherwise).
        MissingDependencyError: ``.parquet`` without pyarrow installed.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise OutputError(
            f"{path}: unknown table format {suffix or '(no suffix)'}; end the name in "
            f"{', '.join(TABLE_FORMATS)}"
        )
    if TABLE_FORMATS[suffix] == "parquet":
        _require_pyarrow(f"writing {path}")
    return TABLE_FORMATS[suffix]


def _require_pyarrow(purpose: str) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise MissingDependencyError("pyarrow", "parquet", purpose)


def write_table(rows: Sequence[Mapping[str, Any]], out: PathLike | None, columns: Sequence[str]) -> None:
    """Write rows in the format ``out``'s suffix names (:func:`table_format`); CSV on stdout when ``out`` is None.

    Rows keep ``columns`` only, in that order (missing keys empty). Files are written
    atomically (see :func:`atomic_output`).

    Raises:
        OutputError: ``out`` has no table suffix.
    """
    if out is None:
        write_csv_rows(sys.stdout, rows, columns)
        sys.stdout.flush()
        return
    kind = table_format(out)
    records = [{column: _plain(row.get(column)) for column in columns} for row in rows]
    if kind == "parquet":
        write_file_atomic(out, lambda handle: _write_parquet(handle, records, columns))
        return
    with atomic_output(out) as handle:
        if kind == "json":
            handle.write(json.dumps(records, indent=2, default=json_value) + "\n")
        elif kind == "jsonl":
            handle.writelines(json.dumps(record, default=json_value) + "\n" for record in records)
        else:
            write_csv_rows(handle, records, columns)


def _write_parquet(handle: IO[bytes], records: list[dict[str, Any]], columns: Sequence[str]) -> None:
    # optional: pyarrow (realness[parquet]); table_format() checked it is installed.
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = {column: [record[column] for record in records] for column in columns}
    pq.write_table(pa.table(values), handle)


def _plain(value: Any) -> Any:
    """``value`` as every table format holds it: numpy scalars and paths converted, NaN empty (None)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        return escape_undecodable(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _plain(json_value(value))


def write_csv_rows(handle: IO[str], rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, header: bool = True) -> None:
    """Write rows (missing keys empty, extra keys ignored) as CSV to an open text file."""
    writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
    if header:
        writer.writeheader()
    writer.writerows({column: _plain(row.get(column)) for column in columns} for row in rows)


def json_value(value: Any) -> Any:
    """``value`` as JSON holds it: a numpy scalar as its Python value, anything else as text."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


#: The longest name made beside an output: ``.NAME.partial.XXXXXXXX.tmp``, the journal's temporary file.
SIBLING_NAME_EXTRA = len("..partial.XXXXXXXX.tmp")
#: Bytes an output row may take, journal and temporary copy included, for the free-space check.
ROW_BYTES = 1024


def check_output_path(
    out: PathLike | None, *, inputs: Iterable[PathLike] = (), what: str = "output", table: bool = False, rows: int = 0
) -> None:
    """Refuse, before any work, an output file that would destroy an input or cannot be written.

    The output's folder is created when missing, so a typo in it fails now rather than after
    the work is done. So do a name too long for the files made beside it (its journal and
    temporary files), a full disk and an immutable file.

    Args:
        out: the output file (None: stdout, always fine).
        inputs: files the command reads (images, description tables, models).
        what: how the output is called in messages (``--out``).
        table: ``out`` is a table: its suffix must name a format (:func:`table_format`).
        rows: how many rows it will hold, for the free-space check.

    Raises:
        OutputError: ``out`` is a directory, is one of ``inputs``, its folder cannot be made
            or written, its name is too long, the disk is too full, or (``table``) its suffix
            names no table format.
        MissingDependencyError: a ``.parquet`` table without pyarrow.
    """
    if out is None:
        return
    path = Path(out)
    if path.is_dir():
        raise OutputError(f"{path}: {what} is a directory; name a file inside it")
    if path.exists():
        for item in inputs:
            if _same_file(path, Path(item)):
                raise OutputError(f"{path}: {what} is also an input ({item}); writing it would destroy the input")
    if table:
        table_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{path}: cannot create the folder of the {what} ({error.strerror or error})") from None
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{path}: the folder {path.parent} is not writable")
    _check_name_length(path, what)
    if _is_immutable(path):
        raise OutputError(f"{path}: the file is immutable or append-only (lsattr shows it); it cannot be replaced")
    try:
        status = os.statvfs(path.parent)
    except (OSError, AttributeError):  # no statvfs (Windows): a full disk is told when a write fails
        return
    free, needed = status.f_bavail * status.f_frsize, ROW_BYTES * rows + 64 * 1024
    if free < needed:
        raise OutputError(
            f"{path}: the disk is full ({free // 1024} KiB free in {path.parent}; the {what} needs about "
            f"{needed // 1024} KiB); free some space or write elsewhere"
        )


def _check_name_length(path: Path, what: str) -> None:
    try:
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    length = len(os.fsencode(path.name))
    if length + SIBLING_NAME_EXTRA > limit:
        raise OutputError(
            f"{path}: the file name is {length} bytes; with the .partial journal and temporary files made beside "
            f"it, names of at most {limit - SIBLING_NAME_EXTRA} bytes fit in this folder (limit {limit}); "
            f"choose a shorter {what}"
        )


def _is_immutable(path: Path) -> bool:
    """Whether Linux's immutable or append-only flag (``chattr +i``/``+a``) is set: such a file cannot be replaced."""
    if not sys.platform.startswith("linux") or not path.is_file():
        return False
    import fcntl

    get_flags, immutable, append_only = 0x80086601, 0x10, 0x20  # FS_IOC_GETFLAGS, FS_IMMUTABLE_FL, FS_APPEND_FL
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        flags = int.from_bytes(fcntl.ioctl(descriptor, get_flags, bytes(8)), sys.byteorder)
    except OSError:  # a filesystem without these flags
        return False
    finally:
        os.close(descriptor)
    return bool(flags & (immutable | append_only))


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


# --- resumable row files ------------------------------------------------------------------

@dataclass
class Table:
    """A table read with :func:`read_table`.

    Attributes:
        path: the file.
        columns: the column names, stripped of surrounding spaces.
        rows: one dict per data row, keyed by the stripped column names; CSV cells are
            strings, JSON and Parquet values keep their types (None where empty).
        lines: the line each row starts on (CSV: the physical line, so a description
            holding a line break does not shift the ones after it; other formats: the row's
            number counting the header as 1).
    """

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = list(range(2, len(self.rows) + 2))

    def column(self, aliases: Sequence[str], *, purpose: str, required: bool = True) -> str | None:
        """The first column matching one of ``aliases`` (case-insensitive); see :func:`find_column`."""
        return find_column(self.path, self.columns, aliases, purpose=purpose, required=required)


def read_table(path: PathLike) -> Table:
    """Read a table: JSON, JSON Lines or Parquet by suffix (see :data:`TABLE_FORMATS`), else CSV with a header row.

    CSV is read as spreadsheets save it (byte-order mark, UTF-16); a Parquet folder (what
    ``--engine ray`` writes) is read whole.

    Args:
        path: the file.

    Returns:
        The :class:`Table`.

    Raises:
        TableError: the file is missing or not readable as its format: the message says
            why (for CSV in an unknown encoding: the byte offset and how to re-save it).
    """
    path = Path(path)
    kind = TABLE_FORMATS.get(path.suffix.lower(), "csv")
    if path.is_dir() and kind != "parquet":
        raise TableError(f"{path}: is a directory, not a table file")
    if not path.exists():
        raise TableError(f"{path}: no such file")
    if kind == "parquet":
        return _read_parquet(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TableError(f"{path}: cannot read it ({error.strerror or error})") from None
    text = _decode(data, path)
    if kind in ("json", "jsonl"):
        return _table_of_records(path, _parse_json_records(path, text, lines=kind == "jsonl"))
    records: list[list[str]] = []
    starts: list[int] = []  # the physical line each record starts on
    reader = csv.reader(io.StringIO(text, newline=""))
    end_of_previous = 0
    try:
        for record in reader:
            records.append(record)
            starts.append(end_of_previous + 1)
            end_of_previous = reader.line_num
    except csv.Error as error:
        raise TableError(f"{path} line {reader.line_num}: not readable as CSV ({error})") from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise TableError(f"{path}: empty CSV file (no header row)")
    columns = [cell.strip() for cell in records[0]]
    kept = [(record, line) for record, line in zip(records[1:], starts[1:]) if any(cell.strip() for cell in record)]
    overlong = [line for record, line in kept if any(cell.strip() for cell in record[len(columns):])]
    if overlong:
        warnings.warn(
            f"{path}: {len(overlong)} rows have more cells than the header's {len(columns)} columns; the extra "
            f"cells are ignored (a comma inside a cell needs quotes): line {name_list([str(n) for n in overlong])}",
            TableWarning,
            stacklevel=2,
        )
    rows = [{name: (record[index] if index < len(record) else "") for index, name in enumerate(columns)} for record, _ in kept]
    return Table(path, columns, rows, [line for _, line in kept])


def _parse_json_records(path: Path, text: str, *, lines: bool) -> list[Any]:
    if not lines:
        try:
            records = json.loads(text)
        except ValueError as error:
            raise TableError(f"{path}: not readable as JSON ({error})") from None
        if not isinstance(records, list):
            raise TableError(f"{path}: not a JSON list of rows")
        return records
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as error:
                raise TableError(f"{path} line {number}: not readable as JSON ({error})") from None
    return records


def _table_of_records(path: Path, records: list[Any]) -> Table:
    if not all(isinstance(record, dict) for record in records):
        raise TableError(f"{path}: every row must be a JSON object")
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(str(key).strip() for key in record))
    rows = [{str(key).strip(): value for key, value in record.items()} for record in records]
    return Table(path, list(columns), rows)


def _read_parquet(path: Path) -> Table:
    _require_pyarrow(f"reading {path}")
    # optional: pyarrow (realness[parquet])
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise TableError(f"{path}: not readable as Parquet ({error})") from None
    return Table(path, [str(name).strip() for name in table.column_names], table.to_pylist())


def _decode(data: bytes, path: Path) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start
        bad = data[offset : offset + 4]
        raise TableError(
            f"{path}: not UTF-8 text (byte {offset}: {bad!r}); it was probably saved in a legacy "
            "encoding such as Windows-1252: re-save it as 'CSV UTF-8' or convert it with "
            f"iconv -f cp1252 -t utf-8 {path.name}"
        ) from None


def find_column(
    path: PathLike, columns: Sequence[str], aliases: Sequence[str], *, purpose: str, required: bool = True
) -> str | None:
    """The actual name of the first column matching one of ``aliases``, ignoring case.

    Args:
        path: the table, for the message.
        columns: the columns the table has.
        aliases: accepted names, most preferred first.
        purpose: what the column holds, for the message (``"image"``).
        required: raise when none matches (else return None).

    Raises:
        TableError: no column matches; the one-line message lists what was looked for and found.
    """
    by_lower = {}
    for column in columns:
        by_lower.setdefault(column.lower(), column)
    for alias in aliases:
        if alias.lower() in by_lower:
            return by_lower[alias.lower()]
    if required:
        raise TableError(
            f"{path}: no {purpose} column (looked for {', '.join(aliases)}); found: {', '.join(columns) or 'no columns'}"
        )
    return None


# --- descriptions -------------------------------------------------------------------------
