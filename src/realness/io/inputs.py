"""The one image input contract: anything image-like in, float32 ``3xHxW`` tensors in [0, 1] out.

Every entry point of realness (scorers, mappers, describers, the CLI) turns its images
into tensors here, so a path, the bytes of a file, a PIL image, a numpy array and a torch
tensor holding the same pixels all give the same result and fail with the same message.

Accepted items (:data:`ImageLike`):

* ``str`` / ``os.PathLike``: an image file PIL can read (first frame of multi-frame files).
* ``bytes`` / ``bytearray`` / ``memoryview``: the encoded contents of such a file.
* ``PIL.Image.Image`` in any mode (``1``, ``L``, ``LA``, ``P``, ``PA``, ``RGB``, ``RGBA``,
  ``CMYK``, ``YCbCr``, ``I;16``, ``I``, ``F``...), with its EXIF orientation applied.
* ``numpy.ndarray`` shaped ``HxW`` or ``HxWxC``.
* ``torch.Tensor`` shaped ``HxW`` or ``CxHxW`` (any device; the result is on the CPU).

Pixel values: ``uint8`` is divided by 255 and ``uint16`` by 65535; floating point data must
already lie in [0, 1] (a tolerance of 1e-6 is clamped away, anything further is an error).
PIL mode ``I`` is read as 16-bit data (0..65535) and mode ``F`` as floats in [0, 1].
One channel is replicated to RGB. Four channels (RGBA), and PIL images with transparency,
are composited over white: a transparent pixel reads as white paper, which is also how
viewers show such images on a page, rather than as whatever colour hides under alpha 0.

Images are never resized here: each encoder decides its own resize.

Degenerate images are refused by name: a short side below ``min_size`` (the caller's model
passes its encoder's), and a long side more than :data:`MAX_ASPECT_RATIO` times the short one
(``max_aspect_ratio``), which any resize to a model's input would turn into a smear.

Batches (:func:`load_images`) are a list or tuple mixing the kinds above, a ``BxCxHxW``
tensor or a ``BxHxWxC`` array. With ``on_error="skip"`` a bad item becomes ``None`` plus a
:class:`~realness.errors.SkippedItem`, and the rest of the batch is kept.

Decompression bombs: files and PIL images larger than :data:`MAX_IMAGE_PIXELS` pixels
(or the ``max_pixels`` argument) are refused. PIL's own limit is lifted only while the file
header is read, under a lock, and restored at once, so PIL's global settings are left as
they were; ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed, and every file is
fully decoded so a truncated one fails here instead of later.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from realness.errors import InvalidImageError, SkippedItem, check_on_error
from realness.io.files import special_file_reason

__all__ = [
    "FLOAT_TOLERANCE",
    "ImageLike",
    "ImagePathsDataset",
    "ImagesLike",
    "LoadedBatch",
    "MAX_ASPECT_RATIO",
    "MAX_IMAGE_PIXELS",
    "collate_decoded",
    "item_name",
    "load_image",
    "load_images",
    "pixel_sha256",
    "size_fault_reason",
    "split_batch",
]

ImageLike = Union[
    str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, torch.Tensor
]
"""One image: a path, encoded file bytes, a PIL image, an ``HxW[xC]`` array or a
``[C]xHxW`` tensor."""

ImagesLike = Union[ImageLike, Sequence[ImageLike]]
"""One image, a list/tuple of images, a ``BxCxHxW`` tensor or a ``BxHxWxC`` array."""

# PIL's default MAX_IMAGE_PIXELS (read from its source default, not the possibly edited
# global), times two: the size at which PIL itself raises rather than warns.
_PIL_DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3
MAX_IMAGE_PIXELS: int = 2 * _PIL_DEFAULT_MAX_IMAGE_PIXELS
"""Largest image (width x height) decoded from a file, bytes or PIL image; override per call
with ``max_pixels`` or by assigning this module attribute."""

MAX_ASPECT_RATIO: float = 20.0
"""Largest long side / short side accepted (wider than any photo panorama in practice); override
per call with ``max_aspect_ratio`` or by assigning this module attribute."""

FLOAT_TOLERANCE = 1e-6
"""How far float pixels may stray outside [0, 1] (rounding noise) before they are refused."""

_PIL_LIMIT_LOCK = threading.Lock()
_SUPPORTED_DTYPES = "uint8, uint16 or floating point"
_CHANNELS_HINT = "expected 1 (gray), 3 (RGB) or 4 (RGBA)"


def item_name(item: object, index: int | None = None) -> str:
    """A short readable name for an input item, used in errors and reports.

    Paths are named by themselves; other items by their position and what they are,
    e.g. ``"item 3 (ndarray 12x12x5 uint8)"``.

    Args:
        item: Any input item (need not be valid).
        index: Position of the item in its batch, or None for a lone item.

    Returns:
        The path string for paths (and for PIL images opened from a file), otherwise
        ``"item <index> (<description>)"``, or just the description when ``index`` is None.
    """
    if isinstance(item, (str, os.PathLike)):
        return os.fsdecode(item)
    filename = getattr(item, "filename", "") if isinstance(item, Image.Image) else ""
    if isinstance(filename, str) and filename:
        return filename
    description = _describe(item)
    return description if index is None else f"item {index} ({description})"


def _describe(item: object) -> str:
    if isinstance(item, np.ndarray):
        return f"ndarray {_shape(item.shape)} {item.dtype}"
    if isinstance(item, torch.Tensor):
        return f"tensor {_shape(item.shape)} {str(item.dtype).removeprefix('torch.')}"
    if isinstance(item, Image.Image):
        return f"PIL {item.mode} {item.width}x{item.height} (WxH)"
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"bytes, length {memoryview(item).nbytes}"
    return type(item).__name__


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(size) for size in shape) if len(shape) else "scalar"


def load_image(
    item: ImageLike,
    *,
    name: str | None = None,
    min_size: int = 1,
    max_pixels: int | None = None,
    max_aspect_ratio: float | None = None,
) -> torch.Tensor:
    """Turn one image-like item into a float32 ``3xHxW`` tensor in [0, 1] on the CPU.

    Args:
        item: A path, encoded bytes, PIL image, ``HxW``/``HxWxC`` array or
            ``HxW``/``CxHxW`` tensor (a ``1xCxHxW`` tensor is accepted too).
        name: Name used in error messages; defaults to :func:`item_name` of the item.
        min_size: Smallest short side (pixels) the caller's model can use.
        max_pixels: Largest width x height decoded from a file, bytes or PIL image;
            None uses the module's :data:`MAX_IMAGE_PIXELS`.
        max_aspect_ratio: Largest long side / short side; None uses the module's
            :data:`MAX_ASPECT_RATIO`.

    Returns:
        A new float32 tensor of shape ``3xHxW`` with values in [0, 1], never resized.

    Raises:
        InvalidImageError: The item is missing, not an image, corrupt, truncated, empty,
            too large, has NaN/inf or out-of-range values, the wrong rank, channel count,
            dtype or type, a short side below ``min_size``, or a long side more than
            ``max_aspect_ratio`` times the short side.
        ValueError: ``min_size`` or ``max_pixels`` is not a positive integer, or
            ``max_aspect_ratio`` is below 1.
    """
    _check_positive("min_size", min_size)
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    _check_positive("max_pixels", limit)
    ratio_limit = _aspect_ratio_limit(max_aspect_ratio)
    name = item_name(item) if name is None else name

    if isinstance(item, (str, os.PathLike)):
        image = _decode_file(Path(os.fsdecode(item)).expanduser(), name, limit)
    elif isinstance(item, (bytes, bytearray, memoryview)):
        image = _decode_bytes(bytes(item), name, limit)
    elif isinstance(item, Image.Image):
        image = _pil_to_tensor(item, name, limit)
    elif isinstance(item, np.ndarray):
        image = _array_to_tensor(item, name)
    elif isinstance(item, torch.Tensor):
        image = _tensor_to_rgb(item, name)
    else:
        raise InvalidImageError(
            name,
            f"unsupported input type {type(item).__name__}; expected a path, bytes, "
            "a PIL image, a numpy array or a torch tensor",
        )

    reason = size_fault_reason(*image.shape[-2:], min_size=min_size, max_aspect_ratio=ratio_limit)
    if reason is not None:
        raise InvalidImageError(name, reason)
    return image


def size_fault_reason(height: int, width: int, *, min_size: int = 1, max_aspect_ratio: float | None = None) -> str | None:
    """Why an image of this size is refused as degenerate, or None when it is fine.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
        min_size: Smallest short side (pixels) the caller's model can use.
        max_aspect_ratio: Largest long side / short side; None uses :data:`MAX_ASPECT_RATIO`.
    """
    short, long = min(height, width), max(height, width)
    if short < min_size:
        return (
            f"image is {height}x{width} (HxW); its short side of {short} px is "
            f"below the minimum of {min_size} px this model needs"
        )
    ratio_limit = _aspect_ratio_limit(max_aspect_ratio)
    if long > ratio_limit * short:
        return (
            f"image is {height}x{width} (HxW), an aspect ratio of {long / short:.3g}:1, beyond "
            f"the limit of {ratio_limit:g}:1: resized to a model's input it would be a smear "
            "(crop it, or raise max_aspect_ratio or realness.io.inputs.MAX_ASPECT_RATIO)"
        )
    return None


def _check_positive(argument: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be a positive integer, not {value!r}")


def _aspect_ratio_limit(max_aspect_ratio: float | None) -> float:
    limit = MAX_ASPECT_RATIO if max_aspect_ratio is None else max_aspect_ratio
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit >= 1:
        raise ValueError(f"max_aspect_ratio must be a number of at least 1, not {limit!r}")
    return float(limit)


# --- files and bytes -------------------------------------------------------------------


def _decode_file(path: Path, name: str, max_pixels: int) -> torch.Tensor:
    try:
        if path.is_dir():
            raise InvalidImageError(name, "is a directory, not an image file")
        if not path.exists():
            hint = "; URLs are not fetched, download the file first" if "://" in name else ""
            raise InvalidImageError(name, f"file not found{hint}")
        status = path.stat()
        special = special_file_reason(status.st_mode)
        if special is not None:
            raise InvalidImageError(name, special)
        if status.st_size == 0:
            raise InvalidImageError(name, "empty file (0 bytes)")
        with _open_with_own_limit(path, name) as image:
            return _pil_to_tensor(image, name, max_pixels)
    except OSError as err:
        # Only file access gets here: decode errors are already InvalidImageError.
        raise InvalidImageError(name, f"cannot read file ({_error_text(err)})") from err


def _decode_bytes(data: bytes, name: str, max_pixels: int) -> torch.Tensor:
    if not data:
        raise InvalidImageError(name, "empty (0 bytes)")
    with _open_with_own_limit(io.BytesIO(data), name) as image:
        return _pil_to_tensor(image, name, max_pixels)


def _open_with_own_limit(source: Path | io.BytesIO, name: str) -> Image.Image:
    """Open (header only) with PIL's pixel limit lifted; our limit is checked right after."""
    with _PIL_LIMIT_LOCK:
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(source)
        except UnidentifiedImageError as err:
            raise InvalidImageError(name, "not an image file PIL can read") from err
        except (SyntaxError, ValueError, EOFError) as err:
            raise InvalidImageError(name, f"corrupt image header ({_error_text(err)})") from err
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


# --- PIL images --------------------------------------------------------------------------


def _pil_to_tensor(image: Image.Image, name: str, max_pixels: int) -> torch.Tensor:
    if image.width * image.height > max_pixels:
        raise InvalidImageError(
            name,
            f"image is {image.width}x{image.height} (WxH) = {image.width * image.height} "
            f"pixels, above the limit of {max_pixels} (possible decompression bomb; raise "
            "max_pixels or realness.io.inputs.MAX_IMAGE_PIXELS if the file is trusted)",
        )
    try:
        image.load()  # force the full decode so a truncated file fails now
    except Image.DecompressionBombError as err:
        raise InvalidImageError(name, f"decompression bomb refused by PIL: {err}") from err
    except Exception as err:  # PIL decoders raise OSError, SyntaxError, ValueError, struct.error...
        raise InvalidImageError(name, f"corrupt or truncated image ({_error_text(err)})") from err
    try:
        image = ImageOps.exif_transpose(image)
    except Exception as err:  # malformed EXIF: orientation cannot be known
        raise InvalidImageError(name, f"unreadable EXIF orientation ({_error_text(err)})") from err

    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise InvalidImageError(
                name, f"mode {mode} values span [{values.min()}, {values.max()}], outside 0..65535"
            )
        return _tensor_to_rgb(torch.from_numpy(values.astype(np.float32) / 65535.0), name)
    if mode == "F":
        return _tensor_to_rgb(torch.from_numpy(np.array(image, dtype=np.float32)), name)
    has_alpha = mode in ("LA", "PA", "RGBA", "RGBa") or "transparency" in image.info
    try:
        converted = image.convert("RGBA" if has_alpha else "RGB")
    except (ValueError, OSError) as err:
        raise InvalidImageError(name, f"unsupported PIL mode {mode} ({_error_text(err)})") from err
    return _tensor_to_rgb(_hwc_to_chw(np.asarray(converted)), name)


# --- arrays and tensors --------------------------------------------------------------------


def _hwc_to_chw(array: np.ndarray) -> torch.Tensor:
    # copy(): contiguous, and writable even when the caller's array is read-only
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _array_to_tensor(array: np.ndarray, name: str) -> torch.Tensor:
    unsigned_8_or_16 = array.dtype.kind == "u" and array.dtype.itemsize <= 2
    if array.dtype.kind != "f" and not unsigned_8_or_16:
        raise InvalidImageError(
            name, f"unsupported dtype {array.dtype}; expected {_SUPPORTED_DTYPES} (cast to uint8)"
        )
    if array.size == 0:
        raise InvalidImageError(name, f"empty array (shape {_shape(array.shape)})")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise InvalidImageError(
            name,
            f"array has rank {array.ndim} (shape {_shape(array.shape)}); expected HxW or HxWxC",
        )
    if array.shape[2] not in (1, 3, 4):
        looks_chw = array.shape[0] in (1, 3, 4)
        hint = "; numpy arrays are HxWxC (transpose a CxHxW array)" if looks_chw else ""
        raise InvalidImageError(
            name,
            f"{array.shape[2]} channels (shape {_shape(array.shape)}); {_CHANNELS_HINT}{hint}",
        )
    if array.dtype.kind == "f" and array.dtype not in (np.float16, np.float32, np.float64):
        array = array.astype(np.float64)  # e.g. float128, which torch cannot hold
    native = array.astype(array.dtype.newbyteorder("="), copy=False)  # torch needs native order
    return _tensor_to_rgb(_hwc_to_chw(native), name)


def _tensor_to_rgb(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """Validate a ``HxW``/``CxHxW`` (or ``1xCxHxW``) tensor and return float32 RGB in [0, 1]."""
    tensor = checked_tensor_layout(tensor, name).detach().cpu()
    if tensor.dtype.is_floating_point:
        reason = float_fault_reason(*float_value_stats(tensor).tolist())
        if reason is not None:
            raise InvalidImageError(name, reason)
    return unit_rgb(tensor).contiguous()


def checked_tensor_layout(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """A ``CxHxW`` view of an image tensor whose dtype, size, rank and channels fit the contract.

    Only metadata is read: this never waits on the tensor's device.

    Raises:
        InvalidImageError: an unsupported dtype, an empty tensor, the wrong rank or channel count.
    """
    if tensor.dtype not in (torch.uint8, torch.uint16) and not tensor.dtype.is_floating_point:
        raise InvalidImageError(
            name,
            f"unsupported dtype {str(tensor.dtype).removeprefix('torch.')}; "
            f"expected {_SUPPORTED_DTYPES}",
        )
    if tensor.numel() == 0:
        raise InvalidImageError(name, f"empty tensor (shape {_shape(tensor.shape)})")
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    elif tensor.dim() != 3:
        raise InvalidImageError(
            name,
            f"tensor has rank {tensor.dim()} (shape {_shape(tensor.shape)}); expected HxW, CxHxW, "
            "or a BxCxHxW batch passed to load_images",
        )
    if tensor.shape[0] not in (1, 3, 4):
        looks_hwc = tensor.shape[-1] in (1, 3, 4)
        hint = "; tensors are CxHxW (permute a HxWxC tensor)" if looks_hwc else ""
        raise InvalidImageError(
            name,
            f"{tensor.shape[0]} channels (shape {_shape(tensor.shape)}); {_CHANNELS_HINT}{hint}",
        )
    return tensor


def float_value_stats(images: torch.Tensor) -> torch.Tensor:
    """Per image of a ``[B x] C x H x W`` float tensor: (non-finite count, min, max), as float32.

    Computed on the tensor's device, with no wait on it: read the result once for a whole batch.
    float32, not float64, because MPS has no float64.
    """
    flat = images.detach().flatten(-3)
    nonfinite = (~torch.isfinite(flat)).sum(-1)
    low, high = torch.aminmax(flat, dim=-1)  # exact in the input's dtype: a minimum is one of the values
    return torch.stack([nonfinite.float(), low.float(), high.float()], dim=-1)


def float_fault_reason(nonfinite: float, low: float, high: float) -> str | None:
    """Why float pixels with these :func:`float_value_stats` are refused, or None when they fit [0, 1]."""
    if nonfinite:
        return f"contains {int(nonfinite)} NaN or infinite value(s)"
    if low < -FLOAT_TOLERANCE or high > 1.0 + FLOAT_TOLERANCE:
        return (
            f"float values span [{low:.6g}, {high:.6g}], outside [0, 1]; divide 0..255 data by "
            "255 or pass it as uint8"
        )
    return None


def unit_rgb(images: torch.Tensor) -> torch.Tensor:
    """``[B x] C x H x W`` pixels of a checked layout as float32 RGB in [0, 1], on their own device.

    ``uint8`` is divided by 255, ``uint16`` by 65535, floats are clamped (the caller has checked
    them with :func:`float_fault_reason`); alpha is composited over white, gray replicated.
    """
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    elif images.dtype == torch.uint16:
        images = images.float().div_(65535.0)
    else:
        images = images.float().clamp(0.0, 1.0)
    channels = images.shape[-3]
    if channels == 4:
        alpha = images[..., 3:, :, :]
        images = images[..., :3, :, :] * alpha + (1.0 - alpha)  # composite over white
    elif channels == 1:
        images = images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    return images


# --- batches ------------------------------------------------------------------------------


@dataclass
class LoadedBatch:
    """The result of :func:`load_images`: one slot per input item, in input order.

    Attributes:
        tensors: float32 ``3xHxW`` tensors in [0, 1], None where an item was skipped.
        names: A readable name per item (see :func:`item_name`), skipped ones included.
        skipped: What was skipped and why (empty under ``on_error="raise"``).
        single: True when the input was one item rather than a list, tuple or batch,
            so callers can return one result instead of a list.
    """

    tensors: list[torch.Tensor | None]
    names: list[str]
    skipped: list[SkippedItem] = field(default_factory=list)
    single: bool = False

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def ok_indices(self) -> list[int]:
        """Positions of the items that loaded."""
        return [index for index, tensor in enumerate(self.tensors) if tensor is not None]

    @property
    def ok_tensors(self) -> list[torch.Tensor]:
        """The tensors that loaded, in input order (aligned with :attr:`ok_indices`)."""
        return [tensor for tensor in self.tensors if tensor is not None]


def load_images(
    images: ImagesLike,
    *,
    on_error: str = "raise",
    min_size: int = 1,
    max_pixels: int | None = None,
    max_aspect_ratio: float | None = None,
) -> LoadedBatch:
    """Load one image or a batch of images under the one input contract.

    Args:
        images: One :data:`ImageLike` item; a list or tuple mixing item kinds; a
            ``BxCxHxW`` tensor; or a ``BxHxWxC`` array (each row is one item).
        on_error: ``"raise"`` stops at the first bad item; ``"skip"`` leaves None in its
            slot, records a :class:`~realness.errors.SkippedItem` and loads the rest.
        min_size: Smallest short side (pixels) the caller's model can use.
        max_pixels: Largest width x height decoded from a file, bytes or PIL image;
            None uses the module's :data:`MAX_IMAGE_PIXELS`.
        max_aspect_ratio: Largest long side / short side; None uses :data:`MAX_ASPECT_RATIO`.

    Returns:
        A :class:`LoadedBatch` with one slot per item.

    Raises:
        InvalidImageError: A bad item, when ``on_error="raise"``.
        ValueError: ``on_error`` is not ``"raise"`` or ``"skip"``, or ``min_size`` or
            ``max_pixels`` is not a positive integer.
    """
    check_on_error(on_error)
    items, single = split_batch(images)
    batch = LoadedBatch(tensors=[], names=[], single=single)
    for index, item in enumerate(items):
        name = item_name(item, None if single else index)
        batch.names.append(name)
        try:
            tensor = load_image(
                item, name=name, min_size=min_size, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio
            )
        except InvalidImageError as err:
            if on_error == "raise":
                raise
            batch.skipped.append(SkippedItem(index=index, item=name, reason=err.reason))
            tensor = None
        batch.tensors.append(tensor)
    return batch


def split_batch(images: ImagesLike) -> tuple[list[Any], bool]:
    """Split what :func:`load_images` accepts into its items, without loading them.

    Args:
        images: One item, a list or tuple of items, a ``BxCxHxW`` tensor or a
            ``BxHxWxC`` array. A 4-D tensor or array inside a list is a batch too: it
            stands for its B images, in order.

    Returns:
        ``(items, single)``: the items in order (rows of a batch tensor or array), and
        whether the input was one lone item.
    """
    if isinstance(images, (list, tuple)):
        items: list[Any] = []
        for item in images:
            rows = _rows(item)
            items.extend([item] if rows is None else rows)
        return items, False
    rows = _rows(images)
    if rows is not None:
        return rows, False
    return [images], True


def _rows(item: Any) -> list[Any] | None:
    """The images of a 4-D batch tensor or array, or None for anything else."""
    if isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 4:
        return list(item)
    return None


# --- hashing ------------------------------------------------------------------------------


def pixel_sha256(image: torch.Tensor) -> str:
    """A content hash of decoded pixels, the same whatever container they came from.

    The hash covers a ``"realness-rgb8 HxW"`` header and the ``uint8`` RGB bytes
    ``round(x * 255)`` in ``HxWx3`` order, so a PNG, its decoded ``uint8`` array and the
    float tensor from :func:`load_image` hash alike, while a one-pixel edit does not.

    Args:
        image: A float ``3xHxW`` tensor in [0, 1], as returned by :func:`load_image`.

    Returns:
        The hex sha256 digest (64 characters).

    Raises:
        InvalidImageError: ``image`` is not a floating point ``3xHxW`` tensor.
    """
    is_rgb_tensor = isinstance(image, torch.Tensor) and image.dim() == 3 and image.shape[0] == 3
    if not (is_rgb_tensor and image.dtype.is_floating_point):
        raise InvalidImageError(
            item_name(image), "pixel_sha256 expects a float 3xHxW tensor; call load_image first"
        )
    height, width = image.shape[1:]
    pixels = (image.detach().cpu().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    digest = hashlib.sha256(f"realness-rgb8 {height}x{width}\n".encode())
    digest.update(pixels.permute(1, 2, 0).contiguous().numpy().tobytes())
    return digest.hexdigest()


# --- parallel decoding --------------------------------------------------------------------


class ImagePathsDataset(torch.utils.data.Dataset):
    """Decode images in ``DataLoader`` workers without a bad file stopping the loader.

    Each sample is ``(index, tensor, reason)``: the tensor is None and ``reason`` says why
    when the item is bad, so the caller can report it as skipped. Use it with
    :func:`collate_decoded`, which keeps variable-size images as a list::

        loader = DataLoader(ImagePathsDataset(paths), batch_size=8, num_workers=2,
                            collate_fn=collate_decoded)
        for indices, tensors, reasons in loader: ...

    Args:
        items: Paths (or any other picklable :data:`ImageLike` items).
        transform: Applied to each loaded ``3xHxW`` tensor in the worker (e.g. a resize).
        min_size: Smallest short side (pixels) the caller's model can use.
        max_pixels: Decompression-bomb limit; None takes :data:`MAX_IMAGE_PIXELS` now,
            so an override in the main process also holds in worker processes.
        max_aspect_ratio: Largest long side / short side; None takes
            :data:`MAX_ASPECT_RATIO` now, for the same reason.
    """

    def __init__(
        self,
        items: Sequence[ImageLike],
        transform: Callable[[torch.Tensor], Any] | None = None,
        *,
        min_size: int = 1,
        max_pixels: int | None = None,
        max_aspect_ratio: float | None = None,
    ):
        self.items = list(items)
        self.transform = transform
        self.min_size = min_size
        self.max_pixels = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
        self.max_aspect_ratio = _aspect_ratio_limit(max_aspect_ratio)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, Any, str | None]:
        """Load item ``index``.

        Args:
            index: Position in ``items``.

        Returns:
            ``(index, tensor_or_transformed, None)``, or ``(index, None, reason)`` for a
            bad item.
        """
        try:
            image = load_image(
                self.items[index],
                name=item_name(self.items[index], index),
                min_size=self.min_size,
                max_pixels=self.max_pixels,
                max_aspect_ratio=self.max_aspect_ratio,
            )
        except InvalidImageError as err:
            return index, None, err.reason
        return index, image if self.transform is None else self.transform(image), None


def collate_decoded(
    samples: Sequence[tuple[int, Any, str | None]],
) -> tuple[list[int], list[Any], list[str | None]]:
    """``collate_fn`` for :class:`ImagePathsDataset`: lists, since image sizes differ.

    Args:
        samples: The ``(index, tensor_or_None, reason_or_None)`` samples of one batch.

    Returns:
        ``(indices, tensors, reasons)``, three aligned lists.
    """
    return [s[0] for s in samples], [s[1] for s in samples], [s[2] for s in samples]
