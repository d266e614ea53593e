"""How generators' outputs pair up across model folders: keys from file names, and the folders' descriptions tables."""

from __future__ import annotations

import errno
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Union

from realness.errors import NothingPairedError, UnpairedItemsWarning, UsageError
from realness.io.description_table import DESCRIPTION_COLUMN_ALIASES
from realness.io.files import IMAGE_SUFFIXES, expand_image_paths
from realness.io.tables import read_table
from realness.workflows.selection_results import Candidate

DESCRIPTIONS_FILE = "descriptions.csv"
#: How outputs pair across models: by file stem, whole file name, or path below the model folder.
KEYS = ("stem", "name", "path")

#: Columns of a descriptions table keyed ``generator/key``: the generator ("model" is what 0.1 wrote) and the key.
GENERATOR_COLUMNS = ("generator", "model")
KEY_COLUMNS = ("prompt_id", "key", "filename")

FolderLike = Union[str, "os.PathLike[str]"]


def pairing_key(key: str = "stem", key_pattern: str | None = None) -> Callable[[Path, Path], str | None]:
    """The function that names an output's pairing key: ``key(file, model_folder) -> str`` (None: no key).

    Args:
        key: ``stem`` (file name without suffix), ``name`` (whole file name) or ``path``
            (path below the model folder, without suffix).
        key_pattern: A regular expression searched in that key; the key becomes its first
            group (or the whole match); a file it does not match has no key.

    Raises:
        UsageError: An unknown ``key`` or a pattern that does not compile.
    """
    if key not in KEYS:
        raise UsageError(f"key={key!r}", f"use one of {', '.join(KEYS)}")
    try:
        pattern = re.compile(key_pattern) if key_pattern is not None else None
    except re.error as error:
        raise UsageError(f"key_pattern={key_pattern!r}", f"not a regular expression ({error})") from None

    def key_of(file: Path, folder: Path) -> str | None:
        if key == "stem":
            text = file.stem
        elif key == "name":
            text = file.name
        else:
            text = file.relative_to(folder).with_suffix("").as_posix()
        if pattern is None:
            return text
        match = pattern.search(text)
        if match is None:
            return None
        return match.group(1) if pattern.groups else match.group(0)

    return key_of


def find_candidates(
    folders: FolderLike | Sequence[FolderLike],
    *,
    key: str = "stem",
    key_pattern: str | None = None,
) -> list[Candidate]:
    """The outputs to compare, unscored, with the descriptions their folders' tables give.

    Args:
        folders: one folder holding one sub-folder per model (hidden ones ignored), or a list
            of model folders (each folder is one model, named after it).
        key: how outputs pair across models (see :func:`pairing_key`).
        key_pattern: a regular expression taking the key out of the file's name.

    Returns:
        One :class:`Candidate` per image, sorted by model then key.

    Raises:
        FileNotFoundError: a folder does not exist.
        UsageError: no model folder has images, two images of one model share a key, or two
            model folders share a name.
    """
    key_of = pairing_key(key, key_pattern)
    if isinstance(folders, (str, os.PathLike)):
        root = Path(folders)
        if not root.is_dir():
            raise FileNotFoundError(errno.ENOENT, "not a folder", str(root))
        shared = read_descriptions_by_key(root / DESCRIPTIONS_FILE, with_model=True)
        model_folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        where = str(root)
    else:
        shared = {}
        model_folders = [Path(folder) for folder in folders]
        for folder in model_folders:
            if not folder.is_dir():
                raise FileNotFoundError(errno.ENOENT, "not a folder", str(folder))
        names = [folder.resolve().name for folder in model_folders]
        if len(set(names)) != len(names):
            raise UsageError(", ".join(map(str, model_folders)), "two model folders have the same name; rename one")
        where = ", ".join(map(str, model_folders))
    candidates = []
    unmatched: list[str] = []
    for folder in model_folders:
        model = folder.resolve().name
        own = read_descriptions_by_key(folder / DESCRIPTIONS_FILE, with_model=False)
        files = _image_files(folder, recursive=key == "path")
        seen: dict[str, Path] = {}
        for path in files:
            item_key = key_of(path, folder)
            if item_key is None:
                unmatched.append(str(path))
                continue
            if item_key in seen:
                raise UsageError(
                    str(folder),
                    f"two images have the key {item_key!r}: {seen[item_key].name} and {path.name}; choose another --key",
                )
            seen[item_key] = path
            description = own.get(item_key, shared.get(f"{model}/{item_key}"))
            candidates.append(Candidate(model=model, prompt_id=item_key, path=path, description=description))
    if unmatched and not candidates:
        example = Path(unmatched[0]).name
        raise UsageError(f"--key-pattern {key_pattern!r}", f"matches none of the {len(unmatched)} file names (e.g. {example})")
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} file(s) do not match key_pattern {key_pattern!r} and are left out: {', '.join(unmatched[:5])}",
            UnpairedItemsWarning,
            stacklevel=2,
        )
    if not candidates:
        raise UsageError(where, "no model folders with images (expected ROOT/<model>/<prompt>.png, or two or more model folders)")
    return candidates


def _image_files(folder: Path, *, recursive: bool) -> list[Path]:
    if recursive:
        return expand_image_paths([str(folder)])
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def check_pairing(candidates: list[Candidate], where: str) -> None:
    """Refuse a comparison where nothing pairs; warn about the outputs without a partner."""
    models = sorted({c.model for c in candidates})
    if len(models) < 2:
        raise NothingPairedError(where, f"found one model folder ({models[0]}); a comparison needs at least two")
    owners: dict[str, set[str]] = {}
    for candidate in candidates:
        owners.setdefault(candidate.prompt_id, set()).add(candidate.model)
    paired = {key for key, found in owners.items() if len(found) > 1}
    if not paired:
        examples = "; ".join(
            f"{m}: {', '.join(sorted(c.prompt_id for c in candidates if c.model == m)[:3])}" for m in models
        )
        raise NothingPairedError(
            where,
            f"no output pairs with another model's (keys {examples}); name files alike, or choose --key / --key-pattern",
        )
    lonely = sorted(key for key, found in owners.items() if len(found) < len(models))
    if lonely:
        warnings.warn(
            f"{len(lonely)} of {len(owners)} prompts lack an output from some model and are left out of the wins: "
            f"{', '.join(lonely[:5])}{', ...' if len(lonely) > 5 else ''}",
            UnpairedItemsWarning,
            stacklevel=3,
        )


def read_descriptions_by_key(path: Path, *, with_model: bool, required: bool = False) -> dict[str, str]:
    """Descriptions keyed by ``model/key`` (a ROOT or ``--descriptions`` table) or ``key`` (a model folder's table)."""
    if not path.is_file():
        if required:
            raise UsageError(str(path), "no such descriptions file")
        return {}
    table = read_table(path)
    key_column = table.column(KEY_COLUMNS, purpose="prompt id")
    text_column = table.column(DESCRIPTION_COLUMN_ALIASES, purpose="description")
    model_column = table.column(GENERATOR_COLUMNS, purpose="generator") if with_model else None
    texts = {}
    for row in table.rows:
        # A file name in the key column stands for its stem, the default key.
        key = row[key_column] if key_column.lower() != "filename" else Path(row[key_column]).stem
        texts[f"{row[model_column]}/{key}" if model_column else key] = row[text_column]
    return texts


def is_generator_table(path: Path) -> bool:
    """Whether ``path`` is a table keyed ``generator/key`` (a generator and a prompt key column), not by image path."""
    if not path.is_file():
        return False
    table = read_table(path)
    return all(
        table.column(aliases, purpose=purpose, required=False) is not None
        for aliases, purpose in ((GENERATOR_COLUMNS, "generator"), (KEY_COLUMNS, "prompt id"))
    )
