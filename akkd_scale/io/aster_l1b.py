"""Lazy xarray backend (``engine="aster_l1b"``) for the TIR subsystem of ASTER AST_L1B / AST_L1T files.

What it returns is described in ``docs/reader.md``. In short: ``radiance`` and
``brightness_temperature`` (band, y, x) float32, NaN at fill (DN 0) and saturation (DN 4095);
geodetic ``latitude``/``longitude`` (y, x) interpolated bilinearly from the 11 × 11 lattice; a scalar
``view_zenith`` from the TIR pointing angle; CF attributes. Opening reads only metadata, the small
lattice and (to reject all-fill scenes) one band; pixel reads happen per Dask chunk, each reopening
the file by path under the HDF4 lock, so the dataset computes on multi-process Dask clusters.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from ..errors import SceneFileError, describe_path
from ..sensors import ASTER_TIR
from .hdf4 import SdsInfo, check_hdf4, list_sds, open_sd, read_sds, read_text_attributes
from .odl import OdlNode, parse_odl

log = logging.getLogger(__name__)

SWATH = "TIR_Swath"
BANDS = ASTER_TIR.band_names
DN_FILL, DN_SATURATED = 0, 4095
#: Geodetic latitude = atan(GEOCENTRIC_FACTOR · tan(geocentric latitude)) (WGS84: 1/(1 − e²)).
GEOCENTRIC_FACTOR = 1.0067395
#: Mean Earth radius and Terra's nominal altitude (km) for pointing angle → view zenith.
EARTH_RADIUS_KM, TERRA_ALTITUDE_KM = 6371.0, 705.0
PYHDF_UINT16 = 23  # pyhdf.SDC.UINT16


@dataclass(frozen=True)
class TirScene:
    """Everything the reader learns at open time: layout of the TIR swath and scene metadata."""

    path: str
    shape: tuple[int, int]
    bands: tuple[SdsInfo, ...]
    latitude_lattice: np.ndarray  # geodetic degrees
    longitude_lattice: np.ndarray  # degrees, unwrapped around the scene
    line_map: tuple[float, float]  # (offset, increment): lattice row k sits at image line offset + k·increment
    pixel_map: tuple[float, float]
    gain: tuple[float, ...]  # radiance = gain · DN + offset
    offset: tuple[float, ...]
    calibration_source: str
    pointing_angle: float
    acquisition_time: str
    attrs: dict


def _error(path, problem, variable=None, expected=None):
    return SceneFileError(describe_path(path), problem, variable=variable, expected=expected)


def _swaths(struct: OdlNode) -> dict[str, OdlNode]:
    return {str(node.attrs["SWATHNAME"]): node for node in struct.walk()
            if node.kind == "GROUP" and "SWATHNAME" in node.attrs}


def _dimension_maps(swath: OdlNode) -> dict[str, tuple[str, float, float]]:
    """Geo dimension → (data dimension, offset, increment) from the swath's DimensionMap."""
    group = swath.find("DimensionMap", "GROUP")
    maps = {}
    for node in (group.children if group else []):
        a = node.attrs
        if {"GEODIMENSION", "DATADIMENSION", "OFFSET", "INCREMENT"} <= set(a):
            maps[str(a["GEODIMENSION"])] = (str(a["DATADIMENSION"]), float(a["OFFSET"]), float(a["INCREMENT"]))
    return maps


def _pick_sds(table: list[SdsInfo], name: str, swath: str, single_swath: bool) -> SdsInfo | None:
    """The SDS called ``name`` whose dimensions belong to ``swath`` (HDF-EOS names them ``Dim:Swath``)."""
    for info in table:
        if info.name != name:
            continue
        if all(d.endswith(":" + swath) for d in info.dim_names):
            return info
        if single_swath and not any(":" in d for d in info.dim_names):
            return info
    return None


def _short_name(core: OdlNode | None) -> str | None:
    node = core.find("SHORTNAME") if core else None
    return str(node.value) if node is not None and node.value is not None else None


def _parse_optional(attrs: dict, name: str, path) -> OdlNode | None:
    return parse_odl(attrs[name], source=f"{describe_path(path)}: {name}") if name in attrs else None


def tir_pointing_angle(product: OdlNode | None, path) -> float:
    """TIR pointing angle (deg) from productmetadata.0 ``POINTINGANGLES``: the container whose
    ``SENSORNAME`` is ``"TIR"`` (matched by CLASS), its ``POINTINGANGLE`` value."""
    group = product.find("POINTINGANGLES", "GROUP") if product else None
    if group is None:
        raise _error(path, "no POINTINGANGLES group", variable="productmetadata.0",
                     expected="POINTINGANGLES with SENSORNAME \"TIR\" and its POINTINGANGLE")
    names = {n.attrs.get("CLASS"): str(n.value).strip().upper() for n in group.walk() if n.name == "SENSORNAME"}
    angles = {n.attrs.get("CLASS"): n.value for n in group.walk() if n.name == "POINTINGANGLE"}
    for cls, sensor in names.items():
        if sensor == "TIR" and cls in angles:
            try:
                return float(angles[cls])
            except (TypeError, ValueError):
                raise _error(path, f"TIR POINTINGANGLE is {angles[cls]!r}", variable="productmetadata.0",
                             expected="a number in degrees") from None
    raise _error(path, f"no TIR entry in POINTINGANGLES (sensors: {sorted(names.values())})",
                 variable="productmetadata.0", expected="SENSORNAME \"TIR\" with a POINTINGANGLE")


def view_zenith_from_pointing(pointing_angle_deg: float) -> float:
    """View zenith at the ground (deg) of a satellite look angle off nadir (Earth curvature):
    sin(VZA) = (R + H)/R · sin(pointing), with R = 6371 km and Terra's H = 705 km."""
    ratio = (EARTH_RADIUS_KM + TERRA_ALTITUDE_KM) / EARTH_RADIUS_KM
    return math.degrees(math.asin(min(1.0, ratio * math.sin(math.radians(abs(pointing_angle_deg))))))


def _parse_time_of_day(date: str, time_of_day: str) -> datetime | None:
    """CALENDARDATE ``YYYYMMDD`` (or ISO date) + TIMEOFDAY ``hhmmss[ffffff]Z`` or ``hh:mm:ss[.ffffff]Z``."""
    digits = time_of_day.strip().rstrip("Z").replace(":", "")
    whole, _, fraction = digits.partition(".")
    if len(whole) > 6 and not fraction:
        whole, fraction = whole[:6], whole[6:]
    day = date.strip().replace("-", "")
    try:
        moment = datetime.strptime(day + whole[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    micro = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    return moment.replace(microsecond=micro, tzinfo=timezone.utc)


def acquisition_time(core: OdlNode | None, product: OdlNode | None, path) -> str:
    """ISO-8601 UTC acquisition time: coremetadata CALENDARDATE + TIMEOFDAY, else the TIR
    SETTINGTIMEOFPOINTING of productmetadata.0."""
    date = core.find("CALENDARDATE") if core else None
    tod = core.find("TIMEOFDAY") if core else None
    if date is not None and tod is not None:
        moment = _parse_time_of_day(str(date.value), str(tod.value))
        if moment is not None:
            return moment.isoformat().replace("+00:00", "Z")
    group = product.find("POINTINGANGLES", "GROUP") if product else None
    if group is not None:
        names = {n.attrs.get("CLASS"): str(n.value).upper() for n in group.walk() if n.name == "SENSORNAME"}
        for node in group.walk():
            if node.name == "SETTINGTIMEOFPOINTING" and names.get(node.attrs.get("CLASS")) == "TIR":
                try:
                    moment = datetime.fromisoformat(str(node.value).replace("Z", "+00:00"))
                except ValueError:
                    break
                return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    raise _error(path, "no acquisition time", variable="coremetadata.0",
                 expected="CALENDARDATE and TIMEOFDAY (or productmetadata.0 SETTINGTIMEOFPOINTING for TIR)")


def _calibration(product: OdlNode | None) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """Per-band (gain, offset) for L = gain·DN + offset: productmetadata.0 ``INCLnn``/``OFFSETnn`` when
    present, else the handbook UCC with L = (DN − 1)·UCC."""
    found = {}
    if product is not None:
        for band in ASTER_TIR.bands:
            incl = product.find(f"INCL{band.name[1:]}")
            offset = product.find(f"OFFSET{band.name[1:]}")
            if incl is not None and isinstance(incl.value, (int, float)):
                gain = float(incl.value)
                found[band.name] = (gain, float(offset.value) if offset is not None else -gain)
    if len(found) == len(BANDS):
        gains, offsets = zip(*(found[name] for name in BANDS))
        return gains, offsets, "productmetadata.0 INCLnn/OFFSETnn"
    ucc = tuple(band.ucc for band in ASTER_TIR.bands)
    return ucc, tuple(-u for u in ucc), "ASTER handbook UCC, L = (DN - 1) * UCC"


def _geodetic(latitude_geocentric: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan(GEOCENTRIC_FACTOR * np.tan(np.radians(latitude_geocentric))))


def _unwrap_longitude(longitude: np.ndarray) -> np.ndarray:
    """Longitudes made continuous around the lattice centre (scenes crossing ±180°)."""
    ref = longitude[longitude.shape[0] // 2, longitude.shape[1] // 2]
    return ref + (longitude - ref + 180.0) % 360.0 - 180.0


def _lattice_map(maps, geo_dim: str, data_dim: str, lattice_size: int, image_size: int) -> tuple[float, float]:
    for geo, (data, offset, increment) in maps.items():
        if geo.split(":")[0] == geo_dim and data.split(":")[0] == data_dim and increment:
            return offset, increment
    return 0.0, float(math.ceil(image_size / (lattice_size - 1)))


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


def inspect_scene(path, *, check_fill: bool = True) -> TirScene:
    """Validate an AST_L1B/L1T file and collect its TIR layout and metadata (no pixel data read,
    except one band when ``check_fill``)."""
    path = check_hdf4(path)
    with open_sd(path) as sd:
        attrs = read_text_attributes(sd, path)
        if "StructMetadata.0" not in attrs:
            raise _error(path, "no HDF-EOS structure metadata", variable="StructMetadata.0",
                         expected="an HDF-EOS2 file (ASTER L1B/L1T)")
        struct = parse_odl(attrs["StructMetadata.0"], source=f"{describe_path(path)}: StructMetadata.0")
        core = _parse_optional(attrs, "coremetadata.0", path)
        product = _parse_optional(attrs, "productmetadata.0", path)
        swaths = _swaths(struct)
        if SWATH not in swaths:
            short = _short_name(core)
            hint = f" (product {short})" if short else ""
            raise _error(path, f"no {SWATH} in the file{hint}; swaths present: {sorted(swaths) or 'none'}",
                         variable=SWATH, expected="the TIR subsystem of an AST_L1B/AST_L1T file "
                         "(VNIR-only files and Level-2 products cannot be read)")
        swath = swaths[SWATH]
        table = list_sds(sd, path)
        single = len(swaths) == 1
        bands = []
        for name in BANDS:
            field = f"ImageData{name[1:]}"
            info = _pick_sds(table, field, SWATH, single)
            if info is None:
                raise _error(path, f"band {name} is missing", variable=field,
                             expected=f"uint16 datasets ImageData10…ImageData14 in {SWATH}")
            if len(info.shape) != 2 or info.type_code != PYHDF_UINT16:
                raise _error(path, f"has shape {info.shape} and HDF type code {info.type_code}", variable=field,
                             expected="a 2-D uint16 image (line, pixel)")
            bands.append(info)
        shapes = {b.shape for b in bands}
        if len(shapes) != 1:
            detail = ", ".join(f"{b.name} {b.shape}" for b in bands)
            raise _error(path, f"bands differ in shape: {detail}", variable="ImageData10…ImageData14",
                         expected="all TIR bands on one (line, pixel) grid")
        shape = bands[0].shape
        lattice = {}
        for name in ("Latitude", "Longitude"):
            info = _pick_sds(table, name, SWATH, single)
            if info is None:
                raise _error(path, "geolocation lattice missing", variable=name,
                             expected=f"{SWATH} geolocation field {name} (11 × 11 lattice)")
            if len(info.shape) != 2 or min(info.shape) < 2:
                raise _error(path, f"lattice has shape {info.shape}", variable=name,
                             expected="a 2-D lattice of at least 2 × 2 points")
            lattice[name] = read_sds(sd, path, info).astype(float)
        if lattice["Latitude"].shape != lattice["Longitude"].shape:
            raise _error(path, f"Latitude {lattice['Latitude'].shape} and Longitude {lattice['Longitude'].shape} "
                         "differ", variable="Longitude", expected="lattices of equal shape")
        if check_fill:
            _check_not_all_fill(sd, path, bands[BANDS.index("B13")])

    maps = _dimension_maps(swath)
    rows, cols = lattice["Latitude"].shape
    line_map = _lattice_map(maps, "GeoTrack", "ImageLine", rows, shape[0])
    pixel_map = _lattice_map(maps, "GeoXtrack", "ImagePixel", cols, shape[1])
    pointing = tir_pointing_angle(product, path)
    when = acquisition_time(core, product, path)
    gain, offset, source = _calibration(product)
    extra = {}
    if product is not None:
        for key, node_name in (("scene_center", "SCENECENTER"), ("solar_direction", "SOLARDIRECTION"),
                               ("scene_orientation_angle", "SCENEORIENTATIONANGLE")):
            node = product.find(node_name)
            if node is not None and node.value is not None:
                extra[key] = node.value
    attrs = {"product": _short_name(core) or "unknown"}
    if "scene_center" in extra:
        attrs["scene_center_lat"], attrs["scene_center_lon"] = (float(v) for v in extra["scene_center"])
    if "solar_direction" in extra:
        attrs["solar_azimuth"], attrs["solar_elevation"] = (float(v) for v in extra["solar_direction"])
    if "scene_orientation_angle" in extra:
        attrs["scene_orientation_angle"] = float(extra["scene_orientation_angle"])
    return TirScene(str(Path(path).resolve()), shape, tuple(bands), _geodetic(lattice["Latitude"]),
                    _unwrap_longitude(lattice["Longitude"]), line_map, pixel_map, gain, offset, source,
                    pointing, when, attrs)


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


def interpolate_lattice(lattice: np.ndarray, rows: np.ndarray, cols: np.ndarray, line_map, pixel_map) -> np.ndarray:
    """Bilinear interpolation (linear extrapolation past the last lattice point) of a lattice whose
    point (k, l) sits at image line offset + k·increment and pixel offset + l·increment."""
    def weights(positions, mapping, n):
        u = (np.asarray(positions, dtype=float) - mapping[0]) / mapping[1]
        i0 = np.clip(np.floor(u).astype(int), 0, n - 2)
        return i0, u - i0

    i0, fy = weights(rows, line_map, lattice.shape[0])
    j0, fx = weights(cols, pixel_map, lattice.shape[1])
    fy, fx = fy[:, None], fx[None, :]
    a, b = lattice[i0][:, j0], lattice[i0][:, j0 + 1]
    c, d = lattice[i0 + 1][:, j0], lattice[i0 + 1][:, j0 + 1]
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)


class LatticeArray(BackendArray):
    """(y, x) latitude or longitude computed on demand from the (small) lattice kept in memory."""

    def __init__(self, scene: TirScene, which: str):
        self.lattice = scene.latitude_lattice if which == "latitude" else scene.longitude_lattice
        self.wrap = which == "longitude"
        self.line_map, self.pixel_map = scene.line_map, scene.pixel_map
        self.shape = tuple(scene.shape)
        self.dtype = np.dtype("float64")

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC,
                                                  self._raw_indexing_method)

    def _raw_indexing_method(self, key: tuple) -> np.ndarray:
        rows = np.arange(self.shape[0])[key[0]]
        cols = np.arange(self.shape[1])[key[1]]
        values = interpolate_lattice(self.lattice, np.atleast_1d(rows), np.atleast_1d(cols),
                                     self.line_map, self.pixel_map)
        if self.wrap:
            values = (values + 180.0) % 360.0 - 180.0
        return values[(0 if np.ndim(rows) == 0 else slice(None), 0 if np.ndim(cols) == 0 else slice(None))]


def _preferred_chunks(scene: TirScene) -> dict[str, int]:
    """Whole rows (the HDF4 storage order) in blocks of one lattice row spacing; all bands together."""
    rows = int(min(scene.shape[0], max(1, round(scene.line_map[1]))))
    return {"band": len(scene.bands), "y": rows, "x": scene.shape[1]}


def build_dataset(scene: TirScene, drop_variables=()) -> xr.Dataset:
    """The lazy Dataset for a validated scene (variables wrap BackendArrays; no pixel read here)."""
    preferred = _preferred_chunks(scene)
    spatial = {k: preferred[k] for k in ("y", "x")}
    centers = ASTER_TIR.centers_um
    variables = {
        "radiance": xr.Variable(("band", "y", "x"), indexing.LazilyIndexedArray(TirArray(scene, "radiance")), {
            "long_name": "at-sensor spectral radiance", "units": "W m-2 sr-1 um-1",
            "standard_name": "toa_outgoing_radiance_per_unit_wavelength",
            "calibration": scene.calibration_source,
            "comment": "NaN where DN is 0 (fill) or 4095 (saturated)"},
            {"preferred_chunks": preferred}),
        "brightness_temperature": xr.Variable(
            ("band", "y", "x"), indexing.LazilyIndexedArray(TirArray(scene, "brightness_temperature")), {
                "long_name": "at-sensor brightness temperature", "units": "K",
                "standard_name": "toa_brightness_temperature",
                "comment": "inverse band-effective Planck function of the SRF; NaN at fill and saturation"},
            {"preferred_chunks": preferred}),
        "latitude": xr.Variable(("y", "x"), indexing.LazilyIndexedArray(LatticeArray(scene, "latitude")), {
            "long_name": "geodetic latitude", "units": "degrees_north", "standard_name": "latitude",
            "comment": "bilinear from the 11x11 geolocation lattice after geocentric-to-geodetic conversion"},
            {"preferred_chunks": spatial}),
        "longitude": xr.Variable(("y", "x"), indexing.LazilyIndexedArray(LatticeArray(scene, "longitude")), {
            "long_name": "longitude", "units": "degrees_east", "standard_name": "longitude",
            "comment": "bilinear from the 11x11 geolocation lattice"}, {"preferred_chunks": spatial}),
        "view_zenith": xr.Variable((), np.float64(view_zenith_from_pointing(scene.pointing_angle)), {
            "long_name": "view zenith angle at the scene centre", "units": "degree",
            "standard_name": "sensor_zenith_angle",
            "comment": "from the TIR POINTINGANGLE (off-nadir look angle) of productmetadata.0 with Earth "
                       "curvature: sin(vza) = (R+H)/R sin(|pointing|); across-scene variation ignored",
            "pointing_angle": scene.pointing_angle}),
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
    return xr.Dataset(data_vars, coords={k: v for k, v in coords.items() if k not in drop}, attrs=attrs)


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
