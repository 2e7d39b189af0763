"""Categorical maps (GeoTIFF, any CRS) read with rioxarray: checked against a scene, sampled at pixel centres.

The one way the retrieval samples a map of integer codes, land cover or a cloud mask (:class:`MapKind` says
which, for the error messages). This module knows rasters, not what the codes mean: :func:`open_map` checks a
file once (readable, one band of integer codes, a CRS, overlap with the scene) and returns the codes under
the scene and the share of it the map covers; :func:`sample_codes` gives, per map_blocks task, the map code
under every pixel centre (the task converts its pixels' latitude and longitude to the map's CRS with pyproj,
takes the cell each centre falls in and reads only that window of the file, reopened by path so the graph
runs on multi-process clusters). Land-cover legends are ``akkd_scale.landcover.legends``, cloud-mask
conventions ``akkd_scale.clouds.external``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError, describe_path

#: Points per axis of the latitude/longitude sample that locates the scene on the map.
FOOTPRINT_POINTS = 64
#: Most map cells read (strided) to detect or check the legend.
LEGEND_SAMPLE_CELLS = 4_000_000


@dataclass(frozen=True)
class MapKind:
    """What a map is for, as its errors name it: the ``variable``, the file and the codes expected."""

    variable: str
    file: str
    codes: str


LAND_COVER_MAP = MapKind("land cover map", "a land-cover GeoTIFF", "land-cover codes")
CLOUD_MASK_MAP = MapKind("cloud mask", "a cloud-mask GeoTIFF", "cloud-mask codes")


@dataclass(frozen=True)
class CategoricalMap:
    """What a task needs to sample a checked map: path, legend (how its codes read: a land-cover legend or a
    cloud-mask convention), CRS (WKT), affine transform, size, no-data."""

    path: str
    legend: str
    crs_wkt: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    nodata: float | None

    @property
    def source(self) -> str:
        return f"map: {self.path} ({self.legend})"

    def with_legend(self, legend: str) -> CategoricalMap:
        return dataclasses.replace(self, legend=legend)


@dataclass(frozen=True)
class MapUnderScene:
    """A checked map (legend still empty), the codes found under the scene (no-data removed), the text of
    its file name and tags (where a legend may be named) and the share of the scene's sampled pixels on the map."""

    lcmap: CategoricalMap
    codes: set[int]
    hint_text: str
    covered: float = 1.0


@functools.lru_cache(maxsize=8)
def _to_map(crs_wkt: str):
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs_wkt, always_xy=True)


def map_cells(lcmap: CategoricalMap, latitude, longitude) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, inside) of the map cell each (latitude, longitude) falls in."""
    from affine import Affine

    lon = (np.asarray(longitude, np.float64) + 180.0) % 360.0 - 180.0
    x, y = _to_map(lcmap.crs_wkt).transform(lon, np.asarray(latitude, np.float64))
    col, row = ~Affine(*lcmap.transform) @ (np.asarray(x), np.asarray(y))
    with np.errstate(invalid="ignore"):
        row, col = np.floor(row), np.floor(col)
        inside = (np.isfinite(row) & np.isfinite(col) & (row >= 0) & (row < lcmap.shape[0]) & (col >= 0)
                  & (col < lcmap.shape[1]))
    return np.where(inside, row, 0).astype(np.int64), np.where(inside, col, 0).astype(np.int64), inside


def _cause(exc: BaseException) -> str:
    """The innermost message of a rasterio/GDAL error chain: GDAL's own reason (``TIFFReadEncodedStrip:Read error at
    scanline …``), not rasterio's "Read failed. See previous exception for details"."""
    messages: list[str] = []
    link: BaseException | None = exc
    while link is not None and len(messages) < 10:
        messages.append(" ".join(str(link).split()))
        link = link.__cause__ or link.__context__
    return next((m for m in reversed(messages) if m), "unknown error")


def _read_cells(source: str, raster: xr.DataArray, rows: slice, cols: slice) -> np.ndarray:
    """Map codes of the window (``rows``, ``cols``) of band 1 of an opened map; InputError naming the file, the
    window and GDAL's reason when the file cannot be read there (truncated, corrupt)."""
    from rasterio.errors import RasterioError

    try:
        return np.asarray(raster.isel(band=0, y=rows, x=cols).values)
    except (RasterioError, OSError) as exc:
        (r0, r1), (c0, c1) = rows.indices(raster.sizes["y"])[:2], cols.indices(raster.sizes["x"])[:2]
        raise InputError(source, f"cannot read map rows {r0}–{r1}, columns {c0}–{c1} "
                         f"({_cause(exc)}); truncated or corrupt?", variable="land cover map",
                         expected="a complete, readable land-cover GeoTIFF") from exc


def _read_window(path: str, rows: slice, cols: slice) -> np.ndarray:
    import rioxarray
    from rasterio.errors import RasterioError

    try:
        raster = rioxarray.open_rasterio(path, cache=False)
    except (RasterioError, OSError) as exc:  # changed or removed since open_map checked it
        raise InputError(path, f"cannot be read as a raster ({_cause(exc)})", variable="land cover map",
                         expected="a land-cover GeoTIFF") from exc
    if not isinstance(raster, xr.DataArray):  # open_map checked it: one band, no subdatasets
        raise InputError(path, "is no longer one raster band", variable="land cover map",
                         expected="the land-cover GeoTIFF checked when the run started")
    with raster:
        return _read_cells(path, raster, rows, cols)


def sample_codes(latitude: np.ndarray, longitude: np.ndarray, lcmap: CategoricalMap) -> tuple[np.ndarray, np.ndarray]:
    """(map codes, inside) under one block of pixel centres; codes are 0 where ``inside`` is False."""
    row, col, inside = map_cells(lcmap, latitude, longitude)
    codes = np.zeros(np.shape(latitude), np.int64)
    if inside.any():
        r0, r1, c0, c1 = row[inside].min(), row[inside].max() + 1, col[inside].min(), col[inside].max() + 1
        window = _read_window(lcmap.path, slice(r0, r1), slice(c0, c1))
        codes[inside] = window[row[inside] - r0, col[inside] - c0]
    return codes, inside


def open_map(path, latitude: xr.DataArray | None, longitude: xr.DataArray | None, kind: MapKind = LAND_COVER_MAP,
             *, require_overlap: bool = True) -> MapUnderScene:
    """Check a categorical GeoTIFF (a ``kind`` of map) against a scene (its pixel ``latitude``/``longitude``), or
    on its own (``latitude`` None: the codes of the whole map, e.g. to check a file before any scene).

    Raises InputError (naming the file) for a missing or unreadable file, not one integer band, no CRS or
    (``require_overlap``) no overlap with the scene; without ``require_overlap`` a map beside the scene comes
    back with no codes and ``covered`` 0. The file is opened lazily and only the window under the scene is read.
    """
    import rioxarray
    from rasterio.errors import RasterioError

    source = describe_path(path)
    if not Path(path).is_file():
        raise InputError(source, "no such file", variable=kind.variable, expected=kind.file)
    try:
        raster = rioxarray.open_rasterio(path, cache=False)
    except (RasterioError, OSError, ValueError) as exc:
        raise InputError(source, f"cannot be read as a raster ({exc})", variable=kind.variable,
                         expected=kind.file) from exc
    if not isinstance(raster, xr.DataArray) or raster.sizes.get("band") != 1:
        raise InputError(source, "has several bands or subdatasets", variable=kind.variable,
                         expected=f"one band of {kind.codes}")
    with raster:
        return _checked_map(source, raster, latitude, longitude, kind, require_overlap)


def _checked_map(source: str, raster: xr.DataArray, latitude, longitude, kind: MapKind,
                 require_overlap: bool) -> MapUnderScene:
    """The rest of :func:`open_map` on an opened one-band raster."""
    if not np.issubdtype(raster.dtype, np.integer):
        raise InputError(source, f"data type {raster.dtype}", variable=kind.variable,
                         expected=f"integer {kind.codes}")
    if raster.rio.crs is None:
        raise InputError(source, "no coordinate reference system", variable=kind.variable,
                         expected="a georeferenced GeoTIFF (a CRS and a geotransform)")
    nodata = raster.rio.nodata
    lcmap = CategoricalMap(source, "", raster.rio.crs.to_wkt(), tuple(raster.rio.transform())[:6],
                           (raster.sizes["y"], raster.sizes["x"]), None if nodata is None else float(nodata))
    if latitude is None:  # the whole map
        row, col = np.array([0, lcmap.shape[0] - 1]), np.array([0, lcmap.shape[1] - 1])
        inside = np.ones(2, bool)
    else:
        step = [max(1, n // FOOTPRINT_POINTS) for n in latitude.shape]
        footprint = (slice(None, None, step[0]), slice(None, None, step[1]))
        row, col, inside = map_cells(lcmap, np.asarray(latitude[footprint].values),
                                     np.asarray(longitude[footprint].values))
    hint_text = " ".join([Path(source).name] + [f"{k}={v}" for k, v in raster.attrs.items()])
    if not inside.any():
        if not require_overlap:
            return MapUnderScene(lcmap, set(), hint_text, 0.0)
        raise InputError(source, "does not cover the scene (no sampled scene pixel falls on the map)",
                         variable=kind.variable, expected="a map overlapping the scene's latitude/longitude")
    r0, r1, c0, c1 = row[inside].min(), row[inside].max() + 1, col[inside].min(), col[inside].max() + 1
    stride = max(1, math.ceil(math.sqrt((r1 - r0) * (c1 - c0) / LEGEND_SAMPLE_CELLS)))
    window = _read_cells(source, raster, slice(r0, r1, stride), slice(c0, c1, stride))
    codes = {int(c) for c in np.unique(window)} - ({int(nodata)} if nodata is not None else set())
    return MapUnderScene(lcmap, codes, hint_text, float(inside.mean()))
