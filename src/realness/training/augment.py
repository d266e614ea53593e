"""Training augmentation in plain torch ops: flips, small rotations, colour jitter.

Applied to full-resolution ``3 x H x W`` images in [0, 1] before an encoder's resize.
Deliberately mild: realness depends on fine detail, so nothing here should create or
remove an artifact a person would notice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms (all drawn uniformly).

    Attributes:
        flip: probability of a horizontal flip.
        max_rotation: largest rotation in degrees (either direction); borders are reflected.
        brightness: largest relative brightness change.
        contrast: largest relative contrast change.
        saturation: largest relative saturation change.
    """

    flip: float = 0.5
    max_rotation: float = 5.0
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A randomly transformed copy of ``image`` (3xHxW, [0, 1]); ``generator`` makes it reproducible."""

        def uniform(bound: float) -> float:
            return (torch.rand((), generator=generator).item() * 2 - 1) * bound

        x = image
        if torch.rand((), generator=generator).item() < self.flip:
            x = x.flip(-1)
        if self.max_rotation > 0:
            x = rotate(x, uniform(self.max_rotation))
        x = x * (1 + uniform(self.brightness))
        mean = x.mean()
        x = (x - mean) * (1 + uniform(self.contrast)) + mean
        gray = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
        x = (x - gray) * (1 + uniform(self.saturation)) + gray
        return x.clamp(0.0, 1.0)


def rotate(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate ``3 x H x W`` about its centre by ``degrees`` (bilinear, reflected borders)."""
    if degrees == 0:
        return image
    height, width = image.shape[-2:]
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid works in normalized coordinates; correct for a non-square aspect ratio.
    aspect = width / height
    theta = torch.tensor([[cos, -sin / aspect, 0.0], [sin * aspect, cos, 0.0]], dtype=image.dtype).unsqueeze(0)
    grid = F.affine_grid(theta, [1, 3, height, width], align_corners=False)
    return F.grid_sample(image.unsqueeze(0), grid, mode="bilinear", padding_mode="reflection", align_corners=False).squeeze(0)
