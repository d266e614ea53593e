"""DREAM: dense realness maps (where an image stops looking real), vectorized."""

from __future__ import annotations

from realness.dream.embedders import (
    DEFAULT_EMBEDDER,
    Embedder,
    OpenClipEmbedder,
    TransformersEmbedder,
    build_embedder,
)
from realness.dream.mapper import DEFAULT_WINDOW_SIZES, RealnessMapper, auto_batch_size, realness_map
from realness.dream.result import DEFAULT_STRIDE, RealnessMap, RealnessMapBatch

__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW_SIZES",
    "Embedder",
    "OpenClipEmbedder",
    "RealnessMap",
    "RealnessMapBatch",
    "RealnessMapper",
    "TransformersEmbedder",
    "auto_batch_size",
    "build_embedder",
    "realness_map",
]
