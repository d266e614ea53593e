"""Saved progress for the long subcommands (``score``, ``describe``, ``filter``, ``map``).

Each batch's rows are journaled as it finishes (:class:`~realness.io.journal.RowJournal`), so
Ctrl-C stops the run within one batch and keeps every row already done, and ``--resume``
does only the rest. ``score`` and ``describe`` journal the rows of their ``--out`` table:
interrupted, ``--out`` holds the rows done so far. ``filter`` journals the scores it ranks
and ``map`` the maps it wrote: their outputs need the whole run, so interrupted, the
journal (``<out>.partial``, ``DIR/maps.partial``) keeps the work until ``--resume``.

The journal records the run's :func:`run_fingerprint`: ``--resume`` keeps its rows only for
the same images, model and settings, and never keeps rows a table holds without a journal,
except a table the same run finished (its run record, see :class:`RowJournal`): then
``--resume`` has nothing to do and says so, without loading the model.

``--engine ray`` writes a folder of Parquet files instead of a table; :func:`ray_output_run`
gives it the same guarantees through the same pieces: the ``<out>.lock`` of
:class:`~realness.io.locks.OutputLock`, the :func:`run_fingerprint`, and the refusals of
:func:`~realness.io.journal.check_leftover_run`, with the run record kept in the folder
(:data:`RAY_RUN_RECORD`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from realness import __version__
from realness.errors import OutputWriteError, UsageError
from realness.io.atomic import write_text_atomic
from realness.io.journal import RowJournal, check_leftover_run
from realness.io.locks import OutputLock
from realness.io.tables import write_csv_rows


def add_resume_argument(parser, *, what: str) -> None:
    """``--resume``: continue the run an earlier (interrupted) one left in ``--out``."""
    parser.add_argument(
        "--resume", action="store_true",
        help=f"keep {what} already done by an earlier or interrupted run into the same --out, and do only the rest",
    )


def check_resume(args, *, needs: str = "--out, the file to continue") -> None:
    """Refuse ``--resume`` without ``--out``: progress is saved only beside an output.

    Raises:
        realness.errors.UsageError: ``--resume`` without ``--out``.
    """
    if getattr(args, "resume", False) and not args.out:
        raise UsageError("--resume", f"needs {needs}")


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Hold off Ctrl-C: a second one must not cut the final write short."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: no handler to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class ResumableRun:
    """One run over named items whose rows (keyed by ``path``) are saved batch by batch.

    Use it as a context manager around the work loop. Ctrl-C inside the loop ends it (the
    ``with`` block swallows the ``KeyboardInterrupt`` and sets :attr:`interrupted`); any
    other error propagates after the rows done are saved.

    Args:
        command: the subcommand, for messages.
        names: every item's key (the journal's first column), in output order.
        journal: where the rows go; None keeps them in memory for this run only.
        stdout_columns: without a journal, also print the rows as CSV with these columns on
            stdout as they come, so a pipe sees each batch at once (``score``, ``describe``).
        retry_failed: a kept row with an ``error`` is done again (``describe``: a server's
            failure is often passing, a corrupt file's is not).

    Attributes:
        todo: positions in ``names`` of the items still to do.
        kept: how many items were already done (by an earlier run).
        finished_before: the record of the same run having finished ``--out`` whole (rows,
            failed), or None.
        interrupted: Ctrl-C ended the loop.
    """

    def __init__(
        self,
        command: str,
        names: Sequence[str],
        journal: RowJournal | None,
        stdout_columns: Sequence[str] | None = None,
        *,
        retry_failed: bool = False,
    ):
        self.command = command
        self.names = [str(name) for name in names]
        self.journal = journal
        self.stdout_columns = stdout_columns
        finished = journal.finished if journal is not None else None
        if finished is not None and retry_failed and finished["failed"]:
            journal.adopt_out()  # a finished table whose failed rows are done again
            finished = None
        #: The same run already finished --out: nothing to do, and its rows are never read.
        self.finished_before = finished
        done = set(self.names) if finished is not None else journal.done() if journal is not None else set()
        self._done_before = {key for key in done if not (retry_failed and journal.rows[key].get("error"))}
        if journal is not None and journal.untrusted_out:
            print(
                f"realness {command}: --resume: {journal.out} has no journal ({journal.journal_path.name}) proving its "
                f"rows are this run's; doing all {len(self.names)} again",
                file=sys.stderr,
            )
        self.todo = [index for index, name in enumerate(self.names) if name not in self._done_before]
        self.kept = len(self.names) - len(self.todo)
        self.interrupted = False
        self._unjournaled: dict[str, dict] = {}

    def save(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Make one batch's rows durable (or print them) before the next batch starts."""
        if self.journal is not None:
            self.journal.append(rows)
            return
        if self.stdout_columns is not None:
            write_csv_rows(sys.stdout, rows, self.stdout_columns, header=not self._unjournaled)
            sys.stdout.flush()
        self._unjournaled.update((str(row["path"]), dict(row)) for row in rows)

    def new_rows(self) -> list[dict]:
        """The rows this run added (counted from the journal: a row saved just as Ctrl-C came counts)."""
        if self.journal is None:
            return list(self._unjournaled.values())
        return [row for key, row in self.journal.rows.items() if key not in self._done_before]

    def any_failed(self) -> bool:
        """Whether any row of the whole table (kept or new) holds an ``error``."""
        if self.finished_before is not None:
            return bool(self.finished_before["failed"]) or any(row.get("error") for row in self.new_rows())
        return any(row.get("error") for row in self.all_rows())

    def all_rows(self) -> list[dict]:
        """Every row: kept from earlier runs and added by this one, in the order of :attr:`names`."""
        rows = self.journal.rows if self.journal is not None else self._unjournaled
        return [rows[name] for name in self.names if name in rows]

    def __enter__(self) -> ResumableRun:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.interrupted = kind is not None and issubclass(kind, KeyboardInterrupt)
        if self.journal is not None:
            with sigint_ignored():
                self._settle(stopped=kind is not None)
        return self.interrupted

    def _settle(self, *, stopped: bool) -> None:
        journal = self.journal
        if stopped:
            if self.new_rows() and journal.out is not None:
                # --out shows the rows done so far; the journal stays, proving them this run's for --resume.
                with contextlib.suppress(OutputWriteError):  # a full disk: the journal still holds them
                    journal.write_out(order=self.names)
            # Nothing new: --out and any leftover journal stay exactly as they were.
            journal.release()
        elif journal.out is None:
            # The command makes its outputs from the whole run; the journal holds the work till then.
            journal.close()
        else:
            journal.finish(order=self.names)

    def complete(self) -> None:
        """The command has written its own outputs from the rows: the journal is no longer needed."""
        if self.journal is not None and self.journal.out is None:
            self.journal.finish()

    def interrupted_line(self, summary: str) -> str:
        """The line that reports an interrupted run: what was done, where it is kept, how to go on."""
        kept = f", {self.kept} already there" if self.kept else ""
        if self.journal is None:
            return f"realness {self.command}: interrupted after {summary} of {len(self.todo)}{kept}"
        if not self.new_rows():
            where = "nothing new to keep; everything was left as it was"
        elif self.journal.out is not None:
            where = f"kept in {self.journal.out}"
        else:
            where = f"kept in {self.journal.journal_path}"
        return (
            f"realness {self.command}: interrupted after {summary} of {len(self.todo)}{kept}; {where}; "
            "run it again with --resume to finish"
        )


def journal_for(
    out: str | Path | None,
    columns: Sequence[str],
    args,
    *,
    names: Sequence[str],
    table: bool = True,
    journal: Path | None = None,
):
    """The :class:`RowJournal` of a run writing ``out`` (None without ``--out``).

    Args:
        names: the run's inputs, as given (with ``args``, they make its :func:`run_fingerprint`).
        table: ``out`` is the journal's own table (``score``, ``describe``); else the rows
            only live in the journal (``journal``, default ``<out>.partial``).
    """
    if not out:
        return None
    fingerprint = run_fingerprint(args, names)
    if table:
        return RowJournal(out, columns, resume=args.resume, fingerprint=fingerprint)
    return RowJournal(None, columns, resume=args.resume, journal=journal or Path(f"{out}.partial"), fingerprint=fingerprint)


#: The record a ``--engine ray`` output folder keeps of the run writing it: its fingerprint, and
#: whether it finished. Parquet readers skip names starting with ``_``.
RAY_RUN_RECORD = "_realness_run.json"


@contextlib.contextmanager
def ray_output_run(command: str, args, folder: str | Path, *, names: Sequence[str]) -> Iterator[None]:
    """Hold ``--out`` for a ``--engine ray`` run writing the Parquet ``folder``, as a journal holds a table.

    The same ``<out>.lock`` as the local engine's keeps a second run (either engine) off
    ``--out``. A folder an unfinished run left is continued only under ``--resume`` by the same
    run (:func:`run_fingerprint` of ``args`` and ``names``), else refused as a leftover journal is.
    A finished folder is continued by ``--resume`` of the same run (nothing left to do) and
    otherwise started over, as the local engine rewrites its table. A folder without a record
    (written through the Python API) is continued under ``--resume``, as before.

    Raises:
        realness.errors.OutputBusyError: another run is writing ``--out``.
        realness.errors.TableError: an unfinished run's folder, without ``--resume`` or by another run.
    """
    folder = Path(folder)
    lock = OutputLock(Path(f"{args.out}.lock"), args.out).acquire()
    try:
        fingerprint = run_fingerprint(args, names)
        record_path = folder / RAY_RUN_RECORD
        parts = [p for p in folder.glob("*.parquet") if p.is_file() and not p.name.startswith(("_", "."))] if folder.is_dir() else []
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if parts and not (record is None and args.resume):
            if record is None or not record.get("finished"):
                check_leftover_run(folder, record, resume=args.resume, fingerprint=fingerprint)
            elif not (args.resume and record.get("fingerprint") == fingerprint):
                if args.resume:
                    print(f"realness {command}: --resume: {folder} was finished by a different run (other images, "
                          "model or settings), so its rows are not this run's; doing them all again", file=sys.stderr)
                for part in parts:
                    part.unlink()
        if folder.exists() and not folder.is_dir():
            yield  # ParquetOutput refuses a file with its own message
            return
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(record_path, json.dumps({"fingerprint": fingerprint, "finished": False}) + "\n")
        yield
        write_text_atomic(record_path, json.dumps({"fingerprint": fingerprint, "finished": True}) + "\n")
    finally:
        lock.release()


#: Options that change how a run goes, not what its rows say: a resumed run may change them.
NOT_IN_FINGERPRINT = frozenset({
    "run", "paths", "out", "resume", "no_progress", "quiet", "batch_size", "device", "engine", "ray_address",
    "actors", "cpus_per_actor", "retry_failed", "requests_per_minute", "concurrency", "timeout", "max_retries",
    "budget", "description_cache", "no_description_cache", "min_score", "top_k", "all", "export", "mode",
    "confident", "report", "report_maps",  # filter: how the scores are ranked and shown, not the scores
})


def run_fingerprint(args, names: Sequence[str]) -> str:
    """What a run's rows depend on, hashed: the command, each input file and every option that changes a row.

    An input counts by path, size and modification time (a rewritten image is another
    input); an option naming a file or folder (``--descriptions``, a ``--model`` directory)
    counts by its files the same way. Options of :data:`NOT_IN_FINGERPRINT` (progress,
    devices, batch sizes, ranking) do not count: a resumed run may change them.
    """
    settings = {
        name: _identity(value) if isinstance(value, str) and os.path.exists(value) else value
        for name, value in sorted(vars(args).items())
        if name not in NOT_IN_FINGERPRINT and not callable(value)
    }
    record = {"version": __version__, "settings": settings, "inputs": [_identity(name) for name in names]}
    text = json.dumps(record, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _identity(path: str) -> list:
    """A file as ``[path, size, mtime_ns]``; a folder as its files', one level down."""
    try:
        status = os.stat(path)
    except OSError:
        return [path, None, None]
    if os.path.isdir(path):
        with contextlib.suppress(OSError):
            return [path, [_identity(os.path.join(path, name)) for name in sorted(os.listdir(path))
                           if os.path.isfile(os.path.join(path, name))]]
    return [path, status.st_size, status.st_mtime_ns]
