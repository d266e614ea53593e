"""Training CORE on rated images.

Recipe (REALM): AdamW, MSE on MOS, augmentation by flips and colour jitter. Two paths share it:

* frozen encoders (the default): image features of several augmented views, of degraded
  copies and text features are computed once, then only the head trains -- minutes on a CPU;
* partly or fully fine-tuned encoders (``trainable="last"|"all"`` in the encoder
  configs) with an MLP head: images are augmented and encoded on the fly every step;
* a kernel ridge head with a trainable text encoder: the image features are encoded once
  and the text encoder is tuned before the head is fitted (:mod:`realness.training.text_tuning`).

*Description dropout* replaces a share of training descriptions by the empty string, so
the same model also scores images that come without a description.

*Degradation ranking* (RankIQA-style): each training image also gets one copy per
degradation family (blur, noise, heavy JPEG, downscale-upscale) at a random strength that
must score below its source: a kernel ridge head regresses it to the source's MOS minus
``rank_margin``, an MLP head gets a hinge term. So a generator cannot raise its score by
destroying detail.

With ``validation_fraction=0`` (the shipped recipe) nothing is held out: the recipe, the
number of epochs included, was chosen by k-fold cross-validation (:func:`cross_validate`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from realness.core.config import CoreConfig
from realness.core.model import CoreModel
from realness.data.splits import kfold, train_val_split
from realness.evaluation.plotting import COLORS, save_figure, styled_figure
from realness.evaluation.stats import plcc, srocc
from realness.io.atomic import atomic_output
from realness.io.inputs import load_image
from realness.runtime.device import autocast
from realness.training.augment import Augmentation
from realness.training.degrade import random_degradation
from realness.training.text_tuning import tune_text_encoder

# A pure mirror image: no resampling, so no fine detail is lost (the recipe search measured it against none).
MIRROR = Augmentation(flip=1.0, max_rotation=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


@dataclass
class TrainingConfig:
    """Hyper-parameters of :func:`train_core`; the defaults are the recipe of the bundled model.

    The recipe was chosen by 5-fold cross-validation on RAISE-TD's training split
    (``benchmarks/recipe_cv.py``, ``benchmarks/results/recipe_cv.md``): a kernel ridge head
    (``CoreConfig.lite``) over the image, its mirror and one degraded copy per family; the MLP
    settings (``epochs`` ... ``description_dropout``) apply to an ``mlp`` head only.

    Attributes:
        epochs: passes over the training split.
        batch_size: images per optimizer step.
        learning_rate: AdamW learning rate (paper: 1e-4).
        weight_decay: AdamW weight decay.
        validation_fraction: share of the training data held out to pick the best epoch;
            0 trains on everything for exactly ``epochs`` epochs.
        seed: seeds the split, the augmentation, the initialization and the batches.
        augmented_views: frozen path only: augmented copies of each image encoded up front
            (view 0 is the unaugmented image); every step samples one per image.
        description_dropout: probability of training a sample with an empty description.
        augmentation: the random transforms.
        degradations: families from :data:`realness.training.degrade.FAMILIES`; each training image gets
            one copy per family that must score below it (frozen path only).
        rank_weight: weight of the degradation ranking hinge beside the MSE (MLP head), or the
            weight of a degraded copy's squared error (kernel ridge head).
        rank_margin: how far (in MOS units) below its source a degraded copy must score (MLP
            head), or the target of a degraded copy: its source's MOS minus this (kernel ridge head).
        kernel_alpha: ridge regularization of a ``kernel_ridge`` head.
        kernel_gamma: RBF width of a ``kernel_ridge`` head, as ``gamma * feature dimension``.
        kernel_text_weight: weight of the description's features in a ``kernel_ridge`` head's
            distance, relative to the image features'.
        text_tuning_epochs: a ``kernel_ridge`` head with a trainable text encoder: epochs of
            tuning the encoder before the head is fitted (see :mod:`realness.training.text_tuning`).
        text_tuning_learning_rate: the encoder's AdamW learning rate in that tuning.
        text_tuning_target: what the tuned text regresses: ``residual`` (MOS minus an image-only
            kernel head's out-of-fold prediction) or ``mos``.
        negatives: a ``kernel_ridge`` head: kinds of :data:`realness.evaluation.degenerate.TRAINING_KINDS`
            (random solid colours, noise, checkerboards, shuffled tiles of training images) stored as
            rows its ``unreal`` regressor learns, so that degenerate images score below every real one
            (a kernel regressor far from its rows falls back to the average score; see ``KernelRidgeHead``).
        negatives_per_kind: images of each kind, each made from another training image.
        negative_weight: the weight of a negative row (target: the lowest MOS minus ``floor_margin``) in
            the score regressors too; 0 leaves them to the ``unreal`` gate alone.
        unreal_width: the gate closes at the highest out-of-fold ``unreal`` of a training image plus this.
        unreal_alpha: ridge regularization of the ``unreal`` regressor.
        calibration_folds: a ``kernel_ridge`` head: folds of the out-of-fold scoring of the training
            images that sets its intervals and gate (0: neither; see ``KernelRidgeHead.calibrate``).
        near_quantile: the share of out-of-fold training images nearer to the training rows than the
            distance past which intervals widen.
        floor_margin: the score of an image the gate closes on: the lowest training MOS minus this.
        device: where to train.
        precision: the encoders' forward passes: ``auto`` (bf16 autocast on CUDA, fp32 on a
            CPU), ``fp32``, ``bf16`` or ``fp16`` (see :mod:`realness.runtime.device`); the head
            always trains in fp32.
    """

    epochs: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 1e-2
    validation_fraction: float = 0.0
    seed: int = 0
    augmented_views: int = 2
    description_dropout: float = 0.3
    augmentation: Augmentation = field(default_factory=lambda: MIRROR)
    degradations: tuple[str, ...] = ("blur", "noise", "jpeg", "downscale")
    rank_weight: float = 0.3
    rank_margin: float = 0.5
    kernel_alpha: float = 1.0
    kernel_gamma: float = 0.25
    kernel_text_weight: float = 0.5
    text_tuning_epochs: int = 5
    text_tuning_learning_rate: float = 5e-5
    text_tuning_target: str = "residual"
    negatives: tuple[str, ...] = ("solid colour", "uniform noise", "checkerboard", "shuffled tiles")
    negatives_per_kind: int = 48
    negative_weight: float = 0.0
    unreal_width: float = 0.05
    unreal_alpha: float = 0.1
    calibration_folds: int = 5
    near_quantile: float = 0.99
    floor_margin: float = 0.5
    device: str = "cpu"
    precision: str = "auto"


@dataclass
class TrainingRun:
    """The outcome of :func:`train_core`.

    Attributes:
        model: the model at its best validation epoch, in eval mode.
        history: one dict per epoch (``epoch, train_loss, val_srocc, val_srocc_image_only``).
        best_epoch: the epoch whose weights were kept.
        best_validation: the validation metrics of that epoch.
        train_indices: indices of the samples trained on.
        validation_indices: indices of the samples held out for selection.
    """

    model: CoreModel
    history: list[dict[str, float]]
    best_epoch: int
    best_validation: dict[str, float]
    train_indices: list[int]
    validation_indices: list[int]


def train_core(
    model_config: CoreConfig,
    images: Sequence[Any],
    mos: Sequence[float],
    descriptions: Sequence[str | None],
    *,
    config: TrainingConfig | None = None,
    validation_indices: Sequence[int] | None = None,
    encoders_from: CoreModel | None = None,
    features: FrozenFeatures | None = None,
    progress: bool = True,
) -> TrainingRun:
    """Train a CORE model on rated images and keep the epoch with the best validation SROCC.

    The validation split is carved from the given (training) data only; a test split
    must never be passed here.

    Args:
        model_config: encoders and head to build.
        images: training images (paths or anything :mod:`realness.io.inputs` accepts).
        mos: one mean opinion score per image.
        descriptions: one description per image (None or "" for none).
        config: training hyper-parameters (default: :class:`TrainingConfig`'s defaults).
        validation_indices: explicit held-out indices (default: a seeded random share).
        encoders_from: reuse this model's loaded encoders (saves loading them again, e.g.
            across ablations); the head is always built fresh.
        features: frozen encoders only: features from :func:`encode_frozen_features` for these
            images, shared between runs (ablations, seeds) so images are encoded once.
        progress: show progress bars.

    Returns:
        A :class:`TrainingRun` with the selected model and the per-epoch history.
    """
    if not (len(images) == len(mos) == len(descriptions)):
        raise ValueError(f"{len(images)} images, {len(mos)} scores and {len(descriptions)} descriptions: lengths differ")
    config = config or TrainingConfig()
    _seed_everything(config.seed)
    if validation_indices is None and config.validation_fraction == 0:
        train_idx, val_idx = list(range(len(images))), []
    elif validation_indices is None:
        train_idx, val_idx = train_val_split(len(images), val_fraction=config.validation_fraction, seed=config.seed)
    else:
        val_idx = sorted(set(int(i) for i in validation_indices))
        train_idx = [i for i in range(len(images)) if i not in set(val_idx)]
    train_idx, val_idx = [int(i) for i in train_idx], [int(i) for i in val_idx]
    if (val_idx and len(val_idx) < 3) or not train_idx:
        raise ValueError(
            f"{len(images)} images give {len(train_idx)} to train on and {len(val_idx)} to validate on; "
            "model selection needs at least 3 validation images (more data or a larger validation_fraction)"
        )
    model = CoreModel(copy.deepcopy(model_config), encoders_from=encoders_from)
    image_frozen = model.config.image_encoder.trainable == "frozen"
    text_frozen = model.config.text_encoder.trainable == "frozen"
    # A shared encoder that trains here must not change in the caller's model (or in the next fold).
    if encoders_from is not None and not image_frozen:
        model.image_encoder = copy.deepcopy(model.image_encoder)
    if encoders_from is not None and not text_frozen:
        model.text_encoder = copy.deepcopy(model.text_encoder)
    torch.manual_seed(config.seed)  # the head's initialization depends on the seed alone
    model.reset_head()
    model = model.to(config.device)
    targets = torch.as_tensor(np.asarray(mos, dtype=np.float32))
    texts = [text or "" for text in descriptions]
    if model.config.head == "kernel_ridge" and not image_frozen:
        raise ValueError(
            "a kernel_ridge head is fitted in closed form over frozen image features: to fine-tune the image "
            "encoder, train an mlp head (CoreConfig.paper(), realness train --config paper)"
        )
    if image_frozen and (text_frozen or model.config.head == "kernel_ridge"):
        model.requires_grad_(False)
        model.head.requires_grad_(True)
        if features is None:
            features = encode_frozen_features(model, images, texts, config=config, progress=progress)
        if model.config.head == "kernel_ridge":
            if not text_frozen:
                features = _tune_text_encoder(model, features, texts, targets, train_idx, config, progress)
            return _fit_kernel_head(model, features.subset(train_idx), targets[train_idx], config, train_idx, val_idx)
        trainer = _FrozenTrainer(model, features, texts, targets, train_idx, val_idx, config, progress)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a head on cached features is tiny: thread hand-offs cost 4x what they save
        try:
            return trainer.run()
        finally:
            torch.set_num_threads(threads)
    min_size = model.image_encoder.config.min_size
    decoded = [load_image(image, min_size=min_size) for image in tqdm(images, desc="decode", disable=not progress)]
    return _FineTuneTrainer(model, decoded, texts, targets, train_idx, val_idx, config, progress).run()


@dataclass
class FrozenFeatures:
    """Encoder outputs for training with frozen encoders.

    Attributes:
        image: ``views x N x image_dim``; view 0 is the unaugmented image.
        text: ``N x text_dim``, one row per description ("" where none).
        empty_text: ``text_dim``, the features of the empty description.
        degraded: ``families x N x image_dim``: one degraded copy per family (None without).
        families: the degradation family of each row of ``degraded``.
        negatives: ``M x image_dim``, degenerate images made from (or beside) training images (None without).
        negative_sources: ``M``, the training image each negative was made from.
    """

    image: torch.Tensor
    text: torch.Tensor
    empty_text: torch.Tensor
    degraded: torch.Tensor | None = None
    families: tuple[str, ...] = ()
    negatives: torch.Tensor | None = None
    negative_sources: torch.Tensor | None = None

    def subset(self, indices: Sequence[int]) -> FrozenFeatures:
        """The features of the samples at ``indices`` only (e.g. one cross-validation fold), with the negatives made from them."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        degraded = None if self.degraded is None else self.degraded[:, index]
        negatives = sources = None
        if self.negatives is not None:
            position = torch.full((len(self.text),), -1, dtype=torch.long)
            position[index] = torch.arange(len(index))
            keep = position[self.negative_sources] >= 0
            negatives, sources = self.negatives[keep], position[self.negative_sources[keep]]
        return FrozenFeatures(self.image[:, index], self.text[index], self.empty_text, degraded, self.families,
                              negatives, sources)


@torch.inference_mode()
def encode_frozen_features(
    model: CoreModel,
    images: Sequence[Any],
    descriptions: Sequence[str | None],
    *,
    config: TrainingConfig | None = None,
    progress: bool = True,
) -> FrozenFeatures:
    """Encode ``config.augmented_views`` augmented views and the degraded copies of every image, and every description.

    Augmentation and degradation are seeded by ``config.seed``, so the same call gives the same features.
    """
    config = config or TrainingConfig()
    model.eval()  # frozen features: BatchNorm must use its running statistics, never batch ones
    generator = torch.Generator().manual_seed(config.seed)
    encoder, views = model.image_encoder, max(1, config.augmented_views)
    device = torch.device(config.device)
    per_image = []
    families = list(config.degradations)
    for image in tqdm(images, desc="encode views", disable=not progress):
        decoded = load_image(image, min_size=encoder.config.min_size)
        shown = [decoded] + [config.augmentation(decoded, generator) for _ in range(views - 1)]
        shown += [random_degradation(decoded, family, generator) for family in families]
        pixels = torch.stack([encoder.preprocess(view) for view in shown]).to(device)
        with autocast(config.precision, device):
            per_image.append(encoder(pixels).float().cpu())
    encoded = torch.stack(per_image, dim=1)
    negatives, sources = None, None
    if model.config.head == "kernel_ridge":  # only the kernel head trains on negatives
        negatives, sources = _encode_negatives(encoder, images, config, device, progress)
    texts = [text or "" for text in descriptions]
    unique = sorted(set(texts) | {""})
    with autocast(config.precision, device):
        table = _batched(lambda chunk: model.encode_texts(chunk).float(), unique, 64)
    row = {text: i for i, text in enumerate(unique)}
    return FrozenFeatures(
        image=encoded[:views],
        text=table[[row[t] for t in texts]],
        empty_text=table[row[""]],
        degraded=encoded[views:] if families else None,
        families=tuple(families),
        negatives=negatives,
        negative_sources=sources,
    )


def _encode_negatives(encoder, images: Sequence[Any], config: TrainingConfig, device: torch.device,
                      progress: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``config.negatives_per_kind`` images of each kind of ``config.negatives``, each from another training image.

    Seeded apart from the views (``config.seed + 1``), so adding negatives leaves every other row as it was.
    """
    from realness.evaluation.degenerate import training_negative

    if not config.negatives or config.negatives_per_kind < 1:
        return None, None
    generator = torch.Generator().manual_seed(config.seed + 1)
    count = len(config.negatives) * config.negatives_per_kind
    sources = torch.randperm(len(images), generator=generator).repeat(count // len(images) + 1)[:count]
    rows = []
    for k in tqdm(range(count), desc="encode negatives", disable=not progress):
        photo = load_image(images[int(sources[k])], min_size=encoder.config.min_size)
        shown = training_negative(config.negatives[k // config.negatives_per_kind], photo, generator)
        with autocast(config.precision, device):
            rows.append(encoder(encoder.preprocess(shown).unsqueeze(0).to(device)).float().cpu())
    return torch.cat(rows), sources


def _tune_text_encoder(model: CoreModel, features: FrozenFeatures, texts: list[str], targets: torch.Tensor,
                       train_idx: list[int], config: TrainingConfig, progress: bool) -> FrozenFeatures:
    """Tune the text encoder on the training texts (see :mod:`realness.training.text_tuning`); the features with the tuned text."""
    described = [i for i in train_idx if texts[i]]
    if len(described) < 2:
        raise ValueError(f"tuning the text encoder needs at least 2 described training images, not {len(described)}")
    if config.text_tuning_target == "residual":
        train = features.subset(train_idx)
        predicted = _out_of_fold_image_only(model, train, targets[train_idx], config)
        residual = dict(zip(train_idx, (targets[train_idx] - predicted).tolist()))
        target = torch.tensor([residual[i] for i in described])
    elif config.text_tuning_target == "mos":
        target = targets[described]
    else:
        raise ValueError(f"text_tuning_target must be 'residual' or 'mos', not {config.text_tuning_target!r}")
    losses = tune_text_encoder(
        model, [texts[i] for i in described], target, mode=model.config.text_encoder.trainable,
        epochs=config.text_tuning_epochs, learning_rate=config.text_tuning_learning_rate,
        weight_decay=config.weight_decay, seed=config.seed, device=config.device, progress=progress,
    )
    model.config.includes_encoder_weights = True
    model.config.extra["text_tuning_loss"] = [round(loss, 6) for loss in losses]
    unique = sorted(set(texts) | {""})
    with torch.inference_mode(), autocast(config.precision, torch.device(config.device)):
        table = _batched(lambda chunk: model.encode_texts(chunk).float(), unique, 64)
    row = {text: i for i, text in enumerate(unique)}
    return dataclasses.replace(features, text=table[[row[t] for t in texts]], empty_text=table[row[""]])


def _out_of_fold_image_only(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor,
                            config: TrainingConfig, folds: int = 5) -> torch.Tensor:
    """Each image's score by an image-only kernel head fitted without it (in-sample, kernel ridge nearly interpolates)."""
    predicted = torch.zeros(len(targets))
    for fit_idx, held_idx in kfold(len(targets), min(folds, len(targets)), seed=config.seed):
        head_model = CoreModel(copy.deepcopy(model.config), encoders_from=model)  # a fresh head on the same encoders
        _fit_kernel_head(head_model, features.subset(fit_idx), targets[fit_idx], config, fit_idx, [], calibrate=False)
        held = features.subset(held_idx)
        with torch.inference_mode():
            image_only = held.empty_text.expand(len(held_idx), -1)
            predicted[torch.as_tensor(held_idx)] = head_model.head(held.image[0], image_only, torch.zeros(len(held_idx), dtype=torch.bool))
    return predicted


def _fit_kernel_head(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor, config: TrainingConfig,
                     train_idx: list[int], val_idx: list[int], *, calibrate: bool = True) -> TrainingRun:
    """Closed-form fit of a kernel ridge head: every view regresses its MOS, every degraded copy MOS minus the margin;
    then (``calibrate`` and ``config.calibration_folds``) its gate and intervals from out-of-fold scores."""
    views = min(max(1, config.augmented_views), features.image.shape[0])
    rows = [features.image[v] for v in range(views)]
    row_targets, row_weights = [targets] * views, [torch.ones_like(targets)] * views
    if features.degraded is not None and config.rank_weight > 0:
        rows += list(features.degraded)
        row_targets += [targets - config.rank_margin] * len(features.degraded)
        row_weights += [torch.full_like(targets, config.rank_weight)] * len(features.degraded)
    text = features.text.repeat(len(rows), 1)
    unreal = None
    if features.negatives is not None and len(features.negatives):
        # Unreal rows: below every training image, whatever their source's description says.
        unreal = torch.cat([torch.zeros(sum(len(block) for block in rows), dtype=torch.bool),
                            torch.ones(len(features.negatives), dtype=torch.bool)])
        rows.append(features.negatives)
        row_targets.append(torch.full((len(features.negatives),), float(targets.min()) - config.floor_margin))
        row_weights.append(torch.full((len(features.negatives),), config.negative_weight))
        text = torch.cat([text, features.text[features.negative_sources]])
    model.config.kernel_support = sum(len(block) for block in rows)
    model.reset_head()
    fit = model.head.fit(
        torch.cat(rows), text, torch.cat(row_targets), torch.cat(row_weights), statistics_from=features.image[0],
        alpha=config.kernel_alpha, gamma_scale=config.kernel_gamma, text_weight=config.kernel_text_weight,
        unreal=unreal, unreal_alpha=config.unreal_alpha,
    )
    if calibrate and config.calibration_folds >= 2:
        fit.update(_calibrate_kernel_head(model, features, targets, config))
    model.trained = True
    model.config.extra.update({"seed": config.seed, **fit})
    history = [{"epoch": 1, "train_loss": fit["train_rmse_with_text"] ** 2}]
    return TrainingRun(model.eval(), history, 1, {}, train_idx, val_idx)


def _calibrate_kernel_head(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor,
                           config: TrainingConfig) -> dict[str, float]:
    """Set the fitted head's gate and intervals from out-of-fold scores of its training images (cross-conformal)."""
    nearness, unreal, errors_with_text, errors_image_only = out_of_fold_errors(model, features, targets, config)
    floor = float(targets.min()) - config.floor_margin
    return model.head.calibrate(nearness, unreal, errors_with_text, errors_image_only, floor=floor,
                                near_quantile=config.near_quantile, unreal_width=config.unreal_width)


def out_of_fold_errors(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor,
                       config: TrainingConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(nearness, unreal, absolute error with text, absolute error image-only)`` of every training image,
    each scored (raw regression) by a kernel head fitted without it over ``config.calibration_folds`` folds."""
    n = len(targets)
    nearness, unreal, errors = torch.zeros(n), torch.zeros(n), {True: torch.zeros(n), False: torch.zeros(n)}
    for fit_idx, held_idx in kfold(n, min(config.calibration_folds, n), seed=config.seed):
        inner = CoreModel(copy.deepcopy(model.config), encoders_from=model)
        _fit_kernel_head(inner, features.subset(fit_idx), targets[fit_idx], config, fit_idx, [], calibrate=False)
        held, index = features.subset(held_idx), torch.as_tensor(held_idx)
        with torch.inference_mode():
            for has_text in (True, False):
                text = held.text if has_text else held.empty_text.expand(len(held_idx), -1)
                raw, near, unreal_held, _ = inner.head.regress(held.image[0], text, torch.full((len(held_idx),), has_text))
                errors[has_text][index] = (raw - targets[index]).abs()
                nearness[index], unreal[index] = near, unreal_held
    return nearness, unreal, errors[True], errors[False]


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


class _Trainer:
    """The epoch loop and model selection shared by both training paths."""

    def __init__(self, model, texts, targets, train_idx, val_idx, config: TrainingConfig, progress):
        self.model, self.texts, self.targets = model, texts, targets
        self.train_idx, self.val_idx, self.config, self.progress = train_idx, val_idx, config, progress
        self.generator = torch.Generator().manual_seed(config.seed)
        self.device = torch.device(config.device)

    def parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def train_step(self, batch: list[int], empty_text: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, indices: list[int], *, with_text: bool) -> np.ndarray:
        raise NotImplementedError

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def run(self) -> TrainingRun:
        config = self.config
        optimizer = torch.optim.AdamW(self.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        history: list[dict[str, float]] = []
        best = (-math.inf, 0, {}, None)
        epochs = tqdm(range(1, config.epochs + 1), desc="train", disable=not self.progress)
        for epoch in epochs:
            order = torch.randperm(len(self.train_idx), generator=self.generator).tolist()
            losses = []
            for start in range(0, len(order), config.batch_size):
                batch = [self.train_idx[i] for i in order[start : start + config.batch_size]]
                empty = torch.rand(len(batch), generator=self.generator) < config.description_dropout
                self.model.head.train()
                loss = self.train_step(batch, empty)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item() * len(batch))
            self.model.eval()
            metrics = {"epoch": epoch, "train_loss": sum(losses) / len(self.train_idx)}
            if self.val_idx:
                mos = self.targets[self.val_idx].numpy()
                metrics["val_srocc"] = float(srocc(self.predict(self.val_idx, with_text=True), mos))
                metrics["val_srocc_image_only"] = float(srocc(self.predict(self.val_idx, with_text=False), mos))
                criterion = self.selection_score(metrics)
                if best[3] is None or criterion > best[0]:  # NaN never beats; the first epoch is the floor
                    best = (criterion, epoch, metrics, self.snapshot())
            history.append(metrics)
            epochs.set_postfix({k: f"{v:.3f}" for k, v in metrics.items() if k != "epoch"})
        if self.val_idx:
            _, best_epoch, best_metrics, state = best
            self.model.load_state_dict(state)
        else:  # nothing held out: the last epoch is the model, as it stands
            best_epoch, best_metrics = config.epochs, history[-1]
        self.model.trained = True
        self.model.config.extra.update({"best_epoch": best_epoch, "seed": config.seed})
        if self.val_idx:
            self.model.config.extra["validation"] = best_metrics
        return TrainingRun(self.model.eval(), history, best_epoch, best_metrics, self.train_idx, self.val_idx)

    def selection_score(self, metrics: dict[str, float]) -> float:
        """Validation SROCC with descriptions; with description dropout, averaged with image-only."""
        if self.model.config.modalities == "image":
            return metrics["val_srocc_image_only"]
        if self.config.description_dropout > 0:
            return (metrics["val_srocc"] + metrics["val_srocc_image_only"]) / 2
        return metrics["val_srocc"]


class _FrozenTrainer(_Trainer):
    """Encoders frozen: train the head on features encoded once (several augmented views)."""

    def __init__(self, model, features: FrozenFeatures, *args):
        super().__init__(model, *args)
        self.image_features, self.text_features, self.empty_text = features.image, features.text, features.empty_text
        self.degraded = features.degraded if self.config.rank_weight > 0 else None
        train = torch.as_tensor(self.train_idx)
        self.model.head.set_feature_statistics(
            self.image_features[:, train].reshape(-1, self.image_features.shape[-1]), self.text_features[train]
        )

    def parameters(self) -> list[nn.Parameter]:
        return list(self.model.head.parameters())

    def train_step(self, batch, empty_text):
        index = torch.as_tensor(batch)
        views = torch.randint(0, self.image_features.shape[0], (len(batch),), generator=self.generator)
        image = self.image_features[views, index]
        text = torch.where(empty_text.unsqueeze(-1), self.empty_text, self.text_features[index]).to(self.device)
        prediction = self.model.head(image.to(self.device), text)
        loss = nn.functional.mse_loss(prediction, self.targets[index].to(self.device))
        if self.degraded is None:
            return loss
        # One random degraded copy per sample must score rank_margin below the source it came from.
        family = torch.randint(0, self.degraded.shape[0], (len(batch),), generator=self.generator)
        source = self.model.head(self.image_features[0, index].to(self.device), text)
        degraded = self.model.head(self.degraded[family, index].to(self.device), text)
        hinge = nn.functional.relu(self.config.rank_margin - (source - degraded)).mean()
        return loss + self.config.rank_weight * hinge

    @torch.inference_mode()
    def predict(self, indices, *, with_text):
        index = torch.as_tensor(indices)
        text = self.text_features[index] if with_text else self.empty_text.expand(len(indices), -1)
        return self.model.head(self.image_features[0, index].to(self.device), text.to(self.device)).cpu().numpy()


class _FineTuneTrainer(_Trainer):
    """Some encoder layers train: augment, preprocess and encode every step."""

    def __init__(self, model, images, *args):
        super().__init__(model, *args)
        self.images = images
        model.image_encoder.set_trainable(model.config.image_encoder.trainable)
        model.text_encoder.set_trainable(model.config.text_encoder.trainable)
        model.config.includes_encoder_weights = True
        with torch.inference_mode():
            train = self.train_idx
            image = _batched(lambda c: model.encode_images(self._pixels(c, augment=False)), train, 32)
            text = _batched(lambda c: model.encode_texts([self.texts[i] for i in c]), train, 64)
        model.head.set_feature_statistics(image, text)

    def _pixels(self, indices, *, augment):
        preprocess = self.model.image_encoder.preprocess
        shown = [self.config.augmentation(self.images[i], self.generator) if augment else self.images[i] for i in indices]
        return torch.stack([preprocess(image) for image in shown]).to(self.device)

    def parameters(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def train_step(self, batch, empty_text):
        texts = ["" if empty else self.texts[i] for i, empty in zip(batch, empty_text.tolist())]
        with autocast(self.config.precision, self.device):
            prediction = self.model(self._pixels(batch, augment=True), texts)
        return nn.functional.mse_loss(prediction.float(), self.targets[batch].to(self.device))

    @torch.inference_mode()
    def predict(self, indices, *, with_text):
        texts = lambda chunk: [self.texts[i] if with_text else "" for i in chunk]  # noqa: E731
        with autocast(self.config.precision, self.device):
            scores = _batched(lambda c: self.model(self._pixels(c, augment=False), texts(c)).float(), indices, 32)
        return scores.cpu().numpy()


def _batched(function, items: Sequence[Any], size: int, bar=None) -> torch.Tensor:
    outputs = []
    for start in range(0, len(items), size):
        chunk = list(items[start : start + size])
        outputs.append(function(chunk).float().cpu())
        if bar is not None:
            bar.update(len(chunk))
    return torch.cat(outputs)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_training_outputs(run: TrainingRun, out_dir: str | Path, *, config: TrainingConfig) -> Path:
    """Write the model (``save_pretrained``), ``training_history.json`` and ``training_curve.png``."""
    out_dir = Path(out_dir)
    run.model.save_pretrained(out_dir)
    summary = {
        "training_config": {**asdict(config), "augmentation": asdict(config.augmentation)},
        "best_epoch": run.best_epoch,
        "best_validation": run.best_validation,
        "history": run.history,
    }
    with atomic_output(out_dir / "training_history.json") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    plot_training_curve(run.history, out_dir / "training_curve.png", best_epoch=run.best_epoch)
    return out_dir


def plot_training_curve(history: list[dict[str, float]], path: str | Path, *, best_epoch: int | None = None) -> None:
    """Training loss per epoch and, when something was held out, validation SROCC with the kept epoch marked."""
    epochs = [h["epoch"] for h in history]
    with styled_figure((7, 4)) as figure:
        loss_axis = figure.subplots()
        loss_axis.plot(epochs, [h["train_loss"] for h in history], color=COLORS[0], label="train loss")
        loss_axis.set_xlabel("epoch")
        loss_axis.set_ylabel("train loss", color=COLORS[0])
        if all("val_srocc" in h for h in history):
            srocc_axis = loss_axis.twinx()
            srocc_axis.plot(epochs, [h["val_srocc"] for h in history], color=COLORS[1], label="val SROCC")
            srocc_axis.plot(epochs, [h["val_srocc_image_only"] for h in history], color=COLORS[2], linestyle="--",
                            label="val SROCC, image only")
            srocc_axis.set_ylabel("validation SROCC")
            if best_epoch is not None:
                srocc_axis.axvline(best_epoch, color="gray", linestyle=":", label=f"selected (epoch {best_epoch})")
            srocc_axis.legend(loc="lower right")
        figure.tight_layout()
    save_figure(figure, path)
