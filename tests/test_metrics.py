"""realness.metrics.Realness: accumulation, kept scores, skipped items, DDP reduction, missing extra."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from realness.core import CoreModel, RealnessScorer
from realness.errors import MissingDependencyError

pytest.importorskip("torchmetrics")
from realness.metrics import Realness  # noqa: E402

TEXTS = ["No.", "Yes. The hand has six fingers.", "Somewhat. Blur.", "No.", "Yes. Distorted sky."]


def _images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 36, 36, generator=torch.Generator().manual_seed(seed))


def test_mean_over_updates_matches_one_batch(tiny_model_dir):
    images, texts = _images(5), TEXTS
    expected = RealnessScorer(CoreModel.from_pretrained(tiny_model_dir), device="cpu")(images, texts).scores
    metric = Realness(model=tiny_model_dir, keep_scores=True)
    metric.update(images[:2], texts[:2])
    metric.update(images[2:], texts[2:])
    out = metric.compute()
    torch.testing.assert_close(out["scores"], expected, atol=1e-5, rtol=1e-5)
    assert float(out["mean"]) == pytest.approx(float(expected.mean()), abs=1e-5)
    assert Realness.higher_is_better is True and Realness.is_differentiable is False
    metric.reset()
    with pytest.warns(UserWarning):  # torchmetrics warns about compute() before update()
        assert torch.isnan(metric.compute()["mean"])


def test_running_state_is_bounded_and_scorer_is_not_state(tiny_model_dir):
    metric = Realness(model=tiny_model_dir)
    for seed in range(4):
        metric.update(_images(2, seed), ["No."] * 2)
    assert int(metric.count) == 8 and metric.total.shape == () and not hasattr(metric, "scores")
    assert isinstance(metric.compute(), torch.Tensor) and metric.compute().shape == ()
    keys = set(metric.state_dict()) | {name for name, _ in metric.named_parameters()}
    assert not any("head" in key or "encoder" in key for key in keys)
    metric.persistent(True)
    assert set(metric.state_dict()) == {"total", "count", "skipped"}
    assert metric.to(torch.float64).scorer.device == torch.device("cpu")
    moved = metric.to("meta")  # stands in for "cuda": the scorer must follow the metric's device
    assert moved.scorer.device.type == "meta"
    assert all(p.device.type == "meta" for p in moved.scorer.model.parameters())


def test_skipped_images_are_counted_not_averaged(tiny_model_dir, tmp_path):
    good = tmp_path / "good.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (120, 30, 200)).save(good)
    (tmp_path / "bad.png").write_bytes(b"broken")
    metric = Realness(model=tiny_model_dir, on_error="skip", keep_scores=True)
    metric.update([str(good), str(tmp_path / "bad.png")], ["No.", "No."])
    out = metric.compute()
    assert int(metric.skipped) == 1 and int(metric.count) == 1 and out["scores"].numel() == 1
    assert torch.isfinite(out["mean"])
    strict = Realness(model=tiny_model_dir)
    with pytest.raises(Exception, match="bad.png"):
        strict.update([str(tmp_path / "bad.png")], ["No."])
    with pytest.raises(ValueError, match="on_error"):
        Realness(model=tiny_model_dir, on_error="ignore")


def test_missing_torchmetrics_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # makes `import torchmetrics` fail
    spec = importlib.util.find_spec("realness.metrics")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(MissingDependencyError, match=r"realness\[metrics\]") as error:
        module.Realness()
    assert error.value.package == "torchmetrics"


def _ddp_worker(rank: int, world_size: int, rendezvous: str, model_dir: str, out_dir: str) -> None:
    import torch.distributed as dist

    # A file rendezvous cannot race another process for a port, as a probed free TCP port can.
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        images = _images(5)
        # Uneven shards (3 and 2 images) exercise the padded gather of the kept scores.
        part = slice(0, 3) if rank == 0 else slice(3, 5)
        metric = Realness(model=model_dir, keep_scores=True)
        metric.update(images[part], TEXTS[part])
        out = metric.compute()
        result = {"mean": float(out["mean"]), "scores": out["scores"].tolist(), "count": int(metric.count)}
        with open(f"{out_dir}/rank{rank}.json", "w") as handle:
            json.dump(result, handle)
        # Leave together: a rank that exits while the other still talks to it aborts gloo (SIGABRT).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_reduce_to_the_single_process_mean(tiny_model_dir, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "rendezvous"), str(tiny_model_dir), str(tmp_path)), nprocs=2, join=True)
    single = Realness(model=tiny_model_dir, keep_scores=True)
    single.update(_images(5), TEXTS)
    expected = single.compute()
    for rank in range(2):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result["mean"] == pytest.approx(float(expected["mean"]), abs=1e-5)
        assert result["scores"] == pytest.approx(expected["scores"].tolist(), abs=1e-5)
        assert result["count"] == (3 if rank == 0 else 2)  # the local state is restored after compute()
