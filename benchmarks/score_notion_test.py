"""The final report of issue 35 on RAISE-TD's test split, with the bundled model (read once; nothing is tuned here).

Reads the ``test`` group of ``score_notion_features.py`` (the test images, their presentation copies and edits,
the noise-blend and deblur paths of test photographs, degenerate instances drawn by that script's own code) and
scores them with the bundled head, image only unless said otherwise:

1. accuracy: SROCC / PLCC with the descriptions and image only; 90 % interval coverage; Spearman of the
   interval's width with the absolute error (95 % bootstrap interval);
2. degenerate instances: each family's highest score against the lowest real test photograph, image only and
   with the description "No.";
3. the noise-blend and deblur paths: the share of steps at which the score rises; distinct values among the
   degenerate images;
4. edits: the share of test images each edit lowers;
5. presentation: each copy's mean score shift as a share of the photo-AI gap.

    python benchmarks/score_notion_test.py
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from score_notion_data import load  # noqa: E402
from score_notion_features import DEBLUR, EDITS, PRESENTATIONS  # noqa: E402

import realness  # noqa: E402
from realness.data.raise_td import load_raise_td  # noqa: E402
from realness.evaluation.stats import plcc, srocc  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    model = realness.RealnessScorer.from_pretrained().model
    head = model.head
    data = load_raise_td(split="test")
    group = load("test")
    kinds = [label["kind"] for label in group.labels]
    sources = [label["source"] for label in group.labels]
    x = torch.cat([group.features, group.statistics], 1)
    with torch.inference_mode():
        texts = model.encode_texts(list(data.descriptions)).float()
        empty, no = model.encode_texts(["", "No."]).float()

        def predict(rows, text=None, label=None):
            index = torch.as_tensor(rows)
            if text is None:
                text_rows, flags = (empty if label is None else label).expand(len(index), -1), torch.full((len(index),), label is not None)
            else:
                text_rows, flags = text, torch.ones(len(index), dtype=torch.bool)
            return head.predict(x[index], text_rows, flags)

    mos = np.asarray(data.mos, dtype=np.float64)
    photo = np.array([Path(p).name.startswith("r") for p in data.paths])
    original = {sources[r]: r for r, k in enumerate(kinds) if k == "original"}
    order = [original[i] for i in range(len(data))]
    report: dict = {"command": "python benchmarks/score_notion_test.py", "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "hardware": f"{platform.machine()} 2-core CPU VM, torch {torch.__version__}", "model": "realness-core-lite"}
    clean = {}
    for mode, text in (("with descriptions", texts), ("image only", None)):
        out = predict(order, text).numpy()
        clean[mode] = out[:, 0]
        error = np.abs(out[:, 0] - mos)
        half = (out[:, 2] - out[:, 1]) / 2
        rng = np.random.default_rng(0)
        boots = [srocc(half[pick], error[pick]) for pick in (rng.integers(0, len(mos), len(mos)) for _ in range(1000))]
        report[f"accuracy, {mode}"] = {
            "srocc": round(float(srocc(out[:, 0], mos)), 4), "plcc": round(float(plcc(out[:, 0], mos)), 4),
            "coverage_90": round(float(np.mean(error <= half)), 3), "mean_width": round(float(2 * half.mean()), 3),
            "width_spearman": f"{srocc(half, error):+.3f} [{np.percentile(boots, 2.5):+.3f}, {np.percentile(boots, 97.5):+.3f}]",
        }
    with torch.inference_mode():  # what the penalty costs on real and generated test images
        for mode, text in (("with descriptions", texts), ("image only", None)):
            flags = torch.full((len(order),), text is not None)
            raw = head.regress(x[torch.as_tensor(order)], texts if text is not None else empty.expand(len(order), -1), flags)[0]
            report[f"accuracy, {mode}"]["srocc without the penalty"] = round(float(srocc(raw.numpy(), mos)), 4)
    image_only = clean["image only"]
    gap = float(image_only[photo].mean() - image_only[~photo].mean())
    report["photo-AI gap, image only"] = round(gap, 4)
    lowest_real = {"image only": float(image_only[photo].min())}
    report["lowest real test photograph"] = {"image only": round(lowest_real["image only"], 4)}
    degenerate = [r for r, k in enumerate(kinds) if k == "degenerate"]
    families = sorted({group.labels[r]["family"] for r in degenerate})
    rows = {}
    with torch.inference_mode():
        real_no = predict([order[i] for i in np.flatnonzero(photo)], label=no)[:, 0]
    lowest_real["No."] = float(real_no.min())
    report["lowest real test photograph"]["No."] = round(lowest_real["No."], 4)
    all_degenerate = []
    for family in families:
        members = [r for r in degenerate if group.labels[r]["family"] == family]
        with torch.inference_mode():
            alone, with_no = predict(members)[:, 0], predict(members, label=no)[:, 0]
        all_degenerate += alone.tolist()
        rows[family] = {"images": len(members), "highest, image only": round(float(alone.max()), 4),
                        "highest, No.": round(float(with_no.max()), 4),
                        "all below every real photograph": bool(alone.max() < lowest_real["image only"] and with_no.max() < lowest_real["No."])}
    report["degenerate instances (test code, other sizes and seeds)"] = rows
    report["distinct values among degenerate images"] = f"{len(set(round(v, 6) for v in all_degenerate))} of {len(all_degenerate)}"
    by = {}
    with torch.inference_mode():
        scored = predict(list(range(len(kinds))))[:, 0].numpy()
    for r, (kind, source) in enumerate(zip(kinds, sources)):
        by[(kind, source)] = scored[r]
    rises = {"blend": [], "deblur": []}
    for source in {s for (k, s) in by if k.startswith("blend")}:
        path = [by[(f"blend{a / 10:.1f}", source)] for a in range(10)] + [image_only[source]]
        rises["blend"] += [b > a for a, b in zip(path, path[1:])]
        path = [by[(f"blur{sigma:g}", source)] for sigma in DEBLUR] + [image_only[source]]
        rises["deblur"] += [b > a for a, b in zip(path, path[1:])]
    report["paths: share of steps the score rises"] = {k: f"{np.mean(v):.3f} of {len(v)} steps" for k, v in rises.items()}
    report["edits: share of test images scored below their source"] = {
        name: round(float(np.mean([by[(name, i)] < image_only[i] for i in range(len(data))])), 3) for name in EDITS}
    report["presentation: mean shift as a share of the photo-AI gap"] = {
        name: round(float(np.mean([by[(name, i)] - image_only[i] for i in range(len(data))]) / gap), 3) for name in PRESENTATIONS}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score_notion_test.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# score_notion_test", "", f"- command: `{report['command']}`", f"- date (UTC): {report['date']}",
             f"- hardware: {report['hardware']}", "", "| measure | value |", "| --- | --- |"]
    for key, value in report.items():
        if isinstance(value, dict):
            lines += [f"| {key}: {name} | {entry if not isinstance(entry, dict) else json.dumps(entry)} |" for name, entry in value.items()]
        elif key not in ("command", "date", "hardware"):
            lines.append(f"| {key} | {value} |")
    (RESULTS / "score_notion_test.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
