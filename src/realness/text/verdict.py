"""The verdict a description opens with: ``yes`` / ``somewhat`` / ``no`` (something unrealistic?)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import torch

Verdict = Literal["yes", "somewhat", "no"]

_FIRST_WORD = re.compile(r"^\W*([A-Za-z]+)")


def parse_verdict(text: str | None) -> Verdict | None:
    """The verdict from a description's first word, or None when it opens with none.

    >>> parse_verdict("Somewhat. The hand has six fingers.")
    'somewhat'
    >>> parse_verdict("**Yes** - the face is distorted")
    'yes'
    >>> parse_verdict("The sky looks fine") is None
    True
    """
    if not text:
        return None
    match = _FIRST_WORD.match(text)
    if match is None:
        return None
    word = match.group(1).lower()
    return word if word in ("yes", "somewhat", "no") else None  # type: ignore[return-value]


VERDICTS: tuple[Verdict, ...] = ("yes", "somewhat", "no")


def verdict_features(texts: Sequence[str | None]) -> torch.Tensor:
    """``N x 3`` one-hot of each description's verdict (yes, somewhat, no), zeros where it opens with none.

    Scaled by 1/sqrt(2), so two different verdicts lie at distance 1 (a unit-norm sentence
    embedding's scale): the CORE head reads the verdict explicitly beside the pooled text
    features (``CoreConfig.verdict_input``).
    """
    rows = torch.zeros(len(texts), len(VERDICTS))
    for row, text in enumerate(texts):
        verdict = parse_verdict(text)
        if verdict is not None:
            rows[row, VERDICTS.index(verdict)] = 2.0**-0.5
    return rows
