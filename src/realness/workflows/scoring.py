"""Turn whatever a caller passes as ``model=`` into a ready :class:`RealnessScorer`."""

from __future__ import annotations

import os
from typing import Any, Union

import torch

from realness.core.model import CoreModel
from realness.core.pretrained import DEFAULT_MODEL
from realness.core.scorer import RealnessScorer

ModelLike = Union[str, "os.PathLike[str]", CoreModel, RealnessScorer]


def as_scorer(
    model: ModelLike = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    describer: Any = None,
    progress: bool | None = None,
) -> RealnessScorer:
    """A scorer for ``model``, reusing it when it already is one.

    Args:
        model: a bundled model name, a local model directory, a Hub id, a loaded
            :class:`~realness.core.model.CoreModel`, or a :class:`~realness.core.scorer.RealnessScorer`
            (returned unchanged: its own settings win).
        device: where to run a newly built scorer (default: CUDA if available, else CPU).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` for a newly built scorer.
        batch_size: images per forward pass of a newly built scorer.
        describer: writes descriptions for images that come without one (newly built scorer only).
        progress: show progress bars (newly built scorer only; None: for long batches).

    Returns:
        A :class:`~realness.core.scorer.RealnessScorer`.
    """
    if isinstance(model, RealnessScorer):
        return model
    return RealnessScorer(
        model, device=device, precision=precision, batch_size=batch_size, describer=describer, progress=progress
    )


def model_label(model: ModelLike) -> str:
    """A short human-readable name of ``model`` for reports (its name, directory or class)."""
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    return type(model).__name__


def optional_float(value: float | None) -> float | None:
    """``value`` rounded for tables, or None where it is None or NaN (a skipped item)."""
    return None if value is None or value != value else round(float(value), 6)
