"""CORE heads: the paper's fusion MLP and the kernel ridge head the bundled model uses."""

from __future__ import annotations

import torch
from torch import nn


class FusionHead(nn.Module):
    """concat(image features, text features) -> FC(hidden) -> ReLU -> dropout -> FC(1).

    ``modalities`` selects the ablations of the paper's Table 2 (image only, text only).

    The paper's head (one FC layer of 529 units on the concatenated features). Each feature
    set is first standardized with statistics stored as buffers (set from the training
    features by :meth:`set_feature_statistics`), so encoders whose outputs live on very
    different scales (unit-norm sentence embeddings beside post-activation CNN features)
    enter the MLP on an equal footing.
    """

    def __init__(self, image_dim: int, text_dim: int, hidden_dim: int = 529, dropout: float = 0.1, modalities: str = "both"):
        super().__init__()
        if modalities not in ("both", "image", "text"):
            raise ValueError(f"modalities must be 'both', 'image' or 'text', not {modalities!r}")
        # An ablated modality enters as zeros, so every variant has the same shape.
        self.use_image = modalities in ("both", "image")
        self.use_text = modalities in ("both", "text")
        self.register_buffer("image_mean", torch.zeros(image_dim))
        self.register_buffer("image_std", torch.ones(image_dim))
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.register_buffer("text_std", torch.ones(text_dim))
        self.mlp = nn.Sequential(
            nn.Linear(image_dim + text_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, 1),
        )

    @torch.no_grad()
    def set_feature_statistics(self, image_features: torch.Tensor, text_features: torch.Tensor) -> None:
        """Store per-dimension mean and std of training features (std floored to avoid blow-up)."""
        self.image_mean.copy_(image_features.mean(0))
        self.image_std.copy_(image_features.std(0).clamp_min(1e-4))
        self.text_mean.copy_(text_features.mean(0))
        self.text_std.copy_(text_features.std(0).clamp_min(1e-4))

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, has_text: torch.Tensor | None = None
    ) -> torch.Tensor:
        # has_text is unused: trained with description dropout, the MLP reads "no description"
        # from the empty text's features.
        image = (image_features - self.image_mean) / self.image_std
        text = (text_features - self.text_mean) / self.text_std
        if not self.use_image:
            image = torch.zeros_like(image)
        if not self.use_text:
            text = torch.zeros_like(text)
        return self.mlp(torch.cat([image, text], dim=-1)).squeeze(-1)


class KernelRidgeHead(nn.Module):
    """Kernel ridge regression (RBF kernel) over standardized image and text features.

    Chosen for the bundled model by 5-fold cross-validation on RAISE-TD's training split
    (``benchmarks/results/recipe_cv.md``): on 510 rated images a kernel regressor beats an MLP
    trained by gradient descent, and it fits in closed form in a second. Two regressors share
    the stored training features: one over image and text features, one over the image alone
    for images that come without a description (``has_text`` False), each trained for its job.

    ``score(x) = offset + sum_i coef_i * exp(-gamma * |x - x_i|^2)`` over the training
    features ``x_i`` (images, their mirrors and degraded copies, see :mod:`realness.training.trainer`).
    The training features are stored in float16 to keep the weights small; the kernel is
    computed in float32.

    Far from its training data a kernel regressor falls back to its offset, the average
    score, so a blank frame or pure noise would read as "average realness". The head therefore
    also stores degenerate *negative* rows (``TrainingConfig.negatives``: random solid colours,
    noise, checkerboards, shuffled tiles) and a third regressor over the same image kernel,
    ``unreal(x)``, fitted to 1 on them and 0 on the training images. Past the highest ``unreal``
    of held-out training images (``unreal_from``, :meth:`calibrate`) the score blends toward
    ``floor``, below every training MOS, reaching it at ``unreal_to``: images like the training
    data keep their score, degenerate ones read as unreal. Every score also carries a conformal
    interval: its half-width is the calibrated quantile of out-of-fold absolute errors
    (``calibration_*``, one entry per percent of coverage), times ``max(1, r / near_radius)``,
    where the *nearness* ``r(x)`` is the squared distance to the nearest stored row per feature
    dimension and ``near_radius`` a high quantile of held-out training images' nearness, so it
    widens off the training data. :meth:`regress` gives the raw regression, without the gate.
    """

    # Buffers set by calibrate(); a head saved before they existed loads with these (no gate, no interval).
    CALIBRATION_DEFAULTS = {
        "near_radius": float("inf"),
        "unreal_from": float("inf"),
        "unreal_to": float("inf"),
        "floor": 0.0,
    }
    LEVELS = 101  # calibration_* hold the interval half-width at coverage 0 %, 1 %, ..., 100 %

    def __init__(self, image_dim: int, text_dim: int, support: int):
        super().__init__()
        self.register_buffer("image_mean", torch.zeros(image_dim))
        self.register_buffer("image_std", torch.ones(image_dim))
        self.register_buffer("text_scale", torch.ones(()))
        self.register_buffer("support_image", torch.zeros(support, image_dim, dtype=torch.float16))
        self.register_buffer("support_text", torch.zeros(support, text_dim, dtype=torch.float16))
        self.register_buffer("coef_with_text", torch.zeros(support))
        self.register_buffer("coef_image_only", torch.zeros(support))
        self.register_buffer("gamma_with_text", torch.ones(()))
        self.register_buffer("gamma_image_only", torch.ones(()))
        self.register_buffer("offset_with_text", torch.zeros(()))
        self.register_buffer("offset_image_only", torch.zeros(()))
        self.register_buffer("coef_unreal", torch.zeros(support))
        for name, value in self.CALIBRATION_DEFAULTS.items():
            self.register_buffer(name, torch.tensor(value))
        self.register_buffer("calibration_with_text", torch.full((self.LEVELS,), float("nan")))
        self.register_buffer("calibration_image_only", torch.full((self.LEVELS,), float("nan")))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before calibration existed: no gate and no interval (NaN), rather than a load error.
        for name, value in self.CALIBRATION_DEFAULTS.items():
            state_dict.setdefault(prefix + name, torch.tensor(value))
        for name in ("calibration_with_text", "calibration_image_only"):
            state_dict.setdefault(prefix + name, torch.full((self.LEVELS,), float("nan")))
        if prefix + "coef_with_text" in state_dict:
            state_dict.setdefault(prefix + "coef_unreal", torch.zeros_like(state_dict[prefix + "coef_with_text"]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def calibrated(self) -> bool:
        """The head has intervals (:meth:`calibrate` ran)."""
        return bool(torch.isfinite(self.near_radius)) and not bool(torch.isnan(self.calibration_image_only).any())

    def standardize(self, image_features: torch.Tensor, text_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The coordinates the kernel compares: z-scored image features, scaled unit-norm text features."""
        image = (image_features.float() - self.image_mean) / self.image_std
        return image, text_features.float() * self.text_scale

    def image_only(self, image_features: torch.Tensor) -> torch.Tensor:
        """The raw image-only regression of ``N x image_dim`` features (what ``forward`` gives without text)."""
        image = (image_features.float() - self.image_mean) / self.image_std
        distance = torch.cdist(image, self.support_image.float()).square()
        return self.offset_image_only + torch.exp(-self.gamma_image_only * distance) @ self.coef_image_only

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, has_text: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores ``B``: the regression, blended toward ``floor`` where an input looks like the negatives."""
        raw, _, unreal, _ = self.regress(image_features, text_features, has_text)
        return self.gated(raw, unreal)

    def regress(
        self, image_features: torch.Tensor, text_features: torch.Tensor, has_text: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(raw score, nearness, unreal, has_text)``: the kernel regression without the gate, each input's
        squared distance to the nearest stored row per image feature dimension, and its ``unreal`` regression."""
        image, text = self.standardize(image_features, text_features)
        support_image, support_text = self.support_image.float(), self.support_text.float()
        image_distance = torch.cdist(image, support_image).square()
        nearness = image_distance.min(dim=1).values / image.shape[1]
        image_kernel = torch.exp(-self.gamma_image_only * image_distance)
        image_only = self.offset_image_only + image_kernel @ self.coef_image_only
        unreal = image_kernel @ self.coef_unreal
        if has_text is None:
            has_text = torch.ones(len(image), dtype=torch.bool, device=image.device)
        has_text = has_text.to(image.device)
        if not bool(has_text.any()):
            return image_only, nearness, unreal, has_text
        distance = image_distance + torch.cdist(text, support_text).square()
        with_text = self.offset_with_text + torch.exp(-self.gamma_with_text * distance) @ self.coef_with_text
        return torch.where(has_text, with_text, image_only), nearness, unreal, has_text

    def gate(self, unreal: torch.Tensor) -> torch.Tensor:
        """1 up to the highest ``unreal`` of held-out training images, falling to 0 at ``unreal_to``."""
        if not bool(torch.isfinite(self.unreal_to)):  # no negatives, no gate
            return torch.ones_like(unreal)
        return ((self.unreal_to - unreal) / (self.unreal_to - self.unreal_from)).clamp(0.0, 1.0)

    def gated(self, raw: torch.Tensor, unreal: torch.Tensor) -> torch.Tensor:
        """The raw regression blended toward ``floor`` as the gate closes."""
        return self.floor + self.gate(unreal) * (raw - self.floor)

    def predict(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        has_text: torch.Tensor | None = None,
        *,
        level: float = 0.9,
    ) -> torch.Tensor:
        """``B x 3``: score, low and high end of its ``level`` interval (NaN ends for an uncalibrated head)."""
        raw, nearness, unreal, has_text = self.regress(image_features, text_features, has_text)
        score = self.gated(raw, unreal)
        half = torch.where(has_text, self.half_width(self.calibration_with_text, level),
                           self.half_width(self.calibration_image_only, level))
        half = half * (nearness / self.near_radius).clamp_min(1.0)
        return torch.stack([score, score - half, score + half], dim=1)

    @staticmethod
    def half_width(table: torch.Tensor, level: float) -> torch.Tensor:
        """The calibrated half-width at coverage ``level`` (linear between the stored percents)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"interval level must be between 0 and 1 (exclusive), not {level}")
        position = level * (len(table) - 1)
        below = int(position)
        return table[below] + (position - below) * (table[min(below + 1, len(table) - 1)] - table[below])

    @torch.no_grad()
    def calibrate(
        self,
        nearness: torch.Tensor,
        unreal: torch.Tensor,
        errors_with_text: torch.Tensor,
        errors_image_only: torch.Tensor,
        *,
        floor: float,
        near_quantile: float,
        unreal_width: float,
    ) -> dict[str, float]:
        """Set the gate and the intervals from out-of-fold training images (each scored by a head fitted without it).

        Args:
            nearness: each held-out image's nearness to the rows of the head that scored it.
            unreal: its ``unreal`` regression by that head.
            errors_with_text: its absolute error with its description, by that head's raw regression.
            errors_image_only: the same without the description.
            floor: the score of an image that looks like the negatives (below every training target).
            near_quantile: the share of held-out images nearer than ``near_radius``, past which intervals widen.
            unreal_width: the gate closes at the highest held-out ``unreal`` plus this (a head
                without negatives has no gate).

        Returns:
            ``near_radius``, ``unreal_from``, ``unreal_to`` and the 90 % half-widths.
        """
        near = float(torch.quantile(nearness.double(), near_quantile))
        self.near_radius.fill_(near)
        start = float(unreal.max()) if bool(self.coef_unreal.any()) else float("inf")
        self.unreal_from.fill_(start)
        self.unreal_to.fill_(start + unreal_width)
        self.floor.fill_(floor)
        scale = (nearness.double() / near).clamp_min(1.0)
        for name, errors in (("with_text", errors_with_text), ("image_only", errors_image_only)):
            getattr(self, f"calibration_{name}").copy_(conformal_table(errors.double() / scale, self.LEVELS).float())
        return {"near_radius": near, "unreal_from": start if start < float("inf") else None, "floor": floor,
                "half_width_90_with_text": float(self.half_width(self.calibration_with_text, 0.9)),
                "half_width_90_image_only": float(self.half_width(self.calibration_image_only, 0.9))}

    @torch.no_grad()
    def fit(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor,
        *,
        statistics_from: torch.Tensor,
        alpha: float,
        gamma_scale: float,
        text_weight: float = 1.0,
        unreal: torch.Tensor | None = None,
        unreal_alpha: float = 0.1,
    ) -> dict[str, float]:
        """Solve both regressors in closed form: ``coef = (K + alpha * W^-1)^-1 (y - offset)``, and ``unreal``.

        Rows of weight 0 (negatives the score regressors leave out) get no coefficient in them.

        Args:
            image_features: ``N x image_dim`` training rows (sources, mirrors, degraded copies).
            text_features: ``N x text_dim``, the description of each row's source image.
            targets: ``N`` scores to regress (MOS; MOS minus a margin for degraded copies).
            weights: ``N`` per-row weights of the squared error.
            statistics_from: the unaltered training images' features, for the standardization.
            alpha: ridge regularization.
            gamma_scale: RBF width as ``gamma = gamma_scale / feature dimension``.
            text_weight: the text block's share of the squared distance, relative to the image block's.
            unreal: ``N`` booleans, the negative rows; ``unreal`` is fitted to 1 on them, 0 elsewhere
                (None: no negatives, ``unreal`` is 0).
            unreal_alpha: ridge regularization of ``unreal``.

        Returns:
            The training RMSE of each regressor.
        """
        self.image_mean.copy_(statistics_from.mean(0))
        self.image_std.copy_(statistics_from.std(0).clamp_min(1e-4))
        # Unit-norm text, scaled so that its squared norm is text_weight times the image block's expected one.
        self.text_scale.fill_((float(image_features.shape[1]) * text_weight) ** 0.5)
        self.support_image.copy_(((image_features.float() - self.image_mean) / self.image_std).half())
        self.support_text.copy_((text_features.float() * self.text_scale).half())
        image, text = self.support_image.double(), self.support_text.double()
        image_distance = torch.cdist(image, image).square()
        y, w = targets.double(), weights.double()
        used = w > 0
        errors = {}
        for name, distance, dim in (
            ("with_text", image_distance + torch.cdist(text, text).square(), image.shape[1] + text.shape[1]),
            ("image_only", image_distance, image.shape[1]),
        ):
            gamma = gamma_scale / dim
            kernel = torch.exp(-gamma * distance[used][:, used])
            offset = float((w[used] * y[used]).sum() / w[used].sum())
            coef = torch.zeros(len(y), dtype=torch.float64)
            coef[used] = torch.linalg.solve(kernel + torch.diag(alpha / w[used]), y[used] - offset)
            getattr(self, f"coef_{name}").copy_(coef.float())
            getattr(self, f"gamma_{name}").fill_(gamma)
            getattr(self, f"offset_{name}").fill_(offset)
            fitted = kernel @ coef[used] + offset
            errors[f"train_rmse_{name}"] = float(((fitted - y[used]) ** 2).mean().sqrt())
            if name == "image_only" and unreal is not None and bool(unreal.any()):
                # Same kernel over every row: 1 on the negatives, 0 on the training images.
                full = torch.exp(-gamma * distance)
                self.coef_unreal.copy_(torch.linalg.solve(full + unreal_alpha * torch.eye(len(y), dtype=full.dtype),
                                                          unreal.double()).float())
        return errors


def conformal_table(scores: torch.Tensor, levels: int) -> torch.Tensor:
    """Split-conformal quantiles of nonconformity ``scores`` at coverage ``0 .. 1`` in ``levels`` steps.

    Entry ``k`` is the ``ceil((n + 1) * p)``-th smallest score for ``p = k / (levels - 1)``, so a
    new exchangeable score falls at or below it with probability at least ``p``; past the
    largest score (small ``n``, ``p`` near 1) it is the largest.
    """
    ordered = scores.sort().values
    n = len(ordered)
    ranks = torch.ceil((n + 1) * torch.linspace(0, 1, levels, dtype=torch.float64)).long().clamp(1, n)
    return ordered[ranks - 1]
