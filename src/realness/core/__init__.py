"""CORE: realness scores from image features and description text features."""

from realness.core.config import CoreConfig, ImageEncoderConfig, TextEncoderConfig
from realness.core.encoders import register_image_encoder, register_text_encoder
from realness.core.model import CoreModel, UntrainedModelError
from realness.core.pretrained import DEFAULT_MODEL
from realness.core.result import ScoreResult
from realness.core.scorer import RealnessScorer, score

__all__ = [
    "DEFAULT_MODEL",
    "CoreConfig",
    "CoreModel",
    "ImageEncoderConfig",
    "RealnessScorer",
    "ScoreResult",
    "TextEncoderConfig",
    "UntrainedModelError",
    "register_image_encoder",
    "register_text_encoder",
    "score",
]
