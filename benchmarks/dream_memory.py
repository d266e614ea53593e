"""DREAM peak memory on CPU for a 2048x2048 image at the paper configuration (128/64/32, stride 4).

The full run is ~740,000 windows of CLIP ViT-B/32: hours on a 2-core CPU. Memory does not
grow with the number of windows embedded (one chunk is alive at a time), so this measures
every stage at full size without embedding them all:

1. the real mapper on the 2048x2048 image with a random ViT-B/32 (``CLIPConfig()``
   defaults), the auto chunk size and all window grids planned, stopped after ``--chunks``
   chunks (each chunk cut from the image, resized to 224, normalized and embedded);
2. the averaging stage (``overlap_average`` per scale, max, normalization) on the full
   window grids of that image.

Peak memory is the process's peak resident set size (``ru_maxrss``) over both stages.

    python benchmarks/dream_memory.py --chunks 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dream_speed import random_vit_b32, test_image  # noqa: E402

from realness.dream import RealnessMapper  # noqa: E402
from realness.dream.windows import combine_scales, overlap_average, window_starts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


class _Enough(Exception):
    """Raised by the embedder once the requested number of chunks has run."""


class StopAfter:
    """Wraps an embedder and stops the run after ``chunks`` image batches."""

    def __init__(self, embedder, chunks: int):
        self.inner, self.left, self.seen = embedder, chunks, 0
        self.input_size, self.mean, self.std = embedder.input_size, embedder.mean, embedder.std

    def embed_images(self, pixels):
        if self.left == 0:
            raise _Enough
        self.left -= 1
        self.seen += pixels.shape[0]
        return self.inner.embed_images(pixels)

    def embed_texts(self, texts):
        return self.inner.embed_texts(texts)

    def to(self, device):
        self.inner.to(device)
        return self


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: the mapper's auto choice")
    args = parser.parse_args()

    embedder = random_vit_b32()
    after_model = peak_rss_mb()
    image = test_image(args.size, args.size)
    wrapped = StopAfter(embedder, args.chunks)
    mapper = RealnessMapper(wrapped, window_sizes=(128, 64, 32), stride=4, batch_size=args.chunk_size, device="cpu")
    start = time.perf_counter()
    try:
        mapper(image, "The horse's reins merge into its neck.")
    except _Enough:
        pass
    embed_seconds = time.perf_counter() - start
    after_chunks = peak_rss_mb()

    windows, maps = 0, []
    for size in (128, 64, 32):
        tops, lefts = window_starts(args.size, size, 4), window_starts(args.size, size, 4)
        windows += len(tops) * len(lefts)
        maps.append(overlap_average(torch.rand(len(tops), len(lefts)), tops, lefts, size, args.size, args.size))
    combine_scales(maps)
    peak = peak_rss_mb()

    result = {
        "benchmark": "dream_memory",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python benchmarks/dream_memory.py --size {args.size} --chunks {args.chunks}"
        + (f" --chunk-size {args.chunk_size}" if args.chunk_size else ""),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, no GPU",
        "model": "CLIP ViT-B/32 architecture (transformers CLIPConfig defaults), random weights, fp32",
        "image": f"{args.size}x{args.size}",
        "window_sizes": [128, 64, 32],
        "stride": 4,
        "windows_full_run": windows,
        "chunk_size": mapper.chunk_size,
        "chunks_embedded": args.chunks,
        "windows_embedded": wrapped.seen,
        "seconds_for_embedded_chunks": round(embed_seconds, 1),
        "peak_rss_mb_after_model_load": round(after_model, 1),
        "peak_rss_mb_after_chunks": round(after_chunks, 1),
        "peak_rss_mb": round(peak, 1),
        "target_mb": 4096,
        "under_target": peak < 4096,
        "scope": "stage 1 embeds the first chunks only (memory does not grow with windows embedded); "
        "stage 2 averages full-size window grids",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dream_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# DREAM peak memory (CPU)", ""] + [f"- **{k}**: {v}" for k, v in result.items()]
    (RESULTS / "dream_memory.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
