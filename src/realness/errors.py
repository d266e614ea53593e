"""Exceptions raised by realness, and the record of an item a batch skipped.

Every error names the offending item (a path, or ``"item 3 (ndarray)"``) and the
reason, so a user can fix the one bad file in a batch of thousands.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass


class RealnessError(Exception):
    """Base class of every error raised by realness."""


class InvalidImageError(RealnessError, ValueError):
    """An image input that cannot be used: missing, corrupt, wrong shape or range."""

    def __init__(self, item: str, reason: str):
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


class WeightsNotFoundError(RealnessError, FileNotFoundError):
    """Model weights are neither local, installed, cached, nor downloadable."""


class ChecksumError(RealnessError):
    """A weight file's sha256 differs from the pinned value; the file is refused."""


class MissingDependencyError(RealnessError, ImportError):
    """An optional backend is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        self.package = package
        self.extra = extra
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package} is needed{what} but is not installed: pip install 'realness[{extra}]'"
        )


class DescriberError(RealnessError):
    """A describer could not produce a usable description for one item."""

    def __init__(self, item: str, reason: str):
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


class UntrainedModelError(RealnessError):
    """The weights hold an untrained head: its scores would be noise."""


class DatasetError(RealnessError, ValueError):
    """A dataset's files are malformed or disagree with each other (the message says where)."""


class DatasetNotFoundError(RealnessError, FileNotFoundError):
    """A dataset, or a file it lists, is not on disk; the message says how to obtain it."""


class StatsInputError(RealnessError, ValueError):
    """Predictions and MOS that cannot be compared: mismatched lengths or too few valid pairs."""


class UsageError(RealnessError, ValueError):
    """A caller's mistake in an argument (not in the data): a bad option, name or pairing.

    Attributes:
        item: What was wrong (an argument, a name, a file).
        reason: Why, and what to do instead.
    """

    def __init__(self, item: str, reason: str):
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


class DeviceError(UsageError):
    """A device that does not exist here (``cuda`` on a CPU-only torch, ``cuda:3`` on one GPU)."""


class UnknownNameError(UsageError):
    """A model or describer name no registry entry accepts; the message lists the forms that work."""


class DescriptionsError(UsageError):
    """Descriptions that do not fit the images: wrong count, wrong type, or missing where one is needed."""


class NothingPairedError(UsageError):
    """A paired comparison where no item of one side has a partner on the other."""


class TableError(RealnessError, ValueError):
    """A table that cannot be read or written as asked; the message names the file."""


class OutputError(RealnessError, ValueError):
    """An output path that would destroy an input or cannot be written; refused before any work."""


class OutputWriteError(RealnessError, OSError):
    """An output that could not be written after the work was done (disk full, permission, immutable); names the file and why."""


class OutputBusyError(OutputError):
    """An output another run is writing at this moment; the message names that run (pid, start time)."""


class BrokenDependencyError(RealnessError, ImportError):
    """An installed package fails to import and takes a needed one down with it; the message says which and what to do."""


class CacheError(RealnessError):
    """The description cache file cannot be used; the message names it and what to do."""


class ExportError(RealnessError, ValueError):
    """An export that would have to replace files it did not create; refused before placing any."""


class RealnessWarning(UserWarning):
    """Base class of every warning realness gives (the CLI prints them as one line, without a source path)."""


class ImageOnlyWarning(RealnessWarning):
    """Images are scored without a description (image-only), which agrees less with people."""


class SlowConfigurationWarning(RealnessWarning):
    """A configuration that will take minutes per image on this device; the message says what makes it faster."""


class UnpairedItemsWarning(RealnessWarning):
    """A paired comparison found items without a partner in another model's folder; they are left out."""


class TableWarning(RealnessWarning):
    """A table read with cells it had to leave out (a row longer than the header); the message names the lines."""


class DescriptionsWarning(RealnessWarning):
    """Descriptions that did not line up with the images (missing, unused or ambiguous rows)."""


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first frame outside realness: the user's line that called it.

    A fixed ``stacklevel`` is right for one call path only; the scorer reaches the same warning
    through generators and helpers at different depths.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "realness":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


@dataclass(frozen=True)
class SkippedItem:
    """One item a batch left out under ``on_error="skip"``: where it was and why."""

    index: int
    item: str
    reason: str

    def __str__(self) -> str:
        return f"[{self.index}] {self.item}: {self.reason}"


def check_on_error(on_error: str) -> None:
    """Validate the ``on_error`` argument shared by every batched entry point."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
