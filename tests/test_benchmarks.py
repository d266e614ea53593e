"""Benchmark scripts run end to end on small synthetic data with tiny encoders."""

from __future__ import annotations

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

    from realness.training import TrainingConfig

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
