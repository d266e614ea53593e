"""Frozen encoders' features of the training images: augmented views, degraded copies, negatives and texts, encoded once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from realness.core.model import CoreModel
from realness.io.inputs import load_image
from realness.runtime.device import autocast
from realness.training.config import TrainingConfig
from realness.training.degrade import random_degradation
from realness.training.negatives import negative_image


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
    if model.head.closed_form:  # only the kernel head trains on negatives
        negatives, sources = encode_negatives(encoder, images, config, device, progress)
    texts = [text or "" for text in descriptions]
    unique = sorted(set(texts) | {""})
    with autocast(config.precision, device):
        table = batched(lambda chunk: model.encode_texts(chunk).float(), unique, 64)
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


def encode_negatives(encoder, images: Sequence[Any], config: TrainingConfig, device: torch.device,
                      progress: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``config.negatives_per_kind`` images of each kind of ``config.negatives``, each from another training image.

    Seeded apart from the views (``config.seed + 1``), so adding negatives leaves every other row as it was.
    """
    if not config.negatives or config.negatives_per_kind < 1:
        return None, None
    generator = torch.Generator().manual_seed(config.seed + 1)
    count = len(config.negatives) * config.negatives_per_kind
    sources = torch.randperm(len(images), generator=generator).repeat(count // len(images) + 1)[:count]
    rows = []
    for k in tqdm(range(count), desc="encode negatives", disable=not progress):
        photo = load_image(images[int(sources[k])], min_size=encoder.config.min_size)
        shown = negative_image(config.negatives[k // config.negatives_per_kind], photo, generator)
        with autocast(config.precision, device):
            rows.append(encoder(encoder.preprocess(shown).unsqueeze(0).to(device)).float().cpu())
    return torch.cat(rows), sources


def batched(function, items: Sequence[Any], size: int, bar=None) -> torch.Tensor:
    """``function`` over ``items`` in chunks of ``size`` (an optional progress ``bar`` advanced per chunk), concatenated on the CPU."""
    outputs = []
    for start in range(0, len(items), size):
        chunk = list(items[start : start + size])
        outputs.append(function(chunk).float().cpu())
        if bar is not None:
            bar.update(len(chunk))
    return torch.cat(outputs)
