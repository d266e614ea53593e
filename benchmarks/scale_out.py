"""Throughput of the ray engine (1 and 2 actors) against one process, on this machine.

    nice -n 10 python benchmarks/scale_out.py [--images 60] [--batch-size 16]

All three score the same PNG files with the bundled model and write nothing but Parquet.
"One process" is ``RealnessScorer`` called on the paths (model loading timed apart).
The ray runs use local Ray with as many CPUs as the machine has; Ray's start-up
(``ray.init``) is timed apart, and each run's time includes starting its actors and
loading one model per actor, which is what a user waits for. One CPU always stays free for
Ray Data (see docs/scaling_out.md), so on 2 cores one actor holds 1 CPU and two actors
0.5 each, with one torch thread per actor; the one process uses every core.

Images are RAISE-TD test images when the dataset is present, else synthetic 512x384 PNGs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from reporting import write_results
from score_speed import image_files  # the same images as the speed benchmark

from realness.core import DEFAULT_MODEL, RealnessScorer

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    import ray

    from realness.distributed import score_dataset

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        paths, _, source = image_files(args.images, Path(tmp))
        # The same file list for every engine: a manifest, so repeated RAISE-TD paths stay distinct rows.
        links = Path(tmp) / "images"
        links.mkdir()
        for index, path in enumerate(paths):
            os.symlink(os.path.abspath(path), links / f"{index:05d}.png")

        started = time.perf_counter()
        scorer = RealnessScorer.from_pretrained(DEFAULT_MODEL, device="cpu", batch_size=args.batch_size)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        scorer(sorted(str(p) for p in links.iterdir()), on_error="skip", progress=False)
        seconds = time.perf_counter() - started
        rows.append({"engine": "one process", "actors": "-", "torch_threads": torch.get_num_threads(),
                     "seconds": round(seconds, 2), "images_per_s": round(len(paths) / seconds, 3),
                     "with_model_loading_images_per_s": round(len(paths) / (seconds + load_seconds), 3)})

        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
        ray_startup = time.perf_counter() - started
        for actors in (1, 2):
            summary = score_dataset(links, out=Path(tmp) / f"out-{actors}.parquet", batch_size=args.batch_size,
                                    actors=actors, progress=False)
            assert summary.written == len(paths) and summary.failed == 0, summary
            per_actor_cpus = (os.cpu_count() - 1) / actors
            rows.append({"engine": "ray", "actors": actors, "torch_threads": max(1, int(per_actor_cpus)),
                         "seconds": round(summary.seconds, 2), "images_per_s": round(summary.images_per_second, 3),
                         "with_model_loading_images_per_s": round(summary.images_per_second, 3)})
        ray.shutdown()

    result = {
        "rows": rows,
        "columns": ["engine", "actors", "torch_threads", "seconds", "images_per_s", "with_model_loading_images_per_s"],
        "images": len(paths),
        "source": source,
        "batch_size": args.batch_size,
        "ray_startup_seconds": round(ray_startup, 2),
        "one_process_model_loading_seconds": round(load_seconds, 2),
        "ray_version": ray.__version__,
        "load_average_at_start": round(load_before, 2),
        "note": "ray seconds include starting the actors and loading one model per actor, not ray.init",
    }
    write_results(RESULTS, "scale_out", result, command=" ".join(["nice -n 10 python", "benchmarks/scale_out.py", *sys.argv[1:]]),
                  hardware="2-core CPU VM" if os.cpu_count() == 2 else None)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
