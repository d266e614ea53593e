"""Choose how the kernel head scores images unlike its training data, and measure its intervals, by 5-fold CV on RAISE-TD train.

For every candidate recipe and every held-out fold of the 510 training images: SROCC / PLCC of the
held-out images with their descriptions and image-only, the coverage and mean width of the 90 %
interval (the head's own cross-conformal calibration runs inside the training folds only), and the
margin by which degenerate images made from *training* photographs
(:mod:`realness.evaluation.degenerate`) score below the lowest held-out real photograph, image only
and with the description "No.". The named kinds and the other kinds are reported apart: the negatives
a candidate trains on (``TRAINING_KINDS``: random colours, noise, checkerboards, tile grids) are never
exactly a named kind, and the other kinds are of kinds never trained on. The test split is never read.

Candidates: ``no_gate`` is the head as it was. ``gate_qQ_wW`` (+intervals rows, measured first, with a
gate since removed) blended toward a floor below every training MOS as an image's nearness to the
training rows passed the Q quantile of held-out training images' (closed at 1 + W times it).
``negatives_wW_mM_nN``: N images of each training kind as rows of the score regressors, target lowest
MOS - M, weight W, and no gate. ``unreal_uU_wW``: the negatives (16 per kind) learned by the ``unreal``
regressor; the score blends toward lowest MOS - 0.5 from the highest held-out ``unreal`` to U above it;
W > 0 also puts the negatives in the score regressors at that weight.

    python benchmarks/off_distribution_cv.py [--only NAME] [--intervals]

The training features come from the bundled head's stored rows (``core_features.features_from_head``:
the encoder outputs ``realness train`` fitted it on), so only the degenerate images and the negatives
are encoded (cached). ``--intervals`` also runs the inner 5-fold calibration in every fold (coverage;
about 5 times slower), which the candidates without it leave out.
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
from realness.training.trainer import TrainingConfig, _encode_negatives, out_of_fold_errors, train_core  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PHOTOS = 4  # training photographs each content-free degenerate kind is made from
PER_FOLD = 5  # held-out real photographs per fold that the kinds made from a photograph are made from
PHOTO_KINDS = ("shuffled tiles 8x8", "shuffled tiles 4x4", "shuffled tiles 16x16", "shuffled pixels")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


def negative_features(model: CoreModel, data, config: TrainingConfig, cache: Path = CACHE):
    """``(negatives, their source images)`` as ``realness train`` encodes them for ``config`` (cached)."""
    path = cache / f"core-lite-negatives-{config.negatives_per_kind}-{'-'.join(config.negatives)}.pt".replace(" ", "_")
    if not path.exists():
        with torch.inference_mode():
            negatives, sources = _encode_negatives(model.image_encoder.eval(), data.paths, config, torch.device("cpu"), True)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"negatives": negatives, "sources": sources}, path)
    saved = torch.load(path, weights_only=True)
    return saved["negatives"], saved["sources"]


def held_out_photo_features(model: CoreModel, data, mos, cache: Path = CACHE) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """kind -> (features, source image) of :data:`PHOTO_KINDS` made from ``PER_FOLD`` real photographs of each
    held-out fold (5-fold, seed 0): a fold's head never saw the photograph its tiles come from."""
    path = cache / "core-lite-degenerate-held-out-photos.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    sources = [i for _, held in kfold(len(mos), 5, seed=0) for i in [j for j in held if is_real_photograph(data.paths[j])][:PER_FOLD]]
    encoder, out = model.image_encoder.eval(), {}
    with torch.inference_mode():
        photos = [load_image(data.paths[i]) for i in sources]
        for kind in PHOTO_KINDS:
            shown = [degenerate_image(kind, photo, seed=k) for k, photo in enumerate(photos)]
            out[kind] = (torch.cat([encoder(encoder.preprocess(x).unsqueeze(0)) for x in shown]).float(), torch.as_tensor(sources))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


def candidates() -> dict[str, TrainingConfig]:
    base = dataclasses.replace(TrainingConfig(), negatives=())
    rows = {"no_gate": base}
    negatives = dataclasses.replace(base, negatives=TrainingConfig().negatives)
    for width in (0.1, 0.3, 0.6):
        for weight in (0.0, 0.3):
            rows[f"unreal_u{width}_w{weight}"] = dataclasses.replace(negatives, unreal_width=width, negative_weight=weight)
    # Kinds made from a photograph, from held-out photographs (the rows above made them from training photographs).
    for per_kind in (16, 48):
        for width in (0.05, 0.1, 0.3):
            rows[f"unreal_u{width}_w0.0_n{per_kind}_heldout"] = dataclasses.replace(
                negatives, unreal_width=width, negatives_per_kind=per_kind)
    # The negatives in the score regressors alone (their unreal regressor left out: an infinite width).
    negatives = dataclasses.replace(negatives, unreal_width=float("inf"))
    for weight in (0.3, 1.0, 3.0):
        for margin in (0.5, 1.5):
            for per_kind in (16,):
                rows[f"negatives_w{weight}_m{margin}_n{per_kind}"] = dataclasses.replace(
                    negatives, negative_weight=weight, floor_margin=margin, negatives_per_kind=per_kind)
    rows["negatives_w1.0_m0.5_n32"] = dataclasses.replace(negatives, negative_weight=1.0, floor_margin=0.5, negatives_per_kind=32)
    return rows


def fold_heads(config, model, features, mos, seeds) -> list:
    """Per fold: (head fitted on the other folds, its inner out-of-fold scores or None, held-out indices)."""
    plain = dataclasses.replace(config, calibration_folds=0)
    folds = []
    for seed in seeds:
        for train_idx, held_idx in kfold(len(mos), 5, seed=seed):
            train = features.subset(train_idx)
            run = train_core(model.config, [None] * len(train_idx), mos[train_idx], [""] * len(train_idx),
                             config=plain, encoders_from=model, features=train, progress=False)
            inner = (out_of_fold_errors(run.model, train, torch.as_tensor(mos[train_idx]), config)
                     if config.calibration_folds >= 2 else None)
            folds.append((run.model.head, inner, held_idx))
            print(f"  fold {len(folds)} fitted", file=sys.stderr, flush=True)
    return folds


def fit_key(config: TrainingConfig) -> tuple:
    """What the fitted heads depend on (the gate width and the interval only on calibration)."""
    return (config.negatives, config.negatives_per_kind, config.negative_weight, config.floor_margin, config.calibration_folds)


def run_candidate(config, folds, features, mos, real, degenerate, no_text) -> list[dict]:
    rows = []
    for head, inner, held_idx in folds:
        if inner is not None:
            head.calibrate(*inner, floor=float(mos.min()) - config.floor_margin, near_quantile=config.near_quantile,
                           unreal_width=config.unreal_width)
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
                if inner is not None:
                    row["coverage" + suffix] = float(np.mean((low <= truth) & (truth <= high)))
                    row["width" + suffix] = float(np.mean(high - low))
                lowest_real = float(score[real_held].min())
                for group, kinds in (("named", NAMED_KINDS), ("other", OTHER_KINDS)):
                    worst = -np.inf
                    for kind in kinds:
                        x = degenerate[kind]
                        if isinstance(x, tuple):  # made from photographs: only those of this held-out fold
                            x = x[0][torch.isin(x[1], torch.as_tensor(held_idx))]
                        t = (no_text if flag else held.empty_text).expand(len(x), -1)
                        worst = max(worst, float(head(x, t, torch.full((len(x),), flag)).max()))
                    # > 0: every degenerate image of the group scores below the lowest held-out real photograph
                    row[f"margin_{group}{'_no' if flag else '_image_only'}"] = lowest_real - worst
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="5-fold CV repeated over this many seeds")
    parser.add_argument("--only", default=None, help="run only these candidates (comma-separated)")
    parser.add_argument("--intervals", action="store_true", help="calibrate intervals inside every fold (coverage)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = CoreModel.from_pretrained(DEFAULT_MODEL)
    stored, data = features_from_head(model)
    mos = np.asarray(data.mos, dtype=np.float32)
    real = np.asarray([is_real_photograph(p) for p in data.paths])
    degenerate = degenerate_features(model, data)
    held_out_photos = None
    with torch.inference_mode():
        no_text = model.encode_texts(["No."]).float()
    out_json = RESULTS / "off_distribution_cv.json"
    records = json.loads(out_json.read_text()) if out_json.exists() else []
    wanted = args.only.split(",") if args.only else None
    fitted: dict[tuple, list] = {}
    for name, config in candidates().items():
        if wanted and name not in wanted:
            continue
        config = dataclasses.replace(config, calibration_folds=5 if args.intervals else 0)
        features = stored
        if config.negatives:
            negatives, sources = negative_features(model, data, config)
            features = dataclasses.replace(stored, negatives=negatives, negative_sources=sources)
        started = time.time()
        if name.endswith("_heldout"):
            held_out_photos = held_out_photos or held_out_photo_features(model, data, mos)
            degenerate = {**degenerate, **held_out_photos}
        if fit_key(config) not in fitted:
            fitted[fit_key(config)] = fold_heads(config, model, features, mos, range(args.repeats))
        rows = run_candidate(config, fitted[fit_key(config)], features, mos, real, degenerate, no_text)
        label = name + (f" ({args.repeats}x5-fold)" if args.repeats > 1 else "") + (" +intervals" if args.intervals else "")
        record = {
            "candidate": label,
            "folds": len(rows),
            **{k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])),
                   float(np.min([r[k] for r in rows]))] for k in rows[0]},
            "minutes": (time.time() - started) / 60,
            "command": " ".join(["python", "benchmarks/off_distribution_cv.py", *sys.argv[1:]]),
            "hardware": f"2-core CPU VM ({platform.machine()}), shared with other jobs",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
        records = [r for r in records if r["candidate"] != record["candidate"]] + [record]
        out_json.write_text(json.dumps(records, indent=1) + "\n")
        write_table(records)
        print(f"{label}: SROCC {record['srocc'][0]:.3f} img-only {record['srocc_image_only'][0]:.3f} "
              f"margin named {record['margin_named_image_only'][2]:.3f}/{record['margin_named_no'][2]:.3f} "
              f"other {record['margin_other_image_only'][2]:.3f}/{record['margin_other_no'][2]:.3f}", flush=True)


def write_table(records: list[dict]) -> None:
    f = lambda r, k: f"{r[k][0]:.3f} ± {r[k][1]:.3f}"  # noqa: E731
    cover = lambda r, k: f"{r['coverage' + k][0]:.3f} / {r['width' + k][0]:.2f}" if "coverage" + k in r else "–"  # noqa: E731
    lines = [
        "# Images unlike the training data, and intervals: 5-fold CV on RAISE-TD train (510 images)",
        "",
        "Generated by `benchmarks/off_distribution_cv.py` from `off_distribution_cv.json` (mean ± std over folds; "
        "the test split is not read). `cover / width`: share of held-out images whose MOS lies in the 90 % interval "
        "(calibrated inside the training folds) and its mean width (`+intervals` rows). `margin`: the lowest held-out "
        "real photograph's score minus the highest degenerate image's (made from training photographs), in the worst "
        "fold (> 0: every degenerate image below every real photograph of every fold): named kinds / other kinds "
        "(never trained on), image only and with \"No.\".",
        "",
        "| candidate | SROCC | SROCC img-only | cover / width | same, img-only | margin named img / No. "
        "| margin other img / No. | min | date |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        lines.append(
            f"| {r['candidate']} | {f(r, 'srocc')} | {f(r, 'srocc_image_only')} | {cover(r, '')} | {cover(r, '_image_only')} "
            f"| {r['margin_named_image_only'][2]:+.2f} / {r['margin_named_no'][2]:+.2f} "
            f"| {r['margin_other_image_only'][2]:+.2f} / {r['margin_other_no'][2]:+.2f} | {r['minutes']:.1f} | {r['date']} |"
        )
    lines += ["", "Commands: see `command` in off_distribution_cv.json; hardware: 2-core CPU VM shared with other jobs, no GPU."]
    (RESULTS / "off_distribution_cv.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
