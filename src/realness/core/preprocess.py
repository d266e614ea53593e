"""The explicit image preprocessing of CORE encoders: resize, then normalize, as the config says.

Kept apart from the encoders so DataLoader workers can run it next to decoding,
overlapping it with the forward pass. The resize and normalization themselves are
:mod:`realness.io.pixels`'s, shared with DREAM.
"""

from __future__ import annotations

import torch

from realness.core.config import ImageEncoderConfig
from realness.io.pixels import normalize, resize_image


class ImagePreprocessor:
    """Picklable callable applying an image encoder's resize and normalization (for workers)."""

    def __init__(self, config: ImageEncoderConfig):
        self.config = config

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        c = self.config
        resized = resize_image(image, c.input_size, resize=c.resize, interpolation=c.interpolation)
        return normalize(resized, c.mean, c.std)
