"""The recipe of the shipped default model, shared by train_default.py and raise_td.py.

Chosen on a validation split carved from RAISE-TD's training images (never the test split):
head dropout 0.5 and 30% description dropout gave validation SROCC 0.549 with descriptions and
0.470 without (head dropout 0.1: 0.540 / 0.473; no description dropout: 0.574 / 0.420).
"""

from __future__ import annotations

from realness.core import CoreConfig
from realness.training import TrainingConfig

SEED = 0


def lite_model_config(modalities: str = "both") -> CoreConfig:
    """EfficientNet-Lite0 (448 px) + all-MiniLM-L6-v2, frozen, paper head (FC 529), dropout 0.5."""
    config = CoreConfig.lite()
    config.dropout = 0.5
    config.modalities = modalities
    return config


def lite_training_config(*, description_dropout: float = 0.3, seed: int = SEED) -> TrainingConfig:
    """AdamW lr 1e-4, MSE, 4 augmented views per image, 30% description dropout."""
    return TrainingConfig(
        epochs=300,
        batch_size=32,
        learning_rate=1e-4,
        weight_decay=1e-2,
        validation_fraction=0.15,
        seed=seed,
        augmented_views=4,
        description_dropout=description_dropout,
    )
