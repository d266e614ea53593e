"""Names as messages and tables show them: undecodable file-name bytes escaped, long lists shortened.

File names that are not UTF-8 (Linux allows any bytes) are held by Python as lone surrogates,
which no UTF-8 file can hold; tables write each such byte as ``\\xHH`` (as ``ls -b`` shows it)
and read it back, so the name survives a round trip.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: How many names a report spells out before "and N more".
NAMES_SHOWN = 5


def escape_undecodable(text: str) -> str:
    """``text`` with each undecodable file-name byte (a lone surrogate) written as ``\\xHH``.

    ``os.fsdecode(b"\\xff.png")`` is ``"\\udcff.png"``, which UTF-8 cannot encode; it is
    written ``"\\xff.png"``. Text without lone surrogates is returned as it is.
    """
    if not _LONE_SURROGATE.search(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte (not from a file name)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def unescape_undecodable(text: str) -> str:
    """The inverse of :func:`escape_undecodable`: ``\\xHH`` (HH from 80 to ff) back to that byte.

    Bytes 80 to ff are the only ones an escaped name holds (smaller ones are ASCII and
    always decode). A name that really spells a backslash, ``x`` and two such hex digits
    is read as that byte: the one ambiguity of the escaping.
    """
    if "\\x" not in text:
        return text
    raw = _ESCAPED_BYTE.sub(lambda match: bytes([int(match.group(1), 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile(rb"\\x([89a-fA-F][0-9a-fA-F])")


def name_list(names: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    """``"a, b, c and 7 more"``: the first ``shown`` names and how many were left out."""
    head = ", ".join(str(name) for name in names[:shown])
    rest = len(names) - shown
    return f"{head} and {rest} more" if rest > 0 else head

