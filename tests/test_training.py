"""Training on tiny random encoders: the model learns a planted signal, selection, outputs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from realness.core import CoreModel, RealnessScorer
from realness.evaluation.stats import srocc
from realness.training.augment import Augmentation, rotate
from realness.training.trainer import TrainingConfig, encode_frozen_features, save_training_outputs, train_core


def _planted_dataset(count: int = 48, seed: int = 0):
    """Images whose brightness is their MOS; descriptions say so in words."""
    rng = np.random.default_rng(seed)
    brightness = rng.uniform(0.1, 0.9, count)
    images = [
        torch.clamp(torch.full((3, 40, 40), float(b)) + 0.05 * torch.from_numpy(rng.standard_normal((3, 40, 40))).float(), 0, 1)
        for b in brightness
    ]
    descriptions = ["No." if b > 0.5 else "Yes. The lighting looks unrealistic." for b in brightness]
    return images, brightness.astype(np.float32), descriptions


def test_frozen_training_learns_a_planted_signal(tiny_core_config, tmp_path):
    images, mos, descriptions = _planted_dataset()
    config = TrainingConfig(epochs=60, learning_rate=3e-3, augmented_views=2, description_dropout=0.3, seed=0,
                            validation_fraction=0.15, degradations=())
    run = train_core(tiny_core_config, images, mos, descriptions, config=config, progress=False)
    assert len(run.history) == 60 and set(run.validation_indices).isdisjoint(run.train_indices)
    assert run.best_validation == run.history[run.best_epoch - 1]
    assert run.best_validation["val_srocc"] > 0.8
    # Fresh images from the same distribution: the kept model generalizes.
    test_images, test_mos, test_descriptions = _planted_dataset(24, seed=1)
    scores = RealnessScorer(run.model, device="cpu")(test_images, test_descriptions).scores.numpy()
    assert srocc(scores, test_mos) > 0.8

    save_training_outputs(run, tmp_path / "out", config=config)
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "training_history.json", "training_curve.png"} <= files
    history = json.loads((tmp_path / "out" / "training_history.json").read_text())
    assert history["best_epoch"] == run.best_epoch
    reloaded = CoreModel.from_pretrained(tmp_path / "out")  # trained: no allow_untrained needed
    again = RealnessScorer(reloaded, device="cpu")(test_images, test_descriptions).scores.numpy()
    np.testing.assert_allclose(again, scores, atol=1e-5)


def test_training_is_reproducible_for_a_seed(tiny_core_config):
    images, mos, descriptions = _planted_dataset(24)
    config = TrainingConfig(epochs=5, augmented_views=2, seed=3)
    first = train_core(tiny_core_config, images, mos, descriptions, config=config, progress=False)
    features = encode_frozen_features(first.model, images, descriptions, config=config, progress=False)
    second = train_core(tiny_core_config, images, mos, descriptions, config=config, progress=False,
                        encoders_from=first.model, features=features)
    assert [h["train_loss"] for h in first.history] == pytest.approx([h["train_loss"] for h in second.history], rel=1e-5)


def test_partial_fine_tuning_updates_only_the_last_stage(tiny_core_config):
    images, mos, descriptions = _planted_dataset(24)
    tiny_core_config.image_encoder.trainable = "last"
    start = CoreModel(tiny_core_config)
    frozen_before = {n: p.clone() for n, p in start.image_encoder.named_parameters() if ".stages.0." in n}
    last_before = {n: p.clone() for n, p in start.image_encoder.named_parameters() if ".stages.1." in n}
    run = train_core(tiny_core_config, images, mos, descriptions, progress=False, encoders_from=start,
                     config=TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-2))
    params = dict(run.model.image_encoder.named_parameters())
    assert all(torch.equal(params[n], p) for n, p in frozen_before.items())
    assert any(not torch.equal(params[n], p) for n, p in last_before.items())
    assert run.model.config.includes_encoder_weights


def test_augmentation_is_mild_and_seeded():
    image = torch.rand(3, 30, 40)
    augment = Augmentation()
    a = augment(image, torch.Generator().manual_seed(0))
    b = augment(image, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == image.shape
    assert 0 <= a.min() and a.max() <= 1
    assert torch.allclose(rotate(image, 0.0), image)
    quarter = rotate(torch.arange(9.0).view(1, 3, 3).expand(3, 3, 3), 90.0)
    assert quarter[0, 1, 1] == pytest.approx(4.0, abs=1e-4)  # the centre stays put


def test_mismatched_lengths_are_an_error(tiny_core_config):
    with pytest.raises(ValueError, match="lengths differ"):
        train_core(tiny_core_config, [torch.rand(3, 32, 32)] * 3, [0.0, 1.0], ["a"] * 3, progress=False)


def test_too_few_images_to_validate_is_an_error(tiny_core_config):
    images, mos, descriptions = _planted_dataset(10)
    with pytest.raises(ValueError, match="at least 3 validation images"):
        train_core(tiny_core_config, images, mos, descriptions, progress=False,
                   config=TrainingConfig(validation_fraction=0.15))


def test_frozen_features_equal_inference_features(tiny_core_config):
    """Training sees exactly what scoring sees: encoders in eval mode, BatchNorm statistics untouched."""
    images, _, descriptions = _planted_dataset(6)
    model = CoreModel(tiny_core_config)
    assert not model.training and not model.image_encoder.training
    before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    features = encode_frozen_features(model, images, descriptions, config=TrainingConfig(augmented_views=3), progress=False)
    with torch.inference_mode():
        direct = model.encode_images(torch.stack([model.image_encoder.preprocess(image) for image in images]))
    torch.testing.assert_close(features.image[0], direct, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(v, model.image_encoder.state_dict()[k]) for k, v in before.items())


def test_kernel_ridge_head_learns_a_planted_signal_and_ranks_degraded_copies_lower(tiny_core_config, tmp_path):
    from realness.training.degrade import gaussian_noise

    tiny_core_config.head = "kernel_ridge"
    images, mos, descriptions = _planted_dataset(40)
    config = TrainingConfig(validation_fraction=0.0, augmented_views=2, degradations=("noise",),
                            rank_weight=0.3, rank_margin=0.5, kernel_alpha=0.1, kernel_gamma=0.5, seed=0)
    run = train_core(tiny_core_config, images, mos, descriptions, config=config, progress=False)
    # two views and one degraded copy per image, and the degenerate negatives (6 families x 40)
    assert run.model.config.kernel_support == 40 * 3 + len(config.negatives) * config.negatives_per_kind == 40 * 3 + 6 * 40
    test_images, test_mos, test_descriptions = _planted_dataset(24, seed=1)
    scorer = RealnessScorer(run.model, device="cpu")
    with_text = scorer(test_images, test_descriptions).scores.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the image-only notice is tested elsewhere (and shown once per process)
        image_only = scorer(test_images).scores.numpy()
    assert srocc(with_text, test_mos) > 0.8 and srocc(image_only, test_mos) > 0.5
    assert not np.allclose(with_text, image_only)  # a separate regressor serves images without text

    generator = torch.Generator().manual_seed(0)
    noisy = [gaussian_noise(image, 60.0, generator) for image in test_images]
    assert np.mean(scorer(noisy, test_descriptions).scores.numpy() < with_text) > 0.8

    run.model.save_pretrained(tmp_path / "krr")
    again = RealnessScorer(CoreModel.from_pretrained(tmp_path / "krr"), device="cpu")(test_images, test_descriptions).scores
    np.testing.assert_allclose(again.numpy(), with_text, atol=1e-5)


def test_cross_validation_reports_every_fold_without_touching_held_out_data(tiny_core_config):
    from realness.training.cross_validation import cross_validate

    tiny_core_config.head = "kernel_ridge"
    images, mos, descriptions = _planted_dataset(30)
    result = cross_validate(tiny_core_config, images, mos, descriptions, folds=3,
                            config=TrainingConfig(augmented_views=1, kernel_alpha=0.1), progress=False)
    assert len(result.folds) == 3
    summary = result.summary()
    assert {"srocc", "plcc", "srocc_image_only", "plcc_image_only"} <= set(summary)
    assert summary["srocc"][0] > 0.7 and summary["srocc"][1] >= 0


def test_fixed_degradations_keep_shape_and_range_and_destroy_detail():
    from realness.training.degrade import DEGRADATIONS

    assert set(DEGRADATIONS) == {"blur_2", "blur_4", "noise_15", "noise_30", "jpeg_20", "jpeg_10", "downscale_2", "downscale_4"}
    image = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0))
    for name, degrade in DEGRADATIONS.items():
        out = degrade(image, torch.Generator().manual_seed(1))
        assert out.shape == image.shape and float(out.min()) >= 0 and float(out.max()) <= 1, name
        assert float((out - image).abs().mean()) > 0.01, name  # a visible change, not a no-op


def test_verdict_input_lets_the_kernel_head_read_the_verdict(tiny_core_config, tmp_path):
    """MOS planted in the verdict alone (images are noise): the head must rank by the verdict it reads."""
    from realness.text.verdict import verdict_features

    rng = np.random.default_rng(0)
    verdicts = ["Yes. The face is distorted.", "Somewhat. The face is distorted.", "No. The face is distorted."]
    level = rng.integers(0, 3, 60)
    images = [torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(int(i))) for i in range(60)]
    descriptions, mos = [verdicts[k] for k in level], level.astype(np.float32) + 0.1 * rng.standard_normal(60).astype(np.float32)
    tiny_core_config.head, tiny_core_config.verdict_input = "kernel_ridge", True
    config = TrainingConfig(augmented_views=1, degradations=(), kernel_alpha=0.1, kernel_text_weight=0.5)
    run = train_core(tiny_core_config, images[:40], mos[:40], descriptions[:40], config=config, progress=False)
    model = run.model
    assert model.config.text_dim == model.text_encoder.dim + 3
    with torch.inference_mode():
        texts = model.encode_texts(descriptions[:3] + [""])
    torch.testing.assert_close(texts[:, -3:], verdict_features(descriptions[:3] + [""]))
    assert float(model.head.text_scale) ** 2 == pytest.approx(0.5 * model.config.image_dim)
    scores = RealnessScorer(model, device="cpu")(images[40:], descriptions[40:]).scores.numpy()
    assert srocc(scores, mos[40:]) > 0.8
    model.save_pretrained(tmp_path / "verdict")
    again = CoreModel.from_pretrained(tmp_path / "verdict")
    assert again.config.verdict_input and again.config.text_dim == model.config.text_dim
    rescored = RealnessScorer(again, device="cpu")(images[40:], descriptions[40:]).scores.numpy()
    np.testing.assert_allclose(rescored, scores, atol=1e-5)


def test_verdict_features_are_one_hot_at_unit_distance():
    from realness.text.verdict import verdict_features

    rows = verdict_features(["Yes, the sky.", "**Somewhat** odd", "No.", "The sky", None, ""])
    assert rows.shape == (6, 3)
    assert rows[:3].argmax(1).tolist() == [0, 1, 2] and torch.equal(rows[3:], torch.zeros(3, 3))
    assert float((rows[0] - rows[2]).norm()) == pytest.approx(1.0)


def _words_dataset(count: int, seed: int):
    """MOS planted in the words of the description alone (images are noise, no verdict)."""
    rng = np.random.default_rng(seed)
    phrases = ["the hand has six fingers", "the face looks distorted", "the lighting looks unrealistic", "the sky looks fine"]
    level = rng.integers(0, len(phrases), count)
    images = [torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(seed * 1000 + i)) for i in range(count)]
    mos = level.astype(np.float32) + 0.1 * rng.standard_normal(count).astype(np.float32)
    return images, mos, [phrases[k] for k in level]


def test_kernel_head_with_a_tuned_text_encoder_tunes_a_copy_and_saves_it(tiny_core_config, tmp_path):
    tiny_core_config.head, tiny_core_config.verdict_input = "kernel_ridge", False
    tiny_core_config.text_encoder.trainable, tiny_core_config.text_encoder.pooling = "last", "mean"
    images, mos, descriptions = _words_dataset(40, seed=0)
    start = CoreModel(tiny_core_config)
    before = {n: p.clone() for n, p in start.text_encoder.named_parameters()}
    config = TrainingConfig(augmented_views=1, degradations=(), kernel_alpha=0.1, text_tuning_epochs=8,
                            text_tuning_learning_rate=1e-3)
    run = train_core(tiny_core_config, images, mos, descriptions, config=config, encoders_from=start, progress=False)
    assert all(torch.equal(p, before[n]) for n, p in start.text_encoder.named_parameters())  # the caller's is untouched
    changed = {n for n, p in run.model.text_encoder.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".encoder.layer.0." in n or ".pooler." in n for n in changed)  # one layer: it is the last
    losses = run.model.config.extra["text_tuning_loss"]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert run.model.config.includes_encoder_weights and not any(p.requires_grad for p in run.model.parameters())

    test_images, test_mos, test_descriptions = _words_dataset(24, seed=1)
    scores = RealnessScorer(run.model, device="cpu")(test_images, test_descriptions).scores.numpy()
    assert srocc(scores, test_mos) > 0.7
    run.model.save_pretrained(tmp_path / "tuned")
    again = RealnessScorer(CoreModel.from_pretrained(tmp_path / "tuned"), device="cpu")(test_images, test_descriptions)
    np.testing.assert_allclose(again.scores.numpy(), scores, atol=1e-5)


def test_cross_validation_tunes_the_text_encoder_afresh_in_every_fold(tiny_core_config, monkeypatch):
    import realness.training.kernel_fit as kernel_fit
    from realness.training.cross_validation import cross_validate

    tiny_core_config.head, tiny_core_config.verdict_input = "kernel_ridge", False
    tiny_core_config.text_encoder.trainable, tiny_core_config.text_encoder.pooling = "all", "mean"
    images, mos, descriptions = _words_dataset(30, seed=2)
    start = CoreModel(tiny_core_config)
    before = {n: p.clone() for n, p in start.text_encoder.named_parameters()}
    tuned_on, tune = [], kernel_fit.tune_text_encoder
    monkeypatch.setattr(kernel_fit, "tune_text_encoder", lambda model, texts, *a, **k: tuned_on.append(texts) or tune(model, texts, *a, **k))
    # No unlikeness penalty: on 20 images of a random tiny encoder its thresholds are noise; this measures the text.
    config = TrainingConfig(augmented_views=1, degradations=(), kernel_alpha=0.1, text_tuning_epochs=3,
                            text_tuning_learning_rate=1e-3, text_tuning_target="mos", penalty_slope=0.0)
    result = cross_validate(tiny_core_config, images, mos, descriptions, folds=3, config=config,
                                     encoders_from=start, progress=False)
    assert len(result.folds) == 3 and len(tuned_on) == 3 and all(len(texts) == 20 for texts in tuned_on)
    assert all(torch.equal(p, before[n]) for n, p in start.text_encoder.named_parameters())
    assert result.summary()["srocc"][0] > 0.7


def test_a_kernel_head_refuses_a_trainable_image_encoder(tiny_core_config):
    tiny_core_config.head = "kernel_ridge"
    tiny_core_config.image_encoder.trainable = "last"
    images, mos, descriptions = _planted_dataset(12)
    with pytest.raises(ValueError, match="mlp head"):
        train_core(tiny_core_config, images, mos, descriptions, config=TrainingConfig(augmented_views=1), progress=False)
