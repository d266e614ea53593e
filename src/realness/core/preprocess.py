"""The explicit image preprocessing of CORE encoders: resize, then normalize.

Kept apart from the encoders so DataLoader workers can run it next to decoding,
overlapping it with the forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from realness.core.config import ImageEncoderConfig


def resize_image(
    image: torch.Tensor, size: int | tuple[int, int], *, resize: str = "squash", interpolation: str = "bilinear"
) -> torch.Tensor:
    """Resize a 3xHxW (or Bx3xHxW) float image to ``size`` (a square side or ``(height, width)``).

    Args:
        image: float tensor in [0, 1].
        size: output side in pixels, or ``(height, width)`` (``squash`` only).
        resize: ``squash`` (whole image, aspect ratio changed) or ``center_crop``
            (short side to ``size``, then the central square).
        interpolation: ``F.interpolate`` mode; antialiasing is on for the modes that support it,
            so downscaling does not alias (unlike a plain bilinear resize).

    Returns:
        The resized tensor, same rank as the input.
    """
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    height, width = x.shape[-2:]
    if resize == "squash":
        target = (size, size) if isinstance(size, int) else tuple(int(side) for side in size)
    elif resize == "center_crop":
        if not isinstance(size, int):
            raise ValueError(f"center_crop takes one square side, not {size!r}")
        scale = size / min(height, width)
        target = (max(size, round(height * scale)), max(size, round(width * scale)))
    else:
        raise ValueError(f"resize must be 'squash' or 'center_crop', not {resize!r}")
    if (height, width) != target:
        antialias = interpolation in ("bilinear", "bicubic")
        kwargs = {"align_corners": False} if interpolation in ("bilinear", "bicubic") else {}
        x = F.interpolate(x, size=target, mode=interpolation, antialias=antialias, **kwargs)
    if resize == "center_crop":
        top = (x.shape[-2] - size) // 2
        left = (x.shape[-1] - size) // 2
        x = x[..., top : top + size, left : left + size]
    x = x.clamp(0.0, 1.0)
    return x if batched else x.squeeze(0)


def normalize(image: torch.Tensor, mean, std) -> torch.Tensor:
    """Subtract the per-channel mean and divide by the standard deviation (channel dim -3)."""
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image - mean_t) / std_t


class ImagePreprocessor:
    """Picklable callable applying an image encoder's resize and normalization (for workers)."""

    def __init__(self, config: ImageEncoderConfig):
        self.config = config

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        c = self.config
        resized = resize_image(image, c.input_size, resize=c.resize, interpolation=c.interpolation)
        return normalize(resized, c.mean, c.std)
