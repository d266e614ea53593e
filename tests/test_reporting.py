"""Benchmark outputs: JSON with provenance, markdown tables, the prediction-vs-MOS scatter."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.evaluation import plotting, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # reporting is benchmark code
import reporting  # noqa: E402


def test_hardware_summary_describes_this_machine():
    summary = reporting.hardware_summary()
    assert summary["cores"] >= 1 and summary["cpu"]
    import torch

    assert summary["torch"] == torch.__version__
    assert (summary["gpu"] is None) == (not torch.cuda.is_available())


def test_markdown_table_formats_cells():
    table = reporting.markdown_table(
        [{"model": "image|text", "srocc": 0.77777, "ci": (0.6, 0.85)}, {"model": "x", "srocc": math.nan}],
        ["model", "srocc", "ci"],
    )
    assert table.splitlines() == [
        "| model | srocc | ci |",
        "| --- | --- | --- |",
        "| image\\|text | 0.7778 | [0.6000, 0.8500] |",
        "| x | - | - |",
    ]


def test_write_results_records_provenance_and_tables(tmp_path):
    rng = np.random.default_rng(0)
    mos = rng.normal(size=40)
    pred = mos + rng.normal(size=40)
    pred[5] = np.nan
    results = {
        **stats.evaluate(pred, mos, bootstrap=100),
        "rows": [{"model": "core", "srocc": np.float32(0.5)}, {"model": "image-only", "srocc": 0.25}],
        "predictions": pred,  # a long per-image list: JSON only
    }
    json_path, md_path = reporting.write_results(
        tmp_path / "out", "demo", results, command="python bench.py --seed 0", hardware="2-core CPU VM"
    )
    record = json.loads(json_path.read_text())
    assert record["command"] == "python bench.py --seed 0" and record["hardware"] == "2-core CPU VM"
    assert record["date_utc"].endswith("Z") and record["hardware_details"]["cores"] >= 1
    assert record["results"]["n_excluded"] == 1
    assert record["results"]["predictions"][5] is None  # NaN written as null, valid JSON
    assert record["results"]["rows"][0]["srocc"] == 0.5
    markdown = md_path.read_text()
    assert "`python bench.py --seed 0`" in markdown and "2-core CPU VM" in markdown
    assert "| core | 0.5000 |" in markdown and "| n_excluded | 1 |" in markdown
    assert "| srocc_ci | [" in markdown and "predictions" not in markdown


def test_write_results_detects_hardware_when_not_given(tmp_path):
    json_path, _ = reporting.write_results(tmp_path, "auto", {"srocc": 0.5}, command="x")
    record = json.loads(json_path.read_text())
    assert record["hardware_details"]["cpu"] in record["hardware"]


def test_scatter_plot_writes_png(tmp_path):
    rng = np.random.default_rng(1)
    mos = rng.normal(size=60)
    pred = np.tanh(mos) + 0.2 * rng.normal(size=60)
    pred[0] = np.nan
    path = reporting.scatter_plot(pred, mos, tmp_path / "plots" / "scatter.png", "CORE, RAISE-TD test")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 300
        # Not a blank canvas: points and the fitted curve put many colours on it.
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 50
    with pytest.raises(stats.StatsInputError):
        reporting.scatter_plot([1.0, np.nan], [1.0, 2.0], tmp_path / "bad.png", "too few")


def test_figures_are_drawn_in_one_style_that_leaves_matplotlib_settings_alone(tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    with plotting.styled_figure((2, 1.5)) as figure:
        axes = figure.add_subplot()
        (line,) = axes.plot([0, 1], [0, 1])
        axes.set_title("t")
    assert axes.title.get_fontsize() == plotting.STYLE["axes.titlesize"]
    assert matplotlib.colors.to_hex(line.get_color()) == plotting.COLORS[0]
    assert dict(matplotlib.rcParams) == before
    with Image.open(plotting.save_figure(figure, tmp_path / "figure.png")) as image:
        assert image.size == (2 * plotting.DPI, round(1.5 * plotting.DPI))
    assert plotting.save_figure(figure, tmp_path / "figure.pdf").read_bytes().startswith(b"%PDF")
