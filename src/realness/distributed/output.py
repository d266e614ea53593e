"""A resumable output folder of Parquet files, each written atomically.

Ray's own ``write_parquet`` writes files in place, so a killed job can leave a truncated
file that makes the whole folder unreadable. Here the driver writes every finished block
as its own file, through a temporary name and a rename (:func:`realness.io.atomic.atomic_output`),
so a file either is complete or does not exist. A re-run over the same folder:

* deletes temporary files a killed run left behind,
* reads every file's footer and key column, and moves any file that fails (truncated,
  damaged, or written by something else) into ``_set_aside/`` with a warning, so its rows
  are redone rather than the run failing or trusting half a file,
* and skips every key (``path``) already written; with ``retry_failed`` it first drops the
  rows that failed, so those inputs are tried again.

File and folder names starting with ``_`` or ``.`` are ignored by Parquet readers
(``pyarrow.dataset``, Spark, Ray), so the output folder reads back as one table.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from realness.errors import OutputError
from realness.io.atomic import atomic_output

# pyarrow is optional (the ray extra): the methods that read or write Parquet import it.
if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Where files that fail their check are moved, inside the output folder.
SET_ASIDE_DIR = "_set_aside"


@dataclass
class ResumeState:
    """What an output folder already holds.

    Attributes:
        done: keys (paths) with a row already written.
        files: the valid Parquet files found.
        set_aside: files moved to ``_set_aside/``, with the reason.
        retried: keys whose failed rows were dropped to be tried again (``retry_failed``).
    """

    done: set = field(default_factory=set)
    files: list = field(default_factory=list)
    set_aside: list = field(default_factory=list)
    retried: list = field(default_factory=list)


class ParquetOutput:
    """A folder of Parquet part files with one schema, written batch by batch.

    Args:
        directory: the output folder (created if missing). An existing plain file there is refused.
        schema: the ``pyarrow.Schema`` every file has (see :mod:`realness.distributed.schema`).
        key: the column that identifies an input (``path``).
    """

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema, *, key: str = "path"):
        self.directory = Path(directory)
        self.schema = schema
        self.key = key
        if self.directory.exists() and not self.directory.is_dir():
            raise OutputError(
                f"{self.directory}: is a file; the ray engine writes a folder of Parquet files, give a new "
                "or existing folder (e.g. scores.parquet/)"
            )
        self._run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._sequence = 0

    def part_files(self) -> list[Path]:
        """The part files a reader would see (not hidden, not set aside), sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.parquet") if p.is_file() and not p.name.startswith(("_", ".")))

    def resume(self, *, retry_failed: bool = False) -> ResumeState:
        """Check what the folder holds; set aside bad files; optionally drop failed rows.

        Args:
            retry_failed: remove rows whose ``error`` is set (rewriting their files
                atomically), so those inputs are processed again.

        Returns:
            The :class:`ResumeState`.

        Raises:
            OutputError: a file holds a different table (other columns): the folder belongs
                to another command or model output; nothing is moved.
        """
        import pyarrow.parquet as pq

        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)  # a killed run's unfinished write: never a whole file
        state = ResumeState()
        for path in self.part_files():
            try:
                parquet = pq.ParquetFile(path)
                names = parquet.schema_arrow.names
                if names != self.schema.names:
                    raise OutputError(
                        f"{path}: has columns {', '.join(names)}, not this output's {', '.join(self.schema.names)}; "
                        "use another output folder"
                    )
                table = parquet.read(columns=[self.key, "error"])
            except OutputError:
                raise
            except Exception as error:  # pyarrow raises ArrowInvalid, OSError... for damaged files
                state.set_aside.append((path, f"{type(error).__name__}: {error}"))
                self._set_aside(path, error)
                continue
            keys = table.column(self.key).to_pylist()
            errors = table.column("error").to_pylist()
            failed = [key for key, error in zip(keys, errors) if error is not None]
            if retry_failed and failed:
                self._drop_failed_rows(path)
                state.retried.extend(failed)
                keys = [key for key, error in zip(keys, errors) if error is None]
                if not keys:
                    continue
            state.files.append(path)
            state.done.update(keys)
        return state

    def _set_aside(self, path: Path, error: Exception) -> None:
        target = self.directory / SET_ASIDE_DIR / path.name
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(path), str(target))
        warnings.warn(
            f"{path}: unreadable Parquet file ({type(error).__name__}: {error}); moved to {target}, its rows "
            "will be redone",
            UserWarning,
            stacklevel=3,
        )

    def _drop_failed_rows(self, path: Path) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        kept = table.filter(pc.is_null(table.column("error")))
        if kept.num_rows == 0:
            path.unlink()
            return
        with atomic_output(path, "wb") as handle:
            pq.write_table(kept, handle)

    def write(self, table: pa.Table) -> Path:
        """Write one batch as a new part file, atomically.

        Args:
            table: a ``pyarrow.Table`` with exactly this output's schema.

        Returns:
            The file written.
        """
        import pyarrow.parquet as pq

        if not table.schema.equals(self.schema):
            table = table.select(self.schema.names).cast(self.schema)
        self._sequence += 1
        path = self.directory / f"part-{self._run_id}-{self._sequence:06d}.parquet"
        with atomic_output(path, "wb") as handle:
            pq.write_table(table, handle)
        return path

    def read(self) -> pa.Table:
        """Every row written so far, as one ``pyarrow.Table`` with this output's schema."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pq.read_table(path, schema=self.schema) for path in self.part_files()]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()
