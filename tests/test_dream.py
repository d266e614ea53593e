"""DREAM: the window arithmetic, parity with a per-window loop, planted signals, edge cases."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from realness.dream import RealnessMap, RealnessMapBatch, RealnessMapper, TransformersEmbedder, realness_map
from realness.dream.windows import combine_scales, gather_windows, overlap_average, window_starts
from realness.errors import DescriptionsError, InvalidImageError, MissingDependencyError, WeightsNotFoundError
from realness.io.pixels import normalize, resize_image

WINDOWS = (24, 16, 8)
STRIDE = 4
TEXT = "the horse's reins merge into its neck"


# --- tiny models ------------------------------------------------------------------------


def byte_level_clip_tokenizer():
    """A CLIP tokenizer over single byte-level characters (no merges), built without a download."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    characters = list(bytes_to_unicode().values())
    vocab = {token: index for index, token in enumerate(characters + [c + "</w>" for c in characters])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def save_tiny_clip(directory: Path, *, context: int = 64) -> Path:
    """A randomly initialised tiny CLIP (hidden 32, 2 layers, 32 px, patch 8) with tokenizer and processor."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    tokenizer = byte_level_clip_tokenizer()
    special = {name: tokenizer.convert_tokens_to_ids(token) for name, token in
               (("bos_token_id", "<|startoftext|>"), ("eos_token_id", "<|endoftext|>"), ("pad_token_id", "<|endoftext|>"))}
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(tower, vocab_size=len(tokenizer), max_position_embeddings=context, **special),
        vision_config=dict(tower, image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def mapper(tiny_clip_dir) -> RealnessMapper:
    return RealnessMapper.from_pretrained(tiny_clip_dir, window_sizes=WINDOWS, stride=STRIDE, device="cpu")


def smooth_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Gradients plus a few blobs, quantised to uint8 levels so PIL sees the same pixels."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height).view(-1, 1)
    x = torch.linspace(0, 1, width).view(1, -1)
    channels = []
    for _ in range(3):
        cy, cx, r = torch.rand(3, generator=generator).tolist()
        blob = torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.02 + 0.1 * r))
        channels.append(0.5 * blob + 0.25 * x + 0.25 * y)
    return (torch.stack(channels).clamp(0, 1) * 255).round() / 255


def starts(length: int, window: int, stride: int) -> list[int]:
    """Window starts, written independently of the library for the reference loop."""
    positions = list(range(0, length - window + 1, stride))
    if positions[-1] + window < length:
        positions.append(length - window)
    return positions


def reference_maps(image, text, embed_window, window_sizes=WINDOWS, stride=STRIDE):
    """The straightforward loop: crop, preprocess and embed one window at a time."""
    v = F.normalize(text, dim=-1)
    height, width = image.shape[-2:]
    per_scale = {}
    for size in window_sizes:
        if size > min(height, width):
            continue
        total = torch.zeros(height, width)
        count = torch.zeros(height, width)
        for top in starts(height, size, stride):
            for left in starts(width, size, stride):
                u = F.normalize(embed_window(image[:, top : top + size, left : left + size]), dim=-1)
                total[top : top + size, left : left + size] += 1.0 - float(u @ v)
                count[top : top + size, left : left + size] += 1
        per_scale[size] = total / count
    combined = torch.stack(list(per_scale.values())).amax(0)
    return per_scale, (combined - combined.min()) / (combined.max() - combined.min())


# --- window arithmetic ------------------------------------------------------------------


def test_window_starts_cover_every_pixel_with_one_border_window():
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]  # 6 + 4 == 10: no extra window
    assert window_starts(11, 4, 3).tolist() == [0, 3, 6, 7]  # margin of 1 px: one flush window
    assert window_starts(4, 4, 3).tolist() == [0]
    with pytest.raises(ValueError, match="does not fit"):
        window_starts(3, 4, 1)


def test_gather_windows_cuts_the_same_pixels_as_slicing():
    image = torch.rand(3, 13, 17)
    tops, lefts = torch.tensor([0, 5, 9]), torch.tensor([2, 13, 0])
    windows = gather_windows(image, 4, tops, lefts)
    assert windows.shape == (3, 3, 4, 4)
    for k, (top, left) in enumerate(zip(tops.tolist(), lefts.tolist())):
        assert torch.equal(windows[k], image[:, top : top + 4, left : left + 4])


def test_overlap_average_equals_fold_on_a_regular_grid():
    height, width, size, stride = 20, 28, 8, 4  # (20-8) and (28-8) divisible by 4: no border window
    tops, lefts = window_starts(height, size, stride), window_starts(width, size, stride)
    scores = torch.rand(len(tops), len(lefts))
    patches = scores.reshape(1, 1, -1).expand(1, size * size, -1)
    total = F.fold(patches, (height, width), size, stride=stride)
    count = F.fold(torch.ones_like(patches), (height, width), size, stride=stride)
    expected = (total / count)[0, 0]
    assert torch.allclose(overlap_average(scores, tops, lefts, size, height, width), expected, atol=1e-6)


def test_combine_scales_takes_the_max_then_min_max_normalizes_and_constant_is_ones():
    a = torch.tensor([[0.2, 0.4], [0.6, 0.1]])
    b = torch.tensor([[0.3, 0.3], [0.3, 0.3]])
    combined = combine_scales([a, b])
    assert torch.allclose(combined, torch.tensor([[0.0, 1 / 3], [1.0, 0.0]]))
    flat = combine_scales([torch.full((3, 4), 0.7)])
    assert torch.equal(flat, torch.ones(3, 4))


# --- parity -----------------------------------------------------------------------------


def test_vectorized_map_equals_the_per_window_loop(mapper):
    image = smooth_image(37, 45)  # odd sizes, not divisible by the stride
    embedder = mapper.embedder
    mean = torch.tensor(embedder.mean).view(1, 3, 1, 1)
    std = torch.tensor(embedder.std).view(1, 3, 1, 1)

    def embed_window(window):
        pixels = (resize_image(window.unsqueeze(0), embedder.input_size, interpolation="bicubic") - mean) / std
        return embedder.embed_images(pixels)[0]

    with torch.inference_mode():
        per_scale, expected = reference_maps(image, embedder.embed_texts([TEXT])[0], embed_window)
    result = mapper(image, TEXT)
    assert isinstance(result, RealnessMap)
    assert result.map.shape == (37, 45) and result.map.dtype == np.float32
    assert set(result.per_scale) == set(WINDOWS)
    for size in WINDOWS:
        np.testing.assert_allclose(result.per_scale[size], per_scale[size].numpy(), atol=1e-4)
    np.testing.assert_allclose(result.map, expected.numpy(), atol=1e-4)
    assert result.map.min() == 0.0 and result.map.max() == 1.0


def test_map_correlates_with_the_clip_processor_path(mapper, tiny_clip_dir):
    from transformers import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil.from_pretrained(tiny_clip_dir)
    image = smooth_image(40, 48, seed=3)
    embedder = mapper.embedder

    def embed_window(window):
        # What a user of the transformers processor would do: a PIL crop through CLIPProcessor.
        crop = Image.fromarray((window.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        return embedder.embed_images(processor(images=[crop], return_tensors="pt")["pixel_values"])[0]

    with torch.inference_mode():
        _, expected = reference_maps(image, embedder.embed_texts([TEXT])[0], embed_window)
    result = mapper(image, TEXT)
    pearson = np.corrcoef(result.map.ravel(), expected.numpy().ravel())[0, 1]
    assert pearson >= 0.99, pearson


# --- planted signal ---------------------------------------------------------------------


class RednessEmbedder:
    """Similarity known by construction: a window's embedding is (redness, 1), every text's (1, 0).

    cos grows with the window's mean redness, so r = 1 - cos is lowest where it is red.
    """

    input_size = 8
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def embed_images(self, pixels):
        redness = (pixels[:, 0] - pixels[:, 1:].mean(1)).clamp_min(0).mean((1, 2))
        return torch.stack([redness, torch.ones_like(redness)], dim=1)

    def embed_texts(self, texts):
        return torch.tensor([[1.0, 0.0]]).expand(len(texts), 2)

    def to(self, device):
        return self


@pytest.mark.parametrize("size", WINDOWS)
def test_map_is_lowest_over_the_planted_region_at_every_scale(size):
    image = torch.full((3, 48, 56), 0.5)
    image[:, 20:30, 30:42] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    planted = np.zeros((48, 56), dtype=bool)
    planted[20:30, 30:42] = True
    result = RealnessMapper(RednessEmbedder(), window_sizes=(size,), stride=2, interpolation="area")(image, "red")
    raw = result.per_scale[size]
    lowest = np.argwhere(raw <= raw.min() + 1e-6)
    assert planted[lowest[:, 0], lowest[:, 1]].all()
    assert raw[planted].max() < raw[~planted].mean()
    far = np.ones_like(planted)
    far[max(0, 21 - size) : 29 + size, max(0, 31 - size) : 41 + size] = False  # no window there sees red
    assert np.allclose(result.map[far], 1.0)


# --- edge cases -------------------------------------------------------------------------


def test_scales_larger_than_the_image_are_skipped(mapper):
    result = mapper(smooth_image(20, 30), TEXT)
    assert set(result.per_scale) == {16, 8}
    assert result.map.shape == (20, 30)


def test_image_smaller_than_every_window_is_an_error_naming_its_size(mapper):
    with pytest.raises(InvalidImageError, match="7x6 pixels, smaller than every window"):
        mapper(torch.rand(3, 6, 7), TEXT)


def test_grayscale_and_rgba_inputs(mapper, tmp_path):
    base = (smooth_image(30, 34).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    gray = Image.fromarray(base).convert("L")
    rgba = Image.fromarray(base).convert("RGBA")
    gray.save(tmp_path / "gray.png")
    batch = mapper([str(tmp_path / "gray.png"), rgba], [TEXT, TEXT])
    assert all(m.map.shape == (30, 34) for m in batch)
    np.testing.assert_allclose(batch[1].map, mapper(Image.fromarray(base), TEXT).map, atol=1e-6)


def test_empty_description_gives_a_valid_map(mapper):
    result = mapper(smooth_image(24, 24), "")
    assert np.isfinite(result.map).all() and result.map.min() >= 0 and result.map.max() <= 1


def test_batch_of_mixed_sizes_matches_single_calls_and_chunking_does_not_matter(tiny_clip_dir, mapper):
    images = [smooth_image(30, 41, seed=1), smooth_image(45, 27, seed=2), smooth_image(24, 24, seed=3)]
    texts = ["a hand with six fingers", "", TEXT]
    small_chunks = RealnessMapper(tiny_clip_dir, window_sizes=WINDOWS, stride=STRIDE, batch_size=7, device="cpu")
    batch = small_chunks(images, texts)
    assert isinstance(batch, RealnessMapBatch) and len(batch) == 3 and not batch.skipped
    for image, text, result in zip(images, texts, batch):
        single = mapper(image, text)
        assert result.description == text
        np.testing.assert_allclose(result.map, single.map, atol=1e-5)


def test_batch_skips_bad_items_and_reports_them(mapper, tmp_path):
    batch = mapper([smooth_image(30, 30), tmp_path / "missing.png", torch.rand(3, 5, 5)], [TEXT] * 3, on_error="skip")
    assert batch[0] is not None and batch[1] is None and batch[2] is None
    assert [item.index for item in batch.skipped] == [1, 2]
    assert "smaller than every window" in batch.skipped[1].reason
    with pytest.raises(ValueError, match="2 descriptions were given for 3 images"):
        mapper([smooth_image(30, 30)] * 3, ["a", "b"])


def test_long_descriptions_are_truncated_with_a_warning(tmp_path):
    directory = save_tiny_clip(tmp_path / "short-context", context=16)
    mapper = RealnessMapper(directory, window_sizes=(16,), stride=8, device="cpu")
    with pytest.warns(UserWarning, match="truncated to the text tower's 16 tokens"):
        result = mapper(smooth_image(24, 24), "a very long description of everything " * 3)
    assert np.isfinite(result.map).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapper(smooth_image(24, 24), "short")


def test_describer_writes_missing_descriptions(tiny_clip_dir):
    class Described:
        def __init__(self, text):
            self.text, self.error = text, None if text else "refused"

    class FakeDescriber:
        def __init__(self):
            self.seen = 0

        def describe(self, images, *, on_error="raise"):
            self.seen += len(images)
            return [Described(TEXT), Described(None)][: len(images)]

    describer = FakeDescriber()
    mapper = RealnessMapper(tiny_clip_dir, window_sizes=(16,), stride=8, device="cpu", describer=describer)
    batch = mapper([smooth_image(24, 24), smooth_image(24, 24)], on_error="skip")
    assert describer.seen == 2
    assert batch[0].description == TEXT and batch[1] is None
    assert "refused" in batch.skipped[0].reason
    # Without a describer, an image without a description is a bad item: named, or raised.
    plain = RealnessMapper(tiny_clip_dir, window_sizes=(16,), stride=8, device="cpu")
    with pytest.raises(DescriptionsError, match="DREAM needs one"):
        plain(smooth_image(24, 24))
    partial = plain([smooth_image(24, 24), smooth_image(24, 24)], [TEXT, None], on_error="skip")
    assert partial[0] is not None and partial[1] is None
    assert [(item.index, "no description" in item.reason) for item in partial.skipped] == [(1, True)]


def test_functional_form_matches_the_mapper(tiny_clip_dir, mapper):
    image = smooth_image(26, 30)
    result = realness_map(image, TEXT, model=str(tiny_clip_dir), window_sizes=WINDOWS, stride=STRIDE, device="cpu")
    np.testing.assert_allclose(result.map, mapper(image, TEXT).map, atol=1e-6)


def test_bad_options_are_rejected(tiny_clip_dir):
    embedder = RednessEmbedder()
    for options, message in (
        ({"stride": 0}, "stride"),
        ({"window_sizes": ()}, "window_sizes"),
        ({"interpolation": "lanczos"}, "interpolation"),
        ({"precision": "int8"}, "precision"),
        ({"batch_size": 0}, "batch_size"),
    ):
        with pytest.raises(ValueError, match=message):
            RealnessMapper(embedder, **options)


# --- weights and backends ---------------------------------------------------------------


def test_missing_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="openai/clip-vit-base-patch32"):
        RealnessMapper(device="cpu")


def test_open_clip_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(MissingDependencyError, match=r"open_clip_torch.*realness\[open-clip\]"):
        RealnessMapper("open_clip:ViT-B-32:laion2b_s34b_b79k", device="cpu")


def test_open_clip_adapter_drives_an_open_clip_model(monkeypatch):
    class Visual(torch.nn.Module):
        image_size = (8, 8)
        image_mean = (0.0, 0.0, 0.0)
        image_std = (1.0, 1.0, 1.0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = Visual()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def encode_image(self, pixels):
            return RednessEmbedder().embed_images(pixels) * self.scale

        def encode_text(self, tokens):
            return torch.tensor([[1.0, 0.0]]).expand(len(tokens), 2)

    def create(architecture, pretrained=None):
        assert (architecture, pretrained) == ("ViT-B-32", "tag")
        return Model(), None, None

    fake = types.SimpleNamespace(create_model_and_transforms=create, get_tokenizer=lambda name: lambda texts: torch.zeros(len(texts), 4))
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    image = torch.full((3, 24, 24), 0.5)
    image[:, :8, :8] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    result = RealnessMapper("open_clip:ViT-B-32:tag", window_sizes=(8,), stride=4, device="cpu")(image, "red")
    assert result.map[:8, :8].mean() < result.map[16:, 16:].mean()


def test_embedder_reads_input_size_and_normalization_from_the_directory(tiny_clip_dir):
    embedder = TransformersEmbedder.from_pretrained(tiny_clip_dir)
    assert embedder.input_size == 32
    assert embedder.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


# --- rendering --------------------------------------------------------------------------


def test_overlay_figure_and_npy(mapper, tmp_path):
    result = mapper(smooth_image(30, 40), TEXT)
    plain = result.overlay(colorbar=False)
    assert plain.size == (40, 30)
    with_bar = result.overlay()
    assert with_bar.size[1] == 30 and with_bar.size[0] > 40
    assert np.array_equal(np.asarray(with_bar)[:, :40], np.asarray(plain))
    figure = result.figure()
    assert len(figure.axes) >= 2 + len(result.per_scale)
    assert np.load(result.save(tmp_path / "map.npy")).shape == (30, 40)
    assert Image.open(result.save(tmp_path / "overlay.png")).size == with_bar.size
    assert result.save(tmp_path / "figure.pdf").stat().st_size > 0
    with pytest.raises(ValueError, match="alpha"):
        result.overlay(alpha=2.0)


# --- honest speed -------------------------------------------------------------------------


class SlowRednessEmbedder(RednessEmbedder):
    """The redness embedder, taking a fixed time per window (a stand-in for a CPU CLIP tower)."""

    seconds_per_window = 0.002

    def embed_images(self, pixels):
        import time

        time.sleep(self.seconds_per_window * len(pixels))
        return super().embed_images(pixels)


def test_a_slow_configuration_is_announced_once_with_the_estimate_and_the_faster_flag(monkeypatch):
    from realness.dream import mapper as mapper_module
    from realness.errors import SlowConfigurationWarning

    # 48x48 at stride 2 with windows of 8: 21*21 = 441 windows, about 0.9 s per image at 2 ms each.
    monkeypatch.setattr(mapper_module, "SLOW_SECONDS_PER_IMAGE", 0.5)
    mapper = RealnessMapper(SlowRednessEmbedder(), window_sizes=(8,), stride=2, batch_size=64, progress=False)
    with pytest.warns(SlowConfigurationWarning) as caught:
        mapper(torch.rand(3, 48, 48), "red")
    [warning] = [w for w in caught if issubclass(w.category, SlowConfigurationWarning)]
    assert warning.filename == __file__  # points at the caller's line, not the library's
    message = str(warning.message)
    assert "per image" in message and "441 windows per image at stride 2" in message
    assert "--stride 16" in message and "64x faster" in message and "\n" not in message
    estimate = float(message.split("about ")[1].split(" s ")[0])
    assert 0.5 < estimate < 5.0  # measured on the first batch: 441 windows * >= 2 ms
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowConfigurationWarning)
        mapper(torch.rand(3, 48, 48), "red")  # said once per mapper


def test_a_fast_configuration_says_nothing_and_one_bar_covers_the_call(monkeypatch, capsys):
    from realness.errors import SlowConfigurationWarning

    mapper = RealnessMapper(RednessEmbedder(), window_sizes=(8,), stride=4, batch_size=16, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowConfigurationWarning)
        batch = mapper([torch.rand(3, 24, 24), torch.rand(3, 32, 32)], ["red", "red"])
    assert len(batch) == 2
    bars = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "realness map (2 images)" in line]
    assert bars and all("win" in line for line in bars)  # one bar, over the windows of both images


def test_normalize_in_place_equals_the_copy_and_overwrites_its_input():
    pixels = torch.rand(4, 3, 8, 8)
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    expected = normalize(pixels, mean, std)
    assert torch.equal(expected, (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert normalize(pixels, torch.tensor(mean), torch.tensor(std), in_place=True) is pixels
    assert torch.equal(pixels, expected)
