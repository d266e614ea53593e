"""AGIN benchmark: the 5-fold protocol (seeded folds; each fold trains on the rest).

    python benchmarks/agin.py --root /path/to/AGIN [--aspect naturalness] [--descriptions CSV]

AGIN (Chen et al., naturalness of AI-generated images) is not redistributed: download it
from its authors and pass its folder (see ``realness.data.load_agin`` for the layout read).
AGIN has no descriptions; pass ``--descriptions`` (a CSV with filename,description, e.g.
written by ``realness describe``) for image + text, else the models train image-only.
For each fold, CORE trains with the shipped recipe on the other four (nothing else held
out) and is scored on the held-out fold. Writes
benchmarks/results/agin_<aspect>.{json,md} with per-fold and mean +- std SROCC / PLCC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from reporting import write_results

from realness.core import CoreConfig
from realness.data import load_agin
from realness.io.description_table import read_descriptions
from realness.training.cross_validation import cross_validate
from realness.training.trainer import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results"


def run_agin(
    paths: list,
    mos: np.ndarray,
    descriptions: list[str | None],
    model_config: CoreConfig,
    training: TrainingConfig,
    *,
    folds: int = 5,
    progress: bool = True,
) -> dict:
    """k-fold cross-validation of CORE on rated images (:func:`realness.training.trainer.cross_validate`); per-fold rows and the mean."""
    result = cross_validate(model_config, paths, mos, descriptions, folds=folds, config=training, progress=progress)
    rows = [{"fold": fold, "srocc": round(m["srocc"], 4), "plcc": round(m["plcc"], 4)} for fold, m in enumerate(result.folds)]
    for key in ("srocc", "plcc"):
        rows.append({"fold": f"mean +- std ({key})", key: f"{result.mean(key):.4f} +- {result.std(key):.4f}"})
    return {"columns": ["fold", "srocc", "plcc"], "rows": rows}


def _descriptions(data, csv_path: str | None) -> list[str | None]:
    if csv_path is None:
        return list(data.descriptions)
    # Rows keyed by path (or a file name that only one image has), like every --descriptions table.
    return read_descriptions(csv_path).match(data.paths).texts


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
    model_config = CoreConfig.lite()
    model_config.modalities = modalities
    training = TrainingConfig(device=args.device)  # the shipped recipe
    results = run_agin(data.paths, data.mos, _descriptions(data, args.descriptions), model_config, training, folds=args.folds)
    results["aspect"], results["modalities"], results["images"] = args.aspect, modalities, len(data)
    write_results(RESULTS, f"agin_{args.aspect}", results, command=" ".join(["python", "benchmarks/agin.py", *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
