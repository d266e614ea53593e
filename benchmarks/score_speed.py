"""Scorer throughput as a ratio to the bare encoders' forward pass, measured in one run.

    python benchmarks/score_speed.py [--images 96] [--batch-size 32] [--repeats 3]

"Bare" runs the image encoder and text encoder (and the head) on tensors already decoded,
resized and in memory. "Ours" is RealnessScorer on PNG files on disk: decoding, resizing
and batching included (with its automatic choice of DataLoader workers: none where the forward
pass already occupies every core, as on a 2-core CPU machine). "Tensor batch" is RealnessScorer
on the decoded images as one ``B x 3 x H x W`` tensor in [0, 1], as an eval loop hands them
over: checking, resizing and normalizing included. All use the same model and batch size; they
are measured in turn within each repeat, each ratio is taken to the bare run of its repeat, and
the median is kept.
Images are RAISE-TD test images when the dataset is present, else synthetic 512x384 PNGs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from dream_speed import synchronize  # benchmarks/ is on the path of a script run from it
from PIL import Image
from reporting import write_results

from realness.core import DEFAULT_MODEL, CoreModel, RealnessScorer
from realness.core.scorer import auto_decode_workers
from realness.data import DatasetNotFoundError, load_raise_td
from realness.io.inputs import load_image
from realness.runtime.device import autocast

RESULTS = Path(__file__).resolve().parent / "results"


def image_files(count: int, folder: Path) -> tuple[list[str], list[str], str]:
    try:
        test = load_raise_td(split="test")
        repeat = count // len(test) + 1
        paths = [str(p) for p in test.paths] * repeat
        return paths[:count], (list(test.descriptions) * repeat)[:count], "RAISE-TD test images (512x384 PNG)"
    except DatasetNotFoundError:
        rng = np.random.default_rng(0)
        paths = []
        for index in range(count):
            path = folder / f"{index}.png"
            Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)).save(path)
            paths.append(str(path))
        return paths, ["Somewhat. The hand has six fingers."] * count, "synthetic 512x384 PNGs"


@torch.inference_mode()
def bare_throughput(model: CoreModel, pixels: torch.Tensor, texts: list[str], batch_size: int, precision: str = "fp32") -> float:
    """Images/s of the encoders and head alone on preprocessed ``pixels``, on their device and under ``precision``."""
    device = pixels.device
    synchronize(device)
    started = time.perf_counter()
    with autocast(precision, device):
        for start in range(0, len(pixels), batch_size):
            chunk = texts[start : start + batch_size]
            image = model.image_encoder(pixels[start : start + batch_size])
            model.head(image, model.encode_texts(chunk), torch.tensor([bool(t) for t in chunk], device=device))
    synchronize(device)
    return len(pixels) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = CoreModel.from_pretrained(DEFAULT_MODEL).eval()  # the shipped head: its kernel is part of the cost
    with tempfile.TemporaryDirectory() as tmp:
        paths, texts, source = image_files(args.images, Path(tmp))
        decoded = torch.stack([load_image(p) for p in paths])
        pixels = model.image_encoder.preprocess(decoded)
        scorer = RealnessScorer(model, device="cpu", batch_size=args.batch_size)
        scorer_workers = auto_decode_workers(paths, args.batch_size, torch.device("cpu"))
        bare_throughput(model, pixels[: args.batch_size], texts[: args.batch_size], args.batch_size)  # warm-up
        # The same scorer forced to decode in one DataLoader worker, for comparison.
        with_worker = RealnessScorer(model, device="cpu", batch_size=args.batch_size, num_workers=1)
        bare, ours, worker, tensor = [], [], [], []
        for _ in range(args.repeats):
            bare.append(bare_throughput(model, pixels, texts, args.batch_size))
            for candidate, images, rates in ((scorer, paths, ours), (with_worker, paths, worker), (scorer, decoded, tensor)):
                started = time.perf_counter()
                candidate(images, texts)
                rates.append(len(paths) / (time.perf_counter() - started))
    result = {
        "images": len(paths),
        "source": source,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "bare_images_per_s": round(statistics.median(bare), 3),
        "scorer_images_per_s": round(statistics.median(ours), 3),
        "ratio_scorer_to_bare": round(statistics.median(o / b for o, b in zip(ours, bare)), 3),
        "ratio_with_one_decode_worker": round(statistics.median(w / b for w, b in zip(worker, bare)), 3),
        "tensor_batch_images_per_s": round(statistics.median(tensor), 3),
        "ratio_tensor_batch_to_bare": round(statistics.median(t / b for t, b in zip(tensor, bare)), 3),
        "image_size_hw": list(decoded.shape[-2:]),
        "encoder_input_hw": list(model.image_encoder.config.input_shape),
        "all_bare": [round(v, 3) for v in bare],
        "all_scorer": [round(v, 3) for v in ours],
        "all_tensor_batch": [round(v, 3) for v in tensor],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "decode_workers": scorer_workers,
    }
    write_results(RESULTS, "score_speed", result, command=" ".join(["python", "benchmarks/score_speed.py", *sys.argv[1:]]))
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
