"""Degenerate training images: families of pictures no camera or generator of scenes produces.

A kernel head learns from them (``TrainingConfig.negatives``) how an image that is not a scene
looks, beside the scene statistics it measures (:mod:`realness.core.scene_statistics`). Each
family is randomized over its whole range (colours, spectra, angles, periods, sizes), and a
model is judged on a family it never saw (``benchmarks/score_notion.py``: leave one family out).
Every function takes a photograph (``3 x H x W`` in [0, 1], used by the families made from one),
and a ``torch.Generator``, and returns an image of the photograph's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from realness.training.degrade import gaussian_blur


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _colour(generator: torch.Generator) -> torch.Tensor:
    return torch.rand(3, 1, 1, generator=generator)


def flat(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random colour, with at most a trace of sensor-like noise."""
    amplitude = _uniform(generator, 0.0, 0.02)
    return (_colour(generator) + amplitude * torch.randn(photo.shape, generator=generator)).clamp(0, 1)


def spectral_noise(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Noise with a ``1 / f^beta`` power spectrum (white to brown, beta 0 to 2.5), grey or coloured."""
    _, height, width = photo.shape
    beta = _uniform(generator, 0.0, 2.5)
    channels = 3 if float(torch.rand((), generator=generator)) < 0.5 else 1
    white = torch.randn(channels, height, width, generator=generator)
    fy = torch.fft.fftfreq(height).abs()[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    radius = (fy.square() + fx.square()).sqrt().clamp_min(1.0 / max(height, width))
    shaped = torch.fft.irfft2(torch.fft.rfft2(white) / radius.pow(beta / 2), s=(height, width))
    shaped = (shaped - shaped.mean()) / shaped.std().clamp_min(1e-8)
    noise = _colour(generator) + _uniform(generator, 0.05, 0.3) * shaped
    return noise.expand(3, -1, -1).clamp(0, 1)


def pattern(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Stripes or a checkerboard at any angle and period, square or sine wave, in two random colours."""
    _, height, width = photo.shape
    angle = _uniform(generator, 0.0, math.pi)
    period = math.exp(_uniform(generator, math.log(3.0), math.log(160.0)))
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    u = (x * math.cos(angle) + y * math.sin(angle)) * 2 * math.pi / period
    wave = torch.sin(u)
    if float(torch.rand((), generator=generator)) < 0.5:  # a checkerboard: the product of two crossed waves
        wave = wave * torch.sin((-x * math.sin(angle) + y * math.cos(angle)) * 2 * math.pi / period)
    if float(torch.rand((), generator=generator)) < 0.5:
        wave = wave.sign()
    first, second = _colour(generator), _colour(generator)
    return first + (second - first) * (wave + 1) / 2


def blobs(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Smooth colour fields: a coarse random grid (2 to 9 cells a side) enlarged smoothly."""
    _, height, width = photo.shape
    cells = (int(torch.randint(2, 10, (), generator=generator)), int(torch.randint(2, 10, (), generator=generator)))
    coarse = torch.rand(1, 3, *cells, generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def smear(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The photograph blurred beyond recognition of any detail (Gaussian sigma 12 to 40 px at 512 px)."""
    sigma = _uniform(generator, 12.0, 40.0) * max(photo.shape[1:]) / 512
    return gaussian_blur(photo, sigma)


def fine_shuffle(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The photograph cut into 8 x 8 to 48 x 48 tiles put back in a random order."""
    _, height, width = photo.shape
    rows = min(int(torch.randint(8, 49, (), generator=generator)), height)  # a tile is at least one pixel
    columns = min(max(8, round(rows * width / height)), width)
    th, tw = height // rows, width // columns
    cropped = photo[:, : th * rows, : tw * columns]
    tiles = cropped.reshape(3, rows, th, columns, tw).permute(1, 3, 0, 2, 4).reshape(rows * columns, 3, th, tw)
    tiles = tiles[torch.randperm(rows * columns, generator=generator)]
    shuffled = tiles.reshape(rows, columns, 3, th, tw).permute(2, 0, 3, 1, 4).reshape(3, rows * th, columns * tw)
    return F.interpolate(shuffled[None], size=(height, width), mode="nearest")[0]


#: family -> function(photo, generator): the degenerate families a kernel head may learn as unreal.
FAMILIES: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "flat": flat,
    "noise": spectral_noise,
    "pattern": pattern,
    "blobs": blobs,
    "smear": smear,
    "fine shuffle": fine_shuffle,
}


def negative_image(family: str, photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random image of ``family`` at ``photo``'s size.

    Raises:
        ValueError: an unknown family (the message lists the known ones).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown negative family {family!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[family](photo.float(), generator).float().clamp(0, 1).contiguous()
