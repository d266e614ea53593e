"""Train / validation / test splits: RAISE's official one, a seeded validation carve-out, k-fold.

Index-returning splits give sorted int64 arrays, deterministic for a seed, and are meant to
be applied with :meth:`realness.data.RatedImages.subset`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realness.data.dataset import RatedImages
from realness.data.raise_td import load_raise_td


def official_split(root: str | Path | None = None) -> tuple[RatedImages, RatedImages]:
    """RAISE-TD's official train / test split as shipped (510 / 90 images).

    Args:
        root: the RAISE-TD folder (default: see :func:`realness.data.raise_td.raise_td_root`).

    Returns:
        ``(train, test)``.

    Raises:
        DatasetNotFoundError: the dataset or one of its files is missing.
        DatasetError: its files disagree.
    """
    return load_raise_td(root, "train"), load_raise_td(root, "test")


def train_val_split(n: int, val_fraction: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Carve a random validation share out of ``n`` training items (never out of a test split).

    Args:
        n: number of training items.
        val_fraction: share held out for validation, in (0, 1); rounded to at least one item
            and at most ``n - 1``.
        seed: seed of the shuffle.

    Returns:
        ``(train_indices, val_indices)``, disjoint, together ``0..n-1``, each sorted.

    Raises:
        ValueError: ``n`` < 2 or ``val_fraction`` outside (0, 1).
    """
    if n < 2:
        raise ValueError(f"need at least 2 items to split off a validation set, got {n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), not {val_fraction}")
    n_val = min(max(round(n * val_fraction), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def kfold(n: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold cross-validation: every item is in exactly one test fold.

    Fold sizes differ by at most one.

    Args:
        n: number of items.
        k: number of folds (AGIN's protocol uses 5).
        seed: seed of the shuffle.

    Returns:
        ``k`` pairs ``(train_indices, test_indices)``, each sorted.

    Raises:
        ValueError: ``k`` < 2 or ``k`` > ``n``.
    """
    if not 2 <= k <= n:
        raise ValueError(f"k must be between 2 and the number of items ({n}), not {k}")
    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [
        (np.sort(np.concatenate([fold for other, fold in enumerate(folds) if other != index])), np.sort(test))
        for index, test in enumerate(folds)
    ]
