"""The seams a user meets first, through the CLI: tables that match nothing, warnings in flags, compare's order, the pytest extra."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

from realness.cli import main

REPO = Path(__file__).resolve().parents[1]


def save_noise_png(path: Path, seed: int) -> Path:
    """A 40 x 48 random RGB PNG at ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def images(tmp_path) -> Path:
    for index in range(3):
        save_noise_png(tmp_path / "images" / f"img{index}.png", index)
    return tmp_path / "images"


@pytest.mark.parametrize("command", ["score", "filter"])
def test_a_table_that_matches_no_image_is_one_line_and_exit_2_naming_both_sides(command, tmp_path, images, tiny_model_dir, capsys):
    table = tmp_path / "other.csv"
    table.write_text("path,description\nshots/a.png,No.\nshots/b.png,Yes. Six fingers.\n")
    out = tmp_path / "out.csv"
    status = main([command, str(images), "--descriptions", str(table), "--model", str(tiny_model_dir), "--device", "cpu",
                   "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "none of its 2 rows matches any of the 3 images" in err[0]
    assert "shots/a.png" in err[0] and "img0.png" in err[0] and "--descriptions" in err[0]
    assert not out.exists()


def test_the_image_only_warning_speaks_flags_and_names_only_scored_images_without_text(tmp_path, images, tiny_model_dir, capsys):
    (images / "broken.png").write_bytes(b"not a png")
    table = tmp_path / "texts.csv"
    table.write_text("path,description\nimg0.png,No.\nimg1.png,No.\n")
    argv = ["score", str(images), "--descriptions", str(table), "--model", str(tiny_model_dir), "--device", "cpu",
            "--no-progress", "--out", str(tmp_path / "s.csv")]
    assert main(argv) == 1  # broken.png failed
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line and "without a description" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("realness score: warning: 1 of 4 images scored without a description")
    assert "img2.png" in warnings[0] and "broken.png" not in warnings[0] and "img0.png" not in warnings[0]
    assert "--descriptions TABLE" in warnings[0] and "--describer" in warnings[0] and "descriptions=" not in warnings[0]

    # Every scored image has a text; only the broken file lacks one: nothing to warn about.
    table.write_text("path,description\nimg0.png,No.\nimg1.png,No.\nimg2.png,No.\n")
    assert main([*argv[:-1], str(tmp_path / "s2.csv")]) == 1
    assert "without a description" not in capsys.readouterr().err


def test_compare_lists_pairs_in_the_order_of_its_summary(tmp_path, tiny_model_dir):
    for generator, offset in (("alpha", 0), ("beta", 10), ("gamma", 20)):
        for index in range(4):
            save_noise_png(tmp_path / "outputs" / generator / f"p{index}.png", index + offset)
    report = tmp_path / "report"
    assert main(["compare", str(tmp_path / "outputs"), "--model", str(tiny_model_dir), "--device", "cpu", "--quiet",
                 "--bootstrap", "100", "--out-dir", str(report)]) == 0
    ranked = [row["generator"] for row in csv.DictReader((report / "summary.csv").open())]
    pairs = [(row["first"], row["second"]) for row in csv.DictReader((report / "comparisons.csv").open())]
    assert pairs == [(ranked[0], ranked[1]), (ranked[0], ranked[2]), (ranked[1], ranked[2])]


def test_the_pytest_extra_brings_what_the_baseline_fixture_needs(tmp_path):
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("pytest") for requirement in extras["pytest"])
    assert 'pip install "realness[pytest]"' in (REPO / "README.md").read_text()
    # Where pytest is installed, the installed package's plugin offers the fixture to any project.
    listed = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "realness_baseline" in listed.stdout, listed.stdout[-2000:] + listed.stderr[-2000:]
