"""The cached features of the score-notion experiments (issue 35), gathered in one place.

Training rows of the bundled recipe (image, mirror, one degraded copy per family, with the strength each
copy was drawn at) come from the bundled head (``core_features.features_from_head``); the presentation
copies, gaming edits, degenerate families and checks from ``score_notion_features.py``'s cache.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from core_features import CACHE, features_from_head  # noqa: E402

import realness  # noqa: E402
from realness.io.inputs import load_image  # noqa: E402
from realness.training.degrade import FAMILIES as DEGRADATIONS  # noqa: E402
from realness.training.trainer import FrozenFeatures, TrainingConfig  # noqa: E402

# The families the 0.2 bundled head (the one these experiments start from) was trained with.
OLD_DEGRADATIONS = ("blur", "noise", "jpeg", "downscale")


@dataclass
class Group:
    labels: list[dict]
    features: torch.Tensor  # N x image_dim, float32
    statistics: torch.Tensor  # N x scene statistics
    extra: dict = field(default_factory=dict)

    def where(self, **match) -> torch.Tensor:
        return torch.tensor([all(label.get(k) == v for k, v in match.items()) for label in self.labels])


def replay_strengths(paths, config: TrainingConfig) -> torch.Tensor:
    """``families x N``: the strength each degraded training copy was drawn at, by replaying
    ``encode_frozen_features``' seeded generator (the copies themselves are in the head)."""
    generator = torch.Generator().manual_seed(config.seed)
    strengths = torch.zeros(len(config.degradations), len(paths))
    for n, path in enumerate(paths):
        image = load_image(path)
        for _ in range(max(1, config.augmented_views) - 1):
            config.augmentation(image, generator)
        for f, family in enumerate(config.degradations):
            function, low, high = DEGRADATIONS[family]
            strengths[f, n] = low + (high - low) * torch.rand((), generator=generator).item()
            function(image, float(strengths[f, n]), generator)
    return strengths


def load(group: str) -> Group:
    saved = torch.load(CACHE / f"notion-{group}.pt", weights_only=False)
    extra = {k: v for k, v in saved.items() if k not in ("labels", "features", "statistics")}
    return Group(saved["labels"], saved["features"].float(), saved["statistics"].float(), extra)


def training_data():
    """``(features, data, strengths, model, no_text)``: the recipe's training features, the dataset, the replayed
    degradation strengths (cached), the bundled model and the text features of "No."."""
    model = realness.RealnessScorer.from_pretrained().model
    features, data = features_from_head(model, degradations=OLD_DEGRADATIONS)
    path = CACHE / "notion-strengths.pt"
    if not path.exists():
        torch.save(replay_strengths(data.paths, TrainingConfig(degradations=OLD_DEGRADATIONS)), path)
    with torch.inference_mode():
        no_text = model.encode_texts(["No."])[0].float()
    return features, data, torch.load(path), model, no_text


def notion_training_features() -> tuple[FrozenFeatures, object, object]:
    """``(features, data, model)``: the whole training split as today's recipe trains on it, from the caches: the
    0.2 head's image, mirror and degraded rows, the cached gaming and presentation copies and negatives, and the
    images' scene statistics (appended to the image rows)."""
    features, data, _, model, _ = training_data()
    rows = load("train-rows")
    statistics = rows.extra["original_statistics"].float()
    n = len(statistics)

    def copies(kind: str) -> torch.Tensor:
        block = torch.zeros(n, features.image.shape[-1])
        mask = rows.where(kind=kind)
        block[torch.tensor([label["source"] for label, m in zip(rows.labels, mask) if m])] = rows.features[mask]
        return block

    blocks = {name: features.degraded[k] for k, name in enumerate(features.families)}
    blocks.update(gaming=copies("gaming"), presentation=copies("presentation"))
    families = TrainingConfig().degradations
    zeros = torch.zeros(n, statistics.shape[1])
    negative = rows.where(kind="negative")
    return FrozenFeatures(
        image=torch.stack([torch.cat([view, statistics], 1) for view in features.image]),
        text=features.text, empty_text=features.empty_text,
        degraded=torch.stack([torch.cat([blocks[name], zeros], 1) for name in families]), families=families,
        negatives=torch.cat([rows.features[negative], rows.statistics[negative]], 1),
        negative_sources=torch.tensor([label["source"] for label, m in zip(rows.labels, negative) if m]),
    ), data, model
