"""Rated-image datasets (RAISE-TD, AGIN, any CSV) and the splits used to evaluate on them."""

from __future__ import annotations

from realness.data.agin import load_agin
from realness.data.csv_dataset import load_csv
from realness.data.dataset import DatasetError, DatasetNotFoundError, RatedImages, Sample
from realness.data.raise_td import load_raise_td, raise_td_root
from realness.data.splits import kfold, official_split, train_val_split

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "RatedImages",
    "Sample",
    "kfold",
    "load_agin",
    "load_csv",
    "load_raise_td",
    "official_split",
    "raise_td_root",
    "train_val_split",
]
