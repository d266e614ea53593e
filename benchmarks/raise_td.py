"""RAISE-TD benchmark: the paper's Table 1 (CORE) and Table 2 (modality ablation) rows.

    python benchmarks/raise_td.py [--root ../shared/datasets/raise-td] [--config lite]

Trains each variant on the official training split (model selection on a validation split
carved from it, exactly as train_default.py), then evaluates once on the 90-image test split:

* CORE image + text (no description dropout),
* image only and text only (the Table 2 ablation),
* the shipped recipe (image + text with 30% description dropout), scored with and without
  descriptions,
* and the bundled model itself through the public RealnessScorer (the regression guard's
  reference values), when --config is lite.

Writes benchmarks/results/raise_td_<config>.{json,md} and scatter plots (prediction vs MOS).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from recipe import lite_model_config, lite_training_config

from realness.core import CoreConfig, CoreModel, RealnessScorer
from realness.core.pretrained import DEFAULT_MODEL
from realness.data import load_raise_td
from realness.reporting import scatter_plot, write_results
from realness.stats import evaluate
from realness.training import encode_frozen_features, train_core

RESULTS = Path(__file__).resolve().parent / "results"

PAPER_ROWS = [
    {"method": "REALM CORE, ResNet-50 + BERT-base (paper)", "srocc": 0.7778, "plcc": 0.7976},
    {"method": "REALM image only (paper)", "srocc": 0.6970, "plcc": 0.7874},
    {"method": "REALM text only (paper)", "srocc": 0.6656, "plcc": 0.6301},
    {"method": "RAISE CNN baseline (paper)", "srocc": 0.6798, "plcc": 0.7421},
]


@torch.inference_mode()
def predict(model: CoreModel, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    return model.head(image_features, text_features)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None)
    parser.add_argument("--config", default="lite", choices=("lite", "paper"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    started = time.time()
    train = load_raise_td(args.root, split="train")
    test = load_raise_td(args.root, split="test")
    training = lite_training_config()
    training.device = args.device
    base = CoreModel(CoreConfig.preset(args.config)).to(args.device)
    train_features = encode_frozen_features(base, train.paths, train.descriptions, config=training)
    test_config = lite_training_config()
    test_config.augmented_views, test_config.device = 1, args.device
    test_features = encode_frozen_features(base, test.paths, test.descriptions, config=test_config)
    test_image = test_features.image[0]
    empty = test_features.empty_text.expand(len(test), -1)

    variants = [  # (label, plot file slug, modalities, description dropout, test text features)
        ("CORE image + text", "core", "both", 0.0, test_features.text),
        ("image only", "image_only", "image", 0.0, empty),
        ("text only", "text_only", "text", 0.0, test_features.text),
        ("image + text, 30% description dropout (shipped recipe)", "shipped_recipe", "both", 0.3, test_features.text),
        ("same model, scored without descriptions", "shipped_recipe_no_text", None, None, empty),
    ]
    rows, plots, model = [], [], None
    for name, slug, modalities, dropout, texts in variants:
        if modalities is not None:
            config = lite_model_config(modalities) if args.config == "lite" else CoreConfig.preset(args.config)
            config.modalities = modalities
            training = lite_training_config(description_dropout=dropout)
            training.device = args.device
            run = train_core(config, train.paths, train.mos, train.descriptions,
                             config=training, encoders_from=base, features=train_features)
            model = run.model
        prediction = predict(model, test_image, texts).numpy()
        metrics = evaluate(prediction, test.mos)
        rows.append({"method": f"{args.config}: {name}", **_row(metrics), "best_epoch": model.config.extra["best_epoch"]})
        plots.append((slug, name, prediction))

    if args.config == "lite":
        scorer = RealnessScorer.from_pretrained(DEFAULT_MODEL, device=args.device)
        for slug, name, descriptions in (("bundled", "with descriptions", test.descriptions), ("bundled_no_text", "image only", None)):
            result = scorer(test.paths, descriptions)
            metrics = evaluate(result.scores.numpy(), test.mos)
            rows.append({"method": f"bundled {DEFAULT_MODEL}, {name}", **_row(metrics)})
            plots.append((slug, f"bundled model, {name}", result.scores.numpy()))

    for slug, name, prediction in plots:
        scatter_plot(prediction, test.mos, RESULTS / f"raise_td_{args.config}_{slug}.png", title=f"RAISE-TD test: {name}")
    write_results(
        RESULTS,
        f"raise_td_{args.config}",
        {
            "split": "official RAISE-TD split: train 510 (validation carved from it), test 90",
            "columns": ["method", "srocc", "srocc_ci", "krcc", "plcc", "plcc_fitted", "rmse", "best_epoch"],
            "rows": rows + PAPER_ROWS,
            "minutes": round((time.time() - started) / 60, 2),
        },
        command=" ".join(["python", "benchmarks/raise_td.py", *sys.argv[1:]]),
    )
    return 0


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
