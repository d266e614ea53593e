"""Keep the most real images of a folder: rank them, write a CSV, copy or link the keepers.

    python examples/filter_dataset.py generated/ --min-score 0.0 --out kept.csv --export kept/
    python examples/filter_dataset.py --top-k 2        # the example images

The same as ``realness filter``, from Python (``realness.workflows.filtering``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realness.core import DEFAULT_MODEL
from realness.workflows.filtering import filter_images

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=HERE / "images")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="bundled model name or model directory")
    parser.add_argument("--descriptions", type=Path, default=HERE / "descriptions.csv", help="CSV: filename,description")
    parser.add_argument("--min-score", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("kept.csv"))
    parser.add_argument("--export", type=Path, default=None, help="copy the kept images here")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    descriptions = args.descriptions if args.descriptions and args.descriptions.is_file() else None
    result = filter_images(
        args.folder, min_score=args.min_score, top_k=args.top_k, model=args.model,
        descriptions=descriptions, device=args.device,
    )
    for image in result.images:
        mark = "keep" if image.kept else ("fail" if image.error else "drop")
        score = "   n/a " if image.error else f"{image.score:+.4f}"
        print(f"{mark}  {score}  {image.path.name}")
    result.write_csv(args.out)
    if args.export:
        result.export(args.export)
    print(f"kept {len(result.kept)} of {len(result.images)} images -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
