"""Encode RAISE-TD once with the bundled model's encoders, as ``realness train`` does, for head experiments.

Train split: ``encode_frozen_features`` with the shipped recipe (the image, its mirror, one degraded copy
per family, seeded exactly as ``realness train``), so a head fitted on these features is the head
``realness train`` fits. Test split: the unaltered images and their descriptions only, for the final
report. Cached as ``<cache>/core-lite-{train,test}.pt``; an existing file is reused.

    python benchmarks/core_features.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from realness.core import CoreConfig
from realness.core.model import CoreModel
from realness.core.scene_statistics import scene_statistics
from realness.data.raise_td import load_raise_td
from realness.io.inputs import load_image
from realness.training.trainer import FrozenFeatures, TrainingConfig, encode_frozen_features

CACHE = Path.home() / ".cache" / "realness-research"


def cached_features(split: str, root: str | None = None, cache: Path = CACHE, progress: bool = True) -> tuple[FrozenFeatures, object]:
    """(features, the dataset) of ``split``; encoded on first use (minutes), then read from the cache."""
    data = load_raise_td(root, split=split)
    path = cache / f"core-lite-{split}.pt"
    if not path.exists():
        started = time.time()
        config = TrainingConfig() if split == "train" else TrainingConfig(augmented_views=1, degradations=())
        model = CoreModel(CoreConfig.lite())
        features = encode_frozen_features(model, data.paths, list(data.descriptions), config=config, progress=progress)
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({"image": features.image, "text": features.text, "empty_text": features.empty_text,
                    "degraded": features.degraded, "families": list(features.families),
                    "paths": [str(p) for p in data.paths], "seconds": time.time() - started}, path)
    saved = torch.load(path, weights_only=True)
    if saved["paths"] != [str(p) for p in data.paths]:
        raise SystemExit(f"{path}: encoded from other images than {split}; delete it to re-encode")
    features = FrozenFeatures(saved["image"], saved["text"], saved["empty_text"], saved["degraded"], tuple(saved["families"]))
    return features, data


def features_from_head(model: CoreModel, root: str | None = None,
                       degradations: tuple[str, ...] | None = None) -> tuple[FrozenFeatures, object]:
    """The training features a trained kernel head stores (its support rows, float16), for the train split.

    ``realness train`` stores every training row in the head, standardized: the image and its mirror
    (``N`` rows each), then one copy per degradation family, in the training split's order, each with its
    image's description, then the negatives. Undoing the standardization gives back the encoder outputs the
    model was fitted on (to float16 precision), so a recipe of the head alone can be refitted without encoding
    the images again. ``degradations``: the families the head was trained with (default: today's recipe's).
    Scene statistics (a model whose encoder adds them) are not stored: they are computed
    again from the images (seconds each), for the image rows the head's statistics are fitted on.
    """
    data = load_raise_td(root, split="train")
    head, n = model.head, len(data)
    config = TrainingConfig()
    degradations = config.degradations if degradations is None else degradations
    views = max(1, config.augmented_views)
    blocks = views + len(degradations)
    if head.support_image.shape[0] < blocks * n:
        raise SystemExit(f"the head stores {head.support_image.shape[0]} rows, not {blocks} x {n}: not trained by this recipe")
    rows = head.support_image.float() * head.image_std + head.image_mean
    if head.statistics_dim:
        statistics = torch.cat([scene_statistics(load_image(path)) for path in data.paths])
        rows = torch.cat([rows, torch.zeros(len(rows), head.statistics_dim)], 1)
        rows[:n, -head.statistics_dim :] = statistics
        rows[n : 2 * n, -head.statistics_dim :] = statistics
    image = rows[: blocks * n].reshape(blocks, n, -1)
    text = head.support_text[:n].float() / head.text_scale
    with torch.inference_mode():
        empty = model.encode_texts([""])[0].float()
    negatives = rows[blocks * n :]
    # A negative's source only chooses the text stored beside it, which its weight of 0 leaves unused.
    sources = torch.zeros(len(negatives), dtype=torch.long)
    features = FrozenFeatures(image[:views], text, empty, image[views:], tuple(degradations),
                              negatives if len(negatives) else None, sources if len(negatives) else None)
    return features, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    for split in ("train", "test"):
        features, _ = cached_features(split, args.root)
        print(split, tuple(features.image.shape), flush=True)


if __name__ == "__main__":
    main()
