"""What scoring returns: one score per input image, with its description and verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from realness.errors import SkippedItem
from realness.text.verdict import Verdict


@dataclass
class ScoreResult:
    """Scores of a batch, aligned with the inputs.

    Attributes:
        scores: float32 tensor, one score per input (higher = more real, in the model's
            ``score_units``); NaN where the item was skipped.
        names: a readable name per input (its path, or ``item 3 (ndarray ...)``).
        descriptions: the description each score used (None: image-only, or skipped).
        verdicts: ``yes`` / ``somewhat`` / ``no`` parsed from each description's first word
            (``yes`` means the describer saw something unrealistic), or None.
        skipped: the items left out under ``on_error="skip"``, with the reason.
        single: the input was one image rather than a batch.
        interval: ``B x 2`` float32, the low and high end of each score's interval at the scorer's
            ``interval_level`` (90 % by default); NaN where skipped, or for a model without intervals.
    """

    scores: torch.Tensor
    names: list[str]
    descriptions: list[str | None]
    verdicts: list[Verdict | None]
    skipped: list[SkippedItem] = field(default_factory=list)
    single: bool = False
    interval: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.interval is None:
            self.interval = torch.full((len(self.scores), 2), float("nan"), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.names)

    def __float__(self) -> float:
        if len(self) != 1:
            raise TypeError(f"float() needs a result of one image, this one has {len(self)}")
        return float(self.scores[0])

    @property
    def ok(self) -> torch.Tensor:
        """Boolean mask of the items that were scored."""
        return ~torch.isnan(self.scores)

    def to_rows(self) -> list[dict]:
        """One dict per item (``path, score, score_low, score_high, verdict, description, error``) for CSV / JSON / Parquet.

        ``path`` is the item's name: the path as given, or ``item <i>`` for an in-memory image.
        """
        reasons = {item.index: item.reason for item in self.skipped}
        rows = []
        for index, name in enumerate(self.names):
            value = float(self.scores[index])
            low, high = (float(end) for end in self.interval[index])
            rows.append(
                {
                    "path": name,
                    "score": None if math.isnan(value) else round(value, 6),
                    "score_low": None if math.isnan(low) else round(low, 6),
                    "score_high": None if math.isnan(high) else round(high, 6),
                    "verdict": self.verdicts[index],
                    "description": self.descriptions[index],
                    "error": reasons.get(index),
                }
            )
        return rows

    def __repr__(self) -> str:
        shown = ", ".join(f"{float(s):.4f}" for s in self.scores[:4])
        more = ", ..." if len(self) > 4 else ""
        return f"ScoreResult(n={len(self)}, scores=[{shown}{more}], skipped={len(self.skipped)})"
