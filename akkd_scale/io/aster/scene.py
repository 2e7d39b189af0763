"""Scene validation: :func:`inspect_scene` checks an AST_L1B/L1T file and collects what the lazy dataset needs
(:class:`TirScene`) — TIR layout, lattice, L1T grid, pointing, calibration, VNIR — reading no pixel data except
one band for the all-fill check. Each bad input gives a :class:`SceneFileError` naming the field
(``docs/reader.md``, *Validation behaviour*)."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...conventions import BANDS
from ...errors import describe_path
from ...sensors import ASTER_TIR
from ..hdf4 import SdsInfo, check_hdf4, list_sds, open_sd, read_sds, read_text_attributes, swath_members
from ..odl import OdlNode, parse_odl
from .geolocation import (PROJECTION_LATTICE_TOLERANCE_PIXELS, geodetic_latitude, projection_lattice_offset,
                          unwrap_longitude)
from .metadata import (MapProjection, Metadata, acquisition_time, calibration, map_projection, missing_projection_keys,
                       pointing_angle, processing_level, scene_attributes, short_name)
from .structure import (PYHDF_UINT16, SWATH, Structure, check_lattice_map, dimension_maps, file_error, find_sds,
                        image_bands, lattice_map, swaths)
from .vnir import VnirGrid, vnir_grid

log = logging.getLogger(__name__)

DN_FILL, DN_SATURATED = 0, 4095
#: Largest factor between a TIR INCLnn and the handbook UCC of its band (real files: within a few per cent).
MAX_GAIN_FACTOR = 10.0
#: Largest TIR cross-track pointing angle (deg; ±8.55° per the ASTER User Handbook, plus margin).
MAX_TIR_POINTING_DEG = 9.0
LATTICE_FIELDS = ("Latitude", "Longitude")


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


def _read_structure(path) -> tuple[Structure, Metadata]:
    """The file's HDF-EOS structure and ODL metadata; an error unless it is HDF-EOS with a TIR swath."""
    where = describe_path(path)
    with open_sd(path) as sd:
        attrs = read_text_attributes(sd, path)
        table = list_sds(sd, path)
    if "StructMetadata.0" not in attrs:
        raise file_error(path, "no HDF-EOS structure metadata", variable="StructMetadata.0",
                         expected="an HDF-EOS2 file (ASTER L1B/L1T)")
    struct = parse_odl(attrs["StructMetadata.0"], source=f"{where}: StructMetadata.0")
    meta = Metadata.from_attributes(attrs, where)
    found = swaths(struct)
    if SWATH not in found:
        short = short_name(meta)
        hint = f" (product {short})" if short else ""
        raise file_error(path, f"no {SWATH} in the file{hint}; swaths present: {sorted(found) or 'none'}",
                         variable=SWATH, expected="the TIR subsystem of an AST_L1B/AST_L1T file "
                         "(VNIR-only files and Level-2 products cannot be read)")
    return Structure(path, table, swath_members(path), found), meta


def _read_lattice_fields(sd, structure: Structure, level: str) -> dict[str, np.ndarray]:
    """The TIR Latitude/Longitude lattice fields present (an L1B must have both), each 2-D of ≥ 2 × 2."""
    path = structure.path
    fields = {}
    for name in LATTICE_FIELDS:
        info = find_sds(structure.table, name, SWATH, structure.members, None, path)
        if info is None:
            if level == "1T":
                continue
            raise file_error(path, "geolocation lattice missing", variable=name,
                             expected=f"{SWATH} geolocation field {name} (11 × 11 lattice)")
        if len(info.shape) != 2 or min(info.shape) < 2:
            raise file_error(path, f"lattice has shape {info.shape}", variable=name,
                             expected="a 2-D lattice of at least 2 × 2 points")
        fields[name] = read_sds(sd, path, info).astype(float)
    return fields


def _check_not_all_fill(sd, path, band: SdsInfo) -> None:
    """Raise if ``band`` holds only fill: a strided sample first, the whole band only if that is empty."""
    step = max(1, min(band.shape) // 64)
    sample = read_sds(sd, path, band, (slice(0, None, step), slice(0, None, step)))
    if np.any(sample != DN_FILL):
        return
    if np.any(read_sds(sd, path, band) != DN_FILL):
        return
    raise file_error(path, "every pixel is fill (DN 0): no data in the scene", variable=band.name,
                     expected="at least one non-fill pixel")


def _lattice_pair(path, fields: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(latitude, longitude) lattices of equal shape, or None for an L1T without (both of) them: its
    geolocation comes from the UTM grid."""
    if len(fields) < 2:
        return None
    latitude, longitude = fields["Latitude"], fields["Longitude"]
    if latitude.shape != longitude.shape:
        raise file_error(path, f"Latitude {latitude.shape} and Longitude {longitude.shape} differ",
                         variable="Longitude", expected="lattices of equal shape")
    return latitude, longitude


def _lattice_maps(path, swath: OdlNode, lattice, shape) -> tuple[tuple[float, float], tuple[float, float]]:
    """(line map, pixel map) of the lattice points on the image (an 11 × 11 lattice when there is none), checked."""
    maps = dimension_maps(swath)
    rows, cols = lattice[0].shape if lattice else (11, 11)
    result = []
    for geo_dim, data_dim, points, size in (("GeoTrack", "ImageLine", rows, shape[0]),
                                            ("GeoXtrack", "ImagePixel", cols, shape[1])):
        mapping = lattice_map(maps, geo_dim, data_dim, points, size)
        check_lattice_map(path, mapping, geo_dim, data_dim, points, size)
        result.append(mapping)
    return result[0], result[1]


LATTICE = "Latitude/Longitude lattice"


def l1t_projection(path, meta: Metadata, shape, lattice, line_map, pixel_map) -> tuple[MapProjection | None, str]:
    """(north-up UTM grid, how the scene is geolocated) of an L1T; ``lattice``: its checked (latitude, longitude)
    lattice or None. The grid must put every lattice point within PROJECTION_LATTICE_TOLERANCE_PIXELS of the
    file's own lattice. Projection keys missing: (None, why) and a warning — the lattice geolocates the scene —
    or, without a lattice, an error (``docs/reader.md``, *Validation behaviour*)."""
    where = describe_path(path)
    missing = missing_projection_keys(meta, "TIR")
    if missing:
        why = f"L1T map projection incomplete (no {', '.join(missing)} for TIR)"
        if lattice is None:
            raise file_error(path, f"{why} and no {LATTICE}", variable="productmetadata.t",
                             expected="UTMZONENUMBER, UPPERLEFTM and LOWERRIGHTM (productmetadata.t), or a TIR "
                             "geolocation lattice")
        log.warning("%s: %s: geolocated by its %s", where, why, LATTICE)
        return None, f"{LATTICE}: {why}"
    projection = map_projection(meta, "TIR")
    sizes = projection.pixel_size(shape)
    if not all(size > 0 for size in sizes):
        raise file_error(path, f"UPPERLEFTM {projection.upper_left} / LOWERRIGHTM {projection.lower_right} give "
                         f"pixel size {sizes}", variable=projection.source,
                         expected="a north-up grid (easting growing right, northing growing up)")
    grid = f"UTM grid EPSG:{projection.epsg} of {projection.source}"
    if lattice is None:
        return projection, f"{grid} (no {LATTICE} to check it against)"
    latitude, longitude = lattice
    offset, (k, m), (grid_lat, grid_lon) = projection_lattice_offset(projection, shape, latitude, longitude, line_map,
                                                                     pixel_map)
    tolerance = PROJECTION_LATTICE_TOLERANCE_PIXELS * max(sizes)
    if not offset <= tolerance:
        apart = f"{offset / 1000:.0f} km" if offset >= 1000 else f"{offset:.0f} m"
        raise file_error(path, f"map projection EPSG:{projection.epsg} (UTMZONENUMBER {projection.epsg % 100}, "
                         f"UPPERLEFTM, LOWERRIGHTM) puts lattice point ({k}, {m}) at {grid_lat:.4f}°, {grid_lon:.4f}° "
                         f"but the file's {LATTICE} at {latitude[k, m]:.4f}°, {longitude[k, m]:.4f}°: {apart} apart",
                         variable=projection.source,
                         expected=f"agreement within {tolerance:g} m (one pixel of the grid) at every lattice point")
    return projection, f"{grid}, within {offset:.1f} m of the file's {LATTICE}"


def _tir_pointing(path, meta: Metadata) -> tuple[float, str]:
    """(TIR pointing angle, where it came from): within ±MAX_TIR_POINTING_DEG, or NaN with a warning."""
    pointing, source = pointing_angle(meta, "TIR")
    if not math.isnan(pointing) and not abs(pointing) <= MAX_TIR_POINTING_DEG:
        raise file_error(path, f"TIR pointing angle {pointing}° ({source})", variable="POINTINGANGLE",
                         expected=f"a finite angle within ±{MAX_TIR_POINTING_DEG}° (ASTER TIR cross-track pointing)")
    if math.isnan(pointing):
        log.warning("%s: TIR pointing angle unavailable (%s): view_zenith is NaN", describe_path(path), source)
    return pointing, source


def _tir_calibration(path, meta: Metadata) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """(gain, offset, source) of the five TIR bands: every gain within a factor MAX_GAIN_FACTOR of the handbook UCC
    (TIR has one gain setting), every offset finite and no larger than the full-scale radiance."""
    handbook = tuple(b.ucc for b in ASTER_TIR.bands)
    gain, offset, source = calibration(meta, tuple(b[1:] for b in BANDS), "TIR", handbook)
    bad = [f"{band} {g}" for band, g, ucc in zip(BANDS, np.atleast_1d(gain), handbook)
           if not (np.isfinite(g) and ucc / MAX_GAIN_FACTOR <= g <= ucc * MAX_GAIN_FACTOR)]
    if bad:
        raise file_error(path, f"unit conversion coefficients {', '.join(bad)} ({source})", variable="INCL",
                         expected=f"finite positive radiance per DN for every TIR band, within a factor "
                         f"{MAX_GAIN_FACTOR:g} of the ASTER handbook UCC ({', '.join(f'{u:.3e}' for u in handbook)})")
    bad = [f"{band} {o}" for band, o, g in zip(BANDS, np.atleast_1d(offset), gain)
           if not (np.isfinite(o) and abs(o) <= DN_SATURATED * g)]
    if bad:
        raise file_error(path, f"unit conversion offsets {', '.join(bad)} ({source})", variable="OFFSET",
                         expected="a finite radiance offset for every TIR band, no larger than the full-scale "
                         "radiance (4095 INCL)")
    return gain, offset, source


def _geolocated_lattice(path, lattice, level: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The lattice checked (finite, within ±90°/±180°) as geodetic latitude (L1B lattices are geocentric) and
    longitude unwrapped around the scene; (None, None) without a lattice."""
    if lattice is None:
        return None, None
    for name, values, limit in zip(LATTICE_FIELDS, lattice, (90.0, 180.0)):
        bad = ~(np.isfinite(values) & (np.abs(values) <= limit))
        if np.any(bad):
            raise file_error(path, f"geolocation lattice has {np.sum(bad)} invalid point(s), e.g. "
                             f"{values[bad].ravel()[0]}", variable=name,
                             expected=f"finite degrees within ±{limit:g} at every lattice point")
    latitude, longitude = lattice
    return (geodetic_latitude(latitude) if level == "1B" else latitude), unwrap_longitude(longitude)


def inspect_scene(path, *, check_fill: bool = True) -> TirScene:
    """Validate an AST_L1B/L1T file and collect its TIR layout and metadata (no pixel data read,
    except one band when ``check_fill``). The checks run in this order; the first failing one raises."""
    path = check_hdf4(path)
    structure, meta = _read_structure(path)
    level = processing_level(meta)
    bands = image_bands(structure, SWATH, tuple(f"ImageData{b[1:]}" for b in BANDS), PYHDF_UINT16, "uint16")
    shape = bands[0].shape
    with open_sd(path) as sd:
        fields = _read_lattice_fields(sd, structure, level)
        if check_fill:
            _check_not_all_fill(sd, path, bands[BANDS.index("B13")])
    lattice = _lattice_pair(path, fields)
    line_map, pixel_map = _lattice_maps(path, structure.swaths[SWATH], lattice, shape)
    latitude, longitude = _geolocated_lattice(path, lattice, level)
    projection, geolocation = None, LATTICE
    if level == "1T":
        checked = None if latitude is None else (latitude, longitude)
        projection, geolocation = l1t_projection(path, meta, shape, checked, line_map, pixel_map)
    pointing, pointing_source = _tir_pointing(path, meta)
    when = acquisition_time(meta)
    gain, offset, source = _tir_calibration(path, meta)
    extra = scene_attributes(meta)
    solar_zenith = 90.0 - extra["solar_elevation"] if "solar_elevation" in extra else math.nan
    vnir, vnir_note = vnir_grid(structure, meta, level, shape, projection, solar_zenith, when)
    attrs = {"product": short_name(meta) or "unknown", "processing_level": level, "geolocation": geolocation, **extra}
    return TirScene(str(Path(path).resolve()), level, shape, bands, latitude, longitude, line_map, pixel_map,
                    projection, gain, offset, source, pointing, pointing_source, solar_zenith, when, vnir,
                    vnir_note, attrs)
