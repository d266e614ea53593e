"""Degenerate images: what an eval loop meets early in training (noise, blank frames, collapsed samples).

Benchmark and test code (``benchmarks/off_distribution.py``, ``tests/test_off_distribution.py``): a
realness score must put every one of them below real photographs. :data:`NAMED_KINDS` are the kinds
issue 30 names; :data:`OTHER_KINDS` are of the same family. Fixed kinds, made by other code than the
randomized families a model trains on (``realness.training.negatives``).

Every image is a ``3 x H x W`` float tensor in [0, 1]; a kind that needs a photograph
(shuffled tiles) takes one, the others ignore it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

Size = tuple[int, int]


def _uniform_noise(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    return torch.rand(3, *size, generator=g)


def _gaussian_noise(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    return (0.5 + 0.2 * torch.randn(3, *size, generator=g)).clamp(0, 1)


def _flat(value: float) -> Callable[[torch.Tensor, Size, torch.Generator], torch.Tensor]:
    return lambda photo, size, g: torch.full((3, *size), value)


def _checkerboard(photo: torch.Tensor, size: Size, g: torch.Generator, cell: int = 32) -> torch.Tensor:
    rows = torch.arange(size[0]).div(cell, rounding_mode="floor")
    columns = torch.arange(size[1]).div(cell, rounding_mode="floor")
    board = ((rows[:, None] + columns[None, :]) % 2).float()
    return board.expand(3, -1, -1).clone()


def shuffled_tiles(photo: torch.Tensor, grid: int, g: torch.Generator) -> torch.Tensor:
    """``photo`` cut into ``grid x grid`` tiles put back in a random order (the edges it loses off the grid stay off)."""
    _, height, width = photo.shape
    th, tw = height // grid, width // grid
    tiles = photo[:, : th * grid, : tw * grid].reshape(3, grid, th, grid, tw).permute(1, 3, 0, 2, 4).reshape(grid * grid, 3, th, tw)
    tiles = tiles[torch.randperm(grid * grid, generator=g)]
    return tiles.reshape(grid, grid, 3, th, tw).permute(2, 0, 3, 1, 4).reshape(3, grid * th, grid * tw)


def _stripes(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    colours = torch.rand(3, 12, generator=g)
    band = torch.arange(size[1]) * 12 // size[1]
    return colours[:, band][:, None, :].expand(3, size[0], size[1]).clone()


def _gradient(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    start, end = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
    ramp = torch.linspace(0, 1, size[1])[None, None, :]
    return (start + (end - start) * ramp).expand(3, size[0], size[1]).clone()


def _salt_and_pepper(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    image = torch.full((3, *size), 0.5)
    draw = torch.rand(1, *size, generator=g)
    image = torch.where(draw < 0.1, torch.zeros(()), image)
    return torch.where(draw > 0.9, torch.ones(()), image)


def _blobs(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    coarse = torch.rand(1, 3, 4, 5, generator=g)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _solid_colour_jpeg(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    colour = torch.rand(3, 1, 1, generator=g).expand(3, *size)
    pixels = (colour.permute(1, 2, 0) * 255).round().byte().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=10)
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return torch.from_numpy(np.asarray(decoded).copy()).permute(2, 0, 1).float() / 255


def _upscaled_tiny_noise(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    tiny = torch.rand(1, 3, 6, 8, generator=g)
    return torch.nn.functional.interpolate(tiny, size=size, mode="nearest")[0]


def _pixel_shuffle(photo: torch.Tensor, size: Size, g: torch.Generator) -> torch.Tensor:
    flat = photo.reshape(3, -1)
    return flat[:, torch.randperm(flat.shape[1], generator=g)].reshape(photo.shape)


#: kind -> function(photo, (height, width), generator): the kinds issue 30 names.
NAMED_KINDS: dict[str, Callable[[torch.Tensor, Size, torch.Generator], torch.Tensor]] = {
    "uniform noise": _uniform_noise,
    "gaussian noise": _gaussian_noise,
    "black": _flat(0.0),
    "white": _flat(1.0),
    "gray": _flat(0.5),
    "checkerboard": _checkerboard,
    "shuffled tiles 8x8": lambda photo, size, g: shuffled_tiles(photo, 8, g),
}

#: Kinds of the same family never used to choose the recipe: they check it is not tuned to the named list.
OTHER_KINDS: dict[str, Callable[[torch.Tensor, Size, torch.Generator], torch.Tensor]] = {
    "stripes": _stripes,
    "gradient": _gradient,
    "salt and pepper": _salt_and_pepper,
    "blobs": _blobs,
    "solid colour + JPEG": _solid_colour_jpeg,
    "upscaled tiny noise": _upscaled_tiny_noise,
    "shuffled tiles 4x4": lambda photo, size, g: shuffled_tiles(photo, 4, g),
    "shuffled tiles 16x16": lambda photo, size, g: shuffled_tiles(photo, 16, g),
    "shuffled pixels": _pixel_shuffle,
}

ALL_KINDS = {**NAMED_KINDS, **OTHER_KINDS}


def degenerate_image(kind: str, photo: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """A ``3 x H x W`` degenerate image of ``kind`` at ``photo``'s size (a photograph, for the kinds made from one).

    Raises:
        ValueError: an unknown kind (the message lists the known ones).
    """
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown degenerate kind {kind!r}; choose one of {', '.join(ALL_KINDS)}")
    generator = torch.Generator().manual_seed(seed)
    return ALL_KINDS[kind](photo.float(), tuple(photo.shape[1:]), generator).float().clamp(0, 1)
