"""Descriptions that already exist: from a mapping, or from a RAISE-TD-style CSV."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from realness.describers.base import DEFAULT_PROMPT, BaseDescriber, Description, Prompt
from realness.io.description_table import (
    DESCRIPTION_COLUMN_ALIASES,
    IMAGE_COLUMN_ALIASES,
    DescriptionTable,
    normalize_key,
    read_descriptions,
)
from realness.io.names import name_list
from realness.io.tables import read_table


class StaticDescriber(BaseDescriber):
    """Look each image's description up by name instead of asking a model.

    An image is matched by its name as ``realness.io.inputs.item_name`` gives it (the path
    for a file); a key that is a bare file name (the RAISE-TD layout) also matches any
    path ending in it, so ``"train/images/f1.png"`` finds the key ``"f1.png"``, while a key
    with folders (``"a/f1.png"``) never matches ``"b/f1.png"``. An image with no entry
    fails (``text=None``, ``error`` set), and so do images of one batch that share the file
    name a bare key holds (``a/img.png`` and ``b/img.png`` for ``"img.png"``): the key cannot
    say which of them it describes. The matching is :meth:`DescriptionTable.match`'s.

    Args:
        texts: ``{image name or file name: description}``.
        model: The model id the descriptions are credited to.
        prompt: The prompt the descriptions answer.
    """

    def __init__(self, texts: Mapping[str, str], *, model: str = "static", prompt: Prompt = DEFAULT_PROMPT):
        super().__init__(model, prompt)
        self.table = DescriptionTable(texts)
        self.texts = self.table.texts

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        filename_column: str | None = None,
        text_column: str | None = None,
        model: str | None = None,
        prompt: Prompt = DEFAULT_PROMPT,
    ) -> StaticDescriber:
        """Read descriptions from a CSV in the RAISE-TD layout (``filename,MOS,description``).

        Args:
            path: The CSV file; other columns (``MOS``) are ignored. A UTF-8 byte-order mark
                is dropped and column names are matched ignoring case.
            filename_column: The column with image paths (default: the first of ``path``,
                ``file``, ``filename``, ``image``, ``name``).
            text_column: The column with descriptions (default: ``description``,
                ``caption`` or ``text``).
            model: The model id to credit; default ``"static:<csv file name>"``.
            prompt: The prompt the descriptions answer.

        Returns:
            The describer.

        Raises:
            RealnessError: The file is missing, unreadable, lacks one of the columns (the
                message lists those found), or gives one image two different descriptions.
        """
        path = Path(path)
        if filename_column is None and text_column is None:
            table = read_descriptions(path)
        else:
            rows = read_table(path)
            names = rows.column([filename_column] if filename_column else IMAGE_COLUMN_ALIASES, purpose="image")
            texts = rows.column([text_column] if text_column else DESCRIPTION_COLUMN_ALIASES, purpose="description")
            table = DescriptionTable({row[names]: row[texts] for row in rows.rows if row[texts].strip()}, source=str(path))
        return cls(table.texts, model=model or f"static:{path.name}", prompt=prompt)

    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Look up each image's description by its name.

        Args:
            images: Decoded images (unused: only names matter).
            names: A readable name per image.

        Returns:
            One description per image; unknown names fail.
        """
        match = self.table.match(names)
        ambiguous = set(match.ambiguous)
        results = []
        for name, text in zip(names, match.texts):
            if text is not None:
                results.append(Description.success(name, text, self.model, self.prompt.id))
                continue
            reason = "no description for this image name"
            if name in ambiguous:
                file_name = normalize_key(Path(name).name)
                twins = list(dict.fromkeys(other for other in names if normalize_key(Path(other).name) == file_name))
                reason = (
                    f"the description keyed by the bare file name {file_name!r} could be any of the {len(twins)} "
                    f"images of this batch with that name ({name_list(twins)}); key the descriptions by path"
                )
            results.append(Description.failure(name, reason, self.model, self.prompt.id))
        return results
