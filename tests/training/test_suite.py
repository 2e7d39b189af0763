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
    assert weights.shape == (len(LAND_COVER_CLASSES) + 2, 6) and np.all((weights >= 0) & (weights <= 1))
    by_local = manifest["metrics"]["calibration_by_local_model"]
    assert set(by_local) == {entry["name"] for entry in strata} | trained
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
    # calibration rows count once as their class and once as their brightness-temperature stratum
    assert (
        manifest["metrics"]["calibration"]["fusion"]["n"]
        == 2 * manifest["provenance"]["n_calibration"]
        == 2 * n_classed
    )


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
