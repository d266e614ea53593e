"""k-fold cross-validation of a training recipe on rated images (how every shipped recipe was chosen)."""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from realness.core.config import CoreConfig
from realness.core.model import CoreModel
from realness.data.splits import kfold
from realness.evaluation.stats import plcc, srocc
from realness.training.config import TrainingConfig
from realness.training.features import FrozenFeatures, encode_frozen_features
from realness.training.trainer import train_core


@dataclass
class CrossValidation:
    """Per-fold metrics of :func:`cross_validate` and their mean and standard deviation.

    Attributes:
        folds: one dict per held-out fold: ``srocc``, ``plcc``, ``srocc_image_only``,
            ``plcc_image_only`` and, when the recipe has degradations, ``lower_<family>``
            (share of held-out images whose degraded copy scores below them, with descriptions).
    """

    folds: list[dict[str, float]]

    def mean(self, key: str) -> float:
        """Mean of ``key`` over folds."""
        return float(np.mean([fold[key] for fold in self.folds]))

    def std(self, key: str) -> float:
        """Standard deviation of ``key`` over folds (population, as the fold count is all there is)."""
        return float(np.std([fold[key] for fold in self.folds]))

    def summary(self) -> dict[str, tuple[float, float]]:
        """``key -> (mean, std)`` over folds."""
        return {key: (self.mean(key), self.std(key)) for key in self.folds[0]}


def cross_validate(
    model_config: CoreConfig,
    images: Sequence[Any],
    mos: Sequence[float],
    descriptions: Sequence[str | None],
    *,
    folds: int = 5,
    config: TrainingConfig | None = None,
    encoders_from: CoreModel | None = None,
    features: FrozenFeatures | None = None,
    progress: bool = True,
) -> CrossValidation:
    """k-fold cross-validation of a recipe: the honest way to choose one.

    Images are encoded once; for each fold a head is trained on the other folds with
    ``config`` (``validation_fraction`` is ignored: nothing but the fold is held out) and
    scored on the held-out fold, with descriptions and image-only. An encoder the recipe
    trains is trained afresh in each fold, and the held-out fold is encoded by that fold's.

    Args:
        model_config: encoders and head.
        images: the training images (never a test split).
        mos: one mean opinion score per image.
        descriptions: one description per image (None or "" for none).
        folds: number of folds.
        config: the recipe (default: :class:`TrainingConfig`, the shipped recipe).
        encoders_from: reuse this model's loaded encoders.
        features: precomputed :func:`encode_frozen_features` output for ``images``.
        progress: show progress bars.
    """
    config = dataclasses.replace(config or TrainingConfig(), validation_fraction=0.0)
    mos_array = np.asarray(mos, dtype=np.float32)
    texts = [text or "" for text in descriptions]
    if features is None:
        encoders_from = encoders_from or CoreModel(copy.deepcopy(model_config))
        features = encode_frozen_features(encoders_from, images, texts, config=config, progress=progress)
    results = []
    for number, (train_idx, held_idx) in enumerate(kfold(len(images), folds, seed=config.seed), start=1):
        fold = fit_and_score_fold(
            model_config, features, mos_array, texts, train_idx, held_idx, config=config, encoders_from=encoders_from,
            images=images,
        )
        results.append(fold)
        if progress:
            print(
                f"fold {number}/{folds}: SROCC {fold['srocc']:.4f}  PLCC {fold['plcc']:.4f}  "
                f"image-only SROCC {fold['srocc_image_only']:.4f}  PLCC {fold['plcc_image_only']:.4f}",
                file=sys.stderr,
            )
    return CrossValidation(results)


def fit_and_score_fold(
    model_config: CoreConfig,
    features: FrozenFeatures,
    mos: np.ndarray,
    descriptions: Sequence[str],
    train_idx: Sequence[int],
    held_idx: Sequence[int],
    *,
    config: TrainingConfig,
    encoders_from: CoreModel | None = None,
    images: Sequence[Any] | None = None,
) -> dict[str, float]:
    """One cross-validation fold: train a head on ``train_idx``'s features, score the held-out images.

    Args:
        model_config: encoders and head.
        features: :func:`encode_frozen_features` output for every image (by the untrained encoders).
        mos: one mean opinion score per image.
        descriptions: one description per image ("" for none).
        train_idx: the images to train on.
        held_idx: the images to score.
        config: the recipe.
        encoders_from: reuse this model's loaded encoders.
        images: the images, for a recipe that trains image encoder layers (frozen image
            encoders need only ``features``).

    Returns:
        ``srocc``, ``plcc`` and, per degradation family, ``lower_FAMILY`` (the share of degraded
        copies scored below their source); each also with descriptions dropped (``..._image_only``).
    """
    train_images = [images[i] for i in train_idx] if images is not None else [None] * len(train_idx)
    run = train_core(
        model_config, train_images, mos[train_idx], [descriptions[i] for i in train_idx],
        config=config, encoders_from=encoders_from, features=features.subset(train_idx), progress=False,
    )
    head, held = run.model.head.eval(), features.subset(held_idx)
    held_texts = [descriptions[i] for i in held_idx]
    if model_config.image_encoder.trainable != "frozen":  # the features of a tuned encoder, not the given ones
        if images is None:
            raise ValueError("a recipe that trains the image encoder needs the images to score the held-out fold")
        held = encode_frozen_features(run.model, [images[i] for i in held_idx], held_texts, config=config, progress=False)
    elif model_config.text_encoder.trainable != "frozen":
        with torch.inference_mode():
            held = dataclasses.replace(held, text=run.model.encode_texts(held_texts).float(),
                                       empty_text=run.model.encode_texts([""])[0].float())
    fold: dict[str, float] = {}
    image_only = held.empty_text.expand(len(held_idx), -1)
    with torch.inference_mode():
        for suffix, text, has_text in (("", held.text, True), ("_image_only", image_only, False)):
            flags = torch.full((len(held_idx),), has_text)
            clean = head(held.image[0], text, flags).numpy()
            fold["srocc" + suffix] = float(srocc(clean, mos[held_idx]))
            fold["plcc" + suffix] = float(plcc(clean, mos[held_idx]))
            for family, degraded in zip(held.families, held.degraded if held.degraded is not None else []):
                fold[f"lower_{family}{suffix}"] = float(np.mean(head(degraded, text, flags).numpy() < clean))
    return fold
