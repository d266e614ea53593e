"""The one look of every figure realness draws: fonts, colours, colormap and resolution.

Figures are bare ``matplotlib.figure.Figure`` objects with their own Agg canvas, so drawing
needs no display and never touches pyplot's global backend or state. matplotlib is imported
inside these functions, not at the top: it is heavy and only drawing needs it, so importing
the modules that can draw (DREAM, reporting, training, the workflows) does not load it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realness.io.atomic import write_file_atomic

if TYPE_CHECKING:  # annotations only (see the module docstring)
    from matplotlib.figure import Figure

#: Resolution of raster figures (PNG), in dots per inch.
DPI = 150
#: The colormap of realness maps: perceptually uniform, so equal steps in realness look like
#: equal steps in colour, and the map survives grayscale printing.
CMAP = "magma"
#: Colours of data series, in order of use: the first is any single series.
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
#: matplotlib rc settings every figure is drawn with (``axes.prop_cycle`` cycles :data:`COLORS`).
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "figure.titlesize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "grid.alpha": 0.3,
    "image.cmap": CMAP,
    "savefig.dpi": DPI,
}


@contextmanager
def styled_figure(figsize: tuple[float, float], **options: Any) -> Iterator[Figure]:
    """A new Figure on its own Agg canvas, with :data:`STYLE` in force while it is drawn.

    Draw inside the ``with`` block: matplotlib reads the style when an artist is made.

    Args:
        figsize: ``(width, height)`` in inches.
        **options: Passed to ``Figure`` (``layout="constrained"``).

    Yields:
        The figure.
    """
    # local: matplotlib is heavy, and only drawing needs it (see the module docstring)
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({**STYLE, "axes.prop_cycle": matplotlib.cycler(color=COLORS)}):
        figure = Figure(figsize=figsize, dpi=DPI, **options)
        FigureCanvasAgg(figure)
        yield figure


def save_figure(figure: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Write ``figure`` atomically in the format its suffix names (png when there is none).

    Args:
        figure: What to write.
        path: The destination (folders are created).
        dpi: Resolution of raster formats.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    image_format = path.suffix.lower().lstrip(".") or "png"
    return write_file_atomic(path, lambda handle: figure.savefig(handle, format=image_format, dpi=dpi))


def colormap(name: str = CMAP) -> Callable[..., Any]:
    """The matplotlib colormap ``name``: values in [0, 1] to RGBA."""
    import matplotlib  # local: heavy, as in styled_figure

    return matplotlib.colormaps[name]
