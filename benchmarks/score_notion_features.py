"""Encode, once, every image the score-notion experiments read (issue 35), with the bundled model's encoder.

Groups, each cached as ``<cache>/notion-<group>.pt`` (features float16, scene statistics, labels) as it finishes:

* ``train-rows``: per training image one presentation copy (same score) and one gaming edit (lower),
  randomized (``realness.training.degrade.random_presentation`` / ``random_gaming``), and ``NEGATIVES`` images of every
  degenerate family (``realness.training.negatives``) made from training photographs;
* ``train-checks``: fixed presentation copies and edits of some training images, and the noise-blend and
  deblur paths of some training photographs, to choose the recipe by cross-validation;
* ``test``: the same checks on the test split, and degenerate instances drawn by code of this script's own
  (other sizes, seeds, angles, periods, colours than the training families), for the final report only.

The training images' own features (image, mirror, degraded copies) come from the bundled head's stored
rows (``core_features.features_from_head``). Scene statistics of the training images are computed here.

    python benchmarks/score_notion_features.py [--groups train-rows,train-checks,test]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from core_features import CACHE  # noqa: E402

import realness  # noqa: E402
from realness.core.scene_statistics import scene_statistics  # noqa: E402
from realness.data.raise_td import load_raise_td  # noqa: E402
from realness.io.inputs import load_image  # noqa: E402
from realness.training import degrade  # noqa: E402
from realness.training.negatives import FAMILIES, negative_image  # noqa: E402

NEGATIVES = 40  # images per degenerate family in train-rows
CHECK_IMAGES = 24  # training images with fixed presentation copies and edits in train-checks
PATH_PHOTOS = 6  # training photographs with noise-blend and deblur paths in train-checks
BLEND = [round(0.1 * k, 1) for k in range(10)]  # alpha of the photograph; 1.0 is the photograph itself
TEST_PATH_PHOTOS = 10  # test photographs with noise-blend and deblur paths
DEBLUR = [32.0, 16.0, 8.0, 4.0, 2.0, 1.0, 0.5]  # sigma; 0 is the photograph itself


#: The presentation copies (same scene, same realness to a person) and the edits (lower) of the checks.
PRESENTATIONS = ("half", "jpeg75", "webp80", "double", "square")
EDITS = ("posterize16", "shuffle3", "blur4", "noise30", "jpeg10", "downup4", "posterize3bit")


def is_photograph(path) -> bool:
    return Path(path).name.startswith("r")


def presentations(image: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"half": degrade.rescale(image, 0.5), "jpeg75": degrade.jpeg(image, 75), "webp80": degrade.webp(image, 80),
            "double": degrade.rescale(image, 2.0), "square": degrade.centre_crop(image, 1.0)}


def edits(image: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"posterize16": degrade.posterize_colours(image, 16), "shuffle3": degrade.shuffle_tiles(image, 3, generator),
            "blur4": degrade.gaussian_blur(image, 4.0), "noise30": degrade.gaussian_noise(image, 30.0, generator),
            "jpeg10": degrade.jpeg(image, 10), "downup4": degrade.downscale(image, 4.0),
            "posterize3bit": degrade.posterize_bits(image, 3)}


def paths(image: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(seed))
    shown = {f"blend{alpha:.1f}": alpha * image + (1 - alpha) * noise for alpha in BLEND}
    shown.update({f"blur{sigma:g}": degrade.gaussian_blur(image, sigma) for sigma in DEBLUR})
    return shown


def test_degenerates(photos: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """Degenerate instances by code independent of ``realness.training.negatives``: other sizes and seeds."""
    g = torch.Generator().manual_seed(2026)
    items = []
    sizes = [(480, 640), (300, 400), (768, 1024), (512, 512)]
    for k, (h, w) in enumerate(sizes):
        colour = torch.tensor([[0.1, 0.1, 0.1], [0.95, 0.95, 0.9], [0.2, 0.5, 0.8], [0.7, 0.3, 0.2]][k]).view(3, 1, 1)
        items.append(("flat", colour.expand(3, h, w).clone()))
        items.append(("flat", degrade.jpeg(colour.expand(3, h, w).clone(), 30)))
    for k, (h, w) in enumerate(sizes):
        white = torch.randn(3 if k % 2 else 1, h, w, generator=g)
        beta = [0.0, 1.0, 2.0, 1.5][k]
        fy, fx = torch.fft.fftfreq(h).abs()[:, None], torch.fft.rfftfreq(w)[None, :]
        spectrum = torch.fft.rfft2(white) / (fy.square() + fx.square()).sqrt().clamp_min(1 / max(h, w)).pow(beta / 2)
        field = torch.fft.irfft2(spectrum, s=(h, w))
        items.append(("noise", (0.5 + 0.2 * field / field.std()).expand(3, h, w).clamp(0, 1)))
        items.append(("noise", torch.rand(3, h, w, generator=g) if k % 2 else (0.5 + 0.25 * torch.randn(3, h, w, generator=g)).clamp(0, 1)))
    for k, (h, w) in enumerate(sizes):
        y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        angle, period = math.radians([45, 30, 80, 10][k]), [64, 20, 8, 100][k]
        stripes = (torch.sin((x * math.cos(angle) + y * math.sin(angle)) * 2 * math.pi / period) > 0).float()
        items.append(("pattern", stripes.expand(3, h, w).clone()))
        cells = ((x // [16, 40, 6, 64][k]) + (y // [16, 40, 6, 64][k])) % 2
        pair = torch.rand(2, 3, 1, 1, generator=g)
        items.append(("pattern", pair[0] + (pair[1] - pair[0]) * cells))
    for k, (h, w) in enumerate(sizes):
        # Sums of random Gaussian bumps: smooth colour fields made another way than the training blobs.
        y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        image = torch.zeros(3, h, w)
        for _ in range(6 + 2 * k):
            centre, width, colour = torch.rand(2, generator=g), 0.1 + 0.3 * torch.rand((), generator=g), torch.rand(3, 1, 1, generator=g)
            image += colour * torch.exp(-((x - centre[1]) ** 2 + (y - centre[0]) ** 2) / (2 * width**2))
        items.append(("blobs", image / image.amax().clamp_min(1e-6)))
        items.append(("blobs", F.interpolate(torch.rand(1, 3, 3, 4, generator=g), size=(h, w), mode="bilinear", align_corners=True)[0]))
    for k, photo in enumerate(photos[:8]):
        items.append(("smear", degrade.gaussian_blur(photo, [12.0, 16.0, 20.0, 30.0][k % 4])))
        items.append(("fine shuffle", degrade.shuffle_tiles(photo, [8, 12, 16, 24][k % 4], g)))
    return items


class Encoder:
    def __init__(self):
        self.model = realness.RealnessScorer.from_pretrained().model
        self.image_encoder = self.model.image_encoder

    @torch.inference_mode()
    def encode(self, chunk: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = torch.stack([self.image_encoder.preprocess(image) for image in chunk])
        return self.image_encoder(pixels).float().half(), torch.cat([scene_statistics(image) for image in chunk])


def save(group: str, items, encoder: Encoder, extra: dict | None = None) -> None:
    """Encode ``(label, image)`` items 8 at a time (images are made as they are needed) and cache the group."""
    started = time.time()
    labels, features, statistics, chunk = [], [], [], []
    for label, image in items:
        labels.append(label)
        chunk.append(image)
        if len(chunk) == 8:
            encoded = encoder.encode(chunk)
            features.append(encoded[0])
            statistics.append(encoded[1])
            chunk = []
            if len(labels) % 200 == 0:
                print(f"{group}: {len(labels)} in {time.time() - started:.0f} s", flush=True)
    if chunk:
        encoded = encoder.encode(chunk)
        features.append(encoded[0])
        statistics.append(encoded[1])
    torch.save({"labels": labels, "features": torch.cat(features), "statistics": torch.cat(statistics), **(extra or {}),
                "seconds": time.time() - started}, CACHE / f"notion-{group}.pt")
    print(f"{group}: {len(labels)} images in {time.time() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", default="train-rows,train-checks,test")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    encoder = Encoder()
    train, test = load_raise_td(split="train"), load_raise_td(split="test")
    train_images = [load_image(p) for p in train.paths]
    groups = args.groups.split(",")
    if "train-rows" in groups:
        def train_rows():
            for i, image in enumerate(train_images):
                g = torch.Generator().manual_seed(1000 + i)
                yield {"kind": "presentation", "source": i}, degrade.random_presentation(image, g)
                yield {"kind": "gaming", "source": i}, degrade.random_gaming(image, g)
            photos = [i for i, p in enumerate(train.paths) if is_photograph(p)]
            g = torch.Generator().manual_seed(7)
            for family in FAMILIES:
                for _ in range(NEGATIVES):
                    source = photos[int(torch.randint(0, len(photos), (), generator=g))]
                    yield {"kind": "negative", "family": family, "source": source}, negative_image(family, train_images[source], g)

        original_statistics = torch.cat([scene_statistics(image) for image in train_images])
        save("train-rows", train_rows(), encoder, {"original_statistics": original_statistics})
    if "train-checks" in groups:
        def train_checks():
            g = torch.Generator().manual_seed(11)
            chosen = torch.randperm(len(train_images), generator=g)[:CHECK_IMAGES].tolist()
            photos = [i for i in torch.randperm(len(train_images), generator=g).tolist() if is_photograph(train.paths[i])]
            for i in chosen:
                for name, shown in {**presentations(train_images[i]), **edits(train_images[i], i)}.items():
                    yield {"kind": name, "source": i}, shown
            for i in photos[:PATH_PHOTOS]:
                for name, shown in paths(train_images[i], i).items():
                    yield {"kind": name, "source": i}, shown

        save("train-checks", train_checks(), encoder)
    if "test" in groups:
        test_images = [load_image(p) for p in test.paths]
        path_photos = [p for p in test.paths if is_photograph(p)][:TEST_PATH_PHOTOS]

        def test_items():
            for i, image in enumerate(test_images):
                yield {"kind": "original", "source": i}, image
                for name, shown in {**presentations(image), **edits(image, 5000 + i)}.items():
                    yield {"kind": name, "source": i}, shown
                if test.paths[i] in path_photos:
                    for name, shown in paths(image, 5000 + i).items():
                        yield {"kind": name, "source": i}, shown
            photos = [image for image, p in zip(test_images, test.paths) if is_photograph(p)]
            for family, shown in test_degenerates(photos):
                yield {"kind": "degenerate", "family": family, "source": -1}, shown

        save("test", test_items(), encoder)


if __name__ == "__main__":
    main()
