"""Train the shipped default model (realness-core-lite) exactly as a user would: `realness train --raise-td ROOT`.

    python benchmarks/train_default.py [--root ../shared/datasets/raise-td]

Runs the CLI with no recipe flag (the defaults are the shipped recipe, chosen by
benchmarks/recipe_cv.py), moves the model into src/realness/weights/realness-core-lite/, pins
its files' sha256 in the pin table (src/realness/hub.py), and records the run (minutes, command,
hardware, date) in benchmarks/results/train_default.{json,md}. Only the training split is read.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from realness.cli import main as realness_cli
from realness.core.pretrained import DEFAULT_MODEL
from realness.data.raise_td import raise_td_root
from realness.evaluation.reporting import write_results
from realness.hub import sha256_file

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "realness" / "weights" / DEFAULT_MODEL
PINS_FILE = REPO / "src" / "realness" / "hub.py"


def pin_bundled_weights() -> dict[str, str]:
    """Rewrite the bundled model's checksums in the pin table (realness.hub) with the new files' sha256."""
    pins = {name: sha256_file(WEIGHTS_DIR / name) for name in ("config.json", "model.safetensors")}
    source = PINS_FILE.read_text()
    entry = re.compile(rf'(repo_id="{re.escape(DEFAULT_MODEL)}",\n\s*revision=PACKAGED,\n\s*sha256=\{{)(.*?)(\n\s*\}})', re.S)
    body = "".join(f'\n            "{name}": "{digest}",' for name, digest in pins.items())
    source, count = entry.subn(lambda match: match.group(1) + body + match.group(3), source)
    if count != 1:
        raise SystemExit(f"{PINS_FILE}: found {count} pin entries for {DEFAULT_MODEL}, expected one")
    PINS_FILE.write_text(source)
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="RAISE-TD root (default: $REALNESS_RAISE_TD or ../shared/datasets/raise-td)")
    args = parser.parse_args()

    root = str(raise_td_root(args.root))
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
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
            "recipe": "realness train defaults (kernel ridge head, mirror + 4 degradation families)",
            "minutes": round(minutes, 2),
            "weights_megabytes": round((WEIGHTS_DIR / "model.safetensors").stat().st_size / 2**20, 2),
            "sha256": pins,
        },
        command=f"python benchmarks/train_default.py  (runs: realness train --raise-td {root} --out DIR)",
    )
    print(f"trained {DEFAULT_MODEL} in {minutes:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
