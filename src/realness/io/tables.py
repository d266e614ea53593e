"""The tables users hand in and get back (CSV, JSON, JSON Lines, Parquet), read forgivingly and written safely.

Every table realness reads (descriptions, scores to resume, comparison tables, datasets) goes
through :func:`read_table`, and every file it writes goes through :func:`atomic_output`, so
the same rules hold everywhere:

* Reading: a UTF-8 byte-order mark is dropped (spreadsheets add one); UTF-16 files (Excel's
  "Unicode text") are decoded; any other encoding fails naming the byte offset and how to
  re-save the file. Column names are matched case-insensitively through aliases
  (:func:`find_column`), and a missing column fails listing the columns that were found.
* Writing: into a temporary file in the target's own folder, flushed to disk, then renamed
  over the target: an interrupted or failed write leaves the previous file (or none), never
  half a file. :func:`check_output_path` refuses, before any work, an output that is one of
  the inputs or a directory.
* File names that are not UTF-8 (Linux allows any bytes): Python holds each undecodable byte
  as a lone surrogate, which no UTF-8 file can; tables write it as the four characters
  ``\\xHH`` (:func:`escape_undecodable`, as ``ls -b`` shows it) and read ``\\xHH`` (HH from 80
  to ff) back as that byte (:func:`unescape_undecodable`), so the name survives a round trip.
* Descriptions are keyed by the path the user gave (:class:`DescriptionTable`): a bare file
  name matches by name only when exactly one image has that name, and whatever did not
  match (images without a row, rows no image used, ambiguous names) is reported by name.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import importlib.util
import io
import json
import math
import os
import posixpath
import re
import shutil
import sys
import tempfile
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

# The table errors live in realness.errors with every other exception; callers may import them from here.
from realness.errors import (
    DescriptionsWarning,
    MissingDependencyError,
    NothingPairedError,
    OutputError,
    OutputWriteError,
    TableError,
    TableWarning,
)
from realness.io.locks import OutputLock

PathLike = Union[str, "os.PathLike[str]"]

#: Column aliases (lower case, in order of preference) of the image and text of a descriptions table.
IMAGE_COLUMN_ALIASES = ("path", "file", "filename", "file_name", "image", "image_path", "name")
DESCRIPTION_COLUMN_ALIASES = ("description", "caption", "text")
#: How many names a report spells out before "and N more".
NAMES_SHOWN = 5
#: Output table formats by file suffix (``--out``); reading also takes these, and CSV otherwise.
TABLE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def escape_undecodable(text: str) -> str:
    """``text`` with each undecodable file-name byte (a lone surrogate) written as ``\\xHH``.

    ``os.fsdecode(b"\\xff.png")`` is ``"\\udcff.png"``, which UTF-8 cannot encode; it is
    written ``"\\xff.png"``. Text without lone surrogates is returned as it is.
    """
    if not _LONE_SURROGATE.search(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte (not from a file name)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def unescape_undecodable(text: str) -> str:
    """The inverse of :func:`escape_undecodable`: ``\\xHH`` (HH from 80 to ff) back to that byte.

    Bytes 80 to ff are the only ones an escaped name holds (smaller ones are ASCII and
    always decode). A name that really spells a backslash, ``x`` and two such hex digits
    is read as that byte: the one ambiguity of the escaping.
    """
    if "\\x" not in text:
        return text
    raw = _ESCAPED_BYTE.sub(lambda match: bytes([int(match.group(1), 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile(rb"\\x([89a-fA-F][0-9a-fA-F])")


def name_list(names: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    """``"a, b, c and 7 more"``: the first ``shown`` names and how many were left out."""
    head = ", ".join(str(name) for name in names[:shown])
    rest = len(names) - shown
    return f"{head} and {rest} more" if rest > 0 else head


# --- writing ------------------------------------------------------------------------------


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# mkstemp and mkdtemp create 0600 files and 0700 folders; a finished output gets what open()
# and mkdir would have given it.
_FILE_MODE = 0o666 & ~_umask()
_FOLDER_MODE = 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_output(path: PathLike, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = "") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    The folder is created if needed. On any exception (Ctrl-C included) the temporary file
    is removed and ``path`` is left as it was.

    Args:
        path: the file to (re)write.
        mode: ``"w"`` for text or ``"wb"`` for bytes.
        encoding: text encoding (ignored for bytes).
        newline: passed to :func:`open` (``""`` keeps CSV line endings as the writer makes them).

    Yields:
        The open temporary file.

    Raises:
        OutputWriteError: the file could not be written or put in place (disk full, no
            permission, immutable, name too long); the message names ``path``, never the
            temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        text = "b" not in mode
        with os.fdopen(descriptor, mode, encoding=encoding if text else None, newline=newline if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if temporary is not None and error.filename not in (None, temporary, str(path)):
            raise  # about another file (one the writer read): its own message names it
        raise write_error(path, error) from None
    except BaseException:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise


def write_error(path: PathLike, error: OSError) -> OutputWriteError:
    """``path: cannot write it (REASON)``: a failed write told by the file the user named."""
    reason = error.strerror or str(error)
    if error.errno in (errno.EPERM, errno.EACCES) and os.path.exists(path):
        reason += "; is it read-only or immutable (lsattr)?"
    return OutputWriteError(f"{path}: cannot write it ({reason})")


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside ``path``; on success it takes ``path``'s place.

    The files of an existing ``path`` that the new folder does not hold are carried over
    (hard links, or copies across filesystems), so nothing else in it is lost. On any
    exception (Ctrl-C included) the temporary folder is removed and ``path`` is left as it
    was. The swap is two renames: a crash between them (microseconds) leaves the previous
    folder beside ``path`` as ``.NAME.*.old``.

    Args:
        path: the folder to (re)write.

    Yields:
        The temporary folder, to write the new files into.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        for written in staging.rglob("*"):
            if written.is_file() and not written.is_symlink():
                _fsync(written)  # on disk before the rename makes them the folder's files
        if path.exists():
            for entry in path.iterdir():
                if not (staging / entry.name).exists():
                    _carry_over(entry, staging / entry.name)
            previous = staging.with_suffix(".old")
            os.replace(path, previous)
            try:
                os.replace(staging, path)
            except BaseException:
                os.replace(previous, path)
                raise
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, path)
        os.chmod(path, _FOLDER_MODE)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _carry_over(source: Path, target: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, target)


def _link_or_copy(source: PathLike, target: PathLike) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, target)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_output(path) as handle:
        handle.write(text)
    return Path(path)


def write_file_atomic(path: PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Let ``write`` fill a temporary binary file beside ``path``, then rename it into place.

    For writers that take an open file (``figure.savefig(handle, format=...)``,
    ``image.save(handle, format=...)``, ``numpy.save``); see :func:`atomic_output`.

    Returns:
        ``path`` as a Path.
    """
    with atomic_output(path, "wb") as handle:
        write(handle)
    return Path(path)


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
            handle.write(json.dumps(records, indent=2, default=_json_value) + "\n")
        elif kind == "jsonl":
            handle.writelines(json.dumps(record, default=_json_value) + "\n" for record in records)
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
    return _plain(_json_value(value))


def write_csv_rows(handle: IO[str], rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, header: bool = True) -> None:
    """Write rows (missing keys empty, extra keys ignored) as CSV to an open text file."""
    writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
    if header:
        writer.writeheader()
    writer.writerows({column: _plain(row.get(column)) for column in columns} for row in rows)


def _json_value(value: Any) -> Any:
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


class RowJournal:
    """Rows written as they are produced, so an interrupted run keeps what it finished.

    Rows are appended to ``<out>.partial`` (JSON lines, flushed and synced per batch); on
    :meth:`finish` the whole table is written to ``out`` atomically and the journal removed.
    A run killed without a chance to finish leaves the journal, which ``resume=True`` reads
    back (a torn last line is dropped).

    The journal's first line records the run's ``fingerprint`` (its inputs, model and
    settings): its rows are kept only by a run with the same fingerprint, so ``resume``
    never hands back another run's rows as this one's. A journal that holds no row (a run
    that failed before its first batch was saved) is removed: it holds nothing to continue.
    Rows already in ``out`` without a journal are never trusted (nothing proves which run
    wrote them). While the journal is open, ``<out>.lock`` keeps a second run off the same
    output (:class:`~realness.io.locks.OutputLock`).

    Args:
        out: the final table file; None where the rows are only journaled and the caller
            makes its own outputs from them (``realness filter`` ranks them, ``realness
            map`` lists the maps it wrote): then :meth:`finish` only removes the journal.
        columns: the table's columns; the first one identifies a row.
        resume: keep the rows of a leftover journal of the same run.
        journal: the journal file (default: ``<out>.partial``; needed when ``out`` is None).
        fingerprint: what identifies the run (see ``realness.cli.resumable.run_fingerprint``).

    Attributes:
        untrusted_out: ``resume`` found ``out`` but no journal: its rows are done again.

    Raises:
        TableError: a journal from an interrupted run exists and ``resume`` is False
            (continuing or starting over is the user's call), or (``resume``) the journal
            was written by a different run.
        realness.errors.OutputBusyError: another run is writing the same output.
    """

    def __init__(
        self,
        out: PathLike | None,
        columns: Sequence[str],
        *,
        resume: bool = False,
        journal: PathLike | None = None,
        fingerprint: str | None = None,
    ):
        self.out = None if out is None else Path(out)
        self.columns = list(columns)
        self.key = self.columns[0]
        if journal is None and self.out is None:
            raise ValueError("RowJournal: give out, journal or both")
        self.journal_path = Path(journal) if journal is not None else self.out.with_name(self.out.name + ".partial")
        self.fingerprint = fingerprint
        self._lock = OutputLock(self.journal_path.with_suffix(".lock"), self.out or self.journal_path).acquire()
        try:
            self.rows = self._saved_rows(resume)
        except BaseException:
            self._lock.release()
            raise
        self.untrusted_out = resume and not self.rows and self.out is not None and self.out.exists()
        # Opened by the first append: a run that fails before producing a row (say, while
        # loading its model) leaves no journal behind to be mistaken for an interrupted run.
        self._handle: IO[str] | None = None
        self._finished = False

    def _saved_rows(self, resume: bool) -> dict[str, dict[str, Any]]:
        if not self.journal_path.exists():
            return {}
        header, rows = _read_journal(self.journal_path)
        if not rows:
            self.journal_path.unlink()  # a run that saved no row: nothing to continue or lose
            return {}
        if not resume:
            raise TableError(
                f"{self.journal_path}: left by an interrupted run; add --resume to continue it, or delete it to start over"
            )
        if header is None or header.get("fingerprint") != self.fingerprint:
            raise TableError(
                f"{self.journal_path}: saved by a different run (other images, model or settings), so its rows are "
                "not this run's; run the command that wrote it with --resume, or delete it to start over"
            )
        return {str(row.get(self.key)): row for row in rows}

    def done(self) -> set[str]:
        """Keys of the rows already present (skip these when resuming)."""
        return set(self.rows)

    def failed(self) -> int:
        """How many rows (kept or new) hold an ``error``."""
        return sum(1 for row in self.rows.values() if row.get("error"))

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows and make them durable before returning.

        Raises:
            OutputWriteError: the journal could not be written (disk full...); the rows
                appended before are kept.
        """
        assert not self._finished, "append after finish"
        rows = [dict(row) for row in rows]
        before = dict(self.rows)
        # Counted before the write, so a batch whose write Ctrl-C cuts is still written to out.
        self.rows.update((str(row.get(self.key)), row) for row in rows)
        try:
            if self._handle is None:
                with atomic_output(self.journal_path) as handle:
                    handle.write(json.dumps({JOURNAL_HEADER: 1, "fingerprint": self.fingerprint}) + "\n")
                    for row in before.values():
                        handle.write(json.dumps(row, default=_json_value) + "\n")
                # Held open across appends (one per batch) and closed by finish().
                self._handle = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
            for row in rows:
                self._handle.write(json.dumps(row, default=_json_value) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as error:
            self.rows = before  # not saved: a failed write must not report these rows as done
            raise error if isinstance(error, OutputWriteError) else write_error(self.journal_path, error) from None

    def close(self) -> None:
        """Stop appending and leave the journal where it is, for a later ``resume=True``."""
        self._finished = True
        if self._handle is not None:
            with contextlib.suppress(OSError):  # a full disk: the lines synced before are what counts
                self._handle.close()
            self._handle = None

    def release(self) -> None:
        """Let another run write this output (the journal stays, for a later ``resume=True``)."""
        self.close()
        self._lock.release()

    def write_out(self, order: Sequence[str] = ()) -> None:
        """Write every row to ``out`` (those named in ``order`` first, in that order); the journal stays."""
        if self.out is not None:
            position = {key: index for index, key in enumerate(order)}
            rows = sorted(self.rows.values(), key=lambda row: position.get(str(row.get(self.key)), len(position)))
            write_table(rows, self.out, self.columns)

    def finish(self, order: Sequence[str] = ()) -> int:
        """Write every row to ``out`` (those named in ``order`` first, in that order), remove the journal;
        returns the count of rows."""
        self.close()
        try:
            self.write_out(order)  # a failure keeps the journal: --resume writes out from it later
            with contextlib.suppress(FileNotFoundError):
                self.journal_path.unlink()
        finally:
            self._lock.release()
        return len(self.rows)


#: The key of a journal's first line, which records the run that wrote it.
JOURNAL_HEADER = "realness_journal"


def _read_journal(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A journal's header (None when its first line is none) and its rows."""
    rows = _read_json_lines(path)
    header = rows.pop(0) if rows and JOURNAL_HEADER in rows[0] else None
    return header, rows


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # the line a killed run was writing
        if isinstance(row, dict):
            rows.append(row)
    return rows


# --- reading ------------------------------------------------------------------------------


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


def normalize_key(key: str) -> str:
    """A path as a table key: forward slashes, no ``./`` or ``a/../``, no surrounding spaces, Unicode NFC.

    NFC because the same accented name is one code point in a spreadsheet typed on one
    system and a letter plus a combining accent in a file name written by another (macOS).
    """
    key = unicodedata.normalize("NFC", key.strip().replace("\\", "/"))
    return posixpath.normpath(key) if key else key


@dataclass
class DescriptionMatch:
    """Descriptions lined up with images.

    Attributes:
        texts: one description per image (None where there was none).
        missing: images the table has no row for.
        ambiguous: images whose only match was a bare file name several images share (or a
            row several different images matched): they get no description rather than a
            possibly wrong one.
        unused: table rows that matched no image.
        source: the table, for messages.
    """

    texts: list[str | None]
    missing: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    source: str = "descriptions"

    def problems(self) -> list[str]:
        """One line per kind of mismatch, naming the first few items and the count."""
        total = len(self.texts)
        lines = []
        if self.missing:
            lines.append(f"{self.source}: no description for {len(self.missing)} of {total} images: {name_list(self.missing)}")
        if self.ambiguous:
            lines.append(
                f"{self.source}: {len(self.ambiguous)} images share a file name its rows cannot tell apart "
                f"(left without a description; write their paths in the table): {name_list(self.ambiguous)}"
            )
        if self.unused:
            lines.append(f"{self.source}: {len(self.unused)} rows match no image: {name_list(self.unused)}")
        return lines

    def require_some(self, flag: str = "descriptions") -> None:
        """Refuse a table none of whose rows matches any image: a wrong table or root, not a few missing texts.

        Raises:
            NothingPairedError: no image got a description and the table has rows; the
                message names examples from both sides.
        """
        if self.unused and not self.ambiguous and all(text is None for text in self.texts):
            raise NothingPairedError(
                f"{flag} {self.source}",
                f"none of its {len(self.unused)} rows matches any of the {len(self.texts)} images "
                f"(rows: {name_list(self.unused, 3)}; images: {name_list(self.missing, 3)}); "
                "write the images' paths as given, or relative to --descriptions-root",
            )

    def warn(self) -> None:
        """Issue :meth:`problems` as :class:`DescriptionsWarning` warnings."""
        for line in self.problems():
            warnings.warn(line, DescriptionsWarning, stacklevel=3)


class DescriptionTable:
    """Descriptions keyed by image path, as written in a table or a mapping.

    Keys are paths as the user gave them (``a/img.png``), relative to a root, or bare file
    names (``img.png``, the RAISE-TD layout). See :meth:`match`.

    Args:
        texts: ``{path or file name: description}``.
        source: where they came from, for messages.
        root: the folder relative keys start from besides the current directory (the CSV's folder).
    """

    def __init__(self, texts: Mapping[str, str], *, source: str = "descriptions", root: PathLike | None = None):
        self.texts: dict[str, str] = {}
        for key, text in texts.items():
            self.texts[normalize_key(str(key))] = text
        self.source = source
        self.root = Path(root) if root is not None else None

    def __len__(self) -> int:
        return len(self.texts)

    def match(self, images: Sequence[PathLike], *, roots: Sequence[PathLike] = ()) -> DescriptionMatch:
        """Line the descriptions up with ``images``.

        An image is looked up by its path as given, then by its path relative to each root
        (``roots``, then the table's own folder, then the current directory), then, only for
        rows that hold a bare file name, by its file name when no other image in ``images``
        has that name. A row that would serve two different images serves neither.

        Args:
            images: image paths, as the user gave them.
            roots: folders relative keys may start from (e.g. the folders the user scanned).

        Returns:
            The :class:`DescriptionMatch`; nothing is warned here (see :meth:`DescriptionMatch.warn`).
        """
        all_roots = [Path(r) for r in roots] + ([self.root] if self.root is not None else []) + [Path.cwd()]
        base_names: dict[str, set[str]] = {}  # the distinct files (one given twice is one) per file name
        for image in images:
            base_names.setdefault(normalize_key(Path(image).name), set()).add(os.path.abspath(image))
        chosen: list[str | None] = []
        ambiguous_names: set[int] = set()
        for index, image in enumerate(images):
            key = self._path_key(Path(image), all_roots)
            if key is None:
                name = normalize_key(Path(image).name)
                if name in self.texts:
                    if len(base_names[name]) == 1:
                        key = name
                    else:
                        ambiguous_names.add(index)
            chosen.append(key)
        # One row, one image: a key two different files resolved to is not trusted for either.
        owners: dict[str, set[str]] = {}
        for image, key in zip(images, chosen):
            if key is not None:
                owners.setdefault(key, set()).add(os.path.abspath(image))
        shared = {key for key, files in owners.items() if len(files) > 1}
        texts: list[str | None] = []
        missing, ambiguous = [], []
        for index, (image, key) in enumerate(zip(images, chosen)):
            if key is not None and key not in shared:
                texts.append(self.texts[key])
            else:
                texts.append(None)
                (ambiguous if index in ambiguous_names or key in shared else missing).append(str(image))
        used = {key for key in chosen if key is not None}
        unused = [key for key in self.texts if key not in used]
        return DescriptionMatch(texts, missing, ambiguous, unused, self.source)

    def _path_key(self, image: Path, roots: Sequence[Path]) -> str | None:
        absolute = os.path.abspath(image)
        candidates = [str(image), absolute] + [os.path.relpath(absolute, os.path.abspath(root)) for root in roots]
        for candidate in candidates:
            key = normalize_key(candidate)
            if key in self.texts:
                return key
        return None


def _cell(value: Any) -> str:
    """A table cell as text: None (an empty JSON or Parquet value) is ""."""
    return "" if value is None else str(value)


def read_descriptions(path: PathLike, *, root: PathLike | None = None) -> DescriptionTable:
    """Read a descriptions table (``path``/``filename``/``image``/``file``/``name`` and ``description``/``caption``/``text``).

    Other columns (``MOS``) are ignored; empty descriptions are skipped. Line breaks inside a
    description are read as ``\n`` whatever the file's line endings (CRLF from a spreadsheet),
    and an image listed twice with the same description is used once, with a
    :class:`~realness.errors.DescriptionsWarning` naming it and its lines.

    Args:
        path: the CSV file.
        root: the folder its relative paths start from (default: the CSV's own folder,
            tried after the current directory).

    Raises:
        TableError: unreadable file, no image or description column (the message lists the
            columns found), or one image listed twice with different descriptions.
    """
    table = read_table(path)
    name_column = table.column(IMAGE_COLUMN_ALIASES, purpose="image")
    text_column = table.column(DESCRIPTION_COLUMN_ALIASES, purpose="description")
    texts: dict[str, str] = {}
    lines_of: dict[str, list[int]] = {}
    conflicts: set[str] = set()
    for line, row in zip(table.lines, table.rows):
        key = normalize_key(unescape_undecodable(_cell(row[name_column])))
        text = _cell(row[text_column]).replace("\r\n", "\n").replace("\r", "\n").strip()
        if not key or not text:
            continue
        if key in texts and texts[key] != text:
            conflicts.add(key)
        texts.setdefault(key, text)
        lines_of.setdefault(key, []).append(line)

    def listed(keys: Iterable[str]) -> str:
        return name_list([f"{key} (lines {', '.join(map(str, lines_of[key]))})" for key in keys])

    if conflicts:
        raise TableError(
            f"{table.path}: {len(conflicts)} images are listed more than once with different descriptions: "
            f"{listed(key for key in lines_of if key in conflicts)}; keep one row per image"
        )
    repeated = [key for key, lines in lines_of.items() if len(lines) > 1]
    if repeated:
        warnings.warn(
            f"{table.path}: {len(repeated)} images are listed more than once with the same description "
            f"(used once): {listed(repeated)}",
            DescriptionsWarning,
            stacklevel=2,
        )
    return DescriptionTable(texts, source=str(table.path), root=root if root is not None else table.path.parent)

