"""DREAM speed on CPU: vectorized windows/s vs the bare CLIP image tower and vs a per-window loop.

Model: CLIP ViT-B/32 architecture (``CLIPConfig()`` defaults) with random weights, built in
memory (no download; random weights time the same as trained ones). Image: 512x384.
The paper configuration (windows 128/64/32, stride 4) is 26,227 windows, over an hour on a
2-core CPU, so by default this runs the same window sizes at a coarser stride (--stride);
the ratios, not the absolute time, are the result. All numbers come from one run.

    python benchmarks/dream_speed.py --stride 48 --chunk-size 64 --repeats 4
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from realness.dream import RealnessMapper, TransformersEmbedder
from realness.dream.windows import window_starts
from realness.io.pixels import resize_image
from realness.runtime.device import autocast

RESULTS = Path(__file__).resolve().parent / "results"


def byte_level_tokenizer():
    """A CLIP tokenizer over single byte-level characters (no merges): real tokenization code, no download."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    characters = list(bytes_to_unicode().values())
    vocab = {token: index for index, token in enumerate(characters + [c + "</w>" for c in characters])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def random_vit_b32() -> TransformersEmbedder:
    return random_clip()


def random_clip(**config) -> TransformersEmbedder:
    """A random-weight CLIP of ``CLIPConfig(**config)`` (default: ViT-B/32) with the byte-level tokenizer."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    return TransformersEmbedder(CLIPModel(CLIPConfig(**config)), byte_level_tokenizer())


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer reads the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paper_windows(height: int, width: int, window_sizes, stride: int) -> int:
    """How many windows of ``window_sizes`` at ``stride`` cover an image."""
    return sum(len(window_starts(height, s, stride)) * len(window_starts(width, s, stride)) for s in window_sizes)


def tower_windows_per_s(embedder, batches: int, chunk: int, device: torch.device, precision: str) -> float:
    """The bare image tower: ``batches`` forward passes of ``chunk`` windows, under the mapper's precision."""
    pixels = torch.randn(chunk, 3, embedder.input_size, embedder.input_size, device=device)
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode(), autocast(precision, device):
        for _ in range(batches):
            embedder.embed_images(pixels)
    synchronize(device)
    return batches * chunk / (time.perf_counter() - start)


def test_image(height: int = 384, width: int = 512) -> torch.Tensor:
    """A smooth synthetic image (gradients and a disc), deterministic."""
    y = torch.linspace(0, 1, height).view(-1, 1)
    x = torch.linspace(0, 1, width).view(1, -1)
    disc = (((y - 0.5) ** 2 + (x - 0.6) ** 2) < 0.05).float()
    return torch.stack([x.expand(height, width), y.expand(height, width), disc]).clamp(0, 1)


def per_window_loop(embedder, image, text, window_sizes, stride, limit):
    """The straightforward way: crop, resize, normalize and embed one window at a time (on ``image``'s device)."""
    mean = torch.tensor(embedder.mean, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(embedder.std, device=image.device).view(1, 3, 1, 1)
    height, width = image.shape[-2:]
    done = 0
    with torch.inference_mode():
        v = F.normalize(embedder.embed_texts([text]), dim=-1)[0]
        for size in window_sizes:
            for top in window_starts(height, size, stride).tolist():
                for left in window_starts(width, size, stride).tolist():
                    crop = image[:, top : top + size, left : left + size].unsqueeze(0)
                    pixels = (resize_image(crop, embedder.input_size, interpolation="bicubic") - mean) / std
                    u = F.normalize(embedder.embed_images(pixels), dim=-1)[0]
                    _ = 1.0 - u @ v
                    done += 1
                    if done == limit:
                        return done
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stride", type=int, default=48)
    parser.add_argument("--window-sizes", type=int, nargs="+", default=[128, 64, 32])
    parser.add_argument("--chunk-size", type=int, default=64, help="windows per forward pass (0: the mapper's auto choice)")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--loop-windows", type=int, default=120, help="windows timed in the per-window loop")
    args = parser.parse_args()

    embedder = random_vit_b32()
    image = test_image()
    text = "The horse's reins merge into its neck."
    mapper = RealnessMapper(embedder, window_sizes=args.window_sizes, stride=args.stride, batch_size=args.chunk_size or None, device="cpu")
    chunk = mapper.batch_size
    height, width = image.shape[-2:]
    windows = paper_windows(height, width, args.window_sizes, args.stride)
    paper_config_windows = paper_windows(height, width, (128, 64, 32), 4)
    batches = -(-windows // chunk)

    mapper(image, text)  # warm-up (allocator, kernels)
    tower_rates, mapper_rates = [], []
    for _ in range(args.repeats):
        # The bare tower on the same number of forward passes at the same batch size.
        tower_rates.append(tower_windows_per_s(embedder, batches, chunk, mapper.device, mapper.precision))
        start = time.perf_counter()
        mapper(image, text)
        mapper_rates.append(windows / (time.perf_counter() - start))
    start = time.perf_counter()
    looped = per_window_loop(embedder, image, text, args.window_sizes, args.stride, args.loop_windows)
    loop_rate = looped / (time.perf_counter() - start)

    mapper_rate = statistics.median(mapper_rates)
    tower_rate = statistics.median(tower_rates)
    # Each mapper run is compared with the tower run just before it: the machine's load
    # drifts, so the median of paired ratios is steadier than a ratio of medians.
    ratio = statistics.median(m / t for m, t in zip(mapper_rates, tower_rates))
    result = {
        "benchmark": "dream_speed",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/dream_speed.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if v is not None
        ),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, no GPU",
        "model": "CLIP ViT-B/32 architecture (transformers CLIPConfig defaults), random weights, fp32",
        "image": f"{width}x{height} synthetic",
        "window_sizes": args.window_sizes,
        "stride": args.stride,
        "windows_per_image": windows,
        "paper_config_windows_per_image": paper_config_windows,
        "chunk_size": chunk,
        "interpolation": f"{mapper.interpolation}, antialias={mapper.antialias}",
        "repeats": args.repeats,
        "mapper_windows_per_s": round(mapper_rate, 2),
        "mapper_windows_per_s_all": [round(r, 2) for r in mapper_rates],
        "tower_windows_per_s": round(tower_rate, 2),
        "tower_windows_per_s_all": [round(r, 2) for r in tower_rates],
        "ratio_mapper_to_tower": round(ratio, 3),
        "ratio_mapper_to_tower_all": [round(m / t, 3) for m, t in zip(mapper_rates, tower_rates)],
        "per_window_loop_windows_per_s": round(loop_rate, 2),
        "per_window_loop_windows_timed": looped,
        "speedup_over_per_window_loop": round(mapper_rate / loop_rate, 2),
        "paper_config_seconds_per_image_estimated": round(paper_config_windows / mapper_rate, 1),
        "gpu": "not measured: this task had no GPU machine",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dream_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# DREAM speed (CPU)", ""] + [f"- **{k}**: {v}" for k, v in result.items()]
    (RESULTS / "dream_speed.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
