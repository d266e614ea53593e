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
    parser.add_argument("--notion-cache", action="store_true",
                        help="refit on the 0.2 head's rows and the cached rows of benchmarks/score_notion_features.py "
                        "(how 0.3's head was first fitted, before any head stored the new recipe's rows)")
    args = parser.parse_args()

    root = str(raise_td_root(args.root))
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if args.notion_cache or args.reuse_features:
            status = refit_on_stored_rows(root, tmp, notion_cache=args.notion_cache)
        else:
            status = realness_cli(["train", "--raise-td", root, "--out", tmp])
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
            "recipe": "realness train defaults (kernel ridge head over image features and scene statistics; mirror, "
                      "6 degradation families incl. gaming edits and presentation copies; 6 negative families)",
            "minutes": round(minutes, 2),
            "weights_megabytes": round((WEIGHTS_DIR / "model.safetensors").stat().st_size / 2**20, 2),
            "sha256": pins,
        },
        command=("python benchmarks/train_default.py --notion-cache  (realness train's defaults, fitted on the 0.2 head's "
                 "rows and the cached rows of score_notion_features.py)" if args.notion_cache else
                 "python benchmarks/train_default.py --reuse-features  (realness train's defaults, fitted on the rows "
                 "the previous bundled head stores)" if args.reuse_features else
                 f"python benchmarks/train_default.py  (runs: realness train --raise-td {root} --out DIR)"),
    )
    print(f"trained {DEFAULT_MODEL} in {minutes:.1f} min", file=sys.stderr)
    return 0


def refit_on_stored_rows(root: str, out: str, *, notion_cache: bool = False) -> int:
    """``realness train``'s defaults fitted on the training features the bundled head stores (its image, mirror and
    degraded rows, and its negatives), with the images' scene statistics computed again; the model into ``out``."""
    sys.path.insert(0, str(Path(__file__).parent))
    from core_features import features_from_head

    from realness.core import CoreConfig, CoreModel
    from realness.training.trainer import TrainingConfig, save_training_outputs, train_core

    if notion_cache:
        from score_notion_data import notion_training_features

        features, data, _ = notion_training_features()
    else:
        features, data = features_from_head(CoreModel.from_pretrained(DEFAULT_MODEL), root)
    config = TrainingConfig()
    run = train_core(CoreConfig.lite(), data.paths, data.mos, list(data.descriptions), config=config,
                     features=features, progress=False)
    save_training_outputs(run, out, config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
