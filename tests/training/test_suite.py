"""train_suite end to end (the tiny bundle): strata students, fusion never worse per stratum, metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest

from akkd_scale.errors import InputError
from akkd_scale.testing.trainingsets import synthetic_training_set


def test_manifest_metrics_and_fusion(tiny_bundle_path):
    manifest = json.loads((tiny_bundle_path / "manifest.json").read_text())
    strata = manifest["models"]["students"]["strata"]
    assert [entry["name"] for entry in strata] == ["moisture0_contrast0_view0", "moisture1_contrast0_view0"]
    assert all(entry["kd"] and entry["baseline"] for entry in strata)
    weights = np.asarray(manifest["fusion"]["teacher_weight"])
    assert weights.shape == (2, 6) and np.all((weights >= 0) & (weights <= 1))
    by_stratum = manifest["metrics"]["validation_by_stratum"]
    assert set(by_stratum) == {entry["name"] for entry in strata}
    for metrics in by_stratum.values():
        best = min(metrics["teacher"]["lst_rmse"], metrics["student"]["lst_rmse"])
        assert metrics["fusion"]["lst_rmse"] <= best * (1 + 1e-5)
    teacher = manifest["models"]["teacher"]
    assert teacher["hidden_units"] == [32, 32] and teacher["rebuild_max_abs_error_z"] < 1e-3
    assert manifest["metrics"]["validation"]["fusion"]["n"] == manifest["provenance"]["n_validation"]


def test_dataset_arrays_checks_contract():
    from akkd_scale.training.distill import dataset_arrays

    ds = synthetic_training_set(60, seed=1)
    x, y = dataset_arrays(ds, "train")
    assert x.shape[1] == 6 and y.shape[1] == 6 and len(x) == int((ds["split"] == "train").sum())
    with pytest.raises(InputError, match="lst"):
        dataset_arrays(ds.drop_vars("lst"), "train")
    with pytest.raises(InputError, match="bands"):
        dataset_arrays(ds.assign_coords(band=["a", "b", "c", "d", "e"]), "train")
