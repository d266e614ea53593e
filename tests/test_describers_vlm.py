"""TransformersDescriber end to end on a tiny random LLaVA (CLIP vision tower + Llama) built in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from realness.describers import DEFAULT_PROMPT, TransformersDescriber, build_describer
from realness.errors import UsageError

WORDS = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "user", "assistant", ":"] + (
    "yes no somewhat is there anything unrealistic in this image the face hand looks distorted , . ?"
).split()
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }} : "
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image> "
    "{% else %}{{ part['text'] }} {% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def save_tiny_llava(directory: Path) -> Path:
    """A randomly initialised LLaVA with a word-level tokenizer and a chat template, saved as safetensors."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=word_level, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    text = LlamaConfig(
        vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, bos_token_id=2, eos_token_id=3,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=WORDS.index("<image>"),
        vision_feature_layer=-1, vision_feature_select_strategy="full", image_seq_length=17,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, patch_size=8,
        vision_feature_select_strategy="full", num_additional_image_tokens=1,
    )
    processor.save_pretrained(directory)
    assert (directory / "model.safetensors").is_file()
    return directory


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def test_tiny_vlm_describes_a_batch_like_one_at_a_time(tiny_vlm_dir):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=size, dtype=np.uint8) for size in [(40, 50, 3), (64, 30, 3), (33, 33, 3)]]
    batched = TransformersDescriber(str(tiny_vlm_dir), device="cpu", batch_size=3, max_new_tokens=6)
    one_by_one = TransformersDescriber(str(tiny_vlm_dir), device="cpu", batch_size=1, max_new_tokens=6)

    descriptions = batched.describe(images)
    singles = one_by_one.describe(images)

    assert [d.text for d in descriptions] == [d.text for d in singles]  # left padding is right
    assert all(d.ok and d.text for d in descriptions)
    assert all(word in WORDS for d in descriptions for word in d.text.split())
    assert all(d.model == str(tiny_vlm_dir) and d.prompt_id == DEFAULT_PROMPT.id for d in descriptions)
    assert all(1 <= d.completion_tokens <= 6 and d.prompt_tokens > 17 for d in descriptions)


def test_tiny_vlm_uses_the_chat_template_the_image_and_greedy_decoding(tiny_vlm_dir):
    from PIL import Image

    describer = TransformersDescriber(str(tiny_vlm_dir), device="cpu", max_new_tokens=5)
    image = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    [description] = describer.describe(image)

    # Recompute by hand: the template, the processor, greedy generate, decode.
    processor, network = describer.processor, describer.network
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": DEFAULT_PROMPT.text}]}]
    prompt = processor.apply_chat_template([conversation], add_generation_prompt=True, tokenize=False)[0]
    assert prompt.startswith("user : <image> Is there anything unrealistic") and prompt.endswith("assistant : ")
    inputs = processor(text=[prompt], images=[[Image.fromarray(image)]], return_tensors="pt")
    with torch.inference_mode():
        logits = network(**inputs).logits[0, -1]
    first_word = processor.tokenizer.convert_ids_to_tokens(int(logits.argmax()))
    assert description.text.split()[0] == first_word
    assert describer.describe(image)[0].text == description.text  # greedy: the same every time

    other = np.zeros_like(image)
    inputs_other = processor(text=[prompt], images=[[Image.fromarray(other)]], return_tensors="pt")
    assert not torch.equal(inputs["pixel_values"], inputs_other["pixel_values"])


def test_build_describer_vlm_name(tiny_vlm_dir, tmp_path):
    describer = build_describer(f"vlm:{tiny_vlm_dir}", cache=tmp_path / "c.sqlite3", device="cpu",
                                max_new_tokens=3)
    image = np.full((20, 20, 3), 200, dtype=np.uint8)
    first = describer.describe(image)
    second = describer.describe(image)
    assert first[0].text == second[0].text and second[0].cached and not first[0].cached


def test_precision_sets_the_weights_type(tiny_vlm_dir):
    half = TransformersDescriber(str(tiny_vlm_dir), device="cpu", precision="bf16", max_new_tokens=2)
    assert next(half.network.parameters()).dtype == torch.bfloat16 and half.precision == "bf16"
    assert next(TransformersDescriber(str(tiny_vlm_dir), device="cpu").network.parameters()).dtype == torch.float32
    with pytest.raises(UsageError, match="precision='fp8'"):
        TransformersDescriber(str(tiny_vlm_dir), device="cpu", precision="fp8")
