"""A CORE model through the (fake, loopback) Hub: push, download, offline cache hit, pinned hash."""

from __future__ import annotations

import pytest
import torch

from fake_hub import FakeHub
from realness import hub
from realness.core import CoreModel, RealnessScorer
from realness.errors import ChecksumError, WeightsNotFoundError
from test_hub import hub_env  # noqa: F401  (fixture)

REPO = "me/tiny-core"


def test_push_download_cache_and_pin(tiny_model, hub_env, monkeypatch):  # noqa: F811
    images, texts = torch.rand(3, 3, 36, 36, generator=torch.Generator().manual_seed(0)), ["No.", "Yes. Blur.", ""]
    expected = RealnessScorer(tiny_model, device="cpu")(images, texts).scores
    with FakeHub({}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        commit = tiny_model.push_to_hub(REPO, token="hf_test_token_not_real")
        assert set(server.files(REPO)) == {"config.json", "model.safetensors"}

        downloaded = CoreModel.from_pretrained(f"{REPO}@{commit}")
        torch.testing.assert_close(RealnessScorer(downloaded, device="cpu")(images, texts).scores, expected)

        # Offline: served from the cache without a single request.
        before = server.request_count()
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        CoreModel.from_pretrained(f"{REPO}@{commit}")
        assert server.request_count() == before

        # A pinned hash that the cached file does not match: refused, never loaded.
        pins = {"model.safetensors": "0" * 64}
        monkeypatch.setitem(hub.PINNED, REPO, hub.PinnedModel(REPO, commit, pins))
        with pytest.raises(ChecksumError, match="model.safetensors"):
            CoreModel.from_pretrained(REPO)
        # ... and, evicted from the cache, it is now simply missing while offline.
        with pytest.raises(WeightsNotFoundError, match=REPO):
            CoreModel.from_pretrained(REPO)


def test_cache_dir_is_where_a_downloaded_model_lands(tiny_model, hub_env, monkeypatch, tmp_path):  # noqa: F811
    with FakeHub({}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        commit = tiny_model.push_to_hub(REPO, token="hf_test_token_not_real")
        cache = tmp_path / "my-cache"
        scorer = RealnessScorer.from_pretrained(f"hf-hub:{REPO}@{commit}", device="cpu", cache_dir=cache)
        assert scorer.model.trained
        assert list(cache.rglob("model.safetensors")), "the model was not cached where cache_dir says"
        # Offline, the same cache_dir serves it; the default cache never saw it.
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        CoreModel.from_pretrained(f"{REPO}@{commit}", cache_dir=cache)
        with pytest.raises(WeightsNotFoundError, match=REPO):
            CoreModel.from_pretrained(f"{REPO}@{commit}")
