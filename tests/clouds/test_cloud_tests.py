"""Each cloud test on a pixel built to trigger it and on pixels built not to (snow, desert, water, vegetation).

Pixels are built from the physics the tests rely on: band radiances of a surface (temperature, band
emissivity) seen through an atmosphere (τ, L↑, L↓ of a mid-latitude summer, AFGL-like orders of magnitude)
and of a cloud layer over it (the simulator's layer equation).
"""
from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.clouds import tests as T
from akkd_scale.physics.forward import at_sensor_radiance
from akkd_scale.sensors import ASTER_TIR, band_radiance, brightness_temperature

#: Mid-latitude summer, nadir, sea level (band τ, L↑, L↓ of the order LOWTRAN gives; docs/radiative_transfer).
TAU = np.array([0.62, 0.74, 0.81, 0.83, 0.80])
L_UP = np.array([1.9, 1.35, 0.95, 0.95, 1.1])
L_DOWN = np.array([3.4, 2.6, 2.0, 1.9, 2.2])
#: Band emissivities (B10…B14) of the test surfaces.
EMISSIVITY = {"vegetation": [0.975, 0.975, 0.978, 0.985, 0.985], "water": [0.985, 0.986, 0.987, 0.990, 0.986],
              "desert": [0.80, 0.78, 0.82, 0.95, 0.96], "snow": [0.995, 0.994, 0.992, 0.990, 0.975]}
#: (band 1, band 2, band 3N) TOA reflectance of the test surfaces and of a thick cloud.
REFLECTANCE = {"vegetation": (0.07, 0.04, 0.40), "water": (0.06, 0.04, 0.02), "desert": (0.32, 0.40, 0.46),
               "snow": (0.85, 0.84, 0.74), "cloud": (0.63, 0.62, 0.62)}  # a thick cloud: flat to ≈ 2 %


def bt_of_surface(lst, surface) -> np.ndarray:
    """(band, 1, 1) brightness temperatures of a clear pixel."""
    radiance = at_sensor_radiance(np.array([lst]), np.array([EMISSIVITY[surface]]), TAU, L_UP, L_DOWN)
    return brightness_temperature(radiance, ASTER_TIR)[0][:, None, None]


def bt_under_cloud(lst, surface, cloud_k, emissivity) -> np.ndarray:
    """BT of a clear pixel under a cloud of band ``emissivity`` at ``cloud_k`` (above-cloud air neglected)."""
    clear = at_sensor_radiance(np.array([lst]), np.array([EMISSIVITY[surface]]), TAU, L_UP, L_DOWN)[0]
    eps = np.asarray(emissivity)
    radiance = (1 - eps) * clear + eps * band_radiance(np.array([[cloud_k]]), ASTER_TIR)[0]
    return brightness_temperature(radiance[None], ASTER_TIR)[0][:, None, None]


def rho(name) -> np.ndarray:
    return np.array(REFLECTANCE[name], float)[:, None, None]


#: Semi-transparent cirrus (visible τ ≈ 1, 25 µm crystals): the simulator's band emissivities.
CIRRUS_EMISSIVITY = [0.33, 0.32, 0.32, 0.39, 0.39]


def test_bright_cloud_not_dark_land():
    assert T.bright(rho("cloud")).all()
    for surface in ("vegetation", "water"):
        assert not T.bright(rho(surface)).any(), surface
    assert T.bright(rho("desert")).all() and T.bright(rho("snow")).all()  # left to the next tests


def test_not_vegetation_and_white_separate_cloud_from_vegetation_and_desert():
    assert T.not_vegetation(rho("cloud")).all() and T.white(rho("cloud")).all()
    assert not T.not_vegetation(rho("vegetation")).any() and not T.white(rho("vegetation")).any()
    assert not T.white(rho("desert")).any()
    assert T.whiteness(rho("cloud")).item() < 0.1 < T.whiteness(rho("desert")).item()
    assert T.white(rho("snow")).all()  # snow is white too: the snow test's job


def test_cold_against_the_reference():
    reference = float(bt_of_surface(305.0, "vegetation")[3].item())
    cloud = bt_under_cloud(305.0, "vegetation", 275.0, [0.99] * 5)
    assert T.colder_than(cloud[3], reference, T.COLD_MARGIN_K).all()
    warm_desert = bt_of_surface(318.0, "desert")
    assert not T.colder_than(warm_desert[3], reference, T.COLD_MARGIN_K).any()
    assert not T.colder_than(np.array([[np.nan]]), reference, 1.0).any()


def test_cirrus_tri_spectral_signature():
    cirrus = bt_under_cloud(300.0, "vegetation", 225.0, CIRRUS_EMISSIVITY)
    assert T.cirrus_tri(cirrus[1], cirrus[3]).all()
    assert T.cirrus_tri(cirrus[1], cirrus[3], T.NIGHT_CIRRUS_TRI_MIN_K).all()
    for surface, lst in (("vegetation", 300.0), ("water", 295.0), ("desert", 320.0), ("snow", 272.0)):
        clear = bt_of_surface(lst, surface)
        assert not T.cirrus_tri(clear[1], clear[3]).any(), surface
    opaque = bt_under_cloud(300.0, "vegetation", 270.0, [0.98, 0.98, 0.98, 0.99, 0.99])
    assert not T.cirrus_tri(opaque[1], opaque[3]).any()


def test_cirrus_split_window_signature():
    # small crystals (r ≈ 5 µm: anomalous-diffraction Q_abs 0.29, 0.66, 0.86 in B11, B13, B14 at visible τ 1)
    thin = bt_under_cloud(310.0, "vegetation", 220.0, [0.14, 0.14, 0.14, 0.28, 0.35])
    assert T.cirrus_split(thin[3], thin[4]).all()
    for surface, lst in (("vegetation", 300.0), ("water", 295.0), ("desert", 320.0), ("snow", 272.0)):
        clear = bt_of_surface(lst, surface)
        assert not T.cirrus_split(clear[3], clear[4]).any(), surface


def test_texture_sees_a_cloud_edge_not_smooth_land():
    smooth = 300.0 + np.random.default_rng(0).normal(0, 0.3, (9, 9))  # NEΔT only
    assert not T.textured(T.local_std(smooth)).any()
    edge = smooth.copy()
    edge[:, 5:] -= 20.0  # a cloud deck 20 K colder
    rough = T.textured(T.local_std(edge))
    assert rough[:, 4:6].all() and not rough[:, :3].any() and not rough[:, 7:].any()


def test_local_std_ignores_nan_and_keeps_it():
    values = np.full((5, 5), 290.0)
    values[2, 2] = np.nan
    std = T.local_std(values)
    assert np.isnan(std[2, 2]) and np.allclose(std[np.isfinite(std)], 0.0)


def test_snow_like_day_and_night():
    snow = bt_of_surface(272.5, "snow")
    flat = np.zeros((1, 1))
    assert T.snow_like(snow[3], flat, rho("snow")).all()
    assert T.snow_like(snow[3], flat).all()  # night: near-freezing and smooth
    assert not T.snow_like(snow[3], np.full((1, 1), 3.0)).any()  # night: a rough snowline is not restored
    cloud = bt_under_cloud(300.0, "vegetation", 268.0, [0.99] * 5)
    assert not T.snow_like(cloud[3], flat, rho("cloud")).any()  # no ice-grain absorption at 0.81 µm
    bluish = np.array([0.66, 0.63, 0.62])[:, None, None]  # strong band-1 Rayleigh over a low sun: the confusion
    assert T.snow_like(cloud[3], flat, bluish).all()
    cold_top = bt_under_cloud(300.0, "vegetation", 240.0, [0.99] * 5)
    assert not T.snow_like(cold_top[3], flat, rho("snow")).any() and not T.snow_like(cold_top[3], flat).any()
    warm_desert = bt_of_surface(318.0, "desert")
    assert not T.snow_like(warm_desert[3], flat, rho("desert")).any()


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_dilate_grows_by_a_disk(radius):
    mask = np.zeros((11, 11), bool)
    mask[5, 5] = True
    grown = T.dilate(mask, radius)
    y, x = np.nonzero(grown)
    assert grown[5, 5] and np.hypot(y - 5, x - 5).max() <= radius * np.sqrt(2) + 1e-9
    assert grown[5, 5 + radius] and grown[5 - radius, 5] and grown.sum() >= 1 + 4 * radius
