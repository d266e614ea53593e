"""Odd inputs a new user brings (issue 19): each is refused or handled by name, and nothing else is lost.

Degenerate images, EXIF orientation, spreadsheet CSVs, file names that are not UTF-8,
concurrent cache writers, interrupted saves and ambiguous bare names, through the public
API and the real CLI entry point (``realness.cli.main``).
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import multiprocessing.synchronize
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import realness
from realness.cli import main
from realness.core import RealnessScorer
from realness.describers import StaticDescriber
from realness.describers.cache import DescriptionCache
from realness.errors import InvalidImageError
from realness.io.names import unescape_undecodable
from realness.io.tables import read_table


def write_image(path: Path, size: tuple[int, int] = (40, 40), seed: int = 0) -> Path:
    """A noise PNG of ``size`` (height, width)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def every_input_kind(path: Path) -> dict[str, object]:
    """The same image as a path, bytes, a PIL image, an HxWxC array and a CxHxW tensor."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    return {
        "path": str(path),
        "bytes": path.read_bytes(),
        "PIL": Image.open(path),
        "numpy": pixels,
        "tensor": torch.from_numpy(pixels.copy()).permute(2, 0, 1),
    }


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- degenerate images ----------------------------------------------------------------------

DEGENERATE = {
    "one_pixel.png": ((1, 1), "short side of 1 px"),
    "needle.png": ((2, 20000), "short side of 2 px"),
    "strip.png": ((40, 2000), "aspect ratio of 50:1"),  # wide enough for the model, but a smear
}


@pytest.fixture
def degenerate(tmp_path) -> dict[str, Path]:
    return {name: write_image(tmp_path / name, size) for name, (size, _) in DEGENERATE.items()}


@pytest.mark.parametrize("file_name", list(DEGENERATE))
def test_degenerate_images_are_refused_by_name_on_every_input_path(tiny_model, tiny_model_dir, degenerate, file_name):
    scorer = RealnessScorer(tiny_model, device="cpu")
    reason = DEGENERATE[file_name][1]
    for kind, item in every_input_kind(degenerate[file_name]).items():
        with pytest.raises(InvalidImageError, match=reason) as caught:
            scorer(item, "No.")
        assert caught.value.item == realness.io.inputs.item_name(item), kind
        with pytest.raises(InvalidImageError, match=reason):
            realness.score(item, "No.", model=tiny_model_dir, device="cpu")
        with pytest.raises(InvalidImageError, match=reason):
            realness.load_image(item, min_size=tiny_model.image_encoder.config.min_size)


def test_degenerate_images_are_skipped_and_the_batch_goes_on_in_decode_workers(tiny_model, tmp_path, degenerate):
    good = [write_image(tmp_path / f"good{i}.png", seed=i) for i in range(3)]
    items = [str(good[0]), *map(str, degenerate.values()), str(good[1]), str(good[2])]
    # batch_size 2 and two workers: the files are decoded in DataLoader worker processes.
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2, num_workers=2)
    result = scorer(items, ["No."] * len(items), on_error="skip")
    bad = {1, 2, 3}
    assert [bool(torch.isnan(s)) for s in result.scores] == [i in bad for i in range(len(items))]
    assert [(s.index, s.item) for s in result.skipped] == [(i, items[i]) for i in sorted(bad)]
    for skipped, (_, reason) in zip(result.skipped, DEGENERATE.values()):
        assert reason in skipped.reason


def test_cli_score_gives_a_degenerate_image_a_row_with_its_error(tiny_model_dir, tmp_path, degenerate, capsys):
    good = write_image(tmp_path / "good.png")
    out = tmp_path / "scores.csv"
    code = main(["score", str(good), *map(str, degenerate.values()), "--out", str(out),
                 "--model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1, err
    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert rows["good.png"]["score"] and not rows["good.png"]["error"]
    for name, (_, reason) in DEGENERATE.items():
        assert not rows[name]["score"] and reason in rows[name]["error"]
        assert f"skipped {degenerate[name]}: " in err


def test_a_describer_is_never_asked_about_a_degenerate_image(tiny_model, tmp_path, degenerate):
    good = write_image(tmp_path / "good.png")
    describer = StaticDescriber({"good.png": "No.", **dict.fromkeys(DEGENERATE, "No.")})
    with pytest.raises(InvalidImageError, match="short side of 1 px"):
        describer.describe([str(degenerate["one_pixel.png"])])
    described = describer.describe([str(good), *map(str, degenerate.values())], on_error="skip")
    assert [d.ok for d in described] == [True, False, False, False]
    result = RealnessScorer(tiny_model, device="cpu", describer=describer)([str(good), str(degenerate["needle.png"])],
                                                                          on_error="skip")
    assert result.descriptions == ["No.", None] and "short side of 2 px" in result.skipped[0].reason


def test_the_aspect_ratio_limit_can_be_raised_per_call(tmp_path):
    strip = write_image(tmp_path / "strip.png", (40, 2000))
    assert realness.load_image(strip, max_aspect_ratio=50).shape == (3, 40, 2000)
    with pytest.raises(ValueError, match="max_aspect_ratio"):
        realness.load_image(strip, max_aspect_ratio=0.5)


# --- EXIF orientation -----------------------------------------------------------------------


def sideways_jpeg() -> tuple[bytes, np.ndarray]:
    """A JPEG stored landscape with EXIF orientation 6, and its pixels turned upright by hand."""
    stored = np.random.default_rng(3).integers(0, 256, (48, 96, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view, as phones store portrait photos
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))  # the EXIF turn not applied
    return buffer.getvalue(), np.rot90(decoded, k=-1).copy()


def test_an_orientation_6_jpeg_is_upright_on_every_input_path(tiny_model, tmp_path):
    data, upright = sideways_jpeg()
    path = tmp_path / "portrait photo.jpg"
    path.write_bytes(data)
    expected = torch.from_numpy(upright).permute(2, 0, 1).float() / 255
    items = {"path": str(path), "bytes": data, "PIL": Image.open(path), "PIL loaded": Image.open(path).copy()}
    for kind, item in items.items():
        assert torch.equal(realness.load_image(item), expected), kind
    # The DataLoader path: decoded in two worker processes, PIL images pickled to them.
    dataset = realness.io.inputs.ImagePathsDataset(list(items.values()))
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=realness.io.inputs.collate_decoded)
    decoded = [tensor for _, tensors, _ in loader for tensor in tensors]
    assert all(torch.equal(tensor, expected) for tensor in decoded)
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2, num_workers=2)
    scores = scorer([*items.values(), upright, np.rot90(upright).copy()], ["No."] * 6).scores.tolist()
    assert scores[:4] == pytest.approx([scores[4]] * 4, abs=1e-6)
    assert scores[4] != pytest.approx(scores[5], abs=1e-6)  # the orientation does change the score
    seen = {}

    class Recording(StaticDescriber):
        def describe_tensors(self, images, names):
            seen.update(zip(names, images))
            return super().describe_tensors(images, names)

    Recording({path.name: "No."}).describe([str(path)])
    assert torch.equal(seen[str(path)], expected)  # a describer is shown the photo upright too


# --- spreadsheet CSVs -------------------------------------------------------------------------


def test_a_spreadsheet_descriptions_csv_gives_one_row_per_image_and_names_its_problems(tiny_model_dir, tmp_path,
                                                                                       capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    odd = "my photo \u00e9\u00e8 \u732b.png"  # spaces, accents and CJK, NFC on disk
    for index, name in enumerate(["a.png", "b.png", odd]):
        write_image(tmp_path / name, seed=index)
    hand = 'Yes. A "hand" with\r\nsix fingers.'
    sheet = tmp_path / "from excel.csv"
    sheet.write_bytes(  # as a spreadsheet saves it: byte-order mark, CRLF, quotes doubled
        "\ufefffilename,MOS,description,notes\r\n"
        'a.png,1,"Yes. A ""hand"" with\r\nsix fingers.",x\r\n'
        'a.png,1,"Yes. A ""hand"" with\r\nsix fingers.",x\r\n'
        "gone.png,2,No.,y\r\n"
        "b.png,3,No.,z,stray cell\r\n"
        f'{unicodedata.normalize("NFD", odd)},0,"Somewhat, odd shadow.",w\r\n'.encode()
    )
    code = main(["score", ".", "--descriptions", sheet.name, "--out", "scores.csv",
                 "--model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = read_rows(tmp_path / "scores.csv")
    assert sorted((row["path"], row["description"]) for row in rows) == sorted([
        ("a.png", hand.replace("\r\n", "\n")), ("b.png", "No."), (odd, "Somewhat, odd shadow."),
    ])
    assert all(row["score"] and not row["error"] for row in rows)
    problems = [line for line in err.splitlines() if sheet.name in line]
    assert any("1 images are listed more than once with the same description (used once): a.png (lines 2, 4)" in line
               for line in problems), err
    assert any("1 rows match no image: gone.png" in line for line in problems), err
    assert any("1 rows have more cells than the header's 4 columns" in line and "line 7" in line
               for line in problems), err


@pytest.mark.parametrize("command", ["score", "filter"])
def test_a_descriptions_csv_without_a_description_column_is_one_line_exit_2(tiny_model_dir, tmp_path, capsys, command):
    image = write_image(tmp_path / "a.png")
    sheet = tmp_path / "notes.csv"
    sheet.write_text("File Name,Comment\na.png,No.\n")
    out = tmp_path / "out.csv"
    code = main([command, str(image), "--descriptions", str(sheet), "--out", str(out),
                 "--model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "no image column" in err and "found: File Name, Comment" in err
    sheet.write_text("filename,Comment\na.png,No.\n")
    code = main([command, str(image), "--descriptions", str(sheet), "--out", str(out),
                 "--model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (f"realness {command}: {sheet}: no description column (looked for description, "
                                 "caption, text); found: filename, Comment")
    assert not out.exists()


# --- file names that are not UTF-8 ----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_a_file_name_that_is_not_utf8_is_written_losslessly_in_every_table_format(tiny_model_dir, tmp_path, capsys,
                                                                                  suffix, monkeypatch):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    folder = tmp_path / "gen"
    write_image(folder / "fine.png")
    odd = os.fsencode(folder) + b"/\xff\xfe.png"  # a Linux file name no UTF-8 text can spell
    write_image(Path(os.fsdecode(odd)), seed=1)
    out = tmp_path / f"scores{suffix}"
    command = ["score", str(folder), "--out", str(out), "--model", str(tiny_model_dir), "--device", "cpu"]
    code = main(command)
    assert code == 0, capsys.readouterr().err
    if suffix != ".parquet":
        out.read_bytes().decode("utf-8")  # strict UTF-8: every reader can open it
    paths = [row["path"] for row in read_table(out).rows]
    assert len(paths) == 2 and str(folder / "\\xff\\xfe.png") in paths
    assert sorted(os.fsencode(unescape_undecodable(path)) for path in paths) == sorted(
        [odd, os.fsencode(folder / "fine.png")])
    # The journal keeps the undecodable name exactly: --resume after an interruption redoes neither image.
    real_iter_batches = RealnessScorer.iter_batches

    def interrupted_after_both(self, *args, **kwargs):
        yield from real_iter_batches(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(RealnessScorer, "iter_batches", interrupted_after_both)
    out.unlink()
    assert main(command) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main([*command, "--resume"]) == 0
    assert len(read_table(out).rows) == 2
    assert "0 scored, 0 failed, 2 already there" in capsys.readouterr().err


def test_an_escaped_name_in_a_descriptions_table_finds_its_file(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(Path(os.fsdecode(b"\xe9t\xe9.png")))  # Latin-1 "été", as old cameras and zips leave it
    Path("d.csv").write_text("path,description\n\\xe9t\\xe9.png,No.\n")
    assert main(["score", ".", "--descriptions", "d.csv", "--out", "s.csv",
                 "--model", str(tiny_model_dir), "--device", "cpu"]) == 0, capsys.readouterr().err
    assert [(row["path"], row["description"]) for row in read_rows(tmp_path / "s.csv")] == [("\\xe9t\\xe9.png", "No.")]


# --- concurrent cache writers -----------------------------------------------------------------


CREATION_RACES = 60


def write_descriptions(paths: list[str], writer: int, start: multiprocessing.synchronize.Barrier, errors) -> None:
    """One process: with the others, open each cache file while it does not exist yet, and write to it.

    Into the last file it writes 200 texts; into the others one each, as those rounds only
    repeat the race of creating a file, which one round in twenty or so used to lose.
    """
    try:
        for path in paths:
            start.wait(timeout=60)
            cache = DescriptionCache(path)
            for index in range(200 if path == paths[-1] else 1):
                cache.put_many({f"{writer}-{index}": f"text {writer} {index}"}, "model", "prompt")
    except Exception as error:  # noqa: BLE001 - reported to the test, which names it
        start.abort()  # the other writers stop waiting for this one
        errors.put(f"writer {writer}: {type(error).__name__}: {error}")


def test_three_processes_writing_200_descriptions_each_into_a_new_cache_file_lose_none(tmp_path):
    context = multiprocessing.get_context("fork")  # the writers start within microseconds of each other
    paths = [str(tmp_path / f"cache{round_}.sqlite3") for round_ in range(CREATION_RACES)]
    start, errors = context.Barrier(3), context.Queue()
    writers = [context.Process(target=write_descriptions, args=(paths, w, start, errors)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=300)
    assert errors.empty(), errors.get()
    assert [process.exitcode for process in writers] == [0, 0, 0]
    cache = DescriptionCache(paths[-1])
    assert len(cache) == 600
    keys = [f"{w}-{i}" for w in range(3) for i in range(200)]
    assert cache.get_many(keys, "model", "prompt") == {key: "text " + key.replace("-", " ") for key in keys}
    assert all(len(DescriptionCache(path)) == 3 for path in paths[:-1])


# --- atomic save_pretrained -------------------------------------------------------------------


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_an_interrupted_save_pretrained_leaves_the_previous_model_as_it_was(tiny_model, tmp_path, monkeypatch):
    from realness.core import CoreModel
    from realness.core import model as model_module

    directory = tiny_model.save_pretrained(tmp_path / "model")
    (directory / "README.md").write_text("my notes\n")
    before = folder_contents(directory)
    torch.manual_seed(7)
    retrained = CoreModel(tiny_model.config)
    retrained.trained = True
    real_dumps = model_module.json.dumps

    def interrupted(*args, **kwargs):  # the weights are written by now: Ctrl-C mid-save
        raise KeyboardInterrupt

    monkeypatch.setattr(model_module.json, "dumps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        retrained.save_pretrained(directory)
    monkeypatch.setattr(model_module.json, "dumps", real_dumps)
    assert folder_contents(directory) == before  # old weights with their own config, nothing half-new
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]  # no temporary folder left
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(CoreModel.from_pretrained(directory)(pixels, ["No.", ""]), tiny_model(pixels, ["No.", ""]))
    retrained.save_pretrained(directory)  # a save that finishes replaces the model and keeps the notes
    assert (directory / "README.md").read_text() == "my notes\n"
    with torch.no_grad():
        assert torch.equal(CoreModel.from_pretrained(directory)(pixels, ["No."] * 2), retrained(pixels, ["No."] * 2))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


# --- bare names in StaticDescriber ---------------------------------------------------------------


def test_a_bare_name_two_images_of_one_batch_share_is_refused_naming_both(tiny_model, tmp_path, monkeypatch):
    from realness.errors import DescriberError

    monkeypatch.chdir(tmp_path)
    first, second = write_image(Path("a/img.png"), seed=1), write_image(Path("b/img.png"), seed=2)
    solo = write_image(Path("c/solo.png"), seed=3)
    describer = StaticDescriber({"img.png": "Yes. Six fingers.", "solo.png": "No."})
    results = describer.describe([str(first), str(second), str(solo), str(solo.resolve())], on_error="skip")
    assert [r.text for r in results] == [None, None, "No.", "No."]  # one file given twice is still one file
    for result in results[:2]:
        assert "bare file name 'img.png'" in result.error and "(a/img.png, b/img.png)" in result.error
    with pytest.raises(DescriberError, match=r"^a/img.png: .*\(a/img.png, b/img.png\)"):
        describer.describe([str(first), str(second)])
    assert describer.describe([str(second)])[0].text == "Yes. Six fingers."  # alone, the name is unambiguous
    scored = RealnessScorer(tiny_model, device="cpu", describer=describer)([str(first), str(second), str(solo)],
                                                                          on_error="skip")
    assert scored.descriptions == [None, None, "No."]
    assert [s.item for s in scored.skipped] == ["a/img.png", "b/img.png"]


# --- the troubleshooting page -------------------------------------------------------------------


def test_troubleshooting_lists_every_message_of_these_fault_classes():
    from realness.describers.base import BaseDescriber

    page = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    messages = [
        "its short side of N px is below the minimum of M px this model needs",
        f"an aspect ratio of R:1, beyond the limit of {realness.io.inputs.MAX_ASPECT_RATIO:g}:1",
        f"describers refuse a short side under {BaseDescriber.min_size} px",
        "images are listed more than once with the same description (used once)",
        "rows have more cells than the header's 4 columns; the extra cells are ignored",
        "no description column (looked for description, caption, text); found:",
        "spelled `\\xHH`",
        "description cache error (database is locked)",
        "an interrupted or\nfailed save leaves the previous model whole",
        "could be any of the 2 images of this batch with that name (a/img.png, b/img.png); key the descriptions by path",
    ]
    assert [message for message in messages if message not in page] == []


def test_the_ray_describe_stage_refuses_a_degenerate_image_before_asking(tmp_path, degenerate):
    pyarrow = pytest.importorskip("pyarrow")
    from realness.distributed import DescribeBatches

    good = write_image(tmp_path / "good.png")
    sheet = tmp_path / "d.csv"
    sheet.write_text("path,description\n" + "".join(f"{path},No.\n" for path in [good, *degenerate.values()]))
    rows = DescribeBatches(f"static:{sheet}", concurrency=2)(
        pyarrow.table({"path": [str(good), *map(str, degenerate.values())]})
    ).to_pylist()
    assert [row["description"] for row in rows] == ["No.", None, None, None]
    assert [reason in row["error"] for row, (_, reason) in zip(rows[1:], DEGENERATE.values())] == [True] * 3
