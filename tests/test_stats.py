"""realness.evaluation.stats against hand-computed values, scipy, and planted relationships."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from realness.errors import RealnessError
from realness.evaluation import stats

# pred [1, 2, 3, 4] vs mos [1, 3, 2, 4], worked by hand:
#   SROCC = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60 = 0.8
#   KRCC: 6 pairs, 1 discordant (2,3) -> (5 - 1) / 6 = 2/3
#   PLCC: deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): 4 / sqrt(5 * 5) = 0.8
#   RMSE: differences (0, 1, 1, 0) -> sqrt(2 / 4)
HAND_PRED = [1.0, 2.0, 3.0, 4.0]
HAND_MOS = [1.0, 3.0, 2.0, 4.0]


def test_hand_computed_example():
    assert stats.srocc(HAND_PRED, HAND_MOS) == pytest.approx(0.8)
    assert stats.krcc(HAND_PRED, HAND_MOS) == pytest.approx(2 / 3)
    assert stats.plcc(HAND_PRED, HAND_MOS) == pytest.approx(0.8)
    assert stats.rmse(HAND_PRED, HAND_MOS) == pytest.approx(math.sqrt(0.5))


def test_perfect_and_reversed_monotone_orders():
    mos = np.linspace(-2, 2, 20)
    increasing = np.exp(mos)  # monotone but far from linear
    assert stats.srocc(increasing, mos) == pytest.approx(1.0)
    assert stats.krcc(increasing, mos) == pytest.approx(1.0)
    assert stats.plcc(increasing, mos) < 0.95
    assert stats.srocc(-increasing, mos) == pytest.approx(-1.0)
    assert stats.krcc(-increasing, mos) == pytest.approx(-1.0)
    assert stats.rmse(mos, mos) == 0.0


def test_agrees_with_scipy_on_random_data():
    rng = np.random.default_rng(7)
    mos = rng.normal(size=120)
    pred = 0.6 * mos + rng.normal(size=120)
    pred[::10] = np.round(pred[::10])  # a few ties, where KRCC's tau-b matters
    assert stats.srocc(pred, mos) == pytest.approx(scipy_stats.spearmanr(pred, mos).statistic, abs=1e-12)
    assert stats.krcc(pred, mos) == pytest.approx(scipy_stats.kendalltau(pred, mos).statistic, abs=1e-12)
    assert stats.plcc(pred, mos) == pytest.approx(scipy_stats.pearsonr(pred, mos).statistic, abs=1e-12)
    assert stats.rmse(pred, mos) == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)))


def test_constant_prediction_has_undefined_correlation():
    assert math.isnan(stats.srocc([1.0, 1.0, 1.0, 1.0], HAND_MOS))
    assert math.isnan(stats.plcc([1.0, 1.0, 1.0, 1.0], HAND_MOS))


def test_logistic_fit_recovers_planted_mapping():
    rng = np.random.default_rng(0)
    pred = rng.uniform(-4, 4, size=400)
    planted = (3.0, -1.0, 0.5, 0.8)
    mos = stats.logistic4(pred, *planted) + rng.normal(scale=0.02, size=400)
    fit = stats.logistic_fit(pred, mos)
    assert fit.converged
    b1, b2, b3, b4 = fit.params
    assert (b1, b2, b3, abs(b4)) == pytest.approx(planted, abs=0.05)
    assert stats.plcc_fitted(pred, mos) > 0.999
    assert stats.plcc(pred, mos) < 0.98  # the raw relation is visibly non-linear


def test_logistic_fit_handles_decreasing_relation():
    pred = np.linspace(-3, 3, 60)
    mos = stats.logistic4(pred, 0.0, 5.0, 0.2, 0.7)  # falls from 5 to 0
    fit = stats.logistic_fit(pred, mos)
    assert fit.converged
    np.testing.assert_allclose(fit(pred), mos, atol=1e-3)


def test_failed_fit_falls_back_to_raw_values(monkeypatch):
    def failing_curve_fit(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(stats.optimize, "curve_fit", failing_curve_fit)
    fit = stats.logistic_fit(HAND_PRED, HAND_MOS)
    assert not fit.converged and fit.params is None
    np.testing.assert_array_equal(fit(HAND_PRED), HAND_PRED)
    assert stats.plcc_fitted(HAND_PRED, HAND_MOS) == pytest.approx(0.8)
    results = stats.evaluate(HAND_PRED, HAND_MOS, bootstrap=0)
    assert results["logistic_converged"] is False and results["logistic_params"] is None
    assert results["rmse_fitted"] == pytest.approx(math.sqrt(0.5))


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    rng = np.random.default_rng(3)

    def sample(n):
        mos = rng.normal(size=n)
        return mos + rng.normal(size=n), mos

    small_pred, small_mos = sample(60)
    low, high = stats.bootstrap_ci(small_pred, small_mos, n=500, seed=0)
    assert low < stats.srocc(small_pred, small_mos) < high
    large_pred, large_mos = sample(2000)
    large_low, large_high = stats.bootstrap_ci(large_pred, large_mos, n=500, seed=0)
    assert large_low < stats.srocc(large_pred, large_mos) < large_high
    assert (large_high - large_low) < 0.5 * (high - low)
    # The same seed gives the same interval; a lower level a narrower one.
    assert stats.bootstrap_ci(small_pred, small_mos, n=500, seed=0) == (low, high)
    low80, high80 = stats.bootstrap_ci(small_pred, small_mos, n=500, seed=0, level=0.8)
    assert low < low80 < high80 < high


@pytest.mark.parametrize("metric", [stats.srocc, stats.plcc])
def test_vectorised_bootstrap_matches_per_resample_computation(metric):
    rng = np.random.default_rng(11)
    mos = rng.normal(size=30)
    pred = np.round(mos + rng.normal(size=30), 1)  # ties, which ranking must handle like scipy
    fast = stats.bootstrap_ci(pred, mos, metric=metric, n=400, seed=2)
    slow = stats.bootstrap_ci(pred, mos, metric=lambda p, m: metric(p, m), n=400, seed=2)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_ci_accepts_another_metric():
    rng = np.random.default_rng(5)
    mos = rng.normal(size=80)
    pred = mos + 0.5 * rng.normal(size=80)
    low, high = stats.bootstrap_ci(pred, mos, metric=stats.krcc, n=200)
    assert low < stats.krcc(pred, mos) < high


def test_evaluate_excludes_nan_pairs_and_reports_them():
    rng = np.random.default_rng(1)
    mos = rng.normal(size=50)
    pred = mos + 0.3 * rng.normal(size=50)
    with_gaps = pred.copy()
    with_gaps[[2, 17, 30]] = np.nan
    results = stats.evaluate(with_gaps, mos, bootstrap=200)
    keep = ~np.isnan(with_gaps)
    assert results["n"] == 47 and results["n_excluded"] == 3
    assert results["srocc"] == pytest.approx(scipy_stats.spearmanr(pred[keep], mos[keep]).statistic)
    assert results["plcc"] == pytest.approx(scipy_stats.pearsonr(pred[keep], mos[keep]).statistic)
    assert results["srocc_ci"][0] < results["srocc"] < results["srocc_ci"][1]
    assert results["ci_level"] == 0.95 and results["bootstrap"] == 200
    assert set(results) >= {"krcc", "plcc_fitted", "rmse", "rmse_fitted", "logistic_params", "logistic_converged"}
    assert "srocc_ci" not in stats.evaluate(pred, mos, bootstrap=0)


def test_too_few_valid_pairs_is_a_clear_error():
    with pytest.raises(stats.StatsInputError, match="only 2 of 4"):
        stats.srocc([1.0, np.nan, 2.0, np.inf], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(RealnessError, match="at least 3"):
        stats.evaluate([1.0, 2.0], [1.0, 2.0])


def test_mismatched_inputs_are_rejected():
    with pytest.raises(stats.StatsInputError, match="3 predictions but 4 MOS"):
        stats.plcc([1.0, 2.0, 3.0], HAND_MOS)
    with pytest.raises(stats.StatsInputError, match="1-D"):
        stats.rmse(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci(HAND_PRED, HAND_MOS, level=1.5)
