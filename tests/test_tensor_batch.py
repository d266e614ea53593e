"""Tensor batches stay on their device: same scores and maps as the per-image path, no host copy.

No GPU runs the default tests, so :class:`HostTransfers` simulates one: the input tensors, and
every tensor computed from them, count as living on an accelerator, and each operation that
would copy such a tensor to the host (``.cpu()``, ``.to("cpu")``, ``.numpy()``, ``.tolist()``,
``.item()``, ``bool()``, ``float()``, a copy into a host tensor...) is recorded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from realness.core import RealnessScorer
from realness.dream import RealnessMapper
from realness.errors import InvalidImageError
from realness.io.inputs import load_image
from realness.io.tensor_batch import as_tensor_batch
from test_dream import save_tiny_clip

# The tensor path and the per-image path compute the same float32 operations batch for batch;
# this bound leaves room for a vectorized kernel summing in another order.
SCORE_TOLERANCE = 1e-6

TEXTS = ["No.", "Yes. The hand has six fingers.", "Somewhat. Blur.", "No.", "Yes. Distorted sky."]

_TO_HOST = {
    torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.__bool__,
    torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__, torch.Tensor.__array__,
}
_INTO_HOST = {torch.Tensor.copy_, torch.Tensor.__setitem__}  # a device value written into a host tensor


class HostTransfers(TorchFunctionMode):
    """Records ``(operation, shape)`` for each copy to the host of a tensor on the simulated device."""

    def __init__(self, *on_device: torch.Tensor):
        super().__init__()
        self.transfers: list[tuple[str, tuple[int, ...]]] = []
        for tensor in on_device:
            _place(tensor)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)]
        from_device = any(_on_device(tensor) for tensor in tensors)
        if from_device and self._copies_to_host(func, args, kwargs):
            source = next(tensor for tensor in tensors if _on_device(tensor))
            self.transfers.append((func.__name__, tuple(source.shape)))
            out = func(*args, **kwargs)
            # On the CPU, .cpu() returns the tensor itself: a clone stands for the host copy.
            return out.clone() if isinstance(out, torch.Tensor) and _on_device(out) else out
        out = func(*args, **kwargs)
        if from_device:
            for leaf in tree_leaves(out):
                if isinstance(leaf, torch.Tensor):
                    _place(leaf)
        return out

    @staticmethod
    def _copies_to_host(func, args, kwargs) -> bool:
        if func in _TO_HOST:
            return True
        if func in _INTO_HOST:
            return not _on_device(args[0])
        if func is torch.Tensor.to:
            targets = [*args[1:], kwargs.get("device")]
            return any(isinstance(t, (str, torch.device)) and torch.device(t).type == "cpu" for t in targets)
        return False


def _place(tensor: torch.Tensor) -> None:
    tensor._on_simulated_device = True


def _on_device(tensor: torch.Tensor) -> bool:
    return getattr(tensor, "_on_simulated_device", False)


def _batch(count: int = 5, height: int = 36, width: int = 44, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_the_recorder_sees_the_host_copy_of_the_per_image_path(tiny_model):
    images = _batch()
    with HostTransfers(images) as recorder:
        RealnessScorer(tiny_model, device="cpu")(list(images), TEXTS)  # a list: each image is copied to the host
    assert ("cpu", (3, 36, 44)) in recorder.transfers


def test_scoring_a_tensor_batch_copies_only_its_scores_to_the_host(tiny_model):
    images = _batch()
    with HostTransfers(images) as recorder:
        result = RealnessScorer(tiny_model, device="cpu", batch_size=2)(images, TEXTS)
    # Three forward batches, one copy: each image's score and interval beside its value check (count, min, max).
    assert recorder.transfers == [("cpu", (5, 6))]
    assert torch.isfinite(result.scores).all()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _batch(), id="float-rgb-resized"),
        pytest.param(lambda: _batch(height=32, width=32), id="float-rgb-at-input-size"),
        pytest.param(lambda: (_batch() * 255).to(torch.uint8), id="uint8"),
        pytest.param(lambda: _batch()[:, :1], id="gray"),
        pytest.param(lambda: torch.cat([_batch(), _batch(seed=1)[:, :1]], dim=1), id="rgba"),
        pytest.param(lambda: _batch().double(), id="float64"),
    ],
)
def test_a_tensor_batch_scores_as_the_per_image_path(tiny_model, make):
    images = make()
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2)
    batched = scorer(images, TEXTS).scores
    # Arrays take the per-image path: decoded one by one on the CPU, batched by the DataLoader.
    arrays = [image.permute(1, 2, 0).numpy() for image in images]
    per_image = scorer(arrays, TEXTS).scores
    torch.testing.assert_close(batched, per_image, atol=SCORE_TOLERANCE, rtol=0)


def test_a_lone_image_tensor_takes_the_tensor_path(tiny_model):
    image = _batch(1)[0]
    with HostTransfers(image) as recorder:
        lone = RealnessScorer(tiny_model, device="cpu")(image, "No.")
    assert lone.single and recorder.transfers == [("cpu", (1, 6))]
    assert float(lone) == pytest.approx(float(RealnessScorer(tiny_model, device="cpu")(image.numpy().transpose(1, 2, 0), "No.")), abs=SCORE_TOLERANCE)


def test_bad_values_in_a_batch_are_found_on_the_device_and_named(tiny_model):
    images = _batch()
    images[1, 0, 3, 4] = float("nan")
    images[3] *= 2.0
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2)
    result = scorer(images, TEXTS, on_error="skip")
    assert torch.isnan(result.scores[[1, 3]]).all() and torch.isfinite(result.scores[[0, 2, 4]]).all()
    for skipped in result.skipped:  # the reasons of the per-image path, word for word
        with pytest.raises(InvalidImageError) as per_image:
            load_image(images[skipped.index])
        assert skipped.reason == per_image.value.reason
    assert [s.index for s in result.skipped] == [1, 3] and "NaN" in result.skipped[0].reason
    good = scorer(images[[0, 2, 4]], [TEXTS[i] for i in (0, 2, 4)]).scores
    torch.testing.assert_close(result.scores[[0, 2, 4]], good, atol=SCORE_TOLERANCE, rtol=0)
    with pytest.raises(InvalidImageError, match=r"item 1 .*NaN"):
        scorer(images, TEXTS)


def test_iter_batches_hands_back_each_forward_batch(tiny_model):
    images = _batch()
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2)
    parts = list(scorer.iter_batches(images, TEXTS))
    assert [indices for indices, _ in parts] == [[0, 1], [2, 3], [4]]
    torch.testing.assert_close(torch.cat([part.scores for _, part in parts]), scorer(images, TEXTS).scores)


def test_layouts_the_contract_refuses_take_the_per_image_path(tiny_model):
    assert as_tensor_batch(torch.rand(2, 36, 36, 3)) is None  # channels last: the per-image path names it
    assert as_tensor_batch(torch.zeros(2, 3, 8, 8, dtype=torch.int32)) is None
    assert as_tensor_batch(torch.rand(2, 3, 16, 16), min_size=32) is None
    scorer = RealnessScorer(tiny_model, device="cpu")
    with pytest.raises(InvalidImageError, match=r"item 0 .*permute a HxWxC tensor"):
        scorer(torch.rand(2, 36, 36, 3), ["No.", "No."])
    with pytest.raises(InvalidImageError, match=r"item 0 .*below the minimum of 8 px"):
        scorer(torch.rand(2, 3, 4, 40), ["No.", "No."])


def test_the_metric_updates_from_one_copy_of_the_scores(tiny_model_dir):
    pytest.importorskip("torchmetrics")
    from realness.metrics import Realness

    images = _batch()
    metric = Realness(model=tiny_model_dir, keep_scores=True, batch_size=2)
    with HostTransfers(images) as recorder:
        metric.update(images, TEXTS)
    assert recorder.transfers == [("cpu", (5, 6))]
    expected = RealnessScorer(metric.scorer.model, device="cpu")([image.permute(1, 2, 0).numpy() for image in images], TEXTS).scores
    torch.testing.assert_close(metric.compute()["scores"], expected, atol=SCORE_TOLERANCE, rtol=0)


@pytest.fixture(scope="module")
def tiny_mapper(tmp_path_factory) -> RealnessMapper:
    clip = save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))
    return RealnessMapper.from_pretrained(clip, window_sizes=(24, 16), stride=8, device="cpu", batch_size=16)


def test_dream_maps_a_tensor_batch_without_copying_its_pixels_to_the_host(tiny_mapper):
    images = _batch(2, height=40, width=48)
    texts = ["the sky is distorted", "six fingers"]
    with HostTransfers(images) as recorder:
        maps = tiny_mapper(images, texts)
    # One read of the value checks; after that only the maps (H x W each) and their scalars come back.
    assert recorder.transfers.count(("tolist", (2, 3))) == 1
    assert all(np.prod(shape) < 3 * 40 * 48 for _, shape in recorder.transfers)
    per_image = tiny_mapper([image.permute(1, 2, 0).numpy() for image in images], texts)
    for on_device, decoded in zip(maps, per_image):
        np.testing.assert_allclose(on_device.map, decoded.map, atol=1e-5)


def test_dream_skips_a_tensor_image_with_bad_values(tiny_mapper):
    images = _batch(2, height=40, width=48)
    images[0] -= 0.5
    result = tiny_mapper(images, ["a", "b"], on_error="skip")
    assert result.maps[0] is None and result.maps[1] is not None
    assert "outside [0, 1]" in result.skipped[0].reason
