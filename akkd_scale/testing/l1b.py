"""Write structurally faithful synthetic ASTER L1B (HDF-EOS2 / HDF4) files with pyhdf.

The files carry what the reader uses from real AST_L1B granules: SDS ``ImageData10`` … ``ImageData14``
(uint16, dimensions ``ImageLine:TIR_Swath`` × ``ImagePixel:TIR_Swath``), the geolocation lattice
``Latitude`` / ``Longitude`` (float64, 11 × 11, *geocentric* latitude, dimensions ``GeoTrack:TIR_Swath`` ×
``GeoXtrack:TIR_Swath``), and the global ODL attributes ``StructMetadata.0`` (HDF-EOS ``TIR_Swath`` with
its dimensions, dimension maps, geolocation and data fields), ``coremetadata.0`` (``SHORTNAME``,
``CALENDARDATE``/``TIMEOFDAY``, bounding rectangle) and ``productmetadata.0`` (``POINTINGANGLES`` per
telescope, ``SCENECENTER``, ``SCENEORIENTATIONANGLE``, ``SOLARDIRECTION``, ``UNITCONVERSIONCOEFF``).
Not reproduced: HDF-EOS Vgroups, VNIR/SWIR image sizes (VNIR fields are written at TIR size to keep
files small), bad-pixel tables. Variants for bad-input tests: ``include_tir=False`` (VNIR-only),
``bands=`` (missing band), ``band_shapes=`` (wrong dimensions), all-fill ``fill_mask``, and
:func:`write_ast08` (a Level-2 kinetic-temperature product without a TIR swath).
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..sensors import ASTER_TIR, band_radiance

log = logging.getLogger(__name__)

TIR_BANDS = ASTER_TIR.band_names
#: Geodetic ↔ geocentric latitude: tan(geodetic) = GEOCENTRIC_FACTOR · tan(geocentric) (WGS84, 1/(1−e²)).
GEOCENTRIC_FACTOR = 1.0067395
LATTICE_POINTS = 11
DN_FILL, DN_SATURATED = 0, 4095


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


def _lattice(shape, center_lat, center_lon, orientation_deg, pixel_size_m, increments):
    """Geodetic lat/lon (11 × 11) at lattice lines 0, inc, … and pixels 0, inc, … around the centre."""
    rows = np.arange(LATTICE_POINTS) * increments[0] - (shape[0] - 1) / 2
    cols = np.arange(LATTICE_POINTS) * increments[1] - (shape[1] - 1) / 2
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    angle = math.radians(orientation_deg)
    north = -(rr * math.cos(angle) + cc * math.sin(angle)) * pixel_size_m
    east = (cc * math.cos(angle) - rr * math.sin(angle)) * pixel_size_m
    lat = center_lat + north / 111_320.0
    lon = center_lon + east / (111_320.0 * np.cos(np.radians(lat)))
    return lat, (lon + 180.0) % 360.0 - 180.0


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


def core_metadata(short_name: str, acquisition: datetime, bounds: tuple, granule_id: str) -> str:
    """coremetadata.0 text: granule id, SHORTNAME, CALENDARDATE/TIMEOFDAY, bounding rectangle."""
    time_of_day = acquisition.strftime("%H%M%S") + f"{acquisition.microsecond:06d}Z"
    south, north, west, east = bounds
    body = _group("ECSDATAGRANULE", _ecs_object("LOCALGRANULEID", granule_id, "    ")
                  + _ecs_object("PRODUCTIONDATETIME", "2024-01-01T00:00:00.000Z", "    "), "  ")
    body += _group("COLLECTIONDESCRIPTIONCLASS", _ecs_object("SHORTNAME", short_name, "    ")
                   + _ecs_object("VERSIONID", 3, "    "), "  ")
    body += _group("SINGLEDATETIME", _ecs_object("CALENDARDATE", acquisition.strftime("%Y%m%d"), "    ")
                   + _ecs_object("TIMEOFDAY", time_of_day, "    "), "  ")
    rect = "".join(_ecs_object(k, float(v), "      ") for k, v in (
        ("WESTBOUNDINGCOORDINATE", west), ("NORTHBOUNDINGCOORDINATE", north),
        ("EASTBOUNDINGCOORDINATE", east), ("SOUTHBOUNDINGCOORDINATE", south)))
    body += _group("SPATIALDOMAINCONTAINER", _group("HORIZONTALSPATIALDOMAINCONTAINER",
                                                    _group("BOUNDINGRECTANGLE", rect, "    "), "  "), "  ")
    return "GROUP                  = INVENTORYMETADATA\n  GROUPTYPE            = MASTERGROUP\n\n" + body + \
        "END_GROUP              = INVENTORYMETADATA\n\nEND\n"


def product_metadata(pointing: dict, setting_time: str, scene_center: tuple, orientation_deg: float,
                     solar_direction: tuple, ucc: dict | None) -> str:
    """productmetadata.0 text: POINTINGANGLES per telescope, scene and solar geometry, unit conversion."""
    containers = ""
    for cls, (sensor, angle) in enumerate(pointing.items(), start=1):
        inner = (_ecs_object("SENSORNAME", sensor, "      ", str(cls))
                 + _ecs_object("POINTINGANGLE", float(angle), "      ", str(cls))
                 + _ecs_object("SETTINGTIMEOFPOINTING", setting_time, "      ", str(cls)))
        containers += (f"    OBJECT                 = POINTINGANGLECONTAINER\n      CLASS                = \"{cls}\"\n\n"
                       f"{inner}    END_OBJECT             = POINTINGANGLECONTAINER\n\n")
    body = _group("POINTINGANGLES", containers, "  ")
    scene = (_ecs_object("SCENECENTER", tuple(float(v) for v in scene_center), "    ")
             + _ecs_object("SCENEORIENTATIONANGLE", float(orientation_deg), "    ")
             + _ecs_object("SOLARDIRECTION", tuple(float(v) for v in solar_direction), "    "))
    body += _group("SCENEINFORMATION", scene, "  ")
    if ucc:
        coeffs = "".join(_ecs_object(f"INCL{name[1:]}", float(value), "    ") +
                         _ecs_object(f"OFFSET{name[1:]}", -float(value), "    ") for name, value in ucc.items())
        body += _group("UNITCONVERSIONCOEFF", coeffs, "  ")
    return "GROUP                  = PRODUCTMETADATA.0\n  GROUPTYPE            = MASTERGROUP\n\n" + body + \
        "END_GROUP              = PRODUCTMETADATA.0\n\nEND\n"


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


def _write_sds(sd, name: str, sdc_type, data: np.ndarray, dim_names: tuple[str, str]) -> None:
    sds = sd.create(name, sdc_type, data.shape)
    for axis, dim_name in enumerate(dim_names):
        sds.dim(axis).setname(dim_name)
    sds[:] = data
    sds.endaccess()


def _set_text(sd, name: str, text: str) -> None:
    from pyhdf.SD import SDC

    sd.attr(name).set(SDC.CHAR8, text)


def _swath_fields(swath: str, shape, increments, geo_type="DFNT_FLOAT64"):
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
    full = (len(TIR_BANDS),) + tuple(shape)
    if dn is not None:
        counts = np.broadcast_to(np.asarray(dn, dtype=np.uint16), full).copy()
    else:
        if radiance is None:
            bt = default_brightness_temperature(shape) if brightness_temperature is None else \
                np.broadcast_to(np.asarray(brightness_temperature, dtype=float), full)
            radiance = band_radiance(bt, ASTER_TIR, band_axis=0)
        radiance = np.broadcast_to(np.asarray(radiance, dtype=float), full)
        counts = np.stack([radiance_to_dn(radiance[i], ucc[name]) for i, name in enumerate(TIR_BANDS)])
    if fill_mask is not None:
        counts = np.where(np.broadcast_to(np.asarray(fill_mask, dtype=bool), tuple(shape))[None], DN_FILL, counts)
    return counts.astype(np.uint16)


def write_aster_l1b(path, *, brightness_temperature=None, radiance=None, dn=None,
                    shape: tuple[int, int] = (700, 830), fill_mask=None, pointing_angle: float = 2.5,
                    center_lat: float = 36.5, center_lon: float = -116.9, orientation_deg: float = 9.0,
                    acquisition_time="2004-07-15T18:30:05.250Z", solar_direction=(135.0, 62.0),
                    pixel_size_m: float = 90.0, short_name: str = "AST_L1B", bands=TIR_BANDS,
                    band_shapes: dict | None = None, include_tir: bool = True, include_vnir: bool = True,
                    unit_conversion: dict | bool = True) -> Path:
    """Write a synthetic AST_L1B file at ``path`` and return the path.

    Pixel values come from ``dn`` (uint16, (5, ny, nx)), ``radiance`` (W m⁻² sr⁻¹ µm⁻¹) or
    ``brightness_temperature`` (K; scalar, (ny, nx) or (5, ny, nx)); with none given a smooth default
    BT field is used. DN = round(L/UCC) + 1 clipped to 1…4094; ``fill_mask`` (ny, nx) pixels get DN 0.
    ``pointing_angle`` is the TIR cross-track pointing angle in degrees; the lattice is centred on
    (``center_lat``, ``center_lon``) (geodetic) and rotated by ``orientation_deg``.
    ``unit_conversion``: True writes the handbook UCC as ``INCLnn``/``OFFSETnn`` (OFFSET = −UCC), a dict
    {band: UCC} writes (and encodes DN with) other coefficients, False writes none.
    """
    from pyhdf.SD import SD, SDC

    path = Path(path)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ParameterError("write_aster_l1b", f"shape {shape}", variable="shape", expected="(ny, nx), both ≥ 2")
    unknown = set(bands) - set(TIR_BANDS)
    if unknown:
        raise ParameterError("write_aster_l1b", f"unknown bands {sorted(unknown)}", variable="bands",
                             expected=f"a subset of {TIR_BANDS}")
    acquisition = _as_time(acquisition_time)
    increments = tuple(int(math.ceil(s / (LATTICE_POINTS - 1))) for s in shape)
    lat, lon = _lattice(shape, center_lat, center_lon, orientation_deg, pixel_size_m, increments)
    ucc = {b.name: b.ucc for b in ASTER_TIR.bands}
    if isinstance(unit_conversion, dict):
        ucc.update({k: float(v) for k, v in unit_conversion.items()})
    counts = _tir_dn(shape, brightness_temperature, radiance, dn, fill_mask, ucc)
    shapes = _band_shapes(shape, bands, band_shapes)

    swaths = []
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        if include_vnir:  # first, so that a reader picking the first "Latitude" gets the wrong one
            vnir = _swath_fields("VNIR_Swath", shape, increments)
            for name in ("ImageData1", "ImageData2", "ImageData3N"):
                vnir["data"].append((name, "DFNT_UINT8", ("ImageLine", "ImagePixel")))
                _write_sds(sd, name, SDC.UINT8, np.full(shape, 50, np.uint8),
                           ("ImageLine:VNIR_Swath", "ImagePixel:VNIR_Swath"))
            for name, values in (("Latitude", geodetic_to_geocentric(lat + 0.5)), ("Longitude", lon + 0.5)):
                _write_sds(sd, name, SDC.FLOAT64, values, ("GeoTrack:VNIR_Swath", "GeoXtrack:VNIR_Swath"))
            swaths.append(vnir)
        if include_tir:
            tir = _swath_fields("TIR_Swath", shape, increments)
            for name in bands:
                band_shape = shapes[name]
                index = TIR_BANDS.index(name)
                values = counts[index] if band_shape == shape else np.ones(band_shape, np.uint16)
                suffix = "" if band_shape == shape else f"_{name}"
                tir["data"].append((f"ImageData{name[1:]}", "DFNT_UINT16", ("ImageLine", "ImagePixel")))
                _write_sds(sd, f"ImageData{name[1:]}", SDC.UINT16, values,
                           (f"ImageLine{suffix}:TIR_Swath", f"ImagePixel{suffix}:TIR_Swath"))
            for name, values in (("Latitude", geodetic_to_geocentric(lat)), ("Longitude", lon)):
                _write_sds(sd, name, SDC.FLOAT64, values, ("GeoTrack:TIR_Swath", "GeoXtrack:TIR_Swath"))
            swaths.append(tir)
        iso = acquisition.strftime("%Y-%m-%dT%H:%M:%SZ")
        pointing = {"VNIR": pointing_angle + 0.02, "SWIR": pointing_angle - 0.01, "TIR": pointing_angle}
        granule = f"{short_name}_003{acquisition:%m%d%Y%H%M%S}_synthetic.hdf"
        bounds = (float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max()))
        _set_text(sd, "StructMetadata.0", struct_metadata(swaths))
        _set_text(sd, "coremetadata.0", core_metadata(short_name, acquisition, bounds, granule))
        written = {name: ucc[name] for name in bands} if unit_conversion is not False and include_tir else None
        _set_text(sd, "productmetadata.0", product_metadata(pointing, iso, (center_lat, center_lon), orientation_deg,
                                                            solar_direction, written))
    finally:
        sd.end()
    log.debug("wrote synthetic %s %s (%d×%d)", short_name, path, *shape)
    return path


def write_ast08(path, *, shape: tuple[int, int] = (70, 83), temperature_k: float = 300.0) -> Path:
    """Write a Level-2 AST_08-like file (swath ``SurfaceKineticTemperature``, SDS ``KineticTemperature``
    in 0.1 K): an HDF-EOS file the L1B reader must reject because it has no TIR radiance swath."""
    from pyhdf.SD import SD, SDC

    path = Path(path)
    increments = tuple(int(math.ceil(s / (LATTICE_POINTS - 1))) for s in shape)
    lat, lon = _lattice(shape, 36.5, -116.9, 9.0, 90.0, increments)
    swath = _swath_fields("SurfaceKineticTemperature", shape, increments)
    swath["data"].append(("KineticTemperature", "DFNT_UINT16", ("ImageLine", "ImagePixel")))
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        _write_sds(sd, "KineticTemperature", SDC.UINT16, np.full(shape, int(temperature_k * 10), np.uint16),
                   ("ImageLine:SurfaceKineticTemperature", "ImagePixel:SurfaceKineticTemperature"))
        for name, values in (("Latitude", geodetic_to_geocentric(lat)), ("Longitude", lon)):
            _write_sds(sd, name, SDC.FLOAT64, values,
                       ("GeoTrack:SurfaceKineticTemperature", "GeoXtrack:SurfaceKineticTemperature"))
        _set_text(sd, "StructMetadata.0", struct_metadata([swath]))
        _set_text(sd, "coremetadata.0", core_metadata("AST_08", _as_time("2004-07-15T18:30:05Z"),
                                                      (36.0, 37.0, -117.5, -116.5), "AST_08_synthetic.hdf"))
    finally:
        sd.end()
    return path
