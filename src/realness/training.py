"""Training CORE on rated images: the paper's recipe, selected on a validation split of train.

Recipe (REALM): AdamW, learning rate 1e-4, MSE on MOS, augmentation by flips, small
rotations and colour jitter. Two paths share it:

* frozen encoders (the default): image features of several augmented views and text
  features are computed once, then only the head trains -- minutes on a CPU;
* partly or fully fine-tuned encoders (``trainable="last"|"all"`` in the encoder
  configs): images are augmented and encoded on the fly every step.

*Description dropout* replaces a share of training descriptions by the empty string, so
the same model also scores images that come without a description.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from realness.augment import Augmentation
from realness.core.config import CoreConfig
from realness.core.model import CoreModel


@dataclass
class TrainingConfig:
    """Hyper-parameters of :func:`train_core`.

    Attributes:
        epochs: passes over the training split.
        batch_size: images per optimizer step.
        learning_rate: AdamW learning rate (paper: 1e-4).
        weight_decay: AdamW weight decay.
        validation_fraction: share of the training data held out for model selection.
        seed: seeds the split, the augmentation, the initialization and the batches.
        augmented_views: frozen path only: augmented copies of each image encoded up front
            (view 0 is the unaugmented image); every step samples one per image.
        description_dropout: probability of training a sample with an empty description.
        augmentation: the random transforms.
        device: where to train.
    """

    epochs: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 1e-2
    validation_fraction: float = 0.15
    seed: int = 0
    augmented_views: int = 8
    description_dropout: float = 0.0
    augmentation: Augmentation = field(default_factory=Augmentation)
    device: str = "cpu"


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
    descriptions: Sequence[Optional[str]],
    *,
    config: Optional[TrainingConfig] = None,
    validation_indices: Optional[Sequence[int]] = None,
    encoders_from: Optional[CoreModel] = None,
    features: Optional["FrozenFeatures"] = None,
    progress: bool = True,
) -> TrainingRun:
    """Train a CORE model on rated images and keep the epoch with the best validation SROCC.

    The validation split is carved from the given (training) data only; a test split
    must never be passed here.

    Args:
        model_config: encoders and head to build.
        images: training images (paths or anything :mod:`realness.inputs` accepts).
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
    from realness.data.splits import train_val_split
    from realness.inputs import load_image

    if not (len(images) == len(mos) == len(descriptions)):
        raise ValueError(f"{len(images)} images, {len(mos)} scores and {len(descriptions)} descriptions: lengths differ")
    config = config or TrainingConfig()
    _seed_everything(config.seed)
    if validation_indices is None:
        train_idx, val_idx = train_val_split(len(images), val_fraction=config.validation_fraction, seed=config.seed)
    else:
        val_idx = sorted(set(int(i) for i in validation_indices))
        train_idx = [i for i in range(len(images)) if i not in set(val_idx)]
    train_idx, val_idx = [int(i) for i in train_idx], [int(i) for i in val_idx]
    if len(val_idx) < 3 or not train_idx:
        raise ValueError(
            f"{len(images)} images give {len(train_idx)} to train on and {len(val_idx)} to validate on; "
            "model selection needs at least 3 validation images (more data or a larger validation_fraction)"
        )
    model = CoreModel(copy.deepcopy(model_config), encoders_from=encoders_from)
    torch.manual_seed(config.seed)  # the head's initialization depends on the seed alone
    model.reset_head()
    model = model.to(config.device)
    targets = torch.as_tensor(np.asarray(mos, dtype=np.float32))
    texts = [text or "" for text in descriptions]
    frozen = model.config.image_encoder.trainable == "frozen" and model.config.text_encoder.trainable == "frozen"
    if frozen:
        model.requires_grad_(False)
        model.head.requires_grad_(True)
        if features is None:
            features = encode_frozen_features(model, images, texts, config=config, progress=progress)
        return _FrozenTrainer(model, features, texts, targets, train_idx, val_idx, config, progress).run()
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
    """

    image: torch.Tensor
    text: torch.Tensor
    empty_text: torch.Tensor


@torch.inference_mode()
def encode_frozen_features(
    model: CoreModel,
    images: Sequence[Any],
    descriptions: Sequence[Optional[str]],
    *,
    config: Optional[TrainingConfig] = None,
    progress: bool = True,
) -> FrozenFeatures:
    """Encode ``config.augmented_views`` augmented views of every image, and every description.

    Augmentation is seeded by ``config.seed``, so the same call gives the same features.
    """
    from realness.inputs import load_image

    config = config or TrainingConfig()
    model.eval()  # frozen features: BatchNorm must use its running statistics, never batch ones
    generator = torch.Generator().manual_seed(config.seed)
    encoder, views = model.image_encoder, max(1, config.augmented_views)
    device = torch.device(config.device)
    per_image = []
    for image in tqdm(images, desc="encode views", disable=not progress):
        decoded = load_image(image, min_size=encoder.config.min_size)
        shown = [decoded] + [config.augmentation(decoded, generator) for _ in range(views - 1)]
        pixels = torch.stack([encoder.preprocess(view) for view in shown]).to(device)
        per_image.append(encoder(pixels).float().cpu())
    texts = [text or "" for text in descriptions]
    unique = sorted(set(texts) | {""})
    table = _batched(lambda chunk: model.encode_texts(chunk), unique, 64)
    row = {text: i for i, text in enumerate(unique)}
    return FrozenFeatures(
        image=torch.stack(per_image, dim=1), text=table[[row[t] for t in texts]], empty_text=table[row[""]]
    )


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
        from realness.stats import srocc

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
            mos = self.targets[self.val_idx].numpy()
            metrics = {
                "epoch": epoch,
                "train_loss": sum(losses) / len(self.train_idx),
                "val_srocc": float(srocc(self.predict(self.val_idx, with_text=True), mos)),
                "val_srocc_image_only": float(srocc(self.predict(self.val_idx, with_text=False), mos)),
            }
            history.append(metrics)
            criterion = self.selection_score(metrics)
            if best[3] is None or criterion > best[0]:  # NaN never beats; the first epoch is the floor
                best = (criterion, epoch, metrics, self.snapshot())
            epochs.set_postfix(loss=f"{metrics['train_loss']:.3f}", val=f"{metrics['val_srocc']:.3f}")
        _, best_epoch, best_metrics, state = best
        self.model.load_state_dict(state)
        self.model.trained = True
        self.model.config.extra.update({"best_epoch": best_epoch, "validation": best_metrics, "seed": config.seed})
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
        text = torch.where(empty_text.unsqueeze(-1), self.empty_text, self.text_features[index])
        prediction = self.model.head(image.to(self.device), text.to(self.device))
        return nn.functional.mse_loss(prediction, self.targets[index].to(self.device))

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
        prediction = self.model(self._pixels(batch, augment=True), texts)
        return nn.functional.mse_loss(prediction, self.targets[batch].to(self.device))

    @torch.inference_mode()
    def predict(self, indices, *, with_text):
        texts = lambda chunk: [self.texts[i] if with_text else "" for i in chunk]  # noqa: E731
        return _batched(lambda c: self.model(self._pixels(c, augment=False), texts(c)), indices, 32).cpu().numpy()


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
    (out_dir / "training_history.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_training_curve(run.history, out_dir / "training_curve.png", best_epoch=run.best_epoch)
    return out_dir


def plot_training_curve(history: list[dict[str, float]], path: str | Path, *, best_epoch: Optional[int] = None) -> None:
    """Training loss and validation SROCC per epoch, the selected epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, loss_axis = plt.subplots(figsize=(7, 4))
    loss_axis.plot(epochs, [h["train_loss"] for h in history], color="tab:blue", label="train MSE")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train MSE", color="tab:blue")
    srocc_axis = loss_axis.twinx()
    srocc_axis.plot(epochs, [h["val_srocc"] for h in history], color="tab:orange", label="val SROCC")
    srocc_axis.plot(epochs, [h["val_srocc_image_only"] for h in history], color="tab:green", linestyle="--", label="val SROCC, image only")
    srocc_axis.set_ylabel("validation SROCC")
    if best_epoch is not None:
        srocc_axis.axvline(best_epoch, color="gray", linestyle=":", label=f"selected (epoch {best_epoch})")
    srocc_axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
