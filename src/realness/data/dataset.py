"""The record every dataset reader returns: rated images with optional descriptions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realness.errors import DatasetError, DatasetNotFoundError

# The dataset errors live in realness.errors with every other exception; the readers import them from here.
__all__ = ["DatasetError", "DatasetNotFoundError", "RatedImages", "Sample", "check_images_exist"]


@dataclass(frozen=True)
class Sample:
    """One rated image.

    Attributes:
        image_path: where the image file is.
        mos: its mean opinion score (higher = better / more real, in the dataset's units).
        description: a text about the image (RAISE-TD: what looks unrealistic), or None.
        name: a short identifier, usually the file name as the dataset lists it.
    """

    image_path: Path
    mos: float
    description: str | None
    name: str


class RatedImages(Sequence[Sample]):
    """An ordered collection of :class:`Sample` with column-wise views.

    Args:
        samples: the samples, in dataset order.
        name: what the collection is (e.g. ``"raise-td/train"``), used in messages and reports.
    """

    def __init__(self, samples: Sequence[Sample], *, name: str = "dataset"):
        self.samples: tuple[Sample, ...] = tuple(samples)
        self.name = name

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("use subset(indices) to take part of a dataset")
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return f"RatedImages(name={self.name!r}, n={len(self)})"

    @property
    def paths(self) -> list[Path]:
        """Image paths, in order."""
        return [sample.image_path for sample in self.samples]

    @property
    def mos(self) -> np.ndarray:
        """Mean opinion scores as a float64 array, in order."""
        return np.array([sample.mos for sample in self.samples], dtype=np.float64)

    @property
    def descriptions(self) -> list[str | None]:
        """Descriptions (None where an image has none), in order."""
        return [sample.description for sample in self.samples]

    @property
    def names(self) -> list[str]:
        """Sample names, in order."""
        return [sample.name for sample in self.samples]

    def subset(self, indices: Sequence[int] | np.ndarray, *, name: str | None = None) -> RatedImages:
        """The samples at ``indices``, in that order.

        Args:
            indices: positions into this collection (e.g. from :func:`realness.data.kfold`).
            name: name of the subset (default: this name).

        Returns:
            A new :class:`RatedImages`.

        Raises:
            IndexError: an index is out of range.
        """
        return RatedImages([self.samples[int(index)] for index in indices], name=name or self.name)


def check_images_exist(samples: Sequence[Sample], *, dataset: str, how_to_obtain: str) -> None:
    """Raise when any listed image file is missing, naming the first few.

    Args:
        samples: the samples to check.
        dataset: the dataset's name, for the message.
        how_to_obtain: a sentence telling the user how to get the files.

    Raises:
        DatasetNotFoundError: one or more image files do not exist.
    """
    missing = [sample.image_path for sample in samples if not sample.image_path.is_file()]
    if missing:
        shown = ", ".join(str(path) for path in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetNotFoundError(
            f"{dataset}: {len(missing)} of {len(samples)} listed images are missing: {shown}{more}. {how_to_obtain}"
        )
