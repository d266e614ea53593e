"""CORE heads: the paper's fusion MLP and the kernel ridge head the bundled model uses."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from realness.core.scene_statistics import DIM as SCENE_STATISTICS_DIM
from realness.errors import UnknownNameError

#: Head classes by the name ``CoreConfig.head`` gives (see :func:`register_head`).
HEADS: dict[str, type[nn.Module]] = {}


def register_head(head: type[nn.Module]) -> type[nn.Module]:
    """Register ``head`` under its ``name`` (a class decorator); it builds itself with ``from_config``."""
    if HEADS.get(head.name, head) is not head:
        raise ValueError(f"head {head.name!r} is already registered")
    HEADS[head.name] = head
    return head


def head_class(name: str) -> type[nn.Module]:
    """The head class registered as ``name``.

    Raises:
        UnknownNameError: no head has that name; the message lists those that do.
    """
    if name not in HEADS:
        raise UnknownNameError(f"unknown head {name!r}; choose one of {', '.join(HEADS)}")
    return HEADS[name]


@register_head
class FusionHead(nn.Module):
    """concat(image features, text features) -> FC(hidden) -> ReLU -> dropout -> FC(1).

    ``modalities`` selects the ablations of the paper's Table 2 (image only, text only).

    The paper's head (one FC layer of 529 units on the concatenated features). Each feature
    set is first standardized with statistics stored as buffers (set from the training
    features by :meth:`set_feature_statistics`), so encoders whose outputs live on very
    different scales (unit-norm sentence embeddings beside post-activation CNN features)
    enter the MLP on an equal footing.
    """

    name: ClassVar[str] = "mlp"
    #: Trained by gradient descent, epoch by epoch (encoders may train with it).
    closed_form: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: Any) -> FusionHead:
        """A fresh head for a ``CoreConfig``."""
        return cls(config.image_dim, config.text_dim, config.hidden_dim, config.dropout, config.modalities)

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


@register_head
class KernelRidgeHead(nn.Module):
    """Kernel ridge regression (RBF kernel) over standardized image and text features.

    Chosen for the bundled model by 5-fold cross-validation on RAISE-TD's training split
    (``benchmarks/results/recipe_cv.md``): on 510 rated images a kernel regressor beats an MLP
    trained by gradient descent, and it fits in closed form in a second. Two regressors share
    the stored training features: one over image and text features, one over the image alone
    for images that come without a description (``has_text`` False), each trained for its job.

    ``score(x) = offset + sum_i coef_i * exp(-gamma * |x - x_i|^2)`` over the training
    features ``x_i`` (images, their mirrors, degraded and re-presented copies, see
    :mod:`realness.training.trainer`). The training features are stored in float16 to keep the
    weights small; the kernel is computed in float32.

    *Unlikeness.* Far from its training data a kernel regressor falls back to its offset, the
    average score, so a blank frame or pure noise would read as "average realness". The head
    therefore measures how unlike any training image an input is, in up to three ways
    (:data:`COMPONENTS`): ``unreal``, a regressor over the same image kernel fitted to 1 on stored
    degenerate rows and 0 on the training images; ``distance``, the distance to the nearest training
    image; ``statistics``, the Mahalanobis distance of the image's natural-scene statistics
    (:mod:`realness.core.scene_statistics`, the last ``statistics_dim`` image features) from the
    training images'. Each is put on one scale by the highest value and the spread of held-out
    training images (:meth:`calibrate`), the unlikeness is their sum past it, and the score falls by
    ``penalty_slope * log(1 + unlikeness)`` past 0 (:meth:`penalty`): continuously, so an image that
    moves toward a scene always gains, and untouched wherever an input is as close to the training
    data as a new training image would be.

    *Intervals.* Each score's interval is locally weighted split-conformal: its half-width is
    ``q * sigma(x) * (1 + log(1 + unlikeness))``, where ``sigma(x)`` is the kernel-weighted mean of the
    held-out absolute errors of the training images near ``x`` (``error_*``) and ``q`` the
    calibrated quantile of ``|error| / sigma`` (``calibration_*``, one entry per percent of coverage).
    :meth:`regress` gives the raw regression, without the penalty.
    """

    name: ClassVar[str] = "kernel_ridge"
    #: Fitted in one solve over frozen features (never by gradient descent; the image encoder stays frozen).
    closed_form: ClassVar[bool] = True

    @classmethod
    def from_config(cls, config: Any) -> KernelRidgeHead:
        """A fresh head for a ``CoreConfig`` (its support size set by training, scene statistics by the encoder's config)."""
        statistics = SCENE_STATISTICS_DIM if config.image_encoder.scene_statistics else 0
        return cls(config.image_dim, config.text_dim, config.kernel_support or 1, statistics)

    #: The ways of measuring unlikeness, in the order of ``unlikeness_high`` / ``unlikeness_spread``.
    COMPONENTS = ("unreal", "distance", "statistics")
    LEVELS = 101  # calibration_* hold the interval quantile at coverage 0 %, 1 %, ..., 100 %
    UNREAL_SPREADS = 4.0  # the unlikeness of an input the unreal regressor puts at 1 (like the negatives), at least

    def __init__(self, image_dim: int, text_dim: int, support: int, statistics_dim: int = 0):
        super().__init__()
        kernel_dim = image_dim - statistics_dim
        self.statistics_dim = statistics_dim
        self.register_buffer("image_mean", torch.zeros(kernel_dim))
        self.register_buffer("image_std", torch.ones(kernel_dim))
        self.register_buffer("text_scale", torch.ones(()))
        self.register_buffer("support_image", torch.zeros(support, kernel_dim, dtype=torch.float16))
        self.register_buffer("support_text", torch.zeros(support, text_dim, dtype=torch.float16))
        self.register_buffer("coef_with_text", torch.zeros(support))
        self.register_buffer("coef_image_only", torch.zeros(support))
        self.register_buffer("gamma_with_text", torch.ones(()))
        self.register_buffer("gamma_image_only", torch.ones(()))
        self.register_buffer("offset_with_text", torch.zeros(()))
        self.register_buffer("offset_image_only", torch.zeros(()))
        self.register_buffer("coef_unreal", torch.zeros(support))
        self.register_buffer("statistics_mean", torch.zeros(statistics_dim))
        self.register_buffer("statistics_precision", torch.zeros(statistics_dim, statistics_dim))
        self._register_calibration(support)

    def _register_calibration(self, support: int) -> None:
        for name, value in self._calibration_defaults(support).items():
            self.register_buffer(name, value)

    @classmethod
    def _calibration_defaults(cls, support: int) -> dict[str, torch.Tensor]:
        """Calibration buffers of an uncalibrated head: no penalty, no interval (NaN)."""
        return {
            "training_rows": torch.zeros(support),  # 1 on the rows that are the training images themselves
            "unlikeness_high": torch.full((len(cls.COMPONENTS),), float("inf")),
            "unlikeness_spread": torch.ones(len(cls.COMPONENTS)),
            "penalty_slope": torch.zeros(()),
            "error_with_text": torch.zeros(support),
            "error_image_only": torch.zeros(support),
            "calibration_with_text": torch.full((cls.LEVELS,), float("nan")),
            "calibration_image_only": torch.full((cls.LEVELS,), float("nan")),
        }

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved by an older release: no penalty and no interval (NaN), rather than a load error.
        support = state_dict[prefix + "coef_with_text"].shape[0] if prefix + "coef_with_text" in state_dict else 1
        for name, value in self._calibration_defaults(support).items():
            state_dict.setdefault(prefix + name, value)
        state_dict.setdefault(prefix + "coef_unreal", torch.zeros(support))
        for name in ("statistics_mean", "statistics_precision"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        for old in ("near_radius", "unreal_from", "unreal_to", "floor"):  # the 0.2 gate, replaced by the penalty
            state_dict.pop(prefix + old, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def calibrated(self) -> bool:
        """The head has intervals (:meth:`calibrate` ran)."""
        return not bool(torch.isnan(self.calibration_image_only).any())

    def split(self, image_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(kernel features, scene statistics or None)`` of ``N x image_dim`` image features."""
        if not self.statistics_dim:
            return image_features, None
        return image_features[:, : -self.statistics_dim], image_features[:, -self.statistics_dim :]

    def standardize(self, image_features: torch.Tensor, text_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The coordinates the kernel compares: z-scored image features, scaled unit-norm text features."""
        image = (self.split(image_features)[0].float() - self.image_mean) / self.image_std
        return image, text_features.float() * self.text_scale

    def image_only(self, image_features: torch.Tensor) -> torch.Tensor:
        """The raw image-only regression of ``N x kernel_dim`` features (the encoder's part only; no penalty)."""
        image = (image_features.float() - self.image_mean) / self.image_std
        distance = torch.cdist(image, self.support_image.float()).square()
        return self.offset_image_only + torch.exp(-self.gamma_image_only * distance) @ self.coef_image_only

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, has_text: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores ``B``: the regression, lowered by the penalty where an input is unlike the training images."""
        raw, parts, _, _ = self.regress(image_features, text_features, has_text)
        return raw - self.penalty(self.unlikeness(parts))

    def regress(
        self, image_features: torch.Tensor, text_features: torch.Tensor, has_text: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """``(raw score, unlikeness components, image kernel, has_text)``: the kernel regression without the penalty,
        each component of :data:`COMPONENTS` (uncalibrated), and the image kernel to every stored row."""
        image, text = self.standardize(image_features, text_features)
        support_image, support_text = self.support_image.float(), self.support_text.float()
        image_distance = torch.cdist(image, support_image).square()
        image_kernel = torch.exp(-self.gamma_image_only * image_distance)
        image_only = self.offset_image_only + image_kernel @ self.coef_image_only
        parts = {"unreal": image_kernel @ self.coef_unreal}
        rows = self.training_rows > 0
        if bool(rows.any()):
            parts["distance"] = (image_distance[:, rows].min(dim=1).values / image.shape[1]).sqrt()
        statistics = self.split(image_features)[1]
        if statistics is not None:
            centred = statistics.float() - self.statistics_mean
            parts["statistics"] = ((centred @ self.statistics_precision) * centred).sum(-1).clamp_min(0).sqrt()
        if has_text is None:
            has_text = torch.ones(len(image), dtype=torch.bool, device=image.device)
        has_text = has_text.to(image.device)
        if not bool(has_text.any()):
            return image_only, parts, image_kernel, has_text
        distance = image_distance + torch.cdist(text, support_text).square()
        with_text = self.offset_with_text + torch.exp(-self.gamma_with_text * distance) @ self.coef_with_text
        return torch.where(has_text, with_text, image_only), parts, image_kernel, has_text

    def unlikeness(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """How far past the held-out training images an input is: the sum over the calibrated components of
        ``max(0, value - highest held-out value) / scale`` (0: as close as a new training image would be)."""
        total = torch.zeros_like(parts["unreal"])
        for k, name in enumerate(self.COMPONENTS):
            if name in parts and bool(torch.isfinite(self.unlikeness_high[k])):
                total = total + (parts[name] - self.unlikeness_high[k]).clamp_min(0.0) / self.unlikeness_spread[k]
        return total

    def penalty(self, unlikeness: torch.Tensor) -> torch.Tensor:
        """What the score loses at ``unlikeness``: ``penalty_slope * log(1 + unlikeness)``, rising without end but
        slowly, so one degenerate sample cannot swamp the mean of a batch."""
        return self.penalty_slope * torch.log1p(unlikeness)

    def expected_error(self, image_kernel: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        """``sigma(x)``: the kernel-weighted mean held-out absolute error of the training images near each input
        (with a small pull toward the overall mean, so an input far from all of them gets that mean)."""
        rows = self.training_rows
        prior = 1e-3
        weight = image_kernel @ rows
        sigma = {}
        for name in ("with_text", "image_only"):
            errors = getattr(self, f"error_{name}")
            mean = (errors * rows).sum() / rows.sum().clamp_min(1.0)
            sigma[name] = (image_kernel @ (errors * rows) + prior * mean) / (weight + prior)
        return torch.where(has_text, sigma["with_text"], sigma["image_only"])

    def predict(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        has_text: torch.Tensor | None = None,
        *,
        level: float = 0.9,
    ) -> torch.Tensor:
        """``B x 3``: score, low and high end of its ``level`` interval (NaN ends for an uncalibrated head)."""
        raw, parts, image_kernel, has_text = self.regress(image_features, text_features, has_text)
        unlikeness = self.unlikeness(parts)
        score = raw - self.penalty(unlikeness)
        quantile = torch.where(has_text, self.quantile(self.calibration_with_text, level),
                               self.quantile(self.calibration_image_only, level))
        half = quantile * self.expected_error(image_kernel, has_text) * (1.0 + torch.log1p(unlikeness))
        return torch.stack([score, score - half, score + half], dim=1)

    @staticmethod
    def quantile(table: torch.Tensor, level: float) -> torch.Tensor:
        """The calibrated quantile at coverage ``level`` (linear between the stored percents)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"interval level must be between 0 and 1 (exclusive), not {level}")
        position = level * (len(table) - 1)
        below = int(position)
        return table[below] + (position - below) * (table[min(below + 1, len(table) - 1)] - table[below])

    @torch.no_grad()
    def calibrate(
        self,
        parts: dict[str, torch.Tensor],
        errors_with_text: torch.Tensor,
        errors_image_only: torch.Tensor,
        *,
        slope: float,
        quantile: float = 1.0,
    ) -> dict[str, float]:
        """Set the penalty and the intervals from out-of-fold training images (each scored by a head fitted without it).

        The first ``len(errors_with_text)`` stored rows must be those training images, in the same order.

        Args:
            parts: each held-out image's unlikeness components (:meth:`regress`) by the head that scored it.
            errors_with_text: its absolute error with its description, by that head's raw regression.
            errors_image_only: the same without the description.
            slope: the score lost per ``log(1 + unlikeness)``.
            quantile: each component's threshold: this quantile of the held-out training images' values (1: the highest).

        Returns:
            each component's highest held-out value, and the mean 90 % half-widths.
        """
        n = len(errors_with_text)
        self.training_rows.zero_()
        self.training_rows[:n] = 1.0
        report: dict[str, float] = {}
        for k, name in enumerate(self.COMPONENTS):
            value = parts.get(name)
            if value is None or (name == "unreal" and not bool(self.coef_unreal.any())):
                self.unlikeness_high[k] = float("inf")
                continue
            high = float(torch.quantile(value.double(), quantile))
            self.unlikeness_high[k] = high
            spread = high - float(value.median())
            if name == "unreal":  # fitted to 1 on the negatives: one like them is UNREAL_SPREADS out, however tight the spread
                spread = max(spread, (1.0 - high) / self.UNREAL_SPREADS)
            self.unlikeness_spread[k] = max(spread, 1e-6)
            report[f"unlikeness_high_{name}"] = high
        self.penalty_slope.fill_(slope)
        self.error_with_text.zero_()
        self.error_image_only.zero_()
        self.error_with_text[:n] = errors_with_text.float()
        self.error_image_only[:n] = errors_image_only.float()
        # Each training image's sigma from the other training images (leave one out), as a new image would get it.
        image = self.support_image[:n].float()
        kernel = torch.exp(-self.gamma_image_only * torch.cdist(image, self.support_image.float()).square())
        kernel[torch.arange(n), torch.arange(n)] = 0.0
        for name, errors in (("with_text", errors_with_text), ("image_only", errors_image_only)):
            has_text = torch.full((n,), name == "with_text")
            sigma = self.expected_error(kernel, has_text)
            getattr(self, f"calibration_{name}").copy_(conformal_table(errors.double() / sigma.double(), self.LEVELS).float())
            report[f"half_width_90_{name}"] = float((self.quantile(getattr(self, f"calibration_{name}"), 0.9) * sigma).mean())
        return report

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
            statistics_from: the unaltered training images' features, for the standardization (and the
                scene statistics' mean and covariance).
            alpha: ridge regularization.
            gamma_scale: RBF width as ``gamma = gamma_scale / feature dimension``.
            text_weight: the text block's share of the squared distance, relative to the image block's.
            unreal: ``N`` booleans, the negative rows; ``unreal`` is fitted to 1 on them, 0 elsewhere
                (None: no negatives, ``unreal`` is 0).
            unreal_alpha: ridge regularization of ``unreal``.

        Returns:
            The training RMSE of each regressor.
        """
        kernel_features, _ = self.split(image_features)
        reference, statistics = self.split(statistics_from)
        self.image_mean.copy_(reference.mean(0))
        self.image_std.copy_(reference.std(0).clamp_min(1e-4))
        if statistics is not None:
            self.statistics_mean.copy_(statistics.mean(0))
            self.statistics_precision.copy_(shrunk_precision(statistics))
        # Unit-norm text, scaled so that its squared norm is text_weight times the image block's expected one.
        self.text_scale.fill_((float(kernel_features.shape[1]) * text_weight) ** 0.5)
        self.support_image.copy_(((kernel_features.float() - self.image_mean) / self.image_std).half())
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


def shrunk_precision(samples: torch.Tensor, shrink: float = 0.1) -> torch.Tensor:
    """The inverse of ``samples``' covariance, shrunk toward its diagonal (stable with few samples per dimension)."""
    centred = samples.double() - samples.double().mean(0)
    covariance = centred.T @ centred / max(len(samples) - 1, 1)
    covariance = (1 - shrink) * covariance + shrink * torch.diag(torch.diag(covariance).clamp_min(1e-8))
    return torch.linalg.pinv(covariance).float()


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
