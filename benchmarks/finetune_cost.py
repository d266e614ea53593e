"""What end-to-end fine-tuning of the lite CORE would cost here: seconds per image per training step.

    python benchmarks/finetune_cost.py [--batch-size 16]

Times AdamW steps (forward, backward, update) of the lite configuration at its 384x512 input
with the image encoder's last stage or all of it trainable (MLP head, text encoder frozen), on
random pixels (the cost does not depend on the content), and extrapolates to the paper's
schedule: 15 epochs over RAISE-TD's 510 training images, and 5-fold CV of that. Writes
benchmarks/results/finetune_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from reporting import write_results

from realness.core.config import CoreConfig
from realness.core.model import CoreModel

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for trainable in ("last", "all"):
        config = CoreConfig.lite()
        config.head, config.image_encoder.trainable = "mlp", trainable
        model = CoreModel(config)
        model.image_encoder.set_trainable(trainable)
        model.text_encoder.set_trainable("frozen")
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        pixels = torch.rand(args.batch_size, 3, *config.image_encoder.input_shape)
        texts, targets = ["Yes. The hand has six fingers."] * args.batch_size, torch.randn(args.batch_size)
        seconds = []
        for _ in range(args.steps):
            started = time.perf_counter()
            loss = torch.nn.functional.mse_loss(model(pixels, texts), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seconds.append(time.perf_counter() - started)
        per_image = min(seconds[1:]) / args.batch_size  # the first step pays for allocation
        rows.append({
            "image encoder trainable": trainable,
            "s per image per step": round(per_image, 3),
            "one epoch (510 images), min": round(510 * per_image / 60, 1),
            "15 epochs, min": round(15 * 510 * per_image / 60),
            "5-fold CV of 15 epochs, h": round(5 * 15 * 408 * per_image / 3600, 1),
        })
        print(rows[-1], file=sys.stderr)
    write_results(RESULTS, "finetune_cost", {"batch_size": args.batch_size, "columns": list(rows[0]), "rows": rows},
                  command=" ".join(["python", "benchmarks/finetune_cost.py", *sys.argv[1:]]), hardware="2-core CPU VM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
