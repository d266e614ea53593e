"""Which difficulty signal should set each interval's width (issue 35), by cross-validation on RAISE-TD train.

Out-of-fold residuals of the shipped recipe's kernel head (5 folds of the 510 training images, image
and mirror and degraded rows, no negatives) are the ground truth. For each candidate width signal
``sigma(x)``, computed for every image from the *other* folds' images only, a split-conformal interval
``score +- q * sigma(x)`` is calibrated on the other folds (q: the 90 % quantile of ``|e| / sigma``) and
judged on the fold: coverage, mean width, and the Spearman correlation of width with absolute error
(with a bootstrap 95 % interval over images).

Signals: ``constant`` (today's width); ``local_error`` (kernel-weighted mean of the other images'
absolute residuals, i.e. locally weighted conformal); ``extremeness`` (|score - mean score|);
``sparsity`` (1 / the kernel density of the training rows).

    python benchmarks/interval_width_cv.py
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from core_features import features_from_head  # noqa: E402

import realness  # noqa: E402
from realness.core.head import KernelRidgeHead  # noqa: E402
from realness.data.splits import kfold  # noqa: E402
from realness.evaluation.stats import srocc  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def fit(features, mos, idx):
    rows = [features.image[0][idx], features.image[1][idx]] + [block[idx] for block in features.degraded]
    targets = [mos[idx]] * 2 + [mos[idx] - 0.5] * len(features.degraded)
    weights = [torch.ones(len(idx))] * 2 + [torch.full((len(idx),), 0.3)] * len(features.degraded)
    text = features.text[idx].repeat(len(rows), 1)
    x = torch.cat(rows)
    head = KernelRidgeHead(x.shape[1], text.shape[1], len(x))
    head.fit(x, text, torch.cat(targets), torch.cat(weights), statistics_from=features.image[0][idx], alpha=1.0, gamma_scale=0.25, text_weight=0.5)
    return head


def width_signals(error: torch.Tensor, predicted: torch.Tensor, kernel_rows: torch.Tensor) -> dict:
    """Candidate ``sigma(images, from_images)``: each image's expected error, from other images only."""

    def local_error(i, others):
        weights = kernel_rows[i][:, others]
        return ((weights * error[others]).sum(1) + 1e-3 * error[others].mean()) / (weights.sum(1) + 1e-3)

    def extremeness(i, others):
        return (predicted[i] - predicted[others].mean()).abs() + 0.1

    return {
        "constant": lambda i, others: torch.ones(len(i)),
        "local_error": local_error,
        "extremeness": extremeness,
        "sparsity": lambda i, others: 1.0 / (kernel_rows[i][:, others].sum(1) + 1e-3),
        "local_error_x_extremeness": lambda i, others: local_error(i, others) * extremeness(i, others),
    }


def main() -> None:
    model = realness.RealnessScorer.from_pretrained().model
    features, data = features_from_head(model)
    mos = torch.as_tensor(np.asarray(data.mos, dtype=np.float32))
    n = len(mos)
    folds = list(kfold(n, 5, seed=0))
    predicted = {"with_text": torch.zeros(n), "image_only": torch.zeros(n)}
    kernel_rows = torch.zeros(n, n)  # image-kernel similarity of each image to every other (standardized by its fold head)
    for train_idx, held_idx in folds:
        head = fit(features, mos, list(train_idx))
        held = torch.as_tensor(list(held_idx))
        for mode, text, flag in (("with_text", features.text[held], True), ("image_only", features.empty_text.expand(len(held), -1), False)):
            raw, _, _, _ = head.regress(features.image[0][held], text, torch.full((len(held),), flag))
            predicted[mode][held] = raw
        image = (features.image[0].float() - head.image_mean) / head.image_std
        kernel_rows[held] = torch.exp(-head.gamma_image_only * torch.cdist(image[held], image).square())
    results = {}
    for mode in predicted:
        error = (predicted[mode] - mos).abs()
        signals = width_signals(error, predicted[mode], kernel_rows)
        for name, signal in signals.items():
            coverage, width, rho = [], [], []
            all_width, all_error = torch.zeros(n), torch.zeros(n)
            for train_idx, held_idx in folds:
                held, others = torch.as_tensor(list(held_idx)), torch.as_tensor(list(train_idx))
                # sigma of the calibration images from their own other folds, as the head would store it
                calibration = torch.zeros(len(others))
                position = {int(v): k for k, v in enumerate(others)}
                for _, inner_held in folds:
                    inner = [int(i) for i in inner_held if int(i) in position]
                    if inner:
                        rest = torch.as_tensor([int(i) for i in others if int(i) not in set(inner)])
                        calibration[[position[i] for i in inner]] = signal(torch.as_tensor(inner), rest)
                q = torch.quantile(error[others] / calibration, 0.9)
                sigma = signal(held, others)
                half = q * sigma
                coverage.append(float((error[held] <= half).float().mean()))
                width.append(float(2 * half.mean()))
                rho.append(float(srocc(half.numpy(), error[held].numpy())) if name != "constant" else 0.0)
                all_width[held], all_error[held] = half, error[held]
            generator = np.random.default_rng(0)
            boots = []
            if name != "constant":
                for _ in range(500):
                    pick = generator.integers(0, n, n)
                    boots.append(float(srocc(all_width.numpy()[pick], all_error.numpy()[pick])))
            results[f"{mode}/{name}"] = {
                "coverage": f"{np.mean(coverage):.3f} ± {np.std(coverage):.3f}",
                "mean width": f"{np.mean(width):.3f}",
                "spearman(width, |error|) per fold": f"{np.mean(rho):+.3f} ± {np.std(rho):.3f}",
                "spearman pooled, 95 % bootstrap": (f"{srocc(all_width.numpy(), all_error.numpy()):+.3f} "
                                                     f"[{np.percentile(boots, 2.5):+.3f}, {np.percentile(boots, 97.5):+.3f}]") if boots else "",
            }
            print(mode, name, results[f"{mode}/{name}"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "interval_width_cv.json").write_text(json.dumps({
        "command": "python benchmarks/interval_width_cv.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hardware": f"{platform.machine()} 2-core CPU VM, torch {torch.__version__}", "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
