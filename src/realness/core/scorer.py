"""RealnessScorer: batched CORE scoring of any image inputs, and the functional ``score``."""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from realness.core.model import CoreModel
from realness.core.pretrained import DEFAULT_MODEL
from realness.core.result import ScoreResult
from realness.describers.descriptions import (
    DescriptionsLike,
    as_describer,
    fill_missing,
    resolve_descriptions,
    warn_image_only,
)
from realness.errors import InvalidImageError, SkippedItem, check_on_error
from realness.io.inputs import ImagePathsDataset, collate_decoded, item_name, split_batch
from realness.io.tensor_batch import TensorBatch, as_tensor_batch, fault_reasons
from realness.runtime.device import (
    DeviceLike,
    autocast,
    check_batch_size,
    check_precision,
    describe_precision,
    resolve_device,
)
from realness.text.verdict import parse_verdict

# The old name of the type of ``descriptions``, kept for callers that import it.
Descriptions = DescriptionsLike


class RealnessScorer:
    """Score how real images look to people (CORE), in batches.

    Scores are in the units of the training MOS (RAISE-TD z-scores for the bundled model:
    0 is the average image of RAISE, +1 one standard deviation more real); higher is better.

    Args:
        model: a loaded :class:`CoreModel`, or a name for :meth:`CoreModel.from_pretrained`
            (``realness-core-lite``, ``hf-hub:org/repo`` or a local directory).
        device: where to run (default: CUDA if available, else CPU); a device this machine
            lacks raises :class:`~realness.errors.DeviceError`.
        precision: ``auto`` (bf16 autocast on CUDA, fp16 where bf16 is unsupported; fp32
            elsewhere), ``fp32``, ``bf16`` or ``fp16`` (autocast to that type).
        batch_size: images per forward pass.
        describer: writes descriptions for images that come without one: a describer object
            or a name such as ``"openai"`` (see :func:`realness.list_describers`); without
            one, such images are scored image-only (one warning).
        progress: show a progress bar; None: for batches of more than 4 forward passes.
        num_workers: DataLoader workers decoding images while the model computes
            (``None``: chosen from the batch size and the number of CPUs).
        interval_level: the coverage of each score's interval (``ScoreResult.interval``), calibrated
            on the model's training data: 0.9 means 9 in 10 images' true scores fall inside.

    Attributes:
        model_name: the name or folder the model was loaded from (shown by ``repr``, with the
            device, the precision and the head).

    Example:
        >>> scorer = RealnessScorer.from_pretrained()                      # doctest: +SKIP
        >>> scorer(["a.png", "b.png"], descriptions=["No.", "Yes. Six fingers."]).scores  # doctest: +SKIP
    """

    higher_is_better = True

    def __init__(
        self,
        model: CoreModel | str | os.PathLike = DEFAULT_MODEL,
        *,
        device: DeviceLike = None,
        precision: str = "auto",
        batch_size: int = 32,
        describer: Any = None,
        progress: bool | None = None,
        num_workers: int | None = None,
        interval_level: float = 0.9,
    ):
        self.precision = check_precision(precision)
        self.device = resolve_device(device)  # before loading: a bad device fails fast
        check_batch_size(batch_size)
        if isinstance(model, (str, os.PathLike)):
            self.model_name = str(model)
            model = CoreModel.from_pretrained(model)
        else:  # a model object has no name of its own: its encoders say what it is
            self.model_name = f"CoreModel(image={model.config.image_encoder.name}, text={model.config.text_encoder.name})"
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size
        self.describer = as_describer(describer)
        self.progress = progress
        self.num_workers = num_workers
        if not 0.0 < interval_level < 1.0:
            raise ValueError(f"interval_level must be between 0 and 1 (exclusive), not {interval_level}")
        self.interval_level = interval_level

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = DEFAULT_MODEL,
        *,
        device: DeviceLike = None,
        precision: str = "auto",
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> RealnessScorer:
        """A scorer around :meth:`CoreModel.from_pretrained`.

        Args:
            name_or_path: ``realness-core-lite`` (bundled), ``hf-hub:org/repo[@revision]`` or a
                local directory written by ``save_pretrained``.
            device: See :class:`RealnessScorer`.
            precision: See :class:`RealnessScorer`.
            revision: Hub revision (branch, tag or commit).
            cache_dir: Hub cache folder (default: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``).
            **kwargs: The other :class:`RealnessScorer` arguments.
        """
        resolve_device(device)  # a bad device fails before the weights load
        model = CoreModel.from_pretrained(name_or_path, revision=revision, cache_dir=cache_dir)
        scorer = cls(model, device=device, precision=precision, **kwargs)
        scorer.model_name = str(name_or_path)
        return scorer

    def __repr__(self) -> str:
        precision = describe_precision(self.precision, self.device)
        return (f"RealnessScorer(model={self.model_name!r}, device={str(self.device)!r}, precision={precision!r}, "
                f"head={self.model.config.head!r}, batch_size={self.batch_size})")

    def with_batch_size(self, batch_size: int) -> RealnessScorer:
        """This scorer (same model object, no copy of the weights) with another batch size."""
        if check_batch_size(batch_size) == self.batch_size:
            return self
        other = copy.copy(self)
        other.batch_size = batch_size
        return other

    @property
    def score_units(self) -> str:
        """What one unit of score means for this model."""
        return self.model.config.score_units

    def __call__(
        self,
        images: Any,
        descriptions: DescriptionsLike = None,
        *,
        on_error: str = "raise",
        progress: bool | None = None,
    ) -> ScoreResult:
        """Score one image or a batch.

        Args:
            images: one image or a batch: paths, bytes, PIL images, arrays, tensors (see
                :mod:`realness.io.inputs`), or a list mixing them, or a ``B x 3 x H x W`` tensor.
            descriptions: None, one string for one image, a sequence aligned with the
                images, or a describer (object or name, e.g. ``"openai"``) that writes them.
                A missing text is written by the describer (this one, else the scorer's);
                with no describer the image is scored image-only, with one warning.
            on_error: ``raise`` stops at the first bad image; ``skip`` gives it a NaN score,
                records it in ``result.skipped`` and scores the rest.
            progress: show a progress bar (default: the scorer's ``progress``, else for
                batches of more than 4 forward passes).

        A tensor is checked, resized and normalized on its own device, and its scores come back
        to the host in one copy; other inputs are decoded on the CPU (in DataLoader workers).

        Returns:
            A :class:`ScoreResult` aligned with the inputs.

        Raises:
            InvalidImageError: a bad image, with ``on_error="raise"``.
            DescriptionsError: descriptions do not match the images.
        """
        items, single, names, texts, describer, tensors = self._prepare(images, descriptions, on_error)
        values = torch.full((len(items), 3), float("nan"), dtype=torch.float32)  # score, low, high
        skipped: list[SkippedItem] = []
        stream = list(self._score_stream(items, names, texts, describer, on_error, progress, tensors))
        for indices, batch_values, failures in _settle(stream, names, on_error):
            if indices:
                values[indices] = batch_values
            skipped.extend(failures)
        failed = {item.index for item in skipped}
        used = [texts[i] if i not in failed else None for i in range(len(items))]
        return ScoreResult(
            scores=values[:, 0].contiguous(),
            names=names,
            descriptions=used,
            verdicts=[parse_verdict(text) for text in used],
            skipped=sorted(skipped, key=lambda s: s.index),
            single=single,
            interval=values[:, 1:].contiguous(),
        )

    def iter_batches(
        self,
        images: Any,
        descriptions: DescriptionsLike = None,
        *,
        on_error: str = "raise",
        progress: bool | None = None,
    ) -> Iterator[tuple[list[int], ScoreResult]]:
        """Score like :meth:`__call__`, handing back each forward batch as soon as it is done.

        A long run can then save its results as it goes: interrupted (Ctrl-C), it keeps every
        batch already yielded.

        Yields:
            ``(indices, result)``: the positions of this batch's items in ``images``, and a
            :class:`ScoreResult` of those items alone (its ``skipped`` indices count within it).
        """
        items, single, names, texts, describer, tensors = self._prepare(images, descriptions, on_error)
        for chunk in self._score_stream(items, names, texts, describer, on_error, progress, tensors):
            [(indices, batch_values, failures)] = _settle([chunk], names, on_error)
            done = sorted(indices + [item.index for item in failures])
            position = {index: k for k, index in enumerate(done)}
            values = torch.full((len(done), 3), float("nan"), dtype=torch.float32)
            if indices:
                values[[position[i] for i in indices]] = batch_values
            failed = {item.index for item in failures}
            used = [None if i in failed else texts[i] for i in done]
            yield done, ScoreResult(
                scores=values[:, 0].contiguous(),
                names=[names[i] for i in done],
                descriptions=used,
                verdicts=[parse_verdict(text) for text in used],
                skipped=[SkippedItem(position[item.index], item.item, item.reason) for item in failures],
                interval=values[:, 1:].contiguous(),
            )

    def _prepare(self, images: Any, descriptions: DescriptionsLike, on_error: str):
        """``(items, single, names, texts, describer, tensors)``: the batch split, named, aligned with
        its descriptions, and a tensor's images prepared on their device (else ``tensors`` is None)."""
        check_on_error(on_error)
        items, single = split_batch(images)
        resolved = resolve_descriptions(descriptions, items, describer=self.describer)
        if resolved.match is not None:
            resolved.match.warn()
        texts, describer = resolved.texts, resolved.describer
        names = [item_name(item, None if single else index) for index, item in enumerate(items)]
        tensors = as_tensor_batch(images, min_size=self.model.image_encoder.config.min_size)
        return items, single, names, texts, describer, tensors

    def _score_stream(self, items, names, texts, describer, on_error, progress, tensors):
        """Yield a :class:`_Scored` per forward batch (scores still on the device)."""
        failures = fill_missing(describer, items, names, texts, on_error=on_error)
        skipped = {item.index: item for item in failures}
        if skipped:
            yield _Scored([], None, failures)
        wanted = [i for i in range(len(items)) if i not in skipped]
        progress = progress if progress is not None else self.progress
        show = progress if progress is not None else len(wanted) > 4 * self.batch_size
        if tensors is not None:
            batches = self._tensor_batches(tensors, wanted, show)
        else:
            batches = self._decoded_batches(items, wanted, show)
        image_only = []
        for indices, pixels, value_stats, failures in batches:
            image_only += [names[i] for i in indices if texts[i] is None]
            new = []
            for index, reason in failures:
                if on_error == "raise":
                    raise InvalidImageError(names[index], reason)
                new.append(SkippedItem(index, names[index], reason))
            values = self._forward(pixels, [texts[i] or "" for i in indices], value_stats) if indices else None
            yield _Scored(indices, values, new)
        warn_image_only(image_only, _validation_note(self.model))

    @torch.inference_mode()
    def _tensor_batches(self, tensors: TensorBatch, wanted: list[int], show: bool):
        """Yield (indices, pixels, value stats, no failures) per batch, resized and normalized on the device."""
        preprocess = self.model.image_encoder.preprocess
        everything = len(wanted) == len(tensors)
        with tqdm(total=len(wanted), disable=not show, unit="img", desc="realness score") as bar:
            for start in range(0, len(wanted), self.batch_size):
                indices = wanted[start : start + self.batch_size]
                rows = slice(start, start + len(indices)) if everything else indices  # a slice is a view, no copy
                pixels = tensors.pixels[rows]
                if pixels.device != self.device:  # a CPU tensor for a GPU scorer: resize where the model runs
                    pixels = pixels.to(self.device, non_blocking=True)
                stats = None if tensors.value_stats is None else tensors.value_stats[rows]
                yield indices, preprocess(pixels), stats, []
                bar.update(len(indices))

    def _decoded_batches(self, items, wanted, show):
        """Yield (indices, pixels, None, failures) per batch; decoding overlaps compute in workers."""
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
            worker_init_fn=quiet_worker_teardown if workers else None,
        )
        with tqdm(total=len(wanted), disable=not show, unit="img", desc="realness score") as bar:
            for positions, pixels, reasons in loader:
                good = [k for k, tensor in enumerate(pixels) if tensor is not None]
                failures = [(wanted[positions[k]], reasons[k]) for k, tensor in enumerate(pixels) if tensor is None]
                batch = torch.stack([pixels[k] for k in good]) if good else None
                yield [wanted[positions[k]] for k in good], batch, None, failures
                bar.update(len(positions))

    @torch.inference_mode()
    def _forward(self, pixels: torch.Tensor, texts: list[str], value_stats: torch.Tensor | None) -> torch.Tensor:
        """``n x 3`` float32 scores and interval ends, or ``n x 6`` with the images' value stats, left on the device."""
        if pixels.device != self.device:
            pixels = pixels.to(self.device, non_blocking=True)
        with autocast(self.precision, self.device):
            scores = self.model.predict(pixels, texts, level=self.interval_level).float()
        if value_stats is None:
            return scores
        if value_stats.device != scores.device:
            value_stats = value_stats.to(scores.device, non_blocking=True)
        return torch.cat([scores, value_stats], dim=1)


@dataclass
class _Scored:
    """One forward batch: its items' positions, their scores still on the device, the items skipped."""

    indices: list[int]
    values: torch.Tensor | None
    skipped: list[SkippedItem]


def _settle(chunks: list[_Scored], names: list[str], on_error: str) -> list[tuple[list[int], torch.Tensor | None, list[SkippedItem]]]:
    """``(indices, scores and interval ends (n x 3), skipped)`` per chunk, read to the host in one copy.

    A tensor's images whose values failed the check (NaN, out of [0, 1]) were scored with the
    rest, so that checking them cost no wait on the device; here they become skipped items.

    Raises:
        InvalidImageError: such an image, with ``on_error="raise"``.
    """
    parts = [chunk.values for chunk in chunks if chunk.values is not None]
    host = torch.cat(parts).cpu() if parts else None  # the one copy from the device
    settled, offset = [], 0
    for chunk in chunks:
        if chunk.values is None:
            settled.append((chunk.indices, None, chunk.skipped))
            continue
        rows = host[offset : offset + len(chunk.indices)]
        offset += len(chunk.indices)
        reasons = fault_reasons(rows[:, 3:]) if rows.shape[1] > 3 else [None] * len(rows)
        for index, reason in zip(chunk.indices, reasons):
            if reason is not None and on_error == "raise":
                raise InvalidImageError(names[index], reason)
        keep = [k for k, reason in enumerate(reasons) if reason is None]
        bad = [SkippedItem(chunk.indices[k], names[chunk.indices[k]], reason) for k, reason in enumerate(reasons) if reason]
        settled.append(([chunk.indices[k] for k in keep], rows[keep, :3], chunk.skipped + bad))
    return settled


def quiet_worker_teardown(worker_id: int) -> None:
    """In a decode worker: no traceback when the main process stops listening (Ctrl-C).

    A worker hands each decoded batch over through a background thread of multiprocessing;
    when the main process is interrupted mid-transfer that thread's pipe breaks and it
    reports the ``BrokenPipeError`` through ``sys.excepthook``, which is expected then.
    """
    previous = sys.excepthook

    def hook(kind, value, traceback):
        if not issubclass(kind, (OSError, EOFError)):
            previous(kind, value, traceback)

    sys.excepthook = hook


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


def _validation_note(model: CoreModel) -> str:
    """The model's measured cost of scoring without text, for the image-only warning."""
    validation = model.config.extra.get("validation", {})
    if "val_srocc" in validation and "val_srocc_image_only" in validation:
        return (
            f" (validation SROCC {validation['val_srocc']:.3f} with descriptions, "
            f"{validation['val_srocc_image_only']:.3f} without)"
        )
    return ""


_SCORERS: dict[tuple[str, str], RealnessScorer] = {}
_SCORERS_LOCK = threading.Lock()


def score(
    images: Any,
    descriptions: DescriptionsLike = None,
    *,
    model: str | os.PathLike = DEFAULT_MODEL,
    device: DeviceLike = None,
    precision: str = "auto",
    batch_size: int = 32,
    progress: bool | None = None,
    on_error: str = "raise",
) -> float | torch.Tensor:
    """Realness score of one image (a float) or of a batch (a 1-D float tensor, NaN where skipped).

    One scorer per (model, device, precision) is built on first use and reused.

    Args:
        images: one image or a batch (see :class:`RealnessScorer`).
        descriptions: None, one string for one image, a sequence aligned with the images, or
            a describer (object or name such as ``"openai"``) that writes them.
        model: ``realness-core-lite``, ``hf-hub:org/repo`` or a local directory.
        device: where to run (default: CUDA if available).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: images per forward pass.
        progress: show a progress bar (None: for long batches).
        on_error: ``raise`` or ``skip`` (skipped items score NaN).

    Returns:
        ``float`` for a single image, else a ``torch.Tensor`` of shape ``(B,)``.
    """
    resolved = resolve_device(device)
    key = (str(model), str(resolved), check_precision(precision))
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = RealnessScorer.from_pretrained(model, device=resolved, precision=precision)
        scorer = _SCORERS[key]
    # batch_size is per call: the cached scorer is shared, so it is not changed in place.
    result = scorer.with_batch_size(batch_size)(images, descriptions, on_error=on_error, progress=progress)
    return float(result.scores[0]) if result.single else result.scores
