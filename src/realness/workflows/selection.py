"""Comparing generators by realness: paired (same prompts) and unpaired (two folders).

**Paired.** One folder per model, one image per prompt; outputs of different models pair
up by a *key* computed from each file's name:

    ROOT/
      descriptions.csv          optional: generator,prompt_id,description
      model-a/
        cat-on-sofa.png         key "cat-on-sofa" (key="stem", the default)
        street-at-night.jpg
        descriptions.csv        optional: prompt_id,description (overrides ROOT's table)
      model-b/
        cat-on-sofa.png
        street-at-night.png

``key="name"`` pairs by the whole file name, ``key="path"`` by the path below the model
folder without its suffix (nested folders), and ``key_pattern`` takes the key out of the
stem with a regular expression (its first group, or the whole match), so ``cat_a.png`` and
``cat_b.png`` pair under ``key_pattern=r"(.*)_[ab]"``. :func:`select_best` refuses a layout
where nothing pairs (:class:`~realness.errors.NothingPairedError`) and warns about items
without a partner (:class:`~realness.errors.UnpairedItemsWarning`).

It reports per model the mean score with a bootstrap 95 % confidence interval and the
paired win rate (wins over the prompts every model has a scored output for), and per pair
of models the mean paired difference with its interval, how often the first wins, and a
Wilcoxon signed-rank test (Holm-adjusted over the pairs when there are more than two
models). A p-value at or above 0.05 is reported as "no significant difference".

**Unpaired.** :func:`compare_folders` scores two folders of unrelated images (two
distributions, like clean-fid's ``compute_fid(dir1, dir2)``) and reports each mean with
its interval, the difference of means with a bootstrap interval and a Mann-Whitney U test.

Example:
    >>> from realness.workflows.selection import select_best   # doctest: +SKIP
    >>> result = select_best("outputs/")                        # doctest: +SKIP
    >>> print(result.summary_markdown())                        # doctest: +SKIP
"""

from __future__ import annotations

import errno
import math
import os
import re
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Union

from realness.core.pretrained import DEFAULT_MODEL
from realness.errors import NothingPairedError, UnpairedItemsWarning, UsageError
from realness.evaluation import stats
from realness.evaluation.plotting import COLORS, save_figure, styled_figure
from realness.io.atomic import write_text_atomic
from realness.io.description_table import DESCRIPTION_COLUMN_ALIASES, IMAGE_COLUMN_ALIASES
from realness.io.files import IMAGE_SUFFIXES, expand_image_paths
from realness.io.tables import read_table, write_table
from realness.runtime.device import resolve_device
from realness.text.descriptions import is_describer
from realness.workflows.scoring import ModelLike, as_scorer, optional_float

DESCRIPTIONS_FILE = "descriptions.csv"
#: How outputs pair across models: by file stem, whole file name, or path below the model folder.
KEYS = ("stem", "name", "path")
SUMMARY_COLUMNS = ("generator", "n", "mean", "ci_low", "ci_high", "std", "wins", "win_rate", "skipped")
COMPARISON_COLUMNS = (
    "first", "second", "pairs", "mean_difference", "ci_low", "ci_high", "first_win_rate", "p_value", "verdict",
)
#: Below this many pairs a two-sided Wilcoxon test cannot reach p < 0.05 at all.
MIN_PAIRS_FOR_SIGNIFICANCE = 6

FolderLike = Union[str, "os.PathLike[str]"]


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
        p = _fmt_p(self.p_value)
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
                f"| {s.model} | {s.n} | {_fmt(s.mean)} [{_fmt(s.ci_low)}, {_fmt(s.ci_high)}] | {_fmt(s.std)} | "
                f"{s.wins} | {_fmt(s.win_rate, percent=True)} | {s.skipped} |"
            )
        if self.comparisons:
            lines += [
                "",
                "| first vs second | pairs | mean difference [95% CI] | first wins | Wilcoxon p |",
                "|---|---:|---:|---:|---:|",
            ]
            for c in self.comparisons:
                lines.append(
                    f"| {c.first} vs {c.second} | {c.pairs} | {_fmt(c.mean_difference)} "
                    f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] | {_fmt(c.first_win_rate, percent=True)} | {_fmt_p(c.p_value)} |"
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
        p = _fmt_p(self.p_value)
        if self.significant:
            better, worse = (self.first, self.second) if self.mean_difference > 0 else (self.second, self.first)
            return f"{better.model} looks more real than {worse.model} (Mann-Whitney p = {p})"
        return f"no significant difference between {self.first.model} and {self.second.model} (Mann-Whitney p = {p})"

    def summary_markdown(self) -> str:
        """Both folders' means with intervals, the difference and the test, as Markdown."""
        lines = ["| folder | n | mean score [95% CI] | std | skipped |", "|---|---:|---:|---:|---:|"]
        for s in (self.first, self.second):
            interval = f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]"
            lines.append(f"| {s.model} | {s.n} | {_fmt(s.mean)} {interval} | {_fmt(s.std)} | {s.skipped} |")
        lines += [
            "",
            f"Difference of means ({self.first.model} - {self.second.model}): {_fmt(self.mean_difference)} "
            f"[{_fmt(self.ci_low)}, {_fmt(self.ci_high)}]; "
            f"Mann-Whitney U = {_fmt(self.u_statistic)}, p = {_fmt_p(self.p_value)}.",
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


def pairing_key(key: str = "stem", key_pattern: str | None = None) -> Callable[[Path, Path], str | None]:
    """The function that names an output's pairing key: ``key(file, model_folder) -> str`` (None: no key).

    Args:
        key: ``stem`` (file name without suffix), ``name`` (whole file name) or ``path``
            (path below the model folder, without suffix).
        key_pattern: A regular expression searched in that key; the key becomes its first
            group (or the whole match); a file it does not match has no key.

    Raises:
        UsageError: An unknown ``key`` or a pattern that does not compile.
    """
    if key not in KEYS:
        raise UsageError(f"key={key!r}", f"use one of {', '.join(KEYS)}")
    try:
        pattern = re.compile(key_pattern) if key_pattern is not None else None
    except re.error as error:
        raise UsageError(f"key_pattern={key_pattern!r}", f"not a regular expression ({error})") from None

    def key_of(file: Path, folder: Path) -> str | None:
        if key == "stem":
            text = file.stem
        elif key == "name":
            text = file.name
        else:
            text = file.relative_to(folder).with_suffix("").as_posix()
        if pattern is None:
            return text
        match = pattern.search(text)
        if match is None:
            return None
        return match.group(1) if pattern.groups else match.group(0)

    return key_of


def find_candidates(
    folders: FolderLike | Sequence[FolderLike],
    *,
    key: str = "stem",
    key_pattern: str | None = None,
) -> list[Candidate]:
    """The outputs to compare, unscored, with the descriptions their folders' tables give.

    Args:
        folders: one folder holding one sub-folder per model (hidden ones ignored), or a list
            of model folders (each folder is one model, named after it).
        key: how outputs pair across models (see :func:`pairing_key`).
        key_pattern: a regular expression taking the key out of the file's name.

    Returns:
        One :class:`Candidate` per image, sorted by model then key.

    Raises:
        FileNotFoundError: a folder does not exist.
        UsageError: no model folder has images, two images of one model share a key, or two
            model folders share a name.
    """
    key_of = pairing_key(key, key_pattern)
    if isinstance(folders, (str, os.PathLike)):
        root = Path(folders)
        if not root.is_dir():
            raise FileNotFoundError(errno.ENOENT, "not a folder", str(root))
        shared = _read_table(root / DESCRIPTIONS_FILE, with_model=True)
        model_folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        where = str(root)
    else:
        shared = {}
        model_folders = [Path(folder) for folder in folders]
        for folder in model_folders:
            if not folder.is_dir():
                raise FileNotFoundError(errno.ENOENT, "not a folder", str(folder))
        names = [folder.resolve().name for folder in model_folders]
        if len(set(names)) != len(names):
            raise UsageError(", ".join(map(str, model_folders)), "two model folders have the same name; rename one")
        where = ", ".join(map(str, model_folders))
    candidates = []
    unmatched: list[str] = []
    for folder in model_folders:
        model = folder.resolve().name
        own = _read_table(folder / DESCRIPTIONS_FILE, with_model=False)
        files = _image_files(folder, recursive=key == "path")
        seen: dict[str, Path] = {}
        for path in files:
            item_key = key_of(path, folder)
            if item_key is None:
                unmatched.append(str(path))
                continue
            if item_key in seen:
                raise UsageError(
                    str(folder),
                    f"two images have the key {item_key!r}: {seen[item_key].name} and {path.name}; choose another --key",
                )
            seen[item_key] = path
            description = own.get(item_key, shared.get(f"{model}/{item_key}"))
            candidates.append(Candidate(model=model, prompt_id=item_key, path=path, description=description))
    if unmatched and not candidates:
        example = Path(unmatched[0]).name
        raise UsageError(f"--key-pattern {key_pattern!r}", f"matches none of the {len(unmatched)} file names (e.g. {example})")
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} file(s) do not match key_pattern {key_pattern!r} and are left out: {', '.join(unmatched[:5])}",
            UnpairedItemsWarning,
            stacklevel=2,
        )
    if not candidates:
        raise UsageError(where, "no model folders with images (expected ROOT/<model>/<prompt>.png, or two or more model folders)")
    return candidates


def select_best(
    folders: FolderLike | Sequence[FolderLike],
    *,
    key: str = "stem",
    key_pattern: str | None = None,
    model: ModelLike = DEFAULT_MODEL,
    descriptions: Any = None,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    describer: Any = None,
    progress: bool | None = None,
    on_error: str = "skip",
    bootstrap: int = 2000,
    seed: int = 0,
) -> SelectionResult:
    """Score every model's outputs, pick the most real output per prompt and test the differences.

    Args:
        folders: one folder with a sub-folder per model, or a list of model folders.
        key: how outputs pair across models: ``stem``, ``name`` or ``path`` (see :func:`pairing_key`).
        key_pattern: a regular expression taking the key out of each file's name.
        model: the realness model: a name, directory, :class:`~realness.core.model.CoreModel`
            or :class:`~realness.core.scorer.RealnessScorer`.
        descriptions: a CSV with ``model``, a key column (``prompt_id``, ``key`` or
            ``filename``) and ``description`` (overrides the folders' own tables), or a
            describer (object or name such as ``"openai"``) that writes them.
        device: where to run (default: CUDA if available).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: images per forward pass.
        describer: writes descriptions for outputs that come without one.
        progress: show a progress bar (None: for long runs).
        on_error: ``"skip"`` (default): an output that cannot be scored is left out of the
            statistics and keeps its ``error``; ``"raise"``: it raises.
        bootstrap: bootstrap resamples for the confidence intervals.
        seed: seed of the resampling (intervals are reproducible).

    Returns:
        A :class:`SelectionResult`.

    Raises:
        NothingPairedError: fewer than two models, or no output has a partner in another model.
    """
    resolve_device(device)  # a device this machine lacks fails before any work
    if is_describer(descriptions):
        descriptions, describer = None, descriptions
    candidates = find_candidates(folders, key=key, key_pattern=key_pattern)
    if descriptions is not None:
        table = _read_table(Path(descriptions), with_model=True, required=True)
        for candidate in candidates:
            candidate.description = table.get(f"{candidate.model}/{candidate.prompt_id}", candidate.description)
    _check_pairing(candidates, str(folders) if isinstance(folders, (str, os.PathLike)) else "the folders")
    _score(candidates, model, device=device, precision=precision, batch_size=batch_size, describer=describer, progress=progress, on_error=on_error)
    return select_best_from_scores(candidates, bootstrap=bootstrap, seed=seed)


def select_best_from_scores(candidates: list[Candidate], *, bootstrap: int = 2000, seed: int = 0) -> SelectionResult:
    """What :func:`select_best` returns, from candidates already scored: winners, per-model summaries, pairwise tests.

    Args:
        candidates: scored outputs (NaN scores count as skipped).
        bootstrap: bootstrap resamples for the confidence intervals.
        seed: seed of the resampling.

    Returns:
        A :class:`SelectionResult`.
    """
    models = sorted({c.model for c in candidates})
    scores = {(c.model, c.prompt_id): c.score for c in candidates if not math.isnan(c.score)}
    prompts = sorted({c.prompt_id for c in candidates})
    complete = [p for p in prompts if all((m, p) in scores for m in models)]
    by_key = {(c.model, c.prompt_id): c for c in candidates}
    winners: dict[str, Candidate] = {}
    for prompt in complete:
        # max() keeps the first of equal scores: ties go to the model whose name sorts first.
        winners[prompt] = max((by_key[(m, prompt)] for m in models), key=lambda c: c.score)
    summaries = []
    for name in models:
        own = [c for c in candidates if c.model == name]
        summaries.append(
            _summary(name, [c.score for c in own], bootstrap=bootstrap, seed=seed,
                     wins=sum(1 for w in winners.values() if w.model == name), contested=len(complete))
        )
    summaries.sort(key=lambda s: (-_or_low(s.mean), s.model))
    # Pairs in the order of the summary table (best mean first), so each row reads "first vs a lower one".
    ranked = [summary.model for summary in summaries]
    comparisons = [_paired(a, b, scores, prompts, bootstrap=bootstrap, seed=seed) for a, b in combinations(ranked, 2)]
    if len(comparisons) > 1:
        for comparison, adjusted in zip(comparisons, stats.holm([c.p_value for c in comparisons])):
            comparison.p_value = adjusted
    incomplete = [p for p in prompts if p not in set(complete)]
    return SelectionResult(
        candidates=candidates, winners=winners, summaries=summaries, comparisons=comparisons, incomplete_prompts=incomplete
    )


def compare_folders(
    first: FolderLike,
    second: FolderLike,
    *,
    model: ModelLike = DEFAULT_MODEL,
    descriptions: Any = None,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    describer: Any = None,
    progress: bool | None = None,
    on_error: str = "skip",
    bootstrap: int = 2000,
    seed: int = 0,
) -> FolderComparison:
    """Compare two folders of unrelated images by their realness distributions (unpaired).

    Args:
        first: a folder of images (searched recursively).
        second: another.
        model: the realness model (see :func:`select_best`).
        descriptions: a CSV with ``path`` (or ``filename``) and ``description`` columns, or a
            describer (object or name) that writes them.
        device: where to run.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        batch_size: images per forward pass.
        describer: writes descriptions for images that come without one.
        progress: show a progress bar.
        on_error: ``"skip"`` or ``"raise"`` (see :func:`select_best`).
        bootstrap: bootstrap resamples for the intervals.
        seed: seed of the resampling.

    Returns:
        A :class:`FolderComparison`.

    Raises:
        UsageError: a folder has no images.
    """
    resolve_device(device)  # a device this machine lacks fails before any work
    if is_describer(descriptions):
        descriptions, describer = None, descriptions
    table = _read_path_table(Path(descriptions)) if descriptions is not None else {}
    candidates = []
    labels = _folder_labels(Path(first), Path(second))
    for folder, label in zip((Path(first), Path(second)), labels):
        files = expand_image_paths([str(folder)])
        if not files:
            raise UsageError(str(folder), "no images in this folder")
        for path in files:
            text = table.get(str(path.resolve()), table.get(path.name))
            candidates.append(Candidate(model=label, prompt_id=str(path), path=path, description=text))
    _score(candidates, model, device=device, precision=precision, batch_size=batch_size, describer=describer, progress=progress, on_error=on_error)
    groups = [[c.score for c in candidates if c.model == label] for label in labels]
    summaries = [_summary(label, group, bootstrap=bootstrap, seed=seed) for label, group in zip(labels, groups)]
    u_statistic, p_value = stats.mann_whitney_p(*groups)
    low, high = stats.mean_difference_ci(*groups, n=bootstrap, seed=seed)
    return FolderComparison(
        first=summaries[0],
        second=summaries[1],
        mean_difference=summaries[0].mean - summaries[1].mean,
        ci_low=low,
        ci_high=high,
        u_statistic=u_statistic,
        p_value=p_value,
        candidates=candidates,
    )


# --- helpers --------------------------------------------------------------------------------


def _image_files(folder: Path, *, recursive: bool) -> list[Path]:
    if recursive:
        return expand_image_paths([str(folder)])
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _check_pairing(candidates: list[Candidate], where: str) -> None:
    """Refuse a comparison where nothing pairs; warn about the outputs without a partner."""
    models = sorted({c.model for c in candidates})
    if len(models) < 2:
        raise NothingPairedError(where, f"found one model folder ({models[0]}); a comparison needs at least two")
    owners: dict[str, set[str]] = {}
    for candidate in candidates:
        owners.setdefault(candidate.prompt_id, set()).add(candidate.model)
    paired = {key for key, found in owners.items() if len(found) > 1}
    if not paired:
        examples = "; ".join(
            f"{m}: {', '.join(sorted(c.prompt_id for c in candidates if c.model == m)[:3])}" for m in models
        )
        raise NothingPairedError(
            where,
            f"no output pairs with another model's (keys {examples}); name files alike, or choose --key / --key-pattern",
        )
    lonely = sorted(key for key, found in owners.items() if len(found) < len(models))
    if lonely:
        warnings.warn(
            f"{len(lonely)} of {len(owners)} prompts lack an output from some model and are left out of the wins: "
            f"{', '.join(lonely[:5])}{', ...' if len(lonely) > 5 else ''}",
            UnpairedItemsWarning,
            stacklevel=3,
        )


def _score(candidates: list[Candidate], model: ModelLike, *, on_error: str, **options: Any) -> None:
    scorer = as_scorer(model, **options)
    result = scorer([str(c.path) for c in candidates], [c.description for c in candidates], on_error=on_error)
    errors = {item.index: item.reason for item in result.skipped}
    for index, candidate in enumerate(candidates):
        candidate.score = float(result.scores[index])
        candidate.description = result.descriptions[index]
        candidate.error = errors.get(index)


def _summary(name: str, scores: Sequence[float], *, bootstrap: int, seed: int, wins: int = 0, contested: int = 0) -> ModelSummary:
    valid = [s for s in scores if not math.isnan(s)]
    low, high = stats.mean_ci(valid, n=bootstrap, seed=seed)
    return ModelSummary(
        model=name,
        n=len(valid),
        mean=statistics.fmean(valid) if valid else math.nan,
        ci_low=low,
        ci_high=high,
        std=statistics.stdev(valid) if len(valid) > 1 else math.nan,
        wins=wins,
        win_rate=wins / contested if contested else math.nan,
        skipped=len(scores) - len(valid),
    )


def _paired(first: str, second: str, scores: dict, prompts: list[str], *, bootstrap: int, seed: int) -> PairedComparison:
    shared = [p for p in prompts if (first, p) in scores and (second, p) in scores]
    a = [scores[(first, p)] for p in shared]
    b = [scores[(second, p)] for p in shared]
    differences = [x - y for x, y in zip(a, b)]
    low, high = stats.mean_ci(differences, n=bootstrap, seed=seed)
    wins = sum(1.0 if d > 0 else 0.5 if d == 0 else 0.0 for d in differences)
    return PairedComparison(
        first=first,
        second=second,
        pairs=len(shared),
        mean_difference=statistics.fmean(differences) if differences else math.nan,
        ci_low=low,
        ci_high=high,
        first_win_rate=wins / len(shared) if shared else math.nan,
        p_value=stats.wilcoxon_p(a, b),
    )


def _folder_labels(first: Path, second: Path) -> list[str]:
    names = [first.resolve().name, second.resolve().name]
    return names if names[0] != names[1] else [str(first), str(second)]


def _read_table(path: Path, *, with_model: bool, required: bool = False) -> dict[str, str]:
    """Descriptions keyed by ``model/key`` (a ROOT or ``--descriptions`` table) or ``key`` (a model folder's table)."""
    if not path.is_file():
        if required:
            raise UsageError(str(path), "no such descriptions file")
        return {}
    table = read_table(path)
    key_column = table.column(("prompt_id", "key", "filename"), purpose="prompt id")
    text_column = table.column(DESCRIPTION_COLUMN_ALIASES, purpose="description")
    # "generator" is the word of realness's tables; "model" is what 0.1 wrote.
    model_column = table.column(("generator", "model"), purpose="generator") if with_model else None
    texts = {}
    for row in table.rows:
        # A file name in the key column stands for its stem, the default key.
        key = row[key_column] if key_column.lower() != "filename" else Path(row[key_column]).stem
        texts[f"{row[model_column]}/{key}" if model_column else key] = row[text_column]
    return texts


def _read_path_table(path: Path) -> dict[str, str]:
    """Descriptions keyed by absolute path and by file name, from a ``path``/``filename`` + ``description`` CSV."""
    if not path.is_file():
        raise UsageError(str(path), "no such descriptions file")
    table = read_table(path)
    name_column = table.column(IMAGE_COLUMN_ALIASES, purpose="image")
    text_column = table.column(DESCRIPTION_COLUMN_ALIASES, purpose="description")
    texts = {}
    for row in table.rows:
        texts[str(Path(row[name_column]).resolve())] = row[text_column]
        texts.setdefault(Path(row[name_column]).name, row[text_column])
    return texts


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


def _fmt(value: float, *, percent: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.3f}"


def _fmt_p(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def _or_low(value: float) -> float:
    return -math.inf if math.isnan(value) else value
