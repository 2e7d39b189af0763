"""Per-pixel fusion of teacher and student ("interactive integration") and per-pixel uncertainty, as
retrieval applies them from a bundle's ``fusion`` entry (fitted by ``akkd_scale.training.fusion_fit``).

The fused estimate is w·ŷ_t + (1 − w)·ŷ_s with the teacher weight w of the pixel's stratum (local
model) and output (LST, ε10…ε14).

Rules entries. A class assigned by the NDVI/BT rules is wrong for part of the pixels, so its class student is
worse there than on pixels whose class comes from a map; bundles with ``rules_offset`` carry one more row of
every fusion table per class (row ``rules_offset`` + class), fitted on calibration rows classed by the rules,
and pixels whose class came from the rules use it (:func:`fusion_entries`). Older bundles use the class row.

LST uncertainty (K) of a head in stratum s:

    σ² = RMSE_head,s² + max(0, d² − D_s)

where RMSE_head,s is the head's validation LST RMSE in the stratum, d = LST_teacher − LST_student
for the pixel and D_s the mean of d² over the stratum's validation rows. On typical pixels σ is the
stratum's validation RMSE; where teacher and student disagree more than usual (a sign of inputs
unlike the training data) σ grows with the excess disagreement. The disagreement term needs both
networks, so it is applied to the teacher and fusion heads; student heads report RMSE_head,s only.

Calibration. With a ``calibration`` entry, σ is multiplied by the factor k of the pixel's stratum and
water-vapour bin (σ_cal = k·σ, k fitted so that |error| < σ_cal holds for 68 % of the calibration rows).
Without an atmosphere input column water vapour is not known at retrieval time; its bin comes from an estimate
linear in the brightness temperatures, their pairwise differences, the squared differences and BT13 × differences
(:func:`cwv_features`; the split-window difference alone is dominated by emissivity contrast). Calibrations
fitted with ``given_cwv_input`` bin pixels that have the reanalysis column water vapour by it instead; those with
``night_input`` have separate bins for pixels without NDVI (night).
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

_PAIRS = [(i, j) for i in range(5) for j in range(i + 1, 5)]
N_CWV_FEATURES = 1 + 5 + 3 * len(_PAIRS)


#: ``fusion`` key: the first row of the rules entries (= the number of local models); absent in older bundles.
RULES_OFFSET_KEY = "rules_offset"


def fusion_entries(local_index: np.ndarray, from_rules, fusion: dict) -> np.ndarray:
    """Row of the fusion tables for each pixel: its local model's, or for a class assigned by the rules
    (``from_rules`` True, local index a class) the class's rules row when the bundle has them (module
    docstring); −1 stays −1."""
    local_index = np.asarray(local_index)
    offset = fusion.get(RULES_OFFSET_KEY)
    if offset is None or from_rules is None:
        return local_index
    n_classes = len(fusion["teacher_weight"]) - int(offset)
    rules = np.broadcast_to(np.asarray(from_rules, bool), local_index.shape)
    rules = rules & (local_index >= 0) & (local_index < n_classes)
    return np.where(rules, int(offset) + local_index, local_index).astype(local_index.dtype)


def student_of(entries: np.ndarray, fusion: dict) -> np.ndarray:
    """The local model (student) of each fusion-table row in ``entries``: a rules row's class."""
    entries = np.asarray(entries)
    offset = fusion.get(RULES_OFFSET_KEY)
    if offset is None:
        return entries
    return np.where(entries >= int(offset), entries - int(offset), entries).astype(entries.dtype)


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
    return np.column_stack([np.ones(len(bt)), bt - 280.0, diff, diff**2, (bt[:, 3:4] - 280.0) * diff])


#: ``fusion.calibration`` key: the input name whose value (where given) replaces the BT estimate in the bins.
GIVEN_CWV_KEY = "given_cwv_input"
#: ``fusion.calibration`` key: the input (NDVI) whose missing value marks a night row; calibrations with it have a
#: second set of water-vapour bins (factor columns n_bins … 2·n_bins − 1) for those rows.
NIGHT_INPUT_KEY = "night_input"


def n_calibration_bins(calibration: dict) -> int:
    """Columns of the calibration's factor tables: water-vapour bins, twice with day/night bins."""
    return (len(calibration["edges"]) + 1) * (2 if calibration.get(NIGHT_INPUT_KEY) else 1)


def moisture_bin(bt, calibration: dict, given_cwv=None, night=None) -> np.ndarray:
    """Calibration bin (int) of each row of brightness temperatures (N, 5) under a fitted calibration.

    With a calibration fitted on given water vapour (``given_cwv_input``) and ``given_cwv`` (N,) — the
    reanalysis input, NaN where missing — rows that have it are binned by it, the others by the estimate.
    With day/night bins (``night_input``) and ``night`` (N,) bool — rows without NDVI — night rows take the
    second set of bins: a network without NDVI errs more, so one factor for both under-covers the night."""
    estimate = cwv_features(bt) @ np.asarray(calibration["cwv_coefficients"], np.float64)
    if calibration.get(GIVEN_CWV_KEY) and given_cwv is not None:
        given_cwv = np.asarray(given_cwv, np.float64)
        estimate = np.where(np.isfinite(given_cwv), given_cwv, estimate)
    bins = np.searchsorted(np.asarray(calibration["edges"], np.float64), estimate, side="right")
    if calibration.get(NIGHT_INPUT_KEY) and night is not None:
        bins = bins + (len(calibration["edges"]) + 1) * np.asarray(night, bool)
    return bins


def lst_uncertainty(
    head: str, strata: np.ndarray, fusion: dict, lst_teacher=None, lst_student=None, moisture=None
) -> np.ndarray:
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
            raise ParameterError(
                "lst_uncertainty",
                f"head {head!r} needs teacher and student LST",
                variable="lst_teacher",
                expected="both arrays",
            )
        d2 = (np.asarray(lst_teacher, np.float64) - np.asarray(lst_student, np.float64)) ** 2
        variance = variance + np.maximum(0.0, d2 - np.asarray(fusion["lst_disagreement_ms"])[index])
    sigma = np.sqrt(variance)
    calibration = fusion.get("calibration")
    if calibration is not None and moisture is not None:
        factor = np.asarray(calibration["factor"][head], np.float64)
        sigma = sigma * factor[index, np.clip(moisture, 0, factor.shape[1] - 1)]
    return np.where(valid, sigma, np.nan).astype(np.float32)
