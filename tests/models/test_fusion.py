"""Fusion weights: never worse than the better of teacher and student on each stratum's validation data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from akkd_scale.errors import ParameterError
from akkd_scale.models.fusion import fuse, lst_uncertainty
from akkd_scale.training.fusion_fit import fit_fusion


def _case(rng, n, teacher_sd, student_sd, correlation, student_bias=0.0):
    """Truth and correlated teacher/student errors (6 outputs)."""
    y = np.column_stack([rng.normal(300, 10, n), rng.uniform(0.9, 1.0, (n, 5))])
    common = rng.normal(size=(n, 6))
    e_t = teacher_sd * (np.sqrt(correlation) * common + np.sqrt(1 - correlation) * rng.normal(size=(n, 6)))
    e_s = student_sd * (np.sqrt(correlation) * common + np.sqrt(1 - correlation) * rng.normal(size=(n, 6)))
    return y, y + e_t, y + e_s + student_bias


@pytest.mark.parametrize("seed", range(5))
def test_fused_never_worse_than_better_model_per_stratum(seed):
    rng = np.random.default_rng(seed)
    cases = [
        _case(rng, 300, 1.0, 1.0, 0.0),
        _case(rng, 300, 0.5, 2.0, 0.9),  # highly correlated
        _case(rng, 300, 2.0, 0.4, 0.95),
        _case(rng, 200, 1.0, 1.2, 0.3, 0.5),
        _case(rng, 5, 1, 1, 0.5),
    ]
    y = np.concatenate([c[0] for c in cases])
    teacher = np.concatenate([c[1] for c in cases])
    student = np.concatenate([c[2] for c in cases])
    strata = np.concatenate([np.full(len(c[0]), s) for s, c in enumerate(cases)])
    fusion = fit_fusion(y, {"teacher": teacher, "student": student}, strata, len(cases) + 1)
    json.dumps(fusion, allow_nan=False)
    fused = fuse(teacher.astype(np.float32), student.astype(np.float32), strata, fusion)
    weights = np.asarray(fusion["teacher_weight"])
    assert weights.shape == (len(cases) + 1, 6) and np.all((weights >= 0) & (weights <= 1))
    for s in range(len(cases)):
        rows = strata == s
        mse = lambda p: np.mean((p[rows] - y[rows]) ** 2, axis=0)  # noqa: E731
        assert np.all(mse(fused) <= np.minimum(mse(teacher), mse(student)) * (1 + 1e-5) + 1e-12)
    # equal, independent errors: weights near 1/2; correlated, unequal: nearly all on the better model
    assert np.all(np.abs(weights[0] - 0.5) < 0.15)
    assert np.all(weights[1] > 0.9) and np.all(weights[2] < 0.1)
    assert fusion["validation_rows"][-1] == 0  # empty stratum falls back to the global weights
    assert fusion["lst_rmse"]["fusion"][1] <= fusion["lst_rmse"]["teacher"][1] + 1e-9


def test_fuse_nan_rows_and_missing_heads():
    rng = np.random.default_rng(1)
    y, t, s = _case(rng, 100, 1.0, 1.0, 0.2)
    strata = np.zeros(100, dtype=int)
    fusion = fit_fusion(y, {"teacher": t, "student": s}, strata, 1)
    strata[:3] = -1
    fused = fuse(t, s, strata, fusion)
    assert np.all(np.isnan(fused[:3])) and np.all(np.isfinite(fused[3:]))
    with pytest.raises(ParameterError, match="predictions: no 'student' predictions"):
        fit_fusion(y, {"teacher": t}, strata, 1)


def test_uncertainty_grows_with_excess_disagreement():
    fusion = {
        "lst_rmse": {"teacher": [1.0, 2.0], "student": [1.5, 2.5], "fusion": [0.8, 1.9]},
        "lst_disagreement_ms": [1.0, 4.0],
    }
    strata = np.array([0, 0, 1, -1])
    lst_t = np.array([300.0, 300.0, 300.0, np.nan])
    lst_s = np.array([300.5, 303.0, 301.0, np.nan])
    sigma = lst_uncertainty("fusion", strata, fusion, lst_t, lst_s)
    np.testing.assert_allclose(sigma[:3], [0.8, np.sqrt(0.64 + 9.0 - 1.0), 1.9], rtol=1e-6)
    assert np.isnan(sigma[3])
    np.testing.assert_allclose(lst_uncertainty("student", strata, fusion)[:3], [1.5, 1.5, 2.5])
    with pytest.raises(ParameterError):
        lst_uncertainty("teacher", strata, fusion)


def test_calibration_gives_68_percent_in_every_stratum_and_water_vapour_bin():
    """Errors that grow with water vapour and differ per stratum, σ_raw constant: after calibration |error| < σ
    for 68 % of fresh rows in every (stratum, water-vapour bin), within sampling noise; the water-vapour
    estimate is the least-squares fit on the BT features; the factor equals the hand-computed percentile."""
    from akkd_scale.models.fusion import cwv_features, moisture_bin
    from akkd_scale.training.fusion_fit import CALIBRATION_QUANTILE, fit_calibration

    rng = np.random.default_rng(0)

    def rows(n):
        strata = rng.integers(0, 3, n)
        cwv = rng.uniform(0.0, 5.0, n)
        # split-window-like signal: BT13 - BT14 grows with water vapour, other bands add noise
        bt = 290.0 + rng.normal(0, 5, (n, 1)) + rng.normal(0, 0.1, (n, 5))
        bt[:, 4] -= 0.6 * cwv
        error = rng.standard_t(4, n) * (0.3 + 0.3 * cwv) * (1.0 + strata)  # heavy tails, heteroscedastic
        return strata, bt, cwv, error

    strata, bt, cwv, error = rows(40_000)
    sigma = np.full(error.shape, 0.7)
    calibration = fit_calibration(
        np.zeros_like(error), {"fusion": error}, {"fusion": sigma}, strata, 3, bt, cwv, edges=(1.0, 2.0, 3.0, 4.0)
    )
    coefficients, *_ = np.linalg.lstsq(cwv_features(bt), cwv, rcond=None)
    np.testing.assert_allclose(calibration["cwv_coefficients"], coefficients)
    bins = moisture_bin(bt, calibration)
    assert np.mean(bins == np.searchsorted([1.0, 2.0, 3.0, 4.0], cwv, side="right")) > 0.8
    factor = np.asarray(calibration["factor"]["fusion"])
    cell = (strata == 1) & (bins == 2)
    assert factor[1, 2] == pytest.approx(np.quantile(np.abs(error[cell]) / 0.7, CALIBRATION_QUANTILE))
    fusion = {"lst_rmse": {"fusion": [0.7] * 3}, "lst_disagreement_ms": [0.0] * 3, "calibration": calibration}
    strata, bt, cwv, error = rows(40_000)
    lst = np.full(error.shape, 300.0)
    calibrated = lst_uncertainty("fusion", strata, fusion, lst, lst, moisture_bin(bt, calibration))
    plain = lst_uncertainty("fusion", strata, {k: v for k, v in fusion.items() if k != "calibration"}, lst, lst)
    assert np.allclose(plain, 0.7)
    bins = moisture_bin(bt, calibration)
    for s in range(3):
        for b in range(5):
            own = (strata == s) & (bins == b)
            assert abs(np.mean(np.abs(error[own]) < calibrated[own]) - 0.6827) < 0.05, (s, b)  # the target: 68 ± 5 %
