"""Demo scenes: the simulator's land-cover classes, truth kept, physically consistent with the L1B file the
reader sees (TIR and VNIR NDVI), deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.conventions import LAND_COVER_CLASSES, OUTPUT_ATTRS
from akkd_scale.errors import ParameterError
from akkd_scale.io import open_aster_l1b
from akkd_scale.physics.forward import at_sensor_radiance
from akkd_scale.sensors import ASTER_TIR, brightness_temperature
from akkd_scale.simulate.l1b_writer import vnir_dn_for_ndvi, write_aster_l1b
from akkd_scale.simulate.scenes import MIN_EMISSIVITY, SCENE_CLASSES, demo_surfaces, make_demo_scene
from akkd_scale.simulate.surfaces import PRIORS

SHAPE = (64, 80)
SCENE_CODES = {LAND_COVER_CLASSES.index(name) for name in SCENE_CLASSES}
WATER = LAND_COVER_CLASSES.index("water")


@pytest.fixture(scope="module")
def surfaces():
    return demo_surfaces((6.3,))


@pytest.fixture(scope="module")
def scene(surfaces):
    return make_demo_scene(SHAPE, seed=3, surfaces=surfaces)


def test_demo_surfaces_are_the_simulators_held_out_class_surfaces(surfaces):
    assert set(surfaces["split"].values) == {"test"}
    assert set(surfaces["land_cover"].values.tolist()) == SCENE_CODES
    assert "snow_ice" not in SCENE_CLASSES
    assert float(surfaces["emissivity"].min()) >= MIN_EMISSIVITY


def test_truth_layers_are_kept_and_physical(scene):
    for name in (
        "lst",
        "emissivity",
        "surface_altitude",
        "column_water_vapour",
        "land_cover",
        "vegetation_fraction",
        "ndvi",
        "transmittance",
        "path_radiance",
        "sky_radiance",
        "surface_air_temperature",
    ):
        assert name in scene, name
    cover = scene["land_cover"]
    assert cover.dtype == np.int8
    assert cover.attrs["flag_meanings"] == OUTPUT_ATTRS["land_cover"]["flag_meanings"]
    present = set(np.unique(cover.values).tolist())
    assert present <= SCENE_CODES and WATER in present and len(present) >= 6, present
    assert MIN_EMISSIVITY <= float(scene["emissivity"].min()) and float(scene["emissivity"].max()) <= 1.0
    water = cover.values == WATER
    assert np.ptp(scene["emissivity"].values[:, water], axis=1).max() < 1e-12  # the lake is one water surface
    tau = scene["transmittance"].values
    assert np.all((tau > 0) & (tau < 1))


def test_lst_follows_the_class_priors_daytime_half(scene):
    offset = scene["lst"].values - scene["surface_air_temperature"].values
    cover = scene["land_cover"].values
    for code in np.unique(cover):
        lo, hi = PRIORS[LAND_COVER_CLASSES[code]].lst_offset
        own = offset[cover == code]
        assert own.min() >= (lo + hi) / 2 - 1e-3 and own.max() <= hi + 1e-3, LAND_COVER_CLASSES[code]
    bare, water = (offset[cover == LAND_COVER_CLASSES.index(n)].mean() for n in ("bare_rock_desert", "water"))
    assert bare > water + 10  # bare ground heats far above the air, water stays near it


def test_ndvi_follows_vegetation_cover(scene):
    cover, ndvi = scene["land_cover"].values, scene["ndvi"].values
    mean = {
        name: ndvi[cover == LAND_COVER_CLASSES.index(name)].mean()
        for name in ("water", "tree_cover", "bare_rock_desert")
    }
    assert mean["water"] < 0 < mean["bare_rock_desert"] < mean["tree_cover"]
    land = cover != WATER
    assert np.corrcoef(scene["vegetation_fraction"].values[land], ndvi[land])[0, 1] > 0.8


def test_mountain_is_colder_and_drier_and_moisture_rises_eastward(scene):
    altitude = scene["surface_altitude"].values
    summit, lowland = altitude >= altitude.max() - 0.2, altitude < 0.2
    air = scene["surface_air_temperature"].values
    assert air[lowland].mean() - air[summit].mean() > 10.0  # ≈ 6.5 K/km over ≈ 2.5 km
    assert air[summit].mean() > 273.15 + 5  # why the scenes have no snow
    cwv = scene["column_water_vapour"].values
    assert cwv[lowland & (np.arange(SHAPE[1]) > 0.8 * SHAPE[1])].mean() > 2 * cwv[:, :8].mean()


def test_resimulated_truth_matches_the_l1b_file_the_reader_sees(scene, tmp_path):
    """Forward model of the kept truth vs what the reader returns from the written HDF: only NEΔT noise
    (0.3 K) and 12-bit quantisation separate them; the VNIR bands give back the true NDVI."""
    when, sun = "2004-07-15T18:30:05Z", (135.0, 62.0)
    vnir = vnir_dn_for_ndvi(scene["ndvi"].values, acquisition_time=when, solar_direction=sun)
    path = write_aster_l1b(
        tmp_path / "scene.hdf",
        radiance=scene["radiance"].values,
        shape=SHAPE,
        vnir_dn=vnir,
        acquisition_time=when,
        solar_direction=sun,
    )
    ds = open_aster_l1b(path)
    observed = ds["brightness_temperature"].transpose("y", "x", "band").values
    t = lambda name: scene[name].transpose("y", "x", "band").values  # noqa: E731
    clean = brightness_temperature(
        at_sensor_radiance(
            scene["lst"].values, t("emissivity"), t("transmittance"), t("path_radiance"), t("sky_radiance"), ASTER_TIR
        ),
        ASTER_TIR,
    )
    difference = observed - clean
    assert abs(float(np.mean(difference))) < 0.02
    assert 0.25 < float(np.std(difference)) < 0.40
    assert np.abs(ds["ndvi"].values - scene["ndvi"].values).max() < 0.01  # 8-bit DN rounding only


def test_deterministic_for_a_seed_and_one_ground_for_a_landscape_seed(surfaces):
    a, b = (make_demo_scene((32, 40), seed=7, surfaces=surfaces) for _ in range(2))
    c = make_demo_scene((32, 40), seed=8, surfaces=surfaces)
    d = make_demo_scene((32, 40), seed=8, landscape_seed=7, surfaces=surfaces, atmosphere="tropical")
    assert np.array_equal(a["radiance"].values, b["radiance"].values)
    assert not np.array_equal(a["lst"].values, c["lst"].values)
    assert not np.array_equal(a["land_cover"].values, c["land_cover"].values)
    for name in ("land_cover", "emissivity", "ndvi"):  # same ground under another atmosphere
        assert np.array_equal(a[name].values, d[name].values), name
    assert not np.array_equal(a["lst"].values, d["lst"].values)


@pytest.mark.parametrize(
    "kwargs, variable, problem",
    [
        ({"shape": (8, 8)}, "shape", r"shape \(8, 8\) \(expected \(ny, nx\), both ≥ 16\)"),
        ({"view_zenith": 45.0}, "view_zenith", r"view_zenith=45\.0 \(expected 0–30°"),
        ({"mountain_km": 3.5}, "altitude_grid", r"altitude grid tops at 2\.8 km \(expected a grid reaching the summit"),
    ],
)
def test_bad_parameters_are_named(kwargs, variable, problem):
    shape = kwargs.pop("shape", (32, 32))
    with pytest.raises(ParameterError, match=f"{variable}: {problem}"):
        make_demo_scene(shape, **kwargs)
