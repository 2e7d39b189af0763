"""VNIR TOA reflectance: the solar constants used, the reader's Earth–Sun distance, round trip, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from akkd_scale.clouds.reflectance import ESUN, MAX_DAY_SOLAR_ZENITH, REFLECTANCE_BANDS, reflectance_factor
from akkd_scale.clouds.reflectance import radiance_from_reflectance, toa_reflectance
from akkd_scale.errors import ParameterError
from akkd_scale.io.aster.vnir import VNIR_BANDS, VNIR_ESUN, earth_sun_distance_au


def test_solar_constants_are_the_readers_plus_band_1_of_the_same_table():
    assert REFLECTANCE_BANDS == ("1", "2", "3N")
    assert ESUN["1"] == 1848.0
    assert tuple(ESUN[b] for b in VNIR_BANDS) == VNIR_ESUN == (1549.0, 1114.0)


def test_reflectance_factor_is_pi_d2_over_esun_cos_sun():
    d = earth_sun_distance_au(172)
    assert reflectance_factor("2", 172, 30.0) == pytest.approx(math.pi * d * d / (1549.0 * math.cos(math.radians(30))))
    radiance = np.array([[100.0, np.nan], [250.0, 0.0]])
    rho = toa_reflectance(radiance, "1", 172, 30.0)
    assert rho.dtype == np.float32 and np.isnan(rho[0, 1]) and rho[1, 1] == 0
    np.testing.assert_allclose(radiance_from_reflectance(rho, "1", 172, 30.0), radiance, rtol=1e-6)
    # a thick cloud (ρ ≈ 0.6) in band 2 at 30° sun: ≈ 270 W m-2 sr-1 um-1, inside ASTER's normal-gain range
    assert 200 < radiance_from_reflectance(0.6, "2", 172, 30.0) < 300


def test_bad_band_or_night_sun():
    with pytest.raises(ParameterError, match="band"):
        reflectance_factor("4", 1, 30.0)
    with pytest.raises(ParameterError, match="solar_zenith"):
        reflectance_factor("2", 1, MAX_DAY_SOLAR_ZENITH + 1)
    with pytest.raises(ParameterError, match="solar_zenith"):
        reflectance_factor("2", 1, float("nan"))
