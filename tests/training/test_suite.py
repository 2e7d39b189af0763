"""train_suite end to end (the tiny bundle): strata students, fusion never worse per stratum, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from akkd_scale.conventions import INPUT_NAMES, LAND_COVER_CLASSES, OPTIONAL_INPUTS
from akkd_scale.errors import InputError
from akkd_scale.simulate.synthetic import synthetic_training_set


def test_manifest_metrics_and_fusion(trained_bundle_path):
    manifest = json.loads((trained_bundle_path / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["inputs"]["names"] == list(INPUT_NAMES) + [
        "ndvi",
        "column_water_vapour",
        "air_temperature",
    ]
    assert manifest["inputs"]["missing_values"] == {name: OPTIONAL_INPUTS[name][2] for name in OPTIONAL_INPUTS}
    assert manifest["fusion"]["calibration"]["given_cwv_input"] == "column_water_vapour"
    # σ factors per water-vapour bin, by day (NDVI given) and at night: 2 × 7 columns
    assert manifest["fusion"]["calibration"]["night_input"] == "ndvi"
    assert {len(row) for row in manifest["fusion"]["calibration"]["factor"]["fusion"]} == {14}
    assert manifest["distillation"]["atmosphere_missing_fraction"] == 0.3
    strata = manifest["models"]["students"]["strata"]
    assert [entry["name"] for entry in strata] == ["moisture0_contrast0_view0", "moisture1_contrast0_view0"]
    assert all(entry["kd"] and entry["baseline"] for entry in strata)
    classes = manifest["models"]["students"]["land_cover"]
    assert [entry["name"] for entry in classes] == list(LAND_COVER_CLASSES)
    trained = {entry["name"] for entry in classes if entry["kd"]}
    assert trained == {"tree_cover", "sparse_vegetation_bare_soil", "bare_rock_desert"}  # the synthetic classes
    by_class = manifest["distillation"]["class_students"]["by_class"]
    for name in trained:  # alpha chosen on validation: the smallest validation LST MAE of the grid
        maes = by_class[name]["validation_lst_mae_by_alpha"]
        assert str(by_class[name]["alpha"]) == min(maes, key=maes.get) and set(maes) == {"0.25", "0.75"}
    weights = np.asarray(manifest["fusion"]["teacher_weight"])
    n_local = len(LAND_COVER_CLASSES) + 2
    # one row per class, per stratum, then the classes' rules entries (classes assigned without a map)
    assert manifest["fusion"]["rules_offset"] == n_local
    assert weights.shape == (n_local + len(LAND_COVER_CLASSES), 6) and np.all((weights >= 0) & (weights <= 1))
    by_local = manifest["metrics"]["calibration_by_local_model"]
    rules = {name for name in by_local if name.endswith(" (rules)")}
    assert set(by_local) - rules == {entry["name"] for entry in strata} | trained
    assert rules and rules <= {f"{name} (rules)" for name in LAND_COVER_CLASSES}
    for metrics in by_local.values():  # fusion never worse than teacher or student on its fitting rows
        best = min(metrics["teacher"]["lst_rmse"], metrics["student"]["lst_rmse"])
        assert metrics["fusion"]["lst_rmse"] <= best * (1 + 1e-5)
    teacher = manifest["models"]["teacher"]
    assert teacher["hidden_units"] == [32, 32] and teacher["rebuild_max_abs_error_z"] < 1e-3
    n_classed = sum(
        v["fusion"]["n"]
        for k, v in manifest["metrics"]["calibration_by_local_model"].items()
        if k in LAND_COVER_CLASSES
    )
    n_rules = sum(manifest["metrics"]["calibration_by_local_model"][k]["fusion"]["n"] for k in rules)
    # calibration rows count once as their class, once as their brightness-temperature stratum, and those with
    # NDVI (70 %: NDVI is missing in 30 % of the rows) once more as the class the rules give them
    n_cal = manifest["provenance"]["n_calibration"]
    assert n_classed == n_cal and 0.6 < n_rules / n_cal < 0.8
    assert manifest["metrics"]["calibration"]["fusion"]["n"] == 2 * n_cal + n_rules


def test_dataset_rows_checks_contract():
    from akkd_scale.training.data import dataset_rows

    ds = synthetic_training_set(60, seed=1)
    rows = dataset_rows(ds, "train")
    assert rows.x.shape[1] == 6 and rows.y.shape[1] == 6 and len(rows.x) == int((ds["split"] == "train").sum())
    assert (rows.land_cover == ds["land_cover"].values[ds["split"].values == "train"]).all()
    with pytest.raises(InputError, match="lst: variable missing"):
        dataset_rows(ds.drop_vars("lst"), "train")
    with pytest.raises(InputError, match=r"brightness_temperature: bands \['a', 'b', 'c', 'd', 'e'\]"):
        dataset_rows(ds.assign_coords(band=["a", "b", "c", "d", "e"]), "train")
    with pytest.raises(InputError, match="ndvi: variable missing"):
        dataset_rows(ds.drop_vars("ndvi"), "train", INPUT_NAMES + ("ndvi",))


def test_ndvi_missing_fraction_fills_the_missing_value():
    from akkd_scale.training.data import dataset_rows

    ds = synthetic_training_set(2000, seed=1)
    rows = dataset_rows(ds, "train", INPUT_NAMES + ("ndvi",), missing_fraction=0.3, seed=4)
    missing = rows.x[:, -1] == OPTIONAL_INPUTS["ndvi"][2]
    assert 0.25 < missing.mean() < 0.35
    truth = ds["ndvi"].values[ds["split"].values == "train"]
    np.testing.assert_array_equal(rows.x[~missing, -1], truth[~missing])


@pytest.mark.slow
def test_fusion_rows_add_the_rules_class_of_every_row_with_ndvi():
    """Each calibration row counts as its class, as its stratum and — when its NDVI is given — as the class the
    rules give it (rules entry n_local + class, student that class), as a pixel classed without a map."""
    from akkd_scale.landcover.rules import classes_from_rules
    from akkd_scale.training.data import Rows
    from akkd_scale.training.recipe import fusion_rows

    rng = np.random.default_rng(0)
    n, n_classes, n_local = 200, len(LAND_COVER_CLASSES), len(LAND_COVER_CLASSES) + 2
    bt = rng.uniform(250.0, 320.0, (n, 1)) + rng.uniform(-3.0, 3.0, (n, 5))
    ndvi = np.where(rng.random(n) < 0.3, OPTIONAL_INPUTS["ndvi"][2], rng.uniform(-0.1, 0.9, n))
    x = np.column_stack([bt, np.full(n, 5.0), ndvi]).astype(np.float32)
    cover = rng.integers(-1, n_classes, n)
    cal = Rows(x, np.zeros((n, 6)), cover, np.arange(n), np.ones(n))
    strata = rng.integers(0, 2, n)
    fit = fusion_rows(cal, strata, n_classes, n_local, tuple(INPUT_NAMES) + ("ndvi",))
    given = ndvi != OPTIONAL_INPUTS["ndvi"][2]
    ruled = classes_from_rules(ndvi[given], bt[given, 0], bt[given, 3], bt[given, 4])
    classed = cover >= 0
    n_map = int(classed.sum())
    np.testing.assert_array_equal(fit.entries[:n_map], cover[classed])
    np.testing.assert_array_equal(fit.entries[n_map : n_map + given.sum()], n_local + ruled)
    np.testing.assert_array_equal(fit.students[n_map : n_map + given.sum()], ruled)
    np.testing.assert_array_equal(fit.entries[n_map + given.sum() :], n_classes + strata)
    np.testing.assert_array_equal(fit.rows.x[n_map : n_map + given.sum()], x[given])
    assert fit.rules_offset == n_local and fit.n_entries == n_local + n_classes
    plain = fusion_rows(cal, strata, n_classes, n_local, tuple(INPUT_NAMES))  # no NDVI input: no rules entries
    assert plain.rules_offset is None and plain.n_entries == n_local and len(plain.entries) == n_map + n
