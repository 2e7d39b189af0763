"""Synthetic training sets: contract, disjoint splits, radiative-transfer consistency."""

from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.errors import ParameterError
from akkd_scale.sensors.aster import ASTER_TIR
from akkd_scale.sensors.planck import band_radiance
from akkd_scale.simulate.synthetic import synthetic_training_set


def test_contract_and_disjoint_splits():
    ds = synthetic_training_set(500, seed=2)
    for name in ("brightness_temperature", "emissivity", "transmittance", "path_radiance", "sky_radiance"):
        assert ds[name].dims == ("sample", "band")
    assert list(ds["band"].values) == ["B10", "B11", "B12", "B13", "B14"]
    splits = ds["split"].values.astype(str)
    assert set(splits) == {"train", "validation", "test"}
    for key in ("profile_id", "spectrum_id"):
        groups = {s: set(ds[key].values[splits == s]) for s in ("train", "validation", "test")}
        assert not groups["train"] & groups["validation"] and not groups["train"] & groups["test"]
        assert not groups["validation"] & groups["test"]
    # moister columns: larger split-window difference (the moisture strata rely on it)
    sw = ds["brightness_temperature"].values[:, 3] - ds["brightness_temperature"].values[:, 4]
    assert np.corrcoef(sw, ds["column_water_vapour"].values)[0, 1] > 0.5


def test_radiance_is_consistent_with_terms():
    ds = synthetic_training_set(200, seed=4)
    tau, up, down = (ds[v].values.astype(np.float64) for v in ("transmittance", "path_radiance", "sky_radiance"))
    eps = ds["emissivity"].values.astype(np.float64)
    surface = band_radiance(ds["lst"].values.astype(np.float64)[:, None], ASTER_TIR)
    expected = tau * (eps * surface + (1 - eps) * down) + up
    observed = band_radiance(ds["brightness_temperature"].values.astype(np.float64), ASTER_TIR)
    np.testing.assert_allclose(observed, expected, rtol=2e-5)
    assert np.all((tau > 0) & (tau < 1)) and np.all(eps <= 0.995 + 1e-6)


def test_reproducible_and_validated():
    a, b = synthetic_training_set(100, seed=7), synthetic_training_set(100, seed=7)
    np.testing.assert_array_equal(a["brightness_temperature"].values, b["brightness_temperature"].values)
    with pytest.raises(ParameterError, match=r"n_samples: n_samples=2, n_profiles=60, n_spectra=90 \(expected each"):
        synthetic_training_set(2)
