"""Export result stores to (cloud-optimised) GeoTIFF: one file per scene and variable, with rioxarray.

Each scene group is reprojected with ``rio.reproject`` — from its ``spatial_ref`` coordinate (L1T:
projected CRS and transform; L1B: ground control points), or, for stores without ``spatial_ref``, from
ground control points taken from its ``latitude``/``longitude`` coordinates — to the UTM zone of the
scene centre (default) or any CRS. Everything is checked before anything is written — every scene complete
with all its chunks (:func:`~akkd_scale.pipeline.store.open_scene`), every variable there, every output
within :data:`MAX_EXPORT_BYTES` — and files are written under temporary names and renamed only when all of
them succeeded: an error (also a full disk) leaves ``out_dir`` as it was. The store may be a URL
(``s3://…``, with ``storage_options``), and so may ``out_dir``: the files are then written locally as above and
uploaded once all succeeded, one object each.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError, OutputError, describe_os_error
from ..io.aster.geolocation import lattice_gcps, unwrap_longitude
from ..io.remote import TIMEOUT_S, Remote, is_url, publish
from .store import STATUS, locate_store, open_scene, scene_groups

log = logging.getLogger(__name__)

DEFAULT_VARIABLES = ("lst", "emissivity", "qc")
DRIVERS = {"cog": "COG", "geotiff": "GTiff"}
#: Resolution (CRS units) used for projected target CRSs when none is given: ASTER TIR's 90 m.
DEFAULT_RESOLUTION_M = 90.0
#: Nodata of unsigned integer variables (qc uses bits 1…32; 255 never occurs as a flag combination here);
#: signed ones (land_cover) use -1, which already means "unknown".
INTEGER_NODATA = 255
SIGNED_NODATA = -1
GCP_POINTS = 11
#: Largest output export makes, in bytes of one variable on the target grid (rioxarray reprojects in memory):
#: 4 GiB, e.g. the five emissivity bands of a 700 × 830 scene down to about 5 m pixels.
MAX_EXPORT_BYTES = 4 * 2**30


def utm_epsg(latitude: float, longitude: float) -> int:
    """EPSG code of the WGS 84 UTM zone containing (latitude, longitude)."""
    zone = int((((longitude + 180.0) % 360.0) // 6) + 1)
    return (32600 if latitude >= 0 else 32700) + min(zone, 60)


def _gcps_from_coordinates(ds: xr.Dataset) -> list:
    """11 × 11 ground control points from the ``latitude``/``longitude`` coordinates (pixel centres)."""
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    rows = np.unique(np.linspace(0, ny - 1, GCP_POINTS).round().astype(int))
    cols = np.unique(np.linspace(0, nx - 1, GCP_POINTS).round().astype(int))
    lat = ds["latitude"].values[np.ix_(rows, cols)]
    lon = unwrap_longitude(ds["longitude"].values[np.ix_(rows, cols)])  # continuous across ±180°
    return lattice_gcps(lat, lon, rows, cols)


def georeferenced(ds: xr.Dataset, store, group: str) -> xr.Dataset:
    """``ds`` with a usable ``spatial_ref`` (as stored, or GCPs from latitude/longitude)."""
    import rioxarray  # noqa: F401  (registers .rio)

    # open_zarr leaves the grid-mapping variable a data variable (rioxarray's default name: spatial_ref)
    mappings = {v.attrs.get("grid_mapping") for v in ds.data_vars.values()} | {"spatial_ref"}
    ds = ds.set_coords(sorted(str(m) for m in mappings & set(ds.data_vars)))
    if ds.rio.crs is not None and (
        ds.rio.get_gcps()
        or ("x" in ds.coords and "y" in ds.coords)
        or "GeoTransform" in ds.coords.get("spatial_ref", xr.DataArray()).attrs
    ):
        return ds
    if "latitude" in ds.variables and "longitude" in ds.variables:
        log.info("%s/%s: no spatial_ref; ground control points from latitude/longitude", store, group)
        return ds.rio.write_gcps(_gcps_from_coordinates(ds), "EPSG:4326")
    raise InputError(
        store,
        "no georeferencing: neither a spatial_ref coordinate nor latitude/longitude",
        variable=group,
        expected="a result store of georeferenced scenes",
    )


def scene_center(ds: xr.Dataset) -> tuple[float, float]:
    """(latitude, longitude) of the scene's centre pixel."""
    from pyproj import Transformer

    cy, cx = ds.sizes["y"] // 2, ds.sizes["x"] // 2
    if "latitude" in ds.variables and "longitude" in ds.variables:
        lat, lon = float(ds["latitude"][cy, cx]), float(ds["longitude"][cy, cx])
        if np.isfinite(lat + lon):
            return lat, lon
    gcps = ds.rio.get_gcps()
    if gcps:
        point = min(gcps, key=lambda g: (g.row - cy) ** 2 + (g.col - cx) ** 2)
        return Transformer.from_crs(ds.rio.crs, 4326, always_xy=True).transform(point.x, point.y)[::-1]
    x, y = ds.rio.transform() @ (cx + 0.5, cy + 0.5)
    return Transformer.from_crs(ds.rio.crs, 4326, always_xy=True).transform(x, y)[::-1]


def target_crs(ds: xr.Dataset, crs: str):
    """``"utm"`` → the scene centre's UTM zone; anything else as rasterio understands it (EPSG:…, WKT)."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if str(crs).lower() == "utm":
        return CRS.from_epsg(utm_epsg(*scene_center(ds)))
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(
            "--crs", f"{crs!r} is not a CRS ({exc})", variable="crs", expected='"utm" or a CRS such as "EPSG:32611"'
        ) from exc


def _tags(da: xr.DataArray, attrs: dict, store, group: str) -> dict:
    """GeoTIFF metadata: units, scale/offset, CF names, flags, and the scene's provenance."""
    tags = {
        "units": da.attrs.get("units", ""),
        "scale_factor": 1.0,
        "add_offset": 0.0,
        "long_name": str(da.attrs.get("long_name", da.name)),
        "source_store": str(store) if store.remote else str(Path(store.url).resolve()),
        "source_group": group,
        "variable": str(da.name),
    }
    for key in ("standard_name", "flag_masks", "flag_values", "flag_meanings"):
        if key in da.attrs:
            value = da.attrs[key]
            numbers = key in ("flag_masks", "flag_values")
            tags[key] = " ".join(str(v) for v in np.atleast_1d(value)) if numbers else str(value)
    for key, value in attrs.items():
        if key != STATUS and isinstance(value, (str, int, float)):
            tags[f"akkd_{key}"] = str(value)
    return tags


def _resolution(crs, resolution: float | None) -> float | None:
    """The pixel size used: as given, else 90 for projected CRSs, else None (GDAL's choice)."""
    return DEFAULT_RESOLUTION_M if resolution is None and crs.is_projected else resolution


def _on_grid(da: xr.DataArray, crs, resolution: float | None) -> bool:
    """An L1T scene to its own grid: no resampling at all."""
    return not da.rio.get_gcps() and da.rio.crs == crs and resolution in (None, abs(da.rio.resolution()[0]))


def _output_grid(da: xr.DataArray, crs, resolution: float | None) -> tuple[int, int, float]:
    """(width, height, pixel size) of ``da`` on the target grid of :func:`reproject_variable`, computed without
    allocating it (GDAL's default transform at its own resolution, rescaled to ``resolution``)."""
    from rasterio.warp import calculate_default_transform

    resolution = _resolution(crs, resolution)
    if _on_grid(da, crs, resolution):
        return da.rio.width, da.rio.height, abs(da.rio.resolution()[0])
    gcps = da.rio.get_gcps()
    transform, width, height = calculate_default_transform(
        da.rio.crs,
        crs,
        da.rio.width,
        da.rio.height,
        *(() if gcps else da.rio.bounds()),
        **({"gcps": gcps} if gcps else {}),
    )
    if resolution is None:
        return width, height, abs(transform.a)
    return (
        math.ceil(width * abs(transform.a) / resolution),
        math.ceil(height * abs(transform.e) / resolution),
        resolution,
    )


def _size(nbytes: float) -> str:
    """Bytes as text with a binary prefix: ``23.9 PiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _check_size(ds: xr.Dataset, names, crs, resolution: float | None, store, group: str) -> None:
    """InputError (with the numbers and what to change) when one of the variables ``names`` on the target grid
    would take more than :data:`MAX_EXPORT_BYTES` (named: the largest, so the suggested resolution fits all)."""
    sizes = []
    for name in names:
        width, height, pixel = _output_grid(ds[name], crs, resolution)
        bands = ds[name].sizes.get("band", 1)
        sizes.append((width * height * bands * ds[name].dtype.itemsize, name, width, height, pixel, bands))
    nbytes, name, width, height, pixel, bands = max(sizes)
    if nbytes > MAX_EXPORT_BYTES:
        units = "degrees" if crs.is_geographic else (crs.linear_units or "CRS units")
        at = f"resolution {resolution:g}" if resolution is not None else f"its default resolution {pixel:g}"
        coarser = pixel * math.sqrt(nbytes / MAX_EXPORT_BYTES)
        raise InputError(
            store,
            f"{name}: the output grid at {at} would be {width} x {height} pixels x {bands} "
            f"band(s) = {_size(nbytes)} in memory",
            variable=group,
            expected=f"at most {_size(MAX_EXPORT_BYTES)} per file: a coarser --resolution (at least "
            f"{coarser:.3g} {units}) or another --crs",
        )


def _write_geotiff(da: xr.DataArray, partial: Path, final: Path, driver: str, tags: dict, **options) -> None:
    """Write ``da`` to ``partial`` (to be renamed ``final``): encoded by GDAL in memory, then written with Python's
    I/O, so a full disk or a read-only folder is one OSError naming ``final`` and its errno (written to disk by
    GDAL it is "TIFFAppendToStrip: Write error" and libtiff lines on stderr)."""
    from rasterio._err import CPLE_BaseError  # GDAL's errors share no base with RasterioError
    from rasterio.errors import RasterioError
    from rasterio.io import MemoryFile

    try:
        with MemoryFile() as memory:
            da.rio.to_raster(memory.name, driver=driver, tags=tags, **options)
            data = memory.read()
    except (RasterioError, CPLE_BaseError) as exc:
        raise OutputError(f"{final}: cannot encode the GeoTIFF: {' '.join(str(exc).split())}") from exc
    try:
        partial.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"{final}: cannot write the {_size(len(data))} GeoTIFF: {describe_os_error(exc)}") from None


def reproject_variable(ds: xr.Dataset, name: str, crs, resolution: float | None) -> xr.DataArray:
    """One variable on the target grid: bilinear for floating point, nearest for integers (flags)."""
    from rasterio.enums import Resampling

    da = ds[name]
    if "band" in da.dims:
        da = da.transpose("band", "y", "x")
    da = da.drop_vars([c for c in da.coords if c not in ("band", "x", "y", da.rio.grid_mapping)])
    attrs = dict(da.attrs)
    integer = np.issubdtype(da.dtype, np.integer)
    nodata = (
        (
            SIGNED_NODATA
            if np.issubdtype(da.dtype, np.signedinteger)
            else INTEGER_NODATA
            if da.dtype == np.uint8
            else np.iinfo(da.dtype).max
        )
        if integer
        else np.nan
    )  # uint16 cloud_tests: 65535 (bits reach 2048)
    da = da.copy(data=da.values)
    da.encoding = {}
    da = da.rio.write_nodata(nodata, encoded=False)
    resolution = _resolution(crs, resolution)
    if _on_grid(da, crs, resolution):
        out = da
    else:
        out = da.rio.reproject(
            crs, resolution=resolution, nodata=nodata, resampling=Resampling.nearest if integer else Resampling.bilinear
        )
    out.attrs = {
        **{k: v for k, v in attrs.items() if k in ("units", "long_name", "standard_name")},
        "_FillValue": nodata,
    }
    if "band" in out.dims:
        out.attrs["long_name"] = tuple(f"{name} {band}" for band in out["band"].values)
    return out


def export_store(
    store,
    out_dir,
    *,
    variables=DEFAULT_VARIABLES,
    crs: str = "utm",
    resolution: float | None = None,
    fmt: str = "cog",
    scenes=None,
    storage_options=None,
    timeout: float = TIMEOUT_S,
) -> list:
    """Write ``<scene>_<variable>.tif`` for every complete scene group (or ``scenes``) of ``store``
    into ``out_dir`` and return the paths (URLs when ``out_dir`` is one). ``crs``: ``"utm"`` (scene centre's
    zone) or a CRS; ``resolution`` in CRS units (default 90 for projected CRSs); ``fmt``: ``"cog"`` or
    ``"geotiff"``. ``storage_options``/``timeout``: how a store or ``out_dir`` by URL is reached."""
    if fmt not in DRIVERS:
        raise InputError("--format", f"unknown format {fmt!r}", variable="format", expected=" or ".join(DRIVERS))
    if resolution is not None and not resolution > 0:
        raise InputError(
            "--resolution",
            f"resolution {resolution}",
            variable="resolution",
            expected="a positive pixel size in CRS units",
        )
    store = locate_store(store, storage_options, timeout)
    variables = tuple(variables)
    if not variables:
        raise InputError("--variables", "no variables given", variable="variables", expected="e.g. lst,emissivity,qc")
    groups = scene_groups(store)
    chosen = list(scenes) if scenes else groups
    if not chosen:
        raise InputError(store, "the store has no scene groups", expected="a store written by `akkd-scale run`")
    unknown = sorted(set(chosen) - set(groups))
    if unknown:
        raise InputError(
            store, f"no scene group(s) {', '.join(unknown)}", variable="scenes", expected=f"one of {', '.join(groups)}"
        )
    plans = []
    for group in chosen:
        ds = open_scene(store, group)  # complete, with every chunk present
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise InputError(
                store,
                f"variable(s) {', '.join(missing)} not in scene group {group}",
                variable=missing[0],
                expected=f"some of {', '.join(sorted(map(str, ds.data_vars)))}",
            )
        ds = georeferenced(ds, store, group)
        dst_crs = target_crs(ds, crs)
        _check_size(ds, variables, dst_crs, resolution, store, group)
        plans.append((group, ds, dst_crs))
    if is_url(out_dir):
        with tempfile.TemporaryDirectory(prefix="akkd-export-") as local:
            files = _write_all(plans, variables, Path(local), fmt, resolution, store)
            return publish(files, str(out_dir), Remote.of(storage_options, timeout=timeout))
    return _write_all(plans, variables, Path(out_dir), fmt, resolution, store)


def _write_all(plans, variables, out_dir: Path, fmt: str, resolution, store) -> list[Path]:
    """Write every planned scene's variables into ``out_dir`` (see :func:`export_store`); their paths."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the output folder: {describe_os_error(exc)}") from None
    written = []
    try:
        for group, ds, dst_crs in plans:
            for name in variables:
                final = out_dir / f"{group}_{name}.tif"
                partial = out_dir / f".{final.name}.partial"
                written.append((partial, final))
                out = reproject_variable(ds, name, dst_crs, resolution)
                options = {"compress": "DEFLATE"} if fmt == "cog" else {"compress": "DEFLATE", "tiled": True}
                _write_geotiff(out, partial, final, DRIVERS[fmt], _tags(ds[name], ds.attrs, store, group), **options)
                log.debug("exported %s/%s to %s (%s)", group, name, final, dst_crs)
    except BaseException:
        for partial, _ in written:
            partial.unlink(missing_ok=True)
        if created:
            try:
                out_dir.rmdir()
            except OSError:
                pass  # not empty: something else was written into it meanwhile
        raise
    for partial, final in written:
        os.replace(partial, final)
    return [final for _, final in written]
