"""Fine-tune CORE's text encoder for a closed-form (kernel ridge) head.

A kernel ridge head has no gradient to give an encoder, so the text encoder is tuned on
its own first: its last layer (``trainable="last"``) or all of it (``"all"``) and a linear
probe over the pooled features (and the verdict columns) regress a target per
description by MSE; the probe is then dropped and the head is fitted in closed form on the
tuned features. The image features stay frozen and are encoded once.

The target is what the description should explain. ``realness.training.trainer`` passes the
residual of an image-only kernel head, predicted out of fold, so the text learns what the
image features miss rather than re-learning the MOS the image already gives. On RAISE-TD
neither target beat the frozen encoder (``benchmarks/recipe_cv.py``, the ``tuned_*`` rows).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from realness.core.model import CoreModel


def tune_text_encoder(
    model: CoreModel,
    texts: Sequence[str],
    targets: torch.Tensor,
    *,
    mode: str,
    epochs: int,
    learning_rate: float,
    batch_size: int = 16,
    weight_decay: float = 1e-2,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> list[float]:
    """Fine-tune ``model.text_encoder`` in place so its features predict ``targets``; returns the loss per epoch.

    Args:
        model: its text encoder is tuned; everything else is left as it was.
        texts: one non-empty description per target.
        targets: one value per text (standardized here, so any scale works).
        mode: ``last`` or ``all`` (see :meth:`realness.core.encoders.TextEncoder.set_trainable`).
        epochs: passes over ``texts``.
        learning_rate: AdamW learning rate of the encoder (the probe's is 100 times it).
        batch_size: texts per step.
        weight_decay: AdamW weight decay.
        seed: seeds the probe's initialization and the batch order.
        device: where to train.
        progress: show a progress bar.
    """
    if mode not in ("last", "all"):
        raise ValueError(f"tune_text_encoder needs mode 'last' or 'all', not {mode!r}")
    if len(texts) != len(targets) or not len(texts):
        raise ValueError(f"{len(texts)} texts and {len(targets)} targets: need as many, and at least one")
    encoder = model.text_encoder
    encoder.set_trainable(mode)
    target = targets.float().to(device)
    target = (target - target.mean()) / target.std().clamp_min(1e-6)
    generator = torch.Generator().manual_seed(seed)
    probe = nn.Linear(model.config.text_dim, 1).to(device)
    with torch.no_grad():
        probe.weight.normal_(0.0, 0.01, generator=generator)
        probe.bias.zero_()
    tuned = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": tuned, "lr": learning_rate}, {"params": probe.parameters(), "lr": 100 * learning_rate}],
        weight_decay=weight_decay,
    )
    order, losses = list(range(len(texts))), []
    shuffle = random.Random(seed)
    encoder.train()  # dropout on: it regularizes a layer fitted on a few hundred texts
    try:
        for _ in tqdm(range(epochs), desc="tune text encoder", disable=not progress):
            shuffle.shuffle(order)
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                prediction = probe(model.encode_texts([texts[i] for i in batch])).squeeze(-1)
                loss = nn.functional.mse_loss(prediction, target[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            losses.append(total / len(order))
    finally:
        encoder.eval()
        encoder.requires_grad_(False)
    return losses
