"""Where and how models run: the device, the numeric precision and autocast, one place for all.

Every entry point (``RealnessScorer``, ``RealnessMapper``, ``Realness``, the workflows and
the CLI) takes ``device`` and ``precision`` and hands them to these functions, so
``device="cuda"`` on a CPU-only torch fails the same way everywhere, before any weight is
loaded, and ``precision="auto"`` means the same thing for CORE and DREAM.
"""

from __future__ import annotations

import contextlib
from typing import Union

import torch

from realness.errors import DeviceError, UsageError

#: ``fp32``: full precision; ``bf16`` / ``fp16``: autocast to that type; ``auto``: bf16 (or
#: fp16 where bf16 is unsupported) on CUDA, fp32 elsewhere.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

DeviceLike = Union[str, torch.device, None]

_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def resolve_device(device: DeviceLike = None) -> torch.device:
    """The device to run on: ``device`` checked against this machine, or the best one here.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device``, or None
            (CUDA when available, else CPU).

    Returns:
        The device.

    Raises:
        DeviceError: ``device`` is not a device name, or names one this machine or this torch
            build does not have.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(str(device), "not a device name (use cpu, cuda, cuda:N or mps)") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "a CUDA build that finds no GPU"
            raise DeviceError(str(device), f"CUDA is not available (torch {torch.__version__} is {build}); use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(str(device), f"there are only {torch.cuda.device_count()} CUDA device(s) here")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(str(device), "MPS is not available on this machine")
    return resolved


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`.

    Raises:
        UsageError: any other value.
    """
    if precision not in PRECISIONS:
        raise UsageError(f"precision={precision!r}", f"use one of {', '.join(PRECISIONS)}")
    return precision


def check_batch_size(batch_size: int | None, *, flag: str = "batch_size", optional: bool = False) -> int | None:
    """Refuse a batch size below 1 (or None unless ``optional``: None means chosen for you).

    Raises:
        UsageError: not a positive integer; ``flag`` names it (``--batch-size`` in the CLI).
    """
    if batch_size is None and optional:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(flag, f"must be at least 1, not {batch_size!r}")
    return batch_size


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The floating point type the forward passes compute in under ``precision`` on ``device``."""
    check_precision(precision)
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return torch.float32
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def describe_precision(precision: str, device: torch.device) -> str:
    """``precision`` as a person reads it, ``auto`` with what it means on ``device``: ``"auto (bf16)"``."""
    if precision != "auto":
        return precision
    return f"auto ({_DTYPE_NAMES[compute_dtype(precision, device)]})"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32).

    Weights stay in float32; autocast runs the matrix products in the lower precision and keeps
    reductions and normalizations in float32, which is what keeps bf16 scores close to fp32 ones.
    """
    dtype = compute_dtype(precision, device)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
