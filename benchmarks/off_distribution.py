"""Do degenerate images score below every real photograph? The bundled model, through the public scorer.

Each kind of ``degenerate_kinds.py`` (the kinds issue 30 names, and others of the
same family never used to choose the recipe) is made from three real photographs of the RAISE-TD
test split (the photo-based kinds) or with three seeds, and scored image only and with the
description "No."; the 21 real photographs of the test split are scored the same two ways and
with their own GPT-4.1 descriptions. A kind passes when its highest score is below the lowest
real photograph's, for both ways. Each score's 90 % interval is listed beside it.

    python benchmarks/off_distribution.py [--model realness-core-lite] [--root ../shared/datasets/raise-td]

Writes benchmarks/results/off_distribution.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from degenerate_kinds import NAMED_KINDS, OTHER_KINDS, degenerate_image
from reporting import write_results

from realness.core import RealnessScorer
from realness.core.pretrained import DEFAULT_MODEL
from realness.data import load_raise_td
from realness.io.inputs import load_image

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = 3  # photographs (or seeds) per kind


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--root", default=None)
    parser.add_argument("--name", default="off_distribution", help="results file stem")
    args = parser.parse_args()
    started = time.time()
    test = load_raise_td(args.root, split="test")
    real = [i for i, path in enumerate(test.paths) if Path(path).name.startswith("r")]  # r*.png: real photographs
    photos = [load_image(test.paths[i]) for i in real]
    scorer = RealnessScorer.from_pretrained(args.model, device="cpu")
    ways = {"image only": None, '"No."': "No."}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # image-only scoring is one of the ways measured
        lowest = {}
        for way, text in ways.items():
            lowest[way] = float(scorer(photos, None if text is None else [text] * len(photos), progress=False).scores.min())
        lowest["own descriptions"] = float(scorer(photos, [test.descriptions[i] for i in real], progress=False).scores.min())
        rows = []
        for group, kinds in (("named", NAMED_KINDS), ("other", OTHER_KINDS)):
            for kind in kinds:
                images = [degenerate_image(kind, photos[k], seed=k) for k in range(SAMPLES)]
                row = {"kind": kind, "group": group}
                for way, text in ways.items():
                    result = scorer(images, None if text is None else [text] * len(images), progress=False)
                    top = int(result.scores.argmax())
                    row[f"highest, {way}"] = round(float(result.scores[top]), 4)
                    row[f"its 90 % interval, {way}"] = [round(float(end), 3) for end in result.interval[top]]
                    row[f"below every real photograph, {way}"] = bool(float(result.scores[top]) < lowest[way])
                rows.append(row)
                print(kind, {k: v for k, v in row.items() if k.startswith("highest")}, file=sys.stderr, flush=True)
    passed = {group: all(r[f"below every real photograph, {way}"] for r in rows if r["group"] == group for way in ways)
              for group in ("named", "other")}
    results = {
        "model": args.model,
        "real photographs (test split)": len(real),
        "lowest real photograph": {way: round(value, 4) for way, value in lowest.items()},
        "target": "every named kind scores below the lowest real photograph of the test split, image only and with \"No.\"",
        "named kinds all below": passed["named"],
        "other kinds all below": passed["other"],
        "minutes": round((time.time() - started) / 60, 2),
        "columns": list(rows[0]),
        "rows": rows,
    }
    command = "python benchmarks/off_distribution.py" + (f" --model {args.model}" if args.model != DEFAULT_MODEL else "")
    write_results(RESULTS, args.name, results, command=command, hardware="2-core CPU VM")
    print(f"lowest real photograph: {lowest}; named below: {passed['named']}, other below: {passed['other']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
