"""Cloudy demo scenes: physical cloud radiances (opaque water, semi-transparent ice), VNIR reflectance, snow, night,
the truth kept, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.errors import ParameterError
from akkd_scale.simulate.clouds import (DEFAULT_LAYERS, MELTING_POINT_K, MIN_CLOUD_DEPTH_KM, VISIBLE_OPTICAL_DEPTH,
                                        CloudLayer, absorption_efficiency, add_clouds, add_snow, clear_reflectance,
                                        mask_rates, night_scene)
from akkd_scale.simulate.scenes import demo_surfaces, make_demo_scene

SHAPE = (60, 70)
SNOW, WATER = LAND_COVER_CLASSES.index("snow_ice"), LAND_COVER_CLASSES.index("water")
BT13, BT11, BT14 = 3, 1, 4


@pytest.fixture(scope="module")
def clear():
    return add_snow(make_demo_scene(SHAPE, seed=5, surfaces=demo_surfaces((6.3,))), 2.0, seed=5)


@pytest.fixture(scope="module")
def cloudy(clear):
    return add_clouds(clear, seed=7)


def test_clear_pixels_keep_their_radiance(clear, cloudy):
    clear_px = cloudy["cloud_type"].values == 0
    assert 0.4 < clear_px.mean() < 0.9
    diff = (cloudy["brightness_temperature"] - cloudy["clear_brightness_temperature"]).values[:, clear_px]
    assert abs(diff.mean()) < 0.05 and diff.std() < 0.4  # NEΔT 0.3 K noise only
    np.testing.assert_allclose(cloudy["clear_brightness_temperature"].values[:, clear_px],
                               clear["brightness_temperature"].values[:, clear_px], atol=1.6)


def test_opaque_water_clouds_show_their_top_temperature(cloudy):
    thick = (cloudy["cloud_optical_depth_water"].values > 15) & (cloudy["cloud_type"].values == 1)
    assert thick.sum() > 50
    bt = cloudy["brightness_temperature"].values[:, thick]
    top = cloudy["cloud_top_temperature"].values[thick]
    # black to within 1–2 %, under the thin, dry air above the cloud: within ≈ 0.5–2.5 K of the top
    assert np.all(np.abs(bt[BT13] - top) < 3.0) and abs(np.mean(bt[BT13] - top)) < 1.5
    # nearly grey across bands 10–14: what spread remains is the water vapour above the cloud, less than the
    # spread (emissivity + whole column) of the clear pixel below
    clear_bt = cloudy["clear_brightness_temperature"].values[:, thick]
    spread, clear_spread = bt.max(axis=0) - bt.min(axis=0), clear_bt.max(axis=0) - clear_bt.min(axis=0)
    assert np.median(spread) < 3.0 and np.mean(spread) < np.mean(clear_spread)
    assert np.all(top < cloudy["surface_air_temperature"].values[thick])
    assert cloudy["opaque_cloud"].values[thick].all()


def test_cloud_top_temperature_follows_the_profiles_lapse_rate(cloudy):
    water = cloudy["cloud_type"].values == 1
    z, t = cloudy["cloud_top_altitude"].values[water], cloudy["cloud_top_temperature"].values[water]
    slope = np.polyfit(z, t, 1)[0]
    assert -7.5 < slope < -5.0  # AFGL mid-latitude summer, 1–5 km: ≈ 6 K/km
    ground = cloudy["surface_altitude"].values[water]
    assert np.all(z >= np.minimum(DEFAULT_LAYERS[0].top_km[0] - 0.5, ground + MIN_CLOUD_DEPTH_KM) - 1e-6)


def test_ice_absorbs_more_at_11_um_than_at_8_um():
    q = absorption_efficiency("ice", 25.0)
    assert q[0] < q[3] < q[4] and q[1] < 0.85 and q[4] > 0.95
    small = absorption_efficiency("ice", 10.0)
    assert (small < q).all()  # small crystals absorb less per area (ADA)
    water = absorption_efficiency("water", 10.0)
    assert water[1] < water[3] < water[4]


def test_cirrus_has_the_band_difference_signatures(cloudy):
    ice = cloudy["cloud_type"].values == 2
    thin = ice & (cloudy["cloud_optical_depth_ice"].values >= VISIBLE_OPTICAL_DEPTH)
    clear_px = cloudy["cloud_type"].values == 0
    assert thin.sum() > 50
    bt, clear_bt = cloudy["brightness_temperature"].values, cloudy["clear_brightness_temperature"].values
    tri, clear_tri = bt[BT11] - bt[BT13], clear_bt[BT11] - clear_bt[BT13]
    split, clear_split = bt[BT13] - bt[BT14], clear_bt[BT13] - clear_bt[BT14]
    assert np.mean(tri[thin] - clear_tri[thin]) > 2.0 and np.median(tri[thin]) > np.percentile(tri[clear_px], 99)
    assert np.mean(split[thin] - clear_split[thin]) > 0.3
    assert np.all(bt[BT13][thin] < clear_bt[BT13][thin])  # colder than the ground below


def test_vnir_clouds_are_bright_and_white_clear_reflectance_matches_ndvi(clear, cloudy):
    rho = cloudy["reflectance"].values
    assert cloudy["reflectance"].dims == ("vnir_band", "y", "x") and list(cloudy["vnir_band"].values) == ["1", "2", "3N"]
    thick = cloudy["cloud_optical_depth_water"].values > 15
    assert np.all(rho[1][thick] > 0.45)
    flat = np.abs(rho[:, thick] / rho[:, thick].mean(axis=0) - 1).sum(axis=0)
    assert np.median(flat) < 0.1
    base = clear_reflectance(clear, seed=7)
    land = clear["land_cover"].values != SNOW
    ndvi = (base[2] - base[1]) / (base[2] + base[1])
    np.testing.assert_allclose(ndvi[land], np.clip(clear["ndvi"].values[land], -0.9, 0.95), atol=1e-5)
    water = clear["land_cover"].values == WATER
    assert np.all(base[1][water] < 0.07)
    bright = clear_reflectance(clear, seed=7, bright_desert=True)
    desert = clear["land_cover"].values == LAND_COVER_CLASSES.index("bare_rock_desert")
    assert desert.any() and np.all(bright[1][desert] >= 0.30) and np.all(bright[1][desert] <= 0.45)
    # the cloudy scene's NDVI is the cloudy TOA NDVI; the clear one is kept
    assert abs(float(np.median(cloudy["ndvi"].values[thick]))) < 0.05
    np.testing.assert_array_equal(cloudy["clear_ndvi"].values, clear["ndvi"].values)


def test_truth_mask_and_types(cloudy):
    water_tau = cloudy["cloud_optical_depth_water"].values
    ice_tau = cloudy["cloud_optical_depth_ice"].values
    truth = cloudy["cloud_mask"].values
    np.testing.assert_array_equal(truth, (water_tau >= VISIBLE_OPTICAL_DEPTH) | (ice_tau >= VISIBLE_OPTICAL_DEPTH))
    kinds = cloudy["cloud_type"].values
    np.testing.assert_array_equal(kinds, (water_tau > 0) * 1 + (ice_tau > 0) * 2)
    assert np.isnan(cloudy["cloud_top_temperature"].values[kinds == 0]).all()
    assert 0.1 < cloudy.attrs["cloud_fraction"] < 0.5 and cloudy.attrs["solar_zenith"] == 30.0
    perfect = mask_rates(cloudy, truth)
    assert perfect.opaque == 1.0 and perfect.cirrus == 1.0 and perfect.false_alarm == 0.0
    assert mask_rates(cloudy, np.zeros_like(truth)).opaque == 0.0


def test_snow_on_the_mountain(clear):
    snow = clear["land_cover"].values == SNOW
    assert snow.any() and np.all(clear["surface_altitude"].values[snow] > 1.6)
    assert np.all(clear["lst"].values[snow] <= MELTING_POINT_K + 1e-3)
    assert np.all(clear["brightness_temperature"].values[3][snow] < 275.0)
    assert np.all((clear["ndvi"].values[snow] >= -0.1) & (clear["ndvi"].values[snow] <= 0.03))
    rho = clear_reflectance(clear)
    assert np.all(rho[1][snow] >= 0.65) and np.all(rho[2][snow] / rho[0][snow] < 0.96)  # ice-grain absorption


def test_night_scene(clear):
    night = night_scene(clear, seed=5)
    cover = clear["land_cover"].values
    land = (cover != WATER) & (cover != SNOW)
    assert np.mean(night["lst"].values[land]) < np.mean(clear["lst"].values[land]) - 5
    water = cover == WATER
    assert np.all(night["lst"].values[water] >= night["surface_air_temperature"].values[water] - 1.3)
    assert np.all(night["lst"].values[cover == SNOW] <= 270.0)
    cloudy = add_clouds(night, seed=7, day=False)
    assert "reflectance" not in cloudy and np.isnan(cloudy["ndvi"].values).all()
    assert np.isnan(cloudy.attrs["solar_zenith"])


def test_deterministic_and_bad_input(clear):
    small = clear.isel(y=slice(0, 20), x=slice(0, 24))
    a, b = add_clouds(small, seed=3), add_clouds(small, seed=3)
    np.testing.assert_array_equal(a["radiance"].values, b["radiance"].values)
    with pytest.raises(ParameterError, match="layers"):
        add_clouds(small, (CloudLayer("smoke", 0.2, (1.0, 2.0), (1.0, 2.0)),))
    with pytest.raises(ParameterError, match="layers"):
        add_clouds(small, (CloudLayer("ice", 0.2, (8.0, 20.0), (1.0, 2.0)),))
    with pytest.raises(ParameterError, match="make_demo_scene"):
        add_clouds(small.drop_vars("transmittance"))
