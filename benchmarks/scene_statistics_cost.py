"""What the scene statistics cost the bundled image encoder: its throughput with and without them, in one run.

The same 8 example-sized images (384 x 512) through ``EfficientNetLiteEncoder.forward`` with
``scene_statistics`` on and off, alternating, 5 repeats; the median ratio of the two times.

    python benchmarks/scene_statistics_cost.py
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
from reporting import write_results

from realness.core import CoreConfig
from realness.core.encoders import build_image_encoder

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    config = CoreConfig.lite().image_encoder
    with_statistics = build_image_encoder(dataclasses.replace(config, scene_statistics=True))
    without = build_image_encoder(dataclasses.replace(config, scene_statistics=False))
    pixels = torch.stack([with_statistics.preprocess(image) for image in torch.rand(8, 3, 384, 512, generator=torch.Generator().manual_seed(0))])
    ratios = []
    with torch.inference_mode():
        for encoder in (without, with_statistics):  # warm-up
            encoder(pixels)
        for _ in range(5):
            times = []
            for encoder in (without, with_statistics):
                started = time.perf_counter()
                encoder(pixels)
                times.append(time.perf_counter() - started)
            ratios.append(times[1] / times[0])
    ratio = statistics.median(ratios)
    write_results(RESULTS, "scene_statistics_cost", {
        "images per pass": 8, "repeats": 5,
        "time with scene statistics / without (median)": round(ratio, 3),
        "ratios": [round(r, 3) for r in ratios],
    }, command="python benchmarks/scene_statistics_cost.py")
    print(f"with / without scene statistics: {ratio:.3f}x the time", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
