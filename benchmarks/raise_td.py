"""RAISE-TD benchmark: the bundled model on the official 90-image test split, beside the paper's rows.

    python benchmarks/raise_td.py [--root ../shared/datasets/raise-td] [--model realness-core-lite]

Scores the test images through the public RealnessScorer, with their GPT-4.1 descriptions and
image-only, and reports SROCC (with a bootstrap 95 % interval), KRCC, PLCC (raw and after the
usual 4-parameter logistic fit) and RMSE. The model was chosen by 5-fold cross-validation on the
training split (benchmarks/recipe_cv.py); this script is the only one that reads the test split.

Writes benchmarks/results/raise_td_lite.{json,md} and scatter plots (prediction vs MOS).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from reporting import scatter_plot, write_results

from realness.core import RealnessScorer
from realness.core.pretrained import DEFAULT_MODEL
from realness.data import load_raise_td
from realness.evaluation.stats import evaluate

RESULTS = Path(__file__).resolve().parent / "results"

PAPER_ROWS = [
    {"method": "REALM CORE, ResNet-50 + BERT-base (paper)", "srocc": 0.7778, "plcc": 0.7976},
    {"method": "REALM image only (paper)", "srocc": 0.6970, "plcc": 0.7874},
    {"method": "REALM text only (paper)", "srocc": 0.6656, "plcc": 0.6301},
    {"method": "RAISE CNN baseline (paper)", "srocc": 0.6798, "plcc": 0.7421},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--name", default="raise_td_lite", help="results file stem")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    started = time.time()
    test = load_raise_td(args.root, split="test")
    scorer = RealnessScorer.from_pretrained(args.model, device=args.device)
    label = "bundled " + args.model if args.model == DEFAULT_MODEL else args.model
    rows = []
    variants = (("bundled", "with descriptions", test.descriptions), ("bundled_no_text", "image only", None))
    for slug, name, descriptions in variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # image-only is what this row measures
            result = scorer(test.paths, descriptions, progress=False)
        scores, (low, high) = result.scores.numpy(), result.interval.numpy().T
        mos = np.asarray(test.mos)
        # The share of test images whose MOS lies in the 90 % interval (calibrated on train only).
        interval = {"coverage_90": round(float(np.mean((low <= mos) & (mos <= high))), 4),
                    "width_90": round(float(np.mean(high - low)), 4)}
        rows.append({"method": f"{label}, {name}", **_row(evaluate(scores, test.mos)), **interval})
        scatter_plot(scores, test.mos, RESULTS / f"{args.name}_{slug}.png", title=f"RAISE-TD test: {label}, {name}")
    text_scores = text_only_scores(args.root, test.descriptions)
    rows.append({"method": "text only: frozen all-MiniLM-L6-v2 + verdict, ridge fit on train", **_row(evaluate(text_scores, test.mos))})
    write_results(
        RESULTS,
        args.name,
        {
            "split": "official RAISE-TD split: test 90 (the model never saw it; recipe chosen by CV on train 510)",
            "columns": ["method", "srocc", "srocc_ci", "krcc", "plcc", "plcc_fitted", "rmse", "coverage_90", "width_90"],
            "rows": rows + PAPER_ROWS,
            "minutes": round((time.time() - started) / 60, 2),
        },
        command=" ".join(["python", "benchmarks/raise_td.py", *sys.argv[1:]]),
    )
    for row in rows:
        print(f"{row['method']}: SROCC {row['srocc']} {row['srocc_ci']}  PLCC {row['plcc']}", file=sys.stderr)
    return 0


def text_only_scores(root, test_descriptions):
    """The text-only row (the paper's Table 2 has one): ridge regression, fit on the training split,
    over the bundled text encoder's features and the verdict; 5-fold CV on train chose it over a fine-tuned
    text encoder's last layer (CHANGELOG, 2026-12-04)."""
    import numpy as np
    import torch
    from sklearn.linear_model import RidgeCV

    from realness.core import CoreConfig, CoreModel

    model = CoreModel(CoreConfig.lite())
    train = load_raise_td(root, split="train")
    with torch.inference_mode():
        features = [model.encode_texts([d or "" for d in split]).double().numpy() for split in (train.descriptions, test_descriptions)]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(features[0], np.asarray(train.mos))
    return ridge.predict(features[1])


def _row(metrics: dict) -> dict:
    low, high = metrics["srocc_ci"]
    return {
        "srocc": round(metrics["srocc"], 4),
        "srocc_ci": f"[{low:.3f}, {high:.3f}]",
        "krcc": round(metrics["krcc"], 4),
        "plcc": round(metrics["plcc"], 4),
        "plcc_fitted": round(metrics["plcc_fitted"], 4),
        "rmse": round(metrics["rmse"], 4),
    }


if __name__ == "__main__":
    sys.exit(main())
