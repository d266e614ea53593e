"""Choose how the score learns "unlike any real scene" (issue 35), by cross-validation on RAISE-TD train only.

Six folds of the 510 training images; fold k also holds out degenerate family k
(``realness.training.negatives.FAMILIES``) from training, so every family is judged once by a model that
never saw it (leave one family out). Per candidate recipe, over the folds:

* SROCC / PLCC of the held-out images, with their descriptions and image only;
* per held-out family: the margin by which its highest image scores below the lowest held-out real
  photograph (image only and with the description "No."), > 0 meaning every image is below;
* on held-out training images (``train-checks``): the mean shift of each presentation change as a share of
  the held-out photo-AI gap, the share of gaming edits and degradations scored below their source, and
  the share of steps of the noise-blend and deblur paths at which the score rises;
* the interval's coverage and the Spearman correlation of its width with the absolute error.

    python benchmarks/score_notion_cv.py [--only NAME]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from score_notion_data import CACHE, load, training_data  # noqa: E402
from score_notion_features import EDITS, PRESENTATIONS  # noqa: E402

from realness.core.model import CoreModel  # noqa: E402
from realness.core.scene_statistics import DIM as SCENE_STATISTICS_DIM  # noqa: E402
from realness.data.splits import kfold  # noqa: E402
from realness.evaluation.stats import plcc, srocc  # noqa: E402
from realness.training.kernel_fit import fit_kernel_head  # noqa: E402
from realness.training.negatives import FAMILIES  # noqa: E402
from realness.training.trainer import FrozenFeatures, TrainingConfig  # noqa: E402

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Recipe:
    """A training recipe (``TrainingConfig`` fields) and which unlikeness components the score uses."""

    name: str
    training: dict = field(default_factory=dict)


#: The unlikeness components a score may use (each subset is judged from the same fitted heads) and the slopes.
COMPONENT_SETS = (("unreal",), ("distance",), ("statistics",), ("unreal", "distance"), ("unreal", "statistics"),
                  ("distance", "statistics"), ("unreal", "distance", "statistics"))
SLOPES = (1.0, 2.0, 3.0)
QUANTILES = (0.95, 0.99, 1.0)
VARIANTS = [(components, slope, q) for components in COMPONENT_SETS for slope in SLOPES for q in QUANTILES]


class Model:
    """A head fitted by the trainer's own closed-form path on one fold (penalty and intervals calibrated inside it)."""

    def __init__(self, recipe: Recipe, d: dict, train_idx: list[int], held_family: str | None):
        config = TrainingConfig(**{"calibration_folds": 3, **recipe.training})
        families = config.degradations
        idx = torch.as_tensor(train_idx)
        statistics = d["statistics"]
        views = torch.stack([torch.cat([d["views"][v], statistics], 1) for v in range(2)])
        blocks = {name: d["degraded"][k] for k, name in enumerate(d["families"])}
        for kind in ("gaming", "presentation"):
            block = torch.zeros_like(d["views"][0])
            mask = d["rows"].where(kind=kind)
            block[torch.tensor([label["source"] for label, m in zip(d["rows"].labels, mask) if m])] = d["rows"].features[mask]
            blocks[kind] = block
        zeros = torch.zeros(len(statistics), statistics.shape[1])
        degraded = torch.stack([torch.cat([blocks[name], zeros], 1) for name in families]) if families else None
        negatives = sources = None
        if config.negatives:
            keep = d["rows"].where(kind="negative") & ~d["rows"].where(family=held_family)
            negatives = torch.cat([d["rows"].features[keep], d["rows"].statistics[keep]], 1)
            sources = torch.tensor([label["source"] for label in d["rows"].labels])[keep]
        features = FrozenFeatures(views, d["text"], d["empty"], degraded, tuple(families), negatives, sources)
        model_config = copy.deepcopy(d["model"].config)
        model_config.image_encoder.scene_statistics = True
        model = CoreModel(model_config, encoders_from=d["model"])
        fit_kernel_head(model, features.subset(train_idx), d["mos"][idx], config, list(train_idx), [])
        self.head = model.head
        self.calibrations = {}
        for q in QUANTILES:  # the same out-of-fold values, thresholds at each quantile
            self.head.calibrate(*self.head.out_of_fold, slope=1.0, quantile=q)
            self.calibrations[q] = (self.head.unlikeness_high.clone(), self.head.unlikeness_spread.clone())

    def score(self, features: torch.Tensor, statistics: torch.Tensor, text: torch.Tensor, has_text: bool) -> dict:
        """Scores of every variant (components, slope), and the 90 % interval half-width with all components."""
        with torch.inference_mode():
            x = torch.cat([features, statistics], 1)
            raw, parts, kernel, flags = self.head.regress(x, text, torch.full((len(x),), has_text))
            out = {}
            for q, (high, spread) in self.calibrations.items():
                self.head.unlikeness_spread.copy_(spread)
                for components in COMPONENT_SETS:
                    used = torch.tensor([name in components for name in self.head.COMPONENTS])
                    self.head.unlikeness_high.copy_(torch.where(used, high, torch.tensor(float("inf"))))
                    past = self.head.unlikeness(parts)
                    out.update({(components, slope, q): raw - slope * torch.log1p(past) for slope in SLOPES})
            self.head.unlikeness_high.copy_(self.calibrations[1.0][0])
            self.head.unlikeness_spread.copy_(self.calibrations[1.0][1])
            past = self.head.unlikeness(parts)
            table = self.head.calibration_with_text if has_text else self.head.calibration_image_only
            out["half"] = self.head.quantile(table, 0.9) * self.head.expected_error(kernel, flags) * (1 + past)
            return out


def load_everything() -> dict:
    features, data, strengths, model, no_text = training_data()
    # The cached features are the 0.2 encoder's; with scene statistics the encoder's output grows by them.
    encoder = model.image_encoder
    encoder.config = dataclasses.replace(encoder.config, scene_statistics=True)
    encoder.dim += SCENE_STATISTICS_DIM
    rows = load("train-rows")

    return {
        "mos": torch.as_tensor(np.asarray(data.mos, dtype=np.float32)),
        "photo": torch.tensor([Path(p).name.startswith("r") for p in data.paths]),
        "views": features.image.float(), "text": features.text.float(), "empty": features.empty_text.float(), "no": no_text,
        "degraded": features.degraded.float(), "families": features.families, "strengths": strengths,
        "model": model,
        "rows": rows, "statistics": rows.extra["original_statistics"].float(),
        "checks": load("train-checks") if (CACHE / "notion-train-checks.pt").exists() else None,
    }


def empty_result() -> dict:
    return {"srocc": [], "plcc": [], "srocc_image_only": [], "plcc_image_only": [], "families": {},
            "presentation": {k: [] for k in PRESENTATIONS}, "edits": {k: [] for k in EDITS}, "blend": [], "deblur": [],
            "coverage": [], "coverage_image_only": [], "width_spearman": [], "width_spearman_image_only": []}


def evaluate(recipe: Recipe, d: dict) -> dict:
    """Per variant (components, slope), every fold's metrics (see the module docstring)."""
    names = list(FAMILIES)
    folds = kfold(len(d["mos"]), len(names), seed=0)
    out = {variant: empty_result() for variant in VARIANTS}
    checks = d["checks"]
    check_sources = [label["source"] for label in checks.labels] if checks else []
    check_kinds = [label["kind"] for label in checks.labels] if checks else []
    for k, (train_idx, held_idx) in enumerate(folds):
        family = names[k]
        model = Model(recipe, d, list(train_idx), family)
        held = torch.as_tensor(list(held_idx))
        held_set = set(held.tolist())
        stats, mos = d["statistics"][held], d["mos"][held].numpy()
        photos = d["photo"][held]
        scores = {}
        for mode, text, flag in (("", d["text"][held], True), ("_image_only", d["empty"].expand(len(held), -1), False)):
            scores[mode] = model.score(d["views"][0][held], stats, text, flag)
            error = (scores[mode][VARIANTS[-1]] - d["mos"][held]).abs()
            for slope in VARIANTS:
                result = out[slope]
                result["srocc" + mode].append(float(srocc(scores[mode][slope].numpy(), mos)))
                result["plcc" + mode].append(float(plcc(scores[mode][slope].numpy(), mos)))
                result["coverage" + mode].append(float((error <= scores[mode]["half"]).float().mean()))
                result["width_spearman" + mode].append(float(srocc(scores[mode]["half"].numpy(), error.numpy())))
        negatives = d["rows"].where(kind="negative") & d["rows"].where(family=family)
        margins: dict = {variant: {} for variant in VARIANTS}
        for mode, text, flag in (("image_only", d["empty"], False), ("no", d["no"], True)):
            real = model.score(d["views"][0][held][photos], stats[photos], text.expand(int(photos.sum()), -1), flag)
            fam = model.score(d["rows"].features[negatives], d["rows"].statistics[negatives], text.expand(int(negatives.sum()), -1), flag)
            for slope in VARIANTS:
                margins[slope][mode] = float(real[slope].min() - fam[slope].max())
                margins[slope][mode + "_share_below"] = float((fam[slope] < real[slope].min()).float().mean())
        for slope in VARIANTS:
            out[slope]["families"][family] = margins[slope]
        # Checks on held-out training images, image only: presentation shifts as a share of this fold's photo-AI gap.
        rows = [r for r, source in enumerate(check_sources) if source in held_set]
        if checks is None or not rows:
            continue
        index = torch.as_tensor(rows)
        checked = model.score(checks.features[index], checks.statistics[index], d["empty"].expand(len(rows), -1), False)
        for slope in VARIANTS:
            result = out[slope]
            by = {(check_kinds[r], check_sources[r]): float(v) for r, v in zip(rows, checked[slope])}
            own = {int(i): float(v) for i, v in zip(held.tolist(), scores["_image_only"][slope])}
            clean = scores["_image_only"][slope]
            gap = float(clean[photos].mean() - clean[~photos].mean())
            for kind in PRESENTATIONS:
                result["presentation"][kind] += [(v - own[src]) / gap for (name, src), v in by.items() if name == kind]
            for kind in EDITS:
                result["edits"][kind] += [float(v < own[src]) for (name, src), v in by.items() if name == kind]
            for src in {src for (name, src) in by if name.startswith("blend")}:
                path = [by[(f"blend{a / 10:.1f}", src)] for a in range(10)] + [own[src]]
                result["blend"] += [float(b > a) for a, b in zip(path, path[1:])]
                path = [by[(f"blur{sigma:g}", src)] for sigma in (32.0, 16.0, 8.0, 4.0, 2.0, 1.0, 0.5)] + [own[src]]
                result["deblur"] += [float(b > a) for a, b in zip(path, path[1:])]
    return out


def summary(out: dict) -> dict:
    def mean(values):
        return float(np.mean(values)) if len(values) else float("nan")

    row = {k: f"{np.mean(out[k]):.3f} ± {np.std(out[k]):.3f}" for k in ("srocc", "srocc_image_only", "coverage",
                                                                         "coverage_image_only", "width_spearman", "width_spearman_image_only")}
    row["family margins (image only / No.)"] = {name: f"{m['image_only']:+.2f} / {m['no']:+.2f}" for name, m in out["families"].items()}
    row["families all below"] = sum(m["image_only"] > 0 and m["no"] > 0 for m in out["families"].values())
    row["presentation shift (share of gap)"] = {k: round(mean(v), 3) for k, v in out["presentation"].items()}
    row["edits lower"] = {k: round(mean(v), 3) for k, v in out["edits"].items()}
    row["blend rises"], row["deblur rises"] = round(mean(out["blend"]), 3), round(mean(out["deblur"]), 3)
    return row


RECIPES = [
    Recipe("recipe 0.3 (presentation and gaming rows, 6 negative families)"),
    Recipe("no downscale rows", training={"degradations": ("blur", "noise", "jpeg", "gaming", "presentation")}),
    Recipe("without presentation and gaming rows", training={"degradations": ("blur", "noise", "jpeg", "downscale")}),
]


def write_markdown(results: dict, path: Path) -> None:
    """One row per variant: the numbers the recipe was chosen on."""
    header = ("| variant | SROCC | SROCC image only | families below (of 6) | worst family margin (image only / No.) | "
              "presentation shift, share of gap | edits lowered | blend / deblur rises | 90 % coverage | width-error Spearman |")
    lines = ["# score_notion_cv\n", "Generated by `python benchmarks/score_notion_cv.py` (6 folds of RAISE-TD train; fold k "
             "also holds out negative family k; the test split is never read). Mean ± std over folds; presentation shifts "
             "and edits on held-out training images, image only.\n", header, "|" + " --- |" * 10]
    for name, entry in results.items():
        row, raw = entry["summary"], entry["raw"]
        margins = [m["image_only"] for m in raw["families"].values()], [m["no"] for m in raw["families"].values()]
        lines.append(
            f"| {name} | {row['srocc']} | {row['srocc_image_only']} | {row['families all below']} | "
            f"{min(margins[0]):+.2f} / {min(margins[1]):+.2f} | "
            + ", ".join(f"{k} {v:+.2f}" for k, v in row["presentation shift (share of gap)"].items()) + " | "
            + ", ".join(f"{k} {v:.2f}" for k, v in row["edits lower"].items()) + " | "
            f"{row['blend rises']:.2f} / {row['deblur rises']:.2f} | {row['coverage']} / {row['coverage_image_only']} | "
            f"{row['width_spearman']} / {row['width_spearman_image_only']} |")
    first = next(iter(results.values()))
    lines += ["", f"- date (UTC): {first['date']}", f"- hardware: {first['hardware']}",
              f"- command: `{first['command']}`"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    d = load_everything()
    RESULTS.mkdir(exist_ok=True)
    results_path = RESULTS / "score_notion_cv.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for recipe in RECIPES:
        if args.only and args.only not in recipe.name:
            continue
        started = time.time()
        for (components, slope, q), out in evaluate(recipe, d).items():
            name = f"{recipe.name}; {' + '.join(components)}; slope {slope:g}; quantile {q:g}"
            results[name] = {"recipe": {"training": recipe.training, "components": components, "slope": slope, "quantile": q},
                             "summary": summary(out), "raw": out, "minutes": round((time.time() - started) / 60, 2),
                             "command": "python benchmarks/score_notion_cv.py",
                             "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "hardware": f"{platform.machine()} 2-core CPU VM, torch {torch.__version__}"}
            if components == COMPONENT_SETS[-1]:
                print(name, json.dumps(results[name]["summary"]), flush=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        write_markdown(results, RESULTS / "score_notion_cv.md")


if __name__ == "__main__":
    main()
