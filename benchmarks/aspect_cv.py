"""Which aspect policy scores non-4:3 images best: squash, pad, a centre crop or two crops averaged.

RAISE-TD's images are all 512x384 (4:3), where every policy gives the same pixels, so the
policies are compared on shapes the data set lacks: each training image cut to a square
(384x384, the centre) and to 16:9 (288x512), with the image's own MOS as the target. A
5-fold CV on the training split only: the kernel ridge head of the shipped recipe (image and
mirror, text weight 0.5, verdict input) is fitted on the train folds' native images and
scores the held-out folds' cut images under each policy, image-only and with descriptions.

    python benchmarks/aspect_cv.py     # encodes once into --cache (about 8 min on 2 cores), then seconds

Writes benchmarks/results/aspect_cv.{json,md}. The test split is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from recipe_cv import level_columns, load_features, stage_widths, text_features  # noqa: E402
from reporting import write_results  # noqa: E402

from realness.core.config import LITE_MEAN, LITE_STD, ImageEncoderConfig  # noqa: E402
from realness.core.encoders import build_image_encoder  # noqa: E402
from realness.data.raise_td import load_raise_td  # noqa: E402
from realness.data.splits import kfold  # noqa: E402
from realness.evaluation.stats import srocc  # noqa: E402
from realness.io.inputs import load_image  # noqa: E402
from realness.io.pixels import normalize, resize_image  # noqa: E402
from realness.text.verdict import verdict_features  # noqa: E402

INPUT = (384, 512)
SHAPES = {"square": lambda x: x[:, :, 64:448], "16:9": lambda x: x[:, 48:336, :]}


def _cover(x: torch.Tensor) -> torch.Tensor:
    """Scaled, aspect kept, to cover the input: the source of the crop policies."""
    height, width = x.shape[-2:]
    scale = max(INPUT[0] / height, INPUT[1] / width)
    return resize_image(x, (max(INPUT[0], round(height * scale)), max(INPUT[1], round(width * scale))))


def _crops(x: torch.Tensor, count: int) -> list[torch.Tensor]:
    """``count`` input-sized crops evenly spaced along the covering image's longer side (1: the centre)."""
    y = _cover(x)
    spare_h, spare_w = y.shape[1] - INPUT[0], y.shape[2] - INPUT[1]
    steps = [0.5] if count == 1 else [k / (count - 1) for k in range(count)]
    return [y[:, round(spare_h * t) : round(spare_h * t) + INPUT[0], round(spare_w * t) : round(spare_w * t) + INPUT[1]]
            for t in steps]


POLICIES = {
    "squash": lambda x: [resize_image(x, INPUT, resize="squash")],
    "pad": lambda x: [resize_image(x, INPUT, resize="pad")],
    "center_crop": lambda x: _crops(x, 1),
    "crops2": lambda x: _crops(x, 2),  # features of the two crops averaged
}


def encode_shapes(root: str, cache: Path) -> dict[str, dict[str, torch.Tensor]]:
    config = ImageEncoderConfig(family="efficientnet_lite", name="efficientnet-lite0", input_size=INPUT,
                                mean=LITE_MEAN, std=LITE_STD, feature_levels=(0, 1, 2, 3, 4, 5, 6))
    encoder, data, features = None, load_raise_td(root, "train"), {}
    for shape, cut in SHAPES.items():
        path = cache / "aspect" / f"{shape.replace(':', 'x')}.pt"
        if not path.exists():
            encoder = encoder or build_image_encoder(config).eval()
            rows = {policy: [] for policy in POLICIES}
            for sample in data:
                shown = cut(load_image(str(sample.image_path)))
                for policy, views in POLICIES.items():
                    pixels = torch.stack([normalize(view, LITE_MEAN, LITE_STD) for view in views(shown)])
                    with torch.inference_mode():
                        rows[policy].append(encoder(pixels).mean(0))
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({policy: torch.stack(r) for policy, r in rows.items()}, path)
        features[shape] = torch.load(path, weights_only=True)
    return features


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="../shared/datasets/raise-td")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "realness-research"))
    args = parser.parse_args()
    cache = Path(args.cache)
    data = load_raise_td(args.root, "train")
    mos = np.asarray(data.mos, dtype=np.float64)
    texts = [d or "" for d in data.descriptions]
    text = torch.cat([text_features(texts, cache, "minilm")[0], verdict_features(texts)], 1).double().numpy()
    columns = level_columns(stage_widths("efficientnet-lite0"), (0, 1, 2))
    native = {v: f[:, columns].double().numpy() for v, f in load_features(cache, "efficientnet-lite0", ["clean", "flip"]).items()}
    shaped = {s: {p: f[:, columns].double().numpy() for p, f in d.items()} for s, d in encode_shapes(args.root, cache).items()}
    # The shipped head's kernel, in units of the image block's mean squared distance per dimension.
    gamma, text_weight, alpha = 0.5 * len(columns) / (len(columns) + text.shape[1]), 0.5, 1.0
    per_fold: dict[str, list[float]] = {}
    for train_idx, held_idx in kfold(len(mos), 5, seed=0):
        train_idx, held_idx = np.asarray(train_idx), np.asarray(held_idx)
        mean, std = native["clean"][train_idx].mean(0), native["clean"][train_idx].std(0).clip(1e-4)
        support = np.concatenate([(native[v][train_idx] - mean) / std for v in ("clean", "flip")])
        support_text, y = np.concatenate([text[train_idx]] * 2), np.concatenate([mos[train_idx]] * 2)
        for with_text in (False, True):
            def kernel(a, t, support=support, support_text=support_text, with_text=with_text):
                distance = _squared_distances(a, support) / len(columns)
                if with_text:
                    distance = distance + text_weight * _squared_distances(t, support_text)
                return np.exp(-gamma * distance)
            coef = np.linalg.solve(kernel(support, support_text) + alpha * np.eye(len(y)), y - y.mean())
            tests = {"4:3 (native)": {"-": native["clean"]}, **shaped}
            for shape, policies in tests.items():
                for policy, features in policies.items():
                    predicted = kernel((features[held_idx] - mean) / std, text[held_idx]) @ coef + y.mean()
                    key = f"{shape}|{policy}|{'with descriptions' if with_text else 'image only'}"
                    per_fold.setdefault(key, []).append(float(srocc(predicted, mos[held_idx])))
    rows = []
    for key, values in per_fold.items():
        shape, policy, inputs = key.split("|")
        rows.append({"shape": shape, "policy": policy, "inputs": inputs,
                     "srocc": f"{np.mean(values):.3f} ± {np.std(values):.3f}", "srocc_mean": float(np.mean(values))})
    write_results(Path(__file__).parent / "results", "aspect_cv", {"rows": rows, "folds": 5},
                  command="python benchmarks/aspect_cv.py", hardware="2-core CPU VM, no GPU")
    for row in rows:
        print(row["shape"], row["policy"], row["inputs"], row["srocc"])


if __name__ == "__main__":
    main()
