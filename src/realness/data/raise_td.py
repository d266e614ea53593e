"""RAISE-TD: the RAISE realness ratings with one GPT-4.1 description per image.

Expected layout (the official 510/90 train/test split)::

    <root>/train/images/*.png
    <root>/train/image_descriptions.csv    filename,MOS,description
    <root>/test/images/*.png
    <root>/test/image_descriptions.csv     filename,MOS,description
    <root>/ratings/train.csv               filename,MOS_Rating,MOS_ZScore
    <root>/ratings/test.csv                filename,MOS_Rating,MOS_ZScore

``MOS`` is the z-scored mean opinion score (higher = more real) and must equal
``MOS_ZScore`` in ``ratings/``; the reader checks that, and that every image exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from realness.data.csv_dataset import load_csv, parse_mos, read_csv_rows, require_columns
from realness.data.dataset import DatasetError, DatasetNotFoundError, RatedImages, check_images_exist

ENV_VAR = "REALNESS_RAISE_TD"
DEFAULT_ROOT = Path("..") / "shared" / "datasets" / "raise-td"
SPLITS = ("train", "test")
MOS_TOLERANCE = 1e-6

HOW_TO_OBTAIN = (
    "RAISE-TD combines the RAISE images and ratings (Mukherjee, Dubey, Paul, arXiv 2505.19233; "
    "non-commercial research use) with the REALM descriptions (Kaushik, Biswas, Paul, arXiv 2509.13289). "
    "Obtain both from the authors, arrange them as train/, test/ and ratings/ (see "
    "realness.data.raise_td), and pass root= or set the REALNESS_RAISE_TD environment variable."
)


def raise_td_root(root: str | Path | None = None) -> Path:
    """Where RAISE-TD is: ``root`` if given, else ``$REALNESS_RAISE_TD``, else ``../shared/datasets/raise-td``.

    The default is relative to the current working directory.

    Args:
        root: an explicit dataset folder.

    Returns:
        The folder (not checked for existence).
    """
    if root is not None:
        return Path(root)
    from_env = os.environ.get(ENV_VAR)
    return Path(from_env) if from_env else DEFAULT_ROOT


def load_raise_td(root: str | Path | None = None, split: str = "train") -> RatedImages:
    """Read a RAISE-TD split and check it against the ratings files.

    Args:
        root: the dataset folder (see :func:`raise_td_root` for the default).
        split: ``"train"`` (510 images), ``"test"`` (90) or ``"all"`` (train then test).

    Returns:
        The split's images with their z-scored MOS and descriptions, in CSV order.

    Raises:
        ValueError: ``split`` is not one of the three.
        DatasetNotFoundError: the folder, a CSV or a listed image is missing.
        DatasetError: the descriptions and ratings files disagree (images or MOS).
    """
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    folder = raise_td_root(root).resolve()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"RAISE-TD not found at {folder}. {HOW_TO_OBTAIN}")
    if split == "all":
        parts = [_load_split(folder, name) for name in SPLITS]
        return RatedImages([sample for part in parts for sample in part], name="raise-td/all")
    return _load_split(folder, split)


def _load_split(folder: Path, split: str) -> RatedImages:
    descriptions_csv = folder / split / "image_descriptions.csv"
    ratings_csv = folder / "ratings" / f"{split}.csv"
    for needed in (descriptions_csv, ratings_csv, folder / split / "images"):
        if not needed.exists():
            raise DatasetNotFoundError(f"RAISE-TD at {folder}: {needed} is missing. {HOW_TO_OBTAIN}")
    dataset = load_csv(
        descriptions_csv, folder / split / "images", image_column="filename", mos_column="MOS", check_files=False
    )
    _check_against_ratings(dataset, descriptions_csv, ratings_csv)
    check_images_exist(dataset, dataset=f"RAISE-TD {split}", how_to_obtain=HOW_TO_OBTAIN)
    return RatedImages(dataset.samples, name=f"raise-td/{split}")


def _check_against_ratings(dataset: RatedImages, descriptions_csv: Path, ratings_csv: Path) -> None:
    columns, rows = read_csv_rows(ratings_csv)
    require_columns(ratings_csv, columns, ["filename", "MOS_ZScore"])
    rated = {
        row["filename"].strip(): parse_mos(row["MOS_ZScore"], path=ratings_csv, line=line, column="MOS_ZScore")
        for line, row in enumerate(rows, start=2)
    }
    listed = set(dataset.names)
    if len(listed) != len(dataset):
        raise DatasetError(f"{descriptions_csv} lists an image more than once")
    if listed != set(rated):
        only_described = sorted(listed - set(rated))[:3]
        only_rated = sorted(set(rated) - listed)[:3]
        raise DatasetError(
            f"{descriptions_csv} and {ratings_csv} list different images "
            f"(only described: {only_described}, only rated: {only_rated})"
        )
    for sample in dataset:
        if abs(sample.mos - rated[sample.name]) > MOS_TOLERANCE:
            raise DatasetError(
                f"{sample.name}: MOS {sample.mos!r} in {descriptions_csv} differs from "
                f"MOS_ZScore {rated[sample.name]!r} in {ratings_csv}"
            )
