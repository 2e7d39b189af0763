"""What the ASTER reader takes from the ODL metadata attributes (``coremetadata.0``, ``productmetadata.*``).

Functions take a :class:`Metadata` (every parsed metadata attribute of one file) and return values
together with where they were found; optional keys that are missing give NaN/None and a logged
warning, never an exception. The keys and their sources are listed in ``docs/reader.md``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from ...errors import SceneFileError
from ..odl import OdlNode, parse_odl

log = logging.getLogger(__name__)

#: Telescope of each POINTINGANGLE CLASS when SENSORNAME is missing (1 VNIR, 2 SWIR, 3 TIR).
POINTING_CLASS = {"VNIR": "1", "SWIR": "2", "TIR": "3"}
#: The per-subsystem metadata attributes (VNIR, SWIR, TIR): one subsystem's grid is never read from another's.
SUBSYSTEM_ATTRIBUTES = ("productmetadata.v", "productmetadata.s", "productmetadata.t")
#: The keys of an L1T subsystem's UTM grid.
PROJECTION_KEYS = ("UTMZONENUMBER", "UPPERLEFTM", "LOWERRIGHTM")


@dataclass(frozen=True)
class Metadata:
    """Parsed ODL metadata of one file: attribute name → tree, and the file for messages."""

    source: str
    trees: dict

    @classmethod
    def from_attributes(cls, attrs: dict, source: str) -> Metadata:
        """Parse every ``coremetadata.*`` / ``productmetadata.*`` text attribute (malformed ODL raises)."""
        names = sorted(k for k in attrs if k.lower().startswith(("coremetadata.", "productmetadata.")))
        return cls(source, {k: parse_odl(attrs[k], source=f"{source}: {k}") for k in names})

    def ordered(self, prefer: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[tuple[str, OdlNode]]:
        """(attribute, tree) pairs, the ``prefer`` attributes first in that order, then the rest; never ``exclude``."""
        first = [(k, self.trees[k]) for k in prefer if k in self.trees and k not in exclude]
        return first + [(k, v) for k, v in self.trees.items() if k not in prefer and k not in exclude]

    def find(self, name: str, prefer: tuple[str, ...] = (), kind: str | None = None, exclude: tuple[str, ...] = ()):
        """(node, attribute) of the first object/group called ``name``, or (None, None)."""
        for key, tree in self.ordered(prefer, exclude):
            node = tree.find(name, kind)
            if node is not None:
                return node, key
        return None, None

    def value(self, name: str, prefer: tuple[str, ...] = (), exclude: tuple[str, ...] = ()):
        """VALUE of the first object called ``name`` (None when absent)."""
        node, _ = self.find(name, prefer, exclude=exclude)
        return None if node is None else node.value


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _finite(value) -> bool:
    number = _number(value)
    return number is not None and math.isfinite(number)


def processing_level(meta: Metadata) -> str:
    """``"1B"`` or ``"1T"``: PROCESSINGLEVELID, else SHORTNAME (``ASTL1B``/``AST_L1B``, ``AST_L1T``),
    else a MAPPROJECTIONNAME means 1T; unknown files are read as 1B (logged)."""
    level = str(meta.value("PROCESSINGLEVELID") or "").strip().upper()
    if level in ("1B", "1T"):
        return level
    short = str(meta.value("SHORTNAME") or "").upper().replace("_", "")
    if short in ("ASTL1B", "ASTL1T"):
        return short[-2:]
    if meta.value("MAPPROJECTIONNAME") is not None:
        return "1T"
    log.warning("%s: no PROCESSINGLEVELID or SHORTNAME of an ASTER L1B/L1T: read as L1B", meta.source)
    return "1B"


def short_name(meta: Metadata) -> str | None:
    value = meta.value("SHORTNAME", prefer=("coremetadata.0",))
    return None if value is None else str(value)


def unit_conversion(meta: Metadata, band: str, sensor: str) -> tuple[float, float, str, str] | None:
    """(INCL, OFFSET, CONUNIT, attribute) of ``band`` (``"10"``, ``"2"``, ``"3N"``) from the
    ``UNITCONVERSIONCOEFF<band>`` group of ``productmetadata.<t|v|s>`` (any productmetadata as fallback);
    OFFSET defaults to −INCL (L = (DN − 1)·INCL). None when no INCL is found."""
    prefer = (f"productmetadata.{sensor[0].lower()}",)
    scope, key = meta.find(f"UNITCONVERSIONCOEFF{band}", prefer, kind="GROUP")
    if scope is None:  # INCLnn outside a per-band group: search the whole attribute that has it
        node, key = meta.find(f"INCL{band}", prefer)
        if node is None:
            return None
        scope = meta.trees[key]
    incl = _number(getattr(scope.find(f"INCL{band}"), "value", None))
    if incl is None:
        return None
    offset = _number(getattr(scope.find(f"OFFSET{band}"), "value", None))
    unit = getattr(scope.find(f"CONUNIT{band}"), "value", None)
    return incl, -incl if offset is None else offset, "" if unit is None else str(unit), key


def calibration(
    meta: Metadata, bands: tuple[str, ...], sensor: str, handbook: tuple[float, ...]
) -> tuple[tuple, tuple, str]:
    """Per-band (gains, offsets, source) for L = gain·DN + offset: the file's INCL/OFFSET when every band
    has them, else the ``handbook`` UCC with L = (DN − 1)·UCC (logged as a warning)."""
    found = [unit_conversion(meta, band, sensor) for band in bands]
    if all(f is not None for f in found):
        keys = sorted({f[3] for f in found})
        units = sorted({f[2] for f in found if f[2]})
        source = f"{', '.join(keys)} INCLnn/OFFSETnn" + (f" ({', '.join(units)})" if units else "")
        return tuple(f[0] for f in found), tuple(f[1] for f in found), source
    missing = [b for b, f in zip(bands, found) if f is None]
    log.warning(
        "%s: no unit conversion coefficients (INCL) for %s bands %s: using the ASTER handbook UCC",
        meta.source,
        sensor,
        ", ".join(missing),
    )
    return handbook, tuple(-u for u in handbook), "ASTER handbook UCC, L = (DN - 1) * UCC (not in the file)"


def band_gains(meta: Metadata) -> dict[str, str]:
    """Gain setting per band (``{"1": "HGH", "3N": "NOR", …}``) from the ``GAIN`` objects (VALUE = (band,
    gain)) of ``GAININFORMATION`` in productmetadata.0; empty when absent."""
    group, _ = meta.find("GAININFORMATION", ("productmetadata.0",), kind="GROUP")
    gains = {}
    for node in group.walk() if group is not None else ():
        if node.name == "GAIN" and isinstance(node.value, tuple) and len(node.value) == 2:
            band, gain = (str(v).strip() for v in node.value)
            gains[band.lstrip("0")] = gain.upper()
    return gains


def pointing_angle(meta: Metadata, sensor: str = "TIR") -> tuple[float, str]:
    """(angle in degrees or NaN, how it was found): the POINTINGANGLE whose CLASS matches the
    SENSORNAME ``sensor``, else the one of CLASS 1/2/3 for VNIR/SWIR/TIR."""
    group, _ = meta.find("POINTINGANGLES", ("productmetadata.0",), kind="GROUP")
    if group is None:
        return math.nan, "no POINTINGANGLES group in the metadata"
    names = {n.attrs.get("CLASS"): str(n.value).strip().upper() for n in group.walk() if n.name == "SENSORNAME"}
    angles = {n.attrs.get("CLASS"): n.value for n in group.walk() if n.name == "POINTINGANGLE"}
    classes = [c for c, s in names.items() if s == sensor]
    how = f'POINTINGANGLE of SENSORNAME "{sensor}"'
    if not classes:
        classes, how = [POINTING_CLASS[sensor]], f'POINTINGANGLE of CLASS "{POINTING_CLASS[sensor]}" (no SENSORNAME)'
        log.warning('%s: no SENSORNAME "%s" in POINTINGANGLES: taking the %s', meta.source, sensor, how)
    value = _number(angles.get(classes[0]))
    if value is None:
        return math.nan, f"no numeric {how} (found {angles.get(classes[0])!r})"
    return value, how


def _parse_time_of_day(date: str, time_of_day: str) -> datetime | None:
    """CALENDARDATE ``YYYYMMDD`` or ``YYYY-MM-DD`` + TIMEOFDAY ``hhmmss[ffffff]Z`` or ``hh:mm:ss[.ffffff]Z``."""
    digits = time_of_day.strip().rstrip("Z").replace(":", "")
    whole, _, fraction = digits.partition(".")
    if len(whole) > 6 and not fraction:
        whole, fraction = whole[:6], whole[6:]
    day = date.strip().replace("-", "")
    try:
        moment = datetime.strptime(day + whole[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    micro = int((fraction + "000000")[:6]) if fraction.isdecimal() else 0  # isdigit() also takes "²", int() not
    return moment.replace(microsecond=micro, tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def acquisition_time(meta: Metadata) -> str:
    """ISO-8601 UTC time: coremetadata CALENDARDATE + TIMEOFDAY, else the TIR SETTINGTIMEOFPOINTING."""
    date, tod = meta.value("CALENDARDATE", ("coremetadata.0",)), meta.value("TIMEOFDAY", ("coremetadata.0",))
    if date is not None and tod is not None:
        moment = _parse_time_of_day(str(date), str(tod))
        if moment is not None:
            return iso_utc(moment)
    group, _ = meta.find("POINTINGANGLES", ("productmetadata.0",), kind="GROUP")
    if group is not None:
        names = {n.attrs.get("CLASS"): str(n.value).upper() for n in group.walk() if n.name == "SENSORNAME"}
        for node in group.walk():
            cls = node.attrs.get("CLASS")
            if node.name == "SETTINGTIMEOFPOINTING" and names.get(cls, "TIR" if cls == "3" else None) == "TIR":
                try:
                    moment = datetime.fromisoformat(str(node.value).replace("Z", "+00:00"))
                    return iso_utc(moment if moment.tzinfo else moment.replace(tzinfo=UTC))  # UTC, not local
                except (ValueError, OverflowError):  # not ISO 8601, or moved past year 1 / 9999 by its offset
                    break
    raise SceneFileError(
        meta.source,
        "no acquisition time",
        variable="coremetadata.0",
        expected="CALENDARDATE and TIMEOFDAY (or productmetadata.0 SETTINGTIMEOFPOINTING for TIR)",
    )


#: Degrees each scene attribute may take; a value outside (or not finite) is left out with a warning.
SCENE_ATTRIBUTE_RANGES = {
    "scene_center_lat": 90.0,
    "scene_center_lon": 180.0,
    "solar_azimuth": 360.0,
    "solar_elevation": 90.0,
    "scene_orientation_angle": 360.0,
}


def scene_attributes(meta: Metadata) -> dict:
    """Scene centre, solar direction and orientation (ASTERGENERICMETADATA/SCENEINFORMATION) when present and
    within ±SCENE_ATTRIBUTE_RANGES degrees (else left out, logged)."""
    attrs = {}
    prefer = ("productmetadata.0",)
    for keys, name in (
        (("scene_center_lat", "scene_center_lon"), "SCENECENTER"),
        (("solar_azimuth", "solar_elevation"), "SOLARDIRECTION"),
        (("scene_orientation_angle",), "SCENEORIENTATIONANGLE"),
    ):
        value = meta.value(name, prefer)
        values = value if isinstance(value, tuple) else (value,)
        numbers = [n for n in map(_number, values) if n is not None]
        if value is None or len(numbers) != len(keys) or len(values) != len(keys):
            continue
        if all(math.isfinite(n) and abs(n) <= SCENE_ATTRIBUTE_RANGES[k] for k, n in zip(keys, numbers)):
            attrs.update(zip(keys, numbers))
        else:
            log.warning(
                "%s: %s %s is outside ±%s degrees: ignored",
                meta.source,
                name,
                value,
                "/".join(f"{SCENE_ATTRIBUTE_RANGES[k]:g}" for k in keys),
            )
    return attrs


@dataclass(frozen=True)
class MapProjection:
    """UTM grid of an AST_L1T subsystem: EPSG code and the centre of the upper-left pixel (m)."""

    epsg: int
    upper_left: tuple[float, float]  # (easting, northing) of the upper-left pixel centre
    lower_right: tuple[float, float]
    source: str

    def pixel_size(self, shape: tuple[int, int]) -> tuple[float, float]:
        """(x, y) pixel size in metres: corner distance / (n − 1), rounded to whole metres when within 1 %
        (then reading the corners as pixel centres or as n-pixel extents gives the same 15/30/90 m)."""
        sizes = (
            (self.lower_right[0] - self.upper_left[0]) / max(shape[1] - 1, 1),
            (self.upper_left[1] - self.lower_right[1]) / max(shape[0] - 1, 1),
        )
        return tuple(float(round(s)) if round(s) and abs(s - round(s)) < 0.01 * abs(s) else s for s in sizes)


def _projection_scope(sensor: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(prefer, exclude) of a subsystem's grid keys: its own attribute, then productmetadata.0, then the others
    except the other subsystems' (the VNIR UPPERLEFTM is the centre of a 15 m pixel, 37.5 m off the TIR one)."""
    own = f"productmetadata.{sensor[0].lower()}"
    return (own, "productmetadata.0"), tuple(a for a in SUBSYSTEM_ATTRIBUTES if a != own)


def missing_projection_keys(meta: Metadata, sensor: str = "TIR") -> tuple[str, ...]:
    """The keys of :data:`PROJECTION_KEYS` that are nowhere in the subsystem's metadata (empty: all there)."""
    prefer, exclude = _projection_scope(sensor)
    return tuple(k for k in PROJECTION_KEYS if meta.find(k, prefer, exclude=exclude)[0] is None)


def _utm_zone(meta: Metadata, node: OdlNode, where: str) -> int:
    """UTMZONENUMBER as a whole number with 1 ≤ |zone| ≤ 60 (negative: south), else SceneFileError."""
    zone = _number(node.value)
    if zone is None or not (math.isfinite(zone) and zone == int(zone) and 1 <= abs(zone) <= 60):
        raise SceneFileError(
            meta.source,
            f"zone {node.value!r} in {where} is not a UTM zone",
            variable="UTMZONENUMBER",
            expected="a whole number from 1 to 60, negative for the southern hemisphere",
        )
    return int(zone)


def map_projection(meta: Metadata, sensor: str = "TIR") -> MapProjection:
    """AST_L1T projection: UTMZONENUMBER and UPPERLEFTM/LOWERRIGHTM (northing, easting) of
    ``productmetadata.<t|v>`` (then productmetadata.0, then any metadata but the other subsystems'). Southern
    zone (EPSG 327zz) when the zone is negative or NORTHBOUNDINGCOORDINATE (else the upper-left northing) is
    negative; negative northings are then moved by the 10 000 km false northing (as LP DAAC's
    ASTERL1T_hdf2tif does). A zone outside 1…60 is an error naming it."""
    prefer, exclude = _projection_scope(sensor)
    zone_node, zone_at = meta.find("UTMZONENUMBER", prefer, exclude=exclude)
    ul, source = meta.find("UPPERLEFTM", prefer, exclude=exclude)
    lr, _ = meta.find("LOWERRIGHTM", prefer, exclude=exclude)
    corners = [n.value if n is not None else None for n in (ul, lr)]
    if zone_node is None or not all(
        isinstance(c, tuple) and len(c) == 2 and all(_finite(v) for v in c) for c in corners
    ):
        zone_value = None if zone_node is None else zone_node.value
        raise SceneFileError(
            meta.source,
            f"map projection incomplete (UTMZONENUMBER={zone_value}, UPPERLEFTM="
            f"{corners[0]}, LOWERRIGHTM={corners[1]})",
            variable=f"productmetadata.{sensor[0].lower()}",
            expected="an AST_L1T with UTMZONENUMBER and UPPERLEFTM/LOWERRIGHTM (northing, easting)",
        )
    zone = _utm_zone(meta, zone_node, zone_at)
    (uln, ule), (lrn, lre) = ((float(a), float(b)) for a, b in corners)
    north_bound = _number(meta.value("NORTHBOUNDINGCOORDINATE", ("coremetadata.0",)))
    south = zone < 0 or (north_bound < 0 if north_bound is not None else uln < 0)
    if south and uln < 0:
        uln, lrn = uln + 10_000_000.0, lrn + 10_000_000.0
    epsg = (32700 if south else 32600) + abs(zone)
    return MapProjection(epsg, (ule, uln), (lre, lrn), source)
