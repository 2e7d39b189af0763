"""Write structurally faithful synthetic ASTER AST_L1B / AST_L1T (HDF-EOS2 / HDF4) files with pyhdf.

The files carry what the reader uses from real granules, in the layout of real files as far as public
evidence shows it (``docs/reader.md`` lists what is still unverified):

- SDS ``ImageData10`` … ``ImageData14`` (uint16) and the geolocation lattice ``Latitude``/``Longitude``
  (float64, 11 × 11; L1B latitude *geocentric*, L1T geodetic), grouped in HDF-EOS swath Vgroups
  (``TIR_Swath`` → ``Geolocation Fields`` / ``Data Fields``); dimension names ``ImageLine:TIR_Swath``
  (the separator is a parameter, ``None`` writes bare names);
- VNIR ``ImageData1``, ``ImageData2``, ``ImageData3N`` (uint8) at 6 × the TIR size (15 m), deflate
  compressed to keep fixtures small (real files are not compressed);
- ``StructMetadata.0`` (swaths, dimensions, dimension maps with increment floor(n/10), fields);
- ``coremetadata.0`` (``SHORTNAME`` ``ASTL1B`` or ``AST_L1T``, ``CALENDARDATE``/``TIMEOFDAY`` in the L1B
  style ``YYYY-MM-DD``/``hh:mm:ss.ffffffZ`` or the L1T style ``YYYYMMDD``/``hhmmssffffffZ``, bounding
  rectangle, L1T ``PROCESSINGLEVELID`` and ``MAPPROJECTIONNAME``);
- ``productmetadata.0`` (``ASTERGENERICMETADATA``: ``GAININFORMATION``, ``POINTINGANGLES`` containers,
  ``SCENEINFORMATION``);
- ``productmetadata.v`` / ``productmetadata.t`` (``PRODUCTSPECIFICMETADATA<VNIR|TIR>`` →
  ``<VNIR|TIR>BAND<n>DATA`` → ``UNITCONVERSIONCOEFF<n>`` with ``INCL``/``OFFSET``/``CONUNIT``; L1T:
  ``UTMZONENUMBER``, ``UPPERLEFTM``/``LOWERRIGHTM`` as (northing, easting) of the corner pixel centres).

Not reproduced: SWIR, band 3B, bad-pixel tables, ancillary Vdata. Variants for bad-input tests:
``include_tir=False`` (VNIR-only), ``bands=`` (missing band), ``band_shapes=`` (wrong dimensions),
all-fill ``fill_mask``, ``sensor_names=False``, ``pointing_angle=None``, and :func:`write_ast08`
(a Level-2 product without a TIR swath).
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..constants import GEOCENTRIC_FACTOR
from ..conventions import BANDS
from ..errors import ParameterError
from ..sensors import ASTER_TIR, band_radiance
from ..sensors.aster import VNIR_UCC

log = logging.getLogger(__name__)

LATTICE_POINTS = 11
DN_FILL, DN_SATURATED = 0, 4095
#: VNIR pixels per TIR pixel along each axis (15 m and 90 m).
VNIR_FACTOR = 6
DEFAULT_VNIR_DN = {"1": 60, "2": 45, "3N": 110}


def radiance_to_dn(radiance, ucc) -> np.ndarray:
    """DN = round(L / UCC) + 1 clipped to 1…4094 (valid, unsaturated); NaN radiance → fill (0)."""
    values = np.asarray(radiance, dtype=float)
    dn = np.clip(np.rint(np.nan_to_num(values, nan=0.0) / ucc) + 1, 1, DN_SATURATED - 1)
    return np.where(np.isnan(values), DN_FILL, dn).astype(np.uint16)


def default_brightness_temperature(shape: tuple[int, int]) -> np.ndarray:
    """A smooth deterministic (5, ny, nx) BT field (K): 280–320 K pattern, B10–B12 a few K cooler."""
    ny, nx = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    base = 300.0 + 15.0 * np.sin(2 * np.pi * xx) * np.cos(np.pi * yy) + 5.0 * yy
    offsets = np.array([-3.0, -2.5, -2.0, 0.0, -0.3])[:, None, None]
    return base[None] + offsets


def _band_shapes(shape, bands, band_shapes) -> dict:
    shapes = {name: tuple(shape) for name in bands}
    shapes.update({name: tuple(s) for name, s in (band_shapes or {}).items()})
    return shapes


def lattice_positions(shape) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Image lines and pixels of the 11 × 11 lattice points (increment floor(n/10)) and the increments."""
    increments = tuple(max(1, int(n) // (LATTICE_POINTS - 1)) for n in shape)
    return (np.arange(LATTICE_POINTS) * increments[0], np.arange(LATTICE_POINTS) * increments[1], increments)


def _swath_lattice(shape, center_lat, center_lon, orientation_deg, pixel_size_m):
    """Geodetic lat/lon (11 × 11) at the lattice points of a rotated swath centred on the scene centre."""
    lines, pixels, _ = lattice_positions(shape)
    rr, cc = np.meshgrid(lines - (shape[0] - 1) / 2, pixels - (shape[1] - 1) / 2, indexing="ij")
    angle = math.radians(orientation_deg)
    north = -(rr * math.cos(angle) + cc * math.sin(angle)) * pixel_size_m
    east = (cc * math.cos(angle) - rr * math.sin(angle)) * pixel_size_m
    lat = center_lat + north / 111_320.0
    lon = center_lon + east / (111_320.0 * np.cos(np.radians(lat)))
    return lat, (lon + 180.0) % 360.0 - 180.0


def utm_grid(center_lat: float, center_lon: float, shape, pixel_size_m: float) -> tuple[int, tuple, tuple]:
    """(EPSG, upper-left pixel centre (easting, northing), lower-right pixel centre) of a north-up UTM grid
    of ``shape`` centred on the scene centre, snapped to whole metres; zone of the centre (northings in
    that zone's own frame, i.e. with the 10 000 km false northing in the south)."""
    from pyproj import Transformer

    zone = int((center_lon + 180.0) // 6) + 1
    epsg = (32600 if center_lat >= 0 else 32700) + zone
    east, north = Transformer.from_crs(4326, epsg, always_xy=True).transform(center_lon, center_lat)
    x0 = round(east - (shape[1] - 1) / 2 * pixel_size_m)
    y0 = round(north + (shape[0] - 1) / 2 * pixel_size_m)
    return epsg, (x0, y0), (x0 + (shape[1] - 1) * pixel_size_m, y0 - (shape[0] - 1) * pixel_size_m)


def _utm_lattice(epsg, upper_left, pixel_size_m, shape):
    """Geodetic lat/lon (11 × 11) of the lattice points of a UTM grid."""
    from pyproj import Transformer

    lines, pixels, _ = lattice_positions(shape)
    xx, yy = np.meshgrid(upper_left[0] + pixels * pixel_size_m, upper_left[1] - lines * pixel_size_m)
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xx, yy)
    return lat, lon


def geodetic_to_geocentric(latitude_deg):
    """Geocentric latitude (deg) of a geodetic latitude, inverse of atan(1.0067395 · tan φc)."""
    return np.degrees(np.arctan(np.tan(np.radians(latitude_deg)) / GEOCENTRIC_FACTOR))


def _odl_value(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(_odl_value(v) for v in value) + ")"
    return repr(value) if isinstance(value, float) else str(value)


def _ecs_object(name: str, value, indent: str, cls: str | None = None) -> str:
    """An ECS metadata OBJECT block (CLASS, NUM_VAL, VALUE) as in coremetadata/productmetadata."""
    lines = [f"{indent}OBJECT                 = {name}"]
    if cls is not None:
        lines.append(f'{indent}  CLASS                = "{cls}"')
    num = len(value) if isinstance(value, tuple) else 1
    lines += [f"{indent}  NUM_VAL              = {num}", f"{indent}  VALUE                = {_odl_value(value)}",
              f"{indent}END_OBJECT             = {name}", ""]
    return "\n".join(lines)


def _group(name: str, body: str, indent: str) -> str:
    return f"{indent}GROUP                  = {name}\n\n{body}{indent}END_GROUP              = {name}\n\n"


def _master(name: str, body: str) -> str:
    return (f"GROUP                  = {name}\n  GROUPTYPE            = MASTERGROUP\n\n{body}"
            f"END_GROUP              = {name}\n\nEND\n")


def core_metadata(short_name: str, acquisition: datetime, bounds: tuple, granule_id: str,
                  level: str = "1B") -> str:
    """coremetadata.0 text: granule id, SHORTNAME, date/time (L1B or L1T style), bounding rectangle."""
    if level == "1T":
        date = acquisition.strftime("%Y%m%d")
        time_of_day = acquisition.strftime("%H%M%S") + f"{acquisition.microsecond:06d}Z"
    else:
        date = acquisition.strftime("%Y-%m-%d")
        time_of_day = acquisition.strftime("%H:%M:%S") + f".{acquisition.microsecond:06d}Z"
    south, north, west, east = bounds
    body = _group("ECSDATAGRANULE", _ecs_object("LOCALGRANULEID", granule_id, "    ")
                  + _ecs_object("PRODUCTIONDATETIME", "2024-01-01T00:00:00.000Z", "    "), "  ")
    body += _group("COLLECTIONDESCRIPTIONCLASS", _ecs_object("SHORTNAME", short_name, "    ")
                   + _ecs_object("VERSIONID", 3, "    "), "  ")
    body += _group("SINGLEDATETIME", _ecs_object("CALENDARDATE", date, "    ")
                   + _ecs_object("TIMEOFDAY", time_of_day, "    "), "  ")
    rect = "".join(_ecs_object(k, float(v), "      ") for k, v in (
        ("WESTBOUNDINGCOORDINATE", west), ("NORTHBOUNDINGCOORDINATE", north),
        ("EASTBOUNDINGCOORDINATE", east), ("SOUTHBOUNDINGCOORDINATE", south)))
    body += _group("SPATIALDOMAINCONTAINER", _group("HORIZONTALSPATIALDOMAINCONTAINER",
                                                    _group("BOUNDINGRECTANGLE", rect, "    "), "  "), "  ")
    if level == "1T":
        body += _ecs_object("PROCESSINGLEVELID", "1T", "  ")
        body += _ecs_object("MAPPROJECTIONNAME", "Universal Transverse Mercator", "  ")
    return _master("INVENTORYMETADATA", body)


def product_metadata(pointing: dict | None, setting_time: str, scene_center: tuple, orientation_deg: float,
                     solar_direction: tuple | None, sensor_names: bool = True, vnir_gain: str = "NOR") -> str:
    """productmetadata.0 text (ASTERGENERICMETADATA): POINTINGANGLES containers (CLASS 1 VNIR, 2 SWIR,
    3 TIR; ``sensor_names=False`` leaves out SENSORNAME), scene and solar geometry, GAININFORMATION
    (``vnir_gain`` for bands 1, 2, 3N; NOR for the others)."""
    gains = "".join(_ecs_object("GAIN", (band, vnir_gain if band in ("01", "02", "3N") else "NOR"), "    ", str(i))
                    for i, band in enumerate(("01", "02", "3N", "3B", "04", "05", "06", "07", "08", "09"), start=1))
    body = _group("GAININFORMATION", gains, "  ")
    if pointing is not None:
        containers = ""
        for cls, (sensor, angle) in enumerate(pointing.items(), start=1):
            inner = (_ecs_object("SENSORNAME", sensor, "      ", str(cls)) if sensor_names else "")
            inner += (_ecs_object("POINTINGANGLE", float(angle), "      ", str(cls))
                      + _ecs_object("SETTINGTIMEOFPOINTING", setting_time, "      ", str(cls)))
            containers += ("    OBJECT                 = POINTINGANGLECONTAINER\n"
                           f"      CLASS                = \"{cls}\"\n\n"
                           f"{inner}    END_OBJECT             = POINTINGANGLECONTAINER\n\n")
        body += _group("POINTINGANGLES", containers, "  ")
    scene = (_ecs_object("SCENECENTER", tuple(float(v) for v in scene_center), "    ")
             + _ecs_object("SCENEORIENTATIONANGLE", float(orientation_deg), "    "))
    if solar_direction is not None:
        scene += _ecs_object("SOLARDIRECTION", tuple(float(v) for v in solar_direction), "    ")
    body += _group("SCENEINFORMATION", scene, "  ")
    return _master("ASTERGENERICMETADATA", body)


def subsystem_metadata(sensor: str, coefficients: dict, projection: tuple | None) -> str:
    """productmetadata.v / .t text: PRODUCTSPECIFICMETADATA<sensor> → <sensor>BAND<n>DATA →
    UNITCONVERSIONCOEFF<n> (INCL, OFFSET = −INCL, CONUNIT) per band; L1T adds UTMZONENUMBER and
    UPPERLEFTM/LOWERRIGHTM (northing, easting) given as (zone, upper_left, lower_right) in (easting, northing);
    southern northings are written without the false northing (negative), as LP DAAC's tools expect."""
    body = ""
    for band, incl in coefficients.items():
        coeff = (_ecs_object(f"INCL{band}", float(incl), "        ")
                 + _ecs_object(f"OFFSET{band}", -float(incl), "        ")
                 + _ecs_object(f"CONUNIT{band}", "W/m2/sr/um", "        "))
        body += _group(f"{sensor}BAND{band}DATA", _group(f"UNITCONVERSIONCOEFF{band}", coeff, "      "), "    ")
    if projection is not None:
        zone, (ule, uln), (lre, lrn), south = projection
        if south:
            uln, lrn = uln - 10_000_000.0, lrn - 10_000_000.0
        body += _group("MAPPROJECTIONINFORMATION", _ecs_object("UTMZONENUMBER", zone, "      ")
                       + _ecs_object("UPPERLEFTM", (float(uln), float(ule)), "      ")
                       + _ecs_object("LOWERRIGHTM", (float(lrn), float(lre)), "      "), "    ")
    return _master(f"PRODUCTSPECIFICMETADATA{sensor}", _group(f"PRODUCTSPECIFICMETADATA{sensor}DATA", body, "  "))


def struct_metadata(swaths: list[dict]) -> str:
    """StructMetadata.0 text for swaths given as dicts: name, dims {name: size}, maps, geo/data fields."""
    out = ["GROUP=SwathStructure"]
    for k, swath in enumerate(swaths, start=1):
        out += [f"\tGROUP=SWATH_{k}", f'\t\tSwathName="{swath["name"]}"', "\t\tGROUP=Dimension"]
        for i, (dim, size) in enumerate(swath["dims"].items(), start=1):
            out += [f"\t\t\tOBJECT=Dimension_{i}", f'\t\t\t\tDimensionName="{dim}"', f"\t\t\t\tSize={size}",
                    f"\t\t\tEND_OBJECT=Dimension_{i}"]
        out += ["\t\tEND_GROUP=Dimension", "\t\tGROUP=DimensionMap"]
        for i, (geo, data, offset, inc) in enumerate(swath["maps"], start=1):
            out += [f"\t\t\tOBJECT=DimensionMap_{i}", f'\t\t\t\tGeoDimension="{geo}"',
                    f'\t\t\t\tDataDimension="{data}"', f"\t\t\t\tOffset={offset}", f"\t\t\t\tIncrement={inc}",
                    f"\t\t\tEND_OBJECT=DimensionMap_{i}"]
        out += ["\t\tEND_GROUP=DimensionMap", "\t\tGROUP=IndexDimensionMap", "\t\tEND_GROUP=IndexDimensionMap"]
        for group, key, fields in (("GeoField", "GeoFieldName", swath["geo"]),
                                   ("DataField", "DataFieldName", swath["data"])):
            out.append(f"\t\tGROUP={group}")
            for i, (name, dtype, dims) in enumerate(fields, start=1):
                dimlist = ",".join(f'"{d}"' for d in dims)
                out += [f"\t\t\tOBJECT={group}_{i}", f'\t\t\t\t{key}="{name}"', f"\t\t\t\tDataType={dtype}",
                        f"\t\t\t\tDimList=({dimlist})", f"\t\t\tEND_OBJECT={group}_{i}"]
            out.append(f"\t\tEND_GROUP={group}")
        out += ["\t\tGROUP=MergedFields", "\t\tEND_GROUP=MergedFields", f"\tEND_GROUP=SWATH_{k}"]
    out += ["END_GROUP=SwathStructure", "GROUP=GridStructure", "END_GROUP=GridStructure",
            "GROUP=PointStructure", "END_GROUP=PointStructure", "END", ""]
    return "\n".join(out)


class _SwathWriter:
    """Writes SDS into an open SD file and remembers, per swath, which SDS refs form its Vgroups."""

    def __init__(self, sd, separator: str | None):
        self.sd = sd
        self.separator = separator
        self.refs: dict[str, dict[str, list[int]]] = {}

    def dims(self, names, swath):
        return tuple(n if self.separator is None else f"{n}{self.separator}{swath}" for n in names)

    def write(self, swath: str, kind: str, name: str, sdc_type, data: np.ndarray, dim_names, compress=False):
        from pyhdf.SD import SDC

        sds = self.sd.create(name, sdc_type, data.shape)
        for axis, dim_name in enumerate(self.dims(dim_names, swath)):
            sds.dim(axis).setname(dim_name)
        if compress:
            sds.setcompress(SDC.COMP_DEFLATE, 6)
        sds[:] = data
        self.refs.setdefault(swath, {}).setdefault(kind, []).append(sds.ref())
        sds.endaccess()


def _write_vgroups(path: Path, refs: dict) -> None:
    """HDF-EOS swath Vgroups (class SWATH) with ``Geolocation Fields`` / ``Data Fields`` children."""
    from pyhdf.HDF import HC, HDF
    import pyhdf.V  # noqa: F401  (HDF.vgstart uses pyhdf.V without importing it)

    hdf = HDF(str(path), HC.WRITE)
    vgroups = hdf.vgstart()
    try:
        for swath, kinds in refs.items():
            top = vgroups.create(swath)
            top._class = "SWATH"
            for kind, members in kinds.items():
                child = vgroups.create(kind)
                child._class = "SWATH Vgroup"
                for ref in members:
                    child.add(HC.DFTAG_NDG, ref)
                top.insert(child)
                child.detach()
            top.detach()
    finally:
        vgroups.end()
        hdf.close()


def _set_text(sd, name: str, text: str) -> None:
    from pyhdf.SD import SDC

    sd.attr(name).set(SDC.CHAR8, text)


def _swath_fields(swath: str, shape, geo_type="DFNT_FLOAT64"):
    _, _, increments = lattice_positions(shape)
    dims = {"ImageLine": shape[0], "ImagePixel": shape[1], "GeoTrack": LATTICE_POINTS, "GeoXtrack": LATTICE_POINTS}
    maps = [("GeoTrack", "ImageLine", 0, increments[0]), ("GeoXtrack", "ImagePixel", 0, increments[1])]
    geo = [("Latitude", geo_type, ("GeoTrack", "GeoXtrack")), ("Longitude", geo_type, ("GeoTrack", "GeoXtrack"))]
    return {"name": swath, "dims": dims, "maps": maps, "geo": geo, "data": []}


def _as_time(value) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)


def _tir_dn(shape, brightness_temperature, radiance, dn, fill_mask, ucc):
    """DN (5, ny, nx) for all five TIR bands from whichever of dn / radiance / BT is given."""
    given = [x is not None for x in (brightness_temperature, radiance, dn)]
    if sum(given) > 1:
        raise ParameterError("write_aster_l1b", "more than one of brightness_temperature, radiance, dn given",
                             variable="brightness_temperature", expected="at most one source of pixel values")
    full = (len(BANDS),) + tuple(shape)
    if dn is not None:
        counts = np.broadcast_to(np.asarray(dn, dtype=np.uint16), full).copy()
    else:
        if radiance is None:
            bt = default_brightness_temperature(shape) if brightness_temperature is None else \
                np.broadcast_to(np.asarray(brightness_temperature, dtype=float), full)
            radiance = band_radiance(bt, ASTER_TIR, band_axis=0)
        radiance = np.broadcast_to(np.asarray(radiance, dtype=float), full)
        counts = np.stack([radiance_to_dn(radiance[i], ucc[name]) for i, name in enumerate(BANDS)])
    if fill_mask is not None:
        counts = np.where(np.broadcast_to(np.asarray(fill_mask, dtype=bool), tuple(shape))[None], DN_FILL, counts)
    return counts.astype(np.uint16)


def vnir_dn_for_ndvi(ndvi, *, acquisition_time, solar_direction, reflectance_sum: float = 0.4,
                     vnir_gain: str = "NOR") -> dict[str, np.ndarray]:
    """VNIR ``vnir_dn`` {"2", "3N"} (uint8, 6 × the TIR shape) from which the reader gives back ``ndvi`` (TIR grid).

    Each TIR pixel's 6 × 6 VNIR pixels get TOA reflectances ρ3N = s(1 + NDVI)/2, ρ2 = s(1 − NDVI)/2 with
    s = ``reflectance_sum``, turned into DN through the reader's steps inverted (ρ = π L d² / (E_sun cos θs),
    L = (DN − 1)·UCC of ``vnir_gain``; ``acquisition_time`` and ``solar_direction`` as given to
    :func:`write_aster_l1b`). DN rounding leaves NDVI errors of a few 0.001.
    """
    from ..io.aster.vnir import VNIR_BANDS

    values = np.clip(np.asarray(ndvi, float), -1.0, 1.0)
    return {band: _vnir_dn(reflectance_sum * (1.0 + sign * values) / 2, band, acquisition_time, solar_direction,
                           vnir_gain) for band, sign in zip(VNIR_BANDS, (-1.0, 1.0))}


def _vnir_dn(reflectance, band: str, acquisition_time, solar_direction, vnir_gain: str, saturate: bool = False
             ) -> np.ndarray:
    """uint8 VNIR DN (6 × the TIR shape) of one band's TOA ``reflectance`` on the TIR grid: the reader's steps
    inverted. DN above 254 become 254, or with ``saturate`` the saturation code 255."""
    from ..io.aster.vnir import SOLAR_IRRADIANCE, VNIR_SATURATED, earth_sun_distance_au

    distance = earth_sun_distance_au(_as_time(acquisition_time).timetuple().tm_yday)
    cos_sun = math.cos(math.radians(90.0 - solar_direction[1]))
    radiance = np.asarray(reflectance, float) * SOLAR_IRRADIANCE[band] * cos_sun / (math.pi * distance ** 2)
    counts = np.rint(radiance / VNIR_UCC[band][vnir_gain]) + 1
    dn = np.clip(counts, 1, 254)
    if saturate:
        dn = np.where(counts > 254, VNIR_SATURATED, dn)
    return np.repeat(np.repeat(dn.astype(np.uint8), VNIR_FACTOR, axis=0), VNIR_FACTOR, axis=1)


def vnir_dn_for_reflectance(reflectance, *, acquisition_time, solar_direction, vnir_gain: str = "NOR"
                            ) -> dict[str, np.ndarray]:
    """VNIR ``vnir_dn`` {"1", "2", "3N"} (uint8, 6 × the TIR shape) from which the reader gives back
    ``vnir_reflectance`` (the TOA reflectance (3, y, x) of bands 1, 2, 3N, e.g. a cloudy scene's), DN 255 where
    the band saturates. DN rounding leaves reflectance errors of ≈ 0.002."""
    from ..io.aster.vnir import REFLECTANCE_BANDS

    return {band: _vnir_dn(values, band, acquisition_time, solar_direction, vnir_gain, saturate=True)
            for band, values in zip(REFLECTANCE_BANDS, np.asarray(reflectance, float))}


def write_aster_l1b(path, *, brightness_temperature=None, radiance=None, dn=None,
                    shape: tuple[int, int] = (700, 830), fill_mask=None, pointing_angle: float | None = 2.5,
                    center_lat: float = 36.5, center_lon: float = -116.9, orientation_deg: float = 9.0,
                    acquisition_time="2004-07-15T18:30:05.250Z", solar_direction=(135.0, 62.0),
                    pixel_size_m: float = 90.0, short_name: str | None = None, bands=BANDS,
                    band_shapes: dict | None = None, include_tir: bool = True, include_vnir: bool = True,
                    unit_conversion: dict | bool = True, processing_level: str = "1B", vnir_dn: dict | None = None,
                    sensor_names: bool = True, dimension_separator: str | None = ":",
                    vgroups: bool = True, vnir_gain: str = "NOR") -> Path:
    """Write a synthetic AST_L1B (``processing_level="1B"``) or AST_L1T (``"1T"``) file and return the path.

    Pixel values come from ``dn`` (uint16, (5, ny, nx)), ``radiance`` (W m⁻² sr⁻¹ µm⁻¹) or
    ``brightness_temperature`` (K; scalar, (ny, nx) or (5, ny, nx)); with none given a smooth default
    BT field is used. DN = round(L/UCC) + 1 clipped to 1…4094; ``fill_mask`` (ny, nx) pixels get DN 0.
    ``pointing_angle`` is the TIR cross-track pointing angle in degrees (None: no POINTINGANGLES). L1B:
    the lattice is centred on (``center_lat``, ``center_lon``) (geodetic) and rotated by
    ``orientation_deg``; L1T: a north-up UTM grid of ``pixel_size_m`` around the centre.
    ``unit_conversion``: True writes the handbook UCC as ``INCLnn``/``OFFSETnn`` (OFFSET = −UCC), a dict
    {band: UCC} writes (and encodes DN with) other coefficients, False writes none. ``vnir_dn``: {"1", "2",
    "3N": uint8 DN broadcastable to the VNIR shape (6 × TIR)}; ``solar_direction`` = (azimuth, elevation)
    or None; ``vnir_gain`` (HGH, NOR, LO1) picks the VNIR coefficients written as INCL.
    ``dimension_separator``/``vgroups`` vary how SDS are tied to their swath.
    """
    from pyhdf.SD import SD, SDC

    path = Path(path)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ParameterError("write_aster_l1b", f"shape {shape}", variable="shape", expected="(ny, nx), both ≥ 2")
    unknown = set(bands) - set(BANDS)
    if unknown:
        raise ParameterError("write_aster_l1b", f"unknown bands {sorted(unknown)}", variable="bands",
                             expected=f"a subset of {BANDS}")
    if processing_level not in ("1B", "1T"):
        raise ParameterError("write_aster_l1b", f"processing_level {processing_level!r}", variable="processing_level",
                             expected='"1B" or "1T"')
    level_1t = processing_level == "1T"
    acquisition = _as_time(acquisition_time)
    vshape = (shape[0] * VNIR_FACTOR, shape[1] * VNIR_FACTOR)
    if level_1t:
        orientation_deg = 0.0
        epsg, upper_left, lower_right = utm_grid(center_lat, center_lon, shape, pixel_size_m)
        vsize = pixel_size_m / VNIR_FACTOR
        v_ul = (upper_left[0] - pixel_size_m / 2 + vsize / 2, upper_left[1] + pixel_size_m / 2 - vsize / 2)
        v_lr = (v_ul[0] + (vshape[1] - 1) * vsize, v_ul[1] - (vshape[0] - 1) * vsize)
        zone = epsg % 100
        lat, lon = _utm_lattice(epsg, upper_left, pixel_size_m, shape)
        vlat, vlon = _utm_lattice(epsg, v_ul, vsize, vshape)
        tir_lattice, vnir_lattice = (lat, lon), (vlat, vlon)
    else:
        lat, lon = _swath_lattice(shape, center_lat, center_lon, orientation_deg, pixel_size_m)
        vlat, vlon = _swath_lattice(vshape, center_lat, center_lon, orientation_deg, pixel_size_m / VNIR_FACTOR)
        tir_lattice = (geodetic_to_geocentric(lat), lon)
        vnir_lattice = (geodetic_to_geocentric(vlat), vlon)
    ucc = {b.name: b.ucc for b in ASTER_TIR.bands}
    if isinstance(unit_conversion, dict):
        ucc.update({k: float(v) for k, v in unit_conversion.items()})
    counts = _tir_dn(shape, brightness_temperature, radiance, dn, fill_mask, ucc)
    shapes = _band_shapes(shape, bands, band_shapes)
    vnir_counts = {**DEFAULT_VNIR_DN, **(vnir_dn or {})}

    swaths = []
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    writer = _SwathWriter(sd, dimension_separator)
    try:
        if include_vnir:  # first, so that a reader picking the first "Latitude" gets the wrong one
            vnir = _swath_fields("VNIR_Swath", vshape)
            for band in ("1", "2", "3N"):
                vnir["data"].append((f"ImageData{band}", "DFNT_UINT8", ("ImageLine", "ImagePixel")))
                values = np.broadcast_to(np.asarray(vnir_counts[band], np.uint8), vshape)
                writer.write("VNIR_Swath", "Data Fields", f"ImageData{band}", SDC.UINT8, np.ascontiguousarray(values),
                             ("ImageLine", "ImagePixel"), compress=True)
            for name, values in zip(("Latitude", "Longitude"), vnir_lattice):
                writer.write("VNIR_Swath", "Geolocation Fields", name, SDC.FLOAT64, values, ("GeoTrack", "GeoXtrack"))
            swaths.append(vnir)
        if include_tir:
            tir = _swath_fields("TIR_Swath", shape)
            for name in bands:
                band_shape = shapes[name]
                index = BANDS.index(name)
                values = counts[index] if band_shape == shape else np.ones(band_shape, np.uint16)
                suffix = "" if band_shape == shape else f"_{name}"
                tir["data"].append((f"ImageData{name[1:]}", "DFNT_UINT16", ("ImageLine", "ImagePixel")))
                writer.write("TIR_Swath", "Data Fields", f"ImageData{name[1:]}", SDC.UINT16, values,
                             (f"ImageLine{suffix}", f"ImagePixel{suffix}"))
            for name, values in zip(("Latitude", "Longitude"), tir_lattice):
                writer.write("TIR_Swath", "Geolocation Fields", name, SDC.FLOAT64, values, ("GeoTrack", "GeoXtrack"))
            swaths.append(tir)
        iso = acquisition.strftime("%Y-%m-%dT%H:%M:%SZ")
        pointing = None if pointing_angle is None else \
            {"VNIR": pointing_angle + 0.02, "SWIR": pointing_angle - 0.01, "TIR": pointing_angle}
        short = short_name or ("AST_L1T" if level_1t else "ASTL1B")
        granule = f"{'AST_L1T' if level_1t else 'AST_L1B'}_003{acquisition:%m%d%Y%H%M%S}_synthetic.hdf"
        bounds = (float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max()))
        _set_text(sd, "StructMetadata.0", struct_metadata(swaths))
        _set_text(sd, "coremetadata.0", core_metadata(short, acquisition, bounds, granule, processing_level))
        _set_text(sd, "productmetadata.0", product_metadata(pointing, iso, (center_lat, center_lon), orientation_deg,
                                                            solar_direction, sensor_names, vnir_gain))
        if include_vnir:
            projection = (zone, v_ul, v_lr, epsg > 32700) if level_1t else None
            incl = {band: by_gain[vnir_gain] for band, by_gain in VNIR_UCC.items()}  # handbook UCC as INCL
            _set_text(sd, "productmetadata.v", subsystem_metadata("VNIR", incl, projection))
        if include_tir:
            coefficients = {name[1:]: ucc[name] for name in bands} if unit_conversion is not False else {}
            projection = (zone, upper_left, lower_right, epsg > 32700) if level_1t else None
            _set_text(sd, "productmetadata.t", subsystem_metadata("TIR", coefficients, projection))
    finally:
        sd.end()
    if vgroups:
        _write_vgroups(path, writer.refs)
    log.debug("wrote synthetic %s %s (%d×%d)", short, path, *shape)
    return path


def write_aster_l1t(path, *, shape: tuple[int, int] = (825, 933), **kwargs) -> Path:
    """Write a synthetic AST_L1T: :func:`write_aster_l1b` with ``processing_level="1T"`` (north-up UTM
    grid, geodetic lattice, L1T metadata) and an L1T-like odd default size."""
    return write_aster_l1b(path, shape=shape, processing_level="1T", **kwargs)


def write_ast08(path, *, shape: tuple[int, int] = (70, 83), temperature_k: float = 300.0) -> Path:
    """Write a Level-2 AST_08-like file (swath ``SurfaceKineticTemperature``, SDS ``KineticTemperature``
    in 0.1 K): an HDF-EOS file the L1B reader must reject because it has no TIR radiance swath."""
    from pyhdf.SD import SD, SDC

    path = Path(path)
    lat, lon = _swath_lattice(shape, 36.5, -116.9, 9.0, 90.0)
    swath = _swath_fields("SurfaceKineticTemperature", shape)
    swath["data"].append(("KineticTemperature", "DFNT_UINT16", ("ImageLine", "ImagePixel")))
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    writer = _SwathWriter(sd, ":")
    name = "SurfaceKineticTemperature"
    try:
        writer.write(name, "Data Fields", "KineticTemperature", SDC.UINT16,
                     np.full(shape, int(temperature_k * 10), np.uint16), ("ImageLine", "ImagePixel"))
        for field, values in (("Latitude", geodetic_to_geocentric(lat)), ("Longitude", lon)):
            writer.write(name, "Geolocation Fields", field, SDC.FLOAT64, values, ("GeoTrack", "GeoXtrack"))
        _set_text(sd, "StructMetadata.0", struct_metadata([swath]))
        _set_text(sd, "coremetadata.0", core_metadata("AST_08", _as_time("2004-07-15T18:30:05Z"),
                                                      (36.0, 37.0, -117.5, -116.5), "AST_08_synthetic.hdf"))
    finally:
        sd.end()
    _write_vgroups(path, writer.refs)
    return path
