"""The fusion head: standardize each feature set, concatenate, one hidden layer, one score."""

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

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        image = (image_features - self.image_mean) / self.image_std
        text = (text_features - self.text_mean) / self.text_std
        if not self.use_image:
            image = torch.zeros_like(image)
        if not self.use_text:
            text = torch.zeros_like(text)
        return self.mlp(torch.cat([image, text], dim=-1)).squeeze(-1)
