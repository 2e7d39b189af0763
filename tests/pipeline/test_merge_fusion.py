"""``adapt``'s merge of the refitted fusion into the input bundle's: only the adapted classes' rows (and their
rules entries) change, and an input bundle calibrated without day/night bins gets them without changing its σ."""

from __future__ import annotations

from akkd_scale.models.fusion import NIGHT_INPUT_KEY, RULES_OFFSET_KEY
from akkd_scale.workflows.adapt import merge_fusion

N_LOCAL, N_CLASSES, HEADS = 4, 2, ("fusion", "teacher")


def _fusion(value: float, rules: bool, night: bool) -> dict:
    rows = N_LOCAL + (N_CLASSES if rules else 0)
    bins = 3 * (2 if night else 1)
    fusion = {
        "teacher_weight": [[value + r] * 6 for r in range(rows)],
        "lst_disagreement_ms": [value + r for r in range(rows)],
        "lst_rmse": {h: [value + r for r in range(rows)] for h in HEADS},
        "calibration": {"factor": {h: [[value + r + b / 10 for b in range(bins)] for r in range(rows)] for h in HEADS}},
    }
    if rules:
        fusion[RULES_OFFSET_KEY] = N_LOCAL
    if night:
        fusion["calibration"][NIGHT_INPUT_KEY] = "ndvi"
    return fusion


def test_adapted_class_and_its_rules_entry_are_taken():
    previous, refitted = _fusion(0.0, True, True), _fusion(100.0, True, True)
    merged = merge_fusion(previous, refitted, [1])
    assert merged["adapted_rows"] == [1, N_LOCAL + 1]
    for r in range(N_LOCAL + N_CLASSES):
        source = refitted if r in (1, N_LOCAL + 1) else previous
        assert merged["teacher_weight"][r] == source["teacher_weight"][r], r
        assert merged["calibration"]["factor"]["fusion"][r] == source["calibration"]["factor"]["fusion"][r], r


def test_an_input_bundle_without_day_night_bins_keeps_its_factors_for_both():
    previous, refitted = _fusion(0.0, False, False), _fusion(100.0, True, True)
    merged = merge_fusion(previous, refitted, [0])
    assert merged["adapted_rows"] == [0]  # the input bundle has no rules entries: none are added
    assert RULES_OFFSET_KEY not in merged and len(merged["teacher_weight"]) == N_LOCAL
    assert merged["calibration"][NIGHT_INPUT_KEY] == "ndvi"
    kept = previous["calibration"]["factor"]["teacher"][2]
    assert merged["calibration"]["factor"]["teacher"][2] == kept + kept  # day bins = night bins = the old ones
    assert merged["calibration"]["factor"]["teacher"][0] == refitted["calibration"]["factor"]["teacher"][0]
