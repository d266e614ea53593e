"""Realness maps from the bundled CORE model (``RealnessMapper(method="core")``, ``realness map``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from realness.dream import RealnessMapper
from realness.dream.core_map import CoreRegionReader
from realness.hub import available_locally
from realness.io.inputs import load_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"
# The pasted patch of the edited cat: rows 90-149, columns 160-239.
PATCH = (slice(90, 150), slice(160, 240))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "realness.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - started


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "empty-hf-home"), HF_HUB_DISABLE_TELEMETRY="1", **extra)
    return env


def test_region_features_of_the_whole_image_are_the_encoders_features(lite_model):
    """One region covering the whole (square) input is the global feature vector the head's kernel was trained on
    (the encoder's pooled maps; the scene statistics beside them are the image's, not a region's)."""
    image = load_image(EXAMPLES / "chelsea_edited.png")[:, :256, :256]
    reader = CoreRegionReader(lite_model, region_sizes=(384,), region_weight=1.0)
    maps, shape = reader.feature_maps(image)
    assert shape == (384, 384)
    features, tops, lefts = reader.region_features(maps, shape, 384)
    kernel_dim = lite_model.config.image_dim - lite_model.head.statistics_dim
    assert features.shape == (1, kernel_dim) and tops.tolist() == [0] and lefts.tolist() == [0]
    config = lite_model.image_encoder.config
    from realness.io.pixels import normalize, resize_image

    pixels = normalize(resize_image(image, shape, resize="squash", interpolation=config.interpolation), config.mean, config.std)
    with torch.inference_mode():
        expected = lite_model.head.split(lite_model.image_encoder(pixels.unsqueeze(0)))[0]
    # The encoder's std is the unbiased one: equal up to sqrt(n / (n - 1)) on the smallest map (12 x 12 cells).
    assert torch.allclose(features, expected, rtol=1e-2, atol=1e-3)


def test_core_maps_of_a_batch_skip_a_bad_item_and_say_how_they_were_made(lite_model, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    mapper = RealnessMapper(method="core", core_model=lite_model, device="cpu")
    batch = mapper([EXAMPLES / "chelsea_edited.png", bad, EXAMPLES / "coffee.png"], on_error="skip")
    assert batch[1] is None and batch.skipped[0].index == 1 and "broken.png" in batch.skipped[0].item
    for result, name in ((batch[0], "chelsea_edited.png"), (batch[2], "coffee.png")):
        size = Image.open(EXAMPLES / name).size
        assert result.shape == (size[1], size[0]) and result.map.min() == 0.0 and result.map.max() == 1.0
        assert result.method == "core" and result.description == ""
    overlay = batch[0].save(tmp_path / "cat_map.png")
    assert Image.open(overlay).text["realness:method"] == "core"


def test_map_cli_offline_without_flags_finds_the_pasted_patch(tmp_path):
    """The done-when check: HF_HUB_OFFLINE=1, nothing but --out: the core method, the patch below the 25th percentile."""
    out = tmp_path / "chelsea_map.npy"
    done, _ = run_cli(["map", str(EXAMPLES / "chelsea_edited.png"), "--out", str(out)], offline_env(tmp_path, HF_HUB_OFFLINE="1"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "realness map: method core" in done.stderr and "Traceback" not in done.stderr
    realness = np.load(out)
    assert realness.shape == (300, 451)
    assert realness[PATCH].mean() < np.percentile(realness, 25)


def test_map_cli_never_waits_on_an_unreachable_hub(tmp_path):
    """No HF_HUB_OFFLINE, the Hub endpoint a closed port: auto maps with the bundled model at once, dream fails at once.

    Waiting is what the unreachable Hub adds: the same command with HF_HUB_OFFLINE=1 (which asks
    nothing) is the reference, so a busy machine's slow start and compute are not counted.
    """
    env = offline_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    image = str(EXAMPLES / "chelsea_edited.png")
    argv = ["map", image, "--description", "Yes. A pasted patch.", "--out", str(tmp_path / "a.png")]
    reference, offline_seconds = run_cli(argv, {**env, "HF_HUB_OFFLINE": "1"}, tmp_path)
    auto, seconds = run_cli(argv, env, tmp_path)
    assert reference.returncode == 0 and auto.returncode == 0, auto.stderr
    assert "method core" in auto.stderr and "is not on this machine" in auto.stderr
    assert seconds - offline_seconds < 15, f"{seconds:.1f} s, {offline_seconds:.1f} s with HF_HUB_OFFLINE=1"
    baseline = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, realness.cli"], env=env, check=True, timeout=120)
    startup = time.perf_counter() - baseline
    dream, seconds = run_cli(
        ["map", image, "--method", "dream", "--description", "Yes.", "--out", str(tmp_path / "d.png")], env, tmp_path
    )
    assert dream.returncode == 2 and "the Hub is unreachable" in dream.stderr and "Traceback" not in dream.stderr
    assert "Retrying" not in dream.stderr
    assert seconds - startup < 15, f"{seconds:.1f} s (starting Python and torch: {startup:.1f} s)"


def test_available_locally_looks_without_asking(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not available_locally(folder)  # no weights
    (folder / "model.safetensors").write_bytes(b"")
    assert available_locally(folder)
    assert not available_locally("openai/clip-vit-base-patch32")  # not in this empty cache
    assert not available_locally(tmp_path / "missing")
    # An installed offline package counts: the bundled text encoder ships in one.
    assert available_locally("sentence-transformers/all-MiniLM-L6-v2")


def test_core_method_refuses_a_model_it_cannot_read(tiny_model):
    with pytest.raises(ValueError, match="EfficientNet-Lite"):
        RealnessMapper(method="core", core_model=tiny_model, device="cpu")
    with pytest.raises(ValueError, match="method must be one of"):
        RealnessMapper(method="crops")


def test_map_cli_core_folder_saves_every_good_image_and_reports_the_bad_one(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (folder / name).write_bytes((EXAMPLES / name).read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "maps"
    done, _ = run_cli(["map", str(folder), "--method", "core", "--out", str(out), "--npy", "--no-progress"], offline_env(tmp_path), tmp_path)
    assert done.returncode == 1 and "broken.png" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["chelsea_map.npy", "chelsea_map.png", "coffee_map.npy", "coffee_map.png"]
    assert np.load(out / "coffee_map.npy").shape == Image.open(EXAMPLES / "coffee.png").size[::-1]


@pytest.mark.parametrize("kind", ["blur", "noise"])
def test_contrast_detail_map_finds_a_blurred_or_noised_square(lite_model, kind):
    """The shipped reading: a 128-px square of coffee.png blurred or noised lies below the map's 25th percentile."""
    from realness.training.degrade import gaussian_blur, gaussian_noise

    image = load_image(EXAMPLES / "coffee.png")
    height, width = image.shape[-2:]
    square = (slice(height // 2 - 64, height // 2 + 64), slice(width // 2 - 64, width // 2 + 64))
    altered = gaussian_blur(image, 3.0) if kind == "blur" else gaussian_noise(image, 20.0, torch.Generator().manual_seed(0))
    planted = image.clone()
    planted[:, square[0], square[1]] = altered[:, square[0], square[1]]
    realness = RealnessMapper(method="core", core_model=lite_model, device="cpu")(planted).map
    assert realness[square].mean() < np.percentile(realness, 25)
