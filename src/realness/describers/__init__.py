"""Describers: short texts about what looks unrealistic in an image, and their cache.

``describe(images, on_error=...)`` returns one :class:`Description` per input; a failed
item has ``text=None`` and ``error`` set.
"""

from realness.describers.base import (
    DEFAULT_PROMPT,
    BaseDescriber,
    Describer,
    DescribeSummary,
    Description,
    Prompt,
    summarize_descriptions,
)
from realness.describers.cache import CachedDescriber, DescriptionCache, default_cache_path
from realness.describers.factory import build_describer
from realness.describers.openai import OpenAIDescriber
from realness.describers.static import StaticDescriber
from realness.describers.vlm import DEFAULT_VLM, TransformersDescriber

__all__ = [
    "DEFAULT_PROMPT",
    "DEFAULT_VLM",
    "BaseDescriber",
    "CachedDescriber",
    "DescribeSummary",
    "Describer",
    "Description",
    "DescriptionCache",
    "OpenAIDescriber",
    "Prompt",
    "StaticDescriber",
    "TransformersDescriber",
    "build_describer",
    "default_cache_path",
    "summarize_descriptions",
]
