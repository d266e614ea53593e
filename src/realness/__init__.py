"""realness: how real an AI-generated image looks to people, and where it stops looking real.

CORE scores (:class:`RealnessScorer`, :func:`score`), DREAM maps (:class:`RealnessMapper`,
:func:`realness_map`) and describers that write what looks unrealistic
(:class:`OpenAIDescriber`, :class:`TransformersDescriber`, :class:`StaticDescriber`).

The names below are imported on first use, so ``import realness`` (and the pytest plugin,
and ``realness --help``) does not pay for torch and transformers until they are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "realness.core": ("CoreConfig", "CoreModel", "RealnessScorer", "ScoreResult", "score"),
    "realness.core.pretrained": ("list_models",),
    "realness.describers.factory": ("list_describers",),
    "realness.dream.embedders": ("list_embedders",),
    "realness.describers": (
        "CachedDescriber",
        "Description",
        "DescriptionCache",
        "OpenAIDescriber",
        "StaticDescriber",
        "TransformersDescriber",
    ),
    "realness.dream": ("RealnessMap", "RealnessMapBatch", "RealnessMapper", "realness_map"),
    "realness.errors": (
        "ChecksumError",
        "DescriberError",
        "DescriptionsError",
        "DeviceError",
        "ImageOnlyWarning",
        "InvalidImageError",
        "MissingDependencyError",
        "NothingPairedError",
        "RealnessError",
        "RealnessWarning",
        "SkippedItem",
        "UnknownNameError",
        "UsageError",
        "WeightsNotFoundError",
    ),
    "realness.io.inputs": ("load_image", "load_images"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'realness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

