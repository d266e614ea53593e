"""Exceptions raised by realness, and the record of an item a batch skipped.

Every error names the offending item (a path, or ``"item 3 (ndarray)"``) and the
reason, so a user can fix the one bad file in a batch of thousands.
"""

from __future__ import annotations

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
