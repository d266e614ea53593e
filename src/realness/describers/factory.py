"""``build_describer``: a describer from the one-string spec the CLI's ``--describer`` takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from realness.describers.base import BaseDescriber
from realness.describers.cache import CachedDescriber, DescriptionCache
from realness.errors import RealnessError

DESCRIBER_SPECS = (
    '"openai" (gpt-4.1), "openai:MODEL", an OpenAI-compatible server URL such as '
    '"http://localhost:8000/v1" or "URL#MODEL", "transformers" or "transformers:MODEL_ID_OR_DIR", '
    '"static:CSV"'
)


def build_describer(
    spec: str,
    *,
    cache: Union[bool, str, Path, DescriptionCache] = True,
    **options: Any,
) -> BaseDescriber:
    """Build the describer a spec names, wrapped in the description cache.

    Specs:

    - ``"openai"``: :class:`OpenAIDescriber` with gpt-4.1; ``"openai:MODEL"`` another model.
    - ``"http://host:port/v1"`` (or https): an OpenAI-compatible server (vLLM, Ollama,
      LM Studio, SGLang); ``"URL#MODEL"`` names the model, otherwise the server must
      serve exactly one.
    - ``"transformers"`` or ``"transformers:MODEL_ID_OR_DIR"``: :class:`TransformersDescriber`.
    - ``"static:CSV"``: :class:`StaticDescriber` over a RAISE-TD-style CSV (never cached:
      it costs nothing).

    Args:
        spec: The spec string.
        cache: True for the default cache file, False for none, or a path / :class:`DescriptionCache`.
        **options: Passed to the describer's constructor (e.g. ``concurrency``, ``device``).

    Returns:
        The describer.

    Raises:
        RealnessError: The spec is not one of the forms above, or the server's model is ambiguous.
    """
    from realness.describers.openai import OpenAIDescriber, list_server_models
    from realness.describers.static import StaticDescriber
    from realness.describers.vlm import TransformersDescriber

    kind, _, argument = spec.partition(":")
    describer: BaseDescriber
    if spec.startswith(("http://", "https://")):
        base_url, _, model = spec.partition("#")
        if not model:
            served = list_server_models(base_url, options.get("api_key"))
            if len(served) != 1:
                raise RealnessError(
                    f"{base_url} serves {len(served)} models ({', '.join(served) or 'none'}); "
                    f"name one with {base_url}#MODEL"
                )
            model = served[0]
        describer = OpenAIDescriber(model, base_url=base_url, **options)
    elif kind == "openai":
        describer = OpenAIDescriber(argument, **options) if argument else OpenAIDescriber(**options)
    elif kind == "transformers":
        describer = TransformersDescriber(argument, **options) if argument else TransformersDescriber(**options)
    elif kind == "static" and argument:
        return StaticDescriber.from_csv(argument, **options)
    else:
        raise RealnessError(f"unknown describer {spec!r}: use {DESCRIBER_SPECS}")
    if cache is False:
        return describer
    return CachedDescriber(describer, None if cache is True else cache)
