"""Descriptions tables: texts keyed by the image paths the user wrote, lined up with the images.

A bare file name matches by name only when exactly one image has that name, and whatever did
not match (images without a row, rows no image used, ambiguous names) is reported by name.
"""

from __future__ import annotations

import os
import posixpath
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from realness.errors import DescriptionsWarning, NothingPairedError, TableError, warn_at_caller
from realness.io.names import name_list, unescape_undecodable
from realness.io.tables import read_table

PathLike = Union[str, "os.PathLike[str]"]

#: Column aliases (lower case, in order of preference) of the image and text of a descriptions table.
IMAGE_COLUMN_ALIASES = ("path", "file", "filename", "file_name", "image", "image_path", "name")
DESCRIPTION_COLUMN_ALIASES = ("description", "caption", "text")


def normalize_key(key: str) -> str:
    """A path as a table key: forward slashes, no ``./`` or ``a/../``, no surrounding spaces, Unicode NFC.

    NFC because the same accented name is one code point in a spreadsheet typed on one
    system and a letter plus a combining accent in a file name written by another (macOS).
    """
    key = unicodedata.normalize("NFC", key.strip().replace("\\", "/"))
    return posixpath.normpath(key) if key else key


@dataclass
class DescriptionMatch:
    """Descriptions lined up with images.

    Attributes:
        texts: one description per image (None where there was none).
        missing: images the table has no row for.
        ambiguous: images whose only match was a bare file name several images share (or a
            row several different images matched): they get no description rather than a
            possibly wrong one.
        unused: table rows that matched no image.
        source: the table, for messages.
    """

    texts: list[str | None]
    missing: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    source: str = "descriptions"

    def problems(self) -> list[str]:
        """One line per kind of mismatch, naming the first few items and the count."""
        total = len(self.texts)
        lines = []
        if self.missing:
            lines.append(f"{self.source}: no description for {len(self.missing)} of {total} images: {name_list(self.missing)}")
        if self.ambiguous:
            lines.append(
                f"{self.source}: {len(self.ambiguous)} images share a file name its rows cannot tell apart "
                f"(left without a description; write their paths in the table): {name_list(self.ambiguous)}"
            )
        if self.unused:
            lines.append(f"{self.source}: {len(self.unused)} rows match no image: {name_list(self.unused)}")
        return lines

    def require_some(self, flag: str = "descriptions") -> None:
        """Refuse a table none of whose rows matches any image: a wrong table or root, not a few missing texts.

        Raises:
            NothingPairedError: no image got a description and the table has rows; the
                message names examples from both sides.
        """
        if self.unused and not self.ambiguous and all(text is None for text in self.texts):
            raise NothingPairedError(
                f"{flag} {self.source}",
                f"none of its {len(self.unused)} rows matches any of the {len(self.texts)} images "
                f"(rows: {name_list(self.unused, 3)}; images: {name_list(self.missing, 3)}); "
                "write the images' paths as given, or relative to --descriptions-root",
            )

    def warn(self) -> None:
        """Issue :meth:`problems` as :class:`DescriptionsWarning` warnings."""
        for line in self.problems():
            warn_at_caller(line, DescriptionsWarning)


class DescriptionTable:
    """Descriptions keyed by image path, as written in a table or a mapping.

    Keys are paths as the user gave them (``a/img.png``), relative to a root, or bare file
    names (``img.png``, the RAISE-TD layout). See :meth:`match`.

    Args:
        texts: ``{path or file name: description}``.
        source: where they came from, for messages.
        root: the folder relative keys start from besides the current directory (the CSV's folder).
    """

    def __init__(self, texts: Mapping[str, str], *, source: str = "descriptions", root: PathLike | None = None):
        self.texts: dict[str, str] = {}
        for key, text in texts.items():
            self.texts[normalize_key(str(key))] = text
        self.source = source
        self.root = Path(root) if root is not None else None

    def __len__(self) -> int:
        return len(self.texts)

    def match(self, images: Sequence[PathLike], *, roots: Sequence[PathLike] = ()) -> DescriptionMatch:
        """Line the descriptions up with ``images``.

        An image is looked up by its path as given, then by its path relative to each root
        (``roots``, then the table's own folder, then the current directory), then, only for
        rows that hold a bare file name, by its file name when no other image in ``images``
        has that name. A row that would serve two different images serves neither.

        Args:
            images: image paths, as the user gave them.
            roots: folders relative keys may start from (e.g. the folders the user scanned).

        Returns:
            The :class:`DescriptionMatch`; nothing is warned here (see :meth:`DescriptionMatch.warn`).
        """
        all_roots = [Path(r) for r in roots] + ([self.root] if self.root is not None else []) + [Path.cwd()]
        base_names: dict[str, set[str]] = {}  # the distinct files (one given twice is one) per file name
        for image in images:
            base_names.setdefault(normalize_key(Path(image).name), set()).add(os.path.abspath(image))
        chosen: list[str | None] = []
        ambiguous_names: set[int] = set()
        for index, image in enumerate(images):
            key = self._path_key(Path(image), all_roots)
            if key is None:
                name = normalize_key(Path(image).name)
                if name in self.texts:
                    if len(base_names[name]) == 1:
                        key = name
                    else:
                        ambiguous_names.add(index)
            chosen.append(key)
        # One row, one image: a key two different files resolved to is not trusted for either.
        owners: dict[str, set[str]] = {}
        for image, key in zip(images, chosen):
            if key is not None:
                owners.setdefault(key, set()).add(os.path.abspath(image))
        shared = {key for key, files in owners.items() if len(files) > 1}
        texts: list[str | None] = []
        missing, ambiguous = [], []
        for index, (image, key) in enumerate(zip(images, chosen)):
            if key is not None and key not in shared:
                texts.append(self.texts[key])
            else:
                texts.append(None)
                (ambiguous if index in ambiguous_names or key in shared else missing).append(str(image))
        used = {key for key in chosen if key is not None}
        unused = [key for key in self.texts if key not in used]
        return DescriptionMatch(texts, missing, ambiguous, unused, self.source)

    def _path_key(self, image: Path, roots: Sequence[Path]) -> str | None:
        absolute = os.path.abspath(image)
        candidates = [str(image), absolute] + [os.path.relpath(absolute, os.path.abspath(root)) for root in roots]
        for candidate in candidates:
            key = normalize_key(candidate)
            if key in self.texts:
                return key
        return None


def _cell(value: Any) -> str:
    """A table cell as text: None (an empty JSON or Parquet value) is ""."""
    return "" if value is None else str(value)


def read_descriptions(path: PathLike, *, root: PathLike | None = None) -> DescriptionTable:
    """Read a descriptions table (``path``/``filename``/``image``/``file``/``name`` and ``description``/``caption``/``text``).

    Other columns (``MOS``) are ignored; empty descriptions are skipped. Line breaks inside a
    description are read as ``\n`` whatever the file's line endings (CRLF from a spreadsheet),
    and an image listed twice with the same description is used once, with a
    :class:`~realness.errors.DescriptionsWarning` naming it and its lines.

    Args:
        path: the CSV file.
        root: the folder its relative paths start from (default: the CSV's own folder,
            tried after the current directory).

    Raises:
        TableError: unreadable file, no image or description column (the message lists the
            columns found), or one image listed twice with different descriptions.
    """
    table = read_table(path)
    name_column = table.column(IMAGE_COLUMN_ALIASES, purpose="image")
    text_column = table.column(DESCRIPTION_COLUMN_ALIASES, purpose="description")
    texts: dict[str, str] = {}
    lines_of: dict[str, list[int]] = {}
    conflicts: set[str] = set()
    for line, row in zip(table.lines, table.rows):
        key = normalize_key(unescape_undecodable(_cell(row[name_column])))
        text = _cell(row[text_column]).replace("\r\n", "\n").replace("\r", "\n").strip()
        if not key or not text:
            continue
        if key in texts and texts[key] != text:
            conflicts.add(key)
        texts.setdefault(key, text)
        lines_of.setdefault(key, []).append(line)

    def listed(keys: Iterable[str]) -> str:
        return name_list([f"{key} (lines {', '.join(map(str, lines_of[key]))})" for key in keys])

    if conflicts:
        raise TableError(
            f"{table.path}: {len(conflicts)} images are listed more than once with different descriptions: "
            f"{listed(key for key in lines_of if key in conflicts)}; keep one row per image"
        )
    repeated = [key for key, lines in lines_of.items() if len(lines) > 1]
    if repeated:
        warnings.warn(
            f"{table.path}: {len(repeated)} images are listed more than once with the same description "
            f"(used once): {listed(repeated)}",
            DescriptionsWarning,
            stacklevel=2,
        )
    return DescriptionTable(texts, source=str(table.path), root=root if root is not None else table.path.parent)

