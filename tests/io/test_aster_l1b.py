"""The lazy ASTER L1B reader on real HDF4 files written with pyhdf."""

from __future__ import annotations

import math
import os

import dask
import numpy as np
import pytest
import xarray as xr
from pyhdf.SD import SD, SDC

from akkd_scale.errors import SceneFileError
from akkd_scale.io import open_aster_l1b, view_zenith_from_pointing
from akkd_scale.sensors import ASTER_TIR, brightness_temperature
from akkd_scale.simulate.l1b_writer import write_aster_l1b

SHAPE = (40, 50)
UCC = [6.822e-3, 6.780e-3, 6.590e-3, 5.693e-3, 5.225e-3]


def input_bt(shape=SHAPE):
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    base = 260.0 + 60.0 * xx / shape[1] + 10.0 * yy / shape[0]
    return np.stack([base - 2.0, base - 1.5, base - 1.0, base, base - 0.4])


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    fill = np.zeros(SHAPE, bool)
    fill[:3, :5] = True  # a fill corner, as at real scene edges
    path = tmp_path_factory.mktemp("l1b") / "AST_L1B_00307152004183005_test.hdf"
    write_aster_l1b(
        path,
        brightness_temperature=input_bt(),
        shape=SHAPE,
        fill_mask=fill,
        pointing_angle=-5.7,
        center_lat=36.5,
        center_lon=-116.9,
        acquisition_time="2004-07-15T18:30:05.250Z",
    )
    return path, fill


def read_tir_sds(path, name):
    """Independent read: the SDS called ``name`` whose dimensions end with ':TIR_Swath'."""
    sd = SD(str(path), SDC.READ)
    try:
        for index in range(sd.info()[0]):
            sds = sd.select(index)
            info = sds.info()
            dims = [sds.dim(k).info()[0] for k in range(info[1])]
            if info[0] == name and all(d.endswith(":TIR_Swath") for d in dims):
                return np.asarray(sds[:])
    finally:
        sd.end()
    raise AssertionError(f"{name} not found")


def test_opening_does_not_compute(scene, compute_counter):
    path, _ = scene
    with compute_counter as counter:
        ds = xr.open_dataset(path, engine="aster_l1b", chunks={})
        _ = ds.attrs["acquisition_time"], ds.brightness_temperature.shape, ds.latitude.chunks
        assert counter.count == 0
        assert isinstance(ds.brightness_temperature.data, dask.array.Array)
        assert isinstance(ds.latitude.data, dask.array.Array)
        ds.brightness_temperature.sum().compute()
    assert counter.count == 1


def test_lazy_equals_eager_and_independent_calibration(scene):
    path, fill = scene
    lazy = open_aster_l1b(path, chunks={"y": 8})
    eager = xr.open_dataset(path, engine="aster_l1b").load()
    xr.testing.assert_identical(lazy.compute(), eager)
    for i, band in enumerate(ASTER_TIR.band_names):
        dn = read_tir_sds(path, f"ImageData{band[1:]}").astype(float)
        expected = np.where(dn == 0, np.nan, (dn - 1) * UCC[i])
        np.testing.assert_allclose(eager.radiance.sel(band=band), expected, rtol=1e-6)
    assert eager.radiance.dtype == np.float32 and eager.brightness_temperature.dtype == np.float32
    assert np.isnan(eager.brightness_temperature.values[:, fill]).all()
    assert np.isfinite(eager.brightness_temperature.values[:, ~fill]).all()


def test_brightness_temperature_recovers_written_field(scene):
    path, fill = scene
    bt = xr.open_dataset(path, engine="aster_l1b").brightness_temperature.values
    error = np.abs(bt - input_bt())[:, ~fill]
    # one DN is 0.005-0.007 W m-2 sr-1 um-1, i.e. < 0.1 K at 260-320 K: rounding costs at most half of it
    assert error.max() < 0.05
    radiance = xr.open_dataset(path, engine="aster_l1b").radiance.values
    np.testing.assert_allclose(bt, brightness_temperature(radiance, ASTER_TIR, band_axis=0), atol=1e-4)


def test_fill_and_saturated_dn_are_nan(tmp_path):
    dn = np.full((5,) + SHAPE, 1500, np.uint16)
    dn[:, 4, 6] = 0
    dn[2, 10, 11] = 4095
    dn[3, 12, 13] = 4094
    path = write_aster_l1b(tmp_path / "AST_L1B_dn.hdf", dn=dn, shape=SHAPE)
    ds = xr.open_dataset(path, engine="aster_l1b")
    radiance = ds.radiance.values
    assert np.isnan(radiance[:, 4, 6]).all()
    assert np.isnan(radiance[2, 10, 11]) and np.isfinite(radiance[[0, 1, 3, 4], 10, 11]).all()
    assert radiance[3, 12, 13] == pytest.approx(4093 * UCC[3], rel=1e-6)
    assert np.isnan(ds.brightness_temperature.values[2, 10, 11])


def test_chunks_honoured_and_preferred_chunks(scene):
    path, _ = scene
    with pytest.warns(UserWarning, match="separate the stored chunks"):  # x splits the stored rows
        ds = xr.open_dataset(path, engine="aster_l1b", chunks={"y": 8, "x": 25})
    assert ds.radiance.chunks == ((5,), (8,) * 5, (25, 25))
    assert ds.latitude.chunks == ((8,) * 5, (25, 25))
    preferred = ds.brightness_temperature.encoding["preferred_chunks"]
    assert preferred["band"] == 5 and set(preferred) == {"band", "y", "x"}
    default = xr.open_dataset(path, engine="aster_l1b", chunks={})
    assert default.radiance.chunks[1][0] == preferred["y"] and default.radiance.chunks[2] == (preferred["x"],)
    one_band_chunk = open_aster_l1b(path, chunks={"band": 1, "y": 20})
    assert one_band_chunk.brightness_temperature.chunks[0] == (5,)


def test_geolocation_equals_lattice_at_lattice_points(scene):
    path, _ = scene
    ds = xr.open_dataset(path, engine="aster_l1b")
    lat_c = read_tir_sds(path, "Latitude")
    lon = read_tir_sds(path, "Longitude")
    lat = np.degrees(np.arctan(1.0067395 * np.tan(np.radians(lat_c))))
    increment = (math.ceil(SHAPE[0] / 10), math.ceil(SHAPE[1] / 10))
    rows = [k for k in range(11) if k * increment[0] < SHAPE[0]]
    cols = [k for k in range(11) if k * increment[1] < SHAPE[1]]
    got_lat = ds.latitude.values[np.ix_([r * increment[0] for r in rows], [c * increment[1] for c in cols])]
    got_lon = ds.longitude.values[np.ix_([r * increment[0] for r in rows], [c * increment[1] for c in cols])]
    np.testing.assert_allclose(got_lat, lat[np.ix_(rows, cols)], atol=1e-9)
    np.testing.assert_allclose(got_lon, lon[np.ix_(rows, cols)], atol=1e-9)
    assert abs(float(ds.latitude.mean()) - 36.5) < 0.05  # geodetic (the stored geocentric is ≈0.19° lower)
    # between lattice points the interpolation is bilinear: half-way down a cell edge is the mean
    assert increment[0] % 2 == 0
    assert ds.latitude.values[increment[0] // 2, 0] == pytest.approx((lat[0, 0] + lat[1, 0]) / 2, abs=1e-9)
    assert ds.latitude.attrs["units"] == "degrees_north" and ds.longitude.attrs["standard_name"] == "longitude"


def test_longitude_across_antimeridian(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_dateline.hdf", shape=SHAPE, center_lon=179.99, center_lat=-16.0)
    lon = xr.open_dataset(path, engine="aster_l1b").longitude.values
    assert lon.min() >= -180.0 and lon.max() < 180.0
    assert (lon > 179).any() and (lon < -179).any()
    steps = np.diff(lon, axis=1)
    steps = (steps + 180.0) % 360.0 - 180.0
    assert np.abs(steps).max() < 0.01  # continuous modulo 360: no jump from interpolating across ±180


def test_view_zenith_time_and_attributes(scene):
    path, _ = scene
    ds = xr.open_dataset(path, engine="aster_l1b")
    expected = math.degrees(math.asin((6371.0 + 705.0) / 6371.0 * math.sin(math.radians(5.7))))
    assert float(ds.view_zenith) == pytest.approx(expected, abs=1e-9)
    assert ds.view_zenith.attrs["units"] == "degree" and ds.view_zenith.attrs["pointing_angle"] == -5.7
    assert view_zenith_from_pointing(0.0) == 0.0
    assert ds.attrs["acquisition_time"] == "2004-07-15T18:30:05.250000Z"
    assert ds.attrs["source_file"] == str(path.resolve())
    assert ds.attrs["product"] == "ASTL1B" and ds.attrs["processing_level"] == "1B"
    assert list(ds.band.values) == ["B10", "B11", "B12", "B13", "B14"]
    np.testing.assert_allclose(ds.wavelength.values, ASTER_TIR.centers_um)
    for name, units in (("radiance", "W m-2 sr-1 um-1"), ("brightness_temperature", "K")):
        assert ds[name].attrs["units"] == units and "standard_name" in ds[name].attrs


def test_unit_conversion_from_metadata(tmp_path):
    custom = {"B10": 7e-3, "B11": 7e-3, "B12": 7e-3, "B13": 6e-3, "B14": 5e-3}
    dn = np.full((5,) + SHAPE, 2001, np.uint16)
    with_meta = write_aster_l1b(tmp_path / "AST_L1B_custom.hdf", dn=dn, shape=SHAPE, unit_conversion=custom)
    without = write_aster_l1b(tmp_path / "AST_L1B_none.hdf", dn=dn, shape=SHAPE, unit_conversion=False)
    np.testing.assert_allclose(
        xr.open_dataset(with_meta, engine="aster_l1b").radiance.values[:, 0, 0],
        [2000 * custom[b] for b in ASTER_TIR.band_names],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        xr.open_dataset(without, engine="aster_l1b").radiance.values[:, 0, 0], [2000 * u for u in UCC], rtol=1e-6
    )


def test_engine_guessed_from_file(scene):
    path, _ = scene
    ds = xr.open_dataset(path)
    assert "brightness_temperature" in ds


def test_read_failure_after_open_names_file(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_vanishing.hdf", shape=SHAPE)
    ds = open_aster_l1b(path)
    with open(path, "r+b") as handle:  # the file is damaged after opening, before computing
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(SceneFileError, match="AST_L1B_vanishing.hdf"):
        ds.radiance.compute()


@pytest.mark.slow
def test_computes_on_local_cluster_with_processes(scene):
    import distributed

    path, _ = scene
    names = ["brightness_temperature", "latitude", "ndvi"]
    expected = xr.open_dataset(path, engine="aster_l1b")[names].load()
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster),
    ):
        ds = open_aster_l1b(path, chunks={"y": 20})
        result = ds[names].compute()
    xr.testing.assert_identical(result, expected)
