"""Cross-model selection: for each prompt, which model's output looks most real?

Layout of the outputs (one folder per model, one image per prompt, the same prompt ids
in every folder):

    ROOT/
      descriptions.csv          optional: model,prompt_id,description
      model-a/
        cat-on-sofa.png         prompt id = file name without its extension
        street-at-night.jpg
        descriptions.csv        optional: prompt_id,description (overrides ROOT's table)
      model-b/
        cat-on-sofa.png
        street-at-night.png

:func:`select_best` scores every image, picks the most real output per prompt, and
summarizes each model: mean and standard deviation of its scores, wins and win rate
(wins over the prompts it has a scored output for).

Example:
    >>> from realness.workflows.selection import select_best   # doctest: +SKIP
    >>> result = select_best("outputs/")                        # doctest: +SKIP
    >>> print(result.summary_markdown())                        # doctest: +SKIP
    >>> result.plot("summary.png")                              # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from realness.core.pretrained import DEFAULT_MODEL
from realness.workflows.scoring import ModelLike, as_scorer, optional_float

DESCRIPTIONS_FILE = "descriptions.csv"
SUMMARY_COLUMNS = ("model", "n", "mean", "std", "wins", "win_rate", "skipped")


@dataclass
class Candidate:
    """One model's output for one prompt.

    Attributes:
        model: the model (its folder name).
        prompt_id: the prompt (the file name without extension).
        path: the image file.
        description: the description used for scoring, or None (image-only).
        score: its realness score; NaN until scored, or when it could not be scored.
        error: why it could not be scored, or None.
    """

    model: str
    prompt_id: str
    path: Path
    description: Optional[str] = None
    score: float = math.nan
    error: Optional[str] = None


@dataclass
class ModelSummary:
    """How one model did over all prompts.

    Attributes:
        model: the model (its folder name).
        n: outputs scored.
        mean: mean score of its scored outputs (NaN if none).
        std: sample standard deviation of its scores (NaN with fewer than two).
        wins: prompts where its output was the most real.
        win_rate: ``wins / n``.
        skipped: outputs that could not be scored.
    """

    model: str
    n: int
    mean: float
    std: float
    wins: int
    win_rate: float
    skipped: int

    def to_row(self) -> dict[str, Any]:
        """The summary as a table row (see :data:`SUMMARY_COLUMNS`)."""
        return {
            "model": self.model,
            "n": self.n,
            "mean": optional_float(self.mean),
            "std": optional_float(self.std),
            "wins": self.wins,
            "win_rate": optional_float(self.win_rate),
            "skipped": self.skipped,
        }


@dataclass
class SelectionResult:
    """Per-prompt winners and per-model summaries.

    Attributes:
        candidates: every output, scored.
        winners: prompt id to its most real scored output (ties go to the model whose name
            sorts first).
        summaries: one per model, by win rate then mean score, best first.
        incomplete_prompts: prompt ids some model has no output for.
    """

    candidates: list[Candidate]
    winners: dict[str, Candidate]
    summaries: list[ModelSummary]
    incomplete_prompts: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """The model names, sorted."""
        return sorted({candidate.model for candidate in self.candidates})

    def winner_rows(self) -> list[dict[str, Any]]:
        """One row per prompt: the winner, its score, its margin over the runner-up, every model's score."""
        by_prompt: dict[str, dict[str, Candidate]] = {}
        for candidate in self.candidates:
            by_prompt.setdefault(candidate.prompt_id, {})[candidate.model] = candidate
        rows = []
        for prompt_id in sorted(by_prompt):
            outputs = by_prompt[prompt_id]
            winner = self.winners.get(prompt_id)
            others = [c.score for c in outputs.values() if c is not winner and not math.isnan(c.score)]
            margin = winner.score - max(others) if winner is not None and others else math.nan
            row: dict[str, Any] = {
                "prompt_id": prompt_id,
                "winner": winner.model if winner else None,
                "winner_score": optional_float(winner.score) if winner else None,
                "margin": optional_float(margin),
                "path": str(winner.path) if winner else None,
            }
            for model in self.models:
                output = outputs.get(model)
                row[f"score:{model}"] = optional_float(output.score) if output else None
            rows.append(row)
        return rows

    def write_winners_csv(self, path: Union[str, os.PathLike]) -> Path:
        """Write :meth:`winner_rows` as CSV.

        Args:
            path: the CSV file to write.

        Returns:
            The path written.
        """
        columns = ["prompt_id", "winner", "winner_score", "margin", "path"] + [f"score:{m}" for m in self.models]
        return _write_csv(path, self.winner_rows(), columns)

    def write_summary(self, path: Union[str, os.PathLike]) -> Path:
        """Write the per-model summary as a Markdown table (``.md``) or CSV (any other suffix).

        Args:
            path: the file to write.

        Returns:
            The path written.
        """
        path = Path(path)
        if path.suffix == ".md":
            path.write_text(self.summary_markdown() + "\n", encoding="utf-8")
            return path
        return _write_csv(path, [summary.to_row() for summary in self.summaries], SUMMARY_COLUMNS)

    def summary_markdown(self) -> str:
        """The per-model summary as a Markdown table."""
        lines = [
            "| model | n | mean score | std | wins | win rate | skipped |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in self.summaries:
            lines.append(
                f"| {s.model} | {s.n} | {_fmt(s.mean)} | {_fmt(s.std)} | {s.wins} | {_fmt(s.win_rate, percent=True)} | {s.skipped} |"
            )
        return "\n".join(lines)

    def plot(self, path: Union[str, os.PathLike]) -> Path:
        """Save a bar chart: mean score (with standard error) and win rate per model.

        Args:
            path: the image file to write (``.png``, ``.svg``, ``.pdf``).

        Returns:
            The path written.
        """
        # A bare Figure renders with Agg and leaves pyplot's global backend and state alone.
        from matplotlib.figure import Figure

        names = [s.model for s in self.summaries]
        means = [0.0 if math.isnan(s.mean) else s.mean for s in self.summaries]
        errors = [0.0 if math.isnan(s.std) else s.std / math.sqrt(s.n) for s in self.summaries]
        rates = [0.0 if math.isnan(s.win_rate) else 100 * s.win_rate for s in self.summaries]
        figure = Figure(figsize=(max(6.0, 1.6 * len(names) + 3), 3.6))
        left, right = figure.subplots(1, 2)
        left.bar(names, means, yerr=errors, capsize=4, color="#4c72b0")
        left.axhline(0, color="black", linewidth=0.8)
        left.set_ylabel("mean realness score (± s.e.)")
        right.bar(names, rates, color="#55a868")
        right.set_ylabel("win rate (%)")
        right.set_ylim(0, 100)
        for axis in (left, right):
            axis.tick_params(axis="x", labelrotation=30)
        figure.tight_layout()
        path = Path(path)
        figure.savefig(path, dpi=120)
        return path


def find_candidates(root: Union[str, os.PathLike]) -> list[Candidate]:
    """The outputs in a selection layout (see the module docs), unscored, with their descriptions.

    Hidden folders (``.name``) are ignored.

    Args:
        root: the folder holding one sub-folder per model.

    Returns:
        One :class:`Candidate` per image, sorted by model then prompt id.

    Raises:
        ValueError: ``root`` has no model folders with images, or a model has two images
            for one prompt id.
        FileNotFoundError: ``root`` is not a folder.
    """
    from realness.cli.common import IMAGE_SUFFIXES

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    shared = _read_table(root / DESCRIPTIONS_FILE, with_model=True)
    candidates = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        own = _read_table(folder / DESCRIPTIONS_FILE, with_model=False)
        seen: dict[str, Path] = {}
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            if path.stem in seen:
                raise ValueError(f"{folder}: two images for prompt {path.stem!r}: {seen[path.stem].name} and {path.name}")
            seen[path.stem] = path
            description = own.get(path.stem, shared.get(f"{folder.name}/{path.stem}"))
            candidates.append(Candidate(model=folder.name, prompt_id=path.stem, path=path, description=description))
    if not candidates:
        raise ValueError(f"{root}: no model folders with images (expected ROOT/<model>/<prompt_id>.png)")
    return candidates


def select_best(
    root: Union[str, os.PathLike],
    *,
    model: ModelLike = DEFAULT_MODEL,
    device: Optional[str] = None,
    batch_size: int = 32,
    describer: Any = None,
) -> SelectionResult:
    """Score every model's outputs under ``root`` and pick the most real output per prompt.

    Args:
        root: the folder holding one sub-folder per model (layout in the module docs).
        model: the realness model: a name, directory, :class:`~realness.core.model.CoreModel`
            or :class:`~realness.core.scorer.RealnessScorer`.
        device: where to run (default: CUDA if available).
        batch_size: images per forward pass.
        describer: writes descriptions for outputs that come without one.

    Returns:
        A :class:`SelectionResult`.
    """
    candidates = find_candidates(root)
    scorer = as_scorer(model, device=device, batch_size=batch_size, describer=describer)
    result = scorer([str(c.path) for c in candidates], [c.description for c in candidates], on_error="skip")
    errors = {item.index: item.reason for item in result.skipped}
    for index, candidate in enumerate(candidates):
        candidate.score = float(result.scores[index])
        candidate.description = result.descriptions[index]
        candidate.error = errors.get(index)
    return summarize(candidates)


def summarize(candidates: list[Candidate]) -> SelectionResult:
    """Winners and per-model summaries of already scored candidates.

    Args:
        candidates: scored outputs (NaN scores count as skipped).

    Returns:
        A :class:`SelectionResult`.
    """
    models = sorted({c.model for c in candidates})
    prompts = sorted({c.prompt_id for c in candidates})
    winners: dict[str, Candidate] = {}
    for candidate in sorted(candidates, key=lambda c: (c.prompt_id, c.model)):
        if math.isnan(candidate.score):
            continue
        best = winners.get(candidate.prompt_id)
        if best is None or candidate.score > best.score:
            winners[candidate.prompt_id] = candidate
    summaries = []
    for name in models:
        own = [c for c in candidates if c.model == name]
        scores = [c.score for c in own if not math.isnan(c.score)]
        wins = sum(1 for w in winners.values() if w.model == name)
        summaries.append(
            ModelSummary(
                model=name,
                n=len(scores),
                mean=statistics.fmean(scores) if scores else math.nan,
                std=statistics.stdev(scores) if len(scores) > 1 else math.nan,
                wins=wins,
                win_rate=wins / len(scores) if scores else math.nan,
                skipped=len(own) - len(scores),
            )
        )
    summaries.sort(key=lambda s: (-_or_low(s.win_rate), -_or_low(s.mean), s.model))
    per_prompt = {p: {c.model for c in candidates if c.prompt_id == p} for p in prompts}
    incomplete = [p for p in prompts if len(per_prompt[p]) < len(models)]
    return SelectionResult(candidates=candidates, winners=winners, summaries=summaries, incomplete_prompts=incomplete)


def _read_table(path: Path, *, with_model: bool) -> dict[str, str]:
    """Descriptions keyed by ``model/prompt_id`` (ROOT table) or ``prompt_id`` (model table)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        prompt_column = next((c for c in ("prompt_id", "filename") if c in columns), None)
        needed = ["model"] if with_model else []
        if prompt_column is None or "description" not in columns or any(c not in columns for c in needed):
            wanted = "model,prompt_id,description" if with_model else "prompt_id,description"
            raise ValueError(f"{path}: needs the columns {wanted}, found {columns}")
        table = {}
        for row in reader:
            prompt_id = Path(row[prompt_column]).stem
            key = f"{row['model']}/{prompt_id}" if with_model else prompt_id
            table[key] = row["description"]
        return table


def _write_csv(path: Union[str, os.PathLike], rows: list[dict[str, Any]], columns: Any) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _fmt(value: float, *, percent: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.3f}"


def _or_low(value: float) -> float:
    return -math.inf if math.isnan(value) else value
