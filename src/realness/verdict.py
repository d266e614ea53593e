"""The verdict a description opens with: ``yes`` / ``somewhat`` / ``no`` (something unrealistic?)."""

from __future__ import annotations

import re
from typing import Literal

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
