"""Dataset readers (RAISE-TD, AGIN, CSV) and splits, on synthetic fixtures and the real RAISE-TD."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realness.data import (
    DatasetError,
    DatasetNotFoundError,
    RatedImages,
    kfold,
    load_agin,
    load_csv,
    load_raise_td,
    official_split,
    raise_td_root,
    train_val_split,
)
from realness.errors import RealnessError

RAISE_TD = Path(__file__).resolve().parents[2] / "shared/datasets/raise-td"
needs_raise_td = pytest.mark.skipif(not RAISE_TD.is_dir(), reason=f"RAISE-TD not found at {RAISE_TD}")


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_png(path: Path, shade: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (shade, shade, shade)).save(path)
    return path


# --- AGIN, in the layout its authors' loader reads: one CSV with filename, MOS_nat,
# MOS_tech, MOS_rat, and an image folder the filenames are joined to.

AGIN_ROWS = [
    ["CoCosNet_23.png", 3.21, 2.90, 3.45],
    ["DALLE2_7.png", 4.05, 4.30, 3.80],
    ["SD_112.png", 1.75, 2.10, 1.50],
    ["Midjourney_3.png", 3.60, 3.95, 3.20],
]


@pytest.fixture
def agin_root(tmp_path: Path) -> Path:
    root = tmp_path / "AGIN"
    write_csv(root / "AGIN_MOS.csv", ["filename", "MOS_nat", "MOS_tech", "MOS_rat"], AGIN_ROWS)
    for index, row in enumerate(AGIN_ROWS):
        write_png(root / "images" / row[0], shade=40 * index)
    return root


@pytest.mark.parametrize(
    ("aspect", "column"), [("naturalness", 1), ("overall", 1), ("technical", 2), ("rationality", 3)]
)
def test_load_agin_reads_each_aspect(agin_root, aspect, column):
    dataset = load_agin(agin_root, aspect)
    assert isinstance(dataset, RatedImages) and len(dataset) == 4
    np.testing.assert_allclose(dataset.mos, [row[column] for row in AGIN_ROWS])
    assert dataset.names == [row[0] for row in AGIN_ROWS]
    assert dataset.paths[1] == (agin_root / "images" / "DALLE2_7.png").resolve()
    assert dataset.descriptions == [None] * 4


def test_load_agin_finds_csv_and_images_in_subfolders(tmp_path, monkeypatch):
    root = tmp_path / "download"
    write_csv(root / "scores" / "mos.csv", ["filename", "MOS_nat", "MOS_tech", "MOS_rat"], AGIN_ROWS)
    write_csv(root / "prompts.csv", ["prompt", "source"], [["a cat", "DrawBench"]])  # not a score sheet
    for row in AGIN_ROWS:
        write_png(root / "AGIN_images" / row[0])
    monkeypatch.setenv("REALNESS_AGIN", str(root))
    dataset = load_agin(aspect="technical")
    assert dataset.paths[0] == (root / "AGIN_images" / "CoCosNet_23.png").resolve()
    np.testing.assert_allclose(dataset.mos, [row[2] for row in AGIN_ROWS])


def test_load_agin_with_renamed_columns_and_explicit_paths(tmp_path):
    root = tmp_path / "agin"
    write_csv(root / "sheet.csv", ["image", "naturalness"], [[row[0], row[1]] for row in AGIN_ROWS])
    for row in AGIN_ROWS:
        write_png(root / "imgs" / row[0])
    dataset = load_agin(
        root, csv_path=root / "sheet.csv", image_dir="imgs", columns={"filename": "image", "naturalness": "naturalness"}
    )
    np.testing.assert_allclose(dataset.mos, [row[1] for row in AGIN_ROWS])


def test_load_agin_errors_name_the_problem(agin_root, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="aspect"):
        load_agin(agin_root, "beauty")
    (agin_root / "images" / "SD_112.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="SD_112.png"):
        load_agin(agin_root)
    assert len(load_agin(agin_root, check_files=False)) == 4
    with pytest.raises(DatasetError, match="no CSV with columns"):
        load_agin(agin_root, columns={"naturalness": "MOS_overall"})
    monkeypatch.delenv("REALNESS_AGIN", raising=False)
    with pytest.raises(DatasetNotFoundError, match="REALNESS_AGIN"):
        load_agin()
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_agin(tmp_path / "nowhere")


def test_load_agin_rejects_bad_scores(agin_root):
    rows = [list(row) for row in AGIN_ROWS]
    rows[2][1] = "n/a"
    write_csv(agin_root / "AGIN_MOS.csv", ["filename", "MOS_nat", "MOS_tech", "MOS_rat"], rows)
    with pytest.raises(DatasetError, match=r"line 4: MOS_nat='n/a' is not a number"):
        load_agin(agin_root)


# --- generic CSV


def test_load_csv_resolves_relative_paths_and_optional_descriptions(tmp_path):
    write_png(tmp_path / "pics" / "a.png")
    write_png(tmp_path / "pics" / "b.jpg.png")
    rows = [["pics/a.png", "1.5", "No."], ["pics/b.jpg.png", "-0.25", ""]]
    csv_path = write_csv(tmp_path / "ratings.csv", ["image", "MOS", "description"], rows)
    dataset = load_csv(csv_path)
    assert dataset.paths == [(tmp_path / "pics" / "a.png").resolve(), (tmp_path / "pics" / "b.jpg.png").resolve()]
    np.testing.assert_allclose(dataset.mos, [1.5, -0.25])
    assert dataset.descriptions == ["No.", None]
    assert dataset.names == ["pics/a.png", "pics/b.jpg.png"]


def test_load_csv_with_image_root_and_custom_columns(tmp_path):
    write_png(tmp_path / "elsewhere" / "x.png")
    csv_path = write_csv(tmp_path / "meta" / "s.csv", ["file_name", "score"], [["x.png", "70"]])
    dataset = load_csv(csv_path, tmp_path / "elsewhere", image_column="file_name", mos_column="score")
    assert dataset[0].image_path.is_file() and dataset[0].mos == 70.0 and dataset[0].description is None


def test_load_csv_errors(tmp_path):
    write_png(tmp_path / "a.png")
    with pytest.raises(DatasetNotFoundError, match="no such CSV"):
        load_csv(tmp_path / "missing.csv")
    no_image_column = write_csv(tmp_path / "n.csv", ["picture", "MOS"], [["a.png", "1"]])
    with pytest.raises(DatasetError, match="no image column"):
        load_csv(no_image_column)
    no_mos = write_csv(tmp_path / "m.csv", ["filename", "score"], [["a.png", "1"]])
    with pytest.raises(DatasetError, match="no column 'MOS'"):
        load_csv(no_mos)
    infinite = write_csv(tmp_path / "i.csv", ["filename", "MOS"], [["a.png", "inf"]])
    with pytest.raises(DatasetError, match="line 2"):
        load_csv(infinite)
    missing_image = write_csv(tmp_path / "g.csv", ["filename", "MOS"], [["a.png", "1"], ["gone.png", "2"]])
    with pytest.raises(RealnessError, match="1 of 2 listed images are missing: .*gone.png"):
        load_csv(missing_image)


def test_rated_images_views_and_subset(tmp_path):
    for name in "abc":
        write_png(tmp_path / f"{name}.png")
    csv_path = write_csv(tmp_path / "r.csv", ["filename", "MOS"], [["a.png", 1], ["b.png", 2], ["c.png", 3]])
    dataset = load_csv(csv_path)
    part = dataset.subset(np.array([2, 0]), name="part")
    assert part.names == ["c.png", "a.png"] and part.mos.tolist() == [3.0, 1.0] and part.name == "part"
    assert [sample.name for sample in dataset] == ["a.png", "b.png", "c.png"]
    with pytest.raises(TypeError, match="subset"):
        dataset[0:2]


# --- RAISE-TD on a synthetic copy of its layout (the real one is tested below)


def make_raise_td(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    for split, count in (("train", n_train), ("test", n_test)):
        names = [f"{split[:2]}{index}.png" for index in range(count)]
        scores = [0.1 * index - 0.2 for index in range(count)]
        for name in names:
            write_png(root / split / "images" / name)
        write_csv(
            root / split / "image_descriptions.csv",
            ["filename", "MOS", "description"],
            [[name, repr(score), f"No. image {name}"] for name, score in zip(names, scores)],
        )
        write_csv(
            root / "ratings" / f"{split}.csv",
            ["filename", "MOS_Rating", "MOS_ZScore"],
            [[name, 50 + 10 * score, repr(score + 1e-12)] for name, score in zip(names, scores)],
        )
    return root


def test_load_raise_td_synthetic_layout(tmp_path, monkeypatch):
    root = make_raise_td(tmp_path / "raise-td")
    train = load_raise_td(root, "train")
    assert len(train) == 4 and train.name == "raise-td/train" and train.descriptions[0] == "No. image tr0.png"
    monkeypatch.setenv("REALNESS_RAISE_TD", str(root))
    assert raise_td_root() == root
    assert len(load_raise_td(split="test")) == 2
    assert load_raise_td(split="all").names == train.names + ["te0.png", "te1.png"]
    with pytest.raises(ValueError, match="split"):
        load_raise_td(root, "val")


def test_load_raise_td_detects_disagreeing_or_missing_files(tmp_path):
    root = make_raise_td(tmp_path / "raise-td")
    write_csv(
        root / "ratings" / "test.csv",
        ["filename", "MOS_Rating", "MOS_ZScore"],
        [["te0.png", 48, "-0.2"], ["te1.png", 49, "0.5"]],
    )
    with pytest.raises(DatasetError, match="te1.png: MOS -0.1 .* differs from MOS_ZScore 0.5"):
        load_raise_td(root, "test")
    (root / "train" / "images" / "tr2.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="tr2.png"):
        load_raise_td(root, "train")
    (root / "ratings" / "train.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="ratings/train.csv is missing"):
        load_raise_td(root, "train")
    with pytest.raises(DatasetNotFoundError, match="RAISE-TD not found .*REALNESS_RAISE_TD"):
        load_raise_td(tmp_path / "absent")


# --- splits


def test_kfold_covers_every_item_once_and_is_deterministic():
    folds = kfold(23, k=5, seed=3)
    assert len(folds) == 5
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests.tolist()) == list(range(23))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 23
        assert len(test) in (4, 5)
    again = kfold(23, k=5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = kfold(23, k=5, seed=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    with pytest.raises(ValueError, match="k must be"):
        kfold(3, k=5)


def test_train_val_split_is_disjoint_sized_and_seeded():
    train, val = train_val_split(510, val_fraction=0.15, seed=0)
    assert len(val) == 76 and len(train) == 434
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(510))
    assert np.array_equal(val, train_val_split(510, 0.15, seed=0)[1])
    assert not np.array_equal(val, train_val_split(510, 0.15, seed=1)[1])
    assert len(train_val_split(3, 0.01)[1]) == 1
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(10, 1.0)


# --- the real RAISE-TD


@pytest.mark.dataset
@needs_raise_td
def test_real_raise_td_official_split():
    train, test = official_split(RAISE_TD)
    assert (len(train), len(test)) == (510, 90)
    assert not set(train.names) & set(test.names)
    assert all(path.is_file() for path in train.paths + test.paths)
    for split, dataset in (("train", train), ("test", test)):
        with (RAISE_TD / "ratings" / f"{split}.csv").open(newline="") as handle:
            rated = {row["filename"]: float(row["MOS_ZScore"]) for row in csv.DictReader(handle)}
        np.testing.assert_allclose(dataset.mos, [rated[name] for name in dataset.names], atol=1e-9)
    assert all(text.split()[0].strip(".,").lower() in {"yes", "no", "somewhat"} for text in train.descriptions)


@pytest.mark.dataset
@needs_raise_td
def test_real_raise_td_default_root_is_beside_the_working_directory(monkeypatch):
    monkeypatch.delenv("REALNESS_RAISE_TD", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the repository root
    assert raise_td_root().resolve() == RAISE_TD.resolve()
    assert len(load_raise_td(split="all")) == 600
