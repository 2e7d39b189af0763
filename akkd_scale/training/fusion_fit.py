"""Fitting the fusion of teacher and student and the calibration of its uncertainty (applied at run time by
``akkd_scale.models.fusion``).

Weights are learned per stratum and per output (LST, ε10…ε14) on validation data. For errors e_t
(teacher) and e_s (student) the fused estimate w·ŷ_t + (1 − w)·ŷ_s has squared error minimised by

    w* = (E[e_s²] − E[e_t e_s]) / E[(e_t − e_s)²],  clipped to [0, 1],

the inverse-error-variance weight corrected for correlated errors (it equals
E[e_s²] / (E[e_t²] + E[e_s²]) when errors are uncorrelated). The validation MSE is a convex
quadratic in w, so the clipped minimiser is never worse than either endpoint (teacher alone, w=1;
student alone, w=0) on that stratum's validation data; a final check falls back to the better
endpoint should rounding ever make the fused MSE larger. Strata without validation rows use the
weights fitted on all validation rows. With the weights go, per stratum, each head's validation LST
RMSE and the mean squared teacher–student disagreement D_s, the terms of the run-time σ.

Calibration (:func:`fit_calibration`). Errors are not Gaussian, grow with water vapour and are larger without
NDVI (night), so σ is rescaled per stratum, per water-vapour bin and — for bundles that take NDVI — separately
for rows with and without it: σ_cal = k·σ with k the 68.27th percentile of |error|/σ
over the calibration rows of that cell, so that |error| < σ_cal holds for 68 % of them. The water-vapour
estimate (``models.fusion.cwv_features``) is fitted by least squares on the calibration rows' true column
water vapour. Cells with fewer than ``min_rows`` rows use the stratum's day or night factor, then the
stratum's, then the head's.

No TensorFlow here: the fits take predictions, not networks.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..models.fusion import GIVEN_CWV_KEY, NIGHT_INPUT_KEY, cwv_features, moisture_bin, n_calibration_bins

FUSION_METHOD = "per-stratum minimum-MSE weight (error covariance), clipped to [0, 1], best-endpoint fallback"
CALIBRATION_QUANTILE = 0.6827
CALIBRATION_METHOD = (
    "sigma scaled per stratum and estimated-water-vapour bin by the 68.27th percentile of "
    "|error|/sigma on calibration rows"
)
#: Bin edges (g cm-2) of the estimated column water vapour used by the calibration.
CWV_EDGES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def _teacher_weight(e_t: np.ndarray, e_s: np.ndarray) -> np.ndarray:
    """Minimum-MSE teacher weight per column for error arrays (n, k); never worse than w=0 or w=1."""
    mse_t = np.mean(e_t**2, axis=0)
    mse_s = np.mean(e_s**2, axis=0)
    diff = np.mean((e_t - e_s) ** 2, axis=0)
    cross = np.mean(e_t * e_s, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(diff > 0, (mse_s - cross) / diff, 0.5)
    w = np.clip(w, 0.0, 1.0)
    fused = np.mean((w * e_t + (1 - w) * e_s) ** 2, axis=0)
    best_endpoint = np.where(mse_t <= mse_s, 1.0, 0.0)
    return np.where(fused <= np.minimum(mse_t, mse_s), w, best_endpoint)


def fit_fusion(y_val: np.ndarray, predictions: dict[str, np.ndarray], strata: np.ndarray, n_strata: int) -> dict:
    """Fusion weights, per-head LST RMSE and disagreement per stratum from validation data.

    ``y_val`` (N, 6) truths (LST, ε10..ε14); ``predictions`` maps head name → (N, 6) and must contain
    ``teacher`` and ``student``; ``strata`` (N,) stratum indices. Returns a JSON-serialisable dict.
    """
    for head in ("teacher", "student"):
        if head not in predictions:
            raise ParameterError(
                "fit_fusion",
                f"no {head!r} predictions",
                variable="predictions",
                expected="'teacher' and 'student' heads",
            )
    y_val = np.asarray(y_val, dtype=np.float64)
    preds = {h: np.asarray(p, dtype=np.float64) for h, p in predictions.items()}
    e_t, e_s = preds["teacher"] - y_val, preds["student"] - y_val
    global_w = _teacher_weight(e_t, e_s)
    weights, counts, disagreement = [], [], []
    rmse = {h: [] for h in list(preds) + ["fusion"]}
    for s in range(n_strata):
        rows = strata == s
        counts.append(int(rows.sum()))
        w = _teacher_weight(e_t[rows], e_s[rows]) if rows.any() else global_w
        weights.append(w)
        sel = rows if rows.any() else slice(None)
        fused = w * preds["teacher"] + (1 - w) * preds["student"]
        for head, pred in list(preds.items()) + [("fusion", fused)]:
            rmse[head].append(float(np.sqrt(np.mean((pred[sel, 0] - y_val[sel, 0]) ** 2))))
        disagreement.append(float(np.mean((preds["teacher"][sel, 0] - preds["student"][sel, 0]) ** 2)))
    return {
        "method": FUSION_METHOD,
        "teacher_weight": [[float(v) for v in w] for w in weights],
        "validation_rows": counts,
        "lst_rmse": rmse,
        "lst_disagreement_ms": disagreement,
    }


def fit_calibration(
    lst_true,
    lst_pred: dict[str, np.ndarray],
    sigma: dict[str, np.ndarray],
    strata: np.ndarray,
    n_strata: int,
    bt,
    column_water_vapour,
    *,
    edges=CWV_EDGES,
    min_rows: int = 30,
    coefficients=None,
    given_cwv=None,
    given_input: str | None = None,
    night=None,
    night_input: str | None = None,
) -> dict:
    """Calibration factors (module docstring) from calibration rows: truth, per-head LST, uncalibrated σ,
    local-model index, brightness temperatures (N, 5) and the true column water vapour (g cm⁻²).
    ``coefficients``: an existing water-vapour estimate to keep (else fitted here). ``given_cwv`` (N,): the
    water vapour the networks were given (reanalysis-like, NaN where missing) under the input name
    ``given_input``: rows that have it are binned by it, as retrieval will (``models.fusion.moisture_bin``).
    ``night`` (N,) bool: rows without the input ``night_input`` (NDVI) get their own bins (cells under
    ``min_rows`` fall back to the stratum's day or night factor, then the stratum's, then the head's)."""
    if coefficients is None:
        coefficients, *_ = np.linalg.lstsq(cwv_features(bt), np.asarray(column_water_vapour, np.float64), rcond=None)
    coefficients = np.asarray(coefficients, np.float64)
    calibration = {
        "method": CALIBRATION_METHOD,
        "quantile": CALIBRATION_QUANTILE,
        "moisture": "column water vapour (g cm-2) estimated from BT10-14: least squares on BT - 280 K, "
        "pairwise BT differences, their squares and (BT13 - 280 K) x differences",
        "cwv_coefficients": coefficients.tolist(),
        "edges": [float(e) for e in edges],
        "factor": {},
    }
    if given_input is not None and given_cwv is not None:
        calibration[GIVEN_CWV_KEY] = given_input
        calibration["moisture"] += f"; the given {given_input} input instead where a pixel has it"
    if night_input is not None and night is not None:
        calibration[NIGHT_INPUT_KEY] = night_input
        calibration["moisture"] += f"; separate bins for rows without {night_input} (night)"
    bins = moisture_bin(bt, calibration, given_cwv, night)
    n_moisture = len(edges) + 1
    halves = n_calibration_bins(calibration) // n_moisture

    def factor(ratio: np.ndarray, rows: np.ndarray, fallback: float) -> float:
        return float(np.quantile(ratio[rows], CALIBRATION_QUANTILE)) if rows.sum() >= min_rows else fallback

    for head, pred in lst_pred.items():
        ratio = np.abs(np.asarray(pred, np.float64) - lst_true) / np.asarray(sigma[head], np.float64)
        ok = np.isfinite(ratio)
        overall = float(np.quantile(ratio[ok], CALIBRATION_QUANTILE)) if ok.any() else 1.0
        table = []
        for s in range(n_strata):
            in_s = ok & (strata == s)
            own = factor(ratio, in_s, overall)
            row = []
            for half in range(halves):
                in_half = in_s & (bins // n_moisture == half)
                half_own = factor(ratio, in_half, own)
                row += [factor(ratio, in_half & (bins == half * n_moisture + b), half_own) for b in range(n_moisture)]
            table.append(row)
        calibration["factor"][head] = table
    return calibration
