"""Encode RAISE-TD once per image encoder and view, for the recipe search (benchmarks/recipe_cv.py).

Views of every training image: the image itself, its mirror, and one degraded copy per
degradation family at a random strength (blur sigma 1-4, noise sigma 10-30, JPEG quality
10-30, downscale x2-x4). Test images are encoded unaltered only, for the final report.
Features are cached as ``<cache>/<encoder>/<split>_<view>.pt``; an existing file is reused.

    python benchmarks/recipe_features.py --encoder efficientnet-lite0
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from realness.core.config import LITE_MEAN, LITE_STD, ImageEncoderConfig
from realness.core.encoders import build_image_encoder
from realness.data.raise_td import load_raise_td
from realness.io.inputs import load_image
from realness.training.degrade import downscale, gaussian_blur, gaussian_noise, jpeg

ALL_LEVELS = (0, 1, 2, 3, 4, 5, 6)


def views(seed: int):
    """name -> function(image, generator, rng): the views encoded for the training split."""
    return {
        "clean": lambda x, g, r: x,
        "flip": lambda x, g, r: x.flip(-1),
        "blur": lambda x, g, r: gaussian_blur(x, r.uniform(1.0, 4.0)),
        "noise": lambda x, g, r: gaussian_noise(x, r.uniform(10.0, 30.0), g),
        "jpeg": lambda x, g, r: jpeg(x, r.randint(10, 30)),
        "downscale": lambda x, g, r: downscale(x, r.uniform(2.0, 4.0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--root", default="../shared/datasets/raise-td")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "realness-research"))
    parser.add_argument("--views", default="clean,flip,blur,noise,jpeg,downscale")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    config = ImageEncoderConfig(
        family="efficientnet_lite", name=args.encoder, input_size=(384, 512), mean=LITE_MEAN, std=LITE_STD,
        feature_levels=ALL_LEVELS,
    )
    encoder = build_image_encoder(config).eval()
    out = Path(args.cache) / args.encoder
    out.mkdir(parents=True, exist_ok=True)
    table = views(0)  # seeded per view below, so a view is the same whatever ran before
    for split in ("train", "test"):
        data = load_raise_td(args.root, split)
        wanted = args.views.split(",") if split == "train" else ["clean"]
        for view in wanted:
            path = out / f"{split}_{view}.pt"
            if path.exists():
                continue
            generator, rng = torch.Generator().manual_seed(1234), random.Random(1234)
            started, features = time.time(), []
            paths = [str(sample.image_path) for sample in data]
            for start in tqdm(range(0, len(paths), args.batch_size), desc=f"{args.encoder} {split} {view}"):
                shown = [table[view](load_image(p), generator, rng) for p in paths[start : start + args.batch_size]]
                pixels = torch.stack([encoder.preprocess(x) for x in shown])
                with torch.inference_mode():
                    features.append(encoder(pixels))
            torch.save({"features": torch.cat(features), "paths": paths, "seconds": time.time() - started}, path)
            print(f"{path}: {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
