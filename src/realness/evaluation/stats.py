"""Agreement between predicted scores and mean opinion scores (MOS).

The correlations used in image quality assessment: SROCC and KRCC (rank order), PLCC
(linear, raw and after the VQEG 4-parameter logistic mapping), RMSE, and a bootstrap
confidence interval of SROCC, which matters when a test split is as small as RAISE's 90.

Every function takes ``pred`` and ``mos`` as 1-D sequences of equal length. Pairs where
either value is NaN or infinite (an item a batch skipped) are left out; :func:`evaluate`
reports how many. Fewer than 3 valid pairs raise :class:`StatsInputError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

from realness.errors import StatsInputError

MIN_PAIRS = 3

ArrayLike = Sequence[float] | np.ndarray


def valid_pairs(pred: ArrayLike, mos: ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep the pairs where both the prediction and the MOS are finite.

    Args:
        pred: predicted scores, NaN where an item was skipped.
        mos: mean opinion scores, same length.

    Returns:
        ``(pred, mos, n_excluded)``: float64 arrays of the valid pairs and how many were left out.

    Raises:
        StatsInputError: the inputs are not 1-D of equal length, or fewer than 3 pairs are valid.
    """
    pred_array = np.asarray(pred, dtype=np.float64)
    mos_array = np.asarray(mos, dtype=np.float64)
    if pred_array.ndim != 1 or mos_array.ndim != 1:
        raise StatsInputError(
            f"pred and mos must be 1-D, got shapes {pred_array.shape} and {mos_array.shape}"
        )
    if len(pred_array) != len(mos_array):
        raise StatsInputError(f"{len(pred_array)} predictions but {len(mos_array)} MOS values")
    keep = np.isfinite(pred_array) & np.isfinite(mos_array)
    n_valid = int(keep.sum())
    if n_valid < MIN_PAIRS:
        raise StatsInputError(
            f"only {n_valid} of {len(pred_array)} (prediction, MOS) pairs are finite; "
            f"at least {MIN_PAIRS} are needed for a correlation"
        )
    return pred_array[keep], mos_array[keep], len(pred_array) - n_valid


def _correlation(function: Callable, pred: np.ndarray, mos: np.ndarray) -> float:
    # A constant input has no defined correlation: NaN, without scipy's warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy_stats.ConstantInputWarning)
        return float(function(pred, mos).statistic)


def srocc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Spearman rank-order correlation coefficient.

    Args:
        pred: predicted scores.
        mos: mean opinion scores.

    Returns:
        SROCC in [-1, 1]; NaN when either side is constant.

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    return _correlation(scipy_stats.spearmanr, pred_array, mos_array)


def krcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Kendall rank correlation coefficient (tau-b, which accounts for ties).

    Args:
        pred: predicted scores.
        mos: mean opinion scores.

    Returns:
        KRCC in [-1, 1]; NaN when either side is constant.

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    return _correlation(scipy_stats.kendalltau, pred_array, mos_array)


def plcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Pearson linear correlation coefficient of the raw predictions.

    Args:
        pred: predicted scores.
        mos: mean opinion scores.

    Returns:
        PLCC in [-1, 1]; NaN when either side is constant.

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    return _correlation(scipy_stats.pearsonr, pred_array, mos_array)


def rmse(pred: ArrayLike, mos: ArrayLike) -> float:
    """Root mean squared error, in MOS units (meaningful when both share a scale).

    Args:
        pred: predicted scores.
        mos: mean opinion scores.

    Returns:
        The RMSE.

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    return float(np.sqrt(np.mean((pred_array - mos_array) ** 2)))


def logistic4(x: ArrayLike, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQEG 4-parameter logistic: ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``.

    Args:
        x: predicted scores.
        b1: upper asymptote (lower when the mapping decreases).
        b2: the other asymptote.
        b3: midpoint.
        b4: scale (its sign is ignored).

    Returns:
        The mapped scores, float64.
    """
    scale = max(abs(b4), 1e-12)
    # Clipping keeps exp finite for points far from the midpoint; the curve is flat there.
    exponent = np.clip(-(np.asarray(x, dtype=np.float64) - b3) / scale, -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(exponent)) + b2


def _logistic4_jacobian(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    # Analytic derivatives: finite differences scale their step by the parameter, which
    # stalls the midpoint b3 when it starts at (nearly) zero.
    scale = max(abs(b4), 1e-12)
    g = logistic4(x, 1.0, 0.0, b3, b4)
    slope = (b1 - b2) * g * (1.0 - g)
    return np.column_stack(
        [g, 1.0 - g, -slope / scale, -slope * (x - b3) / scale**2 * np.sign(b4 or 1.0)]
    )


@dataclass(frozen=True)
class LogisticFit:
    """A fitted 4-parameter logistic mapping from predictions to MOS.

    Attributes:
        params: ``(b1, b2, b3, b4)``; None when the fit failed.
        converged: whether the fit succeeded; if not, the mapping is the identity.
    """

    params: tuple[float, float, float, float] | None
    converged: bool

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """Map predictions onto the MOS scale (identity when the fit failed)."""
        if self.params is None:
            return np.asarray(x, dtype=np.float64)
        return logistic4(x, *self.params)


def logistic_fit(pred: ArrayLike, mos: ArrayLike, *, maxfev: int = 20000) -> LogisticFit:
    """Fit the VQEG 4-parameter logistic from predictions to MOS by least squares.

    Starts from the MOS range as asymptotes (in the order of the rank correlation's sign),
    the mean prediction as midpoint and the prediction standard deviation as scale. When
    ``scipy.optimize.curve_fit`` fails or returns non-finite parameters, the identity
    mapping is returned (raw values).

    Args:
        pred: predicted scores.
        mos: mean opinion scores.
        maxfev: the most function evaluations the optimiser may use.

    Returns:
        A :class:`LogisticFit` (callable on predictions).

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    spread = float(np.std(pred_array)) or 1.0
    high, low = float(np.max(mos_array)), float(np.min(mos_array))
    # Start on the right branch: a falling relation needs b1 < b2, or the fit can stall.
    if _correlation(scipy_stats.spearmanr, pred_array, mos_array) < 0:
        high, low = low, high
    initial = [high, low, float(np.mean(pred_array)), spread]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(
                logistic4, pred_array, mos_array, p0=initial, jac=_logistic4_jacobian, maxfev=maxfev
            )
    except (RuntimeError, ValueError):
        return LogisticFit(params=None, converged=False)
    if not np.all(np.isfinite(params)):
        return LogisticFit(params=None, converged=False)
    return LogisticFit(params=tuple(float(value) for value in params), converged=True)


def plcc_fitted(pred: ArrayLike, mos: ArrayLike) -> float:
    """PLCC after mapping the predictions with the 4-parameter logistic fit.

    Args:
        pred: predicted scores.
        mos: mean opinion scores.

    Returns:
        PLCC of the fitted predictions (of the raw ones when the fit failed).

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    fit = logistic_fit(pred_array, mos_array)
    return _correlation(scipy_stats.pearsonr, fit(pred_array), mos_array)


def bootstrap_ci(
    pred: ArrayLike,
    mos: ArrayLike,
    metric: Callable[[np.ndarray, np.ndarray], float] = srocc,
    n: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a metric, resampling (pred, MOS) pairs.

    Args:
        pred: predicted scores.
        mos: mean opinion scores.
        metric: ``metric(pred, mos) -> float``, SROCC by default.
        n: number of bootstrap resamples.
        seed: seed of the resampling, so the interval is reproducible.
        level: coverage of the interval, e.g. 0.95.

    Returns:
        ``(low, high)``; resamples where the metric is undefined (NaN) are ignored.

    Raises:
        StatsInputError: see :func:`valid_pairs`.
        ValueError: ``n`` < 1 or ``level`` outside (0, 1), or no resample gave a finite value.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), not {level}")
    pred_array, mos_array, _ = valid_pairs(pred, mos)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(pred_array), size=(n, len(pred_array)))
    if metric is srocc:
        values = _rowwise_pearson(
            scipy_stats.rankdata(pred_array[draws], axis=1), scipy_stats.rankdata(mos_array[draws], axis=1)
        )
    elif metric is plcc:
        values = _rowwise_pearson(pred_array[draws], mos_array[draws])
    else:
        values = np.array([_resample_value(metric, pred_array[index], mos_array[index]) for index in draws])
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("the metric was undefined (NaN) on every bootstrap resample")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # SROCC and PLCC of thousands of resamples at once (SROCC = Pearson of the ranks);
    # a constant resample divides by zero and gives NaN, which the caller drops.
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))


def _resample_value(metric: Callable, pred: np.ndarray, mos: np.ndarray) -> float:
    # A resample can repeat one item (too few distinct pairs): it simply does not count.
    try:
        return float(metric(pred, mos))
    except StatsInputError:
        return float("nan")


def evaluate(pred: ArrayLike, mos: ArrayLike, bootstrap: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Every statistic at once, as a JSON-ready dict.

    Args:
        pred: predicted scores, NaN for skipped items.
        mos: mean opinion scores.
        bootstrap: bootstrap resamples for the SROCC interval (0 to leave it out).
        seed: seed of the bootstrap.
        level: coverage of the interval.

    Returns:
        A dict with ``n`` (pairs used), ``n_excluded`` (non-finite pairs left out),
        ``srocc``, ``krcc``, ``plcc``, ``plcc_fitted``, ``rmse``, ``rmse_fitted``,
        ``logistic_params`` (``[b1, b2, b3, b4]`` or None), ``logistic_converged``, and
        ``srocc_ci`` (``[low, high]``), ``ci_level`` and ``bootstrap`` when ``bootstrap > 0``.

    Raises:
        StatsInputError: see :func:`valid_pairs`.
    """
    pred_array, mos_array, n_excluded = valid_pairs(pred, mos)
    fit = logistic_fit(pred_array, mos_array)
    fitted = fit(pred_array)
    results = {
        "n": len(pred_array),
        "n_excluded": n_excluded,
        "srocc": srocc(pred_array, mos_array),
        "krcc": krcc(pred_array, mos_array),
        "plcc": plcc(pred_array, mos_array),
        "plcc_fitted": plcc(fitted, mos_array),
        "rmse": rmse(pred_array, mos_array),
        "rmse_fitted": rmse(fitted, mos_array),
        "logistic_params": list(fit.params) if fit.params is not None else None,
        "logistic_converged": fit.converged,
    }
    if bootstrap > 0:
        low, high = bootstrap_ci(pred_array, mos_array, n=bootstrap, seed=seed, level=level)
        results.update({"srocc_ci": [low, high], "ci_level": level, "bootstrap": bootstrap})
    return results


# --- comparing two sets of scores (realness compare) ---------------------------------------

#: Below this p-value a comparison calls a difference significant.
SIGNIFICANCE = 0.05


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def mean_ci(values: ArrayLike, *, n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a mean.

    Args:
        values: The scores (NaN and infinite values are left out).
        n: Bootstrap resamples.
        seed: Seed of the resampling, so the interval is reproducible.
        level: Coverage, e.g. 0.95.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with no finite value, the value itself twice with one.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, array.size, size=(n, array.size))
    return _percentile_interval(array[draws].mean(axis=1), level)


def mean_difference_ci(
    first: ArrayLike, second: ArrayLike, *, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap interval of ``mean(first) - mean(second)`` for two independent samples (each resampled on its own).

    Returns:
        ``(low, high)``, or ``(nan, nan)`` when either sample has no finite value.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means_a = a[rng.integers(0, a.size, size=(n, a.size))].mean(axis=1)
    means_b = b[rng.integers(0, b.size, size=(n, b.size))].mean(axis=1)
    return _percentile_interval(means_a - means_b, level)


def wilcoxon_p(first: ArrayLike, second: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired scores (``first[i]`` with ``second[i]``).

    Pairs with a NaN are left out. Identical pairs carry no sign, so they are split evenly
    between the two sides (``zero_method="zsplit"``) rather than dropped, which would
    overstate a difference seen on few pairs.

    Returns:
        The p-value; 1.0 when every pair is a tie; NaN with fewer than 2 pairs.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return float("nan")
    if np.all(a == b):
        return 1.0
    return float(scipy_stats.wilcoxon(a, b, zero_method="zsplit", alternative="two-sided").pvalue)


def mann_whitney_p(first: ArrayLike, second: ArrayLike) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of two independent samples.

    Returns:
        ``(U of first, p-value)``; NaNs when either sample has no finite value.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    result = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error over several comparisons); NaNs stay NaN."""
    finite = [(p, i) for i, p in enumerate(pvalues) if np.isfinite(p)]
    adjusted = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted
