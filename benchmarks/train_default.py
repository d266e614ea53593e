"""Train the shipped default model (realness-core-lite) on RAISE-TD's training split.

    python benchmarks/train_default.py [--root ../shared/datasets/raise-td]

Writes src/realness/weights/realness-core-lite/{config.json,model.safetensors}, pins their
sha256 in src/realness/core/pretrained.py, and records the run (validation metrics, command,
hardware, date) in benchmarks/results/train_default.{json,md}. Only the training split is
read; model selection uses a validation split carved from it.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from recipe import lite_model_config, lite_training_config

from realness.core.pretrained import DEFAULT_MODEL
from realness.data import load_raise_td
from realness.hub import sha256_file
from realness.reporting import write_results
from realness.training import save_training_outputs, train_core

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "realness" / "weights" / DEFAULT_MODEL
PINS_FILE = REPO / "src" / "realness" / "core" / "pretrained.py"


def pin_bundled_weights() -> dict[str, str]:
    """Rewrite BUNDLED_MODELS in pretrained.py with the new files' sha256."""
    pins = {name: sha256_file(WEIGHTS_DIR / name) for name in ("config.json", "model.safetensors")}
    body = "".join(f'        "{name}": "{digest}",\n' for name, digest in pins.items())
    block = f'BUNDLED_MODELS: dict[str, dict[str, str]] = {{\n    "{DEFAULT_MODEL}": {{\n{body}    }},\n}}'
    source = PINS_FILE.read_text()
    source, count = re.subn(r"BUNDLED_MODELS: dict\[str, dict\[str, str\]\] = \{.*?\n\}", block, source, flags=re.S)
    if count != 1:
        source = source.replace("BUNDLED_MODELS: dict[str, dict[str, str]] = {}", block)
    PINS_FILE.write_text(source)
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="RAISE-TD root (default: $REALNESS_RAISE_TD or ../shared/datasets/raise-td)")
    args = parser.parse_args()

    train = load_raise_td(args.root, split="train")
    config = lite_training_config()
    started = time.time()
    run = train_core(lite_model_config(), train.paths, train.mos, train.descriptions, config=config)
    run.model.config.extra["trained_on"] = "RAISE-TD train split (510 images), RAISE non-commercial research terms"
    save_training_outputs(run, WEIGHTS_DIR, config=config)
    # History and curve stay with the benchmark results, not inside the package.
    results_dir = REPO / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (WEIGHTS_DIR / "training_history.json").replace(results_dir / "train_default_history.json")
    (WEIGHTS_DIR / "training_curve.png").replace(results_dir / "train_default_curve.png")
    pins = pin_bundled_weights()
    write_results(
        results_dir,
        "train_default",
        {
            "model": DEFAULT_MODEL,
            "seed": config.seed,
            "best_epoch": run.best_epoch,
            "validation_srocc": run.best_validation["val_srocc"],
            "validation_srocc_image_only": run.best_validation["val_srocc_image_only"],
            "train_images": len(run.train_indices),
            "validation_images": len(run.validation_indices),
            "minutes": round((time.time() - started) / 60, 2),
            "sha256": pins,
        },
        command="python benchmarks/train_default.py",
    )
    print(f"trained {DEFAULT_MODEL}: epoch {run.best_epoch}, validation {run.best_validation}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
