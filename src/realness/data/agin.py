"""AGIN: the AI-Generated Image Naturalness database (Chen et al., IEEE TCSVT 2024).

AGIN rates each AI-generated image for overall naturalness and from a technical and a
rationality perspective. Users download it from the authors (it is not redistributed
here) and point :func:`load_agin` at the unpacked folder.

Assumed layout. The authors' own data loader (``AGINDataset.py`` in their JOINT code)
reads one CSV with the columns ``filename``, ``MOS_nat``, ``MOS_tech`` and ``MOS_rat``
and joins ``filename`` to an image folder. The archive's file and folder names are not
documented, so they are found rather than assumed:

- the CSV: ``csv_path`` if given, else the one ``*.csv`` in the root or a folder directly
  below it whose header has ``filename`` and the requested MOS column;
- the images: ``image_dir`` if given, else the first of the root, ``<root>/images`` and
  the other folders directly below the root that holds the CSV's first file.

If your copy names the columns differently, pass ``columns``; if it ships spreadsheets
(``.xlsx``) instead of CSV, save the score sheet as CSV first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from realness.data.csv_dataset import parse_mos, read_csv_rows, require_columns
from realness.data.dataset import (
    DatasetError,
    DatasetNotFoundError,
    RatedImages,
    Sample,
    check_images_exist,
)

ENV_VAR = "REALNESS_AGIN"
FILENAME_COLUMN = "filename"
MOS_COLUMNS: Mapping[str, str] = {"naturalness": "MOS_nat", "technical": "MOS_tech", "rationality": "MOS_rat"}
# AGIN's naturalness score is its overall judgement; "overall" is accepted as a synonym.
ASPECT_ALIASES: Mapping[str, str] = {"overall": "naturalness"}

HOW_TO_OBTAIN = (
    "Download AGIN from the links in the authors' repository (zijianchen98/AGIN), unpack it, "
    "and pass root= or set the REALNESS_AGIN environment variable."
)


def load_agin(
    root: str | Path | None = None,
    aspect: str = "naturalness",
    *,
    csv_path: str | Path | None = None,
    image_dir: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> RatedImages:
    """Read AGIN's images with the MOS of one aspect (see the module docs for the layout).

    Args:
        root: the unpacked AGIN folder (default: ``$REALNESS_AGIN``).
        aspect: ``"naturalness"`` (= ``"overall"``), ``"technical"`` or ``"rationality"``.
        csv_path: the score CSV (default: found under ``root``).
        image_dir: the image folder (default: found under ``root``); relative to ``root``
            when relative.
        columns: overrides of the column names: keys ``filename``, ``naturalness``,
            ``technical``, ``rationality``.
        check_files: raise when a listed image does not exist.

    Returns:
        The images with the chosen aspect's MOS, in CSV order; descriptions are None.

    Raises:
        ValueError: unknown ``aspect`` or column key.
        DatasetNotFoundError: the folder, the CSV or a listed image is missing.
        DatasetError: no or several candidate CSVs, a column is absent, or a MOS is invalid.
    """
    aspect = ASPECT_ALIASES.get(aspect, aspect)
    if aspect not in MOS_COLUMNS:
        raise ValueError(f"aspect must be one of {sorted([*MOS_COLUMNS, *ASPECT_ALIASES])}, not {aspect!r}")
    names = {"filename": FILENAME_COLUMN, **MOS_COLUMNS}
    unknown = set(columns or {}) - set(names)
    if unknown:
        raise ValueError(f"unknown column keys {sorted(unknown)}; use {sorted(names)}")
    names.update(columns or {})
    filename_column, mos_column = names["filename"], names[aspect]

    folder = _agin_root(root)
    score_csv = Path(csv_path) if csv_path is not None else _find_csv(folder, [filename_column, mos_column])
    header, rows = read_csv_rows(score_csv)
    require_columns(score_csv, header, [filename_column, mos_column])
    if not rows:
        raise DatasetError(f"{score_csv}: no rows after the header")
    listed = [row[filename_column].strip() for row in rows]
    images = folder / image_dir if image_dir is not None else _find_image_dir(folder, listed[0])
    samples = [
        Sample(
            image_path=images / name,
            mos=parse_mos(row[mos_column], path=score_csv, line=line, column=mos_column),
            description=None,
            name=name,
        )
        for line, (name, row) in enumerate(zip(listed, rows), start=2)
    ]
    if check_files:
        check_images_exist(samples, dataset=f"AGIN ({images})", how_to_obtain=HOW_TO_OBTAIN)
    return RatedImages(samples, name=f"agin/{aspect}")


def _agin_root(root: str | Path | None) -> Path:
    if root is None:
        from_env = os.environ.get(ENV_VAR)
        if not from_env:
            raise DatasetNotFoundError(f"no AGIN folder given (root= or ${ENV_VAR}). {HOW_TO_OBTAIN}")
        root = from_env
    folder = Path(root).resolve()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"AGIN not found at {folder}. {HOW_TO_OBTAIN}")
    return folder


def _find_csv(folder: Path, needed: list[str]) -> Path:
    candidates = sorted(folder.glob("*.csv")) + sorted(folder.glob("*/*.csv"))
    matching = [path for path in candidates if _has_columns(path, needed)]
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise DatasetError(
            f"{folder}: no CSV with columns {needed} (looked at {[str(p) for p in candidates] or 'none'}). "
            "Pass csv_path= and, if the names differ, columns=; save .xlsx score sheets as CSV."
        )
    raise DatasetError(f"{folder}: several CSVs have columns {needed}: {[str(p) for p in matching]}; pass csv_path=")


def _has_columns(path: Path, needed: list[str]) -> bool:
    try:
        header, _ = read_csv_rows(path)
    except DatasetError:
        return False
    return all(name in header for name in needed)


def _find_image_dir(folder: Path, first_file: str) -> Path:
    subfolders = sorted(path for path in folder.iterdir() if path.is_dir() and path.name != "images")
    for candidate in (folder, folder / "images", *subfolders):
        if (candidate / first_file).is_file():
            return candidate
    raise DatasetNotFoundError(
        f"AGIN at {folder}: no folder holds {first_file!r}, the CSV's first image "
        f"(looked in {folder}, its images/ and its direct subfolders); pass image_dir=. {HOW_TO_OBTAIN}"
    )
