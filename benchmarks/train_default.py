"""Train the shipped default model (realness-core-lite) exactly as a user would: `realness train --raise-td ROOT`.

    python benchmarks/train_default.py [--root ../shared/datasets/raise-td]

Runs the CLI with no recipe flag (the defaults are the shipped recipe, chosen by
benchmarks/recipe_cv.py), moves the model into src/realness/weights/realness-core-lite/, pins
its files' sha256 in the pin table (src/realness/weights/pins.json), and records the run (minutes, command,
hardware, date) in benchmarks/results/train_default.{json,md}. Only the training split is read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reporting import write_results

from realness.cli import main as realness_cli
from realness.core.pretrained import DEFAULT_MODEL
from realness.data.raise_td import raise_td_root
from realness.hub import PINS_FILE, sha256_file

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "realness" / "weights" / DEFAULT_MODEL
def pin_bundled_weights() -> dict[str, str]:
    """Write the bundled model's new checksums into the pin table (``realness/weights/pins.json``)."""
    pins = {name: sha256_file(WEIGHTS_DIR / name) for name in ("config.json", "model.safetensors")}
    table = json.loads(PINS_FILE.read_text())
    [entry] = [entry for entry in table if entry["repo_id"] == DEFAULT_MODEL]
    entry["sha256"] = pins
    PINS_FILE.write_text(json.dumps(table, indent=2) + "\n")
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="RAISE-TD root (default: $REALNESS_RAISE_TD or ../shared/datasets/raise-td)")
    parser.add_argument("--reuse-features", action="store_true",
                        help="refit the head on the training rows the bundled head stores (the encoder outputs realness "
                        "train computes, float16) instead of encoding the images again: seconds instead of minutes")
    args = parser.parse_args()

    root = str(raise_td_root(args.root))
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        status = refit_on_stored_rows(root, tmp) if args.reuse_features else realness_cli(["train", "--raise-td", root, "--out", tmp])
        if status != 0:
            return status
        minutes = (time.time() - started) / 60
        results_dir = REPO / "benchmarks" / "results"
        # History and curve stay with the benchmark results, not inside the package.
        shutil.copy(Path(tmp) / "training_history.json", results_dir / "train_default_history.json")
        shutil.copy(Path(tmp) / "training_curve.png", results_dir / "train_default_curve.png")
        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(tmp) / name, WEIGHTS_DIR / name)  # package-data permissions, not the temp file's
    pins = pin_bundled_weights()
    write_results(
        results_dir,
        "train_default",
        {
            "model": DEFAULT_MODEL,
            "recipe": "realness train defaults (kernel ridge head, mirror + 4 degradation families)",
            "minutes": round(minutes, 2),
            "weights_megabytes": round((WEIGHTS_DIR / "model.safetensors").stat().st_size / 2**20, 2),
            "sha256": pins,
        },
        command=("python benchmarks/train_default.py --reuse-features  (realness train's defaults, fitted on the rows "
                 "the previous bundled head stores)" if args.reuse_features else
                 f"python benchmarks/train_default.py  (runs: realness train --raise-td {root} --out DIR)"),
    )
    print(f"trained {DEFAULT_MODEL} in {minutes:.1f} min", file=sys.stderr)
    return 0


def refit_on_stored_rows(root: str, out: str) -> int:
    """``realness train``'s defaults fitted on the training features the bundled head stores (the negatives
    encoded again, as ``realness train`` makes them); the model into ``out``."""
    import dataclasses

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from core_features import features_from_head

    from realness.core import CoreConfig, CoreModel
    from realness.training.trainer import TrainingConfig, _encode_negatives, save_training_outputs, train_core

    bundled = CoreModel.from_pretrained(DEFAULT_MODEL)
    features, data = features_from_head(bundled, root)
    config = TrainingConfig()
    with torch.inference_mode():
        negatives, sources = _encode_negatives(bundled.image_encoder, data.paths, config, torch.device("cpu"), True)
    features = dataclasses.replace(features, negatives=negatives, negative_sources=sources)
    run = train_core(CoreConfig.lite(), data.paths, data.mos, list(data.descriptions), config=config,
                     encoders_from=bundled, features=features, progress=False)
    save_training_outputs(run, out, config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
