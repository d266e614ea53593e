"""Resumable row files: rows journaled as they are produced, so an interrupted run keeps what it finished."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

from platformdirs import user_cache_dir

from realness.errors import OutputWriteError, TableError
from realness.io.atomic import atomic_output, write_error, write_text_atomic
from realness.io.files import sha256_file
from realness.io.locks import OutputLock
from realness.io.tables import json_value, read_table, write_table

PathLike = Union[str, "os.PathLike[str]"]


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
    wrote them), unless ``out`` is a table this class finished: :meth:`finish` leaves a run
    record keyed by the table's sha256 (in the user's cache folder, never beside ``out``), and
    ``resume`` by the same run finds ``out`` complete without reading a row. While the journal is open, ``<out>.lock`` keeps a second run off the same
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
        finished: ``resume`` found ``out`` finished by this same run: the record of that run
            (``rows``, ``failed``), whose rows are not read; else None.

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
        outside_journal = resume and not self.rows and self.out is not None and self.out.exists()
        self.finished = finished_run_record(self.out, fingerprint) if outside_journal else None
        self.untrusted_out = outside_journal and self.finished is None
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
        check_leftover_run(self.journal_path, header, resume=resume, fingerprint=self.fingerprint)
        return {str(row.get(self.key)): row for row in rows}

    def adopt_out(self) -> None:
        """Take the rows of the :attr:`finished` ``out`` as this run's (to redo some of them)."""
        self.rows = {str(row.get(self.key)): row for row in read_table(self.out).rows}
        self.finished = None

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
                        handle.write(json.dumps(row, default=json_value) + "\n")
                # Held open across appends (one per batch) and closed by finish().
                self._handle = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
            for row in rows:
                self._handle.write(json.dumps(row, default=json_value) + "\n")
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
            if self.finished is not None and not self.rows:
                return self.finished["rows"]  # out is that run's whole table already
            self.write_out(order)  # a failure keeps the journal: --resume writes out from it later
            if self.out is not None:
                _save_run_record(self.out, self.fingerprint, rows=len(self.rows), failed=self.failed())
            with contextlib.suppress(FileNotFoundError):
                self.journal_path.unlink()
        finally:
            self._lock.release()
        return len(self.rows)


def check_leftover_run(path: Path, header: Mapping[str, Any] | None, *, resume: bool, fingerprint: str | None) -> None:
    """Refuse the rows an unfinished run left at ``path`` unless ``resume`` and the same run (``header``'s
    fingerprint) asks for them: a journal here, a ``--engine ray`` output folder in ``realness.cli.resumable``.

    Raises:
        TableError: without ``resume``, or the rows were saved by a different run.
    """
    if not resume:
        raise TableError(f"{path}: left by an interrupted run; add --resume to continue it, or delete it to start over")
    if header is None or header.get("fingerprint") != fingerprint:
        raise TableError(
            f"{path}: saved by a different run (other images, model or settings), so its rows are "
            "not this run's; run the command that wrote it with --resume, or delete it to start over"
        )


#: The key of a journal's first line, which records the run that wrote it.
JOURNAL_HEADER = "realness_journal"


def run_records_folder() -> Path:
    """Where the records of finished tables are kept: one small JSON file per table, named by its sha256."""
    return Path(user_cache_dir("realness")) / "finished-tables"


def finished_run_record(out: Path, fingerprint: str | None) -> dict[str, Any] | None:
    """The record of the run that finished ``out`` as it is now, if that run had ``fingerprint``; else None.

    Costs one streamed hash of ``out`` and no row read, whatever its length.
    """
    if fingerprint is None:
        return None
    try:
        record = json.loads((run_records_folder() / f"{sha256_file(out)}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("fingerprint") == fingerprint else None


def _save_run_record(out: Path, fingerprint: str | None, *, rows: int, failed: int) -> None:
    if fingerprint is None:
        return
    # Best effort: without a record (a read-only cache folder), --resume does the table again, as before.
    with contextlib.suppress(OSError):
        folder = run_records_folder()
        folder.mkdir(parents=True, exist_ok=True)
        record = {"fingerprint": fingerprint, "rows": rows, "failed": failed, "table": str(out.resolve())}
        write_text_atomic(folder / f"{sha256_file(out)}.json", json.dumps(record) + "\n")


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

