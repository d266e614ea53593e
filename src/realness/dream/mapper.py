"""DREAM: dense realness maps from sliding windows, a description and a dual encoder.

For every window k of every size W: ``r_k = 1 - cos(u_k, v)`` with u_k the window's
embedding and v the description's (the description says what looks unrealistic, so a
window that matches it scores low). ``R_W(x, y)`` is the mean of r_k over the windows of
size W covering (x, y); ``R = max_W R_W``, min-max normalized to [0, 1]. High = realistic.

The windows of all images and sizes of one call stream through the embedder in batches of
``batch_size`` windows (full batches, whatever the image sizes), cut from ``unfold`` views
and resized on the device; nothing loops over windows in Python.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from realness.describers.descriptions import (
    DescriptionsLike,
    as_describer,
    fill_missing,
    missing_description_failures,
    resolve_descriptions,
)
from realness.dream.embedders import DEFAULT_EMBEDDER, Embedder, build_embedder
from realness.dream.methods import MapMethod, map_method, register_map_method
from realness.dream.result import DEFAULT_STRIDE, RealnessMap, RealnessMapBatch
from realness.dream.windows import combine_scales, gather_windows, overlap_average, window_starts
from realness.errors import DescriptionsError, InvalidImageError, SkippedItem, SlowConfigurationWarning, check_on_error
from realness.io.inputs import load_images, split_batch
from realness.io.pixels import INTERPOLATIONS, normalize, resize_image
from realness.io.tensor_batch import load_tensor_batch
from realness.runtime.device import PRECISIONS, DeviceLike, autocast, check_batch_size, check_precision, resolve_device

#: The paper's window sides (pixels); the stride is :data:`DEFAULT_STRIDE`.
DEFAULT_WINDOW_SIZES = (128, 64, 32)

# Auto batch size: this share of the free memory, and at most this many windows (beyond
# which a CPU gains nothing and a GPU little).
_MEMORY_SHARE = 0.25
_MAX_BATCH = {"cpu": 256, "cuda": 1024}
# A run measured to take longer than this per image says so once, with the flags that speed it up.
SLOW_SECONDS_PER_IMAGE = 60.0


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


@register_map_method
class RealnessMapper(MapMethod):
    """Dense realness maps (DREAM): where an image stops looking real, given a description.

    Args:
        model: A dual encoder: Hub name (``org/repo`` or ``hf-hub:org/repo``) or local directory
            of a transformers CLIP/SigLIP model (default: CLIP ViT-B/32, as in the paper),
            ``"open_clip:ARCH[:TAG]"``, or an :class:`~realness.dream.embedders.Embedder` object.
        window_sizes: Window sides in pixels (the paper: 128, 64, 32).
        stride: Step between windows in pixels (the paper: 4). Work grows with
            ``1 / stride**2``: stride 16 is 16 times less than stride 4.
        device: ``cpu``, ``cuda``, ``cuda:1``, ... (default: cuda when available); a device this
            machine lacks raises :class:`~realness.errors.DeviceError`.
        precision: ``auto`` (bf16 autocast on CUDA when supported, else fp16; fp32 on CPU),
            ``fp32``, ``bf16`` or ``fp16``.
        batch_size: Windows embedded per forward pass; None picks it from the free device memory.
        interpolation: How windows are resized to the embedder's input size
            (``F.interpolate`` mode: ``bicubic``, ``bilinear``, ``nearest``, ``area``).
        antialias: Antialiased resizing; with ``bicubic`` this is PIL's bicubic, the CLIP
            processors' resampling.
        describer: Writes descriptions for images that come without one: a describer object
            or a name such as ``"openai"`` (see :func:`realness.list_describers`).
        progress: Show one progress bar per call over its windows; None: when the call needs
            more than 4 forward passes.
        revision: Hub revision of ``model``.
        cache_dir: Hub cache folder for ``model`` (default: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``).
        method: ``"dream"`` (the paper's windows against a description, through ``model``) or
            ``"core"`` (regions of one pass of a CORE model's encoder read by its image-only head:
            no dual encoder, no text needed; see :mod:`realness.dream.core_map`), or another
            registered method (:func:`realness.dream.methods.list_map_methods`). With ``"core"`` only
            ``device``, ``precision``, ``describer`` and ``core_model`` apply.
        core_model: The CORE model of ``method="core"``: a :class:`~realness.core.model.CoreModel`
            or a name (default: the bundled ``realness-core-lite``).

    Raises:
        WeightsNotFoundError: The model's weights are not available.
        DeviceError: ``device`` does not exist here.
        ValueError: A bad option.
    """

    name = "dream"
    needs_descriptions = True

    def __init__(
        self,
        model: str | Path | Embedder = DEFAULT_EMBEDDER,
        *,
        window_sizes: Sequence[int] = DEFAULT_WINDOW_SIZES,
        stride: int = DEFAULT_STRIDE,
        device: DeviceLike = None,
        precision: str = "auto",
        batch_size: int | None = None,
        interpolation: str = "bicubic",
        antialias: bool = True,
        describer: Any = None,
        progress: bool | None = None,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        method: str = "dream",
        core_model: Any = None,
    ):
        method_class = map_method(method)
        self.method = method_class.name
        # Another registered method (the core map) does the work; this mapper only hands calls on.
        self._delegate: MapMethod | None = None
        if not isinstance(self, method_class):
            self._delegate = method_class.from_mapper_arguments(
                core_model=core_model, device=device, precision=precision, describer=describer
            )
            self.device = self._delegate.device
            return
        self.window_sizes = tuple(sorted({int(size) for size in window_sizes}, reverse=True))
        if not self.window_sizes or min(self.window_sizes) < 1:
            raise ValueError(f"window_sizes must be positive integers, got {tuple(window_sizes)}")
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride}")
        check_batch_size(batch_size, optional=True)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, not {interpolation!r}")
        self.precision = check_precision(precision)
        self.stride = int(stride)
        self.device = resolve_device(device)  # before loading: a bad device fails fast
        self.embedder = build_embedder(model, revision=revision, cache_dir=cache_dir).to(self.device)
        self.model_name = type(model).__name__ if isinstance(model, Embedder) else str(model)
        self.batch_size = batch_size or auto_batch_size(self.embedder.input_size, self.device)
        self.interpolation = interpolation
        self.antialias = antialias
        self.describer = as_describer(describer)
        self.progress = progress
        self._warned_slow = False

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_EMBEDDER,
        *,
        device: DeviceLike = None,
        precision: str = "auto",
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        **options: Any,
    ) -> RealnessMapper:
        """A mapper over the dual encoder ``name_or_path`` (Hub name or local directory).

        Args:
            name_or_path: See ``model`` in :class:`RealnessMapper`.
            device: See :class:`RealnessMapper`.
            precision: See :class:`RealnessMapper`.
            revision: Hub revision.
            cache_dir: Hub cache folder.
            **options: The other :class:`RealnessMapper` arguments.

        Returns:
            The mapper.
        """
        return cls(name_or_path, device=device, precision=precision, revision=revision, cache_dir=cache_dir, **options)

    def __call__(
        self,
        images: Any,
        descriptions: DescriptionsLike = None,
        *,
        on_error: str = "raise",
        progress: bool | None = None,
    ) -> RealnessMap | RealnessMapBatch:
        """Map one image or a batch.

        Args:
            images: One image or a batch in any form ``realness.io.inputs.load_images`` accepts
                (paths, bytes, PIL, arrays, tensors; sizes may differ). A tensor is checked on its
                own device and its windows are cut there: it is never copied to the host.
            descriptions: What looks unrealistic: None, one string for one image, a sequence
                aligned with the images, or a describer (object or name) that writes them.
                A missing text is written by the describer (this one, else the mapper's);
                with none, the image is a bad item: DREAM needs a text.
            on_error: ``"raise"`` stops at the first bad item; ``"skip"`` leaves None for it
                and records why in ``skipped`` (a single image that cannot be mapped still
                raises: there is nothing else to return).
            progress: Show a progress bar (default: the mapper's ``progress``).

        Returns:
            A :class:`RealnessMap` for a single image, a :class:`RealnessMapBatch` for a batch.

        Raises:
            InvalidImageError: A bad image, or one smaller than every window (``on_error="raise"``).
            DescriptionsError: Descriptions not one per image, or an image without one and no
                describer (``on_error="raise"``).
        """
        if self._delegate is not None:
            return self._delegate(images, descriptions, on_error=on_error, progress=progress)
        check_on_error(on_error)
        resolved = resolve_descriptions(descriptions, split_batch(images)[0], describer=self.describer)
        if resolved.match is not None:
            resolved.match.warn()
        texts, describer = resolved.texts, resolved.describer
        # A tensor stays on its device (checked there); other inputs are decoded on the CPU.
        batch = load_tensor_batch(images, on_error=on_error)
        if batch is None:
            batch = load_images(images, on_error=on_error)
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
        bad = {i for i, tensor in enumerate(batch.tensors) if tensor is None}
        # The describer gets the items as given (paths keep their names, for a static table or the cache).
        items, _ = split_batch(images)
        failures = fill_missing(describer, items, batch.names, texts, on_error=on_error, skip=bad)
        failures += missing_description_failures(batch.names, texts, bad | {f.index for f in failures}, "DREAM")
        if failures and on_error == "raise":
            raise DescriptionsError(failures[0].item, failures[0].reason)
        for failure in failures:
            batch.skipped.append(failure)
            batch.tensors[failure.index] = None
        batch.skipped.sort(key=lambda item: item.index)
        show = progress if progress is not None else self.progress
        maps = self._map_tensors(batch.tensors, texts, batch.names, show)
        if batch.single:
            if maps[0] is None:
                reason = batch.skipped[0].reason if batch.skipped else "not mapped"
                raise InvalidImageError(batch.names[0], reason)
            return maps[0]
        return RealnessMapBatch(maps=maps, names=batch.names, skipped=batch.skipped)

    # --- steps ------------------------------------------------------------------------

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
        self, images: list[torch.Tensor | None], texts: list[str | None], names: list[str], progress: bool | None
    ) -> list[RealnessMap | None]:
        wanted = [i for i, image in enumerate(images) if image is not None]
        if not wanted:
            return [None] * len(images)
        unique_texts = sorted({texts[i] for i in wanted})
        with autocast(self.precision, self.device):
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
        self._score_windows(jobs, images, texts, text_of, len(wanted), progress)

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
                model=self.model_name,
            )
        return maps

    def _score_windows(
        self,
        jobs: list[_Job],
        images: list[torch.Tensor | None],
        texts: list[str | None],
        text_of: dict,
        image_count: int,
        progress: bool | None,
    ) -> None:
        """Fill every job's scores with r_k = 1 - cos(u_k, v), a batch of windows at a time."""
        size = self.embedder.input_size
        # Made once per call, on the device: normalize uses them as they are.
        mean = torch.tensor(self.embedder.mean, device=self.device)
        std = torch.tensor(self.embedder.std, device=self.device)
        on_device: dict[int, torch.Tensor] = {}
        total = sum(job.count for job in jobs)
        show = progress if progress is not None else total > 4 * self.batch_size
        started, measured_first = time.perf_counter(), None
        # One bar for the whole call (all its images), counted in windows: a CPU run of one
        # image at the paper's stride is tens of thousands of them.
        with tqdm(total=total, unit="win", desc=f"realness map ({image_count} images)", disable=not show) as bar:
            for pieces in _batches(jobs, self.batch_size):
                batch = []
                for job, start, stop in pieces:
                    if job.image_index not in on_device:
                        on_device.clear()  # keep one image on the device at a time
                        image = images[job.image_index]
                        if image.device != self.device:  # a tensor already there is used as it is
                            image = image.to(self.device, torch.float32)
                        on_device[job.image_index] = image
                    flat = torch.arange(start, stop, device=self.device)
                    windows = gather_windows(
                        on_device[job.image_index],
                        job.window,
                        job.tops[flat // len(job.lefts)],
                        job.lefts[flat % len(job.lefts)],
                    )
                    batch.append(resize_image(windows, size, interpolation=self.interpolation, antialias=self.antialias))
                # In place: the windows are this call's own copies, and the batch is its largest tensor.
                pixels = normalize(torch.cat(batch) if len(batch) > 1 else batch[0], mean, std, in_place=True)
                with autocast(self.precision, self.device):
                    embeddings = F.normalize(self.embedder.embed_images(pixels).float(), dim=-1)
                offset = 0
                for job, start, stop in pieces:
                    text = text_of[texts[job.image_index]]
                    job.scores[start:stop] = 1.0 - embeddings[offset : offset + stop - start] @ text
                    offset += stop - start
                if measured_first is None:
                    measured_first = (time.perf_counter() - started) / offset
                    if offset < total:
                        self._warn_if_slow(measured_first, total / image_count)
                bar.update(offset)

    def _warn_if_slow(self, seconds_per_window: float, windows_per_image: float) -> None:
        """Once per mapper: say how long an image will take, measured on the first batch, and what speeds it up."""
        per_image = seconds_per_window * windows_per_image
        if self._warned_slow or per_image < SLOW_SECONDS_PER_IMAGE:
            return
        self._warned_slow = True
        faster = max(16, self.stride * 4)
        speedup = (faster / self.stride) ** 2
        warnings.warn(
            f"DREAM will take about {_duration(per_image)} per image on {self.device.type} "
            f"({windows_per_image:,.0f} windows per image at stride {self.stride}, sizes "
            f"{', '.join(map(str, self.window_sizes))}); --stride {faster} (stride={faster}) is about "
            f"{speedup:.0f}x faster, and fewer --window-sizes (window_sizes=) faster still",
            SlowConfigurationWarning,
            stacklevel=6,  # past _score_windows, _map_tensors and its inference_mode wrapper, __call__
        )


def _batches(jobs: list[_Job], batch_size: int) -> Iterator[list[tuple[_Job, int, int]]]:
    """Cut the concatenated windows of all jobs into runs of ``batch_size`` (the last may be short)."""
    pieces: list[tuple[_Job, int, int]] = []
    room = batch_size
    for job in jobs:
        start = 0
        while start < job.count:
            stop = min(job.count, start + room)
            pieces.append((job, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield pieces
                pieces, room = [], batch_size
    if pieces:
        yield pieces


def auto_batch_size(input_size: int, device: torch.device) -> int:
    """Windows per forward pass that fit a share of the free memory of ``device``.

    The estimate per window is the resized window in float32 times 16, a generous bound on the
    cut, resized and normalized copies plus the activations of a ViT-B-sized tower.

    Args:
        input_size: The embedder's input side in pixels.
        device: Where the windows are embedded.

    Returns:
        A batch size between 1 and 256 (CPU) or 1024 (CUDA).
    """
    per_window = 3 * input_size * input_size * 4 * 16
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = _available_ram()
    cap = _MAX_BATCH.get(device.type, _MAX_BATCH["cpu"])
    return max(1, min(cap, int(free * _MEMORY_SHARE) // per_window))


def _available_ram() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest 4 GB
        return 4 << 30


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


@functools.lru_cache(maxsize=2)
def _cached_embedder(model: str, revision: str | None) -> Embedder:
    return build_embedder(model, revision=revision)


def realness_map(
    images: Any,
    descriptions: DescriptionsLike = None,
    *,
    model: str | Path | Embedder = DEFAULT_EMBEDDER,
    device: DeviceLike = None,
    precision: str = "auto",
    batch_size: int | None = None,
    progress: bool | None = None,
    on_error: str = "raise",
    revision: str | None = None,
    **options: Any,
) -> RealnessMap | RealnessMapBatch:
    """Functional DREAM: the realness map(s) of ``images`` given their descriptions.

    The embedder of a named model is loaded once and reused by later calls.

    Args:
        images: One image or a batch (see :meth:`RealnessMapper.__call__`).
        descriptions: None, one string for one image, a sequence aligned with the images, or
            a describer (object or name such as ``"openai"``) that writes them.
        model: See :class:`RealnessMapper`.
        device: See :class:`RealnessMapper`.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: Windows per forward pass (None: from the free memory).
        progress: Show a progress bar (None: for long calls).
        on_error: ``"raise"`` or ``"skip"``.
        revision: Hub revision of ``model``.
        **options: Other :class:`RealnessMapper` arguments (``window_sizes``, ``stride``, ...).

    Returns:
        A :class:`RealnessMap` for one image, a :class:`RealnessMapBatch` for a batch.

    Raises:
        WeightsNotFoundError: The model's weights are not available.
        InvalidImageError: A bad image (``on_error="raise"``).
    """
    resolve_device(device)  # a bad device fails before the weights load
    embedder = model if isinstance(model, Embedder) else _cached_embedder(str(model), revision)
    mapper = RealnessMapper(embedder, device=device, precision=precision, batch_size=batch_size, progress=progress, **options)
    return mapper(images, descriptions, on_error=on_error)


__all__ = [
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW_SIZES",
    "PRECISIONS",
    "RealnessMap",
    "RealnessMapBatch",
    "RealnessMapper",
    "auto_batch_size",
    "realness_map",
]
