"""What DREAM returns: the realness map of one image, and the maps of a batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from realness.dream.render import FIGURE_SUFFIXES, overlay, panel_figure
from realness.errors import SkippedItem
from realness.evaluation.plotting import CMAP, DPI, save_figure
from realness.io.atomic import write_file_atomic

if TYPE_CHECKING:  # annotations only: matplotlib loads when a figure is drawn
    from matplotlib.figure import Figure

#: The paper's window stride in pixels.
DEFAULT_STRIDE = 4


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
        method: ``"dream"`` (windows against the description) or ``"core"`` (regions read by a CORE model).
        model: The dual encoder or CORE model the map comes from (recorded in saved overlays).
    """

    map: np.ndarray
    per_scale: dict[int, np.ndarray]
    raw: np.ndarray
    description: str
    name: str
    image: torch.Tensor = field(repr=False)
    stride: int = DEFAULT_STRIDE
    method: str = "dream"
    model: str = ""

    def metadata(self) -> dict[str, str]:
        """What made the map, as saved in a PNG overlay's text chunks."""
        return {"realness:method": self.method, "realness:model": self.model, "realness:description": self.description}

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the map and the input."""
        return tuple(self.map.shape)

    def overlay(self, *, alpha: float = 0.5, cmap: str = CMAP, colorbar: bool = True) -> Image.Image:
        """The image blended with the colour-mapped map (see :func:`realness.dream.render.overlay`).

        Returns:
            A PIL image.
        """
        return overlay(self.image, self.map, alpha=alpha, cmap=cmap, colorbar=colorbar)

    def figure(self, *, cmap: str = CMAP) -> Figure:
        """Image | overlay | one panel per window size (raw R_W), like Fig. 5 of the paper.

        Args:
            cmap: matplotlib colormap name.

        Returns:
            A matplotlib Figure (not attached to pyplot: save it with ``savefig``).
        """
        title = self.description if len(self.description) <= 90 else self.description[:87] + "..."
        return panel_figure(self.image, self.map, self.per_scale, title=f"{self.name}: {title}", cmap=cmap)

    def save(self, path: str | Path) -> Path:
        """Write the map: ``.npy`` the float32 array, ``.pdf``/``.svg``/``.eps`` the panel figure, any
        image suffix the overlay.

        Args:
            path: Destination; its suffix picks the format.

        Returns:
            The path written.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return write_file_atomic(path, lambda handle: np.save(handle, self.map.astype(np.float32)))
        if suffix in FIGURE_SUFFIXES:
            return save_figure(self.figure(), path)
        image_format = Image.registered_extensions().get(suffix, "PNG")
        if image_format == "PNG":
            info = PngInfo()
            for key, value in self.metadata().items():
                info.add_itxt(key, value)
            return write_file_atomic(path, lambda handle: self.overlay().save(handle, format="PNG", pnginfo=info))
        return write_file_atomic(path, lambda handle: self.overlay().save(handle, format=image_format))

    def save_figure(self, path: str | Path, *, dpi: int = DPI) -> Path:
        """Save the panel figure (:meth:`figure`) in any format matplotlib writes (png, pdf, svg).

        Args:
            path: Destination.
            dpi: Resolution of raster formats.

        Returns:
            ``path`` as a Path.
        """
        return save_figure(self.figure(), path, dpi=dpi)


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
