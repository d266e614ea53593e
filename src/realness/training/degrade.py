"""Degradations a person clearly sees: blur, noise, heavy JPEG, downscale-upscale.

Used to train CORE to rank a degraded image below its source (so a generator cannot raise
its score by destroying detail) and by ``benchmarks/degradation.py`` to check it.
Every function maps a ``3 x H x W`` float image in [0, 1] to one of the same shape; the
random ones take a ``torch.Generator`` so results are reproducible.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from realness.io.pixels import resize_image


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (reflected borders)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return x.squeeze(0).clamp(0.0, 1.0)


def gaussian_noise(image: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive white Gaussian noise of ``sigma`` grey levels (0-255 scale)."""
    noise = torch.randn(image.shape, generator=generator, dtype=image.dtype) * (sigma / 255.0)
    return (image + noise).clamp(0.0, 1.0)


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip through a JPEG of the given ``quality`` (1-95)."""
    array = (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).to(image.dtype) / 255.0


def downscale(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (antialiased) and upscale back (bilinear): detail is lost."""
    height, width = image.shape[-2:]
    small = resize_image(image, (max(1, round(height / factor)), max(1, round(width / factor))))
    return resize_image(small, (height, width), antialias=False)


def random_degradation(image: torch.Tensor, family: str, generator: torch.Generator) -> torch.Tensor:
    """``image`` degraded by ``family`` (see :data:`FAMILIES`) at a strength drawn uniformly from its range."""
    function, low, high = FAMILIES[family]
    strength = low + (high - low) * torch.rand((), generator=generator).item()
    return function(image, strength, generator)


# family -> (function(image, strength, generator), weakest, strongest): a person sees each clearly.
FAMILIES: dict[str, tuple[Callable[..., torch.Tensor], float, float]] = {
    "blur": (lambda x, s, g: gaussian_blur(x, s), 1.0, 4.0),
    "noise": (gaussian_noise, 10.0, 30.0),
    "jpeg": (lambda x, s, g: jpeg(x, round(s)), 30.0, 10.0),
    "downscale": (lambda x, s, g: downscale(x, s), 2.0, 4.0),
}


def _at_strength(family: str, strength: float) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    function = FAMILIES[family][0]
    return lambda image, generator: function(image, strength, generator)


# name -> function of (image, generator): fixed strengths a person clearly sees (benchmarks/degradation.py).
DEGRADATIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    f"{family}_{strength:g}": _at_strength(family, strength)
    for family, strength in (
        ("blur", 2.0), ("blur", 4.0), ("noise", 15.0), ("noise", 30.0),
        ("jpeg", 20), ("jpeg", 10), ("downscale", 2.0), ("downscale", 4.0),
    )
}
