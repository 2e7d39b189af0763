"""Reanalysis atmosphere as network inputs: ``retrieve(atmosphere_data=...)`` and ``run --atmosphere-data`` on a
real L1B file and a real ERA5-layout NetCDF, against the bundle's own prediction with the interpolated values."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from akkd_scale.cli import main
from akkd_scale.conventions import ATMOSPHERE_GIVEN, CWV, TAIR
from akkd_scale.errors import InputError, ParameterError
from akkd_scale.io.reanalysis import read_atmosphere
from akkd_scale.models.bundle import load_bundle
from akkd_scale.pipeline.graph import retrieve
from akkd_scale.simulate.reanalysis_writer import era5_from_pixels, write_era5


@pytest.fixture(scope="module")
def atmosphere_bundle(tmp_path_factory):
    from akkd_scale.training.random_bundle import write_random_bundle

    return write_random_bundle(tmp_path_factory.mktemp("bundle") / "random_atmosphere", seed=3, atmosphere=True)


@pytest.fixture(scope="module")
def scene(scenes):
    ds = xr.open_dataset(scenes["good_a"], engine="aster_l1b").load()
    yield ds
    ds.close()


def _era5(scene, tmp_path, name="era5.nc", *, west_of=None, seed=0):
    lat, lon = scene["latitude"].values, scene["longitude"].values
    cwv = 1.0 + 3.0 * (lon - lon.min()) / np.ptp(lon)  # a humid east as in the demo
    tair = 290.0 + 8.0 * (lat - lat.min()) / np.ptp(lat)
    resolution = 0.25 if west_of is None else 0.01
    ds = era5_from_pixels(lat, lon, cwv, tair, scene.attrs["acquisition_time"], seed=seed, resolution=resolution)
    if west_of is not None:  # longitudes are 0-360 in the file
        ds = ds.sel(longitude=ds["longitude"] <= west_of % 360.0)
    return write_era5(ds, tmp_path / name)


def test_retrieval_uses_the_interpolated_atmosphere(atmosphere_bundle, scene, tmp_path):
    path = _era5(scene, tmp_path)
    result = retrieve(scene, atmosphere_bundle, atmosphere_data=path, cloud_mask="none", landcover="none")
    expected_atm = read_atmosphere(path, scene["latitude"], scene["longitude"], scene.attrs["acquisition_time"])
    bundle = load_bundle(atmosphere_bundle)
    bt = scene["brightness_temperature"].transpose("y", "x", "band").values.reshape(-1, 5)
    vza = np.broadcast_to(scene["view_zenith"].values, scene["latitude"].shape).ravel()
    extra = {
        "ndvi": scene["ndvi"].values.ravel(),
        CWV: expected_atm[CWV].values.ravel(),
        TAIR: expected_atm[TAIR].values.ravel(),
    }
    want = bundle.predict(bt, vza, heads=("fusion",), extra=extra)["fusion"]["lst"].reshape(scene["latitude"].shape)
    np.testing.assert_allclose(result["lst"].values, want, rtol=0, atol=1e-4)
    assert (result[ATMOSPHERE_GIVEN].values == 1).all()
    assert result.attrs["atmosphere_data"] == "reanalysis files"
    assert result.attrs["atmosphere_sha256"] and result.attrs["atmosphere_files"][0].endswith("era5.nc")
    # the atmosphere changes the answer: without it the networks see the missing values
    bare = retrieve(scene, atmosphere_bundle, cloud_mask="none")
    assert ATMOSPHERE_GIVEN not in bare and bare.attrs["atmosphere_data"] == "none"
    assert np.nanmax(np.abs(bare["lst"].values - result["lst"].values)) > 0.05


def test_without_atmosphere_data_a_scene_variable_is_not_used(atmosphere_bundle, scene):
    """A simulated scene's true column water vapour is not fed to the networks unless asked for."""
    with_truth = scene.assign({CWV: scene["latitude"] * 0 + 2.5, TAIR: scene["latitude"] * 0 + 295.0})
    plain = retrieve(scene, atmosphere_bundle, cloud_mask="none")
    ignored = retrieve(with_truth, atmosphere_bundle, cloud_mask="none")
    np.testing.assert_array_equal(plain["lst"].values, ignored["lst"].values)
    used = retrieve(with_truth, atmosphere_bundle, cloud_mask="none", atmosphere_data="dataset")
    assert (used[ATMOSPHERE_GIVEN].values == 1).all()
    assert not np.allclose(used["lst"].values, plain["lst"].values, atol=0.05)


def test_one_missing_atmospheric_input_drops_both(atmosphere_bundle):
    bundle = load_bundle(atmosphere_bundle)
    bt = np.full((3, 5), 295.0, np.float32)
    x, _ = bundle.features(bt, 3.0, {CWV: [2.0, np.nan, 2.0], TAIR: [290.0, 290.0, np.nan]})
    missing = bundle.extra_inputs
    np.testing.assert_array_equal(x[0, -2:], [2.0, 290.0])
    np.testing.assert_array_equal(x[1, -2:], [missing[CWV], missing[TAIR]])
    np.testing.assert_array_equal(x[2, -2:], [missing[CWV], missing[TAIR]])


def test_bundle_without_atmosphere_inputs_is_refused(tiny_bundle_path, scene, tmp_path):
    path = _era5(scene, tmp_path)
    with pytest.raises(ParameterError, match=r"atmosphere data given but the bundle has no column_water_vapour"):
        retrieve(scene, tiny_bundle_path, atmosphere_data=path, cloud_mask="none")


def test_file_not_covering_the_scene_fails_or_runs_bands_only(atmosphere_bundle, scene, tmp_path):
    """A grid cropped to the scene's western part: an error naming the file, or with optional the east runs
    without the atmosphere (flag 0) and gives exactly the bands-only numbers there."""
    path = _era5(scene, tmp_path, "west.nc", west_of=float(scene["longitude"].mean()))
    with pytest.raises(InputError, match=r"west\.nc"):
        retrieve(scene, atmosphere_bundle, atmosphere_data=path, cloud_mask="none")
    result = retrieve(scene, atmosphere_bundle, atmosphere_data=path, atmosphere_data_optional=True, cloud_mask="none")
    given = result[ATMOSPHERE_GIVEN].values
    assert 0 < given.sum() < given.size
    bare = retrieve(scene, atmosphere_bundle, cloud_mask="none")
    np.testing.assert_array_equal(result["lst"].values[given == 0], bare["lst"].values[given == 0])


def test_run_records_the_atmosphere_and_redoes_without_it(atmosphere_bundle, scenes, scene, tmp_path):
    era5 = _era5(scene, tmp_path)
    out = tmp_path / "out.zarr"
    runner = CliRunner()
    args = ["run", str(scenes["good_a"]), "--out", str(out), "--bundle", str(atmosphere_bundle), "--cloud-mask", "none"]
    first = runner.invoke(main, [*args, "--atmosphere-data", str(era5), "--executor", "threads"])
    assert first.exit_code == 0, first.output
    stored = xr.open_zarr(out, group="AST_L1B_good_a", consolidated=False)
    assert (stored[ATMOSPHERE_GIVEN].values == 1).all()
    assert "era5.nc" in stored.attrs["akkd_record"]["atmosphere_data"]
    again = runner.invoke(main, [*args, "--atmosphere-data", str(era5), "--executor", "threads"])
    assert "skipped" in again.output
    without = runner.invoke(main, [*args, "--executor", "threads"])
    assert without.exit_code == 0 and "complete" in without.output, without.output


def test_cli_bad_atmosphere_files(atmosphere_bundle, scenes, tmp_path):
    runner = CliRunner()
    base = ["run", str(scenes["good_a"]), "--out", str(tmp_path / "o.zarr"), "--bundle", str(atmosphere_bundle)]
    missing = runner.invoke(main, [*base, "--atmosphere-data", str(tmp_path / "nope.nc")])
    assert missing.exit_code != 0 and "nope.nc" in missing.output and "no such file" in missing.output
    assert "Traceback" not in missing.output
    pattern = runner.invoke(main, [*base, "--atmosphere-data", str(tmp_path / "era5_*.nc")])
    assert pattern.exit_code != 0 and "matches no file" in pattern.output
    other = tmp_path / "other.nc"
    xr.Dataset({"sst": (("latitude", "longitude"), np.zeros((2, 2)))}).to_netcdf(other, engine="h5netcdf")
    wrong = runner.invoke(main, [*base, "--atmosphere-data", str(other)])
    assert wrong.exit_code != 0 and "other.nc" in wrong.output and "sst" in wrong.output
    assert not (tmp_path / "o.zarr").exists()  # refused before any store or cluster


def _dem_for(scene, path):
    """A DEM in EPSG:4326 over the scene, 0.0005° cells, elevation rising eastwards (0 → ~600 m)."""
    import rioxarray  # noqa: F401

    lat, lon = scene["latitude"].values, scene["longitude"].values
    ys = np.arange(lat.max() + 0.002, lat.min() - 0.002, -0.0005)
    xs = np.arange(lon.min() - 0.002, lon.max() + 0.002, 0.0005)
    values = np.broadcast_to((xs - xs.min()) * 1e4, (ys.size, xs.size)).astype(np.float32)
    da = xr.DataArray(values, dims=("y", "x"), coords={"y": ys, "x": xs}).rio.write_crs("EPSG:4326")
    da.rio.to_raster(path)
    return path


def test_elevation_height_corrects_the_reanalysis(atmosphere_bundle, scene, tmp_path):
    """With a DEM and a file with the surface geopotential, the networks get the height-corrected atmosphere:
    what read_atmosphere gives for the DEM's elevations sampled by hand."""
    from akkd_scale.io.elevation import sample_elevation

    lat, lon = scene["latitude"].values, scene["longitude"].values
    era5 = era5_from_pixels(
        lat,
        lon,
        np.full(lat.shape, 2.0),
        np.full(lat.shape, 295.0),
        scene.attrs["acquisition_time"],
        height=np.full(lat.shape, 100.0),
    )
    path = write_era5(era5, tmp_path / "era5_z.nc")
    dem = _dem_for(scene, tmp_path / "dem.tif")
    result = retrieve(
        scene, atmosphere_bundle, atmosphere_data=path, elevation=dem, cloud_mask="none", landcover="none"
    )
    height = sample_elevation(dem, scene["latitude"], scene["longitude"])
    atm = read_atmosphere(
        path, scene["latitude"], scene["longitude"], scene.attrs["acquisition_time"], elevation=height
    )
    assert float(atm[TAIR].max() - atm[TAIR].min()) > 2.0  # ~600 m of relief: the correction matters
    bundle = load_bundle(atmosphere_bundle)
    bt = scene["brightness_temperature"].transpose("y", "x", "band").values.reshape(-1, 5)
    vza = np.broadcast_to(scene["view_zenith"].values, lat.shape).ravel()
    extra = {"ndvi": scene["ndvi"].values.ravel(), CWV: atm[CWV].values.ravel(), TAIR: atm[TAIR].values.ravel()}
    want = bundle.predict(bt, vza, heads=("fusion",), extra=extra)["fusion"]["lst"].reshape(lat.shape)
    np.testing.assert_allclose(result["lst"].values, want, rtol=0, atol=1e-4)
    assert result.attrs["atmosphere_elevation"] == str(dem)
    assert "lapse rate" in result.attrs["atmosphere_height_correction"]


def test_elevation_needs_atmosphere_and_a_surface_height(atmosphere_bundle, scenes, scene, tmp_path):
    dem = _dem_for(scene, tmp_path / "dem.tif")
    with pytest.raises(ParameterError, match=r"an elevation model but no atmosphere data"):
        retrieve(scene, atmosphere_bundle, elevation=dem, cloud_mask="none")
    no_z = _era5(scene, tmp_path)
    runner = CliRunner()
    out = tmp_path / "o.zarr"
    args = ["run", str(scenes["good_a"]), "--out", str(out), "--bundle", str(atmosphere_bundle)]
    res = runner.invoke(main, [*args, "--atmosphere-data", str(no_z), "--elevation", str(dem)])
    assert res.exit_code != 0 and "no file has the grid's surface height" in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()
