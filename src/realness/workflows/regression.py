"""Regression checks for test suites: "the realness of these samples did not drop".

The first run stores a JSON baseline (mean, every image's score, which model, which realness
version); later runs score the same samples and fail with a readable message naming the
images that dropped most when the mean fell by more than ``tolerance``.

Example:
    >>> from realness.workflows.regression import assert_realness_not_dropped  # doctest: +SKIP
    >>> def test_generator_still_looks_real(tmp_path):                        # doctest: +SKIP
    ...     images = my_generator.sample(seed=0, n=16)
    ...     assert_realness_not_dropped(images, "tests/baselines/generator.json")

With pytest, the ``realness_baseline`` fixture (see :mod:`realness.pytest_plugin`) picks
the baseline path for you and ``pytest --realness-update-baseline`` rewrites baselines.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from realness import __version__
from realness.core.pretrained import DEFAULT_MODEL
from realness.core.scorer import RealnessScorer
from realness.io.atomic import write_text_atomic
from realness.io.inputs import split_batch
from realness.workflows.scoring import ModelLike, as_scorer, model_label

BASELINE_FORMAT = 1
UPDATE_HINT = "Rerun with update=True (pytest: --realness-update-baseline) if the change is intended."


@dataclass
class RealnessBaseline:
    """Stored scores of a set of samples.

    Attributes:
        mean: mean score over the samples.
        scores: sample key (see :func:`sample_keys`) to its score.
        model: the model's name or directory as given, for people reading the file.
        model_fingerprint: sha256 of the model's configuration and head weights; scores of
            two models are not comparable, so a different fingerprint fails the check.
        score_units: what one unit of score means for that model.
        realness_version: the realness version that computed the scores.
        created: when (UTC, ISO 8601).
        format: the file format version.
    """

    mean: float
    scores: dict[str, float]
    model: str
    model_fingerprint: str
    score_units: str
    realness_version: str
    created: str
    format: int = BASELINE_FORMAT

    def save(self, path: str | os.PathLike) -> Path:
        """Write the baseline as JSON (parent folders are created).

        Args:
            path: the JSON file.

        Returns:
            The path written.
        """
        path = Path(path)
        write_text_atomic(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RealnessBaseline:
        """Read a baseline written by :meth:`save`.

        Args:
            path: the JSON file.

        Returns:
            The baseline.

        Raises:
            ValueError: the file is not a realness baseline of a supported format.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
            raise ValueError(f"{path}: not a realness baseline (format {BASELINE_FORMAT})")
        return cls(**data)


@dataclass
class RealnessComparison:
    """Current scores against a baseline, over the same samples.

    Attributes:
        baseline_mean: the baseline's mean score.
        current_mean: this run's mean score.
        tolerance: the largest accepted drop of the mean, in score units.
        changes: ``(key, baseline score, current score)`` per sample, biggest drop first.
        baseline_path: where the baseline is stored.
        model: the model of this run.
        problems: reasons the scores are not comparable (other model, other samples).
    """

    baseline_mean: float
    current_mean: float
    tolerance: float
    changes: list[tuple[str, float, float]]
    baseline_path: Path
    model: str
    problems: list[str] = field(default_factory=list)

    @property
    def drop(self) -> float:
        """How much the mean fell (negative: it rose)."""
        return self.baseline_mean - self.current_mean

    @property
    def passed(self) -> bool:
        """Comparable scores whose mean did not fall by more than the tolerance."""
        return not self.problems and self.drop <= self.tolerance

    def message(self, *, show: int = 5) -> str:
        """A readable report: the means, the drop, and the ``show`` images that dropped most.

        Args:
            show: how many images to list.

        Returns:
            The report, several lines.
        """
        if self.problems:
            lines = [f"realness baseline {self.baseline_path} does not match this run:"]
            lines += [f"  {problem}" for problem in self.problems]
            return "\n".join(lines + [UPDATE_HINT])
        verdict = "dropped" if self.drop > self.tolerance else "held"
        lines = [
            f"realness {verdict}: mean {self.baseline_mean:.4f} -> {self.current_mean:.4f} "
            f"(change {-self.drop:+.4f}, tolerance {self.tolerance}) over {len(self.changes)} images, "
            f"model {self.model}",
            f"baseline: {self.baseline_path}",
        ]
        if self.changes:
            lines.append(f"images that dropped most (of {len(self.changes)}):")
            width = max(len(key) for key, _, _ in self.changes[:show])
            for key, before, after in self.changes[:show]:
                lines.append(f"  {key:<{width}}  {before:.4f} -> {after:.4f}  ({after - before:+.4f})")
        if self.drop > self.tolerance:
            lines.append(UPDATE_HINT)
        return "\n".join(lines)


def sample_keys(items: Sequence[Any]) -> list[str]:
    """Stable names for samples: file paths relative to their common folder, else ``item <i>``.

    Args:
        items: the samples, in order.

    Returns:
        One key per sample, the same on every machine that holds the same files.

    Raises:
        ValueError: two samples get the same key.
    """
    paths = {i: Path(item) for i, item in enumerate(items) if isinstance(item, (str, os.PathLike))}
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths.values()])) if paths else None
    keys = [paths[i].resolve().relative_to(root).as_posix() if i in paths else f"item {i}" for i in range(len(items))]
    if len(set(keys)) != len(keys):
        raise ValueError("two samples have the same name; pass a dict {name: image} instead")
    return keys


def model_fingerprint(scorer: RealnessScorer) -> str:
    """sha256 of a CORE model's configuration and head weights (encoders are named in the configuration).

    Args:
        scorer: the scorer whose model to fingerprint.

    Returns:
        A hex digest.
    """
    model = scorer.model
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    state = model.head.state_dict()
    if model.config.includes_encoder_weights:
        state = model.state_dict()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def score_samples(
    images: Any,
    *,
    descriptions: Any = None,
    model: ModelLike = DEFAULT_MODEL,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    progress: bool = False,
) -> RealnessBaseline:
    """Score samples into a (not yet saved) :class:`RealnessBaseline`.

    Args:
        images: ``{name: image}``, or a list of images (paths, PIL, arrays, tensors), or a
            ``B x 3 x H x W`` tensor.
        descriptions: None, one string for one image, one per image, or a describer (object
            or name) that writes them.
        model: a model name, directory, :class:`~realness.core.model.CoreModel` or
            :class:`~realness.core.scorer.RealnessScorer`.
        device: where to run (default: CUDA if available).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: images per forward pass.
        progress: show a progress bar.

    Returns:
        The scores, their mean, and which model made them.

    Raises:
        InvalidImageError: an image cannot be read (a regression check never skips one).
    """
    if isinstance(images, Mapping):
        keys, items = [str(k) for k in images], list(images.values())
    else:
        items, _ = split_batch(images)
        keys = sample_keys(items)
    scorer = as_scorer(model, device=device, precision=precision, batch_size=batch_size)
    scores = scorer(items, descriptions, on_error="raise", progress=progress).scores
    values = [float(v) for v in scores]
    return RealnessBaseline(
        mean=statistics.fmean(values),
        scores=dict(zip(keys, values)),
        model=model_label(model),
        model_fingerprint=model_fingerprint(scorer),
        score_units=scorer.score_units,
        realness_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def compare_to_baseline(
    current: RealnessBaseline, baseline: RealnessBaseline, *, tolerance: float = 0.05, baseline_path: str | os.PathLike = ""
) -> RealnessComparison:
    """Compare this run's scores with a stored baseline.

    Args:
        current: this run's scores (from :func:`score_samples`).
        baseline: the stored scores.
        tolerance: the largest accepted drop of the mean, in score units.
        baseline_path: where the baseline lives, for the report.

    Returns:
        A :class:`RealnessComparison`; ``passed`` says whether the check holds.
    """
    problems = []
    if current.model_fingerprint != baseline.model_fingerprint:
        problems.append(
            f"the baseline was scored with model {baseline.model} ({baseline.model_fingerprint[:12]}), "
            f"this run uses {current.model} ({current.model_fingerprint[:12]}): their scores are not comparable"
        )
    missing = sorted(set(baseline.scores) - set(current.scores))
    new = sorted(set(current.scores) - set(baseline.scores))
    if missing:
        problems.append(f"{len(missing)} samples of the baseline are gone: {', '.join(missing[:5])}")
    if new:
        problems.append(f"{len(new)} samples are not in the baseline: {', '.join(new[:5])}")
    common = [key for key in current.scores if key in baseline.scores]
    changes = sorted(
        ((key, baseline.scores[key], current.scores[key]) for key in common), key=lambda c: c[2] - c[1]
    )
    return RealnessComparison(
        baseline_mean=baseline.mean,
        current_mean=current.mean,
        tolerance=tolerance,
        changes=changes,
        baseline_path=Path(baseline_path),
        model=current.model,
        problems=problems,
    )


def assert_realness_not_dropped(
    images: Any,
    baseline_path: str | os.PathLike,
    *,
    descriptions: Any = None,
    model: ModelLike = DEFAULT_MODEL,
    tolerance: float = 0.05,
    update: bool = False,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    progress: bool = False,
) -> RealnessComparison:
    """Fail unless the mean realness of ``images`` is within ``tolerance`` of the stored baseline.

    Args:
        images: ``{name: image}``, a list of images, or a ``B x 3 x H x W`` tensor; list items
            that are paths are named by their path relative to their common folder, others
            ``item <i>``.
        baseline_path: the JSON baseline file.
        descriptions: None (image-only scoring), one string for one image, one per image, or
            a describer (object or name) that writes them.
        model: a model name, directory, :class:`~realness.core.model.CoreModel` or
            :class:`~realness.core.scorer.RealnessScorer`.
        tolerance: the largest accepted drop of the mean, in the model's score units
            (z-scores of the training MOS for the bundled model).
        update: (re)write the baseline from this run instead of checking against it.
        device: where to run (default: CUDA if available).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (a baseline is only comparable
            with runs at the precision it was made at, within ``tolerance``).
        batch_size: images per forward pass.
        progress: show a progress bar.

    Returns:
        The comparison (when ``update`` is set: this run against itself).

    Raises:
        AssertionError: no baseline exists (and ``update`` is False), it was made with another
            model or other samples, or the mean dropped by more than ``tolerance``.
        InvalidImageError: an image cannot be read.
        ValueError: ``tolerance`` is negative or not finite.
    """
    __tracebackhide__ = True  # pytest shows the caller's line and the message, not this function's source
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, not {tolerance}")
    baseline_path = Path(baseline_path)
    current = score_samples(
        images, descriptions=descriptions, model=model, device=device, precision=precision,
        batch_size=batch_size, progress=progress,
    )
    if update:
        current.save(baseline_path)
        return compare_to_baseline(current, current, tolerance=tolerance, baseline_path=baseline_path)
    if not baseline_path.is_file():
        raise AssertionError(
            f"no realness baseline at {baseline_path}; create it with update=True "
            "(pytest: --realness-update-baseline) and commit it"
        )
    comparison = compare_to_baseline(current, RealnessBaseline.load(baseline_path), tolerance=tolerance, baseline_path=baseline_path)
    if not comparison.passed:
        raise AssertionError(comparison.message())
    return comparison
