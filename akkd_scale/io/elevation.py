"""Pixel elevation from a DEM GeoTIFF: what the reanalysis height correction needs (``--elevation DEM.tif``).

An ASTER L1B scene carries no elevation, so a coarse reanalysis cell gives a mountain pixel the air temperature
and water vapour of the lowland around it. With a DEM (any CRS, metres; e.g. Copernicus GLO-90, SRTM, ASTER GDEM)
each pixel takes the elevation of the DEM cell its centre falls in (nearest cell: DEMs are finer than or as fine
as ASTER TIR's 90 m), and :mod:`akkd_scale.io.reanalysis` moves T_air and CWV from the grid's surface height to it.
Only the window under the scene is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from .categorical_map import CategoricalMap, map_cells

VARIABLE = "elevation"


def _open(path: Path):
    import rioxarray
    from rasterio.errors import RasterioError

    if not path.is_file():
        raise InputError(path, "no such file", variable=VARIABLE, expected="a DEM GeoTIFF (metres)")
    try:
        raster = rioxarray.open_rasterio(path, masked=True, cache=False)
    except (RasterioError, OSError) as exc:
        raise InputError(
            path, f"cannot be read as a raster ({exc})", variable=VARIABLE, expected="a DEM GeoTIFF"
        ) from exc
    if not isinstance(raster, xr.DataArray) or raster.sizes.get("band", 1) != 1:
        raise InputError(path, "not one raster band", variable=VARIABLE, expected="a single-band DEM GeoTIFF")
    if raster.rio.crs is None:
        raster.close()
        raise InputError(path, "no CRS", variable=VARIABLE, expected="a georeferenced DEM GeoTIFF")
    return raster


def sample_elevation(path, latitude, longitude) -> xr.DataArray:
    """Elevation (m) at the pixel centres ``latitude``/``longitude`` (arrays or DataArrays of one shape) from the
    DEM at ``path``; NaN where the DEM has no data. An InputError names the file when the DEM does not cover
    every pixel or is not a georeferenced single-band raster."""
    path = Path(path).expanduser().resolve()
    lat = latitude.values if isinstance(latitude, xr.DataArray) else np.asarray(latitude)
    lon = longitude.values if isinstance(longitude, xr.DataArray) else np.asarray(longitude)
    raster = _open(path)
    with raster:
        units = str(raster.attrs.get("units", "m")).strip().lower()
        scale = 1000.0 if units in ("km", "kilometre", "kilometer", "kilometres", "kilometers") else 1.0
        grid = CategoricalMap(
            str(path),
            "elevation",
            raster.rio.crs.to_wkt(),
            tuple(raster.rio.transform())[:6],
            (raster.sizes["y"], raster.sizes["x"]),
            None,
        )
        row, col, inside = map_cells(grid, lat, lon)
        valid = np.isfinite(lat) & np.isfinite(lon)
        if not inside[valid].all():
            raise InputError(
                path,
                f"does not cover {int((valid & ~inside).sum())} of the scene's {int(valid.sum())} pixels",
                variable=VARIABLE,
                expected="a DEM covering the whole scene",
            )
        out = np.full(lat.shape, np.nan)
        if inside.any():
            r0, r1, c0, c1 = row[inside].min(), row[inside].max() + 1, col[inside].min(), col[inside].max() + 1
            window = np.asarray(raster.isel(band=0, y=slice(r0, r1), x=slice(c0, c1)).values, np.float64)
            out[inside] = window[row[inside] - r0, col[inside] - c0] * scale
    dims = latitude.dims if isinstance(latitude, xr.DataArray) else tuple(f"dim_{i}" for i in range(lat.ndim))
    return xr.DataArray(out.astype(np.float32), dims=dims, name=VARIABLE, attrs={"units": "m", "source": str(path)})
