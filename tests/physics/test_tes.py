"""TES (Gillespie et al. 1998) on synthetic pixels built with the sensor's own Planck functions.

Exact recovery is only possible where the truth satisfies TES's two assumptions: the NEM ε_max
equals the spectrum's largest emissivity, and the spectrum lies on the MMD calibration curve.
The cases below are constructed that way (not hard-coded results): blackbody and greybody with the
curve's intercept at the true emissivity, and spectra built from a β shape and ASTER's curve.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.optimize import brentq

from akkd_scale.errors import ParameterError
from akkd_scale.physics.tes import (
    QC_INVALID_INPUT,
    QC_NEM_DIVERGED,
    QC_NEM_NOT_CONVERGED,
    TESParameters,
    tes,
    tes_dataset,
)
from akkd_scale.sensors.aster import ASTER_TIR
from akkd_scale.sensors.planck import band_radiance, brightness_temperature

TAU = np.array([0.62, 0.70, 0.74, 0.81, 0.78])
PATH = np.array([2.1, 1.9, 1.6, 1.3, 1.4])
SKY = np.array([4.2, 3.8, 3.3, 3.4, 3.7])


def at_sensor(lst, emissivity, tau=TAU, path=PATH, sky=SKY):
    """L = τ(εB(T) + (1 − ε)L↓) + L↑ per band."""
    planck = band_radiance(np.asarray(lst, dtype=float)[..., None], ASTER_TIR)
    return tau * (emissivity * planck + (1 - emissivity) * sky) + path


def on_curve_spectrum(shape, params=TESParameters(), contrast="high"):
    """ε = β·ε_min(MMD)/min β scaled so that max ε = ε_max: a spectrum TES can recover exactly."""

    def spectrum(k):
        beta = 1 + k * shape
        beta = beta / beta.mean()
        return beta * params.calibration(beta.max() - beta.min()) / beta.min()

    def excess(k):
        return spectrum(k).max() - params.emissivity_max

    ks = np.geomspace(1e-8, 0.5, 400)
    values = np.array([excess(k) for k in ks])
    crossings = np.flatnonzero(np.diff(np.sign(values)) != 0)
    i = crossings[-1] if contrast == "high" else crossings[0]
    return spectrum(brentq(excess, ks[i], ks[i + 1], xtol=1e-15))


@pytest.fixture(scope="module")
def curve_spectra():
    rng = np.random.default_rng(42)
    shapes = rng.uniform(-1, 1, size=(8, 5))
    spectra = [on_curve_spectrum(s, contrast=c) for s in shapes for c in ("high", "low")]
    return np.array(spectra)


def test_blackbody_exact():
    params = TESParameters(emissivity_max=1.0, mmd_a=1.0)
    lst = np.linspace(240.0, 340.0, 11)
    result = tes(at_sensor(lst, np.ones(5)), TAU, PATH, SKY, parameters=params)
    np.testing.assert_allclose(result.lst, lst, atol=1e-6)
    np.testing.assert_allclose(result.emissivity, 1.0, atol=1e-9)
    np.testing.assert_allclose(result.mmd, 0.0, atol=1e-9)
    assert np.all(result.qc == 0)


def test_greybody_exact_when_curve_intercept_is_its_emissivity():
    params = TESParameters(emissivity_max=0.96, mmd_a=0.96)
    lst = np.linspace(250.0, 330.0, 9)
    result = tes(at_sensor(lst, np.full(5, 0.96)), TAU, PATH, SKY, parameters=params)
    np.testing.assert_allclose(result.lst, lst, atol=1e-6)
    np.testing.assert_allclose(result.emissivity, 0.96, atol=1e-9)
    assert np.all(result.nem_iterations == 2) and np.all(result.qc == 0)


def test_greybody_with_aster_coefficients_is_biased_as_the_curve_says():
    """Flat 0.96 → MMD ≈ 0 → ε_min ≈ 0.994: TES overestimates ε and underestimates T (a TES limit)."""
    lst = np.array([300.0])
    result = tes(at_sensor(lst, np.full(5, 0.96)), TAU, PATH, np.zeros(5))
    assert np.all(result.emissivity > 0.975)
    assert result.lst[0] < lst[0] - 0.1


def test_on_curve_spectra_exact_without_sky(curve_spectra):
    lst = np.linspace(260.0, 330.0, len(curve_spectra))
    sky = np.zeros(5)
    result = tes(at_sensor(lst, curve_spectra, sky=sky), TAU, PATH, sky)
    np.testing.assert_allclose(result.lst, lst, atol=1e-6)
    np.testing.assert_allclose(result.emissivity, curve_spectra, atol=1e-9)
    assert np.ptp(result.mmd) > 0.1  # both near-grey and high-contrast spectra are covered


def test_nem_converges_to_truth_with_sky(curve_spectra):
    """Needs L↓ < B(T) in every band (true for warm surfaces): then T_NEM is the true T."""
    lst = np.linspace(285.0, 330.0, len(curve_spectra))
    radiance = at_sensor(lst, curve_spectra)
    tight = tes(radiance, TAU, PATH, SKY, parameters=TESParameters(convergence_radiance=1e-11, max_iterations=500))
    np.testing.assert_allclose(tight.lst, lst, atol=1e-6)
    np.testing.assert_allclose(tight.emissivity, curve_spectra, atol=1e-8)
    assert np.all(tight.qc == 0)
    aster = tes(radiance, TAU, PATH, SKY)
    assert np.all(aster.qc == 0) and np.all(aster.nem_iterations <= 12)
    assert np.all(aster.nem_iterations <= tight.nem_iterations)
    assert np.abs(aster.lst - lst).max() < 0.1  # t1 = 0.05 W m⁻² sr⁻¹ µm⁻¹ ≈ NEΔT
    assert np.abs(aster.lst - lst).max() > np.abs(tight.lst - lst).max()


def test_nem_iteration_limit_is_flagged(curve_spectra):
    lst = np.full(len(curve_spectra), 300.0)
    result = tes(at_sensor(lst, curve_spectra), TAU, PATH, SKY, parameters=TESParameters(max_iterations=1))
    assert np.all(result.nem_iterations == 1)
    assert np.all(result.qc & QC_NEM_NOT_CONVERGED)
    assert np.all(np.isfinite(result.lst))


def test_nem_divergence_keeps_previous_iteration():
    """Sky brighter than a cold surface: each sky correction grows (S/B > 1), NEM must stop."""
    emissivity = np.array([0.80, 0.85, 0.90, 0.95, 0.97])
    warm_sky = band_radiance(np.full(5, 300.0), ASTER_TIR)
    radiance = at_sensor(np.array([230.0]), emissivity, sky=warm_sky)
    result = tes(radiance, TAU, PATH, warm_sky, parameters=TESParameters(max_iterations=50))
    assert result.qc[0] & QC_NEM_DIVERGED
    assert 1 <= result.nem_iterations[0] < 50 and np.isfinite(result.lst[0])


def test_noise_sensitivity(curve_spectra):
    rng = np.random.default_rng(7)
    n = 4000
    spectra = curve_spectra[rng.integers(0, len(curve_spectra), n)]
    lst = rng.uniform(270.0, 330.0, n)
    bt = brightness_temperature(at_sensor(lst, spectra), ASTER_TIR)
    rmse = {}
    for nedt in (0.0, 0.1, 0.3, 0.6):
        noisy = bt + rng.normal(0.0, nedt, bt.shape)
        result = tes(noisy, TAU, PATH, SKY, quantity="brightness_temperature")
        rmse[nedt] = (np.sqrt(np.mean((result.lst - lst) ** 2)), np.sqrt(np.mean((result.emissivity - spectra) ** 2)))
    assert rmse[0.0][0] < 0.05
    assert rmse[0.0][0] < rmse[0.1][0] < rmse[0.3][0] < rmse[0.6][0]
    assert rmse[0.1][1] < rmse[0.3][1] < rmse[0.6][1]
    # ASTER's design accuracy is ±1.5 K; near-grey spectra lose ε accuracy to noise-inflated MMD
    # (docs/evaluation.md), so ε is only held to a loose sanity bound here.
    assert rmse[0.3][0] < 1.5 and rmse[0.3][1] < 0.05


def test_brightness_temperature_input_matches_radiance(curve_spectra):
    radiance = at_sensor(np.full(len(curve_spectra), 295.0), curve_spectra)
    from_radiance = tes(radiance, TAU, PATH, SKY)
    from_bt = tes(brightness_temperature(radiance, ASTER_TIR), TAU, PATH, SKY, quantity="brightness_temperature")
    np.testing.assert_allclose(from_bt.lst, from_radiance.lst, atol=1e-3)
    np.testing.assert_allclose(from_bt.emissivity, from_radiance.emissivity, atol=1e-5)


def test_nan_in_nan_out_and_other_pixels_unaffected(curve_spectra):
    radiance = at_sensor(np.linspace(270.0, 320.0, len(curve_spectra)), curve_spectra)
    clean = tes(radiance, TAU, PATH, SKY)
    bad = radiance.copy()
    bad[1, 3] = np.nan
    tau = np.broadcast_to(TAU, radiance.shape).copy()
    tau[4, 0] = 0.0  # opaque atmosphere: no surface radiance
    result = tes(bad, tau, PATH, SKY)
    for i in (1, 4):
        assert np.isnan(result.lst[i]) and np.all(np.isnan(result.emissivity[i])) and np.isnan(result.mmd[i])
        assert result.qc[i] == QC_INVALID_INPUT
    keep = np.setdiff1d(np.arange(len(radiance)), [1, 4])
    np.testing.assert_array_equal(result.lst[keep], clean.lst[keep])
    np.testing.assert_array_equal(result.emissivity[keep], clean.emissivity[keep])


def test_dask_is_lazy_and_equal_to_numpy_with_band_axis_first(curve_spectra):
    radiance = at_sensor(np.linspace(270.0, 320.0, len(curve_spectra)), curve_spectra)
    scene = np.moveaxis(radiance.reshape(4, 4, 5), -1, 0)  # (band, y, x)
    lazy = tes(
        da.from_array(scene, chunks=(1, 2, 3)), TAU[:, None, None], PATH[:, None, None], SKY[:, None, None], band_axis=0
    )
    assert isinstance(lazy.lst, da.Array) and isinstance(lazy.emissivity, da.Array)
    assert lazy.lst.chunks == ((2, 2), (3, 1)) and lazy.emissivity.shape == scene.shape
    eager = tes(radiance, TAU, PATH, SKY)
    np.testing.assert_array_equal(lazy.lst.compute(), eager.lst.reshape(4, 4))
    np.testing.assert_array_equal(np.moveaxis(lazy.emissivity.compute(), 0, -1), eager.emissivity.reshape(4, 4, 5))
    np.testing.assert_array_equal(lazy.qc.compute(), eager.qc.reshape(4, 4))


def test_tes_dataset_on_training_set_contract(curve_spectra):
    n = len(curve_spectra)
    lst = np.linspace(270.0, 320.0, n)
    bands = list(ASTER_TIR.band_names)
    bt = brightness_temperature(at_sensor(lst, curve_spectra), ASTER_TIR)
    terms = {
        name: (("sample", "band"), np.broadcast_to(v, (n, 5)))
        for name, v in (("transmittance", TAU), ("path_radiance", PATH), ("sky_radiance", SKY))
    }
    ds = xr.Dataset({"brightness_temperature": (("band", "sample"), bt.T), **terms}, coords={"band": bands})
    out = tes_dataset(ds.chunk({"sample": 5}))
    assert isinstance(out["lst"].data, da.Array)
    assert out["emissivity"].dims == ("sample", "band")
    direct = tes(bt, TAU, PATH, SKY, quantity="brightness_temperature")
    np.testing.assert_allclose(out["lst"].values, direct.lst, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["emissivity"].values, direct.emissivity, rtol=0, atol=1e-12)


def test_bad_inputs_raise_parameter_errors():
    radiance = at_sensor(np.array([300.0]), np.full(5, 0.97))
    with pytest.raises(ParameterError, match="observed: band axis has length 4"):
        tes(radiance[:, :4], TAU[:4], PATH[:4], SKY[:4])
    with pytest.raises(ParameterError, match="quantity: unknown quantity 'counts'"):
        tes(radiance, TAU, PATH, SKY, quantity="counts")
    with pytest.raises(ParameterError, match=r"sky_radiance: shape \(1, 3\) does not broadcast to \(1, 5\)"):
        tes(radiance, TAU, PATH, SKY[:3])
    with pytest.raises(ParameterError, match=r"emissivity_max: invalid value 1\.2"):
        TESParameters(emissivity_max=1.2)
    with pytest.raises(ParameterError, match="path_radiance: variable missing or without a band dimension"):
        tes_dataset(
            xr.Dataset(
                {
                    "brightness_temperature": (("sample", "band"), radiance),
                    "transmittance": (("sample", "band"), radiance),
                }
            )
        )
