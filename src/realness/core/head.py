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
    """

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

    def standardize(self, image_features: torch.Tensor, text_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The coordinates the kernel compares: z-scored image features, scaled unit-norm text features."""
        image = (image_features.float() - self.image_mean) / self.image_std
        return image, text_features.float() * self.text_scale

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, has_text: torch.Tensor | None = None
    ) -> torch.Tensor:
        image, text = self.standardize(image_features, text_features)
        support_image, support_text = self.support_image.float(), self.support_text.float()
        image_distance = torch.cdist(image, support_image).square()
        image_only = self.offset_image_only + torch.exp(-self.gamma_image_only * image_distance) @ self.coef_image_only
        if has_text is None:
            has_text = torch.ones(len(image), dtype=torch.bool, device=image.device)
        if not bool(has_text.any()):
            return image_only
        distance = image_distance + torch.cdist(text, support_text).square()
        with_text = self.offset_with_text + torch.exp(-self.gamma_with_text * distance) @ self.coef_with_text
        return torch.where(has_text.to(image.device), with_text, image_only)

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
    ) -> dict[str, float]:
        """Solve both regressors in closed form: ``coef = (K + alpha * W^-1)^-1 (y - offset)``.

        Args:
            image_features: ``N x image_dim`` training rows (sources, mirrors, degraded copies).
            text_features: ``N x text_dim``, the description of each row's source image.
            targets: ``N`` scores to regress (MOS; MOS minus a margin for degraded copies).
            weights: ``N`` per-row weights of the squared error.
            statistics_from: the unaltered training images' features, for the standardization.
            alpha: ridge regularization.
            gamma_scale: RBF width as ``gamma = gamma_scale / feature dimension``.
            text_weight: the text block's share of the squared distance, relative to the image block's.

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
        errors = {}
        for name, distance, dim in (
            ("with_text", image_distance + torch.cdist(text, text).square(), image.shape[1] + text.shape[1]),
            ("image_only", image_distance, image.shape[1]),
        ):
            gamma = gamma_scale / dim
            kernel = torch.exp(-gamma * distance)
            offset = float((w * y).sum() / w.sum())
            coef = torch.linalg.solve(kernel + torch.diag(alpha / w), y - offset)
            getattr(self, f"coef_{name}").copy_(coef.float())
            getattr(self, f"gamma_{name}").fill_(gamma)
            getattr(self, f"offset_{name}").fill_(offset)
            fitted = kernel @ coef + offset
            errors[f"train_rmse_{name}"] = float(((fitted - y) ** 2).mean().sqrt())
        return errors
