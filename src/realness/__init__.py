"""realness: how real an AI-generated image looks to people, and where it stops looking real.

CORE scores (:class:`RealnessScorer`, :func:`score`), DREAM maps (:class:`RealnessMapper`,
:func:`realness_map`) and describers that write what looks unrealistic
(:class:`OpenAIDescriber`, :class:`TransformersDescriber`, :class:`StaticDescriber`).
"""

__version__ = "0.1.0"

from realness.core import CoreConfig, CoreModel, RealnessScorer, ScoreResult, score
from realness.describers import (
    CachedDescriber,
    Description,
    DescriptionCache,
    OpenAIDescriber,
    StaticDescriber,
    TransformersDescriber,
)
from realness.dream import RealnessMap, RealnessMapBatch, RealnessMapper, realness_map
from realness.errors import (
    ChecksumError,
    DescriberError,
    InvalidImageError,
    MissingDependencyError,
    RealnessError,
    SkippedItem,
    WeightsNotFoundError,
)
from realness.inputs import load_image, load_images

__all__ = [
    "CachedDescriber",
    "ChecksumError",
    "CoreConfig",
    "CoreModel",
    "DescriberError",
    "Description",
    "DescriptionCache",
    "InvalidImageError",
    "MissingDependencyError",
    "OpenAIDescriber",
    "RealnessError",
    "RealnessMap",
    "RealnessMapBatch",
    "RealnessMapper",
    "RealnessScorer",
    "ScoreResult",
    "SkippedItem",
    "StaticDescriber",
    "TransformersDescriber",
    "WeightsNotFoundError",
    "__version__",
    "load_image",
    "load_images",
    "realness_map",
    "score",
]
