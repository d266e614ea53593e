"""Where CORE weights come from: models bundled in the package, else :mod:`realness.hub`.

Bundled models live in ``realness/weights/<name>/`` and are pinned by sha256 in the one pin
table (:data:`realness.hub.PINNED`), so a damaged installation is refused instead of silently
scoring with corrupt weights.
"""

from __future__ import annotations

from pathlib import Path

from realness.errors import UnknownNameError
from realness.hub import PINNED, packaged_model_dir, resolve_model_dir

DEFAULT_MODEL = "realness-core-lite"
#: The two files of a saved CORE model (written by ``CoreModel.save_pretrained``).
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

#: The spellings a CORE model name may take, wherever one is accepted (``--model``, ``model=``).
MODEL_FORMS = ("realness-core-lite", "hf-hub:ORG/REPO[@REVISION]", "ORG/REPO", "DIR")


def list_models() -> list[str]:
    """The CORE models installed with the package (usable offline), by name.

    Any name in :data:`MODEL_FORMS` works wherever a model is asked for:
    ``hf-hub:org/repo`` (a Hub repository, sha256-pinned where known), or a local directory
    written by ``CoreModel.save_pretrained``.

    Returns:
        e.g. ``["realness-core-lite"]``.
    """
    return sorted(name for name, pin in PINNED.items() if pin.offline_package == "realness")


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
    bundled = bundled_model_dir(name)
    if bundled is not None:
        return bundled
    if "/" not in name and "\\" not in name and not Path(name).exists():
        # Not a directory, not org/repo: a typo of a bundled name rather than a Hub repository.
        raise UnknownNameError(
            repr(name), f"not a bundled model ({', '.join(list_models())}); use hf-hub:ORG/REPO or a local directory"
        )
    return resolve_model_dir(str(name_or_path), files=(CONFIG_NAME, WEIGHTS_NAME), revision=revision, cache_dir=cache_dir)
