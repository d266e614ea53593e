"""Does destroying an image lower its score? The 90 RAISE-TD test images, through the public scorer.

For each degradation in ``realness.training.degrade.DEGRADATIONS`` (blur sigma 2 and 4, Gaussian noise
sigma 15 and 30, JPEG quality 20 and 10, downscale-upscale x2 and x4), the share of test images
whose degraded copy scores below the original, with their GPT-4.1 descriptions (the same
description for both: it describes the content, which the degradation does not change) and
image-only. A metric a generator can raise by blurring cannot sit in an eval loop; the target
is at least 90 % for every row.

    python benchmarks/degradation.py [--model realness-core-lite] [--root ../shared/datasets/raise-td]

Writes benchmarks/results/degradation.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from reporting import write_results

from realness.core import RealnessScorer
from realness.core.pretrained import DEFAULT_MODEL
from realness.data import load_raise_td
from realness.io.inputs import load_image
from realness.training.degrade import DEGRADATIONS

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--root", default=None)
    parser.add_argument("--name", default="degradation", help="results file stem")
    args = parser.parse_args()
    started = time.time()
    test = load_raise_td(args.root, split="test")
    scorer = RealnessScorer.from_pretrained(args.model, device="cpu")
    originals = [load_image(path) for path in test.paths]
    texts = list(test.descriptions)
    generator = torch.Generator().manual_seed(0)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # image-only scoring is what is measured here
        base = {
            True: scorer(originals, texts, progress=False).scores.numpy(),
            False: scorer(originals, progress=False).scores.numpy(),
        }
        for name, degrade in DEGRADATIONS.items():
            degraded = [degrade(image, generator) for image in originals]
            row = {"degradation": name}
            for with_text, label in ((True, "with descriptions"), (False, "image only")):
                scores = scorer(degraded, texts if with_text else None, progress=False).scores.numpy()
                row[f"lowered, {label}"] = float(np.mean(scores < base[with_text]))
                row[f"mean change, {label}"] = float(np.mean(scores - base[with_text]))
            rows.append(row)
            print(name, {k: round(v, 3) for k, v in row.items() if k != "degradation"}, file=sys.stderr, flush=True)
    worst = min(min(row["lowered, with descriptions"], row["lowered, image only"]) for row in rows)
    results = {
        "model": args.model,
        "images": len(test),
        "target": "every row lowers at least 90 % of the images, with and without descriptions",
        "worst share lowered": worst,
        "target met": bool(worst >= 0.9),
        "minutes": (time.time() - started) / 60,
        "columns": list(rows[0]),
        "rows": rows,
    }
    command = "python benchmarks/degradation.py" + (f" --model {args.model}" if args.model != DEFAULT_MODEL else "")
    write_results(RESULTS, args.name, results, command=command, hardware="2-core CPU VM")
    print(f"worst share lowered: {worst:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
