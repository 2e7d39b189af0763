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

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..conventions import BANDS, LAND_COVER_UNKNOWN
from ..errors import InputError, describe_path
from ..io.categorical_map import CategoricalMap, open_map, sample_codes
from ..landcover.legends import check_legend, classes_from_codes, hinted_legend, legend_from_codes
from ..landcover.rules import classes_from_rules

log = logging.getLogger(__name__)

SOURCE_RULES = "ndvi_bt_rules"
SOURCE_NONE = "none: no map and no NDVI (night scene)"
SOURCE_OFF = "none: not requested (landcover='none')"
#: ``landcover`` values: the NDVI/BT rules without a map (also the default), and no land cover at all.
RULES = "rules"
NONE = "none"


def open_landcover(path, latitude: xr.DataArray, longitude: xr.DataArray, legend: str | None = None
                   ) -> CategoricalMap:
    """Check a land-cover GeoTIFF against a scene and decide its legend.

    ``legend``: ``worldcover``, ``igbp`` or None (from the file's name/tags, else from its codes under the
    scene). Raises InputError (naming the file) for a bad file (:func:`~akkd_scale.io.categorical_map.open_map`),
    ambiguous or unknown codes.
    """
    check_legend(legend, describe_path(path))
    found = open_map(path, latitude, longitude)
    source = found.lcmap.path
    legend = legend or hinted_legend(found.hint_text) or legend_from_codes(source, found.codes)
    classes_from_codes(np.array(sorted(found.codes)), legend, source=source, nodata=found.lcmap.nodata)
    log.info("land cover from %s: legend %s", source, legend)
    return found.lcmap.with_legend(legend)


def sample_block(latitude: np.ndarray, longitude: np.ndarray, lcmap: CategoricalMap) -> np.ndarray:
    """int8 classes of the map cells under one block of pixel centres (-1 outside the map or no data)."""
    codes, inside = sample_codes(latitude, longitude, lcmap)
    out = np.full(np.shape(latitude), LAND_COVER_UNKNOWN, np.int8)
    if inside.any():
        out[inside] = classes_from_codes(codes[inside], lcmap.legend, source=lcmap.path, nodata=lcmap.nodata)
    return out


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

    lcmap: CategoricalMap | None = None
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
    nothing (``"none"``), or a map (a GeoTIFF path or a CategoricalMap, checked here against the scene's
    latitude/longitude) with the rules where it has no class."""
    if isinstance(landcover, str) and landcover == NONE:
        return LandCoverPlan(None, False, requested=False)
    if landcover is None or (isinstance(landcover, str) and landcover == RULES):
        return LandCoverPlan(None, _has_ndvi(ds))
    for name in ("latitude", "longitude"):
        if name not in ds.variables:
            raise InputError(ds.attrs.get("source_file", "dataset"), "variable missing", variable=name,
                             expected="latitude/longitude (y, x) to place the scene's pixels on the land-cover map")
    if not isinstance(landcover, CategoricalMap):
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
