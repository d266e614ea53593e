"""Typed configuration of a CORE model: which encoders, how they see their input, the head.

The configuration is saved as ``config.json`` beside ``model.safetensors`` and is
enough to rebuild the model; the preprocessing that decides a score (input size,
resize, normalization) is spelled out here rather than left to a library default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Resize = Literal["squash", "pad", "center_crop"]
Pooling = Literal["mean", "cls", "pooler"]
Trainable = Literal["frozen", "last", "all"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on inputs scaled to about [-1, 1]: (x*255 - 127) / 128.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass
class ImageEncoderConfig:
    """An image encoder and the exact preprocessing it is fed with.

    Attributes:
        family: adapter name in the image-encoder registry (``efficientnet_lite``, ``transformers``).
        name: model name: a Hub id, ``hf-hub:org/name``, a local directory, or a family-specific
            name such as ``efficientnet-lite0``.
        input_size: the input the encoder sees, in pixels: one side of a square, or
            ``[height, width]``.
        resize: ``squash`` resizes the whole image to ``input_size`` (keeps every pixel in
            view, may change the aspect ratio); ``pad`` scales the image to fit ``input_size``
            with its aspect ratio kept and fills the rest with mid-grey; ``center_crop`` resizes
            the short side and crops (square sizes only).
        interpolation: ``torch.nn.functional.interpolate`` mode; antialiasing is always on.
        mean: per-channel mean subtracted from [0, 1] RGB.
        std: per-channel standard deviation divided out after the mean.
        min_size: smallest short side (pixels) accepted; smaller images are rejected as too small.
        feature_levels: stages (0 = the first) whose per-channel mean and standard deviation
            are appended to the pooled head features (``efficientnet_lite`` only).
        trainable: ``frozen``, ``last`` (last stage only) or ``all``; only used in training.
        revision: Hub revision for ``name`` when it is a Hub id.
        scene_statistics: append the image's natural-scene statistics
            (:mod:`realness.core.scene_statistics`) to its features (``efficientnet_lite`` only).
    """

    family: str
    name: str
    input_size: int | tuple[int, int] = 224
    resize: Resize = "squash"
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    min_size: int = 32
    feature_levels: tuple[int, ...] = ()
    trainable: Trainable = "frozen"
    revision: str | None = None
    scene_statistics: bool = False

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the encoder's input."""
        if isinstance(self.input_size, int):
            return (self.input_size, self.input_size)
        height, width = self.input_size
        return (int(height), int(width))


@dataclass
class TextEncoderConfig:
    """A text encoder and how its token states become one vector.

    Attributes:
        family: adapter name in the text-encoder registry (``transformers``).
        name: a Hub id, ``hf-hub:org/name`` or a local directory.
        pooling: ``mean`` over tokens (sentence-transformers style), ``cls`` token, or the
            model's ``pooler`` output.
        normalize: L2-normalize the pooled vector.
        max_length: longest tokenized description; longer ones are truncated.
        trainable: ``frozen``, ``last`` (last layer only) or ``all``; only used in training.
        revision: Hub revision for ``name`` when it is a Hub id.
    """

    family: str
    name: str
    pooling: Pooling = "mean"
    normalize: bool = False
    max_length: int = 128
    trainable: Trainable = "frozen"
    revision: str | None = None


@dataclass
class CoreConfig:
    """Everything that defines a CORE model.

    Attributes:
        image_encoder: the image encoder and its preprocessing.
        text_encoder: the text encoder and its pooling.
        hidden_dim: width of the fusion MLP's hidden layer (the paper uses 529).
        head: ``mlp`` (the paper's FC head) or ``kernel_ridge`` (RBF kernel ridge regression
            over the training features, the bundled model's head; see ``KernelRidgeHead``).
        kernel_support: number of stored training rows of a ``kernel_ridge`` head (set by training).
        dropout: dropout before the output layer (training only).
        image_dim: image feature size; filled in when the encoders are built.
        text_dim: text feature size; filled in when the encoders are built.
        score_units: what one unit of the output means.
        includes_encoder_weights: encoders were fine-tuned and their weights are saved too.
        modalities: ``both`` (the paper's CORE), or ``image`` / ``text`` alone (ablations).
        verdict_input: append the description's verdict (yes / somewhat / no, one-hot, see
            :func:`realness.text.verdict.verdict_features`) to the pooled text features, so the head
            reads it explicitly instead of inferring it from the sentence embedding.
        extra: free-form facts about the trained model (training data, measured accuracy).
    """

    image_encoder: ImageEncoderConfig
    text_encoder: TextEncoderConfig
    hidden_dim: int = 529
    head: Literal["mlp", "kernel_ridge"] = "mlp"
    kernel_support: int | None = None
    dropout: float = 0.1
    image_dim: int | None = None
    text_dim: int | None = None
    score_units: str = "RAISE-TD MOS z-score (higher = more real)"
    includes_encoder_weights: bool = False
    modalities: Literal["both", "image", "text"] = "both"
    verdict_input: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def lite(cls) -> CoreConfig:
        """EfficientNet-Lite0 at 384x512 + all-MiniLM-L6-v2, kernel ridge head: real weights, fully offline.

        The recipe of the bundled model, chosen by 5-fold cross-validation on RAISE-TD's
        training split (``benchmarks/results/recipe_cv.md``): the image encoder sees RAISE's
        native 512x384 pixels (realness lives in fine detail) and adds the mean and standard
        deviation of each of its seven stages (sharpness and noise early, texture and parts
        later) to the pooled head;
        a kernel ridge head beat the MLP head on 510 rated images; the head reads the
        description's verdict explicitly (``verdict_input``). Images of another shape than 4:3
        are padded with mid-grey, not squashed (``resize="pad"``: it ranked square and 16:9
        crops of held-out images best).
        """
        return cls(
            image_encoder=ImageEncoderConfig(
                family="efficientnet_lite", name="efficientnet-lite0", input_size=(384, 512), resize="pad",
                mean=LITE_MEAN, std=LITE_STD, feature_levels=(0, 1, 2, 3, 4, 5, 6), scene_statistics=True,
            ),
            text_encoder=TextEncoderConfig(
                family="transformers",
                name="sentence-transformers/all-MiniLM-L6-v2",
                pooling="mean",
                normalize=True,
            ),
            head="kernel_ridge",
            verdict_input=True,
        )

    @classmethod
    def paper(cls) -> CoreConfig:
        """The paper's CORE: ImageNet ResNet-50 (2048-d) + BERT-base-uncased (768-d, CLS token)."""
        return cls(
            image_encoder=ImageEncoderConfig(family="transformers", name="microsoft/resnet-50"),
            text_encoder=TextEncoderConfig(
                family="transformers", name="google-bert/bert-base-uncased", pooling="cls"
            ),
        )

    @classmethod
    def preset(cls, name: str) -> CoreConfig:
        """A named configuration: ``lite`` or ``paper``."""
        presets = {"lite": cls.lite, "paper": cls.paper}
        if name not in presets:
            raise ValueError(f"unknown CORE configuration {name!r}; choose one of {sorted(presets)}")
        return presets[name]()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary (the content of ``config.json``)."""
        return {"model_type": "realness-core", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoreConfig:
        """Rebuild a configuration from :meth:`to_dict`'s output; unknown keys are an error."""
        data = {k: v for k, v in data.items() if k != "model_type"}
        image = ImageEncoderConfig(**_tuples(data.pop("image_encoder")))
        text = TextEncoderConfig(**data.pop("text_encoder"))
        return cls(image_encoder=image, text_encoder=text, **data)


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
