"""Resize and normalize image tensors: the one place pixels are prepared for a model.

CORE resizes whole images to an encoder's input (:class:`realness.core.preprocess.ImagePreprocessor`),
DREAM resizes batches of windows to its embedder's input, and the downscale degradation resamples
through the same :func:`resize_image`, so every path antialiases, aligns corners and clamps alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: ``F.interpolate`` modes DREAM accepts for resizing windows (CORE configs may name any mode).
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area")

_SMOOTH = ("bilinear", "bicubic")

#: The border ``resize="pad"`` adds: mid-grey, which EfficientNet-Lite's normalization maps to about 0.
PAD_VALUE = 0.5


def resize_image(
    image: torch.Tensor,
    size: int | tuple[int, int],
    *,
    resize: str = "squash",
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> torch.Tensor:
    """Resize a 3xHxW (or Bx3xHxW) float image to ``size`` (a square side or ``(height, width)``).

    Args:
        image: float tensor in [0, 1].
        size: output side in pixels, or ``(height, width)`` (``squash`` and ``pad``).
        resize: ``squash`` (whole image, aspect ratio changed), ``pad`` (whole image, aspect
            ratio kept: scaled to fit ``size`` and centred on mid-grey, :data:`PAD_VALUE`) or
            ``center_crop`` (short side to ``size``, then the central square).
        interpolation: ``F.interpolate`` mode.
        antialias: antialiasing for ``bilinear`` and ``bicubic``, so downscaling does not alias
            (unlike a plain bilinear resize). With ``bicubic`` it also selects the Keys a=-0.5
            kernel that PIL's ``BICUBIC`` uses (the resampling of the CLIP image processors),
            when enlarging as well as when shrinking.

    Returns:
        A new tensor of the same rank clamped to [0, 1] (bicubic overshoots), or ``image``
        itself (or a crop of it) when it already has the target size: nothing is resampled.

    Raises:
        ValueError: an unknown ``resize``, or ``center_crop`` with a non-square ``size``.
    """
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    height, width = x.shape[-2:]
    if resize in ("squash", "pad"):
        target = (size, size) if isinstance(size, int) else tuple(int(side) for side in size)
        if resize == "pad":
            output, scale = target, min(target[0] / height, target[1] / width)
            target = (min(output[0], max(1, round(height * scale))), min(output[1], max(1, round(width * scale))))
    elif resize == "center_crop":
        if not isinstance(size, int):
            raise ValueError(f"center_crop takes one square side, not {size!r}")
        scale = size / min(height, width)
        target = (max(size, round(height * scale)), max(size, round(width * scale)))
    else:
        raise ValueError(f"resize must be 'squash', 'pad' or 'center_crop', not {resize!r}")
    if (height, width) != target:
        smooth = interpolation in _SMOOTH
        options = {"align_corners": False, "antialias": antialias} if smooth else {}
        # The interpolated tensor is new: clamping it in place saves a copy of the batch.
        x = F.interpolate(x, size=target, mode=interpolation, **options).clamp_(0.0, 1.0)
    if resize == "pad" and target != output:
        canvas = x.new_full((*x.shape[:-2], *output), PAD_VALUE)
        top, left = (output[0] - target[0]) // 2, (output[1] - target[1]) // 2
        canvas[..., top : top + target[0], left : left + target[1]] = x
        x = canvas
    if resize == "center_crop":
        top = (x.shape[-2] - size) // 2
        left = (x.shape[-1] - size) // 2
        x = x[..., top : top + size, left : left + size]
    return x if batched else x.squeeze(0)


def normalize(
    image: torch.Tensor,
    mean: Sequence[float] | torch.Tensor,
    std: Sequence[float] | torch.Tensor,
    *,
    in_place: bool = False,
) -> torch.Tensor:
    """Subtract the per-channel mean and divide by the standard deviation (channel dim -3).

    Args:
        image: ``3 x H x W`` or ``B x 3 x H x W`` float tensor.
        mean: three per-channel means (a tensor on ``image``'s device and dtype is used as is).
        std: three per-channel standard deviations.
        in_place: overwrite ``image`` rather than allocate a copy: DREAM normalizes each batch of
            windows, its largest tensor, this way (``benchmarks/dream_memory.py``).

    Returns:
        The normalized tensor (``image`` itself when ``in_place``).
    """
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(3, 1, 1)
    if in_place:
        return image.sub_(mean_t).div_(std_t)
    return (image - mean_t) / std_t
