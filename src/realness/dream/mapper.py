"""DREAM: dense realness maps from sliding windows, a description and a dual encoder.

For every window k of every size W: ``r_k = 1 - cos(u_k, v)`` with u_k the window's
embedding and v the description's (the description says what looks unrealistic, so a
window that matches it scores low). ``R_W(x, y)`` is the mean of r_k over the windows of
size W covering (x, y); ``R = max_W R_W``, min-max normalized to [0, 1]. High = realistic.

The windows of all images and sizes of one call stream through the embedder in chunks of
``chunk_size`` (full batches, whatever the image sizes), cut from ``unfold`` views and
resized on the device; nothing loops over windows in Python.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    import matplotlib.figure
    import PIL.Image
import torch.nn.functional as F

from realness.dream.embedders import DEFAULT_MODEL, Embedder, build_embedder
from realness.dream.windows import (
    INTERPOLATIONS,
    combine_scales,
    gather_windows,
    overlap_average,
    resize_windows,
    window_starts,
)
from realness.errors import InvalidImageError, SkippedItem, check_on_error

#: The paper's window sides (pixels) and stride.
DEFAULT_WINDOW_SIZES = (128, 64, 32)
DEFAULT_STRIDE = 4
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# Auto chunk size: this share of the free memory, and at most this many windows (beyond
# which a CPU gains nothing and a GPU little).
_MEMORY_SHARE = 0.25
_MAX_CHUNK = {"cpu": 256, "cuda": 1024}


@dataclass
class RealnessMap:
    """The realness map of one image.

    Attributes:
        map: ``H x W`` float32 array in [0, 1] aligned with the input pixels; high = realistic.
        per_scale: ``{window_size: H x W raw R_W}`` before the max and the normalization
            (sizes larger than the image are absent).
        raw: ``max_W R_W`` before the normalization.
        description: The text the map was computed against.
        name: The input's readable name.
        image: The input as a ``3 x H x W`` float tensor in [0, 1] (for rendering).
        stride: The window stride used.
    """

    map: np.ndarray
    per_scale: dict[int, np.ndarray]
    raw: np.ndarray
    description: str
    name: str
    image: torch.Tensor = field(repr=False)
    stride: int = DEFAULT_STRIDE

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the map and the input."""
        return tuple(self.map.shape)

    def overlay(self, *, alpha: float = 0.5, cmap: str = "magma", colorbar: bool = True) -> PIL.Image.Image:
        """The image blended with the colour-mapped map (see :func:`realness.dream.render.overlay`).

        Returns:
            A PIL image.
        """
        from realness.dream.render import overlay

        return overlay(self.image, self.map, alpha=alpha, cmap=cmap, colorbar=colorbar)

    def figure(self, *, cmap: str = "magma") -> matplotlib.figure.Figure:
        """Image | overlay | per-scale maps side by side (see :func:`realness.dream.render.figure`).

        Returns:
            A matplotlib Figure.
        """
        from realness.dream.render import figure

        return figure(self, cmap=cmap)

    def save(self, path: str | Path) -> Path:
        """Write the map: ``.npy`` the float array, an image suffix the overlay, ``.pdf``/``.svg`` the figure.

        Args:
            path: Destination; its suffix picks the format.

        Returns:
            The path written.
        """
        from realness.dream.render import save_map

        return save_map(self, path)


@dataclass
class RealnessMapBatch:
    """Maps of a batch, aligned with the inputs.

    Attributes:
        maps: One :class:`RealnessMap` per input, None where the item was skipped.
        names: A readable name per input.
        skipped: The items left out under ``on_error="skip"``, with the reason.
    """

    maps: list[RealnessMap | None]
    names: list[str]
    skipped: list[SkippedItem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, index: int) -> RealnessMap | None:
        return self.maps[index]

    def __iter__(self) -> Iterator[RealnessMap | None]:
        return iter(self.maps)


@dataclass
class _Job:
    """The windows of one size over one image, and their scores once embedded."""

    image_index: int
    window: int
    tops: torch.Tensor
    lefts: torch.Tensor
    scores: torch.Tensor

    @property
    def count(self) -> int:
        return len(self.tops) * len(self.lefts)


class RealnessMapper:
    """Dense realness maps (DREAM): where an image stops looking real, given a description.

    Args:
        model: A dual encoder: Hub name or local directory of a transformers CLIP/SigLIP
            model (default: CLIP ViT-B/32, as in the paper), ``"open_clip:ARCH[:TAG]"``, or
            an :class:`~realness.dream.embedders.Embedder` object.
        window_sizes: Window sides in pixels (the paper: 128, 64, 32).
        stride: Step between windows in pixels (the paper: 4).
        device: ``cpu``, ``cuda``, ``cuda:1``, ... (default: cuda when available).
        chunk_size: Windows embedded per forward pass; None picks it from the free device memory.
        interpolation: How windows are resized to the embedder's input size
            (``F.interpolate`` mode: ``bicubic``, ``bilinear``, ``nearest``, ``area``).
        antialias: Antialiased resizing; with ``bicubic`` this is PIL's bicubic, the CLIP
            processors' resampling.
        precision: ``auto`` (bf16 autocast on CUDA when supported, else fp16; fp32 on CPU),
            ``fp32``, ``bf16`` or ``fp16``.
        describer: Writes descriptions when none is given: a spec for
            ``realness.describers.factory.build_describer`` or an object with ``describe``.
        progress: Show a progress bar over windows.
        revision: Hub revision of ``model``.

    Raises:
        WeightsNotFoundError: The model's weights are not available.
        ValueError: A bad option.
    """

    def __init__(
        self,
        model: str | Path | Embedder = DEFAULT_MODEL,
        *,
        window_sizes: Sequence[int] = DEFAULT_WINDOW_SIZES,
        stride: int = DEFAULT_STRIDE,
        device: str | torch.device | None = None,
        chunk_size: int | None = None,
        interpolation: str = "bicubic",
        antialias: bool = True,
        precision: str = "auto",
        describer: Any = None,
        progress: bool = False,
        revision: str | None = None,
    ):
        self.window_sizes = tuple(sorted({int(size) for size in window_sizes}, reverse=True))
        if not self.window_sizes or min(self.window_sizes) < 1:
            raise ValueError(f"window_sizes must be positive integers, got {tuple(window_sizes)}")
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, not {interpolation!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.stride = int(stride)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.embedder = build_embedder(model, revision=revision).to(self.device)
        self.chunk_size = chunk_size or auto_chunk_size(self.embedder.input_size, self.device)
        self.interpolation = interpolation
        self.antialias = antialias
        self.dtype = _autocast_dtype(precision, self.device)
        self.describer = describer
        self.progress = progress

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = DEFAULT_MODEL, **options: Any) -> "RealnessMapper":
        """A mapper over the dual encoder ``name_or_dir`` (Hub name or local directory).

        Args:
            name_or_dir: See ``model`` in :class:`RealnessMapper`.
            **options: The other :class:`RealnessMapper` arguments.

        Returns:
            The mapper.
        """
        return cls(name_or_dir, **options)

    def __call__(
        self,
        images: Any,
        description: str | Sequence[str | None] | None = None,
        *,
        on_error: str = "raise",
    ) -> RealnessMap | RealnessMapBatch:
        """Map one image or a batch.

        Args:
            images: One image or a batch in any form ``realness.inputs.load_images`` accepts
                (paths, bytes, PIL, arrays, tensors; sizes may differ).
            description: What looks unrealistic: one string for every image, one per image,
                or None to have the mapper's describer write them.
            on_error: ``"raise"`` stops at the first bad item; ``"skip"`` leaves None for it
                and records why in ``skipped`` (a single image that cannot be mapped still
                raises: there is nothing else to return).

        Returns:
            A :class:`RealnessMap` for a single image, a :class:`RealnessMapBatch` for a batch.

        Raises:
            InvalidImageError: A bad image, or one smaller than every window (``on_error="raise"``).
            ValueError: Descriptions missing or not one per image.
        """
        from realness.inputs import load_images

        check_on_error(on_error)
        batch = load_images(images, on_error=on_error)
        texts = self._descriptions(batch, description, on_error)
        for index, tensor in enumerate(batch.tensors):
            if tensor is None:
                continue
            try:
                self._check_size(tensor, batch.names[index])
            except InvalidImageError as error:
                if on_error == "raise":
                    raise
                batch.skipped.append(SkippedItem(index, batch.names[index], error.reason))
                batch.tensors[index] = None
        batch.skipped.sort(key=lambda item: item.index)
        maps = self._map_tensors(batch.tensors, texts, batch.names)
        if batch.single:
            if maps[0] is None:
                reason = batch.skipped[0].reason if batch.skipped else "not mapped"
                raise InvalidImageError(batch.names[0], reason)
            return maps[0]
        return RealnessMapBatch(maps=maps, names=batch.names, skipped=batch.skipped)

    # --- steps ------------------------------------------------------------------------

    def _descriptions(self, batch: Any, description: Any, on_error: str) -> list[str | None]:
        count = len(batch)
        if isinstance(description, str):
            return [description] * count
        if description is not None:
            texts = list(description)
            if len(texts) != count:
                raise ValueError(f"got {len(texts)} descriptions for {count} images")
            if any(text is None for text in texts) and self.describer is None:
                raise ValueError("a description is None and the mapper has no describer to write it")
            if all(text is not None for text in texts):
                return texts
        elif self.describer is None:
            raise ValueError("no description given and the mapper has no describer: pass description= or describer=")
        else:
            texts = [None] * count
        return self._describe_missing(batch, texts, on_error)

    def _describe_missing(self, batch: Any, texts: list[str | None], on_error: str) -> list[str | None]:
        describer = self.describer
        if isinstance(describer, str):
            from realness.describers.factory import build_describer

            describer = self.describer = build_describer(describer)
        wanted = [i for i, text in enumerate(texts) if text is None and batch.tensors[i] is not None]
        written = describer.describe([batch.tensors[i] for i in wanted], on_error=on_error) if wanted else []
        for index, result in zip(wanted, written):
            if result.text is None:
                reason = f"no description: {getattr(result, 'error', None) or 'the describer failed'}"
                batch.skipped.append(SkippedItem(index, batch.names[index], reason))
                batch.tensors[index] = None
            texts[index] = result.text
        return texts

    def _check_size(self, image: torch.Tensor, name: str) -> None:
        height, width = image.shape[-2:]
        if not self._fitting_sizes(height, width):
            raise InvalidImageError(
                name,
                f"image is {width}x{height} pixels, smaller than every window "
                f"({', '.join(str(size) for size in self.window_sizes)} px)",
            )

    def _fitting_sizes(self, height: int, width: int) -> list[int]:
        return [size for size in self.window_sizes if size <= min(height, width)]

    @torch.inference_mode()
    def _map_tensors(
        self, images: list[torch.Tensor | None], texts: list[str | None], names: list[str]
    ) -> list[RealnessMap | None]:
        wanted = [i for i, image in enumerate(images) if image is not None]
        if not wanted:
            return [None] * len(images)
        unique_texts = sorted({texts[i] for i in wanted})
        with self._autocast():
            text_embeddings = F.normalize(self.embedder.embed_texts(unique_texts).float(), dim=-1)
        text_of = {text: row for text, row in zip(unique_texts, text_embeddings)}

        jobs = []
        for index in wanted:
            height, width = images[index].shape[-2:]
            for size in self._fitting_sizes(height, width):
                tops = window_starts(height, size, self.stride).to(self.device)
                lefts = window_starts(width, size, self.stride).to(self.device)
                scores = torch.empty(len(tops) * len(lefts), device=self.device)
                jobs.append(_Job(index, size, tops, lefts, scores))
        self._score_windows(jobs, images, texts, text_of)

        maps: list[RealnessMap | None] = [None] * len(images)
        for index in wanted:
            image = images[index]
            height, width = image.shape[-2:]
            per_scale = {
                job.window: overlap_average(
                    job.scores.view(len(job.tops), len(job.lefts)), job.tops, job.lefts, job.window, height, width
                )
                for job in jobs
                if job.image_index == index
            }
            combined = combine_scales(list(per_scale.values()))
            maps[index] = RealnessMap(
                map=combined.cpu().numpy(),
                per_scale={size: scale.cpu().numpy() for size, scale in per_scale.items()},
                raw=torch.stack(list(per_scale.values())).amax(0).cpu().numpy(),
                description=texts[index],
                name=names[index],
                image=image,
                stride=self.stride,
            )
        return maps

    def _score_windows(
        self, jobs: list[_Job], images: list[torch.Tensor | None], texts: list[str | None], text_of: dict
    ) -> None:
        """Fill every job's scores with r_k = 1 - cos(u_k, v), a chunk of windows at a time."""
        from tqdm.auto import tqdm

        size = self.embedder.input_size
        mean = torch.tensor(self.embedder.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.embedder.std, device=self.device).view(1, 3, 1, 1)
        on_device: dict[int, torch.Tensor] = {}
        total = sum(job.count for job in jobs)
        with tqdm(total=total, unit="win", desc="windows", disable=not self.progress) as bar:
            for pieces in _chunks(jobs, self.chunk_size):
                batch = []
                for job, start, stop in pieces:
                    if job.image_index not in on_device:
                        on_device.clear()  # keep one image on the device at a time
                        on_device[job.image_index] = images[job.image_index].to(self.device, torch.float32)
                    flat = torch.arange(start, stop, device=self.device)
                    windows = gather_windows(
                        on_device[job.image_index],
                        job.window,
                        job.tops[flat // len(job.lefts)],
                        job.lefts[flat % len(job.lefts)],
                    )
                    batch.append(resize_windows(windows, size, interpolation=self.interpolation, antialias=self.antialias))
                pixels = (torch.cat(batch) if len(batch) > 1 else batch[0]).sub_(mean).div_(std)
                with self._autocast():
                    embeddings = F.normalize(self.embedder.embed_images(pixels).float(), dim=-1)
                offset = 0
                for job, start, stop in pieces:
                    text = text_of[texts[job.image_index]]
                    job.scores[start:stop] = 1.0 - embeddings[offset : offset + stop - start] @ text
                    offset += stop - start
                bar.update(offset)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def _chunks(jobs: list[_Job], chunk_size: int) -> Iterator[list[tuple[_Job, int, int]]]:
    """Cut the concatenated windows of all jobs into runs of ``chunk_size`` (the last may be short)."""
    pieces: list[tuple[_Job, int, int]] = []
    room = chunk_size
    for job in jobs:
        start = 0
        while start < job.count:
            stop = min(job.count, start + room)
            pieces.append((job, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield pieces
                pieces, room = [], chunk_size
    if pieces:
        yield pieces


def auto_chunk_size(input_size: int, device: torch.device) -> int:
    """Windows per forward pass that fit a share of the free memory of ``device``.

    The estimate per window is the resized window in float32 times 16, a generous bound on the
    cut, resized and normalized copies plus the activations of a ViT-B-sized tower.

    Args:
        input_size: The embedder's input side in pixels.
        device: Where the windows are embedded.

    Returns:
        A chunk size between 1 and 256 (CPU) or 1024 (CUDA).
    """
    per_window = 3 * input_size * input_size * 4 * 16
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = _available_ram()
    cap = _MAX_CHUNK.get(device.type, _MAX_CHUNK["cpu"])
    return max(1, min(cap, int(free * _MEMORY_SHARE) // per_window))


def _available_ram() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest 4 GB
        return 4 << 30


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return torch.float32
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


@functools.lru_cache(maxsize=2)
def _cached_embedder(model: str, revision: str | None) -> Embedder:
    return build_embedder(model, revision=revision)


def realness_map(
    images: Any,
    description: str | Sequence[str | None] | None = None,
    *,
    model: str | Path | Embedder = DEFAULT_MODEL,
    on_error: str = "raise",
    revision: str | None = None,
    **options: Any,
) -> RealnessMap | RealnessMapBatch:
    """Functional DREAM: the realness map(s) of ``images`` given their description(s).

    The embedder of a named model is loaded once and reused by later calls.

    Args:
        images: One image or a batch (see :meth:`RealnessMapper.__call__`).
        description: One string, one per image, or None (then pass ``describer=``).
        model: See :class:`RealnessMapper`.
        on_error: ``"raise"`` or ``"skip"``.
        revision: Hub revision of ``model``.
        **options: Other :class:`RealnessMapper` arguments (``window_sizes``, ``stride``, ...).

    Returns:
        A :class:`RealnessMap` for one image, a :class:`RealnessMapBatch` for a batch.

    Raises:
        WeightsNotFoundError: The model's weights are not available.
        InvalidImageError: A bad image (``on_error="raise"``).
    """
    embedder = model if isinstance(model, Embedder) else _cached_embedder(str(model), revision)
    return RealnessMapper(embedder, **options)(images, description, on_error=on_error)


__all__ = [
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW_SIZES",
    "RealnessMap",
    "RealnessMapBatch",
    "RealnessMapper",
    "auto_chunk_size",
    "realness_map",
]
