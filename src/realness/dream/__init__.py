"""DREAM: dense realness maps (where an image stops looking real), vectorized."""

from __future__ import annotations

from realness.dream.core_map import CoreMapper
from realness.dream.embedders import (
    DEFAULT_EMBEDDER,
    Embedder,
    OpenClipEmbedder,
    TransformersEmbedder,
    build_embedder,
)
from realness.dream.mapper import DEFAULT_WINDOW_SIZES, RealnessMapper, auto_batch_size, realness_map
from realness.dream.methods import MapMethod, list_map_methods, map_method, register_map_method
from realness.dream.result import DEFAULT_STRIDE, RealnessMap, RealnessMapBatch

__all__ = [
    "CoreMapper",
    "DEFAULT_EMBEDDER",
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW_SIZES",
    "Embedder",
    "MapMethod",
    "OpenClipEmbedder",
    "RealnessMap",
    "RealnessMapBatch",
    "RealnessMapper",
    "TransformersEmbedder",
    "auto_batch_size",
    "build_embedder",
    "list_map_methods",
    "map_method",
    "realness_map",
    "register_map_method",
]
