"""The recipe of a CORE training run (:class:`TrainingConfig`) and its outcome (:class:`TrainingRun`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from realness.core.model import CoreModel
from realness.training.augment import Augmentation
from realness.training.negatives import FAMILIES as NEGATIVE_FAMILIES

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
        family_margins: per degradation family, a margin other than ``rank_margin`` (``presentation``:
            copies people cannot tell apart, regressed to their source's MOS).
        family_weights: per degradation family, a weight other than ``rank_weight``.
        negatives: a ``kernel_ridge`` head: families of :data:`realness.training.negatives.FAMILIES`
            (flat frames, noise of any spectrum, patterns, blobs, smears, fine tile shuffles) stored as
            rows its ``unreal`` regressor learns (a kernel regressor far from its rows falls back to the
            average score; see ``KernelRidgeHead``).
        negatives_per_kind: images of each family, each made from another training image.
        unreal_alpha: ridge regularization of the ``unreal`` regressor.
        calibration_folds: a ``kernel_ridge`` head: folds of the out-of-fold scoring of the training
            images that sets its penalty and intervals (0: neither; see ``KernelRidgeHead.calibrate``).
        penalty_slope: the score lost per ``log(1 + unlikeness)`` (see ``KernelRidgeHead.penalty``).
        unlikeness_quantile: the quantile of held-out training images' unlikeness components past which the
            penalty starts (1: the highest).
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
    degradations: tuple[str, ...] = ("blur", "noise", "jpeg", "downscale", "gaming", "presentation")
    rank_weight: float = 0.3
    rank_margin: float = 0.5
    family_margins: dict[str, float] = field(default_factory=lambda: {"presentation": 0.0})
    family_weights: dict[str, float] = field(default_factory=lambda: {"presentation": 1.0})
    kernel_alpha: float = 1.0
    kernel_gamma: float = 0.25
    kernel_text_weight: float = 0.5
    text_tuning_epochs: int = 5
    text_tuning_learning_rate: float = 5e-5
    text_tuning_target: str = "residual"
    negatives: tuple[str, ...] = tuple(NEGATIVE_FAMILIES)
    negatives_per_kind: int = 40
    unreal_alpha: float = 0.1
    calibration_folds: int = 5
    penalty_slope: float = 2.0
    unlikeness_quantile: float = 0.99
    device: str = "cpu"
    precision: str = "auto"

    def margin_and_weight(self, family: str) -> tuple[float, float]:
        """How far below its source a copy of ``family`` is regressed, and the weight of its squared error."""
        return self.family_margins.get(family, self.rank_margin), self.family_weights.get(family, self.rank_weight)


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
