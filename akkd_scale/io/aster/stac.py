"""ASTER L1T as STAC items of cloud-optimised GeoTIFFs (the ``aster-l1t`` layout of stactools' ASTER package)
read into the same lazy dataset as the HDF reader, with range reads and no download of the images.

The item (a local JSON file or a URL) names one COG per subsystem: ``TIR`` (bands 10–14, uint16 DN,
nodata 0, 90 m), ``VNIR`` (bands 1, 2, 3N, uint8, 15 m) and ``xml``, the LP DAAC granule metadata.
:func:`read_stac_scene` reads the item, opens each COG's header with rioxarray (shape, CRS, transform,
tiling, band count and type: one or two range requests) and checks them; :func:`open_stac_dataset` builds
the dataset with the HDF reader's :func:`~akkd_scale.io.aster.backend.build_dataset`, so the variables,
attributes, DN → radiance → brightness temperature, NDVI, latitude/longitude and ``spatial_ref`` are the
reader's own. Only the pixel reads differ: each Dask chunk reads its window of the COG with rasterio
(GDAL range requests of the tiles it covers) under a bounded-timeout GDAL environment, so a failed read
names the URL; chunks are aligned to the COG tiles by default.

Where each value comes from (the first found):

- calibration: the asset's ``raster:bands`` ``scale``/``offset`` (L = scale·DN + offset), else the ASTER
  handbook UCC (L = (DN − 1)·UCC; VNIR by the gain in the XML's ``ASTERGains``, NOR without it), recorded
  in ``radiance.calibration`` / ``ndvi.comment`` (LP DAAC's AST_L1T XML carries no unit conversion
  coefficients);
- view zenith: ``view:off_nadir`` of the TIR asset or the item (stactools writes |TIR pointing angle|),
  else the XML's ``ASTERTIRPointingAngle``, through the reader's Earth-curvature conversion;
- sun: ``view:sun_elevation`` / ``view:sun_azimuth`` (``aster:sun_elevation`` when stactools stored a
  negative elevation there), else the XML's ``Solar_Elevation_Angle`` / ``Solar_Azimuth_Angle``;
- grid: ``proj:epsg`` (or ``proj:code``) and ``proj:transform`` of the asset, checked against the COG header
  (the header's when the item has none); acquisition time: the item's ``datetime``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr

from ...conventions import BANDS
from ...errors import SceneFileError
from ...sensors import ASTER_TIR
from ...sensors.aster import VNIR_UCC
from ..hdf4 import SdsInfo
from ..remote import Identity, Remote, gdal_options, identity, is_url, read_document, redact
from .backend import TirArray, build_dataset
from .metadata import MapProjection, iso_utc
from .scene import MAX_TIR_POINTING_DEG, TirScene
from .structure import PYHDF_UINT8, PYHDF_UINT16
from .vnir import VNIR_BANDS, NdviArray, VnirBand, VnirGrid, VnirReflectanceArray, grid_placement, reflectance_factors
from .windows import read_basic

log = logging.getLogger(__name__)

TIR_ASSET, VNIR_ASSET, XML_ASSET = "TIR", "VNIR", "xml"
#: Bands of the VNIR COG, in order (stactools writes ImageData1, 2, 3N).
VNIR_COG_BANDS = ("1", "2", "3N")
EXPECTED_ITEM = "a STAC item (JSON) of an ASTER L1T scene in the aster-l1t layout (assets TIR, VNIR, xml)"
EXPECTED_TIR = f"a cloud-optimised GeoTIFF of the {len(BANDS)} TIR bands 10-14 as uint16 DN (nodata 0)"
EXPECTED_VNIR = "a cloud-optimised GeoTIFF of VNIR bands 1, 2, 3N as uint8 DN"


@dataclass(frozen=True)
class CogAsset:
    """One COG of an item: ``key``, ``href`` (absolute; may carry a signature), image ``shape``, band
    ``count``, ``dtype``, ``epsg``, north-up ``transform`` (a, b, c, d, e, f), ``tiles`` (rows, columns of
    one block) and the object's ``identity``."""

    key: str
    href: str
    shape: tuple[int, int]
    count: int
    dtype: str
    epsg: int
    transform: tuple[float, ...]
    tiles: tuple[int, int]
    identity: Identity

    def projection(self) -> MapProjection:
        """The grid as the reader's MapProjection (pixel centres of the upper-left and lower-right pixels)."""
        a, _, c, _, e, f = self.transform
        ny, nx = self.shape
        upper_left = (c + a / 2, f + e / 2)
        lower_right = (upper_left[0] + (nx - 1) * a, upper_left[1] + (ny - 1) * e)
        return MapProjection(self.epsg, upper_left, lower_right, f"proj:transform of the STAC item's {self.key} asset")


@dataclass(frozen=True)
class StacScene:
    """A STAC item opened as a scene: where it is (``location`` as given), its ``item_id``, the reader's
    ``scene`` description, the TIR and VNIR assets, the GDAL options of the reads, and what identifies
    this version of it: ``digest`` (sha256 of the item's bytes and its assets' identities) and ``size``
    (the item's bytes)."""

    location: str
    item_id: str
    scene: TirScene
    tir: CogAsset
    vnir: CogAsset | None
    gdal: dict
    digest: str
    size: int

    @property
    def tiles(self) -> tuple[int, int]:
        return self.tir.tiles


#: The path of an item in a STAC API (OGC API - Features): ``…/collections/<collection>/items/<item id>``.
API_ITEM_PATH = re.compile(r"/collections/[^/]+/items/[^/]+/?$")


def is_stac_item(location) -> bool:
    """Whether an input names a STAC item (a ``.json`` file or URL, or an item's URL in a STAC API:
    ``…/collections/<id>/items/<id>``) rather than an HDF file."""
    path = str(location).split("?", 1)[0].split("#", 1)[0]
    return path.lower().endswith(".json") or (is_url(path) and bool(API_ITEM_PATH.search(path)))


def _item_error(location, problem, variable=None, expected=EXPECTED_ITEM) -> SceneFileError:
    return SceneFileError(redact(location), problem, variable=variable, expected=expected)


def _absolute_href(href: str, location: str) -> str:
    """An asset href made absolute against the item's location (relative hrefs are common in static catalogs)."""
    if is_url(href) or Path(href).is_absolute():
        return href
    if is_url(location):
        from urllib.parse import urljoin

        return urljoin(location, href)
    return str((Path(location).expanduser().resolve().parent / href).resolve())


def _gdal_error(exc: BaseException) -> str:
    """The useful part of a GDAL/rasterio error (and the GDAL errors it was raised from): the HTTP status when
    GDAL reports one."""
    messages, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        messages.append(" ".join(str(exc).split()))
        exc = exc.__cause__ or exc.__context__
    text = " ".join(m for m in messages if m)
    status = re.search(r"HTTP (?:response )?code:? ?(\d{3})", text)
    if status:
        code = int(status.group(1))
        meaning = {403: "access denied", 404: "no such object"}.get(code, "")
        return f"HTTP {code}" + (f": {meaning}" if meaning else "")
    if re.search(r"timed? ?out|Timeout", text, re.IGNORECASE):
        return "no answer in time (endpoint unreachable or stalled)"
    return messages[-1] if messages and messages[-1] else text or "unknown GDAL error"


def _http_status(href: str, timeout: float) -> str | None:
    """Why an http(s) object cannot be read, asked with a one-byte range request after GDAL failed (its
    range-read errors do not carry the HTTP status); None when the object answers or is not http(s)."""
    import urllib.error
    import urllib.request

    if not href.lower().startswith(("http://", "https://")):
        return None
    request = urllib.request.Request(href, headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        meaning = {401: "access denied", 403: "access denied", 404: "no such object"}.get(exc.code, exc.reason)
        return f"HTTP {exc.code}: {meaning}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the server does not answer ({' '.join(str(getattr(exc, 'reason', exc)).split())})"


def _asset_identity(href: str, remote: Remote, expected: str) -> Identity:
    """The asset object's identity: size and ETag/Last-Modified for URLs, size and mtime for local files."""
    if is_url(href):
        return identity(href, remote, expected)
    path = Path(href)
    if not path.is_file():
        raise SceneFileError(str(path), "file does not exist", expected=expected)
    info = path.stat()
    return Identity(info.st_size, f"mtime={info.st_mtime_ns}")


def _open_cog(key: str, href: str, asset: dict, remote: Remote, options: dict, expected: str) -> CogAsset:
    """Open the header of an asset's COG with rioxarray (no pixel read) and describe it."""
    import rasterio
    import rioxarray

    found = _asset_identity(href, remote, expected)
    try:
        with rasterio.Env(**options):
            header = rioxarray.open_rasterio(href, chunks=None, cache=False, lock=False, parse_coordinates=False)
            try:
                count, ny, nx = (int(n) for n in header.shape)
                dtype = str(header.dtype)
                crs = header.rio.crs
                transform = tuple(header.rio.transform())[:6]
                blocks = header.encoding.get("preferred_chunks", {})
                tiles = (int(blocks.get("y", ny)), int(blocks.get("x", nx)))
            finally:
                header.close()
    except SceneFileError:
        raise
    except Exception as exc:
        raise SceneFileError(
            redact(href), f"cannot open the {key} COG ({_gdal_error(exc)})", variable=key, expected=expected
        ) from None
    epsg = _asset_epsg(asset) or (crs.to_epsg() if crs is not None else None)
    if epsg is None:
        raise SceneFileError(
            redact(href),
            "no EPSG code in the item (proj:epsg) or the COG",
            variable=key,
            expected="a UTM grid (ASTER L1T)",
        )
    if crs is not None and crs.to_epsg() not in (None, epsg):
        raise SceneFileError(
            redact(href),
            f"item proj:epsg {epsg} but the COG is in EPSG:{crs.to_epsg()}",
            variable=key,
            expected="the item's projection equal to the COG's",
        )
    given = asset.get("proj:transform")
    if given is not None and not np.allclose(np.asarray(given[:6], float), transform, rtol=0, atol=1e-6):
        raise SceneFileError(
            redact(href),
            f"item proj:transform {list(given[:6])} but the COG has {list(transform)}",
            variable=key,
            expected="the item's grid equal to the COG's",
        )
    a, b, _, d, e, _ = transform
    if b != 0 or d != 0 or a <= 0 or e >= 0:
        raise SceneFileError(
            redact(href),
            f"grid transform {list(transform)} is rotated or not north-up",
            variable=key,
            expected="a north-up UTM grid (ASTER L1T)",
        )
    return CogAsset(key, href, (ny, nx), count, dtype, int(epsg), transform, tiles, found)


def _asset_epsg(asset: dict) -> int | None:
    if asset.get("proj:epsg") is not None:
        return int(asset["proj:epsg"])
    code = str(asset.get("proj:code") or "")
    return int(code.split(":")[1]) if code.upper().startswith("EPSG:") and code.split(":")[1].isdigit() else None


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class _Xml:
    """The granule XML's product-specific attributes (PSAName → PSAValue), read only when needed."""

    def __init__(self, href: str | None, remote: Remote):
        self.href, self.remote = href, remote

    @functools.cached_property
    def values(self) -> dict[str, str]:
        if self.href is None:
            return {}
        try:
            root = ElementTree.fromstring(read_document(self.href, self.remote, "the granule's XML metadata"))
        except (SceneFileError, ElementTree.ParseError) as exc:
            log.warning("%s: XML metadata unusable (%s)", redact(self.href), exc)
            return {}
        return {
            (psa.findtext("PSAName") or "").strip(): (psa.findtext("PSAValue") or "").strip()
            for psa in root.iter("PSA")
        }

    def number(self, name: str) -> float | None:
        return _number(self.values.get(name))

    def gains(self) -> dict[str, str]:
        """Gain setting per band from ``ASTERGains`` (pairs such as ``01 HGH``, ``3N NOR``)."""
        text = self.values.get("ASTERGains", "")
        pairs = re.findall(r"\b(0?[1-9]|3N|3B)\b\W+(HGH|NOR|LO1|LO2|LOW|OFF)\b", text.upper())
        return {band.lstrip("0") or band: gain for band, gain in pairs}


def _coefficients(
    asset: dict, bands: tuple[str, ...], handbook: tuple[float, ...], key: str, fallback_note: str = ""
) -> tuple[tuple, tuple, str]:
    """(gains, offsets, source) of an asset's bands: ``raster:bands`` scale/offset when every band has a
    scale, else the handbook UCC with L = (DN − 1)·UCC (logged as a warning, as the HDF reader does)."""
    raster = asset.get("raster:bands") or []
    scales = [_number(b.get("scale")) for b in raster[: len(bands)]]
    if len(scales) == len(bands) and all(s is not None for s in scales) and any(s != 1 for s in scales):
        offsets = tuple(_number(b.get("offset")) or 0.0 for b in raster[: len(bands)])
        units = sorted({str(b["unit"]) for b in raster[: len(bands)] if b.get("unit")})
        return (
            tuple(scales),
            offsets,
            f"raster:bands scale/offset of the STAC item's {key} asset" + (f" ({', '.join(units)})" if units else ""),
        )
    _warn_once(
        f"no raster:bands scale/offset for the {key} bands in STAC items: using the ASTER handbook UCC{fallback_note}"
    )
    return (
        handbook,
        tuple(-u for u in handbook),
        f"ASTER handbook UCC, L = (DN - 1) * UCC (not in the STAC item){fallback_note}",
    )


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log a warning the first time this process sees it (real catalogs repeat it for every item)."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def _pointing(item: dict, tir_asset: dict, xml: _Xml) -> tuple[float, str]:
    for where, source in (
        (tir_asset, "view:off_nadir of the STAC item's TIR asset"),
        (item["properties"], "view:off_nadir of the STAC item"),
    ):
        value = _number(where.get("view:off_nadir"))
        if value is not None:
            return value, source
    value = xml.number("ASTERTIRPointingAngle")
    if value is not None:
        return value, "ASTERTIRPointingAngle of the granule's XML metadata"
    return math.nan, "no view:off_nadir in the STAC item and no ASTERTIRPointingAngle in its XML metadata"


def _sun(properties: dict, xml: _Xml) -> dict:
    """solar_azimuth / solar_elevation (deg) of the item, else of the XML metadata."""
    elevation = _number(properties.get("aster:sun_elevation"))
    if elevation is None:
        elevation = _number(properties.get("view:sun_elevation"))
    azimuth = _number(properties.get("view:sun_azimuth"))
    if elevation is None:
        elevation = xml.number("Solar_Elevation_Angle")
    if azimuth is None:
        azimuth = xml.number("Solar_Azimuth_Angle")
    return {k: v for k, v in (("solar_azimuth", azimuth), ("solar_elevation", elevation)) if v is not None}


def _bands(count: int, shape, names, type_code: int) -> tuple[SdsInfo, ...]:
    """Band descriptors of a COG: ``index`` is the 1-based GeoTIFF band number."""
    return tuple(
        SdsInfo(i + 1, f"ImageData{name}", tuple(shape), type_code, ()) for i, name in enumerate(names[:count])
    )


def _vnir(
    item: dict, location: str, remote: Remote, options: dict, tir: CogAsset, solar_zenith: float, when: str, xml: _Xml
) -> tuple[CogAsset | None, VnirGrid | None, str]:
    """The VNIR COG placed on the TIR grid with its calibration, or (None, None, why not)."""
    asset = item["assets"].get(VNIR_ASSET)
    if asset is None:
        return None, None, "no VNIR asset in the STAC item (night scene or TIR-only): NDVI is NaN"
    if math.isnan(solar_zenith):
        return None, None, "no sun elevation in the STAC item or its XML metadata: NDVI is NaN"
    href = remote.signed(_absolute_href(asset["href"], location))
    cog = _open_cog(VNIR_ASSET, href, asset, remote, options, EXPECTED_VNIR)
    if cog.count != len(VNIR_COG_BANDS) or cog.dtype != "uint8":
        raise SceneFileError(
            redact(href), f"{cog.count} band(s) of {cog.dtype}", variable=VNIR_ASSET, expected=EXPECTED_VNIR
        )
    if cog.epsg != tir.epsg:
        raise SceneFileError(
            redact(href),
            f"EPSG:{cog.epsg} but the TIR asset is in EPSG:{tir.epsg}",
            variable=VNIR_ASSET,
            expected="VNIR and TIR on one UTM zone",
        )
    gains = {band: xml.gains().get(band, "NOR") for band in VNIR_BANDS}
    if any(g not in VNIR_UCC[b] for b, g in gains.items()):
        return None, None, f"VNIR gain {gains} (band off or unknown setting): NDVI is NaN"
    picked = [VNIR_COG_BANDS.index(b) for b in VNIR_BANDS]
    raster = asset.get("raster:bands") or []
    chosen = {"raster:bands": [raster[i] for i in picked]} if len(raster) == len(VNIR_COG_BANDS) else {}
    note = "" if xml.gains() else " (gain NOR assumed: no ASTERGains in the XML metadata)"
    gain, offset, source = _coefficients(
        chosen, VNIR_BANDS, tuple(VNIR_UCC[b][g] for b, g in gains.items()), VNIR_ASSET, note
    )
    placement = grid_placement(cog.projection(), cog.shape, tir.projection(), tir.shape)
    if placement is None:
        log.warning("%s: the VNIR grid does not nest in the TIR grid: NDVI is NaN", redact(href))
        return None, None, "VNIR grid (proj:transform) does not nest in the TIR grid: NDVI is NaN"
    factor, origin = placement
    infos = _bands(cog.count, cog.shape, VNIR_COG_BANDS, PYHDF_UINT8)
    band1, band1_note = _band1(infos[VNIR_COG_BANDS.index("1")], raster, xml, solar_zenith, when)
    grid = VnirGrid(
        (infos[picked[0]], infos[picked[1]]),
        gain,
        offset,
        source,
        factor,
        origin,
        reflectance_factors(solar_zenith, when),
        band1,
        band1_note,
    )
    return (
        cog,
        grid,
        (
            f"VNIR bands 2 and 3N of the STAC item's VNIR COG placed by the assets' proj:transform "
            f"({factor} x {factor} VNIR pixels per TIR pixel), calibration: {source}"
        ),
    )


def _band1(info: SdsInfo, raster: list, xml: _Xml, solar_zenith: float, when: str) -> tuple[VnirBand | None, str]:
    """VNIR band 1 of the COG (for ``vnir_reflectance``, the cloud tests' green band), calibrated as bands 2/3N:
    its ``raster:bands`` scale/offset, else the handbook UCC of its ``ASTERGains`` setting (NOR without it)."""
    setting = xml.gains().get("1", "NOR")
    if setting not in VNIR_UCC["1"]:
        return None, f"band 1 unusable (gain {setting}): its reflectance is NaN"
    chosen = {"raster:bands": raster[:1]} if len(raster) == len(VNIR_COG_BANDS) else {}
    (gain,), (offset,), _ = _coefficients(chosen, ("1",), (VNIR_UCC["1"][setting],), VNIR_ASSET)
    (factor,) = reflectance_factors(solar_zenith, when, ("1",))
    return VnirBand(info, gain, offset, factor), "band 1 with bands 2 and 3N"


def read_stac_scene(location, remote: Remote | None = None) -> StacScene:
    """Read a STAC item and describe it as a scene, opening only the COG headers; errors name the item or
    asset URL and what was expected (no TIR asset, wrong band count or type, unreachable, HTTP 403/404)."""
    import pystac

    remote = remote or Remote.of()
    location = str(location)
    data = read_document(location, remote, EXPECTED_ITEM)
    try:
        item = json.loads(data)
        moment = pystac.Item.from_dict(item, preserve_dict=True).datetime  # the STAC item structure, checked
    except (ValueError, KeyError, TypeError, pystac.STACError, pystac.STACTypeError) as exc:
        raise _item_error(location, f"not a STAC item ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    assets = item.get("assets") or {}
    if TIR_ASSET not in assets:
        raise _item_error(
            location,
            f"no {TIR_ASSET} asset (assets: {', '.join(sorted(assets)) or 'none'})",
            variable="assets",
            expected=f"{EXPECTED_ITEM}, with a TIR COG asset ({EXPECTED_TIR})",
        )
    tir_href = remote.signed(_absolute_href(assets[TIR_ASSET]["href"], location))
    options = gdal_options(tir_href, remote)
    tir = _open_cog(TIR_ASSET, tir_href, assets[TIR_ASSET], remote, options, EXPECTED_TIR)
    if tir.count != len(BANDS) or tir.dtype != "uint16":
        raise SceneFileError(
            redact(tir_href), f"{tir.count} band(s) of {tir.dtype}", variable=TIR_ASSET, expected=EXPECTED_TIR
        )
    xml_href = assets.get(XML_ASSET, {}).get("href")
    xml = _Xml(remote.signed(_absolute_href(xml_href, location)) if xml_href else None, remote)
    properties = item.get("properties") or {}
    if moment is None:
        raise _item_error(
            location, "no datetime", variable="properties.datetime", expected="the acquisition time of the scene"
        )
    when = iso_utc(moment)
    pointing, pointing_source = _pointing(item, assets[TIR_ASSET], xml)
    if not math.isnan(pointing) and not abs(pointing) <= MAX_TIR_POINTING_DEG:
        raise _item_error(
            location,
            f"TIR pointing angle {pointing}° ({pointing_source})",
            variable="view:off_nadir",
            expected=f"a finite angle within ±{MAX_TIR_POINTING_DEG}° (ASTER TIR cross-track pointing)",
        )
    if math.isnan(pointing):
        log.warning("%s: TIR pointing angle unavailable (%s): view_zenith is NaN", redact(location), pointing_source)
    sun = _sun(properties, xml)
    solar_zenith = 90.0 - sun["solar_elevation"] if "solar_elevation" in sun else math.nan
    gain, offset, source = _coefficients(
        assets[TIR_ASSET], tuple(b[1:] for b in BANDS), tuple(b.ucc for b in ASTER_TIR.bands), TIR_ASSET
    )
    if not all(np.isfinite(g) and g > 0 for g in gain):
        raise SceneFileError(
            redact(tir_href),
            f"raster:bands scales {list(gain)}",
            variable="raster:bands",
            expected="finite positive radiance per DN for every TIR band",
        )
    vnir_cog, vnir, vnir_note = _vnir(item, location, remote, options, tir, solar_zenith, when, xml)
    attrs = {"product": "AST_L1T", "processing_level": "1T", **_centre(item), **sun}
    scene = TirScene(
        redact(location),
        "1T",
        tir.shape,
        _bands(tir.count, tir.shape, [b[1:] for b in BANDS], PYHDF_UINT16),
        None,
        None,
        (0.0, 0.0),
        (0.0, 0.0),
        tir.projection(),
        gain,
        offset,
        source,
        pointing,
        pointing_source,
        solar_zenith,
        when,
        vnir,
        vnir_note,
        attrs,
    )
    digest = _digest(data, [cog for cog in (tir, vnir_cog) if cog is not None])
    return StacScene(
        location, str(item.get("id") or Path(location).stem), scene, tir, vnir_cog, options, digest, len(data)
    )


def _digest(item_bytes: bytes, assets: list[CogAsset]) -> str:
    """sha256 of the item's bytes and its COG assets' identities (size, ETag/Last-Modified): a COG scene is
    never downloaded whole, so its images are identified by their objects' versions, not hashed."""
    identities = {cog.key: [cog.identity.size, cog.identity.tag] for cog in assets}
    return hashlib.sha256(item_bytes + b"\n" + json.dumps(identities, sort_keys=True).encode()).hexdigest()


def current_digest(stac: StacScene, remote: Remote) -> str:
    """The digest the scene has now (the item read again, its assets' identities asked again): differs from
    ``stac.digest`` when the item or an image changed."""
    data = read_document(stac.location, remote, EXPECTED_ITEM)
    assets = [
        replace(cog, identity=_asset_identity(cog.href, remote, EXPECTED_TIR))
        for cog in (stac.tir, stac.vnir)
        if cog is not None
    ]
    return _digest(data, assets)


def _centre(item: dict) -> dict:
    """Scene centre (deg) from the item's bbox."""
    bbox = item.get("bbox") or []
    if len(bbox) < 4 or any(_number(v) is None for v in bbox):
        return {}
    west, south, east, north = (float(v) for v in (bbox[:4] if len(bbox) == 4 else bbox[:2] + bbox[3:5]))
    return {"scene_center_lat": (south + north) / 2, "scene_center_lon": (west + east) / 2}


def _read_cog(href: str, key: str, options: dict, indexes: list[int], window: tuple[slice, slice], expected: str):
    """DN of ``indexes`` (1-based bands) in a (line, pixel) window of positive-step slices, one array per band."""
    import rasterio
    from rasterio.windows import Window

    rows, cols = window
    try:
        with rasterio.Env(**options), rasterio.open(href) as src:
            block = src.read(
                indexes, window=Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
            )
    except Exception as exc:
        reason = _http_status(href, float(options.get("GDAL_HTTP_TIMEOUT", 30))) or _gdal_error(exc)
        raise SceneFileError(
            redact(href),
            f"reading lines {rows.start}-{rows.stop - 1}, pixels {cols.start}-{cols.stop - 1} failed ({reason})",
            variable=key,
            expected=expected,
        ) from None
    return [block[i][:: rows.step or 1, :: cols.step or 1] for i in range(len(indexes))]


class CogTirArray(TirArray):
    """The reader's TIR array reading DN windows from the TIR COG (range reads per chunk)."""

    def __init__(self, scene: TirScene, quantity: str, *, href: str, options: dict):
        super().__init__(scene, quantity)
        self.href, self.options = href, options

    def _read(self, selected: list[int], spatial: tuple) -> list[np.ndarray]:
        indexes = [self.bands[i].index for i in selected]
        return read_basic(
            lambda window: _read_cog(self.href, TIR_ASSET, self.options, indexes, window, EXPECTED_TIR),
            spatial,
            self.shape[1:],
            len(indexes),
        )


class _CogVnirRead:
    """The VNIR arrays' pixel reads from the VNIR COG (bands 1, 2 and 3N, by GeoTIFF band number)."""

    def __init__(self, path: str, vnir: VnirGrid | None, shape, *, href: str | None, options: dict):
        super().__init__(path, vnir, shape)
        self.href, self.options = href, options

    def _read(self, infos, window: tuple[slice, slice]) -> list[np.ndarray]:
        return _read_cog(self.href, VNIR_ASSET, self.options, [b.index for b in infos], window, EXPECTED_VNIR)


class CogNdviArray(_CogVnirRead, NdviArray):
    """The reader's NDVI array reading VNIR bands 2 and 3N from the VNIR COG."""


class CogVnirReflectanceArray(_CogVnirRead, VnirReflectanceArray):
    """The reader's ``vnir_reflectance`` array reading VNIR bands 1, 2 and 3N from the VNIR COG."""


def tile_chunks(stac: StacScene, chunks: dict[str, int]) -> dict[str, int]:
    """``chunks`` rounded up to whole COG tiles (at most the image), so no tile is read by two chunks."""
    ty, tx = stac.tiles
    ny, nx = stac.scene.shape
    return {"y": min(ny, -(-int(chunks["y"]) // ty) * ty), "x": min(nx, -(-int(chunks["x"]) // tx) * tx)}


def open_stac_dataset(stac: StacScene, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """The scene's lazy dataset (the HDF reader's variables and attributes), Dask-chunked by ``chunks``
    (default: the COG tiles); the band dimension is one chunk."""
    scene = stac.scene
    tiles = {"y": stac.tiles[0], "x": stac.tiles[1]}
    preferred = {"band": len(scene.bands), **tiles}
    tir_array = functools.partial(CogTirArray, href=stac.tir.href, options=stac.gdal)
    vnir_href = stac.vnir.href if stac.vnir else None
    ndvi_array = functools.partial(CogNdviArray, href=vnir_href, options=stac.gdal)
    reflectance_array = functools.partial(CogVnirReflectanceArray, href=vnir_href, options=stac.gdal)
    ds = build_dataset(
        scene, tir_array=tir_array, ndvi_array=ndvi_array, reflectance_array=reflectance_array, preferred=preferred
    )
    return ds.chunk({"band": -1, **(chunks or tiles)}, token=stac.digest)


def open_aster_stac(
    location, chunks: dict[str, int] | None = None, storage_options=None, sign_assets=None
) -> xr.Dataset:
    """Open a STAC item of an ASTER L1T scene (``aster-l1t`` layout) lazily, like ``open_aster_l1b`` opens an
    HDF file: the same variables, read by range requests per chunk (default chunks: the COG tiles).
    ``sign_assets``: a function (or ``"module:function"``) that signs asset URLs, for catalogues such as
    Planetary Computer whose assets need a token (``planetary_computer:sign``)."""
    return open_stac_dataset(read_stac_scene(location, Remote.of(storage_options, sign_assets=sign_assets)), chunks)
