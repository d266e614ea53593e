"""``realness map``: the subcommand end to end on a tiny random CLIP."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from test_dream import save_tiny_clip, smooth_image


def run_map(argv: list[str]) -> int:
    return main(["map", *argv])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("cli-clip"))


def write_image(path, height=28, width=36, seed=0):
    pixels = (smooth_image(height, width, seed).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_map_writes_overlay_npy_and_figure(tmp_path, model_dir, capsys):
    image = write_image(tmp_path / "gen.png")
    out = tmp_path / "gen_map.png"
    code = run_map([str(image), "--description", "the reins merge", "--out", str(out), "--model", str(model_dir),
                    "--window-sizes", "16", "8", "--stride", "4", "--npy", "--figure", "--no-progress"])
    assert code == 0
    assert Image.open(out).size[1] == 28
    raw = np.load(tmp_path / "gen_map.npy")
    assert raw.shape == (28, 36) and raw.min() == 0.0 and raw.max() == 1.0
    assert (tmp_path / "gen_figure.png").stat().st_size > 0


def test_map_several_images_with_a_csv_reports_bad_ones(tmp_path, model_dir, capsys):
    good = write_image(tmp_path / "a.png")
    tiny = write_image(tmp_path / "b.png", height=5, width=6)
    csv = tmp_path / "descriptions.csv"
    csv.write_text("filename,description\na.png,six fingers\nb.png,blurry text\n")
    code = run_map([str(good), str(tiny), "--descriptions", str(csv), "--out", str(tmp_path / "maps"),
                    "--model", str(model_dir), "--window-sizes", "16", "--stride", "8", "--no-progress"])
    assert code == 1
    assert (tmp_path / "maps" / "a_map.png").is_file() and not (tmp_path / "maps" / "b_map.png").exists()
    assert "skipped" in capsys.readouterr().err


def test_map_needs_a_description_source(tmp_path, model_dir, capsys):
    image = write_image(tmp_path / "gen.png")
    assert run_map([str(image), "--method", "dream", "--model", str(model_dir)]) == 2
    assert "--description" in capsys.readouterr().err
