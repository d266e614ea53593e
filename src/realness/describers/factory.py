"""Describers by name: ``openai:gpt-4.1``, ``openai:MODEL@http://host/v1``, ``vlm:org/repo``, ``static:FILE.csv``.

The names follow :mod:`realness.registry`'s grammar; :data:`DESCRIBERS` holds the kinds and
:func:`build_describer` builds one, wrapped in the description cache.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from realness.describers.base import BaseDescriber
from realness.describers.cache import CachedDescriber, DescriptionCache
from realness.describers.openai import DEFAULT_OPENAI_MODEL, OpenAIDescriber, list_server_models
from realness.describers.static import StaticDescriber
from realness.describers.vlm import DEFAULT_VLM, TransformersDescriber
from realness.errors import UnknownNameError
from realness.registry import Registry, RegistryEntry

# "MODEL@URL": the model may be empty ("openai:@URL" asks the server which one it serves).
_MODEL_AT_URL = re.compile(r"^(?P<model>[^@]*)@(?P<url>https?://\S+)$")


def _build_openai(argument: str, **options: Any) -> OpenAIDescriber:
    match = _MODEL_AT_URL.match(argument)
    if match is None:
        return OpenAIDescriber(argument or DEFAULT_OPENAI_MODEL, **options)
    base_url, model = match["url"], match["model"]
    if not model:
        served = list_server_models(base_url, options.get("api_key"))
        if len(served) != 1:
            raise UnknownNameError(
                f"openai:@{base_url}",
                f"the server serves {len(served)} models ({', '.join(served) or 'none'}); name one with openai:MODEL@{base_url}",
            )
        model = served[0]
    return OpenAIDescriber(model, base_url=base_url, **options)


def _build_vlm(argument: str, **options: Any) -> TransformersDescriber:
    return TransformersDescriber(argument or DEFAULT_VLM, **options)


def _build_static(argument: str, **options: Any) -> StaticDescriber:
    return StaticDescriber.from_csv(argument, **options)


#: The describer kinds. Register another with ``DESCRIBERS.register(RegistryEntry(...))``.
DESCRIBERS = Registry("describer")
DESCRIBERS.register(
    RegistryEntry(
        "openai",
        _build_openai,
        ("openai", "openai:MODEL", "openai:MODEL@URL"),
        f"a chat-completions vision model: OpenAI's ({DEFAULT_OPENAI_MODEL} by default) or any "
        "OpenAI-compatible server at URL (vLLM, Ollama, LM Studio, SGLang)",
    )
)
DESCRIBERS.register(
    RegistryEntry(
        "vlm",
        _build_vlm,
        ("vlm", "vlm:ORG/REPO", "vlm:DIR"),
        f"a local vision-language model through transformers ({DEFAULT_VLM} by default)",
    )
)
DESCRIBERS.register(
    RegistryEntry(
        "static",
        _build_static,
        ("static:FILE.csv",),
        "descriptions that already exist, from a CSV with filename and description columns",
        needs_argument=True,
    )
)

#: The accepted spellings, for help texts.
DESCRIBER_SPECS = ", ".join(DESCRIBERS.forms())


def build_describer(
    spec: str,
    *,
    cache: bool | str | Path | DescriptionCache = True,
    **options: Any,
) -> BaseDescriber:
    """Build the describer a name names, wrapped in the description cache.

    Names (:func:`list_describers` lists them):

    - ``"openai"`` or ``"openai:MODEL"``: :class:`OpenAIDescriber` (default gpt-4.1).
    - ``"openai:MODEL@http://host:port/v1"``: an OpenAI-compatible server; ``"openai:@URL"``
      takes the one model the server serves.
    - ``"vlm"`` or ``"vlm:ORG/REPO"`` or ``"vlm:DIR"``: :class:`TransformersDescriber`.
    - ``"static:FILE.csv"``: :class:`StaticDescriber` over a CSV (never cached: it costs nothing).

    Args:
        spec: The name.
        cache: True for the default cache file, False for none, or a path / :class:`DescriptionCache`.
        **options: Passed to the describer's constructor (e.g. ``concurrency``, ``device``).

    Returns:
        The describer.

    Raises:
        UnknownNameError: The name is not one of the forms above, or the server's model is ambiguous.
    """
    describer = DESCRIBERS.build(spec, **options)
    if cache is False or isinstance(describer, StaticDescriber):
        return describer
    return CachedDescriber(describer, None if cache is True else cache)


def list_describers() -> list[str]:
    """The describer names :func:`build_describer` accepts (upper case parts are placeholders).

    Returns:
        e.g. ``["openai", "openai:MODEL", "openai:MODEL@URL", "vlm", "vlm:ORG/REPO", "vlm:DIR", "static:FILE.csv"]``.
    """
    return DESCRIBERS.forms()


def is_describer_name(value: Any) -> bool:
    """Whether ``value`` is a describer name rather than a description text (names hold no spaces)."""
    return DESCRIBERS.accepts(value)
