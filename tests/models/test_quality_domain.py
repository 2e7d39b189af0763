"""QC bit 2 means "outside the simulated domain": in-domain pixels, nadir included, are never flagged."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import akkd_scale
from akkd_scale.conventions import BANDS, QC_NO_LAND_COVER, QC_OUT_OF_RANGE
from akkd_scale.errors import ParameterError
from akkd_scale.models.bundle import default_bundle_path, load_bundle
from akkd_scale.simulate.synthetic import synthetic_training_set
from akkd_scale.training.bundle_writer import BT_MARGIN_K, input_domain


@pytest.fixture(scope="module")
def default_bundle():
    return load_bundle(default_bundle_path())


def _samples(vza_min, vza_max, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    bt = rng.uniform(250.0, 320.0, (n, 1)) + rng.normal(0.0, 1.0, (n, len(BANDS)))
    return np.column_stack([bt, rng.uniform(vza_min, vza_max, n)])


def test_input_domain_is_the_simulated_domain():
    """Why 10: bounds were sample extremes (view zenith min 0.0003 deg), so nadir was 'outside'."""
    x = _samples(0.0003, 59.9999)
    domain = input_domain(x)
    assert domain["range_min"][5] == 0.0 and domain["range_max"][5] == 60.0
    np.testing.assert_allclose(domain["range_min"][:5], x[:, :5].min(axis=0) - BT_MARGIN_K)
    np.testing.assert_allclose(domain["range_max"][:5], x[:, :5].max(axis=0) + BT_MARGIN_K)
    assert BT_MARGIN_K == pytest.approx(0.9)
    explicit = input_domain(x, view_zenith_range=(0.0, 65.0), bt_margin_k=2.0)
    assert explicit["range_max"][5] == 65.0 and "[0, 65] deg" in explicit["range_definition"]
    np.testing.assert_allclose(explicit["range_max"][:5], x[:, :5].max(axis=0) + 2.0)
    with pytest.raises(ParameterError, match=r"view_zenith_range=\(10\.0, 60\.0\).*covering every training sample"):
        input_domain(x, view_zenith_range=(10.0, 60.0))


def test_shipped_bundle_domain(default_bundle):
    inputs = default_bundle.manifest["inputs"]
    assert inputs["range_min"][5] == 0.0 and inputs["range_max"][5] == 12.0  # ASTER geometry, 0–12°
    assert "view zenith: simulated range [0, 12] deg" in inputs["range_definition"]


def test_nadir_pixels_retrieved_with_qc_zero(default_bundle):
    """Typical pixels at exactly nadir get no domain flag from the shipped bundle, through ``retrieve``; without
    NDVI or a map they are flagged as answered by the brightness-temperature strata students (bit 32) only."""
    bt = synthetic_training_set(1500, seed=5)["brightness_temperature"].values
    bt = bt[np.all((bt > 270.0) & (bt < 310.0), axis=1)]
    assert len(bt) > 500
    ds = xr.Dataset(
        {"brightness_temperature": (("band", "sample"), bt.T), "view_zenith": ("sample", np.zeros(len(bt)))},
        coords={"band": list(BANDS)},
    )
    out = akkd_scale.retrieve(ds, default_bundle, heads=("fusion",))
    assert np.all(out["qc"].values == QC_NO_LAND_COVER)
    assert np.isfinite(out["lst"].values).all()
    # the flag still means something: beyond the simulated view zenith or 80 K too hot
    assert np.all(default_bundle.quality(bt[:5], 13.0) & QC_OUT_OF_RANGE)
    assert np.all(default_bundle.quality(bt[:5] + 80.0, 0.0) & QC_OUT_OF_RANGE)
