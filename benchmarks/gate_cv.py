"""Choose how the kernel head falls off its training data, and measure its intervals, by k-fold CV on RAISE-TD train.

For every candidate (gate quantile, gate width, floor margin; ``no_gate`` is the head as it was)
and every held-out fold of the 510 training images: SROCC / PLCC of the held-out images with their
descriptions and image-only, the coverage and mean width of the 90 % interval (the head's own
cross-conformal calibration runs inside the training folds only), and the margin by which
degenerate images made from *training* photographs (:mod:`realness.evaluation.degenerate`) score
below the lowest held-out real photograph, image only and with the description "No.". Only
``NAMED`` kinds are looked at to choose; the other kinds are reported beside them. The test split
is never read here.

    python benchmarks/gate_cv.py [--repeats 5]

The training features come from the bundled head's stored rows (``core_features.features_from_head``:
the encoder outputs ``realness train`` fitted it on), so nothing but the degenerate images is encoded.
Each fold's head and its inner out-of-fold scores are computed once and shared by the candidates,
which differ only in how they are calibrated from them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from core_features import CACHE, features_from_head  # noqa: E402

from realness.core import DEFAULT_MODEL  # noqa: E402
from realness.core.model import CoreModel  # noqa: E402
from realness.data.splits import kfold  # noqa: E402
from realness.evaluation.degenerate import NAMED_KINDS, OTHER_KINDS, degenerate_image  # noqa: E402
from realness.evaluation.stats import plcc, srocc  # noqa: E402
from realness.io.inputs import load_image  # noqa: E402
from realness.training.trainer import TrainingConfig, out_of_fold_errors, train_core  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PHOTOS = 4  # training photographs each degenerate kind is made from (shuffled tiles differ per photo)


def is_real_photograph(path) -> bool:
    """RAISE-TD names its real photographs ``r*.png`` and the generated images ``f*.png``."""
    return Path(path).name.startswith("r")


def degenerate_features(model: CoreModel, data, cache: Path = CACHE) -> dict[str, torch.Tensor]:
    """kind -> ``PHOTOS x image_dim`` features of degenerate images made from the first real training photographs."""
    path = cache / "core-lite-degenerate-train.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    photos = [load_image(p) for p in data.paths if is_real_photograph(p)][:PHOTOS]
    encoder, out = model.image_encoder.eval(), {}
    with torch.inference_mode():
        for kind in {**NAMED_KINDS, **OTHER_KINDS}:
            shown = [degenerate_image(kind, photo, seed=k) for k, photo in enumerate(photos)]
            out[kind] = encoder(torch.stack([encoder.preprocess(x) for x in shown])).float()
    torch.save(out, path)
    return out


def candidates() -> dict[str, TrainingConfig]:
    base = TrainingConfig()
    rows = {"no_gate": dataclasses.replace(base, gate_quantile=1.0, gate_width=1e9)}
    for quantile in (0.95, 0.99, 1.0):
        for width in (0.25, 0.5, 1.0):
            rows[f"gate_q{quantile}_w{width}"] = dataclasses.replace(base, gate_quantile=quantile, gate_width=width)
    return rows


def fold_heads(model, features, mos, seeds):
    """Per fold: (head fitted on the other folds, its inner out-of-fold scores, held-out indices)."""
    plain = dataclasses.replace(TrainingConfig(), calibration_folds=0)
    folds = []
    for seed in seeds:
        for train_idx, held_idx in kfold(len(mos), 5, seed=seed):
            train = features.subset(train_idx)
            run = train_core(model.config, [None] * len(train_idx), mos[train_idx], [""] * len(train_idx),
                             config=plain, encoders_from=model, features=train, progress=False)
            inner = out_of_fold_errors(run.model, train, torch.as_tensor(mos[train_idx]), TrainingConfig())
            folds.append((run.model.head, inner, float(mos[train_idx].min()), held_idx))
            print(f"fold {len(folds)} fitted", file=sys.stderr, flush=True)
    return folds


def run_candidate(config, folds, features, mos, real, degenerate, no_text) -> list[dict]:
    rows = []
    for head, (nearness, errors_with_text, errors_image_only), lowest_target, held_idx in folds:
        head.calibrate(nearness, errors_with_text, errors_image_only, floor=lowest_target - config.floor_margin,
                       gate_quantile=config.gate_quantile, gate_width=config.gate_width)
        held = features.subset(held_idx)
        row: dict[str, float] = {}
        real_held = real[held_idx]
        with torch.inference_mode():
            for suffix, text, flag in (("", held.text, True), ("_image_only", held.empty_text.expand(len(held_idx), -1), False)):
                out = head.predict(held.image[0], text, torch.full((len(held_idx),), flag), level=0.9).numpy()
                score, low, high = out[:, 0], out[:, 1], out[:, 2]
                truth = mos[held_idx]
                row["srocc" + suffix] = float(srocc(score, truth))
                row["plcc" + suffix] = float(plcc(score, truth))
                row["coverage" + suffix] = float(np.mean((low <= truth) & (truth <= high)))
                row["width" + suffix] = float(np.mean(high - low))
                lowest_real = float(score[real_held].min())
                for group, kinds in (("named", NAMED_KINDS), ("other", OTHER_KINDS)):
                    worst = -np.inf
                    for kind in kinds:
                        x = degenerate[kind]
                        t = (no_text if flag else held.empty_text).expand(len(x), -1)
                        worst = max(worst, float(head(x, t, torch.full((len(x),), flag)).max()))
                    # > 0: every degenerate image of the group scores below the lowest real photograph
                    row[f"margin_{group}{'_no' if flag else '_image_only'}"] = lowest_real - worst
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="5-fold CV repeated over this many seeds")
    parser.add_argument("--only", default=None, help="run only this candidate")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = CoreModel.from_pretrained(DEFAULT_MODEL)
    features, data = features_from_head(model)
    mos = np.asarray(data.mos, dtype=np.float32)
    real = np.asarray([is_real_photograph(p) for p in data.paths])
    degenerate = degenerate_features(model, data)
    with torch.inference_mode():
        no_text = model.encode_texts(["No."]).float()
    out_json = RESULTS / "gate_cv.json"
    records = json.loads(out_json.read_text()) if out_json.exists() else []
    started = time.time()
    folds = fold_heads(model, features, mos, range(args.repeats))
    shared = (time.time() - started) / 60
    for name, config in candidates().items():
        if args.only and name != args.only:
            continue
        started = time.time()
        rows = run_candidate(config, folds, features, mos, real, degenerate, no_text)
        record = {
            "candidate": name + (f" ({args.repeats}x5-fold)" if args.repeats > 1 else ""),
            "folds": len(rows),
            **{k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])),
                   float(np.min([r[k] for r in rows]))] for k in rows[0]},
            "minutes": (time.time() - started) / 60 + shared,
            "command": " ".join(["python", "benchmarks/gate_cv.py", *sys.argv[1:]]),
            "hardware": f"2-core CPU VM ({platform.machine()}), shared",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
        records = [r for r in records if r["candidate"] != record["candidate"]] + [record]
        out_json.write_text(json.dumps(records, indent=1) + "\n")
        write_table(records)
        print(f"{record['candidate']}: SROCC {record['srocc'][0]:.3f} img-only {record['srocc_image_only'][0]:.3f} "
              f"cover {record['coverage'][0]:.3f}/{record['coverage_image_only'][0]:.3f} "
              f"margin named {record['margin_named_image_only'][2]:.3f}/{record['margin_named_no'][2]:.3f} "
              f"other {record['margin_other_image_only'][2]:.3f}/{record['margin_other_no'][2]:.3f}", flush=True)


def write_table(records: list[dict]) -> None:
    f = lambda r, k: f"{r[k][0]:.3f} ± {r[k][1]:.3f}"  # noqa: E731
    lines = [
        "# Off the training data: gate and intervals of the kernel head, k-fold CV on RAISE-TD train (510 images)",
        "",
        "Generated by `benchmarks/gate_cv.py` from `gate_cv.json` (mean ± std over folds; the test split is not read).",
        "`cover`: share of held-out images whose MOS lies in the 90 % interval (calibrated inside the training folds); "
        "`width`: its mean width. `margin`: lowest held-out real photograph's score minus the highest degenerate image's "
        "(made from training photographs), worst fold (min over folds; > 0: every degenerate image below every real "
        "photograph): named kinds (chosen on) / other kinds (never chosen on), image only and with \"No.\".",
        "",
        "| candidate | SROCC | SROCC img-only | cover / width | cover / width img-only | margin named img / No. "
        "| margin other img / No. | min | date |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        lines.append(
            f"| {r['candidate']} | {f(r, 'srocc')} | {f(r, 'srocc_image_only')} | {r['coverage'][0]:.3f} / {r['width'][0]:.2f} "
            f"| {r['coverage_image_only'][0]:.3f} / {r['width_image_only'][0]:.2f} "
            f"| {r['margin_named_image_only'][2]:+.2f} / {r['margin_named_no'][2]:+.2f} "
            f"| {r['margin_other_image_only'][2]:+.2f} / {r['margin_other_no'][2]:+.2f} | {r['minutes']:.1f} | {r['date']} |"
        )
    lines += ["", "Commands: see `command` in gate_cv.json; hardware: 2-core CPU VM shared with other jobs, no GPU."]
    (RESULTS / "gate_cv.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
