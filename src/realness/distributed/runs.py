"""The bookkeeping of one distributed run: its summary, stall limit, progress bars, and the blocks streamed into its output."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from realness.errors import RealnessError

#: Seconds a stage may go without moving a block before the run fails naming it. Model
#: loading in new actors counts as no progress, so this is generous.
DEFAULT_STALL_TIMEOUT_S = 600.0

@dataclass
class RunSummary:
    """What one run did (the CLI prints it).

    Attributes:
        stage: ``score`` or ``describe``.
        out: the output folder.
        written: rows written this run.
        failed: of those, rows with an error.
        already_done: inputs skipped because the output held them.
        set_aside: files moved aside as unreadable (their rows were redone).
        cached: (describe) rows answered without a request: from earlier runs, the sqlite
            cache, or a copy of an image described this run.
        seconds: wall time of the run, Ray start-up included.
        startup_seconds: time to connect to or start Ray.
    """

    stage: str
    out: str
    written: int = 0
    failed: int = 0
    already_done: int = 0
    set_aside: list = field(default_factory=list)
    cached: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        """Rows written per second of the run after Ray start-up."""
        busy = self.seconds - self.startup_seconds
        return self.written / busy if busy > 0 else 0.0

    def __str__(self) -> str:
        verb = "scored" if self.stage == "score" else "described"
        done = self.written - self.failed
        extra = f" ({self.cached} without a request)" if self.cached else ""
        aside = f", {len(self.set_aside)} damaged files set aside and redone" if self.set_aside else ""
        return (
            f"{done} {verb}{extra}, {self.failed} failed, {self.already_done} already in {self.out}{aside}; "
            f"{self.images_per_second:.2f} images/s ({self.seconds:.1f} s, Ray start-up {self.startup_seconds:.1f} s)"
        )


def configured(dataset, stall_timeout: float | None, progress: bool):
    """``dataset`` with this run's stall limit and progress bars, set on its own context (not Ray's global one)."""
    if stall_timeout is None:
        # An explicit RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S wins; Ray's own default is 30 minutes.
        stall_timeout = float(os.environ.get("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", DEFAULT_STALL_TIMEOUT_S))
    dataset.context.execution_no_progress_timeout_s = stall_timeout
    dataset.context.enable_progress_bars = progress
    return dataset


def stream_into(dataset, output, stage: str, summary: RunSummary, on_table=None) -> None:
    """Pull the finished blocks of ``dataset`` and write each as one atomic file."""
    with naming_stalls(stage):
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            if table.num_rows == 0:
                continue
            if on_table is not None:
                table = on_table(table)
            output.write(table)
            succeeded = table.column("error").null_count
            summary.written += table.num_rows
            summary.failed += table.num_rows - succeeded


@contextlib.contextmanager
def naming_stalls(stage: str) -> Iterator[None]:
    """Turn Ray Data's no-progress error into a one-line :class:`RealnessError` naming ``stage``."""
    try:
        yield
    except Exception as error:
        message = str(error)
        if "made no progress" not in message:
            raise
        first = next(line for line in message.splitlines() if "made no progress" in line).strip()
        raise RealnessError(
            f"the {stage} stage stalled: {first} (the stages still running are in the log above; raise "
            "the limit with RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S)"
        ) from error


def rows_dataset(rows: list[dict], batch_size: int):
    """A Ray dataset of ``rows``, about one batch per block."""
    import ray.data  # optional: the ray extra (require_ray has already named it when missing)

    # About one batch per block: a single block would leave every actor but one idle.
    blocks = max(1, math.ceil(len(rows) / batch_size))
    return ray.data.from_items(rows, override_num_blocks=blocks)


def keep_undone(dataset, path_column: str, done: set, batch_size: int):
    """``dataset`` without the rows whose path is in ``done``, one batch per block."""
    if done:
        from ray.data.expressions import col  # optional: the ray extra

        dataset = dataset.filter(expr=col(path_column).not_in(sorted(done)))
    return dataset.repartition(target_num_rows_per_block=batch_size)
