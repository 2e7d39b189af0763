"""Where the TIR pixels are and how they are seen. L1B: the geolocation lattice (geocentric latitude made
geodetic, longitude made continuous across ±180°, bilinear interpolation, ground control points); L1T: the
UTM grid (pyproj); both: the ``spatial_ref`` coordinate (rioxarray). Also the view zenith of the pointing angle.
Conventions in ``docs/reader.md`` (*Georeferencing*, *Pointing angle and view zenith*)."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from ...constants import EARTH_RADIUS_KM, GEOCENTRIC_FACTOR, TERRA_ALTITUDE_KM
from .metadata import MapProjection
from .windows import SpatialArray


def view_zenith_from_pointing(pointing_angle_deg: float) -> float:
    """View zenith at the ground (deg) of a satellite look angle off nadir (Earth curvature):
    sin(VZA) = (R + H)/R · sin(pointing), with R = 6371 km and Terra's H = 705 km; NaN stays NaN."""
    if math.isnan(pointing_angle_deg):
        return math.nan
    ratio = (EARTH_RADIUS_KM + TERRA_ALTITUDE_KM) / EARTH_RADIUS_KM
    return math.degrees(math.asin(min(1.0, ratio * math.sin(math.radians(abs(pointing_angle_deg))))))


def geodetic_latitude(latitude_geocentric: np.ndarray) -> np.ndarray:
    """Geodetic latitude (deg) of a geocentric one (the L1B lattice is geocentric)."""
    return np.degrees(np.arctan(GEOCENTRIC_FACTOR * np.tan(np.radians(latitude_geocentric))))


def unwrap_longitude(longitude: np.ndarray) -> np.ndarray:
    """Longitudes made continuous around the lattice centre (scenes crossing ±180°)."""
    ref = longitude[longitude.shape[0] // 2, longitude.shape[1] // 2]
    return ref + (longitude - ref + 180.0) % 360.0 - 180.0


def lattice_positions(line_map, pixel_map, lattice_shape) -> tuple[np.ndarray, np.ndarray]:
    """Image lines of the lattice rows and image pixels of its columns: offset + k·increment."""
    lines, pixels = (m[0] + m[1] * np.arange(n) for m, n in zip((line_map, pixel_map), lattice_shape))
    return lines, pixels


def interpolate_lattice(lattice: np.ndarray, rows: np.ndarray, cols: np.ndarray, line_map, pixel_map) -> np.ndarray:
    """Bilinear interpolation (linear extrapolation past the last lattice point) of a lattice whose
    point (k, l) sits at image line offset + k·increment and pixel offset + l·increment."""
    grid = lattice_positions(line_map, pixel_map, lattice.shape)
    interpolator = RegularGridInterpolator(grid, lattice, method="linear", bounds_error=False, fill_value=None)
    yy, xx = np.meshgrid(np.asarray(rows, float), np.asarray(cols, float), indexing="ij")
    return interpolator(np.stack([yy.ravel(), xx.ravel()], axis=-1)).reshape(yy.shape)


class LatticeArray(SpatialArray):
    """(y, x) latitude or longitude interpolated on demand from the (small) lattice kept in memory;
    ``wrap`` puts the result into [−180, 180) (longitude)."""

    def __init__(self, lattice: np.ndarray, line_map, pixel_map, shape: tuple[int, int], *, wrap: bool = False):
        self.lattice = lattice
        self.wrap = wrap
        self.line_map, self.pixel_map = line_map, pixel_map
        self.shape = tuple(shape)
        self.dtype = np.dtype("float64")

    def _compute(self, rows, cols):
        values = interpolate_lattice(self.lattice, rows, cols, self.line_map, self.pixel_map)
        return (values + 180.0) % 360.0 - 180.0 if self.wrap else values


@lru_cache(maxsize=8)
def _to_lonlat(epsg: int):
    from pyproj import Transformer

    return Transformer.from_crs(epsg, 4326, always_xy=True)


class ProjectedLatLonArray(SpatialArray):
    """(y, x) latitude or longitude of the pixel centres of an L1T UTM grid (pyproj, per window)."""

    def __init__(self, projection: MapProjection, shape: tuple[int, int], which: str):
        self.epsg = projection.epsg
        self.x0, self.y0 = projection.upper_left
        self.dx, self.dy = projection.pixel_size(shape)
        self.which = which
        self.shape = tuple(shape)
        self.dtype = np.dtype("float64")

    def _compute(self, rows, cols):
        xx, yy = np.meshgrid(self.x0 + self.dx * cols, self.y0 - self.dy * rows)
        lon, lat = _to_lonlat(self.epsg).transform(xx, yy)
        return lat if self.which == "latitude" else lon


#: Largest distance between where an L1T's UTM grid puts a lattice point and the file's own Latitude/Longitude
#: lattice, in pixels of the grid (90 m for TIR): allows the unverified corner/centre reading of UPPERLEFTM (half a
#: pixel) and lattice rounding, while a wrong zone, hemisphere or swapped corner values are kilometres off.
PROJECTION_LATTICE_TOLERANCE_PIXELS = 1.0


def great_circle_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance (m, spherical Earth of radius EARTH_RADIUS_KM) between points in degrees."""
    p1, p2, dlon = np.radians(lat1), np.radians(lat2), np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2_000.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def projection_lattice_offset(projection: MapProjection, shape: tuple[int, int], latitude: np.ndarray,
                              longitude: np.ndarray, line_map, pixel_map) -> tuple[float, tuple[int, int], tuple]:
    """(largest distance in m, its lattice point (k, l), (latitude, longitude) the grid gives there) between the
    UTM grid's position of each lattice point and the lattice's own latitude/longitude; inf where not finite."""
    lines, pixels = lattice_positions(line_map, pixel_map, latitude.shape)
    (x0, y0), (dx, dy) = projection.upper_left, projection.pixel_size(shape)
    xx, yy = np.meshgrid(x0 + dx * pixels, y0 - dy * lines)
    grid_lon, grid_lat = _to_lonlat(projection.epsg).transform(xx, yy)
    with np.errstate(invalid="ignore"):
        distance = great_circle_m(grid_lat, grid_lon, latitude, longitude)
    distance = np.where(np.isfinite(distance), distance, np.inf)
    k, m = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(distance[k, m]), (int(k), int(m)), (float(grid_lat[k, m]), float(grid_lon[k, m]))


def lattice_gcps(latitude: np.ndarray, longitude: np.ndarray, lines, pixels) -> list:
    """Ground control points of a latitude/longitude lattice whose point (k, m) lies on image line
    ``lines[k]``, pixel ``pixels[m]``: (line + 0.5, pixel + 0.5) — the pixel centre in GDAL's pixel/line
    convention — → (longitude, latitude, 0), id "k,m"; non-finite points are left out."""
    from rasterio.control import GroundControlPoint

    return [GroundControlPoint(row=float(line) + 0.5, col=float(pixel) + 0.5, x=float(longitude[k, m]),
                               y=float(latitude[k, m]), z=0.0, id=f"{k},{m}")
            for k, line in enumerate(lines) for m, pixel in enumerate(pixels)
            if np.isfinite(latitude[k, m] + longitude[k, m])]


def georeference(ds: xr.Dataset, shape: tuple[int, int], projection: MapProjection | None = None,
                 gcps=None) -> xr.Dataset:
    """Add the ``spatial_ref`` coordinate (rioxarray): with an L1T ``projection``, its UTM CRS, transform
    and x/y in metres of the ``shape`` grid; without, EPSG:4326 and the (lattice) ``gcps``."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    from affine import Affine

    if projection is None:
        ds = ds.rio.write_crs("EPSG:4326")
        return ds.rio.write_gcps(gcps, "EPSG:4326")
    (x0, y0), (dx, dy) = projection.upper_left, projection.pixel_size(shape)
    ds = ds.assign_coords(x=x0 + dx * np.arange(shape[1]), y=y0 - dy * np.arange(shape[0]))
    ds = ds.rio.write_crs(f"EPSG:{projection.epsg}")
    ds = ds.rio.write_transform(Affine(dx, 0.0, x0 - dx / 2, 0.0, -dy, y0 + dy / 2))
    return ds.rio.write_coordinate_system()
