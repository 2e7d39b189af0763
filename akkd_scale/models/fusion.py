"""Per-pixel fusion of teacher and student ("interactive integration") and per-pixel uncertainty.

Weights are learned per stratum and per output (LST, ε10…ε14) on validation data. For errors e_t
(teacher) and e_s (student) the fused estimate w·ŷ_t + (1 − w)·ŷ_s has squared error minimised by

    w* = (E[e_s²] − E[e_t e_s]) / E[(e_t − e_s)²],  clipped to [0, 1],

the inverse-error-variance weight corrected for correlated errors (it equals
E[e_s²] / (E[e_t²] + E[e_s²]) when errors are uncorrelated). The validation MSE is a convex
quadratic in w, so the clipped minimiser is never worse than either endpoint (teacher alone, w=1;
student alone, w=0) on that stratum's validation data; a final check falls back to the better
endpoint should rounding ever make the fused MSE larger. Strata without validation rows use the
weights fitted on all validation rows.

LST uncertainty (K) of a head in stratum s:

    σ² = RMSE_head,s² + max(0, d² − D_s)

where RMSE_head,s is the head's validation LST RMSE in the stratum, d = LST_teacher − LST_student
for the pixel and D_s the mean of d² over the stratum's validation rows. On typical pixels σ is the
stratum's validation RMSE; where teacher and student disagree more than usual (a sign of inputs
unlike the training data) σ grows with the excess disagreement. The disagreement term needs both
networks, so it is applied to the teacher and fusion heads; student heads report RMSE_head,s only.

Calibration (:func:`fit_calibration`). Errors are not Gaussian and grow with water vapour, so σ is
rescaled per stratum and per water-vapour bin: σ_cal = k·σ with k the 68.27th percentile of |error|/σ
over the calibration rows of that cell, so that |error| < σ_cal holds for 68 % of them. Column water
vapour is not known at retrieval time; its bin comes from an estimate linear in the brightness
temperatures, their pairwise differences, the squared differences and BT13 × differences
(:func:`cwv_features`, least squares on the calibration rows; the split-window difference alone is
dominated by emissivity contrast). Cells with fewer than ``min_rows`` rows use the stratum's factor,
then the head's.
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError

FUSION_METHOD = "per-stratum minimum-MSE weight (error covariance), clipped to [0, 1], best-endpoint fallback"
CALIBRATION_QUANTILE = 0.6827
CALIBRATION_METHOD = ("sigma scaled per stratum and estimated-water-vapour bin by the 68.27th percentile of "
                      "|error|/sigma on calibration rows")
#: Bin edges (g cm-2) of the estimated column water vapour used by the calibration.
CWV_EDGES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
_PAIRS = [(i, j) for i in range(5) for j in range(i + 1, 5)]
N_CWV_FEATURES = 1 + 5 + 3 * len(_PAIRS)


def _teacher_weight(e_t: np.ndarray, e_s: np.ndarray) -> np.ndarray:
    """Minimum-MSE teacher weight per column for error arrays (n, k); never worse than w=0 or w=1."""
    mse_t = np.mean(e_t ** 2, axis=0)
    mse_s = np.mean(e_s ** 2, axis=0)
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
            raise ParameterError("fit_fusion", f"no {head!r} predictions", variable="predictions",
                                 expected="'teacher' and 'student' heads")
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
    return {"method": FUSION_METHOD,
            "teacher_weight": [[float(v) for v in w] for w in weights],
            "validation_rows": counts,
            "lst_rmse": rmse,
            "lst_disagreement_ms": disagreement}


def fuse(pred_teacher: np.ndarray, pred_student: np.ndarray, strata: np.ndarray, fusion: dict) -> np.ndarray:
    """Fused (N, 6) predictions; rows with stratum −1 (non-finite input) come back NaN."""
    weights = np.asarray(fusion["teacher_weight"], dtype=np.float32)
    valid = strata >= 0
    w = np.where(valid[:, None], weights[np.where(valid, strata, 0)], np.nan).astype(np.float32)
    return w * pred_teacher + (1 - w) * pred_student


def cwv_features(bt) -> np.ndarray:
    """Features (N, N_CWV_FEATURES) of the water-vapour estimate from brightness temperatures (N, 5) in K."""
    bt = np.asarray(bt, np.float64)
    diff = np.column_stack([bt[:, i] - bt[:, j] for i, j in _PAIRS])
    return np.column_stack([np.ones(len(bt)), bt - 280.0, diff, diff ** 2, (bt[:, 3:4] - 280.0) * diff])


def moisture_bin(bt, calibration: dict) -> np.ndarray:
    """Water-vapour bin (int) of each row of brightness temperatures (N, 5) under a fitted calibration."""
    estimate = cwv_features(bt) @ np.asarray(calibration["cwv_coefficients"], np.float64)
    return np.searchsorted(np.asarray(calibration["edges"], np.float64), estimate, side="right")


def fit_calibration(lst_true, lst_pred: dict[str, np.ndarray], sigma: dict[str, np.ndarray], strata: np.ndarray,
                    n_strata: int, bt, column_water_vapour, *, edges=CWV_EDGES, min_rows: int = 30,
                    coefficients=None) -> dict:
    """Calibration factors (module docstring) from calibration rows: truth, per-head LST, uncalibrated σ,
    local-model index, brightness temperatures (N, 5) and the true column water vapour (g cm⁻²).
    ``coefficients``: an existing water-vapour estimate to keep (else fitted here)."""
    if coefficients is None:
        coefficients, *_ = np.linalg.lstsq(cwv_features(bt), np.asarray(column_water_vapour, np.float64), rcond=None)
    coefficients = np.asarray(coefficients, np.float64)
    calibration = {"method": CALIBRATION_METHOD, "quantile": CALIBRATION_QUANTILE,
                   "moisture": "column water vapour (g cm-2) estimated from BT10-14: least squares on BT - 280 K, "
                               "pairwise BT differences, their squares and (BT13 - 280 K) x differences",
                   "cwv_coefficients": coefficients.tolist(), "edges": [float(e) for e in edges], "factor": {}}
    bins = moisture_bin(bt, calibration)
    n_bins = len(edges) + 1
    for head, pred in lst_pred.items():
        ratio = np.abs(np.asarray(pred, np.float64) - lst_true) / np.asarray(sigma[head], np.float64)
        ok = np.isfinite(ratio)
        overall = float(np.quantile(ratio[ok], CALIBRATION_QUANTILE)) if ok.any() else 1.0
        table = []
        for s in range(n_strata):
            in_s = ok & (strata == s)
            own = float(np.quantile(ratio[in_s], CALIBRATION_QUANTILE)) if in_s.sum() >= min_rows else overall
            row = []
            for b in range(n_bins):
                cell = in_s & (bins == b)
                row.append(float(np.quantile(ratio[cell], CALIBRATION_QUANTILE)) if cell.sum() >= min_rows else own)
            table.append(row)
        calibration["factor"][head] = table
    return calibration


def lst_uncertainty(head: str, strata: np.ndarray, fusion: dict, lst_teacher=None, lst_student=None,
                    moisture=None) -> np.ndarray:
    """Per-pixel LST uncertainty (K) of ``head`` (see module docstring); NaN where stratum is −1.

    With a ``calibration`` in ``fusion`` and the rows' water-vapour bins ``moisture`` (:func:`moisture_bin`,
    computed once for all heads) given, σ is calibrated."""
    base_name = head if head in fusion["lst_rmse"] else "student"
    rmse = np.asarray(fusion["lst_rmse"][base_name], dtype=np.float64)
    valid = strata >= 0
    index = np.where(valid, strata, 0)
    variance = rmse[index] ** 2
    if head in ("teacher", "fusion"):
        if lst_teacher is None or lst_student is None:
            raise ParameterError("lst_uncertainty", f"head {head!r} needs teacher and student LST",
                                 variable="lst_teacher", expected="both arrays")
        d2 = (np.asarray(lst_teacher, np.float64) - np.asarray(lst_student, np.float64)) ** 2
        variance = variance + np.maximum(0.0, d2 - np.asarray(fusion["lst_disagreement_ms"])[index])
    sigma = np.sqrt(variance)
    calibration = fusion.get("calibration")
    if calibration is not None and moisture is not None:
        factor = np.asarray(calibration["factor"][head], np.float64)
        sigma = sigma * factor[index, np.clip(moisture, 0, factor.shape[1] - 1)]
    return np.where(valid, sigma, np.nan).astype(np.float32)
