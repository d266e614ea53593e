"""Map methods by name: each a registered class that owns how it is built and called.

``RealnessMapper(method=NAME)`` and ``realness map --method NAME`` look the name up here;
nothing else compares a method name. A new method subclasses :class:`MapMethod` and is
registered with :func:`register_map_method`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from realness.errors import UnknownNameError


class MapMethod:
    """A way to make realness maps: called with images and descriptions, it returns maps.

    Attributes:
        name: The name users pass (``method=``, ``--method``).
        needs_descriptions: Every image needs a text (else it is a bad item).
        images_per_pass: How many images one call should be handed when maps are saved as they
            come (the CLI): more only where the method runs several through one forward pass.
    """

    name: ClassVar[str]
    needs_descriptions: ClassVar[bool] = False
    images_per_pass: ClassVar[int] = 1

    @classmethod
    def from_mapper_arguments(cls, **arguments: Any) -> MapMethod:
        """Built from ``RealnessMapper(method=...)``'s arguments (``core_model``, ``device``, ``precision``,
        ``describer``), each method taking those that apply to it."""
        raise NotImplementedError

    def __call__(self, images: Any, descriptions: Any = None, *, on_error: str = "raise", progress: bool | None = None) -> Any:
        """Map one image or a batch: a ``RealnessMap`` for one, a ``RealnessMapBatch`` for a batch."""
        raise NotImplementedError


MAP_METHODS: dict[str, type[MapMethod]] = {}


def register_map_method(method: type[MapMethod]) -> type[MapMethod]:
    """Register ``method`` under its ``name`` (a class decorator).

    Raises:
        ValueError: The name is taken by another class.
    """
    if MAP_METHODS.get(method.name, method) is not method:
        raise ValueError(f"map method {method.name!r} is already registered")
    MAP_METHODS[method.name] = method
    return method


def map_method(name: str) -> type[MapMethod]:
    """The class registered as ``name``.

    Raises:
        UnknownNameError: No method has that name; the message lists those that do.
    """
    if name not in MAP_METHODS:
        raise UnknownNameError(f"method={name!r}", f"method must be one of {', '.join(MAP_METHODS)}")
    return MAP_METHODS[name]


def list_map_methods() -> list[str]:
    """The registered method names, in registration order."""
    return list(MAP_METHODS)
