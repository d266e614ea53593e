"""CORE model and scorer on tiny random encoders: save/load, batching, bad inputs, CLI."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from realness.core import CoreConfig, CoreModel, RealnessScorer, UntrainedModelError
from realness.describers import descriptions as descriptions_module
from realness.errors import ImageOnlyWarning, InvalidImageError


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(5):
        array = rng.integers(0, 256, size=(40 + index * 7, 48, 3), dtype=np.uint8)
        path = tmp_path / f"img{index}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def test_config_round_trips_through_json():
    config = CoreConfig.lite()
    assert CoreConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert CoreConfig.paper().hidden_dim == 529
    with pytest.raises(ValueError, match="unknown CORE configuration"):
        CoreConfig.preset("huge")


def test_save_and_load_give_identical_scores(tiny_model, tmp_path, image_files):
    tiny_model.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    loaded = CoreModel.from_pretrained(tmp_path / "model")
    texts = ["Yes. The hand has six fingers.", ""] * 2 + ["No."]
    before = RealnessScorer(tiny_model, device="cpu")(image_files, texts).scores
    after = RealnessScorer(loaded, device="cpu")(image_files, texts).scores
    torch.testing.assert_close(before, after)
    assert torch.isfinite(after).all()


def test_untrained_weights_are_refused_unless_allowed(tiny_core_config, tmp_path):
    CoreModel(tiny_core_config).save_pretrained(tmp_path / "untrained")
    with pytest.raises(UntrainedModelError, match="untrained head"):
        CoreModel.from_pretrained(tmp_path / "untrained")
    assert not CoreModel.from_pretrained(tmp_path / "untrained", allow_untrained=True).trained


def test_scores_do_not_depend_on_container_or_batch_size(tiny_model, image_files):
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2)
    path = image_files[0]
    pil = Image.open(path)
    array = np.array(pil)
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    result = scorer([str(path), pil, array, tensor, path.read_bytes()], ["No."] * 5)
    assert torch.allclose(result.scores, result.scores[0].expand(5), atol=1e-5)
    small = RealnessScorer(tiny_model, device="cpu", batch_size=1)(image_files, ["No."] * 5).scores
    large = RealnessScorer(tiny_model, device="cpu", batch_size=16)(image_files, ["No."] * 5).scores
    torch.testing.assert_close(small, large, atol=1e-5, rtol=1e-5)


def test_worker_decoding_matches_in_process(tiny_model, image_files):
    texts = ["Somewhat. Blur."] * len(image_files)
    inline = RealnessScorer(tiny_model, device="cpu", batch_size=2, num_workers=0)(image_files, texts).scores
    workers = RealnessScorer(tiny_model, device="cpu", batch_size=2, num_workers=2)(image_files, texts).scores
    torch.testing.assert_close(inline, workers)


def test_bchw_batch_and_single_item(tiny_model):
    scorer = RealnessScorer(tiny_model, device="cpu")
    batch = torch.rand(3, 3, 36, 36)
    result = scorer(batch, ["No.", "Yes. Distorted face.", "Somewhat."])
    assert len(result) == 3 and not result.single
    assert result.verdicts == ["no", "yes", "somewhat"]
    single = scorer(batch[1], "Yes. Distorted face.")
    assert single.single and math.isclose(float(single), float(result.scores[1]), abs_tol=1e-5)


def test_skip_keeps_every_good_score(tiny_model, image_files, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(image_files[0].read_bytes()[:100])
    missing = tmp_path / "missing.png"
    items = [image_files[0], corrupt, image_files[1], missing, image_files[2]]
    scorer = RealnessScorer(tiny_model, device="cpu", batch_size=2)
    result = scorer(items, ["No."] * 5, on_error="skip")
    alone = scorer([image_files[0], image_files[1], image_files[2]], ["No."] * 3).scores
    assert torch.isnan(result.scores[[1, 3]]).all()
    torch.testing.assert_close(result.scores[[0, 2, 4]], alone)
    assert [s.index for s in result.skipped] == [1, 3]
    assert str(corrupt) in result.skipped[0].item and str(missing) in result.skipped[1].item
    rows = result.to_rows()
    assert rows[1]["score"] is None and rows[1]["error"]
    with pytest.raises(InvalidImageError, match="corrupt.png"):
        scorer(items, ["No."] * 5)


def test_too_small_image_is_named(tiny_model):
    scorer = RealnessScorer(tiny_model, device="cpu")
    with pytest.raises(InvalidImageError, match=r"item 1"):
        scorer([torch.rand(3, 40, 40), torch.rand(3, 4, 4)], ["No.", "No."])


def test_description_mismatch_is_an_error(tiny_model):
    scorer = RealnessScorer(tiny_model, device="cpu")
    with pytest.raises(ValueError, match="2 descriptions were given for 3 images"):
        scorer(torch.rand(3, 3, 32, 32), ["a", "b"])
    with pytest.raises(ValueError, match="one string was given for 2 images"):
        scorer(torch.rand(2, 3, 32, 32), "a")


def test_image_only_scoring_warns_once(tiny_model, monkeypatch):
    monkeypatch.setattr(descriptions_module, "_WARNED_IMAGE_ONLY", False)
    scorer = RealnessScorer(tiny_model, device="cpu")
    with pytest.warns(ImageOnlyWarning, match="image-only"):
        first = scorer(torch.rand(3, 32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer(torch.rand(3, 32, 32))
    assert first.descriptions == [None] and first.verdicts == [None]
    assert math.isfinite(float(first))


def test_description_changes_the_score(tiny_model):
    scorer = RealnessScorer(tiny_model, device="cpu")
    image = torch.rand(3, 32, 32)
    a = float(scorer(image, "No."))
    b = float(scorer(image, "Yes. The hand has six fingers and the face is distorted."))
    assert a != b


def test_modalities_ablation_ignores_the_other_input(tiny_core_config):
    tiny_core_config.modalities = "image"
    model = CoreModel(tiny_core_config).eval()
    scorer = RealnessScorer(model, device="cpu")
    image = torch.rand(3, 32, 32)
    assert float(scorer(image, "No.")) == pytest.approx(float(scorer(image, "Yes. Six fingers.")), abs=1e-6)


def test_trainable_modes_unfreeze_only_the_last_stage(tiny_model):
    encoder = tiny_model.image_encoder
    encoder.set_trainable("last")
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(".stages.1." in n for n in trainable)
    encoder.set_trainable("frozen")
    assert not any(p.requires_grad for p in encoder.parameters())


def test_an_interrupted_save_leaves_the_previous_model_whole(tiny_model, tmp_path, monkeypatch):
    saved = tiny_model.save_pretrained(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    real_write_bytes = Path.write_bytes

    def interrupted(path, data):  # the weights file is half written when Ctrl-C arrives
        real_write_bytes(path, data[:7])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tiny_model.save_pretrained(saved)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before  # nothing truncated
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left
    CoreModel.from_pretrained(saved)


def test_pad_keeps_the_aspect_ratio_and_leaves_a_4_3_image_untouched():
    from realness.io.pixels import PAD_VALUE, resize_image

    square = torch.rand(3, 200, 200)
    padded = resize_image(square, (384, 512), resize="pad")
    assert padded.shape == (3, 384, 512)
    # Scaled to the full height (384), centred: 64 columns of mid-grey on each side, the image between.
    assert torch.all(padded[:, :, :64] == PAD_VALUE) and torch.all(padded[:, :, -64:] == PAD_VALUE)
    torch.testing.assert_close(padded[:, :, 64:-64], resize_image(square, (384, 384)))
    wide = torch.rand(2, 3, 90, 320)  # batches too: 16:9 gets bands above and below
    banded = resize_image(wide, (384, 512), resize="pad")
    assert banded.shape == (2, 3, 384, 512) and torch.all(banded[:, :, :48] == PAD_VALUE)
    native = torch.rand(3, 384, 512)
    assert resize_image(native, (384, 512), resize="pad").data_ptr() == native.data_ptr()  # nothing resampled
    other_4_3 = torch.rand(3, 300, 400)
    assert torch.equal(resize_image(other_4_3, (384, 512), resize="pad"), resize_image(other_4_3, (384, 512)))
