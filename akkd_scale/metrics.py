"""The one set of accuracy metrics used by evaluation, distillation and the demo report."""

from __future__ import annotations

import math

import numpy as np

from .errors import ParameterError


def metrics(truth, pred) -> dict[str, float]:
    """PCC, MAE, RMSE and bias (mean of pred − truth) over pairs where both are finite, plus ``n``.

    PCC is NaN with fewer than two pairs or a constant side; everything is NaN with no pairs.
    """
    truth = np.asarray(truth, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if truth.shape != pred.shape:
        raise ParameterError(
            "metrics",
            f"truth has {truth.size} values, prediction {pred.size}",
            variable="pred",
            expected="as many values as truth",
        )
    keep = np.isfinite(truth) & np.isfinite(pred)
    t, p = truth[keep], pred[keep]
    n = int(keep.sum())
    if n == 0:
        return {"n": 0, "pcc": math.nan, "mae": math.nan, "rmse": math.nan, "bias": math.nan}
    error = p - t
    st, sp = t.std(), p.std()
    pcc = float(np.mean((t - t.mean()) * (p - p.mean())) / (st * sp)) if n > 1 and st > 0 and sp > 0 else math.nan
    return {
        "n": n,
        "pcc": pcc,
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
    }
