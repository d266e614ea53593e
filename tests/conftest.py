"""Shared fixtures: tiny randomly initialized encoders saved to disk, the RAISE-TD location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# No test may reach the network: huggingface_hub's telemetry would otherwise try once per process.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

REPO_ROOT = Path(__file__).resolve().parents[1]
RAISE_TD = Path(os.environ.get("REALNESS_RAISE_TD", REPO_ROOT.parent / "shared" / "datasets" / "raise-td"))

_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "yes no somewhat the a hand face has six fingers sky looks fine distorted object "
    "transitions unrealistic lighting shadow blur text sign horse reins neck . , -"
).split()


def require_raise_td() -> Path:
    """The RAISE-TD root, or skip the calling test with the reason."""
    if not (RAISE_TD / "test" / "image_descriptions.csv").is_file():
        pytest.skip(f"RAISE-TD not found at {RAISE_TD} (set REALNESS_RAISE_TD or place it in ../shared/datasets/raise-td)")
    return RAISE_TD


@pytest.fixture(scope="session", autouse=True)
def _private_user_cache(tmp_path_factory):
    """The user cache (finished tables' run records, the description cache) in a temporary folder.

    Set in ``os.environ``, so CLI subprocesses and Ray workers started by a test inherit it.
    """
    cache = tmp_path_factory.mktemp("user-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))  # platformdirs' user_cache_dir on Linux
        patch.setenv("REALNESS_CACHE_DIR", str(cache / "realness"))  # the description cache, read first
        yield cache


@pytest.fixture(autouse=True)
def _no_hub_telemetry(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)


@pytest.fixture(scope="session")
def tiny_text_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT (hidden 16, 1 layer) and its WordPiece tokenizer, saved as safetensors."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    (directory / "vocab.txt").write_text("\n".join(_VOCAB) + "\n")
    vocab = str(directory / "vocab.txt")
    tokenizer = BertTokenizerFast(vocab_file=vocab, vocab=vocab)  # transformers 5 reads `vocab`, 4 `vocab_file`
    assert len(tokenizer) == len(_VOCAB), "the tiny tokenizer lost its vocabulary: every word would be [UNK]"
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_image_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random ResNet (two stages, 16-d pooled output), saved as safetensors."""
    from transformers import ResNetConfig, ResNetModel

    directory = tmp_path_factory.mktemp("tiny-resnet")
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def lite_model():
    """The bundled ``realness-core-lite``, loaded once for the whole session (tests only read it)."""
    from realness.core import CoreModel
    from realness.core.pretrained import DEFAULT_MODEL

    return CoreModel.from_pretrained(DEFAULT_MODEL)


@pytest.fixture
def tiny_core_config(tiny_image_encoder_dir, tiny_text_encoder_dir):
    """A CORE configuration over the tiny encoders (input 32 px, hidden 8)."""
    from realness.core import CoreConfig, ImageEncoderConfig, TextEncoderConfig

    return CoreConfig(
        image_encoder=ImageEncoderConfig(family="transformers", name=str(tiny_image_encoder_dir), input_size=32, min_size=8),
        text_encoder=TextEncoderConfig(family="transformers", name=str(tiny_text_encoder_dir), pooling="cls"),
        hidden_dim=8,
    )


@pytest.fixture
def tiny_model(tiny_core_config):
    """A CORE model over the tiny encoders with a random head marked trained (mechanics only, never shipped)."""
    from realness.core import CoreModel

    torch.manual_seed(1)
    model = CoreModel(tiny_core_config)
    model.trained = True
    return model.eval()


@pytest.fixture
def tiny_model_dir(tiny_model, tmp_path) -> Path:
    """:func:`tiny_model` saved with ``save_pretrained``."""
    return tiny_model.save_pretrained(tmp_path / "tiny-model")
