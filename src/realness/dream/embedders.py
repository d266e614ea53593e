"""Dual encoders that put image windows and descriptions in one embedding space.

DREAM needs only two things from a model: an embedding per (preprocessed) window and one
per description. :class:`Embedder` states that; :class:`TransformersEmbedder` serves CLIP,
SigLIP and other transformers dual encoders with ``get_image_features`` /
``get_text_features``; :class:`OpenClipEmbedder` serves open_clip models (optional extra).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

from realness.errors import MissingDependencyError
from realness.hub import TRANSFORMERS_AUX_FILES, load_transformers_model, resolve_model_dir
from realness.registry import Registry, RegistryEntry
from realness.runtime.imports import transformers_import_guard

#: The model the paper uses, and the default.
DEFAULT_EMBEDDER = "openai/clip-vit-base-patch32"

# The normalization every OpenAI CLIP checkpoint was trained with.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_Wrapping = TypeVar("_Wrapping", bound="_ModelEmbedder")


@runtime_checkable
class Embedder(Protocol):
    """What DREAM needs from a dual encoder.

    Attributes:
        input_size: Side in pixels of the square images ``embed_images`` takes.
        mean: Per-channel mean subtracted from [0, 1] pixels before ``embed_images``.
        std: Per-channel standard deviation the pixels are divided by.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``N x 3 x input_size x input_size`` normalized pixels -> ``N x D`` embeddings."""

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """N strings -> ``N x D`` embeddings, on the embedder's device."""

    def to(self, device: torch.device | str) -> Embedder:
        """Move to ``device``; return self."""


class _ModelEmbedder:
    """What the embedders that wrap one torch model (``self.model``) share: where it is, and moving it."""

    model: torch.nn.Module

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def to(self: _Wrapping, device: torch.device | str) -> _Wrapping:
        """Move the model to ``device``; return self."""
        self.model.to(device)
        return self


class TransformersEmbedder(_ModelEmbedder):
    """A transformers dual encoder (CLIP, SigLIP, ...) through ``get_image/text_features``.

    Args:
        model: A transformers model with ``get_image_features`` and ``get_text_features``.
        tokenizer: Its tokenizer.
        input_size: Image side the vision tower takes (default: ``vision_config.image_size``).
        mean: Pixel normalization mean (default: the preprocessor's, else CLIP's).
        std: Pixel normalization std (default: the preprocessor's, else CLIP's).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        input_size: int | None = None,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        config = model.config
        self.input_size = int(input_size or config.vision_config.image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.max_text_tokens = int(config.text_config.max_position_embeddings)
        # SigLIP was trained on texts padded to the full context; CLIP on unpadded ones.
        self.pad_to_max = str(getattr(config, "model_type", "")).startswith("siglip")

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None
    ) -> TransformersEmbedder:
        """Load a dual encoder by Hub name or from a local directory (safetensors weights only).

        Args:
            name_or_dir: ``"openai/clip-vit-base-patch32"``, ``"hf-hub:org/name"`` or a directory
                with ``config.json``, ``model.safetensors`` and tokenizer files.
            revision: Hub revision (default: the pinned one, else ``main``).
            cache_dir: Hub cache folder (default: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``).

        Returns:
            The embedder, on CPU.

        Raises:
            WeightsNotFoundError: The weights are neither local, installed, cached nor downloadable.
            BrokenDependencyError: transformers cannot import CLIP because torchvision is broken.
        """
        # The files first: a model that is not available fails before transformers' long import.
        directory = resolve_model_dir(
            name_or_dir,
            files=("config.json", "model.safetensors"),
            optional_files=TRANSFORMERS_AUX_FILES,
            revision=revision,
            cache_dir=cache_dir,
        )
        from transformers import AutoTokenizer  # local: heavy (seconds), needed only to build the model

        with transformers_import_guard(f"the CLIP model in {directory}"):
            model = load_transformers_model(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        preprocessor = directory / "preprocessor_config.json"
        settings = json.loads(preprocessor.read_text()) if preprocessor.is_file() else {}
        return cls(
            model,
            tokenizer,
            input_size=_processor_size(settings),
            mean=settings.get("image_mean", CLIP_MEAN),
            std=settings.get("image_std", CLIP_STD),
        )

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image-tower embeddings (after the projection) of normalized pixels."""
        return _pooled(self.model.get_image_features(pixel_values=pixels))

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Text-tower embeddings; texts longer than the context are truncated with a warning."""
        texts = list(texts)
        lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        for text, length in zip(texts, lengths):
            if length > self.max_text_tokens:
                warnings.warn(
                    f"description truncated to the text tower's {self.max_text_tokens} tokens "
                    f"(it has {length}): {text[:60]!r}...",
                    stacklevel=3,
                )
        tokens = self.tokenizer(
            texts,
            padding="max_length" if self.pad_to_max else True,
            truncation=True,
            max_length=self.max_text_tokens,
            return_tensors="pt",
        ).to(self.device)
        arguments = {"input_ids": tokens["input_ids"]}
        if "attention_mask" in tokens and not self.pad_to_max:
            arguments["attention_mask"] = tokens["attention_mask"]
        return _pooled(self.model.get_text_features(**arguments))


class OpenClipEmbedder(_ModelEmbedder):
    """An open_clip model (``pip install 'realness[open-clip]'``).

    Args:
        architecture: open_clip model name, e.g. ``"ViT-B-32"``, or ``"hf-hub:org/name"``.
        pretrained: open_clip pretrained tag (e.g. ``"laion2b_s34b_b79k"``) or None.

    Raises:
        MissingDependencyError: open_clip_torch is not installed.
    """

    def __init__(self, architecture: str, pretrained: str | None = None):
        try:
            import open_clip  # optional: the open-clip extra
        except ImportError as error:
            raise MissingDependencyError("open_clip_torch", "open-clip", "open_clip DREAM embedders") from error
        model, _, _ = open_clip.create_model_and_transforms(architecture, pretrained=pretrained)
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(architecture)
        size = model.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = tuple(getattr(model.visual, "image_mean", None) or CLIP_MEAN)
        self.std = tuple(getattr(model.visual, "image_std", None) or CLIP_STD)
        self.max_text_tokens = int(getattr(self.tokenizer, "context_length", 77))

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image-tower embeddings of normalized pixels."""
        return self.model.encode_image(pixels)

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Text-tower embeddings (open_clip's tokenizer truncates to the context)."""
        texts = list(texts)
        for text in texts:
            # A cheap upper bound before tokenizing: one BPE token per word at least.
            if len(text.split()) + 2 > self.max_text_tokens:
                warnings.warn(f"description truncated to {self.max_text_tokens} tokens: {text[:60]!r}...", stacklevel=3)
        return self.model.encode_text(self.tokenizer(texts).to(self.device))


def _build_open_clip(argument: str, **_: object) -> Embedder:
    architecture, _, pretrained = argument.partition(":")
    return OpenClipEmbedder(architecture, pretrained or None)


def _build_from_hub(argument: str, *, revision: str | None = None, cache_dir: str | Path | None = None) -> Embedder:
    return TransformersEmbedder.from_pretrained(f"hf-hub:{argument}", revision=revision, cache_dir=cache_dir)


#: DREAM embedder names, in the grammar every pluggable thing shares (:mod:`realness.registry`).
#: A local directory or a bare ``ORG/REPO`` is a transformers CLIP.
EMBEDDERS = Registry("DREAM embedder")
EMBEDDERS.register(
    RegistryEntry(
        "open_clip", _build_open_clip, ("open_clip:ARCH", "open_clip:ARCH:TAG"),
        "an open_clip model (pip install 'realness[open-clip]')", needs_argument=True,
    )
)
EMBEDDERS.register(
    RegistryEntry(
        "hf-hub", _build_from_hub, ("hf-hub:ORG/REPO[@REVISION]",), "a transformers CLIP on the Hub", needs_argument=True
    )
)


def list_embedders() -> list[str]:
    """The DREAM embedder names :func:`build_embedder` accepts, besides a directory or ``ORG/REPO``.

    Returns:
        e.g. ``["open_clip:ARCH", "open_clip:ARCH:TAG", "hf-hub:ORG/REPO[@REVISION]"]``.
    """
    return EMBEDDERS.forms()


def build_embedder(
    model: str | Path | Embedder = DEFAULT_EMBEDDER, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> Embedder:
    """The embedder a name, directory or object designates.

    Args:
        model: An :class:`Embedder` (returned as is); a name from :func:`list_embedders`
            (``"open_clip:ARCH[:TAG]"``, ``"hf-hub:org/name"``); otherwise a transformers
            Hub name ``"org/name"`` or a local directory.
        revision: Hub revision for transformers models.
        cache_dir: Hub cache folder for transformers models.

    Returns:
        The embedder, on CPU.

    Raises:
        WeightsNotFoundError: Transformers weights not available.
        MissingDependencyError: ``open_clip:`` named but open_clip_torch not installed.
    """
    if isinstance(model, Embedder):
        return model
    spec = str(model)
    if not Path(spec).exists() and EMBEDDERS.accepts(spec):
        return EMBEDDERS.build(spec, revision=revision, cache_dir=cache_dir)
    return TransformersEmbedder.from_pretrained(spec, revision=revision, cache_dir=cache_dir)


def _pooled(output: Any) -> torch.Tensor:
    # transformers 5 returns a ModelOutput whose pooler_output is the projected embedding;
    # transformers 4 returns the tensor itself.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _processor_size(settings: dict) -> int | None:
    for key in ("crop_size", "size"):
        value = settings.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, dict):
            side = value.get("height") or value.get("shortest_edge")
            if side:
                return int(side)
    return None
