"""Old argument spellings and function names that keep working for one release, with a ``DeprecationWarning``.

Each renamed argument stays in its function's signature with the default :data:`UNSET`,
so a caller who still passes it gets the value through :func:`renamed` and a warning that
names the new spelling; a caller who passes both spellings gets a ``TypeError``. A renamed
function keeps a function under its old name that calls :func:`warn_renamed`, then the new one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

#: The release that drops the old spellings.
REMOVED_IN = "0.2"


class _Unset:
    """The default of a deprecated argument: tells "not passed" apart from None."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


def renamed(
    where: str,
    old: str,
    new: str,
    old_value: Any,
    new_value: Any,
    *,
    new_default: Any = None,
    convert: Callable[[Any], Any] | None = None,
    stacklevel: int = 3,
) -> Any:
    """The value of argument ``new``, taking it from the deprecated ``old`` when only that was passed.

    Args:
        where: The function or class, for the messages (``"realness.score"``).
        old: The deprecated name.
        new: The current name.
        old_value: What the caller passed as ``old`` (:data:`UNSET` if nothing).
        new_value: What the caller passed as ``new`` (its default if nothing).
        new_default: ``new``'s default, to tell whether the caller passed both.
        convert: Turns an old value into a new one (``dtype`` -> ``precision``).
        stacklevel: Passed to ``warnings.warn``: 3 points at the caller of ``where``.

    Returns:
        ``new_value``, or the (converted) ``old_value`` when the caller used the old name.

    Raises:
        TypeError: Both spellings were passed.
    """
    if old_value is UNSET:
        return new_value
    if not _same(new_value, new_default):
        raise TypeError(f"{where}: pass {new}= only ({old}= is its deprecated spelling)")
    warnings.warn(
        f"{where}: {old}= is deprecated and will be removed in realness {REMOVED_IN}; use {new}=",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return convert(old_value) if convert is not None else old_value


def _same(value: Any, default: Any) -> bool:
    # Scalars compare by value (an int default is not always the same object); anything else
    # (lists, tensors) by identity, so a caller's own object is never mistaken for the default.
    if value is default:
        return True
    scalars = (str, int, float, bool)
    return isinstance(value, scalars) and isinstance(default, scalars) and value == default


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that the function or class ``old`` is deprecated in favour of ``new`` (both dotted names).

    ``stacklevel`` 3 points at the caller of the deprecated function that calls this.
    """
    warnings.warn(
        f"{old} is deprecated and will be removed in realness {REMOVED_IN}; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )

