"""Descriptions that already exist: from a mapping, or from a RAISE-TD-style CSV."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from realness.describers.base import DEFAULT_PROMPT, BaseDescriber, Description, Prompt
from realness.errors import RealnessError


class StaticDescriber(BaseDescriber):
    """Look each image's description up by name instead of asking a model.

    An image is matched by its name as ``realness.inputs.item_name`` gives it (the path
    for a file), then by the file name alone, so ``"train/images/f1.png"`` finds the
    key ``"f1.png"``. An image with no entry fails (``text=None``, ``error`` set).

    Args:
        texts: ``{image name or file name: description}``.
        model: The model id the descriptions are credited to.
        prompt: The prompt the descriptions answer.
    """

    def __init__(self, texts: Mapping[str, str], *, model: str = "static", prompt: Prompt = DEFAULT_PROMPT):
        super().__init__(model, prompt)
        self.texts = dict(texts)

    @classmethod
    def from_csv(
        cls,
        path: Union[str, Path],
        *,
        filename_column: str = "filename",
        text_column: str = "description",
        model: Optional[str] = None,
        prompt: Prompt = DEFAULT_PROMPT,
    ) -> StaticDescriber:
        """Read descriptions from a CSV in the RAISE-TD layout (``filename,MOS,description``).

        Args:
            path: The CSV file; other columns (``MOS``) are ignored.
            filename_column: The column with image file names.
            text_column: The column with descriptions.
            model: The model id to credit; default ``"static:<csv file name>"``.
            prompt: The prompt the descriptions answer.

        Returns:
            The describer.

        Raises:
            RealnessError: The file is missing or lacks one of the columns.
        """
        path = Path(path)
        if not path.is_file():
            raise RealnessError(f"{path}: no such descriptions CSV")
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {filename_column, text_column} - set(reader.fieldnames or ())
            if missing:
                raise RealnessError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            texts = {row[filename_column]: row[text_column] for row in reader if row[text_column]}
        return cls(texts, model=model or f"static:{path.name}", prompt=prompt)

    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Look up each image's description by its name.

        Args:
            images: Decoded images (unused: only names matter).
            names: A readable name per image.

        Returns:
            One description per image; unknown names fail.
        """
        results = []
        for name in names:
            text = self.texts.get(name, self.texts.get(Path(name).name))
            if text is None:
                reason = "no description for this image name"
                results.append(Description.failure(name, reason, self.model, self.prompt.id))
            else:
                results.append(Description.success(name, text, self.model, self.prompt.id))
        return results
