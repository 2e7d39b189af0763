"""Band-effective Planck physics of the ASTER TIR sensor against independent integrations."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.integrate import quad

from akkd_scale.errors import ParameterError, SpectrumError
from akkd_scale.sensors import (
    ASTER_TIR,
    Band,
    Sensor,
    band_average,
    band_radiance,
    brightness_temperature,
    planck_radiance,
)

H, C, K = 6.62607015e-34, 2.99792458e8, 1.380649e-23


def quad_band_radiance(band: Band, temperature: float) -> float:
    """∫B(λ,T)R(λ)dλ / ∫R dλ with scipy quad, Planck written from h, c, k (SI), SRF linearly interpolated."""
    lam, resp = band.srf_wavelength_um, band.srf_response

    def planck_si(lam_um):
        lam_m = lam_um * 1e-6
        return 2 * H * C**2 / lam_m**5 / np.expm1(H * C / (lam_m * K * temperature)) * 1e-6

    def srf(x):
        return np.interp(x, lam, resp)

    # the interpolated SRF has a kink at every sample: integrate each 1-nm piece separately
    num = sum(quad(lambda x: planck_si(x) * srf(x), a, b)[0] for a, b in zip(lam[:-1], lam[1:]))
    den = sum(quad(srf, a, b)[0] for a, b in zip(lam[:-1], lam[1:]))
    return num / den


def test_aster_bands_from_pyrsr():
    assert ASTER_TIR.band_names == ("B10", "B11", "B12", "B13", "B14")
    np.testing.assert_allclose(ASTER_TIR.centers_um, [8.281, 8.633, 9.079, 10.662, 11.293], atol=0.002)
    assert [b.ucc for b in ASTER_TIR.bands] == [6.822e-3, 6.780e-3, 6.590e-3, 5.693e-3, 5.225e-3]
    assert all(b.nedt == 0.3 for b in ASTER_TIR.bands)


def test_monochromatic_planck_known_value():
    # 10 µm, 300 K: 9.924 W m-2 sr-1 µm-1 (SI constants, written independently above)
    lam_m = 10e-6
    expected = 2 * H * C**2 / lam_m**5 / np.expm1(H * C / (lam_m * K * 300.0)) * 1e-6
    assert planck_radiance(10.0, 300.0) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("temperature", [185.0, 253.15, 300.0, 355.0])
def test_band_radiance_matches_quad(temperature):
    ours = band_radiance(np.full((1, 5), temperature), ASTER_TIR)[0]
    reference = [quad_band_radiance(b, temperature) for b in ASTER_TIR.bands]
    np.testing.assert_allclose(ours, reference, rtol=2e-6)


def test_round_trip_within_5_mK():
    temperature = np.linspace(180.0, 360.0, 20001)[:, None].repeat(5, axis=1)
    back = brightness_temperature(band_radiance(temperature, ASTER_TIR), ASTER_TIR)
    assert np.abs(back - temperature).max() <= 0.005


def test_inverse_of_independent_radiance_within_5_mK():
    temperature = np.array([180.0, 221.7, 273.15, 310.4, 360.0])
    radiance = np.array([[quad_band_radiance(b, t) for b in ASTER_TIR.bands] for t in temperature])
    back = brightness_temperature(radiance, ASTER_TIR)
    assert np.abs(back - temperature[:, None]).max() <= 0.005


def test_per_band_methods_and_broadcast():
    b13 = ASTER_TIR["B13"]
    radiance = b13.radiance(np.array([250.0, 300.0], dtype=np.float32))
    assert radiance.dtype == np.float32
    np.testing.assert_allclose(b13.brightness_temperature(radiance), [250.0, 300.0], atol=0.005)
    all_bands = band_radiance(np.array([[300.0]]), ASTER_TIR)
    assert all_bands.shape == (1, 5) and all_bands[0, 3] == pytest.approx(radiance[1], rel=1e-6)


def test_non_positive_and_out_of_range_give_nan():
    bt = brightness_temperature(np.array([[0.0, -1.0, np.nan, 1e6, 10.0]]), ASTER_TIR)
    assert np.isnan(bt[0, :4]).all() and np.isfinite(bt[0, 4])


def test_dask_stays_lazy_and_equals_numpy(compute_counter):
    rng = np.random.default_rng(0)
    temperature = rng.uniform(200, 340, (6, 5, 8)).astype(np.float32)
    lazy_in = da.from_array(temperature, chunks=(3, 2, 4))
    with compute_counter as counter:
        lazy = brightness_temperature(band_radiance(lazy_in, ASTER_TIR, band_axis=1), ASTER_TIR, band_axis=1)
        assert isinstance(lazy, da.Array) and counter.count == 0
        assert lazy.chunks[1] == (5,)
        result = lazy.compute()
    assert counter.count == 1
    np.testing.assert_allclose(result, temperature, atol=0.005)


def test_xarray_band_dimension():
    t = xr.DataArray(np.full((5, 2), 290.0), dims=("band", "x"), coords={"band": list(ASTER_TIR.band_names)})
    radiance = band_radiance(t, ASTER_TIR)
    assert radiance.dims == ("band", "x")
    np.testing.assert_allclose(radiance.sel(band="B13"), ASTER_TIR["B13"].radiance(290.0))


def test_wrong_band_axis_raises():
    with pytest.raises(ParameterError, match="band_axis: band axis -1 has length 4"):
        band_radiance(np.full((3, 4), 300.0), ASTER_TIR)


def test_band_average_constant_and_blackbody():
    wavelength = np.arange(7.5, 13.0001, 0.01)
    spectra = np.stack([np.full_like(wavelength, 0.97), planck_radiance(wavelength, 300.0)])
    averaged = band_average(wavelength, spectra, ASTER_TIR)
    np.testing.assert_allclose(averaged[0], 0.97, rtol=1e-12)
    np.testing.assert_allclose(averaged[1], band_radiance(np.full((1, 5), 300.0), ASTER_TIR)[0], rtol=1e-4)


def test_band_average_wavenumber_grid_and_nan_outside_support():
    wavenumber = np.arange(1350.0, 700.0, -5.0)  # descending wavenumber = ascending… reversed order
    wavelength = 1e4 / wavenumber
    values = planck_radiance(wavelength, 280.0)
    values[wavelength > 12.5] = np.nan  # outside every SRF: must not matter
    averaged = band_average(wavelength, values, ASTER_TIR)
    np.testing.assert_allclose(averaged, band_radiance(np.full((1, 5), 280.0), ASTER_TIR)[0], rtol=2e-3)
    lazy = band_average(wavelength, da.from_array(np.stack([values] * 4), chunks=(2, -1)), ASTER_TIR)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute()[3], averaged)


def test_band_average_rejects_short_grid():
    wavelength = np.arange(8.0, 10.0, 0.01)
    with pytest.raises(SpectrumError, match=r"covers 8\.000–9\.990 µm, missing 100\.0% of band B13's response"):
        band_average(wavelength, np.ones_like(wavelength), ASTER_TIR)


def test_sensor_from_data_alone():
    lam = np.linspace(10.0, 11.0, 101)
    band = Band.from_srf("T1", lam, np.exp(-(((lam - 10.5) / 0.2) ** 2)), nedt=0.1)
    sensor = Sensor("toy", (band,))
    assert sensor.centers_um[0] == pytest.approx(10.5, abs=1e-6)
    np.testing.assert_allclose(
        brightness_temperature(band_radiance(np.array([[275.0]]), sensor), sensor), 275.0, atol=0.005
    )
    with pytest.raises(SpectrumError):
        Sensor("dup", (band, band))


def test_table_lookups_equal_np_interp_and_the_table_is_cached(tmp_path, monkeypatch):
    """O(1) lookups give np.interp's numbers (to rounding); a new process reads the table from the disk cache."""
    from akkd_scale.sensors.planck import band_lut

    monkeypatch.setenv("AKKD_CACHE_DIR", str(tmp_path))
    band = ASTER_TIR["B12"]
    lut = band_lut(band.srf_wavelength_um, band.srf_response)
    assert len(list((tmp_path / "planck").glob("*.npz"))) == 1
    again = band_lut(band.srf_wavelength_um, band.srf_response)
    assert np.array_equal(again.log_radiance, lut.log_radiance)
    rng = np.random.default_rng(5)
    temperature = np.concatenate([rng.uniform(110.0, 490.0, 50_000), lut.temperature_k, [np.nan, 480.0]])
    expected = np.exp(np.interp(temperature, lut.temperature_k, lut.log_radiance, left=np.nan, right=np.nan))
    np.testing.assert_allclose(lut.radiance(temperature), expected, rtol=1e-13)
    assert np.array_equal(np.isnan(lut.radiance(temperature)), np.isnan(expected))
    radiance = np.concatenate([lut.radiance(rng.uniform(115.0, 485.0, 50_000)), np.exp(lut.log_radiance), [0.0, -1.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_l = np.where(radiance > 0, np.log(np.where(radiance > 0, radiance, 1.0)), np.nan)
    np.testing.assert_allclose(
        lut.temperature(radiance),
        np.interp(log_l, lut.log_radiance, lut.temperature_k, left=np.nan, right=np.nan),
        rtol=1e-13,
    )
