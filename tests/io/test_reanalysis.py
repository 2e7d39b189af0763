"""Reanalysis reader: ERA5 and MERRA-2 layouts written here, against a hand interpolation (bilinear in space,
linear in time, written independently below), unit conversions, height correction and every bad input."""

from __future__ import annotations

import logging

import dask.array as da
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from akkd_scale.constants import G0, LAPSE_RATE_K_PER_KM, WATER_VAPOUR_SCALE_HEIGHT_KM
from akkd_scale.conventions import CWV, TAIR
from akkd_scale.errors import InputError, ParameterError
from akkd_scale.io.reanalysis import open_reanalysis, read_atmosphere
from akkd_scale.utils import sha256_file

ERA5_TIMES = pd.date_range("2020-07-01T08:00", periods=6, freq="h")
WHEN = np.datetime64("2020-07-01T10:24:00")
#: A 5 × 6 scene across the dateline (longitudes 179.3 … 180.6 given in −180…180), tilted like a swath.
ROWS, COLS = np.meshgrid(np.arange(5), np.arange(6), indexing="ij")
SCENE_LAT = 10.1 + 0.15 * ROWS + 0.02 * COLS
SCENE_LON = ((179.3 + 0.25 * COLS - 0.03 * ROWS) + 180.0) % 360.0 - 180.0


# ------------------------------------------------------------------------------ independent reference


def hand_weights(lat_grid, lon_grid, phi, lam, periodic):
    """[(row, column, weight)] of the bilinear stencil of (phi, lam) on a grid in the file's own order."""
    rows = None
    for i in range(len(lat_grid) - 1):
        a, b = lat_grid[i], lat_grid[i + 1]
        if min(a, b) <= phi <= max(a, b):
            rows = [(i, (b - phi) / (b - a)), (i + 1, (phi - a) / (b - a))]
            break
    pairs = [(k, k + 1) for k in range(len(lon_grid) - 1)] + ([(len(lon_grid) - 1, 0)] if periodic else [])
    cols = None
    for k, k1 in pairs:
        step = (lon_grid[k1] - lon_grid[k]) % 360.0
        east = (lam - lon_grid[k]) % 360.0
        if east <= step:
            cols = [(k, 1.0 - east / step), (k1, east / step)]
            break
    assert rows is not None and cols is not None, (phi, lam)
    return [(i, k, wi * wk) for i, wi in rows for k, wk in cols]


def hand_interpolation(
    lat_grid, lon_grid, fields, times, when, plat, plon, *, periodic, height=None, elevation=None, kind="T"
):
    """Linear in time between the bracketing steps, bilinear in space; with ``height`` and ``elevation`` each
    node moved to the pixel's elevation first (lapse rate for T, scale height for water vapour)."""
    times = np.asarray(times, dtype="datetime64[ns]")
    j = np.searchsorted(times, when) - 1
    w = (when - times[j]) / (times[j + 1] - times[j])
    at_time = (1 - w) * fields[j] + w * fields[j + 1]
    out = np.empty(plat.shape)
    for idx in np.ndindex(plat.shape):
        total = 0.0
        for i, k, weight in hand_weights(lat_grid, lon_grid, plat[idx], plon[idx], periodic):
            value = at_time[i, k]
            if height is not None:
                dz = height[i, k] - elevation[idx]
                value = (
                    value + LAPSE_RATE_K_PER_KM * dz / 1e3
                    if kind == "T"
                    else value * np.exp(dz / (WATER_VAPOUR_SCALE_HEIGHT_KM * 1e3))
                )
            total += weight * value
        out[idx] = total
    return out


# --------------------------------------------------------------------------------------- fixtures


def era5_dataset(lat, lon, times=ERA5_TIMES, seed=0, time_name="valid_time", geopotential=True):
    """A CDS-style ERA5 single-level Dataset: tcwv (kg m-2), t2m (K), z (m2 s-2), descending latitudes."""
    rng = np.random.default_rng(seed)
    shape = (len(times), len(lat), len(lon))
    dims = (time_name, "latitude", "longitude")
    variables = {
        "tcwv": (
            dims,
            rng.uniform(5.0, 60.0, shape).astype(np.float32),
            {
                "units": "kg m**-2",
                "long_name": "Total column vertically-integrated water vapour",
                "standard_name": "unknown",
                "GRIB_shortName": "tcwv",
            },
        ),
        "t2m": (
            dims,
            rng.uniform(270.0, 310.0, shape).astype(np.float32),
            {"units": "K", "long_name": "2 metre temperature", "standard_name": "unknown"},
        ),
    }
    if geopotential:
        z = np.broadcast_to(rng.uniform(0.0, 25000.0, shape[1:]), shape).astype(np.float32)
        variables["z"] = (
            dims,
            z,
            {"units": "m**2 s**-2", "long_name": "Geopotential", "standard_name": "geopotential"},
        )
    coords = {
        time_name: times,
        "latitude": ("latitude", lat, {"units": "degrees_north"}),
        "longitude": ("longitude", lon, {"units": "degrees_east"}),
        "number": 0,
    }
    return xr.Dataset(variables, coords=coords, attrs={"Conventions": "CF-1.7", "institution": "ECMWF"})


@pytest.fixture
def era5(tmp_path):
    """Global ERA5 layout: 2° × 2.5°, latitude 90 → −90, longitude 0 → 357.5, valid_time."""
    ds = era5_dataset(np.arange(90.0, -90.1, -2.0), np.arange(0.0, 360.0, 2.5))
    path = tmp_path / "era5_20200701.nc"
    ds.to_netcdf(path, engine="netcdf4")
    return path, ds


@pytest.fixture
def era5_regional(tmp_path):
    """Regional ERA5 layout across the dateline: latitude 20 → 0, longitude 170 → 190 (0–360 convention)."""
    ds = era5_dataset(np.arange(20.0, -0.1, -0.5), np.arange(170.0, 190.1, 0.5), seed=1)
    path = tmp_path / "era5_pacific.nc"
    ds.to_netcdf(path, engine="netcdf4")
    return path, ds


def merra2_day(day, seed):
    lat, lon = np.arange(-90.0, 90.1, 2.0), np.arange(-180.0, 180.0, 2.5)
    times = pd.date_range(f"{day}T00:30", periods=24, freq="h")
    rng = np.random.default_rng(seed)
    shape = (24, lat.size, lon.size)
    return xr.Dataset(
        {
            "TQV": (
                ("time", "lat", "lon"),
                rng.uniform(2.0, 50.0, shape).astype(np.float32),
                {
                    "units": "kg m-2",
                    "long_name": "total_precipitable_water_vapor",
                    "standard_name": "total_precipitable_water_vapor",
                },
            ),
            "T2M": (
                ("time", "lat", "lon"),
                rng.uniform(265.0, 305.0, shape).astype(np.float32),
                {"units": "K", "long_name": "2-meter_air_temperature", "standard_name": "2-meter_air_temperature"},
            ),
            "T10M": (
                ("time", "lat", "lon"),
                rng.uniform(265.0, 305.0, shape).astype(np.float32),
                {"units": "K", "long_name": "10-meter_air_temperature"},
            ),
            "TS": (
                ("time", "lat", "lon"),
                rng.uniform(265.0, 305.0, shape).astype(np.float32),
                {"units": "K", "long_name": "surface_skin_temperature"},
            ),
        },
        coords={
            "time": times,
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


@pytest.fixture
def merra2(tmp_path):
    """MERRA-2 layout: two daily tavg1_2d_slv_Nx files (HH:30) and the const_2d_asm_Nx file with PHIS."""
    days = [merra2_day("2020-07-01", 5), merra2_day("2020-07-02", 6)]
    paths = [tmp_path / f"MERRA2_400.tavg1_2d_slv_Nx.2020070{d}.nc4" for d in (1, 2)]
    for ds, path in zip(days, paths, strict=True):
        ds.to_netcdf(path, engine="h5netcdf")
    rng = np.random.default_rng(7)
    lat, lon = days[0]["lat"].values, days[0]["lon"].values
    const = xr.Dataset(
        {
            "PHIS": (
                ("time", "lat", "lon"),
                rng.uniform(0.0, 30000.0, (1, lat.size, lon.size)),
                {"units": "m+2 s-2", "long_name": "surface geopotential height"},
            )
        },
        coords={"time": pd.to_datetime(["1980-01-01T00:00"]), "lat": lat, "lon": lon},
    )
    const_path = tmp_path / "MERRA2_101.const_2d_asm_Nx.00000000.nc4"
    const.to_netcdf(const_path, engine="h5netcdf")
    return paths, const_path, days, const


def write(ds, path, engine="netcdf4"):
    ds.to_netcdf(path, engine=engine)
    return path


# ------------------------------------------------------------------------------------ both layouts


def test_era5_global_across_the_dateline_matches_hand_interpolation(era5):
    path, ds = era5
    out = read_atmosphere(path, SCENE_LAT, SCENE_LON, "2020-07-01T10:24:00Z")
    lat, lon = ds["latitude"].values, ds["longitude"].values
    cwv = hand_interpolation(
        lat, lon, ds["tcwv"].values / 10.0, ERA5_TIMES, WHEN, SCENE_LAT, SCENE_LON, periodic=True, kind="W"
    )
    tair = hand_interpolation(lat, lon, ds["t2m"].values, ERA5_TIMES, WHEN, SCENE_LAT, SCENE_LON, periodic=True)
    assert out[CWV].dims == ("y", "x") and out[CWV].dtype == np.float32
    np.testing.assert_allclose(out[CWV].values, cwv, rtol=1e-5)
    np.testing.assert_allclose(out[TAIR].values, tair, rtol=0, atol=2e-4)
    assert out[CWV].attrs["units"] == "g cm-2" and out[TAIR].attrs["units"] == "K"
    assert out[CWV].attrs["source_variable"] == "tcwv" and out[TAIR].attrs["source_variable"] == "t2m"


def test_era5_regional_grid_across_the_dateline(era5_regional):
    path, ds = era5_regional
    out = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)
    lat, lon = ds["latitude"].values, ds["longitude"].values
    tair = hand_interpolation(lat, lon, ds["t2m"].values, ERA5_TIMES, WHEN, SCENE_LAT, SCENE_LON, periodic=False)
    np.testing.assert_allclose(out[TAIR].values, tair, atol=2e-4)
    cwv = hand_interpolation(lat, lon, ds["tcwv"].values / 10, ERA5_TIMES, WHEN, SCENE_LAT, SCENE_LON, periodic=False)
    np.testing.assert_allclose(out[CWV].values, cwv, rtol=1e-5)


def test_era5_height_correction_per_grid_node(era5):
    path, ds = era5
    elevation = 300.0 + 40.0 * ROWS + 25.0 * COLS  # m
    out = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN, elevation=elevation)
    lat, lon = ds["latitude"].values, ds["longitude"].values
    height = ds["z"].values[0] / G0
    tair = hand_interpolation(
        lat,
        lon,
        ds["t2m"].values,
        ERA5_TIMES,
        WHEN,
        SCENE_LAT,
        SCENE_LON,
        periodic=True,
        height=height,
        elevation=elevation,
        kind="T",
    )
    cwv = hand_interpolation(
        lat,
        lon,
        ds["tcwv"].values / 10,
        ERA5_TIMES,
        WHEN,
        SCENE_LAT,
        SCENE_LON,
        periodic=True,
        height=height,
        elevation=elevation,
        kind="W",
    )
    np.testing.assert_allclose(out[TAIR].values, tair, atol=2e-4)
    np.testing.assert_allclose(out[CWV].values, cwv, rtol=1e-5)
    plain = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)
    assert not np.allclose(out[TAIR].values, plain[TAIR].values)
    km = xr.DataArray(elevation / 1000.0, dims=("y", "x"), attrs={"units": "km"})
    np.testing.assert_allclose(
        read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN, elevation=km)[TAIR].values, out[TAIR].values, atol=1e-4
    )
    assert "6.5 K/km" in out.attrs["atmosphere_height_correction"]
    assert "2 km" in out.attrs["atmosphere_height_correction"]


def test_dem_voids_keep_the_reanalysis_uncorrected(era5, caplog):
    """A DEM void (NaN, as SRTM has) at a pixel with coordinates does not take the atmosphere away there: the
    pixel gets the reanalysis at the grid's own surface height (= no elevation given), with a warning."""
    path, _ = era5
    elevation = 300.0 + 40.0 * ROWS + 25.0 * COLS
    elevation[1, 2] = elevation[-1, 0] = np.nan
    with caplog.at_level(logging.WARNING, logger="akkd_scale.io.reanalysis"):
        out = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN, elevation=elevation)
    assert "no value at 2 of" in caplog.text
    plain = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)
    whole = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN, elevation=np.nan_to_num(elevation, nan=300.0))
    voids = np.isnan(elevation)
    assert np.isfinite(out[TAIR].values).all() and np.isfinite(out[CWV].values).all()
    # T is linear in height: moved to sea level, interpolated and back to the interpolated grid height is plain
    np.testing.assert_allclose(out[TAIR].values[voids], plain[TAIR].values[voids], atol=2e-4)
    # W is exponential in height: equal to within the curvature across a cell (0.6 % here)
    np.testing.assert_allclose(out[CWV].values[voids], plain[CWV].values[voids], rtol=1e-2)
    np.testing.assert_allclose(out[TAIR].values[~voids], whole[TAIR].values[~voids], atol=1e-5)
    assert plain.attrs["atmosphere_height_correction"].startswith("none")


def test_merra2_two_days_and_constants_file(merra2):
    paths, const_path, days, const = merra2
    when = np.datetime64("2020-07-01T23:50:00")  # between 23:30 of day 1 and 00:30 of day 2
    lat = 45.1 + 0.1 * ROWS
    lon = 6.9 + 0.12 * COLS
    elevation = 800.0 + 100.0 * ROWS
    out = read_atmosphere([const_path, *paths], lat, lon, when, elevation=elevation)
    both = xr.concat(days, dim="time")
    height = const["PHIS"].values[0] / G0
    for name, variable, kind, scale in ((CWV, "TQV", "W", 0.1), (TAIR, "T2M", "T", 1.0)):
        expected = hand_interpolation(
            both["lat"].values,
            both["lon"].values,
            both[variable].values * scale,
            both["time"].values,
            when,
            lat,
            lon,
            periodic=True,
            height=height,
            elevation=elevation,
            kind=kind,
        )
        np.testing.assert_allclose(out[name].values, expected, rtol=1e-5, atol=2e-4)
    assert (
        "2020-07-01T23:30:00 and 2020-07-02T00:30:00 (weight 0.333 on the later)" in out.attrs["atmosphere_time_steps"]
    )
    assert [p.rsplit("/", 1)[1] for p in out.attrs["atmosphere_files"]] == [const_path.name] + [p.name for p in paths]
    assert out.attrs["atmosphere_sha256"] == [sha256_file(p) for p in [const_path, *paths]]
    variables = " ".join(out.attrs["atmosphere_variables"])
    assert "TQV [kg m-2, × 0.1]" in variables and "T2M [K]" in variables and "PHIS" in variables


def test_merra2_across_the_dateline(merra2):
    paths, _, days, _ = merra2
    out = read_atmosphere(paths[0], SCENE_LAT, SCENE_LON, "2020-07-01T10:00:00")
    ds = days[0]
    expected = hand_interpolation(
        ds["lat"].values,
        ds["lon"].values,
        ds["T2M"].values,
        ds["time"].values,
        np.datetime64("2020-07-01T10:00:00"),
        SCENE_LAT,
        SCENE_LON,
        periodic=True,
    )
    np.testing.assert_allclose(out[TAIR].values, expected, atol=2e-4)


def test_lazy_on_dask_pixel_coordinates(era5):
    path, _ = era5
    eager = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)
    lat = xr.DataArray(da.from_array(SCENE_LAT, chunks=(2, 3)), dims=("y", "x"), coords={"x": np.arange(6.0)})
    lon = xr.DataArray(da.from_array(SCENE_LON, chunks=(2, 3)), dims=("y", "x"), coords={"x": np.arange(6.0)})
    lazy = read_atmosphere(path, lat, lon, WHEN)
    assert isinstance(lazy[TAIR].data, da.Array) and isinstance(lazy[CWV].data, da.Array)
    assert "x" in lazy.coords and "latitude" not in lazy.coords
    path.unlink()  # the values around the scene were read at call time: no file access when computing
    np.testing.assert_array_equal(lazy[TAIR].values, eager[TAIR].values)
    np.testing.assert_array_equal(lazy[CWV].values, eager[CWV].values)


def test_old_cds_layout_packed_int16_time_and_expver(tmp_path):
    """Older CDS NetCDF: int16 with scale_factor/add_offset, ``time`` in hours since 1900, ERA5/ERA5T ``expver``."""
    lat, lon = np.arange(30.0, 9.9, -0.25), np.arange(0.0, 20.1, 0.25)
    hours = np.arange(1057320, 1057326)  # 2020-08-14T00 … 05
    rng = np.random.default_rng(3)
    t2m = rng.uniform(280.0, 300.0, (6, lat.size, lon.size))
    tcwv = rng.uniform(10.0, 40.0, (6, lat.size, lon.size))
    path = tmp_path / "adaptor.mars.internal.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("longitude", lon.size)
        nc.createDimension("latitude", lat.size)
        nc.createDimension("expver", 2)
        nc.createDimension("time", None)
        for name, values, units in (("longitude", lon, "degrees_east"), ("latitude", lat, "degrees_north")):
            var = nc.createVariable(name, "f4", (name,))
            var.units, var[:] = units, values
        expver = nc.createVariable("expver", "i4", ("expver",))
        expver[:] = [1, 5]
        time = nc.createVariable("time", "i4", ("time",))
        time.units, time.calendar, time[:] = "hours since 1900-01-01 00:00:00.0", "gregorian", hours
        for name, values, units, long_name in (
            ("t2m", t2m, "K", "2 metre temperature"),
            ("tcwv", tcwv, "kg m**-2", "Total column water vapour"),
        ):
            var = nc.createVariable(name, "i2", ("time", "expver", "latitude", "longitude"), fill_value=-32767)
            lo, hi = values.min(), values.max()
            var.scale_factor, var.add_offset = (hi - lo) / 60000.0, (hi + lo) / 2
            var.units, var.long_name = units, long_name
            split = np.ma.masked_array(np.zeros((6, 2, lat.size, lon.size)), mask=True)
            split[:4, 0], split[4:, 1] = values[:4], values[4:]  # ERA5 then ERA5T
            var[:] = split
    with netCDF4.Dataset(path) as nc:  # the values as stored (packing rounds them)
        stored = {n: np.where(nc[n][:, 0].mask, nc[n][:, 1], nc[n][:, 0]) for n in ("t2m", "tcwv")}
    when = np.datetime64("2020-08-14T03:45")  # steps 03 (ERA5) and 04 (ERA5T)
    plat, plon = 20.0 + 0.1 * ROWS, 5.0 + 0.1 * COLS
    out = read_atmosphere(path, plat, plon, when)
    times = pd.date_range("2020-08-14T00", periods=6, freq="h").values
    expected = hand_interpolation(lat, lon, stored["t2m"], times, when, plat, plon, periodic=False)
    np.testing.assert_allclose(out[TAIR].values, expected, atol=2e-4)
    expected = hand_interpolation(lat, lon, stored["tcwv"] / 10, times, when, plat, plon, periodic=False, kind="W")
    np.testing.assert_allclose(out[CWV].values, expected, rtol=1e-5)


# ------------------------------------------------------------------------ names and units by attributes


def test_fields_found_by_standard_and_long_name_and_units_converted(tmp_path, era5):
    path, ds = era5
    renamed = ds.rename({"tcwv": "water", "t2m": "airt"}).drop_vars("z")
    renamed["water"] = renamed["water"] / 10.0
    renamed["water"].attrs = {"long_name": "Total column water vapour", "units": "g cm-2"}
    renamed["airt"] = renamed["airt"] - 273.15
    renamed["airt"].attrs = {"standard_name": "air_temperature", "units": "degC"}
    renamed["d2m"] = ds["t2m"].assign_attrs(long_name="2 metre dewpoint temperature")
    out = read_atmosphere(write(renamed, tmp_path / "renamed.nc"), SCENE_LAT, SCENE_LON, WHEN)
    plain = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)
    np.testing.assert_allclose(out[TAIR].values, plain[TAIR].values, atol=1e-3)
    np.testing.assert_allclose(out[CWV].values, plain[CWV].values, rtol=1e-5)
    variables = " ".join(out.attrs["atmosphere_variables"])
    assert "water [g cm-2] (long_name 'Total column water vapour'" in variables
    assert "airt [degC, + 273.15] (standard_name 'air_temperature'" in variables
    mm = renamed.assign(water=(renamed["water"] * 10).assign_attrs(units="mm", long_name="precipitable water"))
    np.testing.assert_allclose(
        read_atmosphere(write(mm, tmp_path / "mm.nc"), SCENE_LAT, SCENE_LON, WHEN)[CWV], plain[CWV].values, rtol=1e-5
    )


def test_older_time_name_and_time_zones(tmp_path):
    ds = era5_dataset(np.arange(90.0, -90.1, -2.0), np.arange(0.0, 360.0, 2.5), time_name="time")
    path = write(ds, tmp_path / "era5_time.nc")
    utc = read_atmosphere(path, SCENE_LAT, SCENE_LON, "2020-07-01T10:24:00Z")
    shifted = read_atmosphere(path, SCENE_LAT, SCENE_LON, pd.Timestamp("2020-07-01T12:24:00+02:00"))
    np.testing.assert_array_equal(utc[TAIR].values, shifted[TAIR].values)
    assert utc.attrs["atmosphere_time"] == "2020-07-01T10:24:00.000Z"


def test_on_a_grid_node_and_at_a_time_step(era5):
    path, ds = era5
    node = ds["t2m"].sel(latitude=10.0, longitude=180.0, valid_time="2020-07-01T10:00").item()
    out = read_atmosphere(path, np.array([[10.0]]), np.array([[-180.0]]), "2020-07-01T10:00")
    assert out[TAIR].item() == pytest.approx(node, abs=1e-4)
    assert out.attrs["atmosphere_time_steps"].startswith("column_water_vapour: 2020-07-01T10:00:00;")


# ------------------------------------------------------------------------------------------ bad input


def test_unidentifiable_variables(tmp_path, era5):
    _, ds = era5
    other = ds.rename({"tcwv": "foo", "t2m": "bar", "z": "baz"})
    for name in ("foo", "bar", "baz"):
        other[name].attrs = {"units": "1"}
    path = write(other, tmp_path / "other.nc")
    with pytest.raises(
        InputError,
        match=r"other\.nc: data variables: no column water vapour, air temperature or "
        r"surface height among the variables foo \(\?\), bar",
    ):
        read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)
    only_water = write(ds[["tcwv"]], tmp_path / "water.nc")
    with pytest.raises(
        InputError,
        match=r"water\.nc: air_temperature: no near-surface \(2 m\) air temperature in "
        r"the files \(expected a near-surface .*t2m",
    ):
        read_atmosphere(only_water, SCENE_LAT, SCENE_LON, WHEN)


def test_ambiguous_variables(tmp_path, era5):
    _, ds = era5
    twice = ds.assign(tcwv2=ds["tcwv"].assign_attrs(long_name="Total column water vapour", GRIB_shortName="x"))
    with pytest.raises(
        InputError,
        match=r"twice\.nc: column_water_vapour: several variables could be the column "
        r"water vapour: tcwv \(long_name .*\), tcwv2 \(long_name",
    ):
        read_atmosphere(write(twice, tmp_path / "twice.nc"), SCENE_LAT, SCENE_LON, WHEN)


@pytest.mark.parametrize(
    "units, match",
    [
        (
            "furlongs",
            r"unknown units 'furlongs' \(expected units of column water "
            r"vapour: kg m-2 \(ERA5, MERRA-2\), mm",
        ),
        (None, r"no units attribute"),
    ],
)
def test_unknown_or_missing_units(tmp_path, era5, units, match):
    _, ds = era5
    bad = ds.copy()
    bad["tcwv"].attrs = {k: v for k, v in ds["tcwv"].attrs.items() if k != "units"}
    if units:
        bad["tcwv"].attrs["units"] = units
    with pytest.raises(InputError, match=r"units\.nc: tcwv: " + match):
        read_atmosphere(write(bad, tmp_path / "units.nc"), SCENE_LAT, SCENE_LON, WHEN)


def test_implausible_values_for_the_units(tmp_path, era5):
    _, ds = era5
    celsius = ds.assign(t2m=(ds["t2m"] - 273.15).assign_attrs(ds["t2m"].attrs))  # says K, holds °C
    with pytest.raises(
        InputError,
        match=r"celsius\.nc: t2m: values .* K after conversion from 'K' \(expected "
        r"near-surface \(2 m\) air temperature in 150…350 K: is the units",
    ):
        read_atmosphere(write(celsius, tmp_path / "celsius.nc"), SCENE_LAT, SCENE_LON, WHEN)


def test_scene_outside_the_grid(era5_regional, caplog):
    path, ds = era5_regional
    far_lat, far_lon = SCENE_LAT + 30.0, SCENE_LON
    with pytest.raises(
        InputError,
        match=r"era5_pacific\.nc: tcwv: the grid \(latitude 0…20, longitude 170…190\) "
        r"does not cover the scene \(latitude 40\.100.*\) \(expected files covering "
        r"the scene \(or optional=True\)\)",
    ):
        read_atmosphere(path, far_lat, far_lon, WHEN)
    with caplog.at_level(logging.WARNING, logger="akkd_scale.io.reanalysis"):
        out = read_atmosphere(path, far_lat, far_lon, WHEN, optional=True)
    assert np.isnan(out[CWV].values).all() and np.isnan(out[TAIR].values).all()
    assert "does not cover the scene" in caplog.text
    assert out.attrs["atmosphere_coverage"].startswith("column_water_vapour: none (the grid")


def test_scene_partly_outside_the_grid(era5_regional, caplog):
    path, ds = era5_regional
    lat = 19.0 + 0.5 * ROWS  # 19 … 21: rows above 20° are outside
    with pytest.raises(InputError, match="does not cover the scene"):
        read_atmosphere(path, lat, SCENE_LON, WHEN)
    with caplog.at_level(logging.WARNING, logger="akkd_scale.io.reanalysis"):
        out = read_atmosphere(path, lat, SCENE_LON, WHEN, optional=True)
    inside = lat <= 20.0
    assert np.isfinite(out[TAIR].values[inside]).all() and np.isnan(out[TAIR].values[~inside]).all()
    expected = hand_interpolation(
        ds["latitude"].values,
        ds["longitude"].values,
        ds["t2m"].values,
        ERA5_TIMES,
        WHEN,
        np.where(inside, lat, 10.0),
        SCENE_LON,
        periodic=False,
    )
    np.testing.assert_allclose(out[TAIR].values[inside], expected[inside], atol=2e-4)
    assert "partial" in out.attrs["atmosphere_coverage"] and "NaN at the pixels outside" in caplog.text


def test_time_outside_the_files(era5, caplog):
    path, _ = era5
    with pytest.raises(
        InputError,
        match=r"era5_20200701\.nc: tcwv: acquisition time 2020-07-01T14:10:00 outside "
        r"the files' time steps 2020-07-01T08:00:00…2020-07-01T13:00:00 \(expected "
        r"files whose time steps bracket the acquisition time",
    ):
        read_atmosphere(path, SCENE_LAT, SCENE_LON, "2020-07-01T14:10")
    with caplog.at_level(logging.WARNING, logger="akkd_scale.io.reanalysis"):
        out = read_atmosphere(path, SCENE_LAT, SCENE_LON, "2020-07-01T14:10", optional=True)
    assert np.isnan(out[CWV].values).all() and np.isnan(out[TAIR].values).all()
    assert "outside the files' time steps" in caplog.text


def test_time_in_a_gap_between_files(merra2):
    paths, _, days, _ = merra2
    later = days[1].assign_coords(time=days[1]["time"] + np.timedelta64(2, "D"))
    gap = write(later, paths[1].with_name("MERRA2_400.tavg1_2d_slv_Nx.20200704.nc4"), engine="h5netcdf")
    with pytest.raises(InputError, match="time 2020-07-02T12:00:00 falls in a gap of the files' time steps"):
        read_atmosphere([paths[0], gap], SCENE_LAT, SCENE_LON, "2020-07-02T12:00")


def test_same_file_twice_and_different_grids(tmp_path, era5, merra2):
    path, ds = era5
    with pytest.raises(InputError, match=r"time step 2020-07-01 08:00:00 appears more than once"):
        read_atmosphere([path, path], SCENE_LAT, SCENE_LON, WHEN)
    coarse = era5_dataset(
        np.arange(90.0, -90.1, -5.0), np.arange(0.0, 360.0, 5.0), times=ERA5_TIMES + pd.Timedelta(hours=6)
    )
    with pytest.raises(InputError, match=r"coarse\.nc: tcwv: latitude grid differs from that of .*era5_20200701\.nc"):
        read_atmosphere([path, write(coarse, tmp_path / "coarse.nc")], SCENE_LAT, SCENE_LON, WHEN)


def test_nan_cells_give_nan_where_they_are_used(tmp_path, era5, caplog):
    path, ds = era5
    holed = ds.copy(deep=True)
    holed["t2m"].loc[{"latitude": 10.0, "longitude": 177.5}] = np.nan  # west of the scene's western columns
    with caplog.at_level(logging.WARNING, logger="akkd_scale.io.reanalysis"):
        out = read_atmosphere(write(holed, tmp_path / "holed.nc"), SCENE_LAT, SCENE_LON, WHEN)
    touches = (SCENE_LON > 0) & (SCENE_LON < 180.0) & (SCENE_LAT < 12.0)  # stencil uses the (10°, 177.5°) node
    assert np.isnan(out[TAIR].values[touches]).all() and touches.any()
    expected = read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN)[TAIR].values
    np.testing.assert_array_equal(out[TAIR].values[~touches], expected[~touches])
    assert np.isfinite(out[CWV].values).all()
    assert "2 of the" in caplog.text and "are NaN" in caplog.text  # two time steps
    assert out.attrs["atmosphere_nan_cells"] == 2
    nan_pixel = read_atmosphere(path, np.where(ROWS == 0, np.nan, SCENE_LAT), SCENE_LON, WHEN)
    assert np.isnan(nan_pixel[TAIR].values[0]).all() and np.isfinite(nan_pixel[TAIR].values[1:]).all()


def test_elevation_without_surface_height(tmp_path, era5):
    _, ds = era5
    path = write(ds.drop_vars("z"), tmp_path / "no_z.nc")
    with pytest.raises(
        InputError,
        match=r"no_z\.nc: surface_height: a pixel elevation was given but no file has "
        r"the grid's surface height",
    ):
        read_atmosphere(path, SCENE_LAT, SCENE_LON, WHEN, elevation=np.zeros(SCENE_LAT.shape))
    with pytest.raises(ParameterError, match=r"elevation: elevation units 'ft' \(expected m or km\)"):
        read_atmosphere(
            path,
            SCENE_LAT,
            SCENE_LON,
            WHEN,
            elevation=xr.DataArray(np.zeros(SCENE_LAT.shape), dims=("y", "x"), attrs={"units": "ft"}),
        )


def test_files_that_are_not_netcdf(tmp_path):
    missing = tmp_path / "nothing.nc"
    with pytest.raises(InputError, match=r"nothing\.nc: atmosphere_data: file not found"):
        open_reanalysis(missing)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netcdf file at all")
    with pytest.raises(InputError, match=r"garbage\.nc: atmosphere_data: cannot open as NetCDF"):
        open_reanalysis(garbage)
    grib = tmp_path / "era5.grib"
    grib.write_bytes(b"GRIB" + bytes(100))
    try:
        import cfgrib  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match=r"era5\.grib: atmosphere_data: GRIB file, but cfgrib is not installed"):
            open_reanalysis(grib)
    with pytest.raises(ParameterError, match="no files"):
        open_reanalysis([])


def test_pressure_level_temperature_is_not_taken(tmp_path, era5):
    _, ds = era5
    levels = ds[["tcwv"]].assign(
        t=ds["t2m"]
        .expand_dims(pressure_level=[850.0], axis=1)
        .assign_attrs(standard_name="air_temperature", units="K", long_name="Temperature")
    )
    with pytest.raises(InputError, match="no near-surface"):
        read_atmosphere(write(levels, tmp_path / "levels.nc"), SCENE_LAT, SCENE_LON, WHEN)


def test_bad_pixel_coordinates_and_time(era5):
    path, _ = era5
    with pytest.raises(ParameterError, match="latitude and longitude of the same shape"):
        read_atmosphere(path, SCENE_LAT, SCENE_LON[:, :2], WHEN)
    with pytest.raises(ParameterError, match=r"time: acquisition time 'yesterday'"):
        read_atmosphere(path, SCENE_LAT, SCENE_LON, "yesterday")
    with pytest.raises(ParameterError, match="more than 180° of longitude"):
        read_atmosphere(path, np.array([[0.0, 0.0, 0.0]]), np.array([[-170.0, 0.0, 170.0]]), WHEN)
