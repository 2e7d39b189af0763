"""Lazy xarray backend (``engine="aster_l1b"``) for the TIR subsystem of ASTER AST_L1B and AST_L1T files.

What it returns is described in ``docs/reader.md``. In short: ``radiance`` and
``brightness_temperature`` (band, y, x) float32, NaN at fill (DN 0) and saturation (DN 4095);
``latitude``/``longitude`` (y, x) — L1B: bilinear from the 11 × 11 lattice (geocentric latitude made
geodetic), L1T: from the UTM grid; ``ndvi`` (y, x) from VNIR bands 2 and 3N aggregated to the TIR pixels
(NaN without VNIR); scalar ``view_zenith`` and ``solar_zenith``; a ``spatial_ref`` coordinate written
with rioxarray (L1T: UTM CRS + transform, ``x``/``y`` in metres; L1B: EPSG:4326 and the lattice as
ground control points). Opening reads only metadata, the small lattice and (to reject all-fill scenes)
one band; pixel reads happen per Dask chunk, each reopening the file by path under the HDF4 lock, so the
dataset computes on multi-process Dask clusters.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from ...constants import EARTH_RADIUS_KM, GEOCENTRIC_FACTOR, TERRA_ALTITUDE_KM
from ...conventions import BANDS, BT, OUTPUT_ATTRS, VZA
from ...errors import SceneFileError, describe_path
from ...sensors import ASTER_TIR
from ...sensors.aster import VNIR_UCC
from .metadata import (MapProjection, Metadata, acquisition_time, band_gains, calibration, map_projection,
                         pointing_angle, processing_level, scene_attributes, short_name)
from ..hdf4 import SdsInfo, check_hdf4, list_sds, open_sd, read_sds, read_text_attributes, swath_members
from ..odl import OdlNode, parse_odl

log = logging.getLogger(__name__)

SWATH, VNIR_SWATH = "TIR_Swath", "VNIR_Swath"
DN_FILL, DN_SATURATED = 0, 4095
#: Largest TIR cross-track pointing angle (deg; ±8.55° per the ASTER User Handbook, plus margin).
MAX_TIR_POINTING_DEG = 9.0
VNIR_FILL, VNIR_SATURATED = 0, 255
PYHDF_UINT8, PYHDF_UINT16 = 21, 23  # pyhdf.SDC.UINT8, pyhdf.SDC.UINT16
#: VNIR bands used for NDVI and their exo-atmospheric solar irradiance (W m-2 um-1; Thome et al. "B", the
#: values of LP DAAC's ASTERL1T_DN2REF).
VNIR_BANDS = ("2", "3N")
VNIR_ESUN = (1549.0, 1114.0)


@dataclass(frozen=True)
class VnirGrid:
    """VNIR bands 2 and 3N and how their pixels fall on the TIR grid."""

    bands: tuple[SdsInfo, SdsInfo]
    gain: tuple[float, float]
    offset: tuple[float, float]
    calibration_source: str
    factor: int  # VNIR pixels per TIR pixel along each axis
    origin: tuple[int, int]  # VNIR (line, pixel) of the upper-left corner of TIR pixel (0, 0)
    reflectance_factor: tuple[float, float]  # ρ = L · π d² / (ESUN cos θs), per band


@dataclass(frozen=True)
class TirScene:
    """Everything the reader learns at open time: layout of the TIR swath and scene metadata."""

    path: str
    level: str  # "1B" or "1T"
    shape: tuple[int, int]
    bands: tuple[SdsInfo, ...]
    latitude_lattice: np.ndarray | None  # geodetic degrees (None: an L1T without lattice)
    longitude_lattice: np.ndarray | None  # degrees, unwrapped around the scene
    line_map: tuple[float, float]  # (offset, increment): lattice row k sits at image line offset + k·increment
    pixel_map: tuple[float, float]
    projection: MapProjection | None  # L1T only
    gain: tuple[float, ...]  # radiance = gain · DN + offset
    offset: tuple[float, ...]
    calibration_source: str
    pointing_angle: float  # NaN when the metadata has none
    pointing_source: str
    solar_zenith: float  # NaN when the metadata has no SOLARDIRECTION
    acquisition_time: str
    vnir: VnirGrid | None
    vnir_note: str  # why there is no NDVI, or how it was made
    attrs: dict


def _error(path, problem, variable=None, expected=None):
    return SceneFileError(describe_path(path), problem, variable=variable, expected=expected)


def _swaths(struct: OdlNode) -> dict[str, OdlNode]:
    return {str(node.attrs["SWATHNAME"]): node for node in struct.walk()
            if node.kind == "GROUP" and "SWATHNAME" in node.attrs}


def _dimension_sizes(swath: OdlNode) -> dict[str, int]:
    return {str(n.attrs["DIMENSIONNAME"]): int(n.attrs["SIZE"]) for n in swath.walk()
            if "DIMENSIONNAME" in n.attrs and isinstance(n.attrs.get("SIZE"), int)}


def dimension_maps(swath: OdlNode) -> dict[tuple[str, str], tuple[float, float]]:
    """(geo dimension, data dimension) → (offset, increment) from the swath's DimensionMap."""
    group = swath.find("DimensionMap", "GROUP")
    maps = {}
    for node in (group.children if group else []):
        a = node.attrs
        if {"GEODIMENSION", "DATADIMENSION", "OFFSET", "INCREMENT"} <= set(a):
            maps[(str(a["GEODIMENSION"]), str(a["DATADIMENSION"]))] = (float(a["OFFSET"]), float(a["INCREMENT"]))
    return maps


def lattice_map(maps, geo_dim: str, data_dim: str, lattice_size: int, image_size: int) -> tuple[float, float]:
    """Lattice ↔ image mapping from the DimensionMap, else offset 0 and increment floor(n / (points − 1))."""
    offset, increment = maps.get((geo_dim, data_dim), (0.0, 0.0))
    if increment:
        return offset, increment
    return 0.0, float(max(1, image_size // (lattice_size - 1)))


def find_sds(table: list[SdsInfo], name: str, swath: str, members: dict[str, set[int]],
             shape: tuple[int, ...] | None, path) -> SdsInfo | None:
    """The SDS ``name`` of ``swath``: by Vgroup membership when the file has swath Vgroups, else by a
    dimension name that mentions the swath (any separator), else by the swath's image ``shape``, else any SDS
    of that name. None if there is none; an error if several remain."""
    candidates = [info for info in table if info.name == name]
    if swath in members:
        picked = [c for c in candidates if c.index in members[swath]]
    else:
        picked = [c for c in candidates if c.dim_names and all(swath in d for d in c.dim_names)]
        if not picked and shape is not None:
            picked = [c for c in candidates if c.shape == shape]
        if not picked:
            picked = candidates
    if len(picked) > 1:
        raise _error(path, f"{len(picked)} datasets called {name} and nothing says which belongs to {swath}",
                     variable=name, expected="HDF-EOS swath Vgroups or dimension names naming the swath")
    return picked[0] if picked else None


def view_zenith_from_pointing(pointing_angle_deg: float) -> float:
    """View zenith at the ground (deg) of a satellite look angle off nadir (Earth curvature):
    sin(VZA) = (R + H)/R · sin(pointing), with R = 6371 km and Terra's H = 705 km; NaN stays NaN."""
    if math.isnan(pointing_angle_deg):
        return math.nan
    ratio = (EARTH_RADIUS_KM + TERRA_ALTITUDE_KM) / EARTH_RADIUS_KM
    return math.degrees(math.asin(min(1.0, ratio * math.sin(math.radians(abs(pointing_angle_deg))))))


def earth_sun_distance_au(day_of_year: int) -> float:
    """Earth–Sun distance (AU): 1 − 0.01672 cos(0.9856° (DOY − 4))."""
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day_of_year - 4)))


def _geodetic(latitude_geocentric: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan(GEOCENTRIC_FACTOR * np.tan(np.radians(latitude_geocentric))))


def _unwrap_longitude(longitude: np.ndarray) -> np.ndarray:
    """Longitudes made continuous around the lattice centre (scenes crossing ±180°)."""
    ref = longitude[longitude.shape[0] // 2, longitude.shape[1] // 2]
    return ref + (longitude - ref + 180.0) % 360.0 - 180.0


def _check_not_all_fill(sd, path, band: SdsInfo) -> None:
    """Raise if ``band`` holds only fill: a strided sample first, the whole band only if that is empty."""
    step = max(1, min(band.shape) // 64)
    sample = read_sds(sd, path, band, (slice(0, None, step), slice(0, None, step)))
    if np.any(sample != DN_FILL):
        return
    if np.any(read_sds(sd, path, band) != DN_FILL):
        return
    raise _error(path, "every pixel is fill (DN 0): no data in the scene", variable=band.name,
                 expected="at least one non-fill pixel")


def _image_bands(table, members, swath: str, names, shape, type_code: int, path, type_name: str):
    """The 2-D ``type_code`` image SDS ``names`` of ``swath``, all of one shape (errors name the field)."""
    bands = []
    for field in names:
        info = find_sds(table, field, swath, members, shape, path)
        if info is None:
            raise _error(path, f"band B{field[len('ImageData'):]} is missing", variable=field,
                         expected=f"{type_name} datasets {', '.join(names)} in {swath}")
        if len(info.shape) != 2 or info.type_code != type_code:
            raise _error(path, f"has shape {info.shape} and HDF type code {info.type_code}", variable=field,
                         expected=f"a 2-D {type_name} image (line, pixel)")
        bands.append(info)
    if len({b.shape for b in bands}) != 1:
        detail = ", ".join(f"{b.name} {b.shape}" for b in bands)
        raise _error(path, f"bands differ in shape: {detail}", variable=f"{names[0]}…{names[-1]}",
                     expected=f"all {swath} bands on one (line, pixel) grid")
    return tuple(bands)


def _expected_shape(swath: OdlNode) -> tuple[int, int] | None:
    sizes = _dimension_sizes(swath)
    return (sizes["ImageLine"], sizes["ImagePixel"]) if {"ImageLine", "ImagePixel"} <= set(sizes) else None


def _vnir_grid(path, meta: Metadata, level: str, swaths, table, members, tir_shape, tir_projection,
               solar_zenith: float, when: str) -> tuple[VnirGrid | None, str]:
    """VNIR bands 2/3N on the TIR grid, or (None, why not). Missing VNIR is normal (night scenes)."""
    if VNIR_SWATH not in swaths:
        return None, "no VNIR_Swath in the file (night scene or TIR-only product): NDVI is NaN"
    fields = tuple(f"ImageData{b}" for b in VNIR_BANDS)
    try:
        bands = _image_bands(table, members, VNIR_SWATH, fields, _expected_shape(swaths[VNIR_SWATH]),
                             PYHDF_UINT8, path, "uint8")
    except SceneFileError as exc:
        log.warning("%s: VNIR bands unusable, NDVI is NaN: %s", describe_path(path), exc)
        return None, f"VNIR bands 2/3N unusable ({exc.problem}): NDVI is NaN"
    if math.isnan(solar_zenith):
        log.warning("%s: no SOLARDIRECTION: NDVI (needs the sun elevation) is NaN", describe_path(path))
        return None, "no SOLARDIRECTION in the metadata: NDVI is NaN"
    vshape = bands[0].shape
    note = "VNIR bands 2 and 3N"
    if level == "1T":
        try:
            vproj = map_projection(meta, "VNIR")
        except SceneFileError:
            vproj = None
        if vproj is not None and tir_projection is not None:
            vres, tres = vproj.pixel_size(vshape)[0], tir_projection.pixel_size(tir_shape)[0]
            factor = max(1, round(tres / vres))
            origin = (round(((vproj.upper_left[1] + vres / 2) - (tir_projection.upper_left[1] + tres / 2)) / vres),
                      round(((tir_projection.upper_left[0] - tres / 2) - (vproj.upper_left[0] - vres / 2)) / vres))
            note += f" placed by their UPPERLEFTM ({vres:.1f} m VNIR pixels)"
        else:
            factor, origin = 6, (0, 0)
            note += " assumed to share the TIR grid's upper-left corner (no VNIR UPPERLEFTM)"
    else:
        ratios = {vshape[0] / tir_shape[0], vshape[1] / tir_shape[1]}
        if len(ratios) != 1 or not float(next(iter(ratios))).is_integer():
            log.warning("%s: VNIR %s is not a whole multiple of TIR %s: NDVI is NaN", describe_path(path),
                        vshape, tir_shape)
            return None, f"VNIR {vshape} is not a whole multiple of TIR {tir_shape}: NDVI is NaN"
        factor, origin = int(next(iter(ratios))), (0, 0)
    gains = {b: band_gains(meta).get(b, "NOR") for b in VNIR_BANDS}
    if any(g not in VNIR_UCC[b] for b, g in gains.items()):
        log.warning("%s: VNIR gain %s: NDVI is NaN", describe_path(path), gains)
        return None, f"VNIR gain {gains} (band off or unknown setting): NDVI is NaN"
    gain, offset, source = calibration(meta, VNIR_BANDS, "VNIR", tuple(VNIR_UCC[b][g] for b, g in gains.items()))
    doy = datetime.fromisoformat(when.replace("Z", "+00:00")).timetuple().tm_yday
    distance = earth_sun_distance_au(doy)
    cos_sun = math.cos(math.radians(solar_zenith))
    reflectance = tuple(math.pi * distance ** 2 / (esun * cos_sun) for esun in VNIR_ESUN)
    note += f" ({factor} x {factor} VNIR pixels per TIR pixel), calibration: {source}"
    return VnirGrid(bands, gain, offset, source, factor, origin, reflectance), note


def inspect_scene(path, *, check_fill: bool = True) -> TirScene:
    """Validate an AST_L1B/L1T file and collect its TIR layout and metadata (no pixel data read,
    except one band when ``check_fill``)."""
    path = check_hdf4(path)
    where = describe_path(path)
    with open_sd(path) as sd:
        attrs = read_text_attributes(sd, path)
        table = list_sds(sd, path)
    if "StructMetadata.0" not in attrs:
        raise _error(path, "no HDF-EOS structure metadata", variable="StructMetadata.0",
                     expected="an HDF-EOS2 file (ASTER L1B/L1T)")
    struct = parse_odl(attrs["StructMetadata.0"], source=f"{where}: StructMetadata.0")
    meta = Metadata.from_attributes(attrs, where)
    swaths = _swaths(struct)
    if SWATH not in swaths:
        short = short_name(meta)
        hint = f" (product {short})" if short else ""
        raise _error(path, f"no {SWATH} in the file{hint}; swaths present: {sorted(swaths) or 'none'}",
                     variable=SWATH, expected="the TIR subsystem of an AST_L1B/AST_L1T file "
                     "(VNIR-only files and Level-2 products cannot be read)")
    members = swath_members(path)
    level = processing_level(meta)
    tir = swaths[SWATH]
    bands = _image_bands(table, members, SWATH, tuple(f"ImageData{b[1:]}" for b in BANDS), _expected_shape(tir),
                         PYHDF_UINT16, path, "uint16")
    shape = bands[0].shape
    lattice = {}
    with open_sd(path) as sd:
        for name in ("Latitude", "Longitude"):
            info = find_sds(table, name, SWATH, members, None, path)
            if info is None:
                if level == "1T":
                    continue
                raise _error(path, "geolocation lattice missing", variable=name,
                             expected=f"{SWATH} geolocation field {name} (11 × 11 lattice)")
            if len(info.shape) != 2 or min(info.shape) < 2:
                raise _error(path, f"lattice has shape {info.shape}", variable=name,
                             expected="a 2-D lattice of at least 2 × 2 points")
            lattice[name] = read_sds(sd, path, info).astype(float)
        if check_fill:
            _check_not_all_fill(sd, path, bands[BANDS.index("B13")])
    if len(lattice) < 2:  # an L1T without (both) lattice fields: geolocation comes from its UTM grid
        lattice = {}
    if lattice and lattice["Latitude"].shape != lattice["Longitude"].shape:
        raise _error(path, f"Latitude {lattice['Latitude'].shape} and Longitude {lattice['Longitude'].shape} "
                     "differ", variable="Longitude", expected="lattices of equal shape")
    maps = dimension_maps(tir)
    rows, cols = lattice["Latitude"].shape if lattice else (11, 11)
    line_map = lattice_map(maps, "GeoTrack", "ImageLine", rows, shape[0])
    pixel_map = lattice_map(maps, "GeoXtrack", "ImagePixel", cols, shape[1])
    projection = map_projection(meta, "TIR") if level == "1T" else None
    if projection is not None and min(projection.pixel_size(shape)) <= 0:
        raise _error(path, f"UPPERLEFTM {projection.upper_left} / LOWERRIGHTM {projection.lower_right} give "
                     f"pixel size {projection.pixel_size(shape)}", variable=projection.source,
                     expected="a north-up grid (easting growing right, northing growing up)")
    pointing, pointing_source = pointing_angle(meta, "TIR")
    if not math.isnan(pointing) and not abs(pointing) <= MAX_TIR_POINTING_DEG:
        raise _error(path, f"TIR pointing angle {pointing}° ({pointing_source})", variable="POINTINGANGLE",
                     expected=f"a finite angle within ±{MAX_TIR_POINTING_DEG}° (ASTER TIR cross-track pointing)")
    if math.isnan(pointing):
        log.warning("%s: TIR pointing angle unavailable (%s): view_zenith is NaN", where, pointing_source)
    when = acquisition_time(meta)
    gain, offset, source = calibration(meta, tuple(b[1:] for b in BANDS), "TIR", tuple(b.ucc for b in ASTER_TIR.bands))
    bad = [f"{band} {g}" for band, g in zip(BANDS, np.atleast_1d(gain)) if not (np.isfinite(g) and g > 0)]
    if bad:
        raise _error(path, f"unit conversion coefficients {', '.join(bad)} ({source})", variable="INCL",
                     expected="finite positive radiance per DN for every TIR band")
    extra = scene_attributes(meta)
    solar_zenith = 90.0 - extra["solar_elevation"] if "solar_elevation" in extra else math.nan
    vnir, vnir_note = _vnir_grid(path, meta, level, swaths, table, members, shape, projection, solar_zenith, when)
    for name, limit in (("Latitude", 90.0), ("Longitude", 180.0)):
        values = lattice.get(name)
        if values is not None and not (np.all(np.isfinite(values)) and np.all(np.abs(values) <= limit)):
            worst = values[~(np.isfinite(values) & (np.abs(values) <= limit))].ravel()[0]
            raise _error(path, f"geolocation lattice has {np.sum(~(np.isfinite(values) & (np.abs(values) <= limit)))}"
                         f" invalid point(s), e.g. {worst}", variable=name,
                         expected=f"finite degrees within ±{limit:g} at every lattice point")
    if lattice:
        latitude = _geodetic(lattice["Latitude"]) if level == "1B" else lattice["Latitude"]
        longitude = _unwrap_longitude(lattice["Longitude"])
    else:
        latitude = longitude = None
    attrs = {"product": short_name(meta) or "unknown", "processing_level": level, **extra}
    return TirScene(str(Path(path).resolve()), level, shape, bands, latitude, longitude, line_map, pixel_map,
                    projection, gain, offset, source, pointing, pointing_source, solar_zenith, when, vnir,
                    vnir_note, attrs)


def _axis_plan(key, size: int):
    """Split a basic index (int or slice) into a pyhdf read (a positive-step slice) and a NumPy step
    applied afterwards: None, an index array (negative steps), or 0 for an integer (drops the axis).
    Integers are read as length-1 slices: pyhdf 0.11 returns wrong values for all-integer keys."""
    if isinstance(key, (int, np.integer)):
        k = int(key) % size
        return slice(k, k + 1), 0
    start, stop, step = key.indices(size)
    if step > 0:
        return slice(start, max(start, stop), step), None
    idx = np.arange(size)[key]
    if idx.size == 0:
        return slice(0, 0), None
    low = int(idx.min())
    return slice(low, int(idx.max()) + 1), idx - low


def _window_shape(key: tuple, shape: tuple) -> tuple[int, ...]:
    return tuple(len(range(*k.indices(n))) for k, n in zip(key, shape) if not isinstance(k, (int, np.integer)))


def read_windows(path: str, infos, key: tuple) -> list[np.ndarray]:
    """Read the same (line, pixel) basic-index window of several bands, reopening the file by path once."""
    plans = [_axis_plan(k, n) for k, n in zip(key, infos[0].shape)]
    if any(read.start >= read.stop for read, _ in plans):
        return [np.zeros(_window_shape(key, info.shape), np.uint16) for info in infos]
    with open_sd(path) as sd:
        windows = [read_sds(sd, path, info, tuple(read for read, _ in plans)) for info in infos]
    for axis in reversed(range(len(plans))):  # from the last axis so earlier axis numbers stay valid
        post = plans[axis][1]
        if post is not None:
            windows = [np.take(w, post, axis=axis) for w in windows]
    return windows


class TirArray(BackendArray):
    """(band, y, x) radiance or brightness temperature, read and converted per requested window."""

    def __init__(self, scene: TirScene, quantity: str):
        self.path = scene.path
        self.bands = scene.bands
        self.gain, self.offset = scene.gain, scene.offset
        self.quantity = quantity
        self.shape = (len(scene.bands),) + tuple(scene.shape)
        self.dtype = np.dtype("float32")

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC,
                                                  self._raw_indexing_method)

    def _raw_indexing_method(self, key: tuple) -> np.ndarray:
        band_key, spatial = key[0], key[1:]
        if isinstance(band_key, (int, np.integer)):
            return self._convert(int(band_key), read_windows(self.path, [self.bands[int(band_key)]], spatial)[0])
        selected = list(range(len(self.bands))[band_key])
        if not selected:
            return np.empty((0,) + _window_shape(spatial, self.shape[1:]), np.float32)
        windows = read_windows(self.path, [self.bands[i] for i in selected], spatial)
        return np.stack([self._convert(i, dn) for i, dn in zip(selected, windows)])

    def _convert(self, i: int, dn: np.ndarray) -> np.ndarray:
        """DN → radiance (NaN at fill/saturation) → optionally brightness temperature, float32."""
        valid = (dn != DN_FILL) & (dn != DN_SATURATED)
        radiance = np.where(valid, self.gain[i] * dn.astype(np.float64) + self.offset[i], np.nan)
        if self.quantity == "radiance":
            return radiance.astype(np.float32)
        return ASTER_TIR.bands[i].brightness_temperature(radiance).astype(np.float32)


def _positions(key: tuple, shape: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Row and column indices (1-D) of a basic (line, pixel) key, and the index that drops integer axes."""
    rows = np.arange(shape[0])[key[0]]
    cols = np.arange(shape[1])[key[1]]
    squeeze = (0 if np.ndim(rows) == 0 else slice(None), 0 if np.ndim(cols) == 0 else slice(None))
    return np.atleast_1d(rows), np.atleast_1d(cols), squeeze


class _SpatialArray(BackendArray):
    """Base of the computed (y, x) variables: basic indexing → :meth:`_compute` on row/column indices."""

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC,
                                                  self._raw_indexing_method)

    def _raw_indexing_method(self, key: tuple) -> np.ndarray:
        rows, cols, squeeze = _positions(key, self.shape)
        if rows.size == 0 or cols.size == 0:
            return np.empty((rows.size, cols.size), self.dtype)[squeeze]
        return self._compute(rows, cols)[squeeze]


def interpolate_lattice(lattice: np.ndarray, rows: np.ndarray, cols: np.ndarray, line_map, pixel_map) -> np.ndarray:
    """Bilinear interpolation (linear extrapolation past the last lattice point) of a lattice whose
    point (k, l) sits at image line offset + k·increment and pixel offset + l·increment."""
    grid = tuple(m[0] + m[1] * np.arange(n) for m, n in zip((line_map, pixel_map), lattice.shape))
    interpolator = RegularGridInterpolator(grid, lattice, method="linear", bounds_error=False, fill_value=None)
    yy, xx = np.meshgrid(np.asarray(rows, float), np.asarray(cols, float), indexing="ij")
    return interpolator(np.stack([yy.ravel(), xx.ravel()], axis=-1)).reshape(yy.shape)


class LatticeArray(_SpatialArray):
    """(y, x) latitude or longitude interpolated on demand from the (small) lattice kept in memory."""

    def __init__(self, scene: TirScene, which: str):
        self.lattice = scene.latitude_lattice if which == "latitude" else scene.longitude_lattice
        self.wrap = which == "longitude"
        self.line_map, self.pixel_map = scene.line_map, scene.pixel_map
        self.shape = tuple(scene.shape)
        self.dtype = np.dtype("float64")

    def _compute(self, rows, cols):
        values = interpolate_lattice(self.lattice, rows, cols, self.line_map, self.pixel_map)
        return (values + 180.0) % 360.0 - 180.0 if self.wrap else values


@lru_cache(maxsize=8)
def _to_lonlat(epsg: int):
    from pyproj import Transformer

    return Transformer.from_crs(epsg, 4326, always_xy=True)


class ProjectedLatLonArray(_SpatialArray):
    """(y, x) latitude or longitude of the pixel centres of an L1T UTM grid (pyproj, per window)."""

    def __init__(self, scene: TirScene, which: str):
        self.epsg = scene.projection.epsg
        self.x0, self.y0 = scene.projection.upper_left
        self.dx, self.dy = scene.projection.pixel_size(scene.shape)
        self.which = which
        self.shape = tuple(scene.shape)
        self.dtype = np.dtype("float64")

    def _compute(self, rows, cols):
        xx, yy = np.meshgrid(self.x0 + self.dx * cols, self.y0 - self.dy * rows)
        lon, lat = _to_lonlat(self.epsg).transform(xx, yy)
        return lat if self.which == "latitude" else lon


class NdviArray(_SpatialArray):
    """(y, x) NDVI of top-of-atmosphere reflectance, VNIR bands 2 and 3N averaged over the VNIR pixels of
    each TIR pixel; NaN where any of them is fill/saturated, outside the VNIR image, or without VNIR."""

    def __init__(self, scene: TirScene):
        self.path = scene.path
        self.vnir = scene.vnir
        self.shape = tuple(scene.shape)
        self.dtype = np.dtype("float32")

    def _compute(self, rows, cols):
        if self.vnir is None:
            return np.full((rows.size, cols.size), np.nan, np.float32)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        block = self._block(r0, r1, c0, c1)
        return block[np.ix_(rows - r0, cols - c0)]

    def _block(self, r0, r1, c0, c1) -> np.ndarray:
        vnir, f = self.vnir, self.vnir.factor
        vshape = vnir.bands[0].shape
        lines = (vnir.origin[0] + f * r0, vnir.origin[0] + f * r1)
        pixels = (vnir.origin[1] + f * c0, vnir.origin[1] + f * c1)
        inside = [(max(0, lo), min(n, hi)) for (lo, hi), n in zip((lines, pixels), vshape)]
        dn = np.full((2, lines[1] - lines[0], pixels[1] - pixels[0]), VNIR_FILL, np.uint8)
        if all(lo < hi for lo, hi in inside):
            windows = read_windows(self.path, list(vnir.bands), tuple(slice(lo, hi) for lo, hi in inside))
            target = (slice(inside[0][0] - lines[0], inside[0][1] - lines[0]),
                      slice(inside[1][0] - pixels[0], inside[1][1] - pixels[0]))
            for i, window in enumerate(windows):
                dn[i][target] = window
        valid = (dn != VNIR_FILL) & (dn != VNIR_SATURATED)
        shape = (r1 - r0, f, c1 - c0, f)
        # reflectance is linear in DN: average the DN over the f x f pixels first (no full-size float copy)
        red, nir = ((vnir.gain[i] * dn[i].reshape(shape).mean(axis=(1, 3)) + vnir.offset[i])
                    * vnir.reflectance_factor[i] for i in range(2))
        complete = valid.all(axis=0).reshape(shape).all(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
        return np.where(complete, ndvi, np.nan).astype(np.float32)


def _preferred_chunks(scene: TirScene) -> dict[str, int]:
    """Whole rows (the HDF4 storage order) in blocks of one lattice row spacing; all bands together."""
    rows = int(min(scene.shape[0], max(1, round(scene.line_map[1]))))
    return {"band": len(scene.bands), "y": rows, "x": scene.shape[1]}


def lattice_gcps(scene: TirScene) -> list:
    """Ground control points of the L1B lattice: (line + 0.5, pixel + 0.5) of each lattice point (the
    pixel centre in GDAL's pixel/line convention) → (longitude, geodetic latitude, 0)."""
    from rasterio.control import GroundControlPoint

    gcps = []
    for k in range(scene.latitude_lattice.shape[0]):
        for m in range(scene.latitude_lattice.shape[1]):
            line = scene.line_map[0] + k * scene.line_map[1]
            pixel = scene.pixel_map[0] + m * scene.pixel_map[1]
            gcps.append(GroundControlPoint(row=line + 0.5, col=pixel + 0.5, x=float(scene.longitude_lattice[k, m]),
                                           y=float(scene.latitude_lattice[k, m]), z=0.0, id=f"{k},{m}"))
    return gcps


def georeference(ds: xr.Dataset, scene: TirScene) -> xr.Dataset:
    """Add the ``spatial_ref`` coordinate (rioxarray): L1T UTM CRS, transform and x/y in metres;
    L1B EPSG:4326 with the lattice as ground control points."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    from affine import Affine

    if scene.projection is None:
        ds = ds.rio.write_crs("EPSG:4326")
        return ds.rio.write_gcps(lattice_gcps(scene), "EPSG:4326")
    (x0, y0), (dx, dy) = scene.projection.upper_left, scene.projection.pixel_size(scene.shape)
    ds = ds.assign_coords(x=x0 + dx * np.arange(scene.shape[1]), y=y0 - dy * np.arange(scene.shape[0]))
    ds = ds.rio.write_crs(f"EPSG:{scene.projection.epsg}")
    ds = ds.rio.write_transform(Affine(dx, 0.0, x0 - dx / 2, 0.0, -dy, y0 + dy / 2))
    return ds.rio.write_coordinate_system()


def build_dataset(scene: TirScene, drop_variables=()) -> xr.Dataset:
    """The lazy Dataset for a validated scene (variables wrap BackendArrays; no pixel read here)."""
    preferred = _preferred_chunks(scene)
    spatial = {k: preferred[k] for k in ("y", "x")}
    centers = ASTER_TIR.centers_um
    projected = scene.projection is not None
    geo = ProjectedLatLonArray if projected else LatticeArray
    geo_comment = (f"pixel centres of the UTM grid (EPSG:{scene.projection.epsg}) converted with pyproj"
                   if projected else "bilinear from the 11x11 geolocation lattice")
    vza = view_zenith_from_pointing(scene.pointing_angle)
    variables = {
        "radiance": xr.Variable(("band", "y", "x"), indexing.LazilyIndexedArray(TirArray(scene, "radiance")), {
            "long_name": "at-sensor spectral radiance", "units": "W m-2 sr-1 um-1",
            "standard_name": "toa_outgoing_radiance_per_unit_wavelength",
            "calibration": scene.calibration_source,
            "comment": "NaN where DN is 0 (fill) or 4095 (saturated)"},
            {"preferred_chunks": preferred}),
        BT: xr.Variable(
            ("band", "y", "x"), indexing.LazilyIndexedArray(TirArray(scene, "brightness_temperature")), {
                "long_name": "at-sensor brightness temperature", "units": "K",
                "standard_name": "toa_brightness_temperature",
                "comment": "inverse band-effective Planck function of the SRF; NaN at fill and saturation"},
            {"preferred_chunks": preferred}),
        "latitude": xr.Variable(("y", "x"), indexing.LazilyIndexedArray(geo(scene, "latitude")), {
            **OUTPUT_ATTRS["latitude"],
            "comment": geo_comment + ("" if projected else " after geocentric-to-geodetic conversion")},
            {"preferred_chunks": spatial}),
        "longitude": xr.Variable(("y", "x"), indexing.LazilyIndexedArray(geo(scene, "longitude")), {
            **OUTPUT_ATTRS["longitude"], "comment": geo_comment}, {"preferred_chunks": spatial}),
        "ndvi": xr.Variable(("y", "x"), indexing.LazilyIndexedArray(NdviArray(scene)), {
            "long_name": "normalized difference vegetation index (top of atmosphere, VNIR bands 3N and 2)",
            "units": "1", "comment": scene.vnir_note, "vnir_available": int(scene.vnir is not None)},
            {"preferred_chunks": spatial}),
        VZA: xr.Variable((), np.float64(vza), {
            "long_name": "view zenith angle at the scene centre", "units": "degree",
            "standard_name": "sensor_zenith_angle",
            "comment": f"from the TIR pointing angle ({scene.pointing_source}) with Earth curvature: "
                       "sin(vza) = (R+H)/R sin(|pointing|); across-scene variation ignored"
                       + ("" if np.isfinite(vza) else "; NaN because the pointing angle is unavailable"),
            "pointing_angle": scene.pointing_angle}),
        "solar_zenith": xr.Variable((), np.float64(scene.solar_zenith), {
            "long_name": "solar zenith angle at the scene centre", "units": "degree",
            "standard_name": "solar_zenith_angle",
            "comment": "90 - SOLARDIRECTION elevation" + ("" if np.isfinite(scene.solar_zenith)
                                                           else "; NaN because SOLARDIRECTION is missing")}),
    }
    coords = {
        "band": xr.Variable(("band",), np.array(BANDS), {"long_name": "ASTER TIR band"}),
        "wavelength": xr.Variable(("band",), centers, {"long_name": "band centre wavelength (SRF centroid)",
                                                       "units": "um"}),
    }
    drop = set(drop_variables or ())
    data_vars = {k: v for k, v in variables.items() if k not in drop}
    attrs = {"title": "ASTER TIR at-sensor radiance and brightness temperature", "Conventions": "CF-1.8",
             "platform": "Terra", "sensor": "ASTER_TIR", "source_file": scene.path,
             "acquisition_time": scene.acquisition_time, "pointing_angle": scene.pointing_angle, **scene.attrs}
    ds = xr.Dataset(data_vars, coords={k: v for k, v in coords.items() if k not in drop}, attrs=attrs)
    return georeference(ds, scene)


class AsterL1BBackendEntrypoint(BackendEntrypoint):
    """xarray backend ``aster_l1b``: ``xr.open_dataset(path, engine="aster_l1b", chunks={})``."""

    description = "ASTER AST_L1B/AST_L1T thermal-infrared radiance and brightness temperature (HDF-EOS2/HDF4)"
    url = "https://lpdaac.usgs.gov/products/ast_l1bv003/"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "check_fill")

    def open_dataset(self, filename_or_obj, *, drop_variables=None, check_fill: bool = True) -> xr.Dataset:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            raise SceneFileError(repr(filename_or_obj), "not a path", variable="filename_or_obj",
                                 expected="a file path (the reader reopens files by path)")
        scene = inspect_scene(filename_or_obj, check_fill=check_fill)
        log.debug("opened %s: %s, %d x %d", scene.path, scene.attrs.get("product"), *scene.shape)
        return build_dataset(scene, drop_variables)

    def guess_can_open(self, filename_or_obj) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        path = Path(filename_or_obj)
        if path.suffix.lower() != ".hdf" or not path.name.upper().startswith("AST_L1"):
            return False
        try:
            check_hdf4(path)
        except SceneFileError:
            return False
        return True


def open_aster_l1b(path, chunks=None, **kwargs) -> xr.Dataset:
    """Open an ASTER L1B/L1T file lazily with Dask; ``chunks`` as in xarray (default: the reader's
    preferred chunks). The band dimension is always one chunk."""
    if chunks is None:
        chunks = {}
    if isinstance(chunks, dict):
        chunks = {**chunks, "band": -1}
    return xr.open_dataset(path, engine="aster_l1b", chunks=chunks, **kwargs)
