"""Rank a folder of images by realness and keep the best: by a minimum score, the top k, or both.

Example:
    >>> from realness.workflows.filtering import filter_images          # doctest: +SKIP
    >>> result = filter_images("generated/", min_score=0.0, top_k=100)  # doctest: +SKIP
    >>> result.write_csv("kept.csv")                                    # doctest: +SKIP
    >>> result.export("kept/", mode="symlink")                          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from realness.core.pretrained import DEFAULT_MODEL
from realness.errors import SkippedItem
from realness.workflows.scoring import ModelLike, as_scorer, optional_float

ExportMode = Literal["copy", "symlink", "hardlink"]
PathsLike = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]
DescriptionsLike = Union[None, str, "os.PathLike[str]", Mapping[str, str]]

CSV_COLUMNS = ("rank", "path", "score", "kept", "verdict", "description", "error")


@dataclass
class RankedImage:
    """One image of a filtered folder.

    Attributes:
        path: the image file.
        score: its realness score (NaN when it could not be scored).
        rank: 1 for the most real image, None when it could not be scored.
        kept: it passed the filter.
        verdict: ``yes`` / ``somewhat`` / ``no`` from its description, or None.
        description: the description the score used, or None (image-only).
        error: why it could not be scored, or None.
    """

    path: Path
    score: float
    rank: Optional[int]
    kept: bool
    verdict: Optional[str] = None
    description: Optional[str] = None
    error: Optional[str] = None

    def to_row(self) -> dict[str, Any]:
        """The image as a CSV row (see :data:`CSV_COLUMNS`)."""
        return {
            "rank": self.rank,
            "path": str(self.path),
            "score": optional_float(self.score),
            "kept": self.kept,
            "verdict": self.verdict,
            "description": self.description,
            "error": self.error,
        }


@dataclass
class FilterResult:
    """Every image ranked best first (unscored ones last), with which ones were kept.

    Attributes:
        images: one entry per input image, in rank order.
        root: the folder all images share; exported files keep their paths relative to it.
        skipped: the images that could not be scored, with the reason.
    """

    images: list[RankedImage]
    root: Path
    skipped: list[SkippedItem] = field(default_factory=list)

    @property
    def kept(self) -> list[RankedImage]:
        """The images that passed the filter, best first."""
        return [image for image in self.images if image.kept]

    def to_rows(self, *, include_rejected: bool = False) -> list[dict[str, Any]]:
        """The kept images (or every image, with ``include_rejected``) as rows, best first.

        Args:
            include_rejected: also list the images that did not pass or could not be scored.

        Returns:
            One dict per image with the keys of :data:`CSV_COLUMNS`.
        """
        return [image.to_row() for image in (self.images if include_rejected else self.kept)]

    def write_csv(self, path: Union[str, os.PathLike], *, include_rejected: bool = False) -> Path:
        """Write :meth:`to_rows` as a CSV file.

        Args:
            path: the CSV file to write.
            include_rejected: also list the images that did not pass or could not be scored.

        Returns:
            The path written.
        """
        path = Path(path)
        rows = self.to_rows(include_rejected=include_rejected)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return path

    def export(self, destination: Union[str, os.PathLike], *, mode: ExportMode = "copy") -> list[Path]:
        """Copy or link the kept images into ``destination``, keeping their paths below :attr:`root`.

        Files already in ``destination`` under the same name are replaced.

        Args:
            destination: the folder to fill (created if needed).
            mode: ``copy``, ``symlink`` (absolute links) or ``hardlink`` (same file system only).

        Returns:
            The files created, in rank order.

        Raises:
            ValueError: ``mode`` is not one of the three.
        """
        if mode not in ("copy", "symlink", "hardlink"):
            raise ValueError(f"mode must be 'copy', 'symlink' or 'hardlink', not {mode!r}")
        destination = Path(destination)
        created = []
        for image in self.kept:
            target = destination / image.path.resolve().relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            if mode == "copy":
                shutil.copy2(image.path, target)
            elif mode == "symlink":
                target.symlink_to(image.path.resolve())
            else:
                os.link(image.path, target)
            created.append(target)
        return created


def filter_images(
    paths: PathsLike,
    *,
    min_score: Optional[float] = None,
    top_k: Optional[int] = None,
    model: ModelLike = DEFAULT_MODEL,
    descriptions: DescriptionsLike = None,
    device: Optional[str] = None,
    batch_size: int = 32,
    describer: Any = None,
) -> FilterResult:
    """Score images, rank them and keep those with ``score >= min_score``, at most ``top_k`` of them.

    With neither ``min_score`` nor ``top_k`` every scored image is kept (a pure ranking).
    Images that cannot be read are never kept; they are listed in ``result.skipped``.
    Equal scores keep the order of the paths.

    Args:
        paths: a folder (searched recursively for image files), a glob pattern, a file, or a
            list of them.
        min_score: keep only images scoring at least this (in the model's score units).
        top_k: keep at most this many of the best images.
        model: a model name, directory, :class:`~realness.core.model.CoreModel` or
            :class:`~realness.core.scorer.RealnessScorer`.
        descriptions: ``{file name: description}`` or a CSV with ``filename`` and
            ``description`` columns; images without one are described by ``describer`` or
            scored image-only.
        device: where to run (default: CUDA if available).
        batch_size: images per forward pass.
        describer: writes descriptions for images that come without one.

    Returns:
        A :class:`FilterResult`.

    Raises:
        ValueError: no image was found, or ``top_k`` is below 1.
    """
    from realness.cli.common import expand_image_paths, read_descriptions_csv

    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    patterns = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = expand_image_paths([str(p) for p in patterns])
    if not files:
        raise ValueError(f"no image files found in {', '.join(str(p) for p in patterns)}")
    table: Mapping[str, str] = {}
    if isinstance(descriptions, (str, os.PathLike)):
        table = read_descriptions_csv(descriptions)
    elif descriptions is not None:
        table = descriptions
    texts = [table.get(path.name) for path in files]
    scorer = as_scorer(model, device=device, batch_size=batch_size, describer=describer)
    result = scorer([str(path) for path in files], texts, on_error="skip")
    scores = [float(value) for value in result.scores]
    errors = {item.index: item.reason for item in result.skipped}
    scored = sorted((i for i in range(len(files)) if not math.isnan(scores[i])), key=lambda i: -scores[i])
    passing = [i for i in scored if min_score is None or scores[i] >= min_score]
    kept = set(passing[:top_k] if top_k is not None else passing)
    ranks = {index: rank for rank, index in enumerate(scored, start=1)}
    order = scored + [i for i in range(len(files)) if i in errors]
    images = [
        RankedImage(
            path=files[i],
            score=scores[i],
            rank=ranks.get(i),
            kept=i in kept,
            verdict=result.verdicts[i],
            description=result.descriptions[i],
            error=errors.get(i),
        )
        for i in order
    ]
    root = Path(os.path.commonpath([str(path.resolve().parent) for path in files]))
    return FilterResult(images=images, root=root, skipped=list(result.skipped))
