"""Rank a folder of images by realness and keep the best: by a minimum score, the top k, or both.

Example:
    >>> from realness.workflows.filtering import filter_images          # doctest: +SKIP
    >>> result = filter_images("generated/", min_score=0.0, top_k=100)  # doctest: +SKIP
    >>> result.write_csv("kept.csv")                                    # doctest: +SKIP
    >>> result.export("kept/", mode="symlink")                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import filecmp
import math
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from realness.core.pretrained import DEFAULT_MODEL
from realness.describers.descriptions import resolve_descriptions
from realness.errors import ExportError, SkippedItem
from realness.io.description_table import DescriptionTable
from realness.io.files import expand_image_paths
from realness.io.names import name_list
from realness.io.schema import FILTER_COLUMNS
from realness.io.tables import write_table
from realness.workflows.scoring import ModelLike, as_scorer, optional_float

ExportMode = Literal["copy", "symlink", "hardlink"]
PathsLike = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]
DescriptionsLike = Union[None, str, "os.PathLike[str]", Mapping[str, str], "DescriptionTable"]

CSV_COLUMNS = FILTER_COLUMNS


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
        score_low, score_high: the ends of the score's interval, or None (no interval).
    """

    path: Path
    score: float
    rank: int | None
    kept: bool
    verdict: str | None = None
    description: str | None = None
    error: str | None = None
    score_low: float | None = None
    score_high: float | None = None

    def to_row(self) -> dict[str, Any]:
        """The image as a CSV row (see :data:`CSV_COLUMNS`)."""
        return {
            "rank": self.rank,
            "path": str(self.path),
            "score": optional_float(self.score),
            "score_low": optional_float(self.score_low),
            "score_high": optional_float(self.score_high),
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

    def write_csv(self, path: str | os.PathLike, *, include_rejected: bool = False) -> Path:
        """Write :meth:`to_rows` as a CSV file.

        Args:
            path: the CSV file to write.
            include_rejected: also list the images that did not pass or could not be scored.

        Returns:
            The path written.
        """

        path = Path(path)
        write_table(self.to_rows(include_rejected=include_rejected), path, CSV_COLUMNS)
        return path

    def export(self, destination: str | os.PathLike, *, mode: ExportMode = "copy") -> list[Path]:
        """Copy or link the kept images into ``destination``, keeping their paths below :attr:`root`.

        Nothing is ever replaced or deleted: an image already in place (the same file, e.g.
        when ``destination`` is the source folder, or a file with identical bytes) is left as
        it is, and any other file in the way stops the export before a single file is placed.
        Each file appears in one rename, so an interrupted export leaves no half-written file.

        Args:
            destination: the folder to fill (created if needed).
            mode: ``copy``, ``symlink`` (absolute links) or ``hardlink`` (same file system only).

        Returns:
            The files created, in rank order (not those already in place).

        Raises:
            ValueError: ``mode`` is not one of the three.
            ExportError: ``destination`` is a file, or files in the way differ from the images.
        """
        if mode not in ("copy", "symlink", "hardlink"):
            raise ValueError(f"mode must be 'copy', 'symlink' or 'hardlink', not {mode!r}")

        destination = Path(destination)
        if destination.exists() and not destination.is_dir():
            raise ExportError(f"{destination}: is a file; --export needs a folder")
        plan = [(image.path, destination / image.path.resolve().relative_to(self.root)) for image in self.kept]
        to_place, in_the_way = [], []
        for source, target in plan:
            if not (target.exists() or target.is_symlink()):
                to_place.append((source, target))
            elif not _already_in_place(source, target):
                in_the_way.append(str(target))
        if in_the_way:
            raise ExportError(
                f"{destination}: {len(in_the_way)} files are in the way and differ from the images that would go "
                f"there: {name_list(in_the_way)}; export never replaces files: choose another folder or move them"
            )
        created = []
        for source, target in to_place:
            _place(source, target, mode)
            created.append(target)
        return created


def _already_in_place(source: Path, target: Path) -> bool:
    """The target is the source itself (same file or a link to it) or a copy with identical bytes."""
    try:
        if os.path.samefile(source, target):
            return True
        return target.is_file() and not target.is_symlink() and filecmp.cmp(source, target, shallow=False)
    except OSError:
        return False


def _place(source: Path, target: Path, mode: ExportMode) -> None:
    """Put ``source`` at ``target`` under a temporary name first, then rename: never a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.export-tmp")
    try:
        if mode == "copy":
            shutil.copy2(source, temporary)
        elif mode == "symlink":
            temporary.symlink_to(source.resolve())
        else:
            os.link(source, temporary)
        # os.replace would clobber a file that appeared meanwhile; link+unlink refuses instead.
        os.link(temporary, target, follow_symlinks=False)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    temporary.unlink()


def filter_images(
    images: PathsLike,
    *,
    min_score: float | None = None,
    top_k: int | None = None,
    model: ModelLike = DEFAULT_MODEL,
    descriptions: DescriptionsLike = None,
    device: str | None = None,
    batch_size: int = 32,
    describer: Any = None,
    descriptions_root: str | os.PathLike | None = None,
    precision: str = "auto",
    progress: bool | None = None,
    on_error: str = "skip",
    confident: bool = False,
) -> FilterResult:
    """Score images, rank them and keep those with ``score >= min_score``, at most ``top_k`` of them.

    With neither ``min_score`` nor ``top_k`` every scored image is kept (a pure ranking).
    Images that cannot be read are never kept; they are listed in ``result.skipped``.
    Equal scores keep the order of the paths.

    Args:
        images: a folder (searched recursively for image files), a glob pattern, a file, or a
            list of them.
        min_score: keep only images scoring at least this (in the model's score units).
        top_k: keep at most this many of the best images.
        model: a model name, directory, :class:`~realness.core.model.CoreModel` or
            :class:`~realness.core.scorer.RealnessScorer`.
        descriptions: a table keyed by path: ``{image path: description}`` or a table file as a
            ``pathlib.Path`` (CSV, JSON, JSON Lines or Parquet) with an image column (``path``, ``file``,
            ``filename``, ``image``, ``name``) and a description column (``description``,
            ``caption``, ``text``). Paths may be relative to a folder in ``images``, to
            ``descriptions_root``, to the table's folder or to the current directory; a bare
            file name matches only when one image has that name. Images without one are
            described by ``describer`` or scored image-only; mismatches are warned about
            (:class:`~realness.errors.DescriptionsWarning`), naming the images. As everywhere,
            also one string for one image, a sequence aligned with the images found (in their
            sorted order), or a describer (object or name such as ``"openai"``) that writes them.
        device: where to run (default: CUDA if available).
        batch_size: images per forward pass.
        describer: writes descriptions for images that come without one.
        descriptions_root: the folder relative paths in ``descriptions`` start from.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        progress: show a progress bar (None: for long runs).
        on_error: ``"skip"`` (default): an image that cannot be read is never kept and is
            listed in ``result.skipped``; ``"raise"``: it raises.
        confident: keep only images whose whole interval (``ScoreResult.interval``) lies at or
            above ``min_score``: its low end, not just the score.

    Returns:
        A :class:`FilterResult`.

    Raises:
        ValueError: no image was found, ``top_k`` is below 1, or ``confident`` without ``min_score``.
    """
    check_top_k(top_k)
    check_confident(confident, min_score)
    patterns = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    scan_skipped: list[tuple[str, str]] = []
    files = expand_image_paths([str(p) for p in patterns], scan_skipped)
    for path, reason in scan_skipped:
        warnings.warn(f"{path}: {reason}", UserWarning, stacklevel=2)
    if not files:
        raise ValueError(f"no image files found in {', '.join(str(p) for p in patterns)}")
    resolved = resolve_descriptions(
        descriptions, files, describer=describer, roots=[p for p in patterns if Path(p).is_dir()], root=descriptions_root
    )
    if resolved.match is not None:
        resolved.match.require_some()
        resolved.match.warn()
    texts, describer = resolved.texts, resolved.describer
    scorer = as_scorer(model, device=device, precision=precision, batch_size=batch_size, describer=describer, progress=progress)
    result = scorer([str(path) for path in files], texts, on_error=on_error)
    return rank_images(
        files,
        [float(value) for value in result.scores],
        min_score=min_score,
        top_k=top_k,
        verdicts=result.verdicts,
        descriptions=result.descriptions,
        errors={item.index: item.reason for item in result.skipped},
        intervals=result.interval.tolist(),
        confident=confident,
    )


def check_confident(confident: bool, min_score: float | None) -> None:
    """Refuse ``confident`` without a ``min_score`` to be confident about.

    Raises:
        ValueError: ``confident`` without ``min_score``.
    """
    if confident and min_score is None:
        raise ValueError("confident keeps images whose interval lies above min_score: give a min_score")


def check_top_k(top_k: int | None) -> None:
    """Refuse a ``top_k`` below 1 (before any image is scored).

    Raises:
        ValueError: ``top_k`` is below 1.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")


def rank_images(
    paths: Sequence[str | os.PathLike],
    scores: Sequence[float],
    *,
    min_score: float | None = None,
    top_k: int | None = None,
    verdicts: Sequence[str | None] | None = None,
    descriptions: Sequence[str | None] | None = None,
    errors: Mapping[int, str] | None = None,
    intervals: Sequence[tuple[float | None, float | None]] | None = None,
    confident: bool = False,
) -> FilterResult:
    """Rank images already scored and keep those with ``score >= min_score``, at most ``top_k``.

    What :func:`filter_images` does once every image is scored; ``realness filter`` calls it
    on the scores it saved batch by batch (resumable) or that the Ray engine wrote.

    Args:
        paths: the images.
        scores: one score per image, NaN where it could not be scored.
        min_score: keep only images scoring at least this.
        top_k: keep at most this many of the best images.
        verdicts: one verdict (or None) per image.
        descriptions: the description each score used (or None) per image.
        errors: ``{position: reason}`` of the images that could not be scored.
        intervals: ``(score_low, score_high)`` per image, where the model gives intervals.
        confident: keep only images whose ``score_low`` is at least ``min_score`` (never one without an interval).

    Returns:
        A :class:`FilterResult`, best first; equal scores keep the order of ``paths``.
    """
    check_top_k(top_k)
    files = [Path(path) for path in paths]
    errors = dict(errors or {})
    verdicts = list(verdicts) if verdicts is not None else [None] * len(files)
    descriptions = list(descriptions) if descriptions is not None else [None] * len(files)
    intervals = list(intervals) if intervals is not None else [(None, None)] * len(files)
    scored = sorted((i for i in range(len(files)) if i not in errors and not math.isnan(scores[i])), key=lambda i: -scores[i])
    check_confident(confident, min_score)
    if confident:
        # None or NaN (no interval) is never confidently above anything.
        passing = [i for i in scored if intervals[i][0] is not None and intervals[i][0] >= min_score]
    else:
        passing = [i for i in scored if min_score is None or scores[i] >= min_score]
    kept = set(passing[:top_k] if top_k is not None else passing)
    ranks = {index: rank for rank, index in enumerate(scored, start=1)}
    order = scored + sorted(errors)
    images = [
        RankedImage(
            path=files[i],
            score=scores[i],
            rank=ranks.get(i),
            kept=i in kept,
            verdict=verdicts[i],
            description=descriptions[i],
            error=errors.get(i),
            score_low=intervals[i][0],
            score_high=intervals[i][1],
        )
        for i in order
    ]
    root = Path(os.path.commonpath([str(path.resolve().parent) for path in files]))
    skipped = [SkippedItem(i, str(files[i]), errors[i]) for i in sorted(errors)]
    return FilterResult(images=images, root=root, skipped=skipped)
