"""Descriptions from a local vision-language model through transformers.

Any checkpoint that ``AutoProcessor`` and ``AutoModelForImageTextToText`` load and whose
processor has a chat template works (Qwen2.5-VL, SmolVLM / Idefics3, LLaVA, Gemma 3, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from realness.describers.base import DEFAULT_PROMPT, BaseDescriber, Description, Prompt, to_pil_image
from realness.runtime.device import check_batch_size, check_precision, compute_dtype, resolve_device
from realness.runtime.imports import transformers_import_guard

logger = logging.getLogger(__name__)

#: A small instruct VLM that reads images at native resolution and follows an answer format;
#: about 7.5 GB in bfloat16, so it runs on one consumer GPU (or slowly on a CPU).
DEFAULT_VLM = "Qwen/Qwen2.5-VL-3B-Instruct"


class TransformersDescriber(BaseDescriber):
    """Describe images with a local VLM: chat template, batched greedy generation.

    Weights load with safetensors only (no pickled checkpoints). The first use of a Hub
    model id downloads it into the Hugging Face cache; a local directory works offline.

    Args:
        model: A Hub model id or a local directory; default :data:`DEFAULT_VLM`.
        prompt: The question asked about each image.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        precision: The weights' type: ``auto`` (bf16 on CUDA where supported, else fp16;
            fp32 on a CPU), ``fp32``, ``bf16`` or ``fp16``.
        batch_size: Images per ``generate`` call.
        max_new_tokens: Most tokens per answer (30 words fit in about 60).
        revision: A Hub revision to pin.

    Raises:
        OSError: The model cannot be found or loaded.
    """

    def __init__(
        self,
        model: str = DEFAULT_VLM,
        *,
        prompt: Prompt = DEFAULT_PROMPT,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 4,
        max_new_tokens: int = 80,
        revision: str | None = None,
    ):
        super().__init__(str(model), prompt)
        # local: transformers is heavy (about a second), and its VLM classes import under the guard below
        from transformers import AutoModelForImageTextToText, AutoProcessor

        check_batch_size(batch_size)
        self.device = resolve_device(device)
        self.precision = check_precision(precision)
        self.dtype = compute_dtype(precision, self.device)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        # Image processors and VLM classes import torchvision when it is installed.
        with transformers_import_guard(f"the VLM {model}"):
            self.processor = AutoProcessor.from_pretrained(str(model), revision=revision)
            network = AutoModelForImageTextToText.from_pretrained(
                str(model), revision=revision, dtype=self.dtype, use_safetensors=True
            )
        # Decoder-only generation continues from the last position: pad on the left.
        self.processor.tokenizer.padding_side = "left"
        self.network = network.to(self.device)
        self.network.eval()

    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Describe decoded images, ``batch_size`` at a time.

        A batch that fails is retried image by image, so one image the processor cannot
        take fails alone.

        Args:
            images: Decoded images (3×H×W float tensors in [0, 1]).
            names: A readable name per image.

        Returns:
            One description per image, in order.
        """
        results: list[Description] = []
        for start in range(0, len(images), self.batch_size):
            batch = [to_pil_image(image) for image in images[start : start + self.batch_size]]
            batch_names = list(names[start : start + self.batch_size])
            try:
                results.extend(self._describe_batch(batch, batch_names))
            except (ValueError, RuntimeError) as error:
                if len(batch) == 1:
                    results.append(self._failed(batch_names[0], f"generation failed: {error}"))
                    continue
                logger.info("batch of %d failed (%s); retrying image by image", len(batch), error)
                for picture, name in zip(batch, batch_names):
                    try:
                        results.extend(self._describe_batch([picture], [name]))
                    except (ValueError, RuntimeError) as single_error:
                        results.append(self._failed(name, f"generation failed: {single_error}"))
        return results

    def _failed(self, name: str, reason: str) -> Description:
        return Description.failure(name, reason, self.model, self.prompt.id)

    def _describe_batch(self, pictures: list, names: list[str]) -> list[Description]:
        conversations = [
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt.text}]}]
            for _ in pictures
        ]
        prompts = self.processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(
            text=prompts, images=[[picture] for picture in pictures], padding=True, return_tensors="pt"
        ).to(self.device)
        pad_token_id = self.processor.tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = self.processor.tokenizer.eos_token_id
        with torch.inference_mode():
            generated = self.network.generate(
                **inputs, do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=pad_token_id
            )
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        answer_lengths = (new_tokens != pad_token_id).sum(dim=1).tolist()
        results = []
        for name, text, prompt_length, answer_length in zip(names, texts, prompt_lengths, answer_lengths):
            text = text.strip()
            if not text:
                results.append(self._failed(name, "empty reply"))
            else:
                results.append(
                    Description.success(
                        name, text, self.model, self.prompt.id,
                        prompt_tokens=int(prompt_length), completion_tokens=int(answer_length),
                    )
                )
        return results
