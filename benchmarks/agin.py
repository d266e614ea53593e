"""AGIN benchmark: the 5-fold protocol (seeded folds; each fold trains on the rest).

    python benchmarks/agin.py --root /path/to/AGIN [--aspect naturalness] [--descriptions CSV]

AGIN (Chen et al., naturalness of AI-generated images) is not redistributed: download it
from its authors and pass its folder (see ``realness.data.load_agin`` for the layout read).
AGIN has no descriptions; pass ``--descriptions`` (a CSV with filename,description, e.g.
written by ``realness describe``) for image + text, else the models train image-only.
For each fold, CORE trains with the shipped recipe on the other four (selection on a
validation split carved from them) and is scored on the held-out fold. Writes
benchmarks/results/agin_<aspect>.{json,md} with per-fold and mean +- std SROCC / PLCC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from recipe import lite_model_config, lite_training_config

from realness.core import CoreConfig, CoreModel
from realness.data import kfold, load_agin
from realness.reporting import write_results
from realness.stats import evaluate
from realness.training import TrainingConfig, encode_frozen_features, train_core

RESULTS = Path(__file__).resolve().parent / "results"


def run_agin(
    paths: list,
    mos: np.ndarray,
    descriptions: list[Optional[str]],
    model_config: CoreConfig,
    training: TrainingConfig,
    *,
    folds: int = 5,
    progress: bool = True,
) -> dict:
    """k-fold cross-validation of CORE on rated images; returns per-fold rows and the mean."""
    base = CoreModel(model_config).to(training.device)
    mos = np.asarray(mos, dtype=np.float32)
    views = encode_frozen_features(base, paths, descriptions, config=training, progress=progress)
    rows = []
    for fold, (train_idx, test_idx) in enumerate(kfold(len(paths), k=folds, seed=training.seed)):
        train_idx, test_idx = [int(i) for i in train_idx], [int(i) for i in test_idx]
        fold_features = type(views)(views.image[:, train_idx], views.text[train_idx], views.empty_text)
        run = train_core(
            model_config, [paths[i] for i in train_idx], mos[train_idx],
            [descriptions[i] for i in train_idx], config=training, encoders_from=base,
            features=fold_features, progress=progress,
        )
        with torch.inference_mode():
            prediction = run.model.head(views.image[0, test_idx], views.text[test_idx]).numpy()
        metrics = evaluate(prediction, mos[test_idx], bootstrap=0)
        rows.append({"fold": fold, "n_test": len(test_idx), "srocc": round(metrics["srocc"], 4), "plcc": round(metrics["plcc"], 4)})
    per_fold = list(rows)
    for key in ("srocc", "plcc"):
        values = np.array([row[key] for row in per_fold])
        rows.append({"fold": f"mean +- std ({key})", "n_test": len(paths), key: f"{values.mean():.4f} +- {values.std():.4f}"})
    return {"columns": ["fold", "n_test", "srocc", "plcc"], "rows": rows}


def _descriptions(data, csv_path: Optional[str]) -> list[Optional[str]]:
    if csv_path is None:
        return list(data.descriptions)
    from realness.cli.common import read_descriptions_csv

    table = read_descriptions_csv(csv_path)
    return [table.get(Path(p).name) for p in data.paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the unpacked AGIN folder")
    parser.add_argument("--aspect", default="naturalness", choices=("naturalness", "technical", "rationality"))
    parser.add_argument("--descriptions", default=None, help="CSV with filename,description (optional)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    data = load_agin(args.root, aspect=args.aspect)
    modalities = "both" if args.descriptions else "image"
    training = lite_training_config(description_dropout=0.3 if args.descriptions else 0.0)
    training.device = args.device
    results = run_agin(data.paths, data.mos, _descriptions(data, args.descriptions), lite_model_config(modalities), training, folds=args.folds)
    results["aspect"], results["modalities"], results["images"] = args.aspect, modalities, len(data)
    write_results(RESULTS, f"agin_{args.aspect}", results, command=" ".join(["python", "benchmarks/agin.py", *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
