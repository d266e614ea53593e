"""Tensor batches checked and converted on their own device: no copy to the host and back.

A ``B x C x H x W`` tensor (or one ``[C x] H x W`` image) that a generator left on a GPU is
validated and turned into RGB in [0, 1] here, on that GPU, under the contract and with the
messages of :mod:`realness.io.inputs` (which copies every other input to the CPU). The value
checks (NaN, range) are per-image reductions that stay on the device: a caller reads them
back once, with its results, rather than waiting on the device image by image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from realness.errors import InvalidImageError, SkippedItem
from realness.io.inputs import (
    LoadedBatch,
    checked_tensor_layout,
    float_fault_reason,
    float_value_stats,
    item_name,
    size_fault_reason,
    split_batch,
    unit_rgb,
)

__all__ = ["TensorBatch", "as_tensor_batch", "fault_reasons", "load_tensor_batch"]


@dataclass
class TensorBatch:
    """Images of one tensor, ready on its device, with their value checks not yet read.

    Attributes:
        pixels: ``B x 3 x H x W`` float32 RGB in [0, 1] (clamped), on the input's device.
        value_stats: ``B x 3`` float32 (non-finite count, min, max) of float input, on the same
            device; None for ``uint8``/``uint16`` input, whose every value is valid.
    """

    pixels: torch.Tensor
    value_stats: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.pixels)


def as_tensor_batch(images: Any, *, min_size: int = 1) -> TensorBatch | None:
    """``images`` prepared on their device, or None when they take the per-image path instead.

    None for anything but a tensor, and for a tensor whose shape or dtype the contract refuses
    or whose size is degenerate (see :func:`realness.io.inputs.size_fault_reason`): every image of it fails alike, and the
    per-image path of :mod:`realness.io.inputs` names each with the usual message.

    Args:
        images: a ``B x C x H x W`` tensor, or one ``H x W`` / ``C x H x W`` image.
        min_size: smallest short side (pixels) the caller's model can use.
    """
    if not isinstance(images, torch.Tensor):
        return None
    if images.dim() == 4 and images.shape[0] == 0:
        return None
    try:  # the images of one tensor share their layout: checking the first checks all (metadata only)
        first = checked_tensor_layout(images[0] if images.dim() == 4 else images, "")
    except InvalidImageError:
        return None
    if size_fault_reason(*first.shape[-2:], min_size=min_size) is not None:
        return None
    batch = (images if images.dim() == 4 else first.unsqueeze(0)).detach()
    stats = float_value_stats(batch) if batch.dtype.is_floating_point else None
    return TensorBatch(unit_rgb(batch), stats)


def fault_reasons(value_stats: torch.Tensor) -> list[str | None]:
    """Per image, why its values are refused (None when they are fine), from stats read to the host."""
    return [float_fault_reason(*row) for row in value_stats.tolist()]


def load_tensor_batch(images: Any, *, on_error: str = "raise") -> LoadedBatch | None:
    """:func:`realness.io.inputs.load_images` for a tensor, its images left on their device.

    The value checks are read in one copy of ``B x 3`` numbers; the pixels never leave the
    device.

    Returns:
        The :class:`~realness.io.inputs.LoadedBatch` (tensors on the input's device), or None
        when ``images`` takes the per-image path (see :func:`as_tensor_batch`).

    Raises:
        InvalidImageError: an image with NaN or out-of-range values, with ``on_error="raise"``.
    """
    batch = as_tensor_batch(images)
    if batch is None:
        return None
    items, single = split_batch(images)
    names = [item_name(item, None if single else index) for index, item in enumerate(items)]
    loaded = LoadedBatch(tensors=list(batch.pixels), names=names, single=single)
    if batch.value_stats is None:
        return loaded
    for index, reason in enumerate(fault_reasons(batch.value_stats)):
        if reason is None:
            continue
        if on_error == "raise":
            raise InvalidImageError(names[index], reason)
        loaded.skipped.append(SkippedItem(index, names[index], reason))
        loaded.tensors[index] = None
    return loaded
