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
number of epochs included, was chosen by k-fold cross-validation (:func:`realness.training.cross_validation.cross_validate`).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from realness.core.config import CoreConfig
from realness.core.model import CoreModel
from realness.data.splits import train_val_split
from realness.evaluation.plotting import COLORS, save_figure, styled_figure
from realness.evaluation.stats import srocc
from realness.io.atomic import atomic_output
from realness.io.inputs import load_image
from realness.runtime.device import autocast
from realness.training.config import MIRROR, TrainingConfig, TrainingRun
from realness.training.features import FrozenFeatures, batched, encode_frozen_features
from realness.training.kernel_fit import fit_kernel_head, tuned_text_features

__all__ = ["MIRROR", "FrozenFeatures", "TrainingConfig", "TrainingRun", "encode_frozen_features", "train_core",
           "save_training_outputs", "plot_training_curve"]


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
    closed_form = model.head.closed_form
    if closed_form and not image_frozen:
        raise ValueError(
            "a kernel_ridge head is fitted in closed form over frozen image features: to fine-tune the image "
            "encoder, train an mlp head (CoreConfig.paper(), realness train --config paper)"
        )
    if image_frozen and (text_frozen or closed_form):
        model.requires_grad_(False)
        model.head.requires_grad_(True)
        if features is None:
            features = encode_frozen_features(model, images, texts, config=config, progress=progress)
        if closed_form:
            if not text_frozen:
                features = tuned_text_features(model, features, texts, targets, train_idx, config, progress)
            return fit_kernel_head(model, features.subset(train_idx), targets[train_idx], config, train_idx, val_idx)
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
            image = batched(lambda c: model.encode_images(self._pixels(c, augment=False)), train, 32)
            text = batched(lambda c: model.encode_texts([self.texts[i] for i in c]), train, 64)
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
            scores = batched(lambda c: self.model(self._pixels(c, augment=False), texts(c)).float(), indices, 32)
        return scores.cpu().numpy()


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
