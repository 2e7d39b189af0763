"""Export result stores to (cloud-optimised) GeoTIFF: one file per scene and variable, with rioxarray.

Each scene group is reprojected with ``rio.reproject`` — from its ``spatial_ref`` coordinate (L1T:
projected CRS and transform; L1B: ground control points), or, for stores without ``spatial_ref``, from
ground control points taken from its ``latitude``/``longitude`` coordinates — to the UTM zone of the
scene centre (default) or any CRS. Everything is checked before anything is written, and files are
written under temporary names and renamed only when all of them succeeded: an error leaves ``out_dir``
as it was.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..io.aster.geolocation import lattice_gcps, unwrap_longitude
from .store import COMPLETE, STATUS, group_status, open_scene, scene_groups

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
    ds = ds.set_coords(sorted(mappings & set(ds.data_vars)))
    if ds.rio.crs is not None and (ds.rio.get_gcps() or ("x" in ds.coords and "y" in ds.coords)
                                   or "GeoTransform" in ds.coords.get("spatial_ref", xr.DataArray()).attrs):
        return ds
    if "latitude" in ds.variables and "longitude" in ds.variables:
        log.info("%s/%s: no spatial_ref; ground control points from latitude/longitude", store, group)
        return ds.rio.write_gcps(_gcps_from_coordinates(ds), "EPSG:4326")
    raise InputError(store, "no georeferencing: neither a spatial_ref coordinate nor latitude/longitude",
                     variable=group, expected="a result store of georeferenced scenes")


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
        raise InputError("--crs", f"{crs!r} is not a CRS ({exc})", variable="crs",
                         expected='"utm" or a CRS such as "EPSG:32611"') from exc


def _tags(da: xr.DataArray, attrs: dict, store, group: str) -> dict:
    """GeoTIFF metadata: units, scale/offset, CF names, flags, and the scene's provenance."""
    tags = {"units": da.attrs.get("units", ""), "scale_factor": 1.0, "add_offset": 0.0,
            "long_name": str(da.attrs.get("long_name", da.name)), "source_store": str(Path(store).resolve()),
            "source_group": group, "variable": str(da.name)}
    for key in ("standard_name", "flag_masks", "flag_values", "flag_meanings"):
        if key in da.attrs:
            value = da.attrs[key]
            numbers = key in ("flag_masks", "flag_values")
            tags[key] = " ".join(str(v) for v in np.atleast_1d(value)) if numbers else str(value)
    for key, value in attrs.items():
        if key != STATUS and isinstance(value, (str, int, float)):
            tags[f"akkd_{key}"] = str(value)
    return tags


def reproject_variable(ds: xr.Dataset, name: str, crs, resolution: float | None) -> xr.DataArray:
    """One variable on the target grid: bilinear for floating point, nearest for integers (flags)."""
    from rasterio.enums import Resampling

    da = ds[name]
    if "band" in da.dims:
        da = da.transpose("band", "y", "x")
    da = da.drop_vars([c for c in da.coords if c not in ("band", "x", "y", da.rio.grid_mapping)])
    attrs = dict(da.attrs)
    integer = np.issubdtype(da.dtype, np.integer)
    nodata = ((SIGNED_NODATA if np.issubdtype(da.dtype, np.signedinteger) else INTEGER_NODATA if da.dtype == np.uint8
               else np.iinfo(da.dtype).max) if integer else np.nan)  # uint16 cloud_tests: 65535 (bits reach 2048)
    da = da.copy(data=da.values)
    da.encoding = {}
    da = da.rio.write_nodata(nodata, encoded=False)
    if resolution is None and crs.is_projected:
        resolution = DEFAULT_RESOLUTION_M
    on_grid = not da.rio.get_gcps() and da.rio.crs == crs and resolution in (None, abs(da.rio.resolution()[0]))
    if on_grid:  # an L1T scene to its own grid: no resampling at all
        out = da
    else:
        out = da.rio.reproject(crs, resolution=resolution, nodata=nodata,
                               resampling=Resampling.nearest if integer else Resampling.bilinear)
    out.attrs = {**{k: v for k, v in attrs.items() if k in ("units", "long_name", "standard_name")},
                 "_FillValue": nodata}
    if "band" in out.dims:
        out.attrs["long_name"] = tuple(f"{name} {band}" for band in out["band"].values)
    return out


def export_store(store, out_dir, *, variables=DEFAULT_VARIABLES, crs: str = "utm",
                 resolution: float | None = None, fmt: str = "cog", scenes=None) -> list[Path]:
    """Write ``<scene>_<variable>.tif`` for every complete scene group (or ``scenes``) of ``store``
    into ``out_dir`` and return the paths. ``crs``: ``"utm"`` (scene centre's zone) or a CRS;
    ``resolution`` in CRS units (default 90 for projected CRSs); ``fmt``: ``"cog"`` or ``"geotiff"``."""
    if fmt not in DRIVERS:
        raise InputError("--format", f"unknown format {fmt!r}", variable="format", expected=" or ".join(DRIVERS))
    if resolution is not None and not resolution > 0:
        raise InputError("--resolution", f"resolution {resolution}", variable="resolution",
                         expected="a positive pixel size in CRS units")
    variables = tuple(variables)
    if not variables:
        raise InputError("--variables", "no variables given", variable="variables", expected="e.g. lst,emissivity,qc")
    groups = scene_groups(store)
    chosen = list(scenes) if scenes else groups
    if not chosen:
        raise InputError(store, "the store has no scene groups", expected="a store written by `akkd-scale run`")
    unknown = sorted(set(chosen) - set(groups))
    if unknown:
        raise InputError(store, f"no scene group(s) {', '.join(unknown)}", variable="scenes",
                         expected=f"one of {', '.join(groups)}")
    plans = []
    for group in chosen:
        status = group_status(store, group)
        if status != COMPLETE:
            raise InputError(store, f"scene group is {status}", variable=group,
                             expected=f"{STATUS}={COMPLETE!r} (finish it with `akkd-scale run` first)")
        ds = open_scene(store, group)
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise InputError(store, f"variable(s) {', '.join(missing)} not in scene group {group}", variable=missing[0],
                             expected=f"some of {', '.join(sorted(ds.data_vars))}")
        ds = georeferenced(ds, store, group)
        plans.append((group, ds, target_crs(ds, crs)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for group, ds, dst_crs in plans:
            for name in variables:
                final = out_dir / f"{group}_{name}.tif"
                partial = out_dir / f".{final.name}.partial"
                written.append((partial, final))
                out = reproject_variable(ds, name, dst_crs, resolution)
                options = {"compress": "DEFLATE"} if fmt == "cog" else {"compress": "DEFLATE", "tiled": True}
                out.rio.to_raster(partial, driver=DRIVERS[fmt], tags=_tags(ds[name], ds.attrs, store, group),
                                  **options)
                log.debug("exported %s/%s to %s (%s)", group, name, final, dst_crs)
    except BaseException:
        for partial, _ in written:
            partial.unlink(missing_ok=True)
        raise
    for partial, final in written:
        os.replace(partial, final)
    return [final for _, final in written]
