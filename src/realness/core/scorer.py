"""RealnessScorer: batched CORE scoring of any image inputs, and the functional ``score``."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from torch.utils.data import DataLoader

from realness.core.model import CoreModel
from realness.core.pretrained import DEFAULT_MODEL
from realness.core.result import ScoreResult
from realness.errors import InvalidImageError, SkippedItem, check_on_error
from realness.verdict import parse_verdict

Descriptions = Union[None, str, Sequence[Optional[str]]]

_IMAGE_ONLY_WARNED = False


class RealnessScorer:
    """Score how real images look to people (CORE), in batches.

    Scores are in the units of the training MOS (RAISE-TD z-scores for the bundled model:
    0 is the average image of RAISE, +1 one standard deviation more real); higher is better.

    Args:
        model: a loaded :class:`CoreModel`, or a name for :meth:`CoreModel.from_pretrained`.
        device: where to run (default: CUDA if available, else CPU).
        dtype: parameter dtype; on CUDA, mixed precision autocast (bf16 where supported) is
            used unless a dtype is given.
        batch_size: images per forward pass.
        describer: writes descriptions for images that come without one (see
            :mod:`realness.describers`); without it, such images are scored image-only.
        num_workers: DataLoader workers decoding images while the model computes
            (``None``: chosen from the batch size and the number of CPUs).

    Example:
        >>> scorer = RealnessScorer.from_pretrained()                      # doctest: +SKIP
        >>> scorer(["a.png", "b.png"], descriptions=["No.", "Yes. Six fingers."]).scores  # doctest: +SKIP
    """

    higher_is_better = True

    def __init__(
        self,
        model: Union[CoreModel, str, os.PathLike] = DEFAULT_MODEL,
        *,
        device: Union[str, torch.device, None] = None,
        dtype: Optional[torch.dtype] = None,
        batch_size: int = 32,
        describer: Any = None,
        num_workers: Optional[int] = None,
    ):
        if isinstance(model, (str, os.PathLike)):
            model = CoreModel.from_pretrained(model)
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype
        self.model = model.to(self.device, dtype=dtype).eval() if dtype else model.to(self.device).eval()
        self.batch_size = batch_size
        self.describer = describer
        self.num_workers = num_workers

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_MODEL, *, revision: Optional[str] = None, **kwargs: Any) -> "RealnessScorer":
        """A scorer around :meth:`CoreModel.from_pretrained` (bundled name, directory or Hub id)."""
        return cls(CoreModel.from_pretrained(name_or_path, revision=revision), **kwargs)

    @property
    def score_units(self) -> str:
        """What one unit of score means for this model."""
        return self.model.config.score_units

    def __call__(
        self,
        images: Any,
        descriptions: Descriptions = None,
        *,
        on_error: str = "raise",
        progress: Optional[bool] = None,
    ) -> ScoreResult:
        """Score one image or a batch.

        Args:
            images: one image or a batch: paths, bytes, PIL images, arrays, tensors (see
                :mod:`realness.inputs`), or a list mixing them, or a ``B x 3 x H x W`` tensor.
            descriptions: one text per image (a single string for a single image); None
                entries or no descriptions at all mean "write one with the describer", or
                image-only scoring when the scorer has no describer.
            on_error: ``raise`` stops at the first bad image; ``skip`` gives it a NaN score,
                records it in ``result.skipped`` and scores the rest.
            progress: show a progress bar (default: for batches of more than 4 forward passes).

        Returns:
            A :class:`ScoreResult` aligned with the inputs.

        Raises:
            InvalidImageError: a bad image, with ``on_error="raise"``.
            ValueError: descriptions do not match the images.
        """
        from realness.inputs import item_name, split_batch

        check_on_error(on_error)
        items, single = split_batch(images)
        texts = _align_descriptions(descriptions, len(items), single)
        names = [item_name(item, None if single else index) for index, item in enumerate(items)]
        skipped: dict[int, SkippedItem] = {}
        if any(text is None for text in texts) and self.describer is not None:
            self._describe_missing(items, names, texts, skipped, on_error)
        if any(text is None for text in texts):
            _warn_image_only(self.model)
        scores = torch.full((len(items),), float("nan"), dtype=torch.float32)
        wanted = [i for i in range(len(items)) if i not in skipped]
        show = progress if progress is not None else len(wanted) > 4 * self.batch_size
        for indices, pixels, failures in self._batches(items, names, wanted, show):
            for index, reason in failures:
                if on_error == "raise":
                    raise InvalidImageError(names[index], reason)
                skipped[index] = SkippedItem(index, names[index], reason)
            if indices:
                scores[indices] = self._forward(pixels, [texts[i] or "" for i in indices])
        used = [texts[i] if i not in skipped else None for i in range(len(items))]
        return ScoreResult(
            scores=scores,
            names=names,
            descriptions=used,
            verdicts=[parse_verdict(text) for text in used],
            skipped=sorted(skipped.values(), key=lambda s: s.index),
            single=single,
        )

    def _describe_missing(self, items, names, texts, skipped, on_error) -> None:
        missing = [i for i, text in enumerate(texts) if text is None]
        described = self.describer.describe([items[i] for i in missing], on_error=on_error)
        for index, description in zip(missing, described):
            text = getattr(description, "text", None)
            if text is None:
                reason = getattr(description, "error", None) or "the describer returned no description"
                skipped[index] = SkippedItem(index, names[index], f"description failed: {reason}")
            else:
                texts[index] = text

    def _batches(self, items, names, wanted, show):
        """Yield (indices, pixels, failures) per batch; decoding overlaps compute in workers."""
        from tqdm.auto import tqdm

        from realness.inputs import ImagePathsDataset, collate_decoded

        encoder = self.model.image_encoder
        dataset = ImagePathsDataset([items[i] for i in wanted], encoder.preprocess, min_size=encoder.config.min_size)
        workers = self.num_workers if self.num_workers is not None else auto_decode_workers(dataset.items, self.batch_size, self.device)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=workers,
            collate_fn=collate_decoded,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )
        with tqdm(total=len(wanted), disable=not show, unit="img", desc="realness score") as bar:
            for positions, pixels, reasons in loader:
                good = [k for k, tensor in enumerate(pixels) if tensor is not None]
                failures = [(wanted[positions[k]], reasons[k]) for k, tensor in enumerate(pixels) if tensor is None]
                batch = torch.stack([pixels[k] for k in good]) if good else None
                yield [wanted[positions[k]] for k in good], batch, failures
                bar.update(len(positions))

    @torch.inference_mode()
    def _forward(self, pixels: torch.Tensor, texts: list[str]) -> torch.Tensor:
        pixels = pixels.to(self.device, non_blocking=True)
        if self.dtype is not None:
            pixels = pixels.to(self.dtype)
        with _autocast(self.device, self.dtype):
            return self.model(pixels, texts).float().cpu()


def auto_decode_workers(items: list, batch_size: int, device: torch.device) -> int:
    """DataLoader workers worth starting: only for file decoding, and only on spare cores.

    On a CPU device the forward pass already keeps ``torch.get_num_threads()`` cores busy;
    a worker on top of them slows both down (measured in benchmarks/score_speed.py).
    """
    decodes = any(isinstance(item, (str, bytes, os.PathLike)) for item in items)
    if not decodes or len(items) <= batch_size:
        return 0
    busy = 1 if device.type != "cpu" else torch.get_num_threads()
    return max(0, min(4, (os.cpu_count() or 1) - busy))


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if device.type != "cuda" or dtype is not None:
        return contextlib.nullcontext()
    half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=half)


def _align_descriptions(descriptions: Descriptions, count: int, single: bool) -> list[Optional[str]]:
    if descriptions is None:
        return [None] * count
    if isinstance(descriptions, str):
        if count != 1:
            raise ValueError(f"one description string was given for {count} images; pass a list of {count}")
        return [descriptions]
    texts = list(descriptions)
    if len(texts) != count:
        raise ValueError(f"{len(texts)} descriptions were given for {count} images")
    for index, text in enumerate(texts):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"description {index} is a {type(text).__name__}, not a string")
    return texts


def _warn_image_only(model: CoreModel) -> None:
    global _IMAGE_ONLY_WARNED
    if _IMAGE_ONLY_WARNED:
        return
    _IMAGE_ONLY_WARNED = True
    validation = model.config.extra.get("validation", {})
    measured = ""
    if "val_srocc" in validation and "val_srocc_image_only" in validation:
        measured = (
            f" (validation SROCC {validation['val_srocc']:.3f} with descriptions vs "
            f"{validation['val_srocc_image_only']:.3f} without)"
        )
    warnings.warn(
        "Scoring without a description (image-only): agreement with people is lower than with a "
        f"description of what looks unrealistic{measured}. "
        "Pass descriptions=... or a describer to score with text.",
        UserWarning,
        stacklevel=3,
    )


_SCORERS: dict[tuple[str, str], RealnessScorer] = {}
_SCORERS_LOCK = threading.Lock()


def score(
    images: Any,
    description: Descriptions = None,
    *,
    model: str = DEFAULT_MODEL,
    device: Union[str, torch.device, None] = None,
    on_error: str = "raise",
) -> Union[float, torch.Tensor]:
    """Realness score of one image (a float) or of a batch (a 1-D float tensor, NaN where skipped).

    One scorer per (model, device) is built on first use and reused.

    Args:
        images: one image or a batch (see :class:`RealnessScorer`).
        description: the description of the one image, or a list with one per image.
        model: bundled model name, local directory or Hub id.
        device: where to run.
        on_error: ``raise`` or ``skip`` (skipped items score NaN).

    Returns:
        ``float`` for a single image, else a ``torch.Tensor`` of shape ``(B,)``.
    """
    resolved = str(torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")))
    key = (str(model), resolved)
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = RealnessScorer.from_pretrained(str(model), device=resolved)
        scorer = _SCORERS[key]
    result = scorer(images, description, on_error=on_error)
    return float(result.scores[0]) if result.single else result.scores
