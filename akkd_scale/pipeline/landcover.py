"""Land cover of a scene's pixels: a user map (GeoTIFF, read with rioxarray), else NDVI/BT rules, else none.

:func:`plan_land_cover` decides, in the client, what the retrieval kernel does in every chunk: it checks a
map once (:func:`open_landcover`: readable, one band of integer codes, a CRS, overlap with the scene, a
legend given or detected from the file's name/tags, else from its codes under the scene; the file is
opened lazily and only that window is read). In each map_blocks task, :func:`classify_block` gives
``land_cover`` (int8, -1 unknown) and the pixels classed by the rules (QC bit ``land_cover_from_rules``):
the task converts its pixels' latitude/longitude to the map's CRS (pyproj), takes the map cell each pixel
centre falls in and reads only that window of the file (reopened by path, so the graph runs on
multi-process clusters). Pixels outside the map or with its no-data code fall back to the rules.
"""
from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..conventions import BANDS, LAND_COVER_UNKNOWN
from ..errors import InputError, describe_path
from ..models.landcover import LEGENDS, classes_from_codes, classes_from_rules, legend_codes

log = logging.getLogger(__name__)

#: Points per axis of the latitude/longitude sample that locates the scene on the map.
FOOTPRINT_POINTS = 64
#: Most map cells read (strided) to detect or check the legend.
LEGEND_SAMPLE_CELLS = 4_000_000
#: Words in a file's name or tags that name its legend.
LEGEND_HINTS = {"worldcover": re.compile(r"worldcover", re.I), "igbp": re.compile(r"igbp|mcd12q1|lc_type1", re.I)}
SOURCE_RULES = "ndvi_bt_rules"
SOURCE_NONE = "none: no map and no NDVI (night scene)"
SOURCE_OFF = "none: not requested (landcover='none')"
#: ``landcover`` values: the NDVI/BT rules without a map (also the default), and no land cover at all.
RULES = "rules"
NONE = "none"


@dataclass(frozen=True)
class LandCoverMap:
    """What a task needs to sample a checked map: path, legend, CRS (WKT), affine transform, size, no-data."""

    path: str
    legend: str
    crs_wkt: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    nodata: float | None

    @property
    def source(self) -> str:
        return f"map: {self.path} ({self.legend})"


@functools.lru_cache(maxsize=8)
def _to_map(crs_wkt: str):
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs_wkt, always_xy=True)


def map_cells(lcmap: LandCoverMap, latitude, longitude) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _read_window(path: str, rows: slice, cols: slice) -> np.ndarray:
    import rioxarray

    with rioxarray.open_rasterio(path, cache=False) as raster:
        return np.asarray(raster.isel(band=0, y=rows, x=cols).values)


def sample_block(latitude: np.ndarray, longitude: np.ndarray, lcmap: LandCoverMap) -> np.ndarray:
    """int8 classes of the map cells under one block of pixel centres (-1 outside the map or no data)."""
    row, col, inside = map_cells(lcmap, latitude, longitude)
    out = np.full(np.shape(latitude), LAND_COVER_UNKNOWN, np.int8)
    if inside.any():
        r0, r1, c0, c1 = row[inside].min(), row[inside].max() + 1, col[inside].min(), col[inside].max() + 1
        window = _read_window(lcmap.path, slice(r0, r1), slice(c0, c1))
        out[inside] = classes_from_codes(window[row[inside] - r0, col[inside] - c0], lcmap.legend,
                                         source=lcmap.path, nodata=lcmap.nodata)
    return out


def _hinted_legend(path: Path, raster: xr.DataArray) -> str | None:
    """The legend named by the file name or its tags, if exactly one is."""
    text = " ".join([path.name] + [f"{k}={v}" for k, v in raster.attrs.items()])
    named = [legend for legend, pattern in LEGEND_HINTS.items() if pattern.search(text)]
    return named[0] if len(named) == 1 else None


def _legend_from_codes(source: str, codes: set[int]) -> str:
    """The one legend whose codes include all ``codes`` (the map's codes under the scene, no-data removed)."""
    if not codes:
        raise InputError(source, "only no-data cells under the scene", variable="land cover map",
                         expected="land-cover codes over the scene, or --landcover-legend to accept an empty map")
    fitting = [legend for legend in LEGENDS if codes <= legend_codes(legend)]
    if len(fitting) == 1:
        return fitting[0]
    if fitting:
        raise InputError(source, f"codes {sorted(codes)} under the scene fit both the worldcover and the igbp "
                         "legend", variable="land cover legend",
                         expected="--landcover-legend worldcover|igbp (landcover_legend=) to say which")
    raise InputError(source, f"codes {sorted(codes)} under the scene fit no known legend", variable="land cover",
                     expected=", ".join(f"{name} codes {sorted(legend_codes(name))}" for name in LEGENDS))


def open_landcover(path, latitude: xr.DataArray, longitude: xr.DataArray, legend: str | None = None
                   ) -> LandCoverMap:
    """Check a land-cover GeoTIFF against a scene (its pixel ``latitude``/``longitude``) and decide its legend.

    ``legend``: ``worldcover``, ``igbp`` or None (from the file's name/tags, else from its codes under the
    scene). Raises InputError (naming the file) for a missing or unreadable file, not one integer band,
    no CRS, no overlap with the scene, ambiguous or unknown codes.
    """
    import rioxarray
    from rasterio.errors import RasterioError

    source = describe_path(path)
    if legend is not None and legend not in LEGENDS:
        raise InputError(source, f"unknown legend {legend!r}", variable="land cover legend",
                         expected=" or ".join(LEGENDS))
    if not Path(path).is_file():
        raise InputError(source, "no such file", variable="land cover map", expected="a land-cover GeoTIFF")
    try:
        raster = rioxarray.open_rasterio(path, cache=False)  # lazy: only the window under the scene is read
    except (RasterioError, OSError, ValueError) as exc:
        raise InputError(source, f"cannot be read as a raster ({exc})", variable="land cover map",
                         expected="a land-cover GeoTIFF") from exc
    if not isinstance(raster, xr.DataArray) or raster.sizes.get("band") != 1:
        raise InputError(source, "has several bands or subdatasets", variable="land cover map",
                         expected="one band of land-cover codes")
    with raster:
        return _checked_map(source, raster, latitude, longitude, legend)


def _checked_map(source: str, raster: xr.DataArray, latitude, longitude, legend: str | None) -> LandCoverMap:
    """The rest of :func:`open_landcover` on an opened one-band raster."""
    if not np.issubdtype(raster.dtype, np.integer):
        raise InputError(source, f"data type {raster.dtype}", variable="land cover map",
                         expected="integer land-cover codes")
    if raster.rio.crs is None:
        raise InputError(source, "no coordinate reference system", variable="land cover map",
                         expected="a georeferenced GeoTIFF (a CRS and a geotransform)")
    nodata = raster.rio.nodata
    lcmap = LandCoverMap(source, legend or "", raster.rio.crs.to_wkt(), tuple(raster.rio.transform())[:6],
                         (raster.sizes["y"], raster.sizes["x"]), None if nodata is None else float(nodata))
    step = [max(1, n // FOOTPRINT_POINTS) for n in latitude.shape]
    footprint = (slice(None, None, step[0]), slice(None, None, step[1]))
    row, col, inside = map_cells(lcmap, np.asarray(latitude[footprint].values), np.asarray(longitude[footprint].values))
    if not inside.any():
        raise InputError(source, "does not cover the scene (no sampled scene pixel falls on the map)",
                         variable="land cover map", expected="a map overlapping the scene's latitude/longitude")
    r0, r1, c0, c1 = row[inside].min(), row[inside].max() + 1, col[inside].min(), col[inside].max() + 1
    stride = max(1, math.ceil(math.sqrt((r1 - r0) * (c1 - c0) / LEGEND_SAMPLE_CELLS)))
    window = np.asarray(raster.isel(band=0, y=slice(r0, r1, stride), x=slice(c0, c1, stride)).values)
    codes = {int(c) for c in np.unique(window)} - ({int(nodata)} if nodata is not None else set())
    legend = legend or _hinted_legend(Path(source), raster) or _legend_from_codes(source, codes)
    lcmap = LandCoverMap(source, legend, lcmap.crs_wkt, lcmap.transform, lcmap.shape, lcmap.nodata)
    classes_from_codes(np.array(sorted(codes)), legend, source=source, nodata=nodata)
    log.info("land cover from %s: legend %s, map rows %d-%d, cols %d-%d", source, legend, r0, r1, c0, c1)
    return lcmap


def _has_ndvi(ds: xr.Dataset) -> bool:
    """NDVI exists: the variable is there and, where it can be told without computing, not all NaN."""
    if "ndvi" not in ds.variables:
        return False
    if ds["ndvi"].attrs.get("vnir_available") == 0:
        return False
    return not isinstance(ds["ndvi"].data, np.ndarray) or bool(np.isfinite(ds["ndvi"].values).any())


@dataclass(frozen=True)
class LandCoverPlan:
    """How the kernel classes a chunk's pixels: a checked map (or None), then NDVI/BT rules if the scene has NDVI."""

    lcmap: LandCoverMap | None = None
    rules: bool = False
    requested: bool = True

    @property
    def inputs(self) -> tuple[str, ...]:
        """Variables the kernel needs besides brightness temperature."""
        return (("ndvi",) if self.rules else ()) + (("latitude", "longitude") if self.lcmap else ())

    @property
    def source(self) -> str:
        """``land_cover_source``: the map and/or the rules, or none."""
        if self.lcmap is None:
            return SOURCE_RULES if self.rules else SOURCE_NONE if self.requested else SOURCE_OFF
        return self.lcmap.source + (f"; {SOURCE_RULES} where the map gives no class" if self.rules else "")


def plan_land_cover(ds: xr.Dataset, landcover=None, legend: str | None = None) -> LandCoverPlan:
    """The plan for a scene: the NDVI/BT rules (``None``, the default, or ``"rules"``; when ``ds`` has NDVI),
    nothing (``"none"``), or a map (a GeoTIFF path or a LandCoverMap, checked here against the scene's
    latitude/longitude) with the rules where it has no class."""
    if isinstance(landcover, str) and landcover == NONE:
        return LandCoverPlan(None, False, requested=False)
    if landcover is None or (isinstance(landcover, str) and landcover == RULES):
        return LandCoverPlan(None, _has_ndvi(ds))
    for name in ("latitude", "longitude"):
        if name not in ds.variables:
            raise InputError(ds.attrs.get("source_file", "dataset"), "variable missing", variable=name,
                             expected="latitude/longitude (y, x) to place the scene's pixels on the land-cover map")
    if not isinstance(landcover, LandCoverMap):
        landcover = open_landcover(landcover, ds["latitude"], ds["longitude"], legend)
    return LandCoverPlan(landcover, _has_ndvi(ds))


def classify_block(plan: LandCoverPlan, bt: np.ndarray, ndvi=None, latitude=None, longitude=None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(int8 classes, pixels classed by the rules) of one block; ``bt`` (band, …) in BANDS order, the others
    (…) as ``plan.inputs`` asks."""
    shape = bt.shape[1:]
    rules = (classes_from_rules(np.broadcast_to(ndvi, shape), bt[BANDS.index("B10")], bt[BANDS.index("B13")],
                                bt[BANDS.index("B14")]) if plan.rules else np.full(shape, LAND_COVER_UNKNOWN, np.int8))
    if plan.lcmap is None:
        return rules, rules != LAND_COVER_UNKNOWN
    cover = sample_block(np.broadcast_to(latitude, shape), np.broadcast_to(longitude, shape), plan.lcmap)
    from_rules = (cover == LAND_COVER_UNKNOWN) & (rules != LAND_COVER_UNKNOWN)
    return np.where(from_rules, rules, cover).astype(np.int8), from_rules
