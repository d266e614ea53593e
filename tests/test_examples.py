"""Every script in examples/ runs end to end on a tiny random CORE model."""

from __future__ import annotations

import csv
import runpy
from pathlib import Path

import pytest
from PIL import Image

from realness.core import CoreModel, RealnessScorer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example_main(name: str):
    """The ``main(argv)`` of an example script, loaded without running it."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")["main"]


def test_eval_loop_prints_the_mean_of_every_image(tiny_model_dir, capsys):
    assert example_main("eval_loop")(["--model", str(tiny_model_dir), "--keep-scores", "--size", "64", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mean realness: ") and lines[0].endswith("over 4 images")
    per_image = {line.split("\t")[0]: float(line.split("\t")[1]) for line in lines[1:]}
    assert sorted(per_image) == sorted(p.name for p in (EXAMPLES / "images").glob("*.png"))
    assert float(lines[0].split()[2]) == pytest.approx(sum(per_image.values()) / 4, abs=1e-4)


def test_filter_dataset_keeps_the_top_k(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "kept.csv"
    code = example_main("filter_dataset")(
        ["--model", str(tiny_model_dir), "--top-k", "2", "--out", str(out), "--export", str(tmp_path / "kept"), "--device", "cpu"]
    )
    assert code == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 2 and float(rows[0]["score"]) >= float(rows[1]["score"])
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted(Path(r["path"]).name for r in rows)
    edited = [r for r in rows if r["path"].endswith("chelsea_edited.png")]
    assert all(r["verdict"] == "yes" for r in edited)  # descriptions.csv is used
    # The ranking is the scorer's own, image by image.
    scorer = RealnessScorer(CoreModel.from_pretrained(tiny_model_dir), device="cpu")
    texts = {r["filename"]: r["description"] for r in csv.DictReader(open(EXAMPLES / "descriptions.csv"))}
    paths = sorted((EXAMPLES / "images").glob("*.png"))
    scores = scorer([str(p) for p in paths], [texts[p.name] for p in paths]).scores.tolist()
    best_two = sorted(zip(scores, [p.name for p in paths]), reverse=True)[:2]
    assert [Path(r["path"]).name for r in rows] == [name for _, name in best_two]
    assert "kept 2 of 4 images" in capsys.readouterr().out


def test_select_model_demo_layout_writes_a_report(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert example_main("select_model")(["--model", str(tiny_model_dir), "--out-dir", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| generator | n |") and all(f"| {m} | 4 |" in printed for m in ("original", "blurred", "noisy"))
    winners = list(csv.DictReader(open(out / "winners.csv")))
    assert len(winners) == 4 and {w["winner"] for w in winners} <= {"original", "blurred", "noisy"}
    assert Image.open(out / "summary.png").format == "PNG"
