"""Track realness inside a PyTorch evaluation loop with ``realness.metrics.Realness``.

The loop below reads the example images in batches; in your code the batch would come
from your generator (``images = generator(noise)``, a ``B x 3 x H x W`` tensor in [0, 1]).
The metric keeps a running sum, so memory stays flat however long the loop runs;
``--keep-scores`` also keeps every image's score. Under DDP, ``compute()`` reduces across
processes by itself.

    python examples/eval_loop.py                      # the bundled model
    python examples/eval_loop.py --model path/to/dir  # any saved CORE model
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from realness.core import DEFAULT_MODEL
from realness.io.inputs import load_image
from realness.metrics import Realness

HERE = Path(__file__).resolve().parent


class Folder(Dataset):
    """Images of a folder resized to one size, each with its description (or "" for none)."""

    def __init__(self, folder: Path, descriptions: dict[str, str], size: int):
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        self.descriptions = descriptions
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        image = load_image(self.paths[index])  # 3 x H x W float in [0, 1]
        image = torch.nn.functional.interpolate(image[None], size=(self.size, self.size), mode="bilinear", antialias=True)[0]
        return image.clamp(0, 1), self.descriptions.get(self.paths[index].name, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="bundled model name or model directory")
    parser.add_argument("--images", type=Path, default=HERE / "images")
    parser.add_argument("--descriptions", type=Path, default=HERE / "descriptions.csv")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="side the images are resized to, like a generator's output")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--keep-scores", action="store_true", help="also print every image's score")
    args = parser.parse_args(argv)

    with open(args.descriptions, newline="", encoding="utf-8") as handle:
        descriptions = {row["filename"]: row["description"] for row in csv.DictReader(handle)}
    loader = DataLoader(Folder(args.images, descriptions, args.size), batch_size=args.batch_size)

    metric = Realness(model=args.model, keep_scores=args.keep_scores).to(args.device)
    for images, texts in loader:
        # images = generator(noise)  <- in a real eval loop
        metric.update(images.to(args.device), list(texts))
    result = metric.compute()
    mean = result["mean"] if args.keep_scores else result
    print(f"mean realness: {float(mean):.4f} over {int(metric.count)} images")
    if args.keep_scores:
        for path, value in zip(loader.dataset.paths, result["scores"].reshape(-1).tolist()):
            print(f"{path.name}\t{value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
