"""Where CORE weights come from: models bundled in the package, else :mod:`realness.hub`.

Bundled models live in ``realness/weights/<name>/`` and are pinned by sha256 in the one pin
table (:data:`realness.hub.PINNED`), so a damaged installation is refused instead of silently
scoring with corrupt weights.
"""

from __future__ import annotations

from pathlib import Path

from realness.errors import UnknownNameError
from realness.hub import PINNED, packaged_model_dir, resolve_model_dir
from realness.registry import Registry, RegistryEntry

DEFAULT_MODEL = "realness-core-lite"
#: The two files of a saved CORE model (written by ``CoreModel.save_pretrained``).
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"



def _build_bundled(name: str):
    def build(argument: str, **_: object) -> Path:
        if argument:
            raise UnknownNameError(repr(f"{name}:{argument}"), f"{name} is a bundled model; it takes no argument")
        return packaged_model_dir(name)

    return build


def _from_hub(argument: str, *, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    return resolve_model_dir(f"hf-hub:{argument}", files=(CONFIG_NAME, WEIGHTS_NAME), revision=revision, cache_dir=cache_dir)


#: CORE model names, in the grammar every pluggable thing shares (:mod:`realness.registry`):
#: each bundled model, and ``hf-hub:ORG/REPO[@REVISION]``. A local directory or a bare
#: ``ORG/REPO`` is taken as such.
CORE_MODELS = Registry("CORE model")
for _name in sorted(name for name, pin in PINNED.items() if pin.offline_package == "realness"):
    CORE_MODELS.register(RegistryEntry(_name, _build_bundled(_name), (_name,), "bundled with realness (offline)"))
CORE_MODELS.register(
    RegistryEntry("hf-hub", _from_hub, ("hf-hub:ORG/REPO[@REVISION]",), "a Hub repository", needs_argument=True)
)

#: The spellings a CORE model name may take, wherever one is accepted (``--model``, ``model=``).
MODEL_FORMS = (*CORE_MODELS.forms(), "ORG/REPO", "DIR")


def list_models() -> list[str]:
    """The CORE models installed with the package (usable offline), by name.

    Any name in :data:`MODEL_FORMS` works wherever a model is asked for:
    ``hf-hub:org/repo`` (a Hub repository, sha256-pinned where known), or a local directory
    written by ``CoreModel.save_pretrained``.

    Returns:
        e.g. ``["realness-core-lite"]``.
    """
    return [entry.kind for entry in CORE_MODELS.entries() if not entry.needs_argument]


def bundled_model_dir(name: str) -> Path | None:
    """The verified directory of a bundled model (pinned in :data:`realness.hub.PINNED`), or None if ``name`` is not bundled."""
    return packaged_model_dir(name) if name in list_models() else None


def resolve_core_dir(name_or_path: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """A directory holding a CORE model's ``config.json`` and ``model.safetensors`` (Hub files cached in ``cache_dir``).

    Raises:
        UnknownNameError: a bare name (no folder, no ``org/``) that is not a bundled model.
        WeightsNotFoundError: a directory or Hub repository that does not hold the model.
    """
    name = str(name_or_path)
    if Path(name).exists():
        return resolve_model_dir(name, files=(CONFIG_NAME, WEIGHTS_NAME))
    if CORE_MODELS.accepts(name):
        return CORE_MODELS.build(name, revision=revision, cache_dir=cache_dir)
    if "/" not in name and "\\" not in name:
        # Not a directory, not org/repo: a typo of a bundled name rather than a Hub repository.
        raise UnknownNameError(repr(name), f"not a bundled model ({', '.join(list_models())}); use {', '.join(MODEL_FORMS[1:])}")
    return resolve_model_dir(name, files=(CONFIG_NAME, WEIGHTS_NAME), revision=revision, cache_dir=cache_dir)
