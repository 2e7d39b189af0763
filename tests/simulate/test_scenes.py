"""Demo scenes: truth kept, physically consistent with the L1B file the reader sees, deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.errors import ParameterError
from akkd_scale.io import open_aster_l1b
from akkd_scale.physics.forward import at_sensor_radiance
from akkd_scale.sensors import ASTER_TIR, brightness_temperature
from akkd_scale.simulate.scenes import LAND_COVER, make_demo_scene
from akkd_scale.testing.l1b import write_aster_l1b

SHAPE = (64, 80)


@pytest.fixture(scope="module")
def scene():
    return make_demo_scene(SHAPE, seed=3)


def test_truth_layers_are_kept_and_physical(scene):
    for name in ("lst", "emissivity", "surface_altitude", "column_water_vapour", "land_cover", "transmittance",
                 "path_radiance", "sky_radiance", "surface_air_temperature"):
        assert name in scene, name
    assert set(np.unique(scene["land_cover"].values)) == set(LAND_COVER)
    assert 0.8 <= float(scene["emissivity"].min()) and float(scene["emissivity"].max()) <= 1.0
    water = scene["land_cover"].values == 0
    assert np.ptp(scene["emissivity"].values[:, water], axis=1).max() == 0.0  # one Fresnel ε for the lake
    tau = scene["transmittance"].values
    assert np.all((tau > 0) & (tau < 1))


def test_mountain_is_colder_and_drier_and_moisture_rises_eastward(scene):
    altitude = scene["surface_altitude"].values
    summit, lowland = altitude >= altitude.max() - 0.2, altitude < 0.2
    air = scene["surface_air_temperature"].values
    assert air[lowland].mean() - air[summit].mean() > 10.0  # ≈ 6.5 K/km over ≈ 2.5 km
    cwv = scene["column_water_vapour"].values
    assert cwv[lowland & (np.arange(SHAPE[1]) > 0.8 * SHAPE[1])].mean() > 2 * cwv[:, :8].mean()


def test_resimulated_truth_matches_the_l1b_brightness_temperature_within_noise(scene, tmp_path):
    """Forward model of the kept truth vs what the reader returns from the written HDF: only NEΔT noise
    (0.3 K) and 12-bit quantisation separate them."""
    path = write_aster_l1b(tmp_path / "scene.hdf", radiance=scene["radiance"].values, shape=SHAPE)
    observed = open_aster_l1b(path)["brightness_temperature"].transpose("y", "x", "band").values
    t = lambda name: scene[name].transpose("y", "x", "band").values  # noqa: E731
    clean = brightness_temperature(at_sensor_radiance(scene["lst"].values, t("emissivity"), t("transmittance"),
                                                      t("path_radiance"), t("sky_radiance"), ASTER_TIR), ASTER_TIR)
    difference = observed - clean
    assert abs(float(np.mean(difference))) < 0.02
    assert 0.25 < float(np.std(difference)) < 0.40


def test_deterministic_for_a_seed():
    a, b = make_demo_scene((32, 40), seed=7), make_demo_scene((32, 40), seed=7)
    c = make_demo_scene((32, 40), seed=8)
    assert np.array_equal(a["radiance"].values, b["radiance"].values)
    assert not np.array_equal(a["lst"].values, c["lst"].values)


@pytest.mark.parametrize("kwargs, variable", [({"shape": (8, 8)}, "shape"), ({"view_zenith": 45.0}, "view_zenith"),
                                              ({"mountain_km": 3.5}, "altitude_grid")])
def test_bad_parameters_are_named(kwargs, variable):
    shape = kwargs.pop("shape", (32, 32))
    with pytest.raises(ParameterError, match=variable):
        make_demo_scene(shape, **kwargs)
