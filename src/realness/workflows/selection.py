"""Comparing generators by realness: paired (the same prompts, :func:`select_best`) and unpaired
(two folders, :func:`compare_folders`), with bootstrap intervals and Wilcoxon / Mann-Whitney tests.

The folder layout, pairing keys and reports are in the user guide, ``docs/workflows/selection.md``.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from realness.core.pretrained import DEFAULT_MODEL
from realness.describers.descriptions import as_describer, fill_missing, resolve_descriptions
from realness.errors import UsageError
from realness.evaluation import stats
from realness.io.files import expand_image_paths
from realness.runtime.device import resolve_device
from realness.workflows.pairing import (
    FolderLike,
    check_pairing,
    find_candidates,
    is_generator_table,
    pairing_key,
    read_descriptions_by_key,
)
from realness.workflows.scoring import ModelLike, as_scorer
from realness.workflows.selection_results import (
    Candidate,
    FolderComparison,
    ModelSummary,
    PairedComparison,
    SelectionResult,
    or_low,
)

__all__ = [
    "Candidate",
    "FolderComparison",
    "ModelSummary",
    "PairedComparison",
    "SelectionResult",
    "compare_folders",
    "find_candidates",
    "pairing_key",
    "select_best",
    "select_best_from_scores",
]


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
        descriptions: as for ``RealnessScorer`` (a describer object or name, a ``Path`` to a
            table keyed by image path, a ``{path: text}`` mapping, or texts in
            :func:`find_candidates`' order), or a ``Path`` to a table with ``generator`` (or
            ``model``), a key column (``prompt_id``, ``key`` or ``filename``) and ``description``;
            either overrides the folders' own tables. A ``str`` is never a file name.
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
    candidates = find_candidates(folders, key=key, key_pattern=key_pattern)
    describer = _apply_descriptions(candidates, descriptions, describer)
    check_pairing(candidates, str(folders) if isinstance(folders, (str, os.PathLike)) else "the folders")
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
    summaries.sort(key=lambda s: (-or_low(s.mean), s.model))
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
        descriptions: as for ``RealnessScorer``: a describer object or name, a ``Path`` to a
            table keyed by image path, a ``{path: text}`` mapping, or texts in the order of the
            images (the first folder's, then the second's, each sorted).
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
    candidates = []
    labels = _folder_labels(Path(first), Path(second))
    for folder, label in zip((Path(first), Path(second)), labels):
        files = expand_image_paths([str(folder)])
        if not files:
            raise UsageError(str(folder), "no images in this folder")
        candidates += [Candidate(model=label, prompt_id=str(path), path=path) for path in files]
    describer = _apply_descriptions(candidates, descriptions, describer)
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


def _score(candidates: list[Candidate], model: ModelLike, *, describer: Any, on_error: str, **options: Any) -> None:
    """Score the candidates; ``describer`` writes the missing texts first, so a scorer passed as ``model`` uses them too."""
    scorer = as_scorer(model, **options)
    paths = [str(c.path) for c in candidates]
    texts = [c.description for c in candidates]
    # As in RealnessScorer: an output the describer failed on is skipped, naming why.
    undescribed = {item.index: item.reason for item in fill_missing(describer, paths, paths, texts, on_error=on_error)}
    position = {index: k for k, index in enumerate(i for i in range(len(candidates)) if i not in undescribed)}
    result = scorer([paths[i] for i in position], [texts[i] for i in position], on_error=on_error) if position else None
    wanted = list(position)
    errors = undescribed | ({wanted[item.index]: item.reason for item in result.skipped} if result is not None else {})
    for index, candidate in enumerate(candidates):
        scored = index in position
        candidate.score = float(result.scores[position[index]]) if scored else math.nan
        candidate.description = result.descriptions[position[index]] if scored else None
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


def _apply_descriptions(candidates: list[Candidate], descriptions: Any, describer: Any) -> Any:
    """Give the candidates the texts ``descriptions`` holds; returns the describer that writes the rest.

    ``descriptions`` is read as at every entry point (:func:`~realness.describers.descriptions.resolve_descriptions`,
    the images in :func:`find_candidates`' order), plus the table :func:`select_best` documents: a
    ``Path`` to a table with a generator column and a prompt key, keyed ``generator/key``.
    """
    if isinstance(descriptions, os.PathLike) and is_generator_table(Path(descriptions)):
        table = read_descriptions_by_key(Path(descriptions), with_model=True, required=True)
        for candidate in candidates:
            candidate.description = table.get(f"{candidate.model}/{candidate.prompt_id}", candidate.description)
        return as_describer(describer)
    resolved = resolve_descriptions(descriptions, [str(candidate.path) for candidate in candidates], describer=describer)
    if resolved.match is not None:
        resolved.match.warn()
    for candidate, text in zip(candidates, resolved.texts):
        if text is not None:
            candidate.description = text
    return resolved.describer
