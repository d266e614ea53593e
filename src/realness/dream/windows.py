"""The window arithmetic of DREAM: where windows sit, how they are cut and averaged back.

Pure tensor functions, no model: the mapper feeds them embeddings. Windows of one size
are read from a stride-1 ``Tensor.unfold`` view of the image (no copy); only the windows
of one chunk are ever materialised, so memory does not grow with the number of windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def window_starts(length: int, window: int, stride: int) -> torch.Tensor:
    """Start offsets of the windows along one axis: every ``stride``, plus one flush with the end.

    Args:
        length: Image side in pixels.
        window: Window side in pixels (at most ``length``).
        stride: Step between consecutive windows.

    Returns:
        int64 tensor of increasing starts; the last window ends exactly at ``length``, so
        every pixel is covered.

    Raises:
        ValueError: ``window`` exceeds ``length`` or a size is not positive.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
    if window > length:
        raise ValueError(f"a window of {window} px does not fit in {length} px")
    starts = torch.arange(0, length - window + 1, stride)
    if int(starts[-1]) + window < length:
        # The stride left a margin at the end: one more window flush with the border.
        starts = torch.cat([starts, torch.tensor([length - window])])
    return starts


def gather_windows(image: torch.Tensor, window: int, tops: torch.Tensor, lefts: torch.Tensor) -> torch.Tensor:
    """Cut the windows at (``tops[i]``, ``lefts[i]``) out of ``image`` in one indexing call.

    Args:
        image: ``C x H x W`` tensor.
        window: Window side in pixels.
        tops: int64 tensor of N row offsets (on ``image``'s device).
        lefts: int64 tensor of N column offsets, aligned with ``tops``.

    Returns:
        ``N x C x window x window`` tensor (a copy of only these N windows).
    """
    # unfold with step 1 is a strided view: every possible window, no memory.
    every_window = image.unfold(1, window, 1).unfold(2, window, 1)  # C x nH x nW x w x w
    return every_window[:, tops, lefts].transpose(0, 1)


def coverage_matrix(length: int, starts: torch.Tensor, window: int) -> torch.Tensor:
    """``length x n`` matrix, 1 where pixel row (or column) i lies in window j, else 0.

    Args:
        length: Image side in pixels.
        starts: The n window starts along this axis.
        window: Window side in pixels.

    Returns:
        float32 tensor on ``starts``' device.
    """
    pixels = torch.arange(length, device=starts.device).unsqueeze(1)
    return ((pixels >= starts) & (pixels < starts + window)).to(torch.float32)


def overlap_average(
    scores: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, window: int, height: int, width: int
) -> torch.Tensor:
    """Per pixel, the mean score of the windows covering it: R_W(x, y) of the paper.

    The windows form a grid (every start in ``tops`` with every start in ``lefts``), so the
    overlap-add is separable: ``sum = A @ scores @ B^T`` and ``count = A 1 (B 1)^T`` with
    A, B the coverage matrices of the rows and columns. This is what ``F.fold`` computes
    with a kernel of ones, but in ``H x n`` memory instead of ``window^2`` values per window
    (4 GB for one scale of a 2048 x 2048 image), and it handles the extra windows flush with
    the border, which do not sit on the stride grid.

    Args:
        scores: ``len(tops) x len(lefts)`` window scores.
        tops: Distinct window row starts (see :func:`window_starts`).
        lefts: Distinct window column starts.
        window: Window side in pixels.
        height: Image height.
        width: Image width.

    Returns:
        ``height x width`` float32 map.
    """
    rows = coverage_matrix(height, tops, window)
    columns = coverage_matrix(width, lefts, window)
    total = rows @ scores.to(torch.float32) @ columns.T
    count = rows.sum(1, keepdim=True) * columns.sum(1).unsqueeze(0)
    return total / count


def combine_scales(per_scale: Sequence[torch.Tensor]) -> torch.Tensor:
    """R = max over window sizes of R_W, min-max normalized to [0, 1].

    Args:
        per_scale: One ``H x W`` map per window size (at least one).

    Returns:
        ``H x W`` float32 map in [0, 1]; a constant map becomes all ones (nothing stands out
        as less real), never NaN.
    """
    combined = torch.stack(list(per_scale)).amax(0)
    low, high = combined.min(), combined.max()
    if high - low <= torch.finfo(combined.dtype).eps * max(1.0, float(high.abs())):
        return torch.ones_like(combined)
    return (combined - low) / (high - low)
