"""Realness maps from the bundled CORE model: one encoder pass, its features pooled over regions.

The CORE image features of an image are the pooled head (1280 channels) and the mean and
standard deviation of each tapped EfficientNet-Lite stage over the whole image. Here the same
statistics are taken over square regions instead, from box sums of each stage's feature map
and of its square (one forward pass per image, no crops). Three readings of them:

- ``contrast_detail`` (the default): ``contrast``, less the detail surprise of the region: how
  far the activity of the first two stages departs from what the later stages' activity
  predicts across the image's regions (blur removes fine detail the coarse stages say is
  there, noise adds detail they do not explain). Each cue is in units of its own spread over
  the image before they are added.
- ``contrast``: how far each region's stage statistics, standardized as the
  model's head standardizes them, stand out from the image's typical region, each feature in
  units of its own spread over the image's regions. A spliced, blurred or noisy region stands
  out from the rest of its image; low = stands out.
- ``head``: the head's image-only regression of each region's feature vector, which mixes the
  region's own statistics with those of the rest of the image (``region_weight`` 1: the region
  alone; 0: the image without the region, whose realness is then the score it takes away).

The contrast reading was chosen over the head readings, and the detail surprise added to it (issue 29), by cross-validation on RAISE-TD's train
photographs with planted regions, and it finds the pasted patch of the edited example cat,
which every head reading misses (``benchmarks/results/localization_train.md``). Per pixel, the
values of the regions that cover it are averaged per region size, the sizes are averaged, the
map is upsampled to the input's pixels and min-max normalized to [0, 1] (high = realistic, as
DREAM's maps are).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from realness.core.model import CoreModel
from realness.core.pretrained import DEFAULT_MODEL
from realness.describers.descriptions import DescriptionsLike, as_describer, fill_missing, resolve_descriptions
from realness.dream.methods import MapMethod, register_map_method
from realness.dream.result import RealnessMap, RealnessMapBatch
from realness.dream.windows import combine_scales, overlap_average
from realness.errors import InvalidImageError, UsageError, check_on_error
from realness.io.inputs import load_images, split_batch
from realness.io.pixels import normalize, resize_image
from realness.io.tensor_batch import load_tensor_batch
from realness.runtime.device import DeviceLike, autocast, check_precision, resolve_device

#: How regions are read (see the module's docstring).
READINGS = ("contrast_detail", "contrast", "head")
#: The shipped settings, chosen on RAISE-TD's train photographs (benchmarks/results/localization_train.md).
DEFAULT_READING = "contrast_detail"
DEFAULT_REGION_SIZES = (64, 32)
DEFAULT_REGION_WEIGHT = 1.0
# Regions start on the grid of the encoder's coarsest feature map (32 input pixels).
_GRID = 32
# Floor of a feature's spread over an image's regions (standardized units): a feature that is
# flat over the image does not turn its smallest wobble into a large deviation.
_SPREAD_FLOOR = 0.1
# The fine stages whose detail is predicted from the coarse ones (``contrast_detail``).
_FINE_STAGES = (0, 1)


@dataclass
class CoreRegionMaps:
    """The raw region values of one image (higher = more real): per region size, and their mean, ``H x W``."""

    per_scale: dict[int, torch.Tensor]
    combined: torch.Tensor


class CoreRegionReader:
    """Reads a CORE model's features region by region (see the module's docstring).

    Args:
        model: A CORE model with an ``efficientnet_lite`` image encoder and a kernel ridge head
            (the bundled ``realness-core-lite``).
        region_sizes: Region sides in pixels of the encoder's input (multiples of 32).
        reading: ``contrast_detail``, ``contrast`` or ``head``.
        region_weight: ``head`` reading: share of the region's own statistics in its feature
            vector (the rest comes from the image without the region); 0 scores the image
            without the region.

    Raises:
        ValueError: The model is not of that kind, or a bad option.
    """

    def __init__(
        self,
        model: CoreModel,
        *,
        region_sizes: Sequence[int] = DEFAULT_REGION_SIZES,
        reading: str = DEFAULT_READING,
        region_weight: float = DEFAULT_REGION_WEIGHT,
    ):
        if reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, not {reading!r}")
        encoder = model.image_encoder
        if not hasattr(encoder, "feature_maps") or not hasattr(model.head, "image_only"):
            raise UsageError(
                "core_model",
                "the core map needs an EfficientNet-Lite image encoder and a kernel ridge head "
                f"(the bundled model's kind); this model has {type(encoder).__name__} and {type(model.head).__name__}",
            )
        sizes = tuple(sorted({int(size) for size in region_sizes}, reverse=True))
        if not sizes or any(size < _GRID or size % _GRID for size in sizes):
            raise ValueError(f"region sizes must be positive multiples of {_GRID} px, got {tuple(region_sizes)}")
        if not 0.0 <= region_weight <= 1.0:
            raise ValueError(f"region_weight must be in [0, 1], got {region_weight}")
        self.model = model
        self.region_sizes = sizes
        self.region_weight = float(region_weight)
        self.reading = reading

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """The encoder input for an image: scaled to fit the model's input, aspect kept, sides multiples of 32."""
        target_height, target_width = self.model.image_encoder.config.input_shape
        scale = min(target_height / height, target_width / width)
        return (max(_GRID, round(height * scale / _GRID) * _GRID), max(_GRID, round(width * scale / _GRID) * _GRID))

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> CoreRegionMaps:
        """Raw region realness of one ``3 x H x W`` image in [0, 1] (on the model's device)."""
        maps, shape = self.feature_maps(image)
        return self.read(maps, shape, tuple(image.shape[-2:]))

    @torch.inference_mode()
    def feature_maps(self, image: torch.Tensor) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """The encoder's feature maps of one image (one forward pass), and the input shape they come from."""
        config = self.model.image_encoder.config
        shape = self.input_shape(*image.shape[-2:])
        pixels = normalize(resize_image(image, shape, resize="squash", interpolation=config.interpolation), config.mean, config.std)
        device = next(self.model.head.buffers()).device
        return self.model.image_encoder.feature_maps(pixels.unsqueeze(0).to(device)), shape

    @torch.inference_mode()
    def feature_maps_of(self, images: Sequence[torch.Tensor], batch_size: int = 8) -> list[tuple[list[torch.Tensor], tuple[int, int]]]:
        """:meth:`feature_maps` of several images, those of one input shape through the encoder together."""
        config = self.model.image_encoder.config
        device = next(self.model.head.buffers()).device
        shapes = [self.input_shape(*image.shape[-2:]) for image in images]
        found: list[Any] = [None] * len(images)
        for shape in dict.fromkeys(shapes):
            same = [i for i, other in enumerate(shapes) if other == shape]
            for start in range(0, len(same), batch_size):
                chunk = same[start : start + batch_size]
                pixels = torch.stack([
                    normalize(resize_image(images[i], shape, resize="squash", interpolation=config.interpolation), config.mean, config.std)
                    for i in chunk
                ])
                maps = self.model.image_encoder.feature_maps(pixels.to(device))
                for row, index in enumerate(chunk):
                    found[index] = ([feature[row : row + 1] for feature in maps], shape)
        return found

    @torch.inference_mode()
    def read(self, maps: list[torch.Tensor], shape: tuple[int, int], size_out: tuple[int, int]) -> CoreRegionMaps:
        """Region realness from :meth:`feature_maps`' output, upsampled to ``size_out`` pixels."""
        per_scale = {}
        for size in [size for size in self.region_sizes if size <= min(shape)] or [min(shape)]:
            scores, tops, lefts = self.region_scores(maps, shape, size)
            per_scale[size] = overlap_average(scores, tops, lefts, size, *shape)
            if self.reading == "contrast_detail":  # two cues in the units of their own spread over the image
                detail = sum(robust_standardized(detail_surprise(maps, shape, size, kind)) for kind in ("magnitude", "spread"))
                per_scale[size] = robust_standardized(per_scale[size]) - detail / 2
        combined = torch.stack(list(per_scale.values())).mean(0)

        def upsample(raw: torch.Tensor) -> torch.Tensor:
            return F.interpolate(raw[None, None], size=size_out, mode="bilinear", align_corners=False)[0, 0]

        return CoreRegionMaps({size: upsample(raw) for size, raw in per_scale.items()}, upsample(combined))

    def region_scores(
        self, maps: list[torch.Tensor], shape: tuple[int, int], size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Realness of the ``size``-pixel regions on the 32-pixel grid: (rows x columns, tops, lefts)."""
        features, tops, lefts = self.region_features(maps, shape, size)
        if self.reading != "head":
            scores = -feature_contrast(features, self.model.head, skip=maps[0].shape[1])
        else:
            scores = self.model.head.image_only(features)
            if self.region_weight == 0:
                scores = -scores  # the image without a real region scores lower: its realness is what it removes
        return scores.view(len(tops), len(lefts)), tops, lefts

    def region_features(
        self, maps: list[torch.Tensor], shape: tuple[int, int], size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CORE image features of the ``size``-pixel regions on the 32-pixel grid: (N x D, tops, lefts).

        Each region's statistics are ``region_weight`` times its own plus the rest times those of
        the image without it, in the order the encoder pools them (head mean, then each stage's
        mean and standard deviation).
        """
        height = shape[0]
        a = self.region_weight
        features = []
        for index, feature in enumerate(maps):
            feature = feature.float()
            stride = height // feature.shape[-2]
            kernel, step = size // stride, _GRID // stride
            mixed_mean = F.avg_pool2d(feature, kernel, step)[0]  # C x rows x columns
            mixed_square = F.avg_pool2d(feature.square(), kernel, step)[0] if index > 0 else None
            if a < 1:  # mix in the image without the region (from the whole image's sums)
                inside, outside = kernel * kernel, max(feature.shape[-2] * feature.shape[-1] - kernel * kernel, 1)
                rest_mean = (feature[0].sum((1, 2))[:, None, None] - mixed_mean * inside) / outside
                mixed_mean = a * mixed_mean + (1 - a) * rest_mean
                if mixed_square is not None:
                    rest_square = (feature[0].square().sum((1, 2))[:, None, None] - mixed_square * inside) / outside
                    mixed_square = a * mixed_square + (1 - a) * rest_square
            features.append(mixed_mean)
            if mixed_square is not None:  # stages add their standard deviation; the head (first) only its mean
                features.append((mixed_square - mixed_mean.square()).clamp_min(0).sqrt())
        stacked = torch.cat(features, dim=0)  # D x rows x columns
        rows, columns = stacked.shape[1:]
        device = stacked.device
        tops = torch.arange(rows, device=device) * _GRID
        lefts = torch.arange(columns, device=device) * _GRID
        return stacked.flatten(1).T, tops, lefts


def feature_contrast(features: torch.Tensor, head: Any, *, skip: int = 0, self_scaled: bool = True) -> torch.Tensor:
    """How far each region's features (``N x D``) stand out from the image's median region.

    Args:
        features: One row per region of one image, in the encoder's feature order.
        head: The kernel ridge head whose training statistics standardize the features.
        skip: Leading features left out (the pooled head's channels: the stages' statistics
            carry blur, noise and texture, which a region changes).
        self_scaled: Measure each feature in units of its spread (MAD) over this image's
            regions, so a feature that barely varies across the image counts when one region
            departs from it.

    Returns:
        ``N`` root-mean-square deviations (0 = the typical region).
    """
    z = ((features - head.image_mean) / head.image_std)[:, skip:]
    deviation = z - z.median(0).values
    if self_scaled:
        deviation = deviation / (deviation.abs().median(0).values * 1.4826 + _SPREAD_FLOOR)
    return deviation.square().mean(1).sqrt()


def stage_activity(maps: list[torch.Tensor], shape: tuple[int, int], size: int, kind: str) -> torch.Tensor:
    """Log activity of each stage around each point of a ``size / 2``-pixel grid: ``stages x rows x columns``.

    ``kind`` ``magnitude``: the mean absolute activation over a ``size``-pixel window;
    ``spread``: its standard deviation over the window (both averaged over the stage's channels).
    """
    step = max(size // 2, 1)
    grid = (max(shape[0] // step, 1), max(shape[1] // step, 1))
    activity = []
    for feature in maps[1:]:  # the stages (the head's map comes first)
        feature = feature.float()
        stride = shape[0] // feature.shape[-2]
        kernel = max(1, size // stride)
        box = {"kernel_size": kernel, "stride": max(1, step // stride), "padding": kernel // 2, "count_include_pad": False}
        if kind == "spread" and kernel > 1:
            mean = F.avg_pool2d(feature, **box)
            level = (F.avg_pool2d(feature.square(), **box) - mean.square()).clamp_min(0).sqrt()
        else:  # a window of one feature cell has no spread: its magnitude stands in
            level = F.avg_pool2d(feature.abs(), **box)
        activity.append(F.interpolate(level.mean(1, keepdim=True), size=grid, mode="bilinear", align_corners=False)[0, 0])
    return torch.log(torch.stack(activity) + 1e-4)


def detail_surprise(maps: list[torch.Tensor], shape: tuple[int, int], size: int, kind: str) -> torch.Tensor:
    """How far the fine stages' activity departs from what the coarse stages predict, per pixel (``H x W``).

    Blur takes fine detail away and noise adds it while the coarse stages still see the same
    content, so across one image's regions the fine activity follows the coarse one except
    where a region was altered. A least-squares fit over the image's own regions predicts the
    log activity of the first stages from that of the later ones; the residuals, in units of
    their spread (MAD) over the image, give the surprise: for ``magnitude`` the absolute value of
    their mean over the fine stages, for ``spread`` their root mean square.
    """
    activity = stage_activity(maps, shape, size, kind)
    rows, columns = activity.shape[1:]
    fine = activity[list(_FINE_STAGES)].flatten(1).T
    coarse = activity[len(_FINE_STAGES) :].flatten(1).T
    coarse = torch.cat([coarse, torch.ones(len(coarse), 1, device=coarse.device)], 1)
    ridge = 1e-2 * torch.eye(coarse.shape[1], device=coarse.device)
    residual = fine - coarse @ torch.linalg.solve(coarse.T @ coarse + ridge, coarse.T @ fine)
    residual = residual - residual.median(0).values
    residual = residual / (residual.abs().median(0).values * 1.4826 + 1e-3)
    surprise = residual.mean(1).abs() if kind == "magnitude" else residual.square().mean(1).sqrt()
    return F.interpolate(surprise.view(1, 1, rows, columns), size=shape, mode="bilinear", align_corners=False)[0, 0]


def robust_standardized(values: torch.Tensor) -> torch.Tensor:
    """``values`` less their median, in units of their spread (MAD), so cues of different scales can be added."""
    centre = values.median()
    return (values - centre) / ((values - centre).abs().median() * 1.4826 + 1e-6)


def normalized_map(maps: CoreRegionMaps) -> torch.Tensor:
    """The combined raw map min-max normalized to [0, 1] (a constant map is all ones)."""
    return combine_scales([maps.combined])


@register_map_method
class CoreMapper(MapMethod):
    """``RealnessMapper(method="core")``: maps of one image or a batch from a CORE model, no text needed.

    Args:
        model: A loaded :class:`CoreModel` or a name for :meth:`CoreModel.from_pretrained`
            (default: the bundled ``realness-core-lite``).
        device: Where to run (default: CUDA when available).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``: the encoder pass runs under its autocast.
        describer: Writes the descriptions the maps record for images given none (object or name).
        region_sizes: See :class:`CoreRegionReader`.
        reading: See :class:`CoreRegionReader`.
        region_weight: See :class:`CoreRegionReader`.
    """

    name = "core"
    needs_descriptions = False
    # Several images through the encoder together: what the CLI hands one call.
    images_per_pass = 8

    def __init__(
        self,
        model: CoreModel | str | os.PathLike = DEFAULT_MODEL,
        *,
        device: DeviceLike = None,
        precision: str = "auto",
        describer: Any = None,
        region_sizes: Sequence[int] = DEFAULT_REGION_SIZES,
        reading: str = DEFAULT_READING,
        region_weight: float = DEFAULT_REGION_WEIGHT,
    ):
        self.precision = check_precision(precision)
        self.device = resolve_device(device)
        self.describer = as_describer(describer)
        self.model_name = str(model) if isinstance(model, (str, os.PathLike)) else "a CoreModel"
        if isinstance(model, (str, os.PathLike)):
            model = CoreModel.from_pretrained(model)
        self.reader = CoreRegionReader(
            model.to(self.device).eval(), region_sizes=region_sizes, reading=reading, region_weight=region_weight
        )

    @classmethod
    def from_mapper_arguments(cls, *, core_model: Any = None, device: DeviceLike = None, precision: str = "auto",
                              describer: Any = None, **_: Any) -> CoreMapper:
        """The core map of ``RealnessMapper(method="core", core_model=..., ...)``."""
        return cls(core_model or DEFAULT_MODEL, device=device, precision=precision, describer=describer)

    def __call__(
        self, images: Any, descriptions: DescriptionsLike = None, *, on_error: str = "raise", progress: bool | None = None
    ) -> RealnessMap | RealnessMapBatch:
        """Map one image or a batch (any form ``load_images`` accepts); descriptions are recorded, not needed.

        ``descriptions`` is read as everywhere (:func:`~realness.describers.descriptions.resolve_descriptions`);
        ``progress`` is accepted for the :class:`MapMethod` call and unused (one encoder pass per few images).

        Raises:
            InvalidImageError: A bad image (``on_error="raise"``, or a single image).
            DescriptionsError: ``descriptions`` not one per image (one string for several images included).
        """
        check_on_error(on_error)
        items, _ = split_batch(images)
        resolved = resolve_descriptions(descriptions, items, describer=self.describer)
        if resolved.match is not None:
            resolved.match.warn()
        texts = resolved.texts
        batch = load_tensor_batch(images, on_error=on_error)
        if batch is None:
            batch = load_images(images, on_error=on_error, min_size=self.reader.model.image_encoder.config.min_size)
        bad = {i for i, image in enumerate(batch.tensors) if image is None}
        for failure in fill_missing(resolved.describer, items, batch.names, texts, on_error=on_error, skip=bad):
            batch.skipped.append(failure)
            batch.tensors[failure.index] = None
        wanted = [i for i, image in enumerate(batch.tensors) if image is not None]
        with autocast(self.precision, self.device):
            found = self.reader.feature_maps_of([batch.tensors[i].float() for i in wanted])
        encoded = {i: ([feature.float() for feature in maps], shape) for i, (maps, shape) in zip(wanted, found)}
        maps: list[RealnessMap | None] = []
        for index, image in enumerate(batch.tensors):
            if image is None:
                maps.append(None)
                continue
            region_maps = self.reader.read(*encoded[index], tuple(image.shape[-2:]))
            maps.append(
                RealnessMap(
                    map=normalized_map(region_maps).cpu().numpy(),
                    per_scale={size: scale.cpu().numpy() for size, scale in region_maps.per_scale.items()},
                    raw=region_maps.combined.cpu().numpy(),
                    description=texts[index] or "",
                    name=batch.names[index],
                    image=image,
                    stride=_GRID,
                    method=self.name,
                    model=self.model_name,
                )
            )
        if batch.single:
            if maps[0] is None:
                reason = batch.skipped[0].reason if batch.skipped else "not mapped"
                raise InvalidImageError(batch.names[0], reason)
            return maps[0]
        return RealnessMapBatch(maps=maps, names=batch.names, skipped=sorted(batch.skipped, key=lambda item: item.index))


__all__ = ["READINGS", "CoreMapper", "CoreRegionReader", "DEFAULT_READING", "DEFAULT_REGION_SIZES", "DEFAULT_REGION_WEIGHT", "feature_contrast"]
