"""σ calibration bins: by the given (reanalysis) column water vapour where a pixel has it, and day/night bins
for rows without NDVI (the networks err more without it) — ``moisture_bin``, the runtime through a real bundle
whose factors differ per bin, the schema checks, and ``fit_calibration``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from akkd_scale.conventions import NETWORK_HEADS
from akkd_scale.errors import BundleError
from akkd_scale.models.bundle import load_bundle
from akkd_scale.models.fusion import GIVEN_CWV_KEY, N_CWV_FEATURES, NIGHT_INPUT_KEY, moisture_bin, n_calibration_bins
from akkd_scale.training.bundle_writer import write_manifest
from akkd_scale.training.fusion_fit import fit_calibration


def _constant_estimate(value: float, edges) -> dict:
    coefficients = np.zeros(N_CWV_FEATURES)
    coefficients[0] = value  # the intercept: every pixel's BT estimate is ``value``
    return {"cwv_coefficients": coefficients.tolist(), "edges": list(edges)}


def test_moisture_bin_uses_the_given_value_where_present():
    bt = np.full((3, 5), 290.0)
    calibration = _constant_estimate(0.7, [1.0, 3.0])
    given = np.array([np.nan, 3.5, 2.0])
    np.testing.assert_array_equal(moisture_bin(bt, calibration, given), [0, 0, 0])  # key absent: estimate only
    calibration[GIVEN_CWV_KEY] = "column_water_vapour"
    np.testing.assert_array_equal(moisture_bin(bt, calibration, given), [0, 2, 1])
    np.testing.assert_array_equal(moisture_bin(bt, calibration), [0, 0, 0])


def _calibrated_bundle(path, seed: int, estimate: float, factors: list[float], key: str, value: str, **writer):
    """A random bundle whose calibration has a constant BT estimate (edges 1 and 3 g cm⁻²), the same factor row
    ``factors`` for every fusion-table row and head, and ``key`` = ``value``; returns (path, manifest)."""
    from akkd_scale.training.random_bundle import write_random_bundle

    path = write_random_bundle(path, seed=seed, **writer)
    manifest = json.loads((path / "manifest.json").read_text())
    n = len(manifest["fusion"]["teacher_weight"])
    calibration = _constant_estimate(estimate, [1.0, 3.0])
    calibration["factor"] = {head: [list(factors)] * n for head in NETWORK_HEADS}
    calibration[key] = value
    manifest["fusion"]["calibration"] = calibration
    write_manifest(path, manifest)
    return path, manifest


@pytest.fixture
def binned_bundle(tmp_path):
    """The random atmosphere bundle with a constant BT estimate (0.7 g cm-2) and factors 1, 2, 3 per bin."""
    return _calibrated_bundle(
        tmp_path / "b", 4, 0.7, [1.0, 2.0, 3.0], GIVEN_CWV_KEY, "column_water_vapour", atmosphere=True
    )


def test_runtime_sigma_follows_the_given_water_vapour(binned_bundle):
    path, _ = binned_bundle
    bundle = load_bundle(path)
    bt = np.tile([[288.0, 289.0, 290.0, 293.0, 292.5]], (3, 1)).astype(np.float32)
    sigma = {}
    for name, cwv in (("missing", np.nan), ("dry", 0.5), ("mid", 2.0), ("humid", 4.5)):
        extra = {"column_water_vapour": np.full(3, cwv), "air_temperature": np.full(3, 290.0)}
        sigma[name] = bundle.predict(bt, 3.0, heads=("student",), extra=extra)["student"]["lst_uncertainty"]
    # a student head's σ is its local model's RMSE times the factor: the ratios are the factors'
    np.testing.assert_allclose(sigma["missing"] / sigma["dry"], 1.0, rtol=1e-6)  # estimate 0.7: bin 0 as well
    np.testing.assert_allclose(sigma["mid"] / sigma["dry"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(sigma["humid"] / sigma["dry"], 3.0, rtol=1e-6)


def test_schema_refuses_a_given_input_the_bundle_lacks(binned_bundle):
    path, manifest = binned_bundle
    manifest["fusion"]["calibration"][GIVEN_CWV_KEY] = "air_temperature"
    write_manifest(path, manifest)
    with pytest.raises(BundleError, match=r"fusion\.calibration\.given_cwv_input: \"air_temperature\""):
        load_bundle(path)


def test_fit_calibration_bins_by_the_given_value():
    rng = np.random.default_rng(0)
    n = 6000
    cwv = rng.uniform(0.0, 5.0, n)
    sigma = np.ones(n)
    error = rng.normal(0.0, 1.0 + cwv, n)  # errors grow with water vapour
    given = np.where(rng.random(n) < 0.3, np.nan, cwv)
    truth = np.full(n, 300.0)
    bt = np.full((n, 5), 290.0)
    fitted = fit_calibration(
        truth,
        {"fusion": truth + error},
        {"fusion": sigma},
        np.zeros(n, int),
        1,
        bt,
        cwv,
        coefficients=_constant_estimate(0.7, [0])["cwv_coefficients"],
        given_cwv=given,
        given_input="column_water_vapour",
    )
    assert fitted[GIVEN_CWV_KEY] == "column_water_vapour"
    factors = np.asarray(fitted["factor"]["fusion"][0])
    bins = moisture_bin(bt, fitted, given)
    for b in np.unique(bins):  # every populated bin holds 68 % of its rows within k·σ
        own = bins == b
        assert np.mean(np.abs(error[own]) < factors[b]) == pytest.approx(0.6827, abs=0.01)
    assert factors[-1] > 3.0 * factors[0]  # humid bins get larger factors


def test_night_rows_take_the_second_set_of_bins():
    bt = np.full((4, 5), 290.0)
    calibration = _constant_estimate(2.0, [1.0, 3.0])  # bin 1 of 3
    night = np.array([False, True, False, True])
    np.testing.assert_array_equal(moisture_bin(bt, calibration, night=night), [1, 1, 1, 1])  # no key: one set
    assert n_calibration_bins(calibration) == 3
    calibration[NIGHT_INPUT_KEY] = "ndvi"
    np.testing.assert_array_equal(moisture_bin(bt, calibration, night=night), [1, 4, 1, 4])
    np.testing.assert_array_equal(moisture_bin(bt, calibration), [1, 1, 1, 1])  # night unknown: day bins
    assert n_calibration_bins(calibration) == 6


@pytest.fixture
def night_bundle(tmp_path):
    """The random bundle (NDVI input) with a constant BT estimate (bin 0 of 3) and factors 1 by day, 3 at night."""
    return _calibrated_bundle(tmp_path / "b", 5, 0.5, [1.0] * 3 + [3.0] * 3, NIGHT_INPUT_KEY, "ndvi")


def test_runtime_sigma_is_wider_at_night(night_bundle):
    path, _ = night_bundle
    bundle = load_bundle(path)
    bt = np.tile([[288.0, 289.0, 290.0, 293.0, 292.5]], (3, 1)).astype(np.float32)
    day = bundle.predict(bt, 3.0, heads=("student",), extra={"ndvi": np.full(3, 0.4)})["student"]
    night = bundle.predict(bt, 3.0, heads=("student",))["student"]  # NDVI missing
    np.testing.assert_array_equal(night["lst"], bundle.predict(bt, 3.0, heads=("student",))["student"]["lst"])
    np.testing.assert_allclose(night["lst_uncertainty"] / day["lst_uncertainty"], 3.0, rtol=1e-6)


def test_schema_checks_the_night_input_and_the_doubled_bins(night_bundle):
    path, manifest = night_bundle
    n = len(manifest["fusion"]["teacher_weight"])
    manifest["fusion"]["calibration"][NIGHT_INPUT_KEY] = "column_water_vapour"  # not an input, and not NDVI
    write_manifest(path, manifest)
    with pytest.raises(BundleError, match=r"fusion\.calibration\.night_input: \"column_water_vapour\""):
        load_bundle(path)
    manifest["fusion"]["calibration"][NIGHT_INPUT_KEY] = "ndvi"
    manifest["fusion"]["calibration"]["factor"]["fusion"] = [[1.0, 1.0, 1.0]] * n
    write_manifest(path, manifest)
    with pytest.raises(BundleError, match=r"fusion\.calibration\.factor\.fusion\.0: .*\(expected a list of 6 finite"):
        load_bundle(path)


def test_fit_calibration_covers_day_and_night_separately():
    rng = np.random.default_rng(0)
    n = 8000
    night = rng.random(n) < 0.3
    error = rng.normal(0.0, np.where(night, 2.0, 1.0), n)  # twice the error without NDVI
    truth = np.full(n, 300.0)
    sigma = np.ones(n)
    bt = np.full((n, 5), 290.0)
    args = ({"fusion": truth + error}, {"fusion": sigma}, np.zeros(n, int), 1, bt, np.full(n, 2.0))

    def coverage(calibration, rows):
        k = np.asarray(calibration["factor"]["fusion"][0])[moisture_bin(bt, calibration, night=night)]
        return np.mean(np.abs(error[rows]) < k[rows])

    plain = fit_calibration(truth, *args, coefficients=np.eye(N_CWV_FEATURES)[0] * 2.0)
    split = fit_calibration(truth, *args, coefficients=np.eye(N_CWV_FEATURES)[0] * 2.0, night=night, night_input="ndvi")
    assert NIGHT_INPUT_KEY not in plain and split[NIGHT_INPUT_KEY] == "ndvi"
    assert len(split["factor"]["fusion"][0]) == 2 * len(plain["factor"]["fusion"][0])
    assert coverage(plain, night) < 0.55 and coverage(plain, ~night) > 0.75  # one factor: night under-covered
    assert coverage(split, night) == pytest.approx(0.6827, abs=0.01)
    assert coverage(split, ~night) == pytest.approx(0.6827, abs=0.01)
