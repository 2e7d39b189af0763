"""Strata: definition from retrieval-time quantities, quantile edges, assignment, NaN rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from akkd_scale.errors import InputError, ParameterError
from akkd_scale.models.strata import assign_strata, fit_strata, n_strata, stratum_features, stratum_names


def _inputs(split_window, contrast, vza):
    """BT rows with a given BT13−BT14 and max−min (B10 is the minimum, B12 the maximum)."""
    bt = np.empty((len(split_window), 5))
    bt[:, 3] = 300.0
    bt[:, 4] = 300.0 - np.asarray(split_window)
    bt[:, 2] = 300.0 + np.asarray(contrast)
    bt[:, 0] = 300.0 - np.asarray(split_window) - 0.0
    bt[:, 1] = 300.0
    contrast_actual = bt.max(axis=1) - bt.min(axis=1)
    return bt, np.asarray(vza, float), contrast_actual


def test_features_are_band_differences_and_view():
    bt, vza, contrast = _inputs([0.5, 2.0], [3.0, 1.0], [2.0, 7.0])
    f = stratum_features(bt, vza)
    np.testing.assert_allclose(f["moisture"], [0.5, 2.0])
    np.testing.assert_allclose(f["contrast"], contrast)
    np.testing.assert_allclose(f["view"], [2.0, 7.0])


def test_fit_gives_equal_population_classes_and_json_spec():
    rng = np.random.default_rng(0)
    bt, vza, _ = _inputs(rng.uniform(0, 3, 3000), rng.uniform(0, 10, 3000), rng.uniform(0, 9, 3000))
    spec = fit_strata(bt, vza, n_moisture=3, n_contrast=2, n_view=2)
    assert n_strata(spec) == 12 and len(stratum_names(spec)) == 12
    assert json.loads(json.dumps(spec)) == spec
    labels = assign_strata(bt, vza, spec)
    counts = np.bincount(labels, minlength=12)
    assert counts.min() > 150 and counts.max() < 350
    moisture_edges = spec["classes"][0]["edges"]
    np.testing.assert_allclose(moisture_edges, np.quantile(bt[:, 3] - bt[:, 4], [1 / 3, 2 / 3]))


def test_assignment_by_hand_and_nan():
    spec = {
        "version": 1,
        "classes": [
            {"name": "moisture", "definition": "", "edges": [1.0, 2.0]},
            {"name": "contrast", "definition": "", "edges": [5.0]},
            {"name": "view", "definition": "", "edges": []},
        ],
    }
    bt, vza, contrast = _inputs([0.5, 1.5, 2.5, 2.5, 0.2], [1.0, 1.0, 9.0, 9.0, 1.0], [0, 0, 0, 0, 0])
    bt[3, 0] = np.nan
    vza[4] = np.nan
    labels = assign_strata(bt, vza, spec)
    expected_contrast = (contrast >= 5.0).astype(int)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels[:3], np.array([0, 1, 2]) * 2 + expected_contrast[:3])
    assert labels[3] == -1 and labels[4] == -1
    assert stratum_names(spec)[int(labels[2])] == f"moisture2_contrast{expected_contrast[2]}_view0"


def test_bad_inputs_refused():
    with pytest.raises(InputError, match=r"bt: shape \(3, 4\) \(expected \(N, 5\)"):
        stratum_features(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ParameterError, match=r"n_moisture: n_moisture=0 \(expected an integer >= 1\)"):
        fit_strata(np.full((3, 5), 300.0), np.zeros(3), n_moisture=0)
    with pytest.raises(ParameterError, match=r"version: version 99 \(expected 1\)"):
        assign_strata(np.full((3, 5), 300.0), np.zeros(3), {"version": 99, "classes": []})
