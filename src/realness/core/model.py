"""CORE: image encoder + text encoder + head (MLP or kernel ridge), with save / load / push.

A saved model is a directory with ``config.json`` (a :class:`CoreConfig`) and
``model.safetensors`` (the head, plus encoder weights when they were fine-tuned).
Frozen pretrained encoders are not copied: they resolve from their own names.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from realness import hub
from realness.core.config import CoreConfig, ImageEncoderConfig, TextEncoderConfig
from realness.core.encoders import build_image_encoder, build_text_encoder
from realness.core.head import KernelRidgeHead, head_class
from realness.core.pretrained import CONFIG_NAME, WEIGHTS_NAME, resolve_core_dir
from realness.errors import RealnessError, UntrainedModelError
from realness.io.atomic import atomic_directory
from realness.runtime.imports import transformers_import_guard
from realness.text.verdict import VERDICTS, verdict_features


class CoreModel(nn.Module):
    """The CORE regressor: ``score = head(image_encoder(pixels), text_encoder(texts))``.

    Args:
        config: which encoders and head to build.
        pretrained_encoders: load the encoders' pretrained weights (``False`` builds them
            randomly initialized, e.g. when fine-tuned weights are loaded right after).
        encoders_from: reuse this model's (already loaded) encoders instead of building them;
            they must match ``config``'s encoders.
    """

    def __init__(self, config: CoreConfig, *, pretrained_encoders: bool = True, encoders_from: CoreModel | None = None):
        super().__init__()
        if encoders_from is not None:
            self.image_encoder, self.text_encoder = encoders_from.image_encoder, encoders_from.text_encoder
        else:
            self.image_encoder = build_image_encoder(config.image_encoder, pretrained=pretrained_encoders)
            self.text_encoder = build_text_encoder(config.text_encoder, pretrained=pretrained_encoders)
        config.image_dim = self.image_encoder.dim
        config.text_dim = self.text_encoder.dim + (len(VERDICTS) if config.verdict_input else 0)
        self.config = config
        self.reset_head()
        self.trained = False
        # Inference behaviour (BatchNorm running statistics, no dropout) unless a trainer says otherwise.
        self.eval()

    def reset_head(self) -> None:
        """A freshly initialized head of the configured kind (an MLP's draw comes from torch's global generator)."""
        self.head = head_class(self.config.head).from_config(self.config)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image features ``B x image_dim`` from preprocessed pixels ``B x 3 x S x S``."""
        return self.image_encoder(pixels)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Text features ``B x text_dim``; an empty string stands for "no description"."""
        pooled = self.text_encoder(texts)
        if not self.config.verdict_input:
            return pooled
        return torch.cat([pooled, verdict_features(texts).to(pooled)], dim=-1)

    def forward(self, pixels: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Realness scores (``B``) of preprocessed pixels and their descriptions ("" for none)."""
        image, text = self.encode_images(pixels), self.encode_texts(texts)
        return self.head(image, text, torch.tensor([bool(t) for t in texts], device=image.device))

    def predict(self, pixels: torch.Tensor, texts: Sequence[str], *, level: float = 0.9) -> torch.Tensor:
        """``B x 3``: each score and the low and high end of its ``level`` interval.

        The ends are NaN for a head without intervals (an MLP head, or a kernel head saved before
        they existed); see :meth:`KernelRidgeHead.calibrate`.
        """
        image, text = self.encode_images(pixels), self.encode_texts(texts)
        has_text = torch.tensor([bool(t) for t in texts], device=image.device)
        if isinstance(self.head, KernelRidgeHead):
            return self.head.predict(image, text, has_text, level=level)
        scores = self.head(image, text, has_text)
        missing = torch.full_like(scores, float("nan"))
        return torch.stack([scores, missing, missing], dim=1)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

        The folder is written whole, then renamed into place: an interrupted or failed save
        leaves the previous folder as it was (weights and config never from two different
        models). Other files already in ``directory`` are kept.
        """
        directory = Path(directory)
        state = {f"head.{k}": v for k, v in self.head.state_dict().items()}
        if self.config.includes_encoder_weights:
            for prefix in ("image_encoder", "text_encoder"):
                part = getattr(self, prefix)
                state.update({f"{prefix}.{k}": v for k, v in part.state_dict().items()})
        state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        weights = save(state, metadata={"format": "pt", "trained": str(self.trained).lower()})
        with atomic_directory(directory) as staging:
            (staging / WEIGHTS_NAME).write_bytes(weights)
            (staging / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        allow_untrained: bool = False,
    ) -> CoreModel:
        """Load a saved model: a bundled name, a local directory, or a Hub id (``org/name[@rev]``).

        Args:
            name_or_path: bundled model name (see :func:`realness.core.pretrained.list_models`),
                a directory written by :meth:`save_pretrained`, or a Hub repository id.
            revision: Hub revision (branch, tag or commit).
            cache_dir: Hub cache folder (default: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``).
            allow_untrained: accept weights saved before training (tests and debugging only).

        Raises:
            UntrainedModelError: the weights are an untrained head and ``allow_untrained`` is False.
            WeightsNotFoundError: the weights cannot be found offline and cannot be downloaded.
        """
        directory = resolve_core_dir(name_or_path, revision=revision, cache_dir=cache_dir)
        config = read_config(directory / CONFIG_NAME)
        weights_path = directory / WEIGHTS_NAME
        with transformers_import_guard(f"the encoders of {name_or_path}"):
            model = cls(config, pretrained_encoders=not config.includes_encoder_weights)
        state, metadata = read_weights(weights_path)
        trained = metadata.get("trained") == "true"
        if not trained and not allow_untrained:
            raise UntrainedModelError(
                f"{name_or_path}: {WEIGHTS_NAME} holds an untrained head; its scores would be noise. "
                "Train it first (realness train) or pass allow_untrained=True for tests."
            )
        missing, unexpected = model.load_state_dict(state, strict=False)
        expected_prefixes = ("head.",) + (("image_encoder.", "text_encoder.") if config.includes_encoder_weights else ())
        missing = [k for k in missing if k.startswith(expected_prefixes)]
        if missing or unexpected:
            raise RealnessError(f"{weights_path}: weights do not match config.json (missing {missing[:5]}, unexpected {unexpected[:5]})")
        model.trained = trained
        return model.eval()

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False, commit_message: str = "Upload realness CORE model") -> str:
        """Save to a temporary directory and upload it to the Hub repository ``repo_id``."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return hub.push_to_hub(tmp, repo_id, token=token, private=private, commit_message=commit_message)


def _read_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}

def read_config(path: Path) -> CoreConfig:
    """A saved model's ``config.json``; fields this version does not know are warned about and ignored.

    Raises:
        RealnessError: the file is unreadable, cut short or not a CORE configuration; the
            message names the file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RealnessError(
            f"{path}: not a readable config.json ({error}); the model directory is damaged: save or download it again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("image_encoder"), dict) or not isinstance(data.get("text_encoder"), dict):
        raise RealnessError(f"{path}: not a CORE model configuration (needs image_encoder and text_encoder objects)")
    unknown = []
    for section, kind in ((None, CoreConfig), ("image_encoder", ImageEncoderConfig), ("text_encoder", TextEncoderConfig)):
        fields = data if section is None else data[section]
        known = {f.name for f in dataclasses.fields(kind)} | ({"model_type"} if section is None else set())
        for name in [name for name in fields if name not in known]:
            unknown.append(name if section is None else f"{section}.{name}")
            del fields[name]
    if unknown:
        # A newer realness may add fields; this version scores without them rather than refusing.
        warnings.warn(f"{path}: ignoring fields this version of realness does not know: {', '.join(unknown)}", UserWarning, stacklevel=3)
    try:
        return CoreConfig.from_dict(data)
    except (TypeError, ValueError) as error:
        raise RealnessError(f"{path}: not a valid CORE model configuration ({error})") from None


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of ``model.safetensors``.

    Raises:
        RealnessError: the file is missing, truncated or corrupt; the message names it.
    """
    try:
        return load_file(str(path)), _read_metadata(path)
    except Exception as error:  # safetensors raises its own SafetensorError, OSError, or ValueError
        raise RealnessError(
            f"{path}: unreadable weights ({error}); the file is truncated or corrupt: save or download the model again"
        ) from None
