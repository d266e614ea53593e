"""Every GPU figure of the project in one run: DREAM at the paper configuration and CORE, bf16 and fp32.

    python benchmarks/gpu_check.py                          # one CUDA GPU: under 5 minutes on an H100/H200
    python benchmarks/gpu_check.py --smoke --out-dir DIR    # tiny sizes, any device (the tests run it on CPU)

Writes ``gpu_check.json`` and ``gpu_check.md`` (command, date, hardware beside the figures) into
``--out-dir`` (default: benchmarks/results; benchmarks/results/smoke for ``--smoke``). A smoke run
or one without CUDA is recorded as partial and never replaces a full GPU result. Nothing is
downloaded (``HF_HUB_OFFLINE=1``):

DREAM, paper configuration (windows 128/64/32, stride 4, a 512x384 image: 26,227 windows), on a
CLIP ViT-B/32 with random weights (they time as trained ones do; the checkout cannot carry the
trained tower). The image is a tensor on the device, as an eval loop holds it:

- seconds per image, bf16 and fp32, and the mapper's windows/s as a ratio to the bare image
  tower's on as many windows in batches of the same size (paired per repeat, median);
- the per-window loop's windows/s (bf16) and the mapper's speed-up over it;
- the peak memory of a bf16 map (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS);
- bf16 against fp32: the Pearson correlation of the two maps over pixels.

CORE: the bundled realness-core-lite where its packaged Lite0 and MiniLM weights are installed,
else random-weight towers of the same architectures with the bundled head (``core_model`` says
which, and why):

- images/s from PNG files and from a tensor batch on the device, each as a ratio to the bare
  encoders + head on the same device, precision and preprocessed pixels (paired, median);
- the score differences between the CPU (fp32) and the device, in fp32 and in bf16.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before realness reads it: this check never downloads

import numpy as np
import torch
from dream_speed import paper_windows, per_window_loop, random_clip, random_vit_b32, synchronize, test_image, tower_windows_per_s
from reporting import check_partial_result, write_results
from score_speed import bare_throughput, image_files

from realness.core import DEFAULT_MODEL, CoreModel, RealnessScorer
from realness.core.model import read_config, read_weights
from realness.core.pretrained import CONFIG_NAME, WEIGHTS_NAME, resolve_core_dir
from realness.dream import RealnessMapper
from realness.errors import MissingDependencyError, OutputError, RealnessError, WeightsNotFoundError
from realness.io.inputs import load_image
from realness.runtime.device import autocast, compute_dtype, resolve_device

RESULTS = Path(__file__).resolve().parent / "results"
TEXT = "The horse's reins merge into its neck."
_TINY_TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)


@dataclass(frozen=True)
class Sizes:
    """How big each part of the check is: the paper's sizes, or tiny ones for ``--smoke``."""

    dream_image_hw: tuple[int, int]
    window_sizes: tuple[int, ...]
    stride: int
    dream_batch_size: int | None  # None: the mapper's choice from free memory
    loop_windows: int
    core_images: int
    core_batch_size: int
    core_input_hw: tuple[int, int] | None  # None: the model's own input size
    difference_images: int
    repeats: int


FULL = Sizes((384, 512), (128, 64, 32), 4, None, 200, 256, 64, None, 16, 3)
SMOKE = Sizes((48, 64), (32, 16), 8, 16, 10, 4, 2, (64, 64), 2, 2)


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the paired ratios: each run against the reference run of its own repeat."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def dream_figures(device: torch.device, sizes: Sizes, smoke: bool) -> dict:
    embedder = random_clip(text_config=_TINY_TOWER, vision_config=dict(_TINY_TOWER, image_size=32, patch_size=8),
                           projection_dim=16) if smoke else random_vit_b32()
    image = test_image(*sizes.dream_image_hw).to(device)
    height, width = sizes.dream_image_hw
    windows = paper_windows(height, width, sizes.window_sizes, sizes.stride)
    runs = {}
    for precision in ("bf16", "fp32"):
        mapper = RealnessMapper(embedder, window_sizes=sizes.window_sizes, stride=sizes.stride, device=device,
                                precision=precision, batch_size=sizes.dream_batch_size, progress=False)
        batches = -(-windows // mapper.batch_size)
        mapper(image, TEXT)  # warm-up: kernels, allocator
        mapper_rates, tower_rates = [], []
        for _ in range(sizes.repeats):
            tower_rates.append(tower_windows_per_s(embedder, batches, mapper.batch_size, device, precision))
            start = time.perf_counter()
            result = mapper(image, TEXT)  # its maps come back to the host: the run is complete
            mapper_rates.append(windows / (time.perf_counter() - start))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        mapper(image, TEXT)
        runs[precision] = dict(mapper=mapper_rates, tower=tower_rates, map=result.map, peak=peak_memory_mib(device),
                               batch_size=mapper.batch_size)
    with autocast("bf16", device):
        synchronize(device)
        start = time.perf_counter()
        looped = per_window_loop(embedder, image, TEXT, sizes.window_sizes, sizes.stride, sizes.loop_windows)
        synchronize(device)
    loop_rate = looped / (time.perf_counter() - start)
    bf16, fp32 = runs["bf16"], runs["fp32"]
    return {
        "dream_embedder": "CLIP ViT-B/32 architecture, random weights" if not smoke else "tiny CLIP, random weights (smoke)",
        "dream_image_hw": list(sizes.dream_image_hw),
        "dream_window_sizes": list(sizes.window_sizes),
        "dream_stride": sizes.stride,
        "dream_windows_per_image": windows,
        "dream_batch_size": bf16["batch_size"],
        "dream_seconds_per_image_bf16": statistics.median(windows / rate for rate in bf16["mapper"]),
        "dream_seconds_per_image_fp32": statistics.median(windows / rate for rate in fp32["mapper"]),
        "dream_ratio_to_bare_tower_bf16": median_ratio(bf16["mapper"], bf16["tower"]),
        "dream_ratio_to_bare_tower_fp32": median_ratio(fp32["mapper"], fp32["tower"]),
        "dream_windows_per_s_bf16": statistics.median(bf16["mapper"]),
        "dream_per_window_loop_windows_per_s_bf16": loop_rate,
        "dream_per_window_loop_windows_timed": looped,
        "dream_speedup_over_per_window_loop_bf16": statistics.median(bf16["mapper"]) / loop_rate,
        "dream_peak_memory_mib_bf16": bf16["peak"],
        "dream_peak_memory_kind": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS",
        "dream_map_pearson_bf16_vs_fp32": float(np.corrcoef(bf16["map"].ravel(), fp32["map"].ravel())[0, 1]),
        "dream_all_windows_per_s_bf16": bf16["mapper"],
        "dream_all_tower_windows_per_s_bf16": bf16["tower"],
        "dream_all_windows_per_s_fp32": fp32["mapper"],
        "dream_all_tower_windows_per_s_fp32": fp32["tower"],
    }


def core_model(sizes: Sizes, folder: Path) -> tuple[CoreModel, str]:
    """The bundled model, or its head on random-weight Lite0 and MiniLM-architecture towers."""
    if sizes.core_input_hw is None:
        try:
            return CoreModel.from_pretrained(DEFAULT_MODEL), f"{DEFAULT_MODEL} (packaged Lite0 and MiniLM weights)"
        except (MissingDependencyError, WeightsNotFoundError, RealnessError) as error:
            reason = f"packaged weights unavailable: {error}"
    else:
        reason = "smoke run: small input"
    bundled = resolve_core_dir(DEFAULT_MODEL)
    config = read_config(bundled / CONFIG_NAME)
    if sizes.core_input_hw is not None:
        config.image_encoder.input_size = sizes.core_input_hw
    config.text_encoder.name = str(random_minilm_dir(folder / "minilm"))
    model = CoreModel(config, pretrained_encoders=False)
    state, _ = read_weights(bundled / WEIGHTS_NAME)
    model.load_state_dict({key: value for key, value in state.items() if key.startswith("head.")}, strict=False)
    model.trained = True
    label = f"random-weight EfficientNet-Lite0 {list(config.image_encoder.input_shape)} and MiniLM-L6 towers, bundled head"
    return model.eval(), f"{label} ({reason})"


def random_minilm_dir(directory: Path) -> Path:
    """all-MiniLM-L6-v2's architecture (BERT, 6 layers, 384 wide) with random weights and a character tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    characters = [chr(code) for code in range(33, 127)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + characters + ["##" + c for c in characters]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt")).save_pretrained(directory)
    torch.manual_seed(0)
    # The embedding table holds the character vocabulary only: a lookup costs the same at any size.
    config = BertConfig(vocab_size=len(vocab), hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    BertModel(config).save_pretrained(directory)
    return directory


def images_per_s(scorer: RealnessScorer, images, texts: list[str]) -> float:
    start = time.perf_counter()
    scorer(images, texts)  # scores come back to the host: the run is complete
    return len(texts) / (time.perf_counter() - start)


def core_figures(device: torch.device, sizes: Sizes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        model, label = core_model(sizes, Path(tmp))
        paths, texts, source = image_files(sizes.core_images, Path(tmp))
        decoded = torch.stack([load_image(path) for path in paths])
        # CPU reference first, on a copy: a scorer moves its model to its device.
        count = sizes.difference_images
        reference = RealnessScorer(copy.deepcopy(model), device="cpu", precision="fp32", progress=False)
        cpu_scores = reference(decoded[:count], texts[:count]).scores
        differences = {}
        for precision in ("fp32", "bf16"):
            on_device = RealnessScorer(model, device=device, precision=precision, progress=False)
            scores = on_device(decoded[:count].to(device), texts[:count]).scores
            differences[precision] = (scores - cpu_scores).abs()

        scorer = RealnessScorer(model, device=device, batch_size=sizes.core_batch_size, progress=False)  # precision auto
        batch = decoded.to(device)
        pixels = model.image_encoder.preprocess(batch)
        size = sizes.core_batch_size
        bare_throughput(model, pixels[:size], texts[:size], size, scorer.precision)  # warm-up
        scorer(batch[:size], texts[:size])
        bare, files, tensors = [], [], []
        for _ in range(sizes.repeats):
            bare.append(bare_throughput(model, pixels, texts, size, scorer.precision))
            files.append(images_per_s(scorer, paths, texts))
            tensors.append(images_per_s(scorer, batch, texts))
    return {
        "core_model": label,
        "core_images": len(paths),
        "core_source": source,
        "core_batch_size": size,
        "core_precision": f"{scorer.precision} ({str(compute_dtype(scorer.precision, device)).removeprefix('torch.')})",
        "core_bare_images_per_s": statistics.median(bare),
        "core_png_images_per_s": statistics.median(files),
        "core_png_ratio_to_bare": median_ratio(files, bare),
        "core_tensor_batch_images_per_s": statistics.median(tensors),
        "core_tensor_batch_ratio_to_bare": median_ratio(tensors, bare),
        "core_cpu_vs_device_images": count,
        "core_cpu_score_std": float(cpu_scores.std()) if count > 1 else None,
        "core_cpu_vs_device_max_abs_diff_fp32": float(differences["fp32"].max()),
        "core_cpu_vs_device_max_abs_diff_bf16": float(differences["bf16"].max()),
        "core_cpu_vs_device_mean_abs_diff_bf16": float(differences["bf16"].mean()),
        "core_all_bare_images_per_s": bare,
        "core_all_png_images_per_s": files,
        "core_all_tensor_batch_images_per_s": tensors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds, any device)")
    parser.add_argument(
        "--out-dir", type=Path, default=None,
        help="where gpu_check.{json,md} go (default: benchmarks/results; --smoke: benchmarks/results/smoke)",
    )
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sizes = SMOKE if args.smoke else FULL
    # A smoke or CPU run stands in for nothing: it never replaces recorded GPU figures.
    partial = args.smoke or device.type != "cuda"
    out_dir = args.out_dir or (RESULTS / "smoke" if args.smoke else RESULTS)
    try:
        if partial:
            check_partial_result(out_dir, "gpu_check")  # before minutes of work, not after
    except OutputError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 2
    if device.type != "cuda" and not args.smoke:
        print("gpu_check: no CUDA device; the figures below are CPU figures", file=sys.stderr)
    started = time.perf_counter()
    figures = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "smoke": args.smoke, "repeats": sizes.repeats}
    figures.update(dream_figures(device, sizes, args.smoke))
    figures.update(core_figures(device, sizes))
    figures["seconds_total"] = time.perf_counter() - started
    command = " ".join(["python", "benchmarks/gpu_check.py", *sys.argv[1:]])
    json_path, _ = write_results(out_dir, "gpu_check", figures, command=command, partial=partial)
    print(json_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
