"""Names for pluggable things, in one grammar: ``KIND`` or ``KIND:ARGUMENT``.

A :class:`Registry` maps each kind (``openai``, ``vlm``, ``static``, ...) to a builder that
turns the argument into an object, so new kinds are registered, not added to an if/elif
chain, and every name the user can type is listed by the registry itself (the CLI help,
the error for an unknown name and ``realness.list_describers()`` all read it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realness.errors import UnknownNameError

# A name never holds whitespace: that is what tells "openai:gpt-4.1" apart from a description.
_NAME = re.compile(r"^(?P<kind>[a-z][a-z0-9_-]*)(?::(?P<argument>\S+))?$")


@dataclass(frozen=True)
class RegistryEntry:
    """One kind of name.

    Attributes:
        kind: The prefix, e.g. ``"openai"``.
        build: ``build(argument, **options)``; ``argument`` is "" when the name is the bare kind.
        forms: The spellings it accepts, for help texts (``"openai:MODEL@URL"``).
        summary: One line on what it builds.
        needs_argument: The bare kind alone is not a name (``static`` needs a file).
    """

    kind: str
    build: Callable[..., Any]
    forms: tuple[str, ...]
    summary: str
    needs_argument: bool = False


class Registry:
    """Kinds of names for one family of objects (describers, models, ...).

    Args:
        family: What the names name, for messages (``"describer"``).
    """

    def __init__(self, family: str):
        self.family = family
        self._entries: dict[str, RegistryEntry] = {}

    def register(self, entry: RegistryEntry, *, overwrite: bool = False) -> None:
        """Add a kind.

        Raises:
            ValueError: The kind is taken and ``overwrite`` is False.
        """
        if entry.kind in self._entries and not overwrite:
            raise ValueError(f"{self.family} kind {entry.kind!r} is already registered")
        self._entries[entry.kind] = entry

    def forms(self) -> list[str]:
        """Every spelling the registry accepts, in registration order."""
        return [form for entry in self._entries.values() for form in entry.forms]

    def entries(self) -> list[RegistryEntry]:
        """The registered kinds, in registration order."""
        return list(self._entries.values())

    def accepts(self, name: Any) -> bool:
        """Whether ``name`` is a string in this registry's grammar (a known kind, no whitespace)."""
        if not isinstance(name, str):
            return False
        match = _NAME.match(name)
        return bool(match) and match["kind"] in self._entries

    def parse(self, name: str) -> tuple[RegistryEntry, str]:
        """The entry ``name`` selects and its argument.

        Raises:
            UnknownNameError: ``name`` is not in the grammar, or its kind is not registered.
        """
        match = _NAME.match(name)
        entry = self._entries.get(match["kind"]) if match else None
        if entry is None:
            raise UnknownNameError(repr(name), f"unknown {self.family} name; use {', '.join(self.forms())}")
        argument = match["argument"] or ""
        if entry.needs_argument and not argument:
            raise UnknownNameError(repr(name), f"{entry.kind} needs an argument: {', '.join(entry.forms)}")
        return entry, argument

    def build(self, name: str, **options: Any) -> Any:
        """The object ``name`` names, built with ``options``."""
        entry, argument = self.parse(name)
        return entry.build(argument, **options)
