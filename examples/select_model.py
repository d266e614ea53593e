"""Pick the most real output per prompt across several models, and summarize each model.

Point ``--root`` at ``ROOT/<model>/<prompt_id>.png`` (the same prompt ids in each model's
folder). Without ``--root`` the script builds a small demo layout from the example images:
``original`` (the images), ``blurred`` and ``noisy`` (degraded copies) play three "models".

    python examples/select_model.py --root outputs/ --out-dir report/
    python examples/select_model.py --out-dir report/   # the demo layout

The same as ``realness compare``, from Python (``realness.workflows.selection``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from realness.core import DEFAULT_MODEL
from realness.workflows.selection import select_best

HERE = Path(__file__).resolve().parent


def build_demo_layout(root: Path) -> Path:
    """Three "models" for the four example images: the originals, blurred and noisy copies."""
    rng = np.random.default_rng(0)
    for model in ("original", "blurred", "noisy"):
        (root / model).mkdir(parents=True, exist_ok=True)
    for path in sorted((HERE / "images").glob("*.png")):
        image = Image.open(path).convert("RGB")
        shutil.copy(path, root / "original" / path.name)
        image.filter(ImageFilter.GaussianBlur(4)).save(root / "blurred" / path.name)
        noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 25, size=(image.height, image.width, 3))
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(root / "noisy" / path.name)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="ROOT/<model>/<prompt_id>.<ext> (default: a demo layout)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="bundled model name or model directory")
    parser.add_argument("--out-dir", type=Path, default=Path("selection-report"))
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or build_demo_layout(Path(tmp) / "outputs")
        result = select_best(root, model=args.model, device=args.device)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        result.write_winners_csv(args.out_dir / "winners.csv")
        result.write_summary(args.out_dir / "summary.md")
        result.plot(args.out_dir / "summary.png")
    print(result.summary_markdown())
    for prompt_id, winner in sorted(result.winners.items()):
        print(f"{prompt_id}: {winner.model} ({winner.score:+.4f})")
    print(f"wrote winners.csv, summary.md, summary.png -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
