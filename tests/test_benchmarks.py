"""Benchmark scripts run end to end on small synthetic data with tiny encoders."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    yield
    for name in ("agin", "recipe"):
        sys.modules.pop(name, None)


def test_agin_k_fold_protocol_covers_every_image_once(benchmarks_on_path, tiny_core_config):
    from agin import run_agin

    from realness.training.trainer import TrainingConfig

    rng = np.random.default_rng(0)
    brightness = rng.uniform(0.1, 0.9, 40)
    images = [(torch.full((3, 36, 36), float(b)) + 0.05 * torch.randn(3, 36, 36)).clamp(0, 1) for b in brightness]
    descriptions = ["No." if b > 0.5 else "Yes. The lighting looks unrealistic." for b in brightness]
    results = run_agin(images, brightness, descriptions, tiny_core_config,
                       TrainingConfig(epochs=60, learning_rate=3e-3, augmented_views=1, degradations=()), folds=4, progress=False)
    folds = [row for row in results["rows"] if isinstance(row["fold"], int)]
    assert [row["fold"] for row in folds] == [0, 1, 2, 3]
    # Brightness is the planted MOS and the descriptions tell dark from bright: every held-out fold ranks well.
    assert min(row["srocc"] for row in folds) > 0.6
    assert results["rows"][-2]["fold"].startswith("mean +- std")


# The figures issue 18 asks of the GPU check, each of which the smoke run must produce.
GPU_CHECK_FIGURES = (
    "dream_seconds_per_image_bf16",
    "dream_seconds_per_image_fp32",
    "dream_ratio_to_bare_tower_bf16",
    "dream_ratio_to_bare_tower_fp32",
    "dream_per_window_loop_windows_per_s_bf16",
    "dream_speedup_over_per_window_loop_bf16",
    "dream_peak_memory_mib_bf16",
    "dream_map_pearson_bf16_vs_fp32",
    "core_png_images_per_s",
    "core_png_ratio_to_bare",
    "core_tensor_batch_images_per_s",
    "core_tensor_batch_ratio_to_bare",
    "core_cpu_vs_device_max_abs_diff_fp32",
    "core_cpu_vs_device_max_abs_diff_bf16",
)


def test_gpu_check_smoke_run_produces_every_figure(tmp_path):
    script = REPO_ROOT / "benchmarks" / "gpu_check.py"
    command = [sys.executable, str(script), "--smoke", "--device", "cpu", "--out-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    figures = record["results"]
    for name in GPU_CHECK_FIGURES:
        assert isinstance(figures[name], (int, float)) and math.isfinite(figures[name]), name
    for name in GPU_CHECK_FIGURES[:8] + GPU_CHECK_FIGURES[8:12]:
        assert figures[name] > 0, name
    assert -1.0 <= figures["dream_map_pearson_bf16_vs_fp32"] <= 1.0
    assert figures["dream_windows_per_image"] == 50  # windows 32 and 16 at stride 8 on 64x48
    # The "device" is the CPU itself: fp32 agrees exactly, and bf16 really ran in bf16.
    assert figures["core_cpu_vs_device_max_abs_diff_fp32"] == 0.0
    assert figures["core_cpu_vs_device_max_abs_diff_bf16"] > 0.0
    assert "random-weight" in figures["core_model"]
    assert record["command"].startswith("python benchmarks/gpu_check.py --smoke") and record["date_utc"]
    assert "dream_seconds_per_image_bf16" in (tmp_path / "gpu_check.md").read_text()
