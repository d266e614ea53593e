"""What comparing generators returns: the scored outputs, per-model summaries and pairwise tests,
with their tables, Markdown and charts."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realness.evaluation import stats
from realness.evaluation.plotting import COLORS, save_figure, styled_figure
from realness.io.atomic import write_text_atomic
from realness.io.tables import write_table
from realness.workflows.scoring import optional_float

SUMMARY_COLUMNS = ("generator", "n", "mean", "ci_low", "ci_high", "std", "wins", "win_rate", "skipped")
COMPARISON_COLUMNS = (
    "first", "second", "pairs", "mean_difference", "ci_low", "ci_high", "first_win_rate", "p_value", "verdict",
)
#: Below this many pairs a two-sided Wilcoxon test cannot reach p < 0.05 at all.
MIN_PAIRS_FOR_SIGNIFICANCE = 6



@dataclass
class Candidate:
    """One model's output for one prompt.

    Attributes:
        model: the model (its folder name).
        prompt_id: the pairing key (by default the file name without extension).
        path: the image file.
        description: the description used for scoring, or None (image-only).
        score: its realness score; NaN until scored, or when it could not be scored.
        error: why it could not be scored, or None.
    """

    model: str
    prompt_id: str
    path: Path
    description: str | None = None
    score: float = math.nan
    error: str | None = None

    @property
    def key(self) -> str:
        """The pairing key (the same as ``prompt_id``)."""
        return self.prompt_id


@dataclass
class ModelSummary:
    """How one model (or one folder) did.

    Attributes:
        model: the model (its folder name).
        n: outputs scored.
        mean: mean score of its scored outputs (NaN if none).
        ci_low: lower end of the bootstrap 95 % interval of the mean.
        ci_high: upper end of it.
        std: sample standard deviation of its scores (NaN with fewer than two).
        wins: prompts, among those every model has a scored output for, where its output was the most real.
        win_rate: ``wins`` over those prompts (NaN when there are none).
        skipped: outputs that could not be scored.
    """

    model: str
    n: int
    mean: float
    ci_low: float
    ci_high: float
    std: float
    wins: int
    win_rate: float
    skipped: int

    def to_row(self) -> dict[str, Any]:
        """The summary as a table row (see :data:`SUMMARY_COLUMNS`)."""
        return {
            "generator": self.model,
            "n": self.n,
            "mean": optional_float(self.mean),
            "ci_low": optional_float(self.ci_low),
            "ci_high": optional_float(self.ci_high),
            "std": optional_float(self.std),
            "wins": self.wins,
            "win_rate": optional_float(self.win_rate),
            "skipped": self.skipped,
        }


@dataclass
class PairedComparison:
    """Two models on the prompts both have a scored output for.

    Attributes:
        first: one model.
        second: the other.
        pairs: prompts both scored.
        mean_difference: mean of ``score(first) - score(second)`` over the pairs.
        ci_low: lower end of its bootstrap 95 % interval.
        ci_high: upper end of it.
        first_win_rate: share of pairs where ``first`` scored higher (ties count half).
        p_value: two-sided Wilcoxon signed-rank p-value (Holm-adjusted over all pairs of
            models when there are more than two).
    """

    first: str
    second: str
    pairs: int
    mean_difference: float
    ci_low: float
    ci_high: float
    first_win_rate: float
    p_value: float

    @property
    def significant(self) -> bool:
        """The difference is significant at p < 0.05."""
        return not math.isnan(self.p_value) and self.p_value < stats.SIGNIFICANCE

    @property
    def verdict(self) -> str:
        """One sentence: which model looks more real, or that the data cannot tell."""
        p = format_p(self.p_value)
        if self.significant:
            better, worse = (self.first, self.second) if self.mean_difference > 0 else (self.second, self.first)
            return f"{better} looks more real than {worse} (Wilcoxon p = {p}, {self.pairs} pairs)"
        reason = (
            f"; {self.pairs} pairs are too few for p < 0.05"
            if self.pairs < MIN_PAIRS_FOR_SIGNIFICANCE
            else ""
        )
        return f"no significant difference between {self.first} and {self.second} (Wilcoxon p = {p}, {self.pairs} pairs{reason})"

    def to_row(self) -> dict[str, Any]:
        """The comparison as a table row (see :data:`COMPARISON_COLUMNS`)."""
        return {
            "first": self.first,
            "second": self.second,
            "pairs": self.pairs,
            "mean_difference": optional_float(self.mean_difference),
            "ci_low": optional_float(self.ci_low),
            "ci_high": optional_float(self.ci_high),
            "first_win_rate": optional_float(self.first_win_rate),
            "p_value": optional_float(self.p_value),
            "verdict": self.verdict,
        }


@dataclass
class SelectionResult:
    """Per-prompt winners, per-model summaries and pairwise tests.

    Attributes:
        candidates: every output, scored.
        winners: prompt key to its most real output, over the prompts every model has a
            scored output for (ties go to the model whose name sorts first).
        summaries: one per model, best mean first.
        comparisons: one per pair of models.
        incomplete_prompts: keys some model has no scored output for (left out of the wins).
    """

    candidates: list[Candidate]
    winners: dict[str, Candidate]
    summaries: list[ModelSummary]
    comparisons: list[PairedComparison] = field(default_factory=list)
    incomplete_prompts: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """The model names, sorted."""
        return sorted({candidate.model for candidate in self.candidates})

    def verdicts(self) -> list[str]:
        """One sentence per pair of models (see :attr:`PairedComparison.verdict`)."""
        return [comparison.verdict for comparison in self.comparisons]

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

    def write_winners_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`winner_rows` as CSV; returns the path written."""
        columns = ["prompt_id", "winner", "winner_score", "margin", "path"] + [f"score:{m}" for m in self.models]
        return _write_csv(path, self.winner_rows(), columns)

    def write_comparisons_csv(self, path: str | os.PathLike) -> Path:
        """Write the pairwise tests as CSV (see :data:`COMPARISON_COLUMNS`); returns the path written."""
        return _write_csv(path, [c.to_row() for c in self.comparisons], COMPARISON_COLUMNS)

    def write_summary(self, path: str | os.PathLike) -> Path:
        """Write the per-model summary as Markdown (``.md``, with the tests) or CSV (any other suffix)."""
        path = Path(path)
        if path.suffix == ".md":
            write_text_atomic(path, self.summary_markdown() + "\n")
            return path
        return _write_csv(path, [summary.to_row() for summary in self.summaries], SUMMARY_COLUMNS)

    def summary_markdown(self) -> str:
        """The per-model summary and the pairwise tests as Markdown tables, then one verdict per pair."""
        lines = [
            "| generator | n | mean score [95% CI] | std | wins | paired win rate | skipped |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in self.summaries:
            lines.append(
                f"| {s.model} | {s.n} | {format_value(s.mean)} [{format_value(s.ci_low)}, {format_value(s.ci_high)}] | {format_value(s.std)} | "
                f"{s.wins} | {format_value(s.win_rate, percent=True)} | {s.skipped} |"
            )
        if self.comparisons:
            lines += [
                "",
                "| first vs second | pairs | mean difference [95% CI] | first wins | Wilcoxon p |",
                "|---|---:|---:|---:|---:|",
            ]
            for c in self.comparisons:
                lines.append(
                    f"| {c.first} vs {c.second} | {c.pairs} | {format_value(c.mean_difference)} "
                    f"[{format_value(c.ci_low)}, {format_value(c.ci_high)}] | {format_value(c.first_win_rate, percent=True)} | {format_p(c.p_value)} |"
                )
            if len(self.comparisons) > 1:
                lines.append("")
                lines.append("p-values are Holm-adjusted over the pairs of models.")
            lines.append("")
            lines += [f"- {verdict}" for verdict in self.verdicts()]
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> Path:
        """Save a bar chart: mean score with its 95 % interval, and paired win rate, per model."""
        names = [s.model for s in self.summaries]
        return _bar_chart(
            path,
            names,
            [s.mean for s in self.summaries],
            [(s.ci_low, s.ci_high) for s in self.summaries],
            rates=[s.win_rate for s in self.summaries],
        )


@dataclass
class FolderComparison:
    """Two folders of unrelated images compared as distributions (unpaired).

    Attributes:
        first: the first folder's summary (``wins`` and ``win_rate`` do not apply: 0 and NaN).
        second: the second folder's.
        mean_difference: ``first.mean - second.mean``.
        ci_low: lower end of the bootstrap 95 % interval of the difference.
        ci_high: upper end of it.
        u_statistic: Mann-Whitney U of the first folder.
        p_value: two-sided Mann-Whitney p-value.
        candidates: every image, scored (``model`` is its folder's label).
    """

    first: ModelSummary
    second: ModelSummary
    mean_difference: float
    ci_low: float
    ci_high: float
    u_statistic: float
    p_value: float
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def significant(self) -> bool:
        """The difference is significant at p < 0.05."""
        return not math.isnan(self.p_value) and self.p_value < stats.SIGNIFICANCE

    @property
    def verdict(self) -> str:
        """One sentence: which folder looks more real, or that the data cannot tell."""
        p = format_p(self.p_value)
        if self.significant:
            better, worse = (self.first, self.second) if self.mean_difference > 0 else (self.second, self.first)
            return f"{better.model} looks more real than {worse.model} (Mann-Whitney p = {p})"
        return f"no significant difference between {self.first.model} and {self.second.model} (Mann-Whitney p = {p})"

    def summary_markdown(self) -> str:
        """Both folders' means with intervals, the difference and the test, as Markdown."""
        lines = ["| folder | n | mean score [95% CI] | std | skipped |", "|---|---:|---:|---:|---:|"]
        for s in (self.first, self.second):
            interval = f"[{format_value(s.ci_low)}, {format_value(s.ci_high)}]"
            lines.append(f"| {s.model} | {s.n} | {format_value(s.mean)} {interval} | {format_value(s.std)} | {s.skipped} |")
        lines += [
            "",
            f"Difference of means ({self.first.model} - {self.second.model}): {format_value(self.mean_difference)} "
            f"[{format_value(self.ci_low)}, {format_value(self.ci_high)}]; "
            f"Mann-Whitney U = {format_value(self.u_statistic)}, p = {format_p(self.p_value)}.",
            "",
            f"- {self.verdict}",
        ]
        return "\n".join(lines)

    def to_rows(self) -> list[dict[str, Any]]:
        """The two folder summaries as rows (see :data:`SUMMARY_COLUMNS`)."""
        return [self.first.to_row(), self.second.to_row()]

    def write_summary(self, path: str | os.PathLike) -> Path:
        """Write the comparison as Markdown (``.md``) or the two folder summaries as CSV."""
        path = Path(path)
        if path.suffix == ".md":
            write_text_atomic(path, self.summary_markdown() + "\n")
            return path
        return _write_csv(path, self.to_rows(), SUMMARY_COLUMNS)

    def plot(self, path: str | os.PathLike) -> Path:
        """Save a bar chart of both means with their 95 % intervals."""
        pair = (self.first, self.second)
        return _bar_chart(path, [s.model for s in pair], [s.mean for s in pair], [(s.ci_low, s.ci_high) for s in pair])


def _bar_chart(path, names, means, intervals, *, rates=None) -> Path:
    heights = [0.0 if math.isnan(m) else m for m in means]
    below = [0.0 if math.isnan(m) or math.isnan(lo) else m - lo for m, (lo, _) in zip(means, intervals)]
    above = [0.0 if math.isnan(m) or math.isnan(hi) else hi - m for m, (_, hi) in zip(means, intervals)]
    with styled_figure((max(6.0, 1.6 * len(names) + 3), 3.6)) as figure:
        axes = figure.subplots(1, 2 if rates is not None else 1, squeeze=False)[0]
        axes[0].bar(names, heights, yerr=[below, above], capsize=4, color=COLORS[0])
        axes[0].axhline(0, color="black", linewidth=0.8)
        axes[0].set_ylabel("mean realness score (95% CI)")
        if rates is not None:
            axes[1].bar(names, [0.0 if math.isnan(r) else 100 * r for r in rates], color=COLORS[2])
            axes[1].set_ylabel("paired win rate (%)")
            axes[1].set_ylim(0, 100)
        for axis in axes:
            axis.tick_params(axis="x", labelrotation=30)
        figure.tight_layout()
    return save_figure(figure, path)


def _write_csv(path: str | os.PathLike, rows: list[dict[str, Any]], columns: Any) -> Path:
    write_table(rows, path, list(columns))
    return Path(path)


def format_value(value: float, *, percent: bool = False) -> str:
    """``value`` to three decimals (or as a percentage), "–" for NaN: as summary.md and report.html show it."""
    if math.isnan(value):
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.3f}"


def format_p(value: float) -> str:
    """A p-value to two significant digits, "< 0.001" below that, "–" for NaN."""
    if math.isnan(value):
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def or_low(value: float) -> float:
    """``value``, or minus infinity for NaN: a sort key that puts an unknown mean last."""
    return -math.inf if math.isnan(value) else value
