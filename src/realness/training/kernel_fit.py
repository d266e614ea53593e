"""Fitting a kernel ridge head in closed form, and calibrating its penalty and intervals out of fold."""

from __future__ import annotations

import copy
import dataclasses

import torch

from realness.core.model import CoreModel
from realness.data.splits import kfold
from realness.runtime.device import autocast
from realness.training.config import TrainingConfig, TrainingRun
from realness.training.features import FrozenFeatures, batched
from realness.training.text_tuning import tune_text_encoder


def tuned_text_features(model: CoreModel, features: FrozenFeatures, texts: list[str], targets: torch.Tensor,
                       train_idx: list[int], config: TrainingConfig, progress: bool) -> FrozenFeatures:
    """Tune the text encoder on the training texts (see :mod:`realness.training.text_tuning`); the features with the tuned text."""
    described = [i for i in train_idx if texts[i]]
    if len(described) < 2:
        raise ValueError(f"tuning the text encoder needs at least 2 described training images, not {len(described)}")
    if config.text_tuning_target == "residual":
        train = features.subset(train_idx)
        predicted = out_of_fold_image_only(model, train, targets[train_idx], config)
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
        table = batched(lambda chunk: model.encode_texts(chunk).float(), unique, 64)
    row = {text: i for i, text in enumerate(unique)}
    return dataclasses.replace(features, text=table[[row[t] for t in texts]], empty_text=table[row[""]])


def out_of_fold_image_only(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor,
                            config: TrainingConfig, folds: int = 5) -> torch.Tensor:
    """Each image's score by an image-only kernel head fitted without it (in-sample, kernel ridge nearly interpolates)."""
    predicted = torch.zeros(len(targets))
    for fit_idx, held_idx in kfold(len(targets), min(folds, len(targets)), seed=config.seed):
        head_model = CoreModel(copy.deepcopy(model.config), encoders_from=model)  # a fresh head on the same encoders
        fit_kernel_head(head_model, features.subset(fit_idx), targets[fit_idx], config, fit_idx, [], calibrate=False)
        held = features.subset(held_idx)
        with torch.inference_mode():
            image_only = held.empty_text.expand(len(held_idx), -1)
            predicted[torch.as_tensor(held_idx)] = head_model.head(held.image[0], image_only, torch.zeros(len(held_idx), dtype=torch.bool))
    return predicted


def fit_kernel_head(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor, config: TrainingConfig,
                     train_idx: list[int], val_idx: list[int], *, calibrate: bool = True) -> TrainingRun:
    """Closed-form fit of a kernel ridge head: every view regresses its MOS, every degraded copy MOS minus the margin;
    then (``calibrate`` and ``config.calibration_folds``) its penalty and intervals from out-of-fold scores."""
    views = min(max(1, config.augmented_views), features.image.shape[0])
    rows = [features.image[v] for v in range(views)]
    row_targets, row_weights = [targets] * views, [torch.ones_like(targets)] * views
    if features.degraded is not None and config.rank_weight > 0:
        for family, block in zip(features.families, features.degraded):
            margin, weight = config.margin_and_weight(family)
            rows.append(block)
            row_targets.append(targets - margin)
            row_weights.append(torch.full_like(targets, weight))
    text = features.text.repeat(len(rows), 1)
    unreal = None
    if features.negatives is not None and len(features.negatives):
        # Negative rows: the unreal regressor learns them; the score regressors leave them out (weight 0).
        unreal = torch.cat([torch.zeros(sum(len(block) for block in rows), dtype=torch.bool),
                            torch.ones(len(features.negatives), dtype=torch.bool)])
        rows.append(features.negatives)
        row_targets.append(torch.zeros(len(features.negatives)))
        row_weights.append(torch.zeros(len(features.negatives)))
        text = torch.cat([text, features.text[features.negative_sources]])
    model.config.kernel_support = sum(len(block) for block in rows)
    model.reset_head()
    fit = model.head.fit(
        torch.cat(rows), text, torch.cat(row_targets), torch.cat(row_weights), statistics_from=features.image[0],
        alpha=config.kernel_alpha, gamma_scale=config.kernel_gamma, text_weight=config.kernel_text_weight,
        unreal=unreal, unreal_alpha=config.unreal_alpha,
    )
    if calibrate and config.calibration_folds >= 2:
        fit.update(calibrate_kernel_head(model, features, targets, config))
    model.trained = True
    model.config.extra.update({"seed": config.seed, **fit})
    history = [{"epoch": 1, "train_loss": fit["train_rmse_with_text"] ** 2}]
    return TrainingRun(model.eval(), history, 1, {}, train_idx, val_idx)


def calibrate_kernel_head(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor,
                           config: TrainingConfig) -> dict[str, float]:
    """Set the fitted head's penalty and intervals from out-of-fold scores of its training images (cross-conformal)."""
    parts, errors_with_text, errors_image_only = out_of_fold_errors(model, features, targets, config)
    model.head.out_of_fold = (parts, errors_with_text, errors_image_only)  # kept for recalibration (not saved)
    return model.head.calibrate(parts, errors_with_text, errors_image_only, slope=config.penalty_slope,
                                quantile=config.unlikeness_quantile)


def out_of_fold_errors(model: CoreModel, features: FrozenFeatures, targets: torch.Tensor,
                       config: TrainingConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """``(unlikeness components, absolute error with text, absolute error image-only)`` of every training image,
    each scored (raw regression) by a kernel head fitted without it over ``config.calibration_folds`` folds."""
    n = len(targets)
    parts: dict[str, torch.Tensor] = {}
    errors = {True: torch.zeros(n), False: torch.zeros(n)}
    for fit_idx, held_idx in kfold(n, min(config.calibration_folds, n), seed=config.seed):
        inner = CoreModel(copy.deepcopy(model.config), encoders_from=model)
        fit_kernel_head(inner, features.subset(fit_idx), targets[fit_idx], config, fit_idx, [], calibrate=False)
        inner.head.training_rows[: len(fit_idx)] = 1.0  # the inner head's distance is to its own training images
        held, index = features.subset(held_idx), torch.as_tensor(held_idx)
        with torch.inference_mode():
            for has_text in (True, False):
                text = held.text if has_text else held.empty_text.expand(len(held_idx), -1)
                raw, held_parts, _, _ = inner.head.regress(held.image[0], text, torch.full((len(held_idx),), has_text))
                errors[has_text][index] = (raw - targets[index]).abs()
            for name, value in held_parts.items():
                parts.setdefault(name, torch.zeros(n))[index] = value
    return parts, errors[True], errors[False]
