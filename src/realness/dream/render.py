"""Pictures of realness maps: an overlay with a colorbar, and a Fig. 5-style panel figure.

Colormaps are matplotlib's perceptually uniform ones (:data:`realness.evaluation.plotting.CMAP`,
``magma``, by default): equal steps in realness look like equal steps in colour, and the map
survives grayscale printing. The panel figure is drawn in :mod:`realness.evaluation.plotting`'s style.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

from realness.evaluation.plotting import CMAP, colormap, styled_figure

if TYPE_CHECKING:  # annotations only: matplotlib loads when a figure is drawn
    from matplotlib.figure import Figure

#: Suffixes :meth:`RealnessMap.save` writes as the panel figure rather than the overlay.
FIGURE_SUFFIXES = (".pdf", ".svg", ".eps")


def colorize(values: np.ndarray, cmap: str = CMAP) -> np.ndarray:
    """Map values in [0, 1] to RGB with a matplotlib colormap.

    Args:
        values: Array of any shape, values in [0, 1].
        cmap: matplotlib colormap name.

    Returns:
        float32 array of shape ``values.shape + (3,)`` in [0, 1].
    """
    return colormap(cmap)(np.clip(values, 0.0, 1.0))[..., :3].astype(np.float32)


def overlay(
    image: torch.Tensor,
    realness: np.ndarray,
    *,
    alpha: float = 0.5,
    cmap: str = CMAP,
    colorbar: bool = True,
) -> Image.Image:
    """The image blended with its colour-mapped realness map, pixel for pixel.

    Args:
        image: ``3 x H x W`` float tensor in [0, 1].
        realness: ``H x W`` map in [0, 1] (high = realistic).
        alpha: Weight of the map in the blend (0: image only, 1: map only).
        cmap: matplotlib colormap name.
        colorbar: Append a labelled colorbar on the right; the left ``W`` columns stay
            aligned with the input.

    Returns:
        An RGB PIL image, ``H`` high and ``W`` wide (plus the colorbar).

    Raises:
        ValueError: ``alpha`` outside [0, 1] or shapes that differ.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    pixels = image.detach().cpu().float().permute(1, 2, 0).numpy()
    if pixels.shape[:2] != realness.shape:
        raise ValueError(f"image is {pixels.shape[:2]} but the map is {realness.shape}")
    blended = (1.0 - alpha) * pixels + alpha * colorize(realness, cmap)
    picture = Image.fromarray(_to_uint8(blended))
    return _with_colorbar(picture, cmap) if colorbar else picture


def panel_figure(
    image: torch.Tensor,
    realness: np.ndarray,
    per_scale: dict[int, np.ndarray],
    *,
    title: str = "",
    cmap: str = CMAP,
) -> Figure:
    """Image | overlay | one panel per window size (raw R_W), like Fig. 5 of the paper.

    Args:
        image: ``3 x H x W`` float tensor in [0, 1].
        realness: ``H x W`` map in [0, 1].
        per_scale: ``{window size: H x W raw map}``.
        title: The figure's title.
        cmap: matplotlib colormap name.

    Returns:
        A matplotlib Figure (not attached to pyplot: save it with ``savefig``).
    """
    pixels = image.detach().cpu().float().permute(1, 2, 0).numpy()
    scales = sorted(per_scale, reverse=True)
    panels = 2 + len(scales)
    height, width = realness.shape
    with styled_figure((3.2 * panels, 3.2 * height / width + 0.8), layout="constrained") as fig:
        axes = fig.subplots(1, panels, squeeze=False)[0]
        axes[0].imshow(pixels)
        axes[0].set_title("image")
        axes[1].imshow(pixels)
        shown = axes[1].imshow(realness, cmap=cmap, vmin=0.0, vmax=1.0, alpha=0.5)
        axes[1].set_title("realness (1 = real)")
        fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.02)
        for axis, size in zip(axes[2:], scales):
            raw = axis.imshow(per_scale[size], cmap=cmap)
            axis.set_title(f"R_{size} (raw)")
            fig.colorbar(raw, ax=axis, fraction=0.046, pad=0.02)
        for axis in axes:
            axis.set_axis_off()
        fig.suptitle(title)
    return fig


def _to_uint8(array: np.ndarray) -> np.ndarray:
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _with_colorbar(picture: Image.Image, cmap: str) -> Image.Image:
    """Append a vertical colorbar (1 at the top) with its end labels to the right."""
    height = picture.height
    bar_width, label_width, gap = max(8, height // 24), 44, 6
    gradient = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(bar_width, axis=1)
    canvas = Image.new("RGB", (picture.width + gap + bar_width + label_width, height), "white")
    canvas.paste(picture, (0, 0))
    canvas.paste(Image.fromarray(_to_uint8(colorize(gradient, cmap))), (picture.width + gap, 0))
    draw = ImageDraw.Draw(canvas)
    x = picture.width + gap + bar_width + 3
    draw.text((x, 0), "1 real", fill="black")
    draw.text((x, max(0, height - 12)), "0", fill="black")
    return canvas
