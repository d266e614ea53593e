"""Descriptions beside images, the same at every entry point.

``descriptions`` has one meaning everywhere, read by :func:`resolve_descriptions`: None, one
string for one image, a sequence aligned with the images (None entries allowed), a table keyed
by image path (a ``{path: text}`` mapping, a :class:`~realness.io.description_table.DescriptionTable`, or a
``pathlib.Path`` to a CSV / JSON / JSON Lines / Parquet file), or a describer (an object with
``describe``, or a describer name such as ``"openai:gpt-4.1"``) that writes them. A string is
never a file name. A missing description is written by the describer when there is one. Without a describer, the one rule is: an image without a
description goes on without text where the method has a validated text-free mode (CORE:
its image-only regressor, or description dropout for an MLP head; one :class:`ImageOnlyWarning` line), and is
a bad item otherwise (DREAM: a map needs a text; :class:`~realness.errors.DescriptionsError`
under ``on_error="raise"``, skipped and named under ``on_error="skip"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from realness.describers.factory import build_describer, is_describer_name
from realness.errors import (
    DescriptionsError,
    DescriptionsWarning,
    ImageOnlyWarning,
    SkippedItem,
    UsageError,
    warn_at_caller,
)
from realness.io.description_table import DescriptionMatch, DescriptionTable, read_descriptions
from realness.io.names import name_list

#: None, one text, texts aligned with the images, a table keyed by path, or a describer (object or name: hence ``Any``).
DescriptionsLike = None | str | Sequence[str | None] | Mapping[str, str] | DescriptionTable | os.PathLike | Any


@dataclass
class ResolvedDescriptions:
    """What a ``descriptions`` value gives a batch of images.

    Attributes:
        texts: one text (or None) per image.
        describer: the describer object that writes the missing ones, or None.
        match: how a table lined up with the images (None unless a table was given).
    """

    texts: list[str | None]
    describer: Any = None
    match: DescriptionMatch | None = None


_WARNED_IMAGE_ONLY = False


def is_describer(value: Any) -> bool:
    """Whether ``value`` writes descriptions: an object with ``describe`` or a describer name."""
    return callable(getattr(value, "describe", None)) or is_describer_name(value)


def as_describer(describer: Any) -> Any:
    """A describer object from an object or a name (built, cached, through the registry); None stays None.

    Raises:
        UnknownNameError: An unknown describer name.
        UsageError: Something that is neither.
    """
    if describer is None or callable(getattr(describer, "describe", None)):
        return describer
    if isinstance(describer, str):
        return build_describer(describer)
    raise UsageError(f"describer={type(describer).__name__}", "pass a describer object or a describer name such as 'openai'")


def resolve_descriptions(
    descriptions: DescriptionsLike,
    images: Sequence[Any],
    *,
    describer: Any = None,
    roots: Sequence[str | os.PathLike] = (),
    root: str | os.PathLike | None = None,
) -> ResolvedDescriptions:
    """Any ``descriptions`` value as one text (or None) per image, and the describer for the rest.

    The one reading of the word, called by every entry point (scorer, mapper, workflows, Ray, CLI).

    Args:
        descriptions: See the module docstring.
        images: The batch's items; a table matches them by path, so they must be paths then.
        describer: The entry point's own describer (``describer=``), used when
            ``descriptions`` is not one itself.
        roots: Folders a table's relative paths may start from (the folders the user scanned).
        root: The folder a table file's relative paths start from (default: the file's folder).

    Raises:
        DescriptionsError: Texts not one per image, a table for in-memory images, or a
            value that is none of the above.
        TableError: A table file that cannot be read.
    """
    if is_describer(descriptions):
        return ResolvedDescriptions([None] * len(images), as_describer(descriptions))
    describer = as_describer(describer)
    if isinstance(descriptions, (Mapping, DescriptionTable, os.PathLike)):
        if isinstance(descriptions, os.PathLike):
            table = read_descriptions(descriptions, root=root)
        elif isinstance(descriptions, Mapping):
            table = DescriptionTable(descriptions, root=root)
        else:
            table = descriptions
        unnamed = [i for i, item in enumerate(images) if not isinstance(item, (str, os.PathLike))]
        if unnamed:
            raise DescriptionsError(
                f"images[{unnamed[0]}]", "a descriptions table matches images by path; pass texts aligned with in-memory images"
            )
        match = table.match(images, roots=roots)
        return ResolvedDescriptions(match.texts, describer, match)
    return ResolvedDescriptions(align_descriptions(descriptions, len(images)), describer)


def align_descriptions(descriptions: Any, count: int) -> list[str | None]:
    """One text (or None) per image.

    Args:
        descriptions: None, one string (only for one image), or a sequence of ``count`` strings or Nones.
        count: How many images there are.

    Raises:
        DescriptionsError: One string for several images, a count that differs, or an entry
            that is not a string.
    """
    if descriptions is None:
        return [None] * count
    if isinstance(descriptions, str):
        if count != 1:
            hint = " (a table file is a pathlib.Path, never a str)" if os.path.isfile(descriptions) else ""
            raise DescriptionsError(
                "descriptions", f"one string was given for {count} images; pass a list of {count}, one per image{hint}"
            )
        if os.path.isfile(descriptions):
            warn_at_caller(
                f"descriptions={descriptions!r} is used as this image's text, but it is the path of an existing file; "
                f"to read the file as a descriptions table, pass pathlib.Path({descriptions!r})",
                DescriptionsWarning,
            )
        return [descriptions]
    try:
        # Any iterable of texts: a list, a tuple, a numpy array or a pandas column.
        texts = list(descriptions)
    except TypeError:
        raise DescriptionsError(
            "descriptions", f"a {type(descriptions).__name__} is neither a string, a sequence of strings nor a describer"
        ) from None
    if len(texts) != count:
        raise DescriptionsError("descriptions", f"{len(texts)} descriptions were given for {count} images")
    for index, text in enumerate(texts):
        if isinstance(text, float) and math.isnan(text):
            texts[index] = None  # how pandas spells a missing text
        elif text is not None and not isinstance(text, str):
            raise DescriptionsError(f"descriptions[{index}]", f"a {type(text).__name__}, not a string")
    return texts


def fill_missing(
    describer: Any,
    items: Sequence[Any],
    names: Sequence[str],
    texts: list[str | None],
    *,
    on_error: str,
    skip: frozenset[int] | set[int] = frozenset(),
) -> list[SkippedItem]:
    """Have ``describer`` write the texts that are None (in place); return the items it failed on.

    Args:
        describer: A describer object, or None (then nothing happens).
        items: The images (anything ``describe`` accepts), aligned with ``texts``.
        names: Their readable names.
        texts: One text or None per image; filled in place.
        on_error: ``"raise"`` lets the describer raise on a failure; ``"skip"`` returns it.
        skip: Positions not to describe (already known to be bad).

    Returns:
        One :class:`SkippedItem` per image the describer could not describe.
    """
    missing = [i for i, text in enumerate(texts) if text is None and i not in skip]
    if describer is None or not missing:
        return []
    failures = []
    for index, result in zip(missing, describer.describe([items[i] for i in missing], on_error=on_error)):
        text = getattr(result, "text", None)
        if text is None:
            reason = getattr(result, "error", None) or "the describer returned no description"
            failures.append(SkippedItem(index, names[index], f"no description: {reason}"))
        else:
            texts[index] = text
    return failures


def warn_image_only(names: Sequence[str], detail: str = "") -> None:
    """Say once per process, in one line, which images were scored without a description.

    Only images that were scored count: a broken file has no score to doubt.
    """
    global _WARNED_IMAGE_ONLY
    if _WARNED_IMAGE_ONLY or not names:
        return
    _WARNED_IMAGE_ONLY = True
    warn_at_caller(
        f"{len(names)} images scored without a description (image-only agrees less with people{detail}): "
        f"{name_list(names)}; pass descriptions= (texts or a describer such as 'openai') to score with text",
        ImageOnlyWarning,
    )


def missing_description_failures(
    names: Sequence[str], texts: Sequence[str | None], skip: set[int], what: str
) -> list[SkippedItem]:
    """The items a method that needs a text cannot process: no description and no describer.

    Args:
        names: Readable names of the images.
        texts: Their texts after any describer ran.
        skip: Positions already known to be bad.
        what: The method, for the reason (``"DREAM"``).
    """
    reason = f"no description, and {what} needs one: pass descriptions= (texts or a describer such as 'openai')"
    return [SkippedItem(i, names[i], reason) for i, text in enumerate(texts) if text is None and i not in skip]
