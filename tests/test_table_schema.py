"""One schema for every table realness writes, declared here once and checked against every writer (local and Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from realness.cli import main
from realness.io.tables import read_table
from test_cli_seams import save_noise_png
from test_distributed import local_ray  # noqa: F401 - the Ray fixture of that module, shared

# The schema, written out here (not imported) so a writer that drifts from it fails.
SCORE = ["path", "score", "score_low", "score_high", "description", "verdict", "error"]
DESCRIBE = ["path", "description", "verdict", "error"]
FILTER = ["rank", "path", "score", "score_low", "score_high", "kept", "description", "verdict", "error"]
COMPARE = ["path", "generator", "prompt_id", "score", "score_low", "score_high", "description", "verdict", "error"]
RAY_SCORE = [*SCORE, "scorer", "scorer_version"]
RAY_DESCRIBE = ["path", "image_sha256", "description", "verdict", "error", "describer", "prompt_id", "cached"]
#: Words that meant several things before 0.2; no table has them as a column.
RETIRED = {"model", "model_version", "MOS"}


@pytest.fixture
def folder(tmp_path) -> Path:
    for index in range(3):
        save_noise_png(tmp_path / "images" / f"img{index}.png", index)
    (tmp_path / "descriptions.csv").write_text("path,description\nimg0.png,No.\nimg1.png,Yes. A smeared sky.\nimg2.png,No.\n")
    return tmp_path


def _columns(path: Path) -> list[str]:
    return list(read_table(path).columns)


def test_local_writers_share_the_schema(folder, tiny_model_dir):
    images, table = folder / "images", folder / "descriptions.csv"
    common = ["--model", str(tiny_model_dir), "--device", "cpu", "--quiet"]
    assert main(["score", str(images), "--descriptions", str(table), *common, "--out", str(folder / "s.csv")]) == 0
    assert main(["filter", str(images), "--descriptions", str(table), *common, "--out", str(folder / "f.csv")]) == 0
    describer = f"static:{table}"
    assert main(["describe", str(images), "--describer", describer, "--no-progress", "--out", str(folder / "d.csv")]) == 0
    for model in ("gen-a", "gen-b"):
        for index in range(3):
            save_noise_png(folder / "outputs" / model / f"p{index}.png", index + (10 if model == "gen-b" else 0))
    assert main(["compare", str(folder / "outputs"), *common, "--out", str(folder / "c.csv")]) == 0
    written = {name: _columns(folder / name) for name in ("s.csv", "f.csv", "d.csv", "c.csv")}
    assert written == {"s.csv": SCORE, "f.csv": FILTER, "d.csv": DESCRIBE, "c.csv": COMPARE}
    assert all(not RETIRED & set(columns) for columns in written.values())
    described = read_table(folder / "d.csv").rows
    assert [row["verdict"] for row in described] == ["no", "yes", "no"]


@pytest.mark.usefixtures("local_ray")
def test_ray_writers_extend_the_local_schema(folder, tiny_model_dir):
    pq = pytest.importorskip("pyarrow.parquet")
    images, table = folder / "images", folder / "descriptions.csv"
    out = folder / "scores.parquet"
    argv = ["score", str(images), "--model", str(tiny_model_dir), "--engine", "ray", "--actors", "1",
            "--precision", "fp32", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    assert pq.read_table(out).schema.names == RAY_SCORE
    described = folder / "descriptions.parquet"
    argv = ["describe", str(images), "--describer", f"static:{table}", "--engine", "ray", "--actors", "1",
            "--no-description-cache", "--no-progress", "--out", str(described)]
    assert main(argv) == 0
    assert pq.read_table(described).schema.names == RAY_DESCRIBE


def test_ray_refuses_a_precision_it_cannot_honour(folder, tiny_model_dir, capsys):
    pytest.importorskip("ray")
    from realness.distributed import score_dataset

    with pytest.raises(Exception, match="precision='fp8'"):
        score_dataset(folder / "images", model=str(tiny_model_dir), precision="fp8", out=folder / "o.parquet")

