"""Degradations a person clearly sees (blur, noise, heavy JPEG, downscale-upscale, posterizing, tile shuffles),
and changes of presentation a person does not (rescaling, mild JPEG or WebP, crops).

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


def _pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image.permute(1, 2, 0).clamp(0, 1).numpy() * 255.0).round().astype(np.uint8))


def _tensor(picture: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(picture.convert("RGB")).copy()).permute(2, 0, 1).float() / 255.0


def webp(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip through a lossy WebP of the given ``quality`` (1-100)."""
    buffer = io.BytesIO()
    _pil(image).save(buffer, format="WEBP", quality=int(quality))
    return _tensor(Image.open(io.BytesIO(buffer.getvalue())))


def rescale(image: torch.Tensor, factor: float) -> torch.Tensor:
    """A copy ``factor`` times the size (Lanczos), as a pipeline that saves smaller or larger images makes it."""
    height, width = image.shape[-2:]
    size = (max(8, round(width * factor)), max(8, round(height * factor)))
    return _tensor(_pil(image).resize(size, Image.LANCZOS))


def centre_crop(image: torch.Tensor, aspect: float = 1.0) -> torch.Tensor:
    """The largest central crop of width / height ``aspect``."""
    height, width = image.shape[-2:]
    crop_h, crop_w = (height, round(height * aspect)) if width >= height * aspect else (round(width / aspect), width)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[:, top : top + crop_h, left : left + crop_w].clone()


def posterize_colours(image: torch.Tensor, colours: int) -> torch.Tensor:
    """The image in a palette of ``colours`` colours (median cut, no dithering)."""
    return _tensor(_pil(image).quantize(colors=int(colours), dither=Image.Dither.NONE))


def posterize_bits(image: torch.Tensor, bits: int) -> torch.Tensor:
    """Each channel kept to its ``bits`` highest bits."""
    levels = 2 ** int(bits)
    return torch.floor(image.clamp(0, 1) * 255.0 / (256 / levels)) * (256 / levels) / 255.0


def shuffle_tiles(image: torch.Tensor, grid: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The image cut into ``grid x grid`` tiles put back in a random order (a derangement: no tile stays)."""
    _, height, width = image.shape
    grid = min(grid, height, width)  # a tile is at least one pixel
    th, tw = height // grid, width // grid
    count = grid * grid
    tiles = image[:, : th * grid, : tw * grid].reshape(3, grid, th, grid, tw).permute(1, 3, 0, 2, 4).reshape(count, 3, th, tw)
    order = torch.randperm(count, generator=generator)
    while count > 1 and bool((order == torch.arange(count)).any()):
        order = torch.randperm(count, generator=generator)
    shuffled = tiles[order].reshape(grid, grid, 3, th, tw).permute(2, 0, 3, 1, 4).reshape(3, grid * th, grid * tw)
    return F.interpolate(shuffled[None], size=(height, width), mode="nearest")[0]


def random_presentation(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A copy people cannot tell from ``image``: rescaled (0.4-0.75x or 1.5-2.5x), JPEG 55-95, WebP 60-95 or a crop."""
    pick = int(torch.randint(0, 6, (), generator=generator))
    draw = float(torch.rand((), generator=generator))
    if pick == 0:
        return rescale(image, 0.4 + 0.35 * draw)
    if pick == 1:
        return rescale(image, 1.5 + 1.0 * draw)
    if pick == 2:
        return jpeg(image, round(55 + 40 * draw))
    if pick == 3:
        return webp(image, round(60 + 35 * draw))
    if pick == 4:
        return centre_crop(image, (1.0, 0.75, 1.0 / 0.75 * 0.9)[int(draw * 3)])
    return jpeg(rescale(image, 0.5 + 0.3 * draw), 85)


def random_gaming(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An edit that games a score: posterized (6-36 colours or 2-4 bits a channel) or cut in 2-6 tiles a side, shuffled."""
    pick = int(torch.randint(0, 3, (), generator=generator))
    draw = float(torch.rand((), generator=generator))
    if pick == 0:
        return posterize_colours(image, round(6 + 30 * draw))
    if pick == 1:
        return posterize_bits(image, 2 + int(draw * 3))
    return shuffle_tiles(image, 2 + int(draw * 5), generator)


# As degradation families (their strength is drawn inside): ``TrainingConfig.family_margins`` sets presentation's 0.
FAMILIES["gaming"] = (lambda x, s, g: random_gaming(x, g), 0.0, 1.0)
FAMILIES["presentation"] = (lambda x, s, g: random_presentation(x, g), 0.0, 1.0)
