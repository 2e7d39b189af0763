"""Pixel elevation from a DEM GeoTIFF (any CRS): nearest cell against a hand computation, and bad DEMs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from akkd_scale.errors import InputError
from akkd_scale.io.elevation import sample_elevation


def _utm_dem(path, *, crs="EPSG:32611", units=None):
    """A 40 × 50 DEM in UTM 11N, 90 m cells, values encoding (row, col): 1000 + 10·row + col (m)."""
    import rioxarray  # noqa: F401

    rows, cols = np.mgrid[0:40, 0:50]
    x0, y0 = 500_000.0, 4_040_000.0
    da = xr.DataArray(
        (1000.0 + 10.0 * rows + cols).astype(np.float32),
        dims=("y", "x"),
        coords={"y": y0 - 45.0 - 90.0 * np.arange(40), "x": x0 + 45.0 + 90.0 * np.arange(50)},
        attrs={"units": units} if units else {},
    )
    da = da.rio.write_crs(crs)
    da.rio.to_raster(path)
    return path, x0, y0


def test_nearest_cell_in_a_projected_dem(tmp_path):
    from pyproj import Transformer

    path, x0, y0 = _utm_dem(tmp_path / "dem.tif")
    to_geo = Transformer.from_crs("EPSG:32611", "EPSG:4326", always_xy=True)
    rng = np.random.default_rng(0)
    x = x0 + rng.uniform(0, 50 * 90.0, (6, 7))
    y = y0 - rng.uniform(0, 40 * 90.0, (6, 7))
    lon, lat = to_geo.transform(x, y)
    got = sample_elevation(path, xr.DataArray(lat, dims=("y", "x")), xr.DataArray(lon, dims=("y", "x")))
    row, col = np.floor((y0 - y) / 90.0), np.floor((x - x0) / 90.0)
    np.testing.assert_allclose(got.values, 1000.0 + 10.0 * row + col, atol=1e-3)
    assert got.dims == ("y", "x") and got.attrs["units"] == "m"


def test_km_units_and_bad_dems(tmp_path):
    from pyproj import Transformer

    path, x0, y0 = _utm_dem(tmp_path / "dem_km.tif", units="km")
    lon, lat = Transformer.from_crs("EPSG:32611", "EPSG:4326", always_xy=True).transform(x0 + 100.0, y0 - 100.0)
    assert float(sample_elevation(path, np.array([lat]), np.array([lon]))[0]) == pytest.approx(1011.0 * 1000)
    with pytest.raises(InputError, match=r"dem_km\.tif: elevation: does not cover 1 of the scene's 2 pixels"):
        sample_elevation(path, np.array([lat, lat + 1.0]), np.array([lon, lon]))
    with pytest.raises(InputError, match=r"nope\.tif: elevation: no such file"):
        sample_elevation(tmp_path / "nope.tif", np.array([lat]), np.array([lon]))
    text = tmp_path / "text.tif"
    text.write_text("not a raster")
    with pytest.raises(InputError, match=r"text\.tif: elevation: cannot be read as a raster"):
        sample_elevation(text, np.array([lat]), np.array([lon]))
