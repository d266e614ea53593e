"""A rated-image dataset described by one CSV file: image path, MOS, optional description."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from realness.data.dataset import (
    DatasetError,
    DatasetNotFoundError,
    RatedImages,
    Sample,
    check_images_exist,
)
from realness.errors import TableError
from realness.io.tables import read_table

IMAGE_COLUMN_CANDIDATES = ("filename", "image", "image_path", "path", "file")


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV file with a header row (through :func:`realness.io.tables.read_table`).

    Args:
        path: the CSV file (UTF-8 with or without a byte-order mark, or UTF-16).

    Returns:
        ``(columns, rows)`` where each row maps column name to its text; header cells are
        stripped of stray spaces (``"MOS "``).

    Raises:
        DatasetNotFoundError: the file does not exist.
        DatasetError: the file has no header row, cannot be parsed, or is in another encoding
            (the message names the byte offset and how to re-save it).
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such CSV file")
    try:
        table = read_table(path)
    except TableError as error:
        raise DatasetError(str(error)) from None
    return table.columns, table.rows


def parse_mos(text: str, *, path: Path, line: int, column: str) -> float:
    """Parse one MOS cell, failing with the file, line and column on bad values.

    Args:
        text: the cell text.
        path: the CSV file, for the message.
        line: the 1-based line number in the file (the header is line 1).
        column: the column name, for the message.

    Returns:
        The score as a float.

    Raises:
        DatasetError: the cell is empty, not a number, or not finite.
    """
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{path} line {line}: {column}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise DatasetError(f"{path} line {line}: {column}={text!r} is not a finite number")
    return value


def require_columns(path: Path, columns: Sequence[str], needed: Sequence[str]) -> None:
    """Raise when a CSV lacks a needed column, listing the columns it has.

    Args:
        path: the CSV file, for the message.
        columns: the columns it has.
        needed: the columns that must be there.

    Raises:
        DatasetError: a needed column is absent.
    """
    absent = [name for name in needed if name not in columns]
    if absent:
        raise DatasetError(f"{path}: no column {', '.join(map(repr, absent))}; it has {', '.join(map(repr, columns))}")


def load_csv(
    path: str | Path,
    image_root: str | Path | None = None,
    *,
    image_column: str | None = None,
    mos_column: str = "MOS",
    description_column: str | None = "description",
    check_files: bool = True,
) -> RatedImages:
    """Read a dataset from a CSV file with one row per image.

    Relative image paths are resolved against ``image_root`` (default: the CSV's folder);
    the samples hold absolute paths.

    Args:
        path: the CSV file.
        image_root: folder that relative image paths start from.
        image_column: column holding the image path; by default the first present of
            ``filename``, ``image``, ``image_path``, ``path``, ``file``.
        mos_column: column holding the mean opinion score.
        description_column: column holding a description; when the CSV lacks it (or it is
            None) every description is None. Empty cells also give None.
        check_files: raise when a listed image does not exist.

    Returns:
        The images, in file order; each sample's name is the path as the CSV writes it.

    Raises:
        DatasetNotFoundError: the CSV or a listed image is missing.
        DatasetError: a column is absent, a MOS is not a finite number, or the CSV is empty.
    """
    csv_path = Path(path)
    columns, rows = read_csv_rows(csv_path)
    if image_column is None:
        image_column = next((name for name in IMAGE_COLUMN_CANDIDATES if name in columns), None)
        if image_column is None:
            raise DatasetError(
                f"{csv_path}: no image column (looked for {', '.join(IMAGE_COLUMN_CANDIDATES)}); "
                f"it has {', '.join(map(repr, columns))}: pass image_column="
            )
    # "mos", "MOS" and "Mos" are one column: the case of a header is not a meaning.
    mos_column = next((name for name in columns if name.lower() == mos_column.lower()), mos_column)
    require_columns(csv_path, columns, [image_column, mos_column])
    if not rows:
        raise DatasetError(f"{csv_path}: no rows after the header")
    root = (Path(image_root) if image_root is not None else csv_path.parent).resolve()
    use_descriptions = description_column is not None and description_column in columns
    samples = []
    for line, row in enumerate(rows, start=2):
        listed = row[image_column].strip()
        if not listed:
            raise DatasetError(f"{csv_path} line {line}: empty {image_column}")
        description = row[description_column].strip() if use_descriptions else ""
        samples.append(
            Sample(
                image_path=root / listed,
                mos=parse_mos(row[mos_column], path=csv_path, line=line, column=mos_column),
                description=description or None,
                name=listed,
            )
        )
    if check_files:
        check_images_exist(
            samples,
            dataset=str(csv_path),
            how_to_obtain=f"Relative paths start from {root}: pass image_root= if they start elsewhere.",
        )
    return RatedImages(samples, name=csv_path.stem)
