"""Do the realness maps point at a planted region? RAISE-TD photographs with one altered square each.

Every photograph gets one 128 x 128 region at a seeded random place, altered by one kind:
``blur`` (Gaussian, sigma 3 px), ``noise`` (Gaussian, sigma 20 grey levels), ``splice_ai`` (the
same-sized patch of an AI-generated RAISE-TD image of the same split), ``splice_photo`` (a patch
of another photograph), ``jpeg`` (quality 8) and ``colour`` (saturation x 2.2). A map is scored
by the pixel AUC of ``1 - map`` against the region's mask (1.0: every altered pixel below every
other) and the pointing game (its lowest pixel lies in the region).

``--split train`` compares the candidate readings of the bundled model (``--candidates``) by
5-fold cross-validation over the train photographs (mean ± std of the fold means); the choice is
made there. ``--split test`` (the default) reads the test photographs once with the shipped
settings, for every map method this machine can run: the core method always, DREAM with real
CLIP weights when ``--clip DIR`` names a local CLIP directory (skipped, with the reason, otherwise).

    python benchmarks/localization.py [--split test] [--images 16] [--clip DIR]
    python benchmarks/localization.py --split train --images 48 --candidates

Writes benchmarks/results/localization.{json,md} (train: localization_train.{json,md}).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from reporting import write_results

from realness.core.model import CoreModel
from realness.data import load_raise_td
from realness.dream.core_map import CoreRegionReader, feature_contrast
from realness.dream.windows import combine_scales, overlap_average
from realness.errors import DatasetNotFoundError
from realness.io.inputs import load_image
from realness.training.degrade import gaussian_blur, gaussian_noise, jpeg

RESULTS = Path(__file__).resolve().parent / "results"
REGION = 128
TARGETS = {"blur": 0.75, "noise": 0.85, "splice_ai": 0.90}


def saturate(image: torch.Tensor, factor: float) -> torch.Tensor:
    grey = image.mean(0, keepdim=True)
    return (grey + factor * (image - grey)).clamp(0, 1)


def plant(image: torch.Tensor, kind: str, top: int, left: int, donor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``image`` with the ``REGION``-pixel square at (top, left) altered by ``kind``."""
    altered = {
        "blur": lambda: gaussian_blur(image, 3.0),
        "noise": lambda: gaussian_noise(image, 20.0, generator),
        "jpeg": lambda: jpeg(image, 8),
        "colour": lambda: saturate(image, 2.2),
        "splice_ai": lambda: donor,
        "splice_photo": lambda: donor,
    }[kind]()
    result = image.clone()
    if kind.startswith("splice"):
        # The donor's patch from a seeded place of the donor, pasted at (top, left).
        dh, dw = donor.shape[-2:]
        source_top = int(torch.randint(0, dh - REGION + 1, (1,), generator=generator))
        source_left = int(torch.randint(0, dw - REGION + 1, (1,), generator=generator))
        patch = donor[:, source_top : source_top + REGION, source_left : source_left + REGION]
    else:
        patch = altered[:, top : top + REGION, left : left + REGION]
    result[:, top : top + REGION, left : left + REGION] = patch
    return result


def pixel_auc(unreal: np.ndarray, mask: np.ndarray) -> float:
    """AUC of ``unreal`` separating the mask's pixels from the others (Mann-Whitney, ties halved)."""
    from scipy.stats import rankdata

    ranks = rankdata(unreal.ravel())
    positive = mask.ravel()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pointing_hit(realness: np.ndarray, mask: np.ndarray) -> bool:
    return bool(mask.ravel()[int(np.argmin(realness))])


def planted_set(split: str, count: int, kinds: list[str], root: str | None, seed: int = 0):
    """(photo name, kind, altered image, mask) for the first ``count`` photographs of ``split``."""
    data = load_raise_td(root, split=split)
    photos = [path for path in data.paths if path.name.startswith("r")]
    generated = [path for path in data.paths if path.name.startswith("f")]
    if len(photos) < count:
        raise SystemExit(f"RAISE-TD {split} has {len(photos)} photographs, fewer than --images {count}")
    photos = photos[:count]
    generator = torch.Generator().manual_seed(seed)
    for index, path in enumerate(photos):
        image = load_image(path)
        height, width = image.shape[-2:]
        for kind in kinds:
            top = int(torch.randint(0, height - REGION + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - REGION + 1, (1,), generator=generator))
            donors = generated if kind == "splice_ai" else [p for p in photos if p != path]
            donor = load_image(donors[(index * 7 + len(kind)) % len(donors)]) if kind.startswith("splice") else None
            altered = plant(image, kind, top, left, donor, generator)
            mask = np.zeros((height, width), dtype=bool)
            mask[top : top + REGION, left : left + REGION] = True
            yield path.name, kind, altered, mask


# --- candidate readings of the bundled model (compared on the train split) --------------------


def anomaly_raw(
    reader: CoreRegionReader, maps: list[torch.Tensor], shape: tuple[int, int], size_out: tuple[int, int], *, stages_only: bool = False,
    self_scaled: bool = False,
) -> torch.Tensor:
    """Per pixel, minus how far its regions' standardized features lie from the image's median region."""
    skip = maps[0].shape[1] if stages_only else 0  # the pooled head's channels come first
    per_scale = []
    for size in [size for size in reader.region_sizes if size <= min(shape)]:
        features, tops, lefts = reader.region_features(maps, shape, size)
        distance = feature_contrast(features, reader.model.head, skip=skip, self_scaled=self_scaled)
        per_scale.append(overlap_average(-distance.view(len(tops), len(lefts)), tops, lefts, size, *shape))
    combined = torch.stack(per_scale).mean(0)
    return F.interpolate(combined[None, None], size=size_out, mode="bilinear", align_corners=False)[0, 0]


def standardized(raw: torch.Tensor) -> torch.Tensor:
    return (raw - raw.mean()) / raw.std().clamp_min(1e-8)


def candidates(model: CoreModel) -> dict[str, Callable]:
    """label -> reading(maps, shape, size_out) -> raw map (higher = more real)."""
    readings: dict[str, Callable] = {}
    for weight in (0.0, 0.5, 1.0):
        reader = CoreRegionReader(model, region_sizes=(128, 64), reading="head", region_weight=weight)
        readings[f"head, region weight {weight:g}, regions 128/64"] = lambda m, s, o, r=reader: r.read(m, s, o).combined
    for sizes in ((128, 64), (64, 32)):
        label = "/".join(map(str, sizes))
        plain = CoreRegionReader(model, region_sizes=sizes, reading="head")
        readings[f"feature anomaly, regions {label}"] = lambda m, s, o, r=plain: anomaly_raw(r, m, s, o)
        readings[f"stage-feature anomaly, regions {label}"] = lambda m, s, o, r=plain: anomaly_raw(r, m, s, o, stages_only=True)
    plain = CoreRegionReader(model, region_sizes=(64, 32), reading="head")
    readings["head (weight 1) + anomaly, regions 64/32"] = lambda m, s, o, r=plain: standardized(
        r.read(m, s, o).combined
    ) + standardized(anomaly_raw(r, m, s, o))
    readings["self-scaled stage anomaly, regions 64/32"] = lambda m, s, o, p=plain: anomaly_raw(p, m, s, o, stages_only=True, self_scaled=True)
    readings["self-scaled feature anomaly, regions 64/32"] = lambda m, s, o, p=plain: anomaly_raw(p, m, s, o, self_scaled=True)
    detail = CoreRegionReader(model, region_sizes=(64, 32), reading="contrast_detail")
    readings["self-scaled stage anomaly + detail surprise, regions 64/32"] = lambda m, s, o, r=detail: r.read(m, s, o).combined
    return readings


def evaluate_candidates(model: CoreModel, items: list, progress: bool, only: list[str] | None = None) -> dict[str, list[dict]]:
    """Every candidate reading (or those ``only`` names) on every item, from one encoder pass per item."""
    readings = {label: read for label, read in candidates(model).items() if only is None or label in only}
    encoder = CoreRegionReader(model)
    rows: dict[str, list[dict]] = {label: [] for label in readings}
    for number, (name, kind, image, mask) in enumerate(items):
        started = time.perf_counter()
        maps, shape = encoder.feature_maps(image)
        forward = time.perf_counter() - started
        for label, read in readings.items():
            started = time.perf_counter()
            with torch.inference_mode():
                realness = combine_scales([read(maps, shape, tuple(image.shape[-2:]))]).numpy()
            seconds = forward + time.perf_counter() - started
            rows[label].append(
                {"image": name, "kind": kind, "auc": pixel_auc(1 - realness, mask), "hit": pointing_hit(realness, mask), "seconds": seconds}
            )
        if progress and number % 10 == 0:
            print(f"  {number}/{len(items)}", file=sys.stderr, flush=True)
    return rows


def evaluate(read: Callable, model: CoreModel, items: list, progress: bool) -> list[dict]:
    rows = []
    for number, (name, kind, image, mask) in enumerate(items):
        started = time.perf_counter()
        realness = read(model, image)
        seconds = time.perf_counter() - started
        rows.append(
            {"image": name, "kind": kind, "auc": pixel_auc(1 - realness, mask), "hit": pointing_hit(realness, mask), "seconds": seconds}
        )
        if progress and number % 10 == 0:
            print(f"  {number}/{len(items)} {name} {kind} auc {rows[-1]['auc']:.3f}", file=sys.stderr, flush=True)
    return rows


def summarize(rows: list[dict], kinds: list[str]) -> dict[str, float]:
    summary = {}
    for kind in kinds:
        of_kind = [row for row in rows if row["kind"] == kind]
        summary[f"{kind} AUC"] = float(np.mean([row["auc"] for row in of_kind]))
        summary[f"{kind} pointing"] = float(np.mean([row["hit"] for row in of_kind]))
    summary["s / image"] = float(np.mean([row["seconds"] for row in rows]))
    return summary


def fold_scores(rows: list[dict], folds: int = 5) -> list[float]:
    """Per fold of the photographs: the mean over the target kinds of their mean AUC."""
    names = sorted({row["image"] for row in rows})
    result = []
    for fold in range(folds):
        held = set(names[fold::folds])
        chosen = [row for row in rows if row["image"] in held]
        result.append(float(np.mean([np.mean([r["auc"] for r in chosen if r["kind"] == kind]) for kind in TARGETS])))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--images", type=int, default=16, help="photographs to plant regions in")
    parser.add_argument("--kinds", nargs="+", default=["blur", "noise", "splice_ai", "splice_photo", "jpeg", "colour"])
    parser.add_argument("--root", default=None, help="RAISE-TD folder")
    parser.add_argument("--clip", default=None, metavar="DIR", help="a local CLIP directory: adds DREAM with it")
    parser.add_argument("--candidates", action="store_true", help="compare the candidate readings (train split)")
    parser.add_argument("--only", nargs="+", default=None, metavar="LABEL", help="with --candidates: only these readings")
    parser.add_argument("--name", default=None, help="results file stem")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    command = "python benchmarks/localization.py " + shlex.join(sys.argv[1:])
    torch.set_num_threads(2)
    try:
        items = list(planted_set(args.split, args.images, args.kinds, args.root))
    except DatasetNotFoundError as error:
        print(f"localization: skipped, RAISE-TD is not here ({error})", file=sys.stderr)
        return 0
    model = CoreModel.from_pretrained("realness-core-lite")
    skipped = {}
    if args.candidates:
        per_image = evaluate_candidates(model, items, args.progress, only=args.only)
    else:
        methods = {"core": core_method()}
        if args.clip:
            methods["dream (CLIP, stride 8)"] = dream_method(args.clip)
        else:
            skipped["dream"] = "no local CLIP weights (pass --clip DIR)"
        per_image = {}
        for label, read in methods.items():
            print(f"{label} ...", file=sys.stderr, flush=True)
            per_image[label] = evaluate(read, model, items, args.progress)
    table = []
    for label, rows in per_image.items():
        row = {"method": label, **summarize(rows, args.kinds)}
        if args.split == "train":
            scores = fold_scores(rows)
            row["CV target mean AUC"] = f"{np.mean(scores):.3f} ± {np.std(scores):.3f}"
        table.append(row)
        print(row, file=sys.stderr, flush=True)
    if args.split == "test" and not args.candidates:
        photos = [path for path in load_raise_td(args.root, split="test").paths if path.name.startswith("r")][: args.images]
        print("folder speed ...", file=sys.stderr, flush=True)
        speed = folder_speed(photos)
        print(speed, file=sys.stderr, flush=True)
    else:
        speed = {}
    name = args.name or ("localization" if args.split == "test" else "localization_train")
    results = {
        "rows": table,
        "split": args.split,
        "photographs": args.images,
        "region": f"{REGION} x {REGION} px",
        "targets (mean pixel AUC)": ", ".join(f"{kind} >= {value}" for kind, value in TARGETS.items()),
        **{f"skipped {key}": value for key, value in skipped.items()},
        **speed,
        "per_image": per_image,
    }
    results["columns"] = ["method"] + [key for key in table[0] if key != "method"]
    write_results(RESULTS, name, results, command=command, hardware="2-core CPU VM")
    return 0


def folder_speed(paths: list[Path], repeats: int = 2) -> dict[str, float]:
    """Wall seconds of ``realness score`` and ``realness map --method core`` on one folder (CLI, best of ``repeats``)."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        for path in paths:
            shutil.copy(path, folder / path.name)
        commands = {
            "score": ["score", str(folder), "--out", str(Path(scratch) / "scores.csv"), "--no-progress"],
            "map": ["map", str(folder), "--method", "core", "--out", str(Path(scratch) / "maps"), "--no-progress"],
        }
        best = {name: float("inf") for name in commands}
        for _ in range(repeats):
            for name, argv in commands.items():
                shutil.rmtree(Path(scratch) / "maps", ignore_errors=True)
                (Path(scratch) / "scores.csv").unlink(missing_ok=True)
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "realness.cli", *argv], check=True, capture_output=True)
                best[name] = min(best[name], time.perf_counter() - started)
    return {
        "folder images": len(paths),
        "realness score, s": best["score"],
        "realness map --method core, s": best["map"],
        "map / score wall time": best["map"] / best["score"],
    }


def core_method() -> Callable:
    from realness.dream.mapper import RealnessMapper

    mappers: dict[int, RealnessMapper] = {}

    def read(model: CoreModel, image: torch.Tensor) -> np.ndarray:
        if id(model) not in mappers:
            mappers[id(model)] = RealnessMapper(method="core", core_model=model, device="cpu")
        return mappers[id(model)](image).map

    return read


def dream_method(clip: str) -> Callable:
    from realness.dream.mapper import RealnessMapper

    mapper = RealnessMapper(clip, stride=8, device="cpu")
    description = "Somewhat. Part of the image looks blurred, noisy or pasted in."

    def read(model: CoreModel, image: torch.Tensor) -> np.ndarray:
        return mapper(image, description).map

    return read


if __name__ == "__main__":
    raise SystemExit(main())
