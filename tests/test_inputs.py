"""The one image input contract: every accepted kind, every refusal, batches, hashing, workers."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from realness.errors import InvalidImageError, SkippedItem
from realness.io import inputs
from realness.io.inputs import (
    ImagePathsDataset,
    LoadedBatch,
    collate_decoded,
    item_name,
    load_image,
    load_images,
    pixel_sha256,
    split_batch,
)

RED, BLUE, WHITE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)


def rgb_at(image: torch.Tensor, y: int, x: int) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in image[:, y, x])


def noise_rgb(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def assert_refused(item, *reason_words, name: str | None = None, **kwargs) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as caught:
        load_image(item, **kwargs)
    err = caught.value
    expected_name = item_name(item) if name is None else name
    assert err.item == expected_name and str(err).startswith(expected_name)
    for word in reason_words:
        assert word in err.reason, f"{word!r} not in {err.reason!r}"
    return err


def assert_valid_output(image: torch.Tensor, height: int, width: int) -> None:
    assert image.shape == (3, height, width)
    assert image.dtype == torch.float32 and image.device.type == "cpu"
    assert image.is_contiguous()
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


# --- files of every mode ---------------------------------------------------------------


def test_png_from_str_path_bytes_and_pil_are_identical(tmp_path):
    pixels = noise_rgb()
    path = save(Image.fromarray(pixels), tmp_path / "noise.png")
    expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    for item in (str(path), path, path.read_bytes(), Image.open(path), pixels):
        image = load_image(item)
        assert_valid_output(image, 24, 32)
        assert torch.equal(image, expected)


def test_jpeg_decodes_close_to_its_source(tmp_path):
    path = save(Image.new("RGB", (16, 8), (200, 40, 10)), tmp_path / "flat.jpg", quality=95)
    image = load_image(path)
    assert_valid_output(image, 8, 16)
    assert torch.allclose(image[:, 4, 8], torch.tensor([200, 40, 10]) / 255, atol=0.03)


@pytest.mark.parametrize(
    ("make", "suffix", "expected"),
    [
        (lambda: Image.new("L", (6, 4), 51), "png", (0.2, 0.2, 0.2)),
        (lambda: Image.new("1", (6, 4), 1), "png", WHITE),
        (lambda: Image.new("LA", (6, 4), (0, 0)), "png", WHITE),  # transparent black -> white
        (lambda: Image.new("LA", (6, 4), (0, 255)), "png", (0.0, 0.0, 0.0)),
        (lambda: Image.new("RGBA", (6, 4), (0, 0, 255, 255)), "png", BLUE),
        (lambda: Image.new("RGBA", (6, 4), (255, 0, 0, 0)), "png", WHITE),
        (lambda: Image.new("RGBA", (6, 4), (0, 0, 0, 102)), "png", (0.6, 0.6, 0.6)),
        (lambda: Image.new("RGB", (6, 4), (255, 0, 0)).convert("P"), "png", RED),
        (lambda: Image.new("I;16", (6, 4), 65535), "png", WHITE),
        (lambda: Image.new("I;16", (6, 4), 13107), "png", (0.2, 0.2, 0.2)),
        (lambda: Image.new("CMYK", (6, 4), (255, 0, 0, 0)), "tiff", (0.0, 1.0, 1.0)),
    ],
    ids=["L", "1", "LA-clear", "LA-opaque", "RGBA", "RGBA-clear", "RGBA-40%", "P", "I16-max", "I16",
         "CMYK"],
)
def test_every_pil_mode_file_becomes_rgb(tmp_path, make, suffix, expected):
    source = make()
    path = save(source, tmp_path / f"image.{suffix}")
    assert Image.open(path).mode == source.mode  # the file really holds that mode
    for item in (path, source):
        image = load_image(item)
        assert_valid_output(image, 4, 6)
        assert rgb_at(image, 2, 3) == pytest.approx(expected, abs=0.003)


def test_palette_transparency_composited_over_white(tmp_path):
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    source.putpixel((1, 1), 1)
    path = save(source, tmp_path / "clear.png", transparency=0)
    image = load_image(path)
    assert rgb_at(image, 0, 0) == WHITE  # palette entry 0 is transparent black
    assert rgb_at(image, 1, 1) == (0.0, 1.0, 0.0)


def test_pil_i_and_f_modes():
    assert rgb_at(load_image(Image.new("I", (3, 2), 65535)), 0, 0) == WHITE
    assert rgb_at(load_image(Image.new("F", (3, 2), 0.25)), 1, 2) == (0.25, 0.25, 0.25)
    assert_refused(Image.new("I", (3, 2), 70000), "outside 0..65535")
    assert_refused(Image.new("F", (3, 2), 1.5), "outside [0, 1]")


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high as stored
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored column 0 is the visual top row
    path = save(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)

    image = load_image(path)
    assert_valid_output(image, 40, 20)  # displayed 20 wide, 40 high
    assert image[0, :15].mean() > 0.9 and image[2, :15].mean() < 0.1  # top is red
    assert image[2, 25:].mean() > 0.9 and image[0, 25:].mean() < 0.1  # bottom is blue
    assert load_image(Image.open(path)).shape == (3, 40, 20)


# --- arrays and tensors ----------------------------------------------------------------


@pytest.mark.filterwarnings("error")  # e.g. torch's warning about read-only arrays
def test_numpy_variants():
    gray = np.full((4, 5), 51, dtype=np.uint8)
    gray.flags.writeable = False
    for array in (gray, gray[:, :, None], gray / np.float32(255), gray / 255.0):
        assert rgb_at(load_image(array), 1, 1) == (0.2, 0.2, 0.2)
    assert rgb_at(load_image(np.full((4, 5, 3), 0.5, np.float16)), 0, 0) == (0.5, 0.5, 0.5)
    assert rgb_at(load_image(np.full((4, 5, 3), 65535, np.uint16)), 0, 0) == WHITE
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 255, 255)
    image = load_image(rgba)
    assert rgb_at(image, 0, 0) == BLUE and rgb_at(image, 1, 1) == WHITE
    assert_valid_output(load_image(noise_rgb()[:, ::2]), 24, 16)  # non-contiguous view


def test_torch_variants():
    chw = torch.rand(3, 6, 7)
    assert torch.equal(load_image(chw), chw)
    assert load_image(chw) is not chw  # a new tensor, never the caller's
    assert torch.equal(load_image(chw[None]), chw)  # 1xCxHxW
    assert torch.equal(load_image((chw * 255).round().to(torch.uint8)), (chw * 255).round() / 255)
    assert torch.equal(load_image(chw[0]), chw[0].expand(3, -1, -1))  # HxW
    assert torch.equal(load_image(chw[:1]), chw[0].expand(3, -1, -1))  # 1xHxW
    assert load_image(chw.requires_grad_()).requires_grad is False
    assert load_image(chw.to(torch.bfloat16)).dtype == torch.float32
    rgba = torch.cat([torch.zeros(3, 2, 2), torch.tensor([[[1.0, 0.0], [0.5, 0.0]]])])
    image = load_image(rgba)
    assert rgb_at(image, 0, 0) == (0.0, 0.0, 0.0) and rgb_at(image, 0, 1) == WHITE
    assert rgb_at(image, 1, 0) == (0.5, 0.5, 0.5)


def test_float_rounding_noise_is_clamped():
    image = load_image(torch.tensor([[[1.0 + 5e-7, -5e-7]]]))
    assert float(image.max()) == 1.0 and float(image.min()) == 0.0
    assert_refused(torch.tensor([[[1.0 + 1e-4]]]), "outside [0, 1]")


# --- batches ---------------------------------------------------------------------------


def test_mixed_list(tmp_path):
    path = save(Image.new("RGB", (5, 4), (255, 0, 0)), tmp_path / "red.png")
    white, black = np.full((4, 5, 3), 255, np.uint8), torch.zeros(3, 4, 5)
    items = [path, str(path), path.read_bytes(), Image.open(path), white, black]
    batch = load_images(items)
    assert isinstance(batch, LoadedBatch) and not batch.single and len(batch) == 6
    assert batch.skipped == [] and batch.ok_indices == list(range(6))
    assert [rgb_at(t, 0, 0) for t in batch.tensors] == [RED] * 4 + [WHITE, (0.0, 0.0, 0.0)]
    assert batch.names[:2] == [str(path), str(path)]
    assert batch.names[4] == "item 4 (ndarray 4x5x3 uint8)"


def test_batch_tensor_and_array_are_split_into_rows():
    images = torch.rand(4, 3, 8, 9)
    batch = load_images(images)
    assert not batch.single and len(batch) == 4
    assert all(torch.equal(t, row) for t, row in zip(batch.tensors, images))
    assert batch.names[3] == "item 3 (tensor 3x8x9 float32)"
    array_batch = load_images(np.zeros((2, 8, 9, 3), dtype=np.uint8))
    assert [t.shape for t in array_batch.tensors] == [(3, 8, 9)] * 2


def test_split_batch_does_not_load():
    assert split_batch("missing.png") == (["missing.png"], True)
    assert split_batch(("a.png", "b.png")) == (["a.png", "b.png"], False)
    rows, single = split_batch(torch.zeros(2, 3, 4, 4))
    assert not single and [r.shape for r in rows] == [(3, 4, 4)] * 2
    assert split_batch(torch.zeros(3, 4, 4))[1] is True


def test_single_item_is_marked_single():
    batch = load_images(np.zeros((4, 4), dtype=np.uint8))
    assert batch.single and len(batch) == 1 and batch.names == ["ndarray 4x4 uint8"]
    assert load_images([]).tensors == []


def test_skip_keeps_good_items_and_reports_bad_ones(tmp_path):
    good_path = save(Image.fromarray(noise_rgb()), tmp_path / "good.png")
    items = [good_path, tmp_path / "missing.png", torch.full((3, 4, 4), float("nan")),
             np.zeros((12, 12, 5), np.uint8), torch.rand(3, 5, 5), np.zeros((2, 40, 3), np.uint8)]
    batch = load_images(items, on_error="skip", min_size=3)
    assert batch.ok_indices == [0, 4]
    assert torch.equal(batch.tensors[0], load_image(good_path))
    assert torch.equal(batch.tensors[4], items[4])
    assert [t is None for t in batch.tensors] == [False, True, True, True, False, True]
    assert [s.index for s in batch.skipped] == [1, 2, 3, 5]
    assert all(isinstance(s, SkippedItem) for s in batch.skipped)
    assert batch.skipped[0].item == str(tmp_path / "missing.png")
    assert batch.skipped[2].item == "item 3 (ndarray 12x12x5 uint8)"
    assert "NaN" in batch.skipped[1].reason and "5 channels" in batch.skipped[2].reason
    assert "minimum of 3 px" in batch.skipped[3].reason
    assert len(batch.names) == 6 and len(batch.ok_tensors) == 2


def test_raise_mode_names_the_batch_item():
    items = [torch.rand(3, 4, 4)] * 3 + [np.zeros((12, 12, 5), np.uint8)]
    with pytest.raises(InvalidImageError, match=r"^item 3 \(ndarray 12x12x5 uint8\): 5 channels"):
        load_images(items)


def test_on_error_is_validated():
    with pytest.raises(ValueError, match="on_error"):
        load_images([torch.rand(3, 2, 2)], on_error="ignore")
    with pytest.raises(ValueError, match="min_size"):
        load_image(torch.rand(3, 2, 2), min_size=0)


# --- refusals --------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a token IDAT (never decoded here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0"))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_file_refusals(tmp_path):
    assert_refused(tmp_path / "missing.png", "file not found")
    assert_refused(tmp_path, "directory")
    (tmp_path / "empty.png").touch()
    assert_refused(tmp_path / "empty.png", "empty file (0 bytes)")
    (tmp_path / "notes.txt").write_text("not an image at all")
    assert_refused(tmp_path / "notes.txt", "not an image")
    assert_refused(b"", "empty")
    assert_refused(b"GIF89a but not really", "image")


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_truncated_files_are_refused(tmp_path, suffix):
    whole = io.BytesIO()
    Image.fromarray(noise_rgb(64, 64)).save(whole, format="JPEG" if suffix == "jpg" else "PNG")
    path = tmp_path / f"cut.{suffix}"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    assert_refused(path, "corrupt or truncated")
    assert_refused(path.read_bytes(), "corrupt or truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_pixel_data_is_refused(tmp_path):
    good = png_header_only(16, 16).replace(zlib.compress(b"\0"), b"garbage!")  # CRC now wrong too
    path = tmp_path / "corrupt.png"
    path.write_bytes(good)
    assert_refused(path, "corrupt")


def test_decompression_bomb_uses_our_limit_and_leaves_pil_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000_000)  # a value to see kept
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(20000, 20000))  # 400 Mpx declared, 80 bytes on disk
    assert inputs.MAX_IMAGE_PIXELS == 2 * 89478485  # PIL's default limit, times two
    assert_refused(bomb, "decompression bomb", "400000000 pixels")
    assert_refused(bomb.read_bytes(), "decompression bomb")

    small = save(Image.new("RGB", (20, 20)), tmp_path / "small.png")
    assert load_image(small, max_pixels=400).shape == (3, 20, 20)
    assert_refused(small, "above the limit of 399", max_pixels=399)
    assert_refused(Image.open(small), "decompression bomb", name=str(small), max_pixels=399)
    monkeypatch.setattr(inputs, "MAX_IMAGE_PIXELS", 399)
    assert_refused(small, "above the limit of 399")
    assert Image.MAX_IMAGE_PIXELS == 5_000_000


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (np.array([[0.5, np.nan]]), "NaN"),
        (torch.tensor([[0.5, float("inf")]]), "infinite"),
        (np.full((3, 3), 255.0), "outside [0, 1]"),
        (torch.full((3, 3), -0.5), "outside [0, 1]"),
        (np.zeros((2, 3, 3, 3, 3), np.uint8), "rank 5"),
        (torch.zeros(2, 3, 3, 3, 3), "rank 5"),
        (np.zeros(5, np.uint8), "rank 1"),
        (np.zeros((12, 12, 5), np.uint8), "5 channels"),
        (np.zeros((3, 12, 12), np.uint8), "HxWxC"),
        (torch.zeros(12, 12, 3), "CxHxW"),
        (torch.zeros(2, 5, 5), "2 channels"),
        (np.zeros((4, 4), np.int64), "unsupported dtype int64"),
        (np.zeros((4, 4), bool), "unsupported dtype bool"),
        (torch.zeros(3, 4, 4, dtype=torch.int32), "unsupported dtype int32"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (torch.zeros(3, 0, 4), "empty"),
        (12, "unsupported input type int"),
        ([[0, 1], [1, 0]], "unsupported input type list"),
    ],
)
def test_bad_arrays_and_types(item, reason):
    err = assert_refused(item, reason)
    if isinstance(item, np.ndarray):
        assert err.item.startswith("ndarray ")


def test_min_size_names_size_and_minimum():
    err = assert_refused(torch.rand(3, 10, 40), "10x40", "10 px", "minimum of 32 px", min_size=32)
    assert load_image(torch.rand(3, 32, 40), min_size=32).shape == (3, 32, 40)
    assert "item 2" in load_images([torch.rand(3, 40, 40)] * 2 + [torch.rand(3, 10, 40)],
                                   on_error="skip", min_size=32).skipped[0].item
    assert err.reason.count("32") == 1


# --- hashing ---------------------------------------------------------------------------


def test_pixel_sha256_is_container_independent(tmp_path):
    pixels = noise_rgb()
    path = save(Image.fromarray(pixels), tmp_path / "noise.png")
    chw = torch.from_numpy(pixels).permute(2, 0, 1)
    hashes = {pixel_sha256(load_image(item))
              for item in (path, path.read_bytes(), pixels, pixels.astype(np.float64) / 255, chw,
                           chw.float() / 255, Image.fromarray(pixels).convert("RGBA"))}
    assert len(hashes) == 1 and len(hashes.pop()) == 64

    edited = pixels.copy()
    edited[5, 7, 1] ^= 1
    assert pixel_sha256(load_image(edited)) != pixel_sha256(load_image(pixels))
    # Same bytes, different shape: the header keeps them apart.
    assert pixel_sha256(torch.zeros(3, 2, 6)) != pixel_sha256(torch.zeros(3, 6, 2))
    with pytest.raises(InvalidImageError, match="load_image first"):
        pixel_sha256(chw)  # uint8, not the decoded float tensor


# --- parallel decoding -----------------------------------------------------------------


def double(image: torch.Tensor) -> torch.Tensor:
    return image * 2  # module level, so worker processes can unpickle it under any start method


def test_dataset_with_workers_survives_a_corrupt_file(tmp_path):
    paths = [save(Image.fromarray(noise_rgb(16 + i, 20, seed=i)), tmp_path / f"{i}.png")
             for i in range(5)]
    paths[2].write_bytes(paths[2].read_bytes()[:60])  # truncated
    paths.append(tmp_path / "missing.png")
    dataset = ImagePathsDataset(paths, transform=double)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=2, collate_fn=collate_decoded
    )

    got = {}
    for indices, tensors, reasons in loader:
        assert isinstance(tensors, list)
        got.update({i: (t, r) for i, t, r in zip(indices, tensors, reasons)})
    assert sorted(got) == list(range(6))
    for i in (0, 1, 3, 4):
        tensor, reason = got[i]
        assert reason is None and torch.equal(tensor, load_image(paths[i]) * 2)
        assert tensor.shape == (3, 16 + i, 20)  # sizes differ, kept as a list
    assert got[2][0] is None and "corrupt or truncated" in got[2][1]
    assert got[5] == (None, "file not found")
