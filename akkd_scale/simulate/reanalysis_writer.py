"""Reanalysis-like files from simulated truth: ERA5 single-level NetCDF in the Copernicus CDS layout.

What the demo (and the tests) give ``--atmosphere-data``: the scenes' own column water vapour and near-surface
air temperature averaged into a coarse grid (0.25°, ERA5's), with the documented reanalysis error model
(:data:`~akkd_scale.constants.REANALYSIS_CWV_LOG_SIGMA`, :data:`~akkd_scale.constants.REANALYSIS_TAIR_SIGMA_K`)
drawn per grid cell, written as a CDS download looks: ``tcwv`` (kg m⁻²), ``t2m`` (K), ``z`` (m² s⁻², optional),
``latitude`` descending, ``longitude`` 0 → 360, ``valid_time``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from ..constants import (
    G0,
    LAPSE_RATE_K_PER_KM,
    REANALYSIS_CWV_LOG_SIGMA,
    REANALYSIS_TAIR_SIGMA_K,
    WATER_VAPOUR_SCALE_HEIGHT_KM,
)


def era5_single_levels(latitude, longitude, times, cwv, tair, height=None) -> xr.Dataset:
    """A CDS-layout ERA5 single-level Dataset from fields (time, latitude, longitude): column water vapour in
    g cm⁻² (written as kg m⁻², × 10), air temperature in K, optional surface height in m (written as
    geopotential). Latitudes are written descending and longitudes in 0–360, as the CDS delivers them."""
    latitude, longitude = np.asarray(latitude, float), np.asarray(longitude, float) % 360.0
    lat_order, lon_order = np.argsort(-latitude), np.argsort(longitude)
    dims = ("valid_time", "latitude", "longitude")

    def arrange(values):
        return np.asarray(values, np.float32)[:, lat_order][:, :, lon_order]

    variables = {
        "tcwv": (
            dims,
            arrange(np.asarray(cwv) * 10.0),
            {
                "units": "kg m**-2",
                "long_name": "Total column vertically-integrated water vapour",
                "GRIB_shortName": "tcwv",
            },
        ),
        "t2m": (dims, arrange(tair), {"units": "K", "long_name": "2 metre temperature", "GRIB_shortName": "2t"}),
    }
    if height is not None:
        z = np.broadcast_to(np.asarray(height, float) * G0, np.shape(cwv))
        variables["z"] = (
            dims,
            arrange(z),
            {"units": "m**2 s**-2", "long_name": "Geopotential", "standard_name": "geopotential"},
        )
    coords = {
        "valid_time": ("valid_time", pd.DatetimeIndex(times).values.astype("datetime64[ns]")),
        "latitude": ("latitude", latitude[lat_order], {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": ("longitude", longitude[lon_order], {"units": "degrees_east", "standard_name": "longitude"}),
    }
    return xr.Dataset(variables, coords=coords, attrs={"Conventions": "CF-1.7", "institution": "ECMWF"})


def gridded_from_pixels(latitude, longitude, values, lat_edges, lon_edges) -> np.ndarray:
    """Mean of the pixel ``values`` in each cell (lat, lon) of the grid ``*_edges``; cells without pixels take
    the value of the nearest cell with pixels (so interpolation near the scene never meets a gap)."""
    lat, lon, v = (np.asarray(a, float).ravel() for a in (latitude, longitude, values))
    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(v)
    i = np.clip(np.searchsorted(lat_edges, lat[ok]) - 1, 0, len(lat_edges) - 2)
    k = np.clip(np.searchsorted(lon_edges, lon[ok]) - 1, 0, len(lon_edges) - 2)
    shape = (len(lat_edges) - 1, len(lon_edges) - 1)
    total, count = np.zeros(shape), np.zeros(shape)
    np.add.at(total, (i, k), v[ok])
    np.add.at(count, (i, k), 1.0)
    empty = count == 0
    grid = np.where(empty, np.nan, total / np.maximum(count, 1))
    if empty.all():
        raise ValueError("no finite pixel values to grid")
    _, nearest = ndimage.distance_transform_edt(empty, return_indices=True)
    return grid[nearest[0], nearest[1]]


def era5_from_pixels(
    latitude,
    longitude,
    cwv,
    tair,
    time,
    *,
    resolution: float = 0.25,
    margin: int = 2,
    errors: bool = True,
    seed: int = 0,
    height=None,
) -> xr.Dataset:
    """An ERA5-layout Dataset covering the pixels (± ``margin`` cells) on a ``resolution``° grid aligned to
    multiples of it: the pixels' column water vapour (g cm⁻²) and air temperature (K) averaged per cell, with the
    reanalysis error model per cell (``errors``, drawn with ``seed``), at two time steps one hour before and
    after ``time`` (the same fields). ``height``: the pixels' surface elevation (m); its cell means are written as
    the surface geopotential ``z``, and each cell's air temperature and water vapour are moved to that mean
    height (lapse rate and scale height of ``io.reanalysis``) before averaging, as a reanalysis cell holds them
    at its own orography."""
    lat, lon = np.asarray(latitude, float), np.asarray(longitude, float)
    lo_lat = np.floor(np.nanmin(lat) / resolution) * resolution - margin * resolution
    hi_lat = np.ceil(np.nanmax(lat) / resolution) * resolution + margin * resolution
    lo_lon = np.floor(np.nanmin(lon) / resolution) * resolution - margin * resolution
    hi_lon = np.ceil(np.nanmax(lon) / resolution) * resolution + margin * resolution
    # grid nodes are cell centres, as ERA5's: node j covers [node - res/2, node + res/2)
    lat_nodes = np.arange(lo_lat, hi_lat + resolution / 2, resolution)
    lon_nodes = np.arange(lo_lon, hi_lon + resolution / 2, resolution)
    lat_edges = np.concatenate([lat_nodes - resolution / 2, [lat_nodes[-1] + resolution / 2]])
    lon_edges = np.concatenate([lon_nodes - resolution / 2, [lon_nodes[-1] + resolution / 2]])
    z = None
    if height is not None:
        h = np.asarray(height, float)
        z = gridded_from_pixels(lat, lon, h, lat_edges, lon_edges)
        # each pixel's values moved to its cell's mean height, then averaged
        i = np.clip(np.searchsorted(lat_edges, lat) - 1, 0, len(lat_nodes) - 1)
        k = np.clip(np.searchsorted(lon_edges, lon) - 1, 0, len(lon_nodes) - 1)
        dz_km = (h - z[i, k]) / 1000.0
        tair = np.asarray(tair, float) + LAPSE_RATE_K_PER_KM * dz_km
        cwv = np.asarray(cwv, float) * np.exp(dz_km / WATER_VAPOUR_SCALE_HEIGHT_KM)
    w = gridded_from_pixels(lat, lon, cwv, lat_edges, lon_edges)
    t = gridded_from_pixels(lat, lon, tair, lat_edges, lon_edges)
    if errors:
        rng = np.random.default_rng(seed)
        w = w * np.exp(rng.normal(0.0, REANALYSIS_CWV_LOG_SIGMA, w.shape))
        t = t + rng.normal(0.0, REANALYSIS_TAIR_SIGMA_K, t.shape)
    when = pd.Timestamp(time)
    when = when.tz_convert(None) if when.tzinfo is not None else when
    times = [when - pd.Timedelta(hours=1), when + pd.Timedelta(hours=1)]
    return era5_single_levels(
        lat_nodes, lon_nodes, times, np.stack([w, w]), np.stack([t, t]), None if z is None else np.stack([z, z])
    )


def write_era5(ds: xr.Dataset, path) -> Path:
    """Write an ERA5-layout Dataset as NetCDF-4 (h5netcdf); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf")
    return path
