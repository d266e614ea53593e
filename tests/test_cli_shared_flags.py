"""The shared flags mean the same on every subcommand: --out's suffix, --descriptions, --describer, --model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from realness.cli import main
from realness.io.tables import read_table
from test_dream import save_tiny_clip

pyarrow = pytest.importorskip("pyarrow", reason="pyarrow writes and reads Parquet tables (pip install 'realness[parquet]')")
pytest.importorskip("pyarrow.parquet")  # the tests below write Parquet files with it


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("shared-flags-clip"))


@pytest.fixture
def images(tmp_path):
    paths = []
    for index in range(3):
        array = np.random.default_rng(index).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        path = tmp_path / "images" / f"img{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def _static_describer(tmp_path, texts: dict[str, str]) -> str:
    """A ``static:`` describer that knows only ``texts`` (file name -> text): asked anything else, it fails."""
    table = tmp_path / "describer.csv"
    table.write_text("filename,description\n" + "".join(f"{name},{text}\n" for name, text in texts.items()))
    return f"static:{table}"


def test_out_suffix_decides_the_table_format(tmp_path, images, tiny_model_dir, capsys):
    tables = {}
    for suffix in (".csv", ".json", ".jsonl", ".parquet"):
        out = tmp_path / f"scores{suffix}"
        assert main(["score", *map(str, images), "--model", str(tiny_model_dir), "--device", "cpu", "--quiet", "--out", str(out)]) == 0
        tables[suffix] = read_table(out)
    json.loads((tmp_path / "scores.json").read_text())  # a JSON document, not CSV under a .json name
    assert pyarrow.parquet.ParquetFile(tmp_path / "scores.parquet").schema_arrow.names == ["path", "score", "score_low", "score_high", "description", "verdict", "error"]
    reference = tables.pop(".csv")
    for suffix, table in tables.items():
        assert table.columns == reference.columns, suffix
        assert [row["path"] for row in table.rows] == [row["path"] for row in reference.rows], suffix
        assert [float(row["score"]) for row in table.rows] == pytest.approx([float(row["score"]) for row in reference.rows], abs=1e-6)
        assert all(row["error"] in (None, "") for row in table.rows), suffix


def test_a_parquet_table_resumes_and_feeds_descriptions(tmp_path, images, tiny_model_dir):
    descriptions = tmp_path / "descriptions.parquet"
    pyarrow.parquet.write_table(
        pyarrow.table({"path": [str(p) for p in images], "description": ["melted hands", "six fingers", "no shadow"]}),
        descriptions,
    )
    out = tmp_path / "scores.parquet"
    argv = ["score", *map(str, images), "--model", str(tiny_model_dir), "--device", "cpu", "--quiet",
            "--descriptions", str(descriptions), "--out", str(out)]
    assert main(argv) == 0
    rows = read_table(out).rows
    assert [row["description"] for row in rows] == ["melted hands", "six fingers", "no shadow"]
    assert main([*argv, "--resume"]) == 0
    assert read_table(out).rows == rows


def test_describe_keeps_the_descriptions_it_is_given_and_describes_the_rest(tmp_path, images, capsys):
    known = tmp_path / "known.csv"
    known.write_text(f"path,description\n{images[0]},already written\n")
    describer = _static_describer(tmp_path, {"img1.png": "waxy skin", "img2.png": "floating cup"})
    out = tmp_path / "descriptions.jsonl"
    status = main(["describe", *map(str, images), "--describer", describer, "--descriptions", str(known),
                   "--batch-size", "1", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    # The static describer knows nothing of img0: had it been asked, describe would exit 1 naming it.
    assert status == 0, err
    rows = read_table(out).rows
    assert [row["path"] for row in rows] == [str(p) for p in images]
    assert [row["description"] for row in rows] == ["already written", "waxy skin", "floating cup"]
    assert "1 kept from" in err


def test_train_takes_the_shared_flags(tmp_path, images, tiny_model_dir, capsys):
    data = tmp_path / "ratings.csv"
    data.write_text("path,MOS,description\n" + "".join(f"{p},{i - 1.0},\n" for i, p in enumerate(images * 2)))
    own = tmp_path / "own.csv"
    own.write_text(f"path,description\n{images[0]},plastic look\n")
    describer = _static_describer(tmp_path, {"img1.png": "waxy skin"})  # img2 gets no description
    out = tmp_path / "trained"
    status = main(["train", "--csv", str(data), "--model", str(tiny_model_dir), "--descriptions", str(own),
                   "--describer", describer, "--no-description-cache", "--precision", "fp32", "--batch-size", "2",
                   "--epochs", "2", "--device", "cpu", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 0, err
    trained = json.loads((out / "config.json").read_text())
    source = json.loads((tiny_model_dir / "config.json").read_text())
    assert trained["image_encoder"]["name"] == source["image_encoder"]["name"]  # --model chose the encoders
    described = [line for line in err.splitlines() if "trains without a description" in line]
    assert len(described) == 2 and all("img2.png" in line for line in described)  # img2 twice; img1 described, img0 given
    history = json.loads((out / "training_history.json").read_text())
    assert history["training_config"]["precision"] == "fp32" and history["training_config"]["batch_size"] == 2


def test_map_refuses_one_description_for_several_images(tmp_path, images, clip_dir, capsys):
    status = main(["map", *map(str, images[:2]), "--description", "melted hands", "--model", str(clip_dir),
                   "--window-sizes", "16", "--stride", "8", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "maps")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "--descriptions" in err[0], err
    assert not (tmp_path / "maps").exists()


@pytest.mark.parametrize("command", ["score", "filter"])
def test_description_is_the_one_images_text(tmp_path, images, tiny_model_dir, command):
    out = tmp_path / "one.json"
    argv = [command, str(images[0]), "--description", "melted hands", "--model", str(tiny_model_dir),
            "--device", "cpu", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    [row] = json.loads(out.read_text())
    assert row["path"] == str(images[0]) and row["description"] == "melted hands"


def test_describe_model_names_the_describers_model(tmp_path, images, monkeypatch, capsys):
    from fake_openai import FakeOpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "described.csv"
    with FakeOpenAIServer() as server:
        status = main(["describe", str(images[0]), "--describer", f"openai:@{server.base_url}", "--model", "my-vlm",
                       "--no-description-cache", "--quiet", "--out", str(out)])
        asked = {request.body["model"] for request in server.chat_requests}
    assert status == 0, capsys.readouterr().err
    assert asked == {"my-vlm"} and read_table(out).rows[0]["description"]
    # A name that already carries its model, or takes none, conflicts with --model.
    for describer in ("openai:gpt-4.1", "static:texts.csv"):
        assert main(["describe", str(images[0]), "--describer", describer, "--model", "m"]) == 2
        assert "--model: the describer" in capsys.readouterr().err
