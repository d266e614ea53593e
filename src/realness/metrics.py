"""``Realness``: the CORE score as a ``torchmetrics.Metric`` for training and evaluation loops.

``torchmetrics`` is an optional extra (``pip install 'realness[metrics]'``). It is imported
by this module only, so ``import realness`` never needs it; without it, creating a
:class:`Realness` raises :class:`~realness.errors.MissingDependencyError` naming the extra.

Example:
    >>> from realness.metrics import Realness                     # doctest: +SKIP
    >>> metric = Realness(model="realness-core-lite").to("cuda")  # doctest: +SKIP
    >>> for images, texts in loader:                              # doctest: +SKIP
    ...     metric.update(generator(images), texts)
    >>> metric.compute()                                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

from realness.core.pretrained import DEFAULT_MODEL
from realness.errors import MissingDependencyError, check_on_error
from realness.workflows.scoring import as_scorer

__all__ = ["Realness"]


try:
    from torchmetrics import Metric as _MetricBase

    _TORCHMETRICS_MISSING = False
except ImportError:  # the optional extra is not installed: Realness() says which one to install
    _MetricBase = object
    _TORCHMETRICS_MISSING = True


class Realness(_MetricBase):
    """Mean CORE realness score of every image passed to :meth:`update` (higher = more real).

    Memory stays constant over any number of updates (a running sum and count), unless
    ``keep_scores=True`` asks for every per-image score. Under DDP the sums, counts and
    kept scores are reduced across processes in :meth:`compute`.

    The scorer is a plain attribute, not a metric state: it is excluded from
    ``state_dict()``, and moves with the metric (``metric.to("cuda")``).

    Args:
        model: a bundled model name, a local model directory, a Hub id, a loaded
            :class:`~realness.core.model.CoreModel` or a :class:`~realness.core.scorer.RealnessScorer`.
        keep_scores: also keep every per-image score, returned by :meth:`compute`.
        interval: also report the mean of the scores' interval ends (``ScoreResult.interval``,
            at the scorer's ``interval_level``): how far the mean could be from the truth.
        on_error: ``raise`` stops at a bad image; ``skip`` leaves it out of the mean and
            counts it in the ``skipped`` state.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: images per forward pass inside one :meth:`update`.
        describer: writes descriptions for images that come without one (an object or a name
            such as ``"openai"``); without one they are scored image-only, with one warning.
        progress: show a progress bar inside :meth:`update` (default: never, as fits a loop).
        **kwargs: passed to ``torchmetrics.Metric`` (``dist_sync_on_step``, ``sync_on_compute``, ...).

    Raises:
        MissingDependencyError: ``torchmetrics`` is not installed.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        *,
        keep_scores: bool = False,
        interval: bool = False,
        on_error: str = "raise",
        precision: str = "auto",
        batch_size: int = 32,
        describer: Any = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        if _TORCHMETRICS_MISSING:
            raise MissingDependencyError(package="torchmetrics", extra="metrics", purpose="realness.metrics.Realness")
        super().__init__(**kwargs)
        check_on_error(on_error)
        self.keep_scores = keep_scores
        self.interval = interval
        self.on_error = on_error
        self.progress = progress
        self.scorer = as_scorer(model, device=self.device, precision=precision, batch_size=batch_size, describer=describer)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("skipped", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if keep_scores:
            self.add_state("scores", default=[], dist_reduce_fx="cat")
        if interval:
            self.add_state("total_low", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("total_high", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, images: Any, descriptions: Any = None) -> None:
        """Score a batch of images and add their scores to the running mean.

        Args:
            images: one image or a batch: a ``B x 3 x H x W`` tensor in [0, 1], paths, PIL
                images, arrays (see :mod:`realness.io.inputs`).
            descriptions: None, one string for one image, a sequence aligned with the
                images, or a describer (object or name) that writes them; a missing one is
                written by the metric's describer, else the image is scored image-only.

        Raises:
            InvalidImageError: a bad image, with ``on_error="raise"``.
        """
        # A tensor batch is scored on its device; its scores reach the host in one copy, and the
        # sums below are taken there, so that the states grow without a wait on the device.
        result = self.scorer(images, descriptions, on_error=self.on_error, progress=self.progress)
        scores = result.scores
        scored = ~torch.isnan(scores)
        self.total += float(scores[scored].double().sum())
        if self.interval:  # a model without intervals gives NaN ends, and so a NaN mean interval
            self.total_low += float(result.interval[scored, 0].double().sum())
            self.total_high += float(result.interval[scored, 1].double().sum())
        self.count += int(scored.sum())
        self.skipped += int((~scored).sum())
        if self.keep_scores:
            self.scores.append(scores[scored].to(self.device))

    def compute(self) -> Any:
        """The mean score (NaN before any image was scored); with ``keep_scores``, also every score.

        Returns:
            A 0-d float tensor, the mean over all scored images; with ``keep_scores=True`` or
            ``interval=True`` a dict ``{"mean": ...}`` with ``"scores"``, a 1-d tensor of every
            scored image (under DDP the scores of rank 0 come first, then rank 1, ...;
            torchmetrics squeezes a one-element result to 0-d), and ``"interval"``, the mean low
            and high end (a 2-element tensor).
        """
        mean = self._mean(self.total)
        if not (self.keep_scores or self.interval):
            return mean
        out = {"mean": mean}
        if self.keep_scores:
            scores = self.scores
            if isinstance(scores, list):
                scores = torch.cat(scores) if scores else torch.empty(0, device=self.device)
            out["scores"] = scores
        if self.interval:
            out["interval"] = torch.stack([self._mean(self.total_low), self._mean(self.total_high)])
        return out

    def _mean(self, total: torch.Tensor) -> torch.Tensor:
        return (total / self.count).float() if self.count > 0 else torch.tensor(float("nan"), device=self.device)

    def _apply(self, fn: Any, exclude_state: Any = "") -> Any:
        this = super()._apply(fn, exclude_state)
        # The scorer is not a state, so follow the metric's device by hand.
        if this.scorer.device != this.device:
            this.scorer.model.to(this.device)
            this.scorer.device = this.device
        return this
