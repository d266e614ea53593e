"""One clear error when ``transformers`` cannot import a model class because torchvision is broken.

Installing ``open_clip_torch`` (the ``open-clip`` extra) on a CPU-only torch can bring a
torchvision built for another torch, whose compiled operators fail to register
(``operator torchvision::nms does not exist``). ``transformers`` imports torchvision when
it is installed, so afterwards even ``CLIPModel`` or ``BertModel`` fail, with a message
("Could not import module 'CLIPModel'") that hides the cause. :func:`transformers_import_guard`
turns that into a :class:`BrokenDependencyError` naming torchvision and the fix.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator

import torch

# BrokenDependencyError lives in realness.errors with every other exception; callers may import it from here.
from realness.errors import BrokenDependencyError


@contextlib.contextmanager
def transformers_import_guard(what: str) -> Iterator[None]:
    """Re-raise a torchvision-caused import failure inside the block as :class:`BrokenDependencyError`.

    Args:
        what: what was being loaded, for the message (``"the DREAM CLIP model"``).

    Raises:
        BrokenDependencyError: the block failed because torchvision cannot be imported.
    """
    try:
        yield
    except (ImportError, RuntimeError) as error:
        cause = broken_torchvision_reason(error)
        if cause is None:
            raise
        raise BrokenDependencyError(
            f"transformers cannot load {what} because the installed torchvision does not work with torch "
            f"{torch.__version__} ({cause}); this happens when the open-clip extra pulls a torchvision built "
            "for another torch. Fix: pip uninstall torchvision (if you do not use open_clip), or install the "
            "torchvision build made for this torch (the CPU build for a CPU torch)"
        ) from error


def broken_torchvision_reason(error: BaseException) -> str | None:
    """Why torchvision is broken, when it is what ``error`` comes from; None otherwise."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "torchvision" in str(current):
            return _first_line(current)
        current = current.__cause__ or current.__context__
    # transformers may hide the original error ("Could not import module 'CLIPModel'"): ask torchvision.
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        importlib.import_module("torchvision")
    except Exception as import_error:  # whatever its compiled extension raises
        return _first_line(import_error)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
