"""Reanalysis atmospheres at the pixels: column water vapour and near-surface air temperature from ERA5 or MERRA-2.

Reads the files users download — ERA5 single levels from the Copernicus CDS (``tcwv`` kg m⁻², ``t2m`` K, optional
surface geopotential ``z`` m² s⁻²; ``latitude`` 90 → −90, ``longitude`` 0 → 359.75, ``valid_time`` or ``time``)
and MERRA-2 from GES DISC (``TQV``, ``T2M``, ``PHIS`` from the constants file; ``lat``, ``lon`` −180 → 179.375,
``time``) — and gives each pixel the column water vapour (g cm⁻²) and the air temperature (K) at the acquisition
time. What it does, in order (docs/reader.md, "Reanalysis inputs"):

1. fields are chosen by CF ``standard_name``, ``long_name``, ``GRIB_shortName`` or a known short name
   (:data:`ROLES`), converted by their ``units`` attribute (kg m⁻² → g cm⁻²: ÷ 10; °C → K; m² s⁻² → m: ÷ g₀);
2. longitudes are normalised to −180…180 and sorted, latitudes sorted ascending; several files (e.g. one per
   day) are combined along time;
3. for one scene, the grid cells around it and the two time steps around the acquisition time are read (a
   few kB: the returned arrays need no file access later, also on Dask workers), checked for coverage, NaN
   cells and plausible values;
4. with a pixel elevation, every grid node is first moved to sea level (T + Γ·h, W·exp(h/H)), interpolated,
   then moved to the pixel's elevation (T − Γ·z, W·exp(−z/H)), so each node is corrected from its own surface
   height; Γ = :data:`~akkd_scale.constants.LAPSE_RATE_K_PER_KM`, H =
   :data:`~akkd_scale.constants.WATER_VAPOUR_SCALE_HEIGHT_KM`; at DEM voids (NaN elevation) the pixel takes the
   grid's own interpolated height, i.e. no correction, with a warning;
5. linear in time, bilinear in latitude/longitude (xarray ``.interp``, lazy when the pixel coordinates are
   Dask-backed); across the dateline the grid is taken in a longitude frame centred on the scene.

NaN cells give NaN at every pixel whose interpolation touches them (reported with a warning); pixels or times the
files do not cover are an error, or NaN with a warning with ``optional=True``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array
import numpy as np
import pandas as pd
import xarray as xr

from ..constants import G0, LAPSE_RATE_K_PER_KM, WATER_VAPOUR_SCALE_HEIGHT_KM
from ..conventions import CWV, TAIR
from ..errors import InputError, ParameterError, describe_path
from ..utils import sha256_file

logger = logging.getLogger(__name__)

HEIGHT = "surface_height"
#: Longest gap between two time steps (× their median spacing) that is still interpolated across.
MAX_TIME_GAP = 1.5
#: Largest longitude step (× the median step) inside one contiguous piece of grid.
MAX_LON_GAP = 1.5
_VERTICAL_DIMS = {"level", "pressure_level", "plev", "lev", "isobaricinhpa", "model_level", "hybrid", "height"}


@dataclass(frozen=True)
class Role:
    """How one atmospheric quantity is recognised and converted: names, ``units`` → (scale, offset) to the
    output unit (out = value·scale + offset), and the plausible range after conversion."""

    name: str
    description: str
    unit: str
    short_names: frozenset
    standard_names: frozenset
    long_names: frozenset
    units: Mapping[str, tuple[float, float]]
    units_text: str
    plausible: tuple[float, float]
    time_varying: bool = True


def _words(text) -> str:
    """Lower case, ``_``/``-`` as spaces, American → British spelling: long and standard names compared so."""
    text = re.sub(r"[_\-\s]+", " ", str(text).strip().lower())
    return text.replace("vapor", "vapour").replace("meter", "metre")


def _unit_key(units) -> str:
    """``units`` without spaces, ``**``, ``^``, ``.`` and case: ``kg m**-2`` and ``kg m^-2`` → ``kgm-2``."""
    return re.sub(r"[\s*^.·]", "", str(units).strip().lower())


_KG_M2 = (0.1, 0.0)  # kg m-2 = mm of precipitable water = 0.1 g cm-2
_G_CM2 = (1.0, 0.0)
_C = (1.0, 273.15)
ROLES = {
    CWV: Role(
        CWV,
        "column water vapour",
        "g cm-2",
        frozenset({"tcwv", "TQV", "prw"}),
        frozenset(
            {
                "atmosphere mass content of water vapour",
                "total precipitable water vapour",
                "lwe thickness of atmosphere mass content of water vapour",
            }
        ),
        frozenset(
            {
                "total column water vapour",
                "total column vertically integrated water vapour",
                "total precipitable water vapour",
                "precipitable water vapour",
                "precipitable water",
                "column water vapour",
            }
        ),
        {
            "kgm-2": _KG_M2,
            "kg/m2": _KG_M2,
            "kgm2": _KG_M2,
            "mm": _KG_M2,
            "gcm-2": _G_CM2,
            "g/cm2": _G_CM2,
            "gcm2": _G_CM2,
            "cm": _G_CM2,
        },
        "kg m-2 (ERA5, MERRA-2), mm, g cm-2 or cm",
        (-0.01, 15.0),
    ),
    TAIR: Role(
        TAIR,
        "near-surface (2 m) air temperature",
        "K",
        frozenset({"t2m", "T2M", "2t", "tas"}),
        frozenset({"air temperature"}),
        frozenset(
            {
                "2 metre temperature",
                "2 metre air temperature",
                "2m temperature",
                "2 m temperature",
                "near surface air temperature",
                "temperature at 2 metres",
                "temperature at 2 m",
            }
        ),
        {
            "k": (1.0, 0.0),
            "kelvin": (1.0, 0.0),
            "degk": (1.0, 0.0),
            "deg_k": (1.0, 0.0),
            "degrees_k": (1.0, 0.0),
            "degc": _C,
            "°c": _C,
            "deg_c": _C,
            "degrees_c": _C,
            "degree_c": _C,
            "celsius": _C,
            "degree_celsius": _C,
            "degrees_celsius": _C,
        },
        "K or degC",
        (150.0, 350.0),
    ),
    HEIGHT: Role(
        HEIGHT,
        "surface geopotential or height of the grid",
        "m",
        frozenset({"z", "PHIS", "orog"}),
        frozenset({"surface geopotential", "geopotential", "surface altitude", "surface height"}),
        frozenset(
            {
                "geopotential",
                "surface geopotential",
                "surface geopotential height",
                "orography",
                "surface altitude",
                "surface height",
            }
        ),
        {
            "m2s-2": (1.0 / G0, 0.0),
            "m2/s2": (1.0 / G0, 0.0),
            "m2s2": (1.0 / G0, 0.0),
            "m+2s-2": (1.0 / G0, 0.0),
            "m": (1.0, 0.0),
            "metre": (1.0, 0.0),
            "metres": (1.0, 0.0),
            "meter": (1.0, 0.0),
            "meters": (1.0, 0.0),
            "gpm": (1.0, 0.0),
            "km": (1000.0, 0.0),
        },
        "m2 s-2 (geopotential: ERA5 z, MERRA-2 PHIS), m or km",
        (-1000.0, 9000.0),
        time_varying=False,
    ),
}


def _expected_names(role: Role) -> str:
    return (
        f"a {role.description} variable: one of {', '.join(sorted(role.short_names))}, or standard_name/"
        f"long_name like {sorted(role.long_names)[0]!r}"
    )


@dataclass(frozen=True)
class ReanalysisFile:
    """One input file: absolute path and sha256 of its bytes."""

    path: str
    sha256: str


@dataclass(frozen=True)
class ReanalysisField:
    """One quantity as read: ``data`` lazily on (time, latitude, longitude) — no time for the surface height —
    in the file's units, latitudes ascending, longitudes in [−180, 180) ascending; ``variable`` its name in
    ``files``, ``units`` the file's ``units`` and (``scale``, ``offset``) to :attr:`Role.unit`."""

    role: Role
    variable: str
    files: tuple[str, ...]
    units: str
    scale: float
    offset: float
    identified_by: str
    data: xr.DataArray

    @property
    def source(self) -> str:
        return ", ".join(self.files)

    def describe(self) -> str:
        conversion = (
            ""
            if (self.scale, self.offset) == (1.0, 0.0)
            else f", × {self.scale:g}"
            if self.offset == 0
            else f", + {self.offset:g}"
        )
        names = ", ".join(Path(f).name for f in self.files)
        return f"{self.role.name}: {self.variable} [{self.units}{conversion}] ({self.identified_by}; {names})"


@dataclass(frozen=True)
class AtmosphereProvenance:
    """What the atmospheric inputs of a scene were made from; written as the Dataset's ``atmosphere_*`` attrs."""

    files: tuple[ReanalysisFile, ...]
    variables: tuple[str, ...]
    time: str
    time_steps: str
    height_correction: str
    coverage: str
    nan_cells: int

    def attrs(self) -> dict:
        return {
            "atmosphere_files": [f.path for f in self.files],
            "atmosphere_sha256": [f.sha256 for f in self.files],
            "atmosphere_variables": list(self.variables),
            "atmosphere_time": self.time,
            "atmosphere_time_steps": self.time_steps,
            "atmosphere_height_correction": self.height_correction,
            "atmosphere_coverage": self.coverage,
            "atmosphere_nan_cells": int(self.nan_cells),
        }


@dataclass(frozen=True)
class Reanalysis:
    """Opened reanalysis files: the files and one :class:`ReanalysisField` per quantity found (``fields``: role
    name → field; column water vapour and air temperature always, the surface height when a file has one)."""

    files: tuple[ReanalysisFile, ...]
    fields: Mapping[str, ReanalysisField]
    datasets: tuple[xr.Dataset, ...] = field(default=(), repr=False)

    def close(self) -> None:
        for ds in self.datasets:
            ds.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def source(self) -> str:
        return ", ".join(f.path for f in self.files)

    def at(self, latitude, longitude, time, *, elevation=None, optional: bool = False) -> xr.Dataset:
        """Column water vapour and air temperature at the pixels (``latitude``/``longitude`` arrays or
        DataArrays of one shape, degrees; ``elevation`` in m, or a DataArray with ``units`` m or km) and the
        acquisition ``time`` (UTC; text, datetime or datetime64). See the module docstring.

        ``optional``: pixels or a time the files do not cover give NaN with a warning instead of an error.
        """
        when = _utc(time)
        frame = _pixel_frame(latitude, longitude)
        height = None
        if elevation is not None:
            height = _elevation(elevation, frame.latitude)
            if HEIGHT not in self.fields:
                raise InputError(
                    self.source,
                    "a pixel elevation was given but no file has the grid's surface height",
                    variable=HEIGHT,
                    expected=_expected_names(ROLES[HEIGHT])
                    + " (ERA5 z, MERRA-2 PHIS from the constants file), or no elevation",
                )
        voids = None if height is None else _voids(height, frame, self.source)
        out, notes, steps, nan_cells = {}, [], [], 0
        for name in (CWV, TAIR):
            values, note, used, nans = _interpolate(
                self.fields[name],
                self.fields.get(HEIGHT) if height is not None else None,
                frame,
                when,
                height,
                optional,
                voids,
            )
            out[name], nan_cells = values, nan_cells + nans
            notes += [note] if note else []
            steps.append(f"{name}: {used}")
        correction = (
            "none (no pixel elevation given)"
            if height is None
            else f"from the grid's surface height ({self.fields[HEIGHT].describe()}) to the pixel elevation: "
            f"lapse rate {LAPSE_RATE_K_PER_KM:g} K/km, water-vapour scale height "
            f"{WATER_VAPOUR_SCALE_HEIGHT_KM:g} km"
        )
        variables = [self.fields[n].describe() for n in (CWV, TAIR)] + (
            [] if height is None else [self.fields[HEIGHT].describe()]
        )
        provenance = AtmosphereProvenance(
            self.files,
            tuple(variables),
            str(when.astype("datetime64[ms]")) + "Z",
            "; ".join(steps),
            correction,
            "; ".join(notes) or "complete",
            nan_cells,
        )
        return xr.Dataset(out).assign_attrs(provenance.attrs())


def open_reanalysis(files) -> Reanalysis:
    """Open ERA5/MERRA-2 NetCDF files (one path or several) lazily and identify their fields (module docstring)."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not paths:
        raise ParameterError(
            "open_reanalysis",
            "no files",
            variable="atmosphere_data",
            expected="one or more ERA5 or MERRA-2 NetCDF files",
        )
    records: list[ReanalysisFile] = []
    datasets: list[xr.Dataset] = []
    pieces: dict[str, list] = {name: [] for name in ROLES}
    try:
        for path in paths:
            ds = _open(path)
            datasets.append(ds)
            source = describe_path(path)
            records.append(ReanalysisFile(source, sha256_file(path)))
            found = {name: _identify(ds, role, source) for name, role in ROLES.items()}
            found = {name: hit for name, hit in found.items() if hit is not None}
            if not found:
                described = (
                    ", ".join(
                        f"{v} ({ds[v].attrs.get('long_name', ds[v].attrs.get('standard_name', '?'))})"
                        for v in ds.data_vars
                    )
                    or "none"
                )
                raise InputError(
                    source,
                    f"no column water vapour, air temperature or surface height among the variables {described}",
                    variable="data variables",
                    expected=f"{_expected_names(ROLES[CWV])}; {_expected_names(ROLES[TAIR])}",
                )
            for name, (variable, how) in found.items():
                pieces[name].append((source, variable, how, _normalise(ds, variable, ROLES[name], source)))
        fields = {}
        for name, role in ROLES.items():
            if pieces[name]:
                fields[name] = _combine(role, pieces[name])
            elif name != HEIGHT:
                raise InputError(
                    ", ".join(r.path for r in records),
                    f"no {role.description} in the files",
                    variable=name,
                    expected=_expected_names(role),
                )
    except BaseException:
        for ds in datasets:
            ds.close()
        raise
    return Reanalysis(tuple(records), fields, tuple(datasets))


def read_atmosphere(files, latitude, longitude, time, *, elevation=None, optional: bool = False) -> xr.Dataset:
    """:func:`open_reanalysis` ``files`` and interpolate them to the pixels (:meth:`Reanalysis.at`).

    Returns ``column_water_vapour`` (g cm⁻²) and ``air_temperature`` (K) on the pixel grid (float32, Dask-backed
    when ``latitude`` is), with the provenance in ``atmosphere_*`` attributes.
    """
    with open_reanalysis(files) as reanalysis:
        return reanalysis.at(latitude, longitude, time, elevation=elevation, optional=optional)


# ------------------------------------------------------------------------------------------- opening


def _open(path: Path) -> xr.Dataset:
    """The file as a lazy Dataset (NetCDF-3/4 or HDF5; GRIB through cfgrib when it is installed)."""
    if not path.is_file():
        raise InputError(
            describe_path(path), "file not found", variable="atmosphere_data", expected="an ERA5 or MERRA-2 NetCDF file"
        )
    with open(path, "rb") as handle:
        grib = handle.read(4) == b"GRIB"
    if grib:
        try:
            import cfgrib  # noqa: F401
        except ImportError:
            raise InputError(
                describe_path(path),
                "GRIB file, but cfgrib is not installed",
                variable="atmosphere_data",
                expected="NetCDF (CDS: format NetCDF), or install cfgrib",
            ) from None
    try:
        return xr.open_dataset(path, engine="cfgrib" if grib else None, chunks={})
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(
            describe_path(path),
            f"cannot open as NetCDF ({exc})",
            variable="atmosphere_data",
            expected="an ERA5 or MERRA-2 NetCDF file",
        ) from exc


def _identify(ds: xr.Dataset, role: Role, source: str):
    """(variable, how it was recognised) of ``role`` in ``ds``, None when absent; two candidates are an error."""
    hits = []
    for name, var in ds.data_vars.items():
        attrs = var.attrs
        standard, long = _words(attrs.get("standard_name", "")), _words(attrs.get("long_name", ""))
        if standard and standard in role.standard_names:
            hits.append((name, f"standard_name {attrs['standard_name']!r}"))
        elif long and long in role.long_names:
            hits.append((name, f"long_name {attrs['long_name']!r}"))
        elif standard and standard in role.long_names:
            hits.append((name, f"standard_name {attrs['standard_name']!r}"))
        elif str(attrs.get("GRIB_shortName", "")) in role.short_names:
            hits.append((name, f"GRIB_shortName {attrs['GRIB_shortName']!r}"))
        elif name in role.short_names:
            hits.append((name, "name"))
    if role.name == TAIR:  # air_temperature is also the standard name of temperature on levels
        hits = [h for h in hits if not _VERTICAL_DIMS & {str(d).lower() for d in ds[h[0]].dims}]
    if len(hits) > 1:
        raise InputError(
            source,
            f"several variables could be the {role.description}: {', '.join(f'{n} ({how})' for n, how in hits)}",
            variable=role.name,
            expected="exactly one per file",
        )
    return hits[0] if hits else None


def _find_dim(da: xr.DataArray, names, standard_name, units) -> str | None:
    for dim in map(str, da.dims):
        coord = da.coords.get(dim)
        attrs = coord.attrs if coord is not None else {}
        if (
            dim.lower() in names
            or attrs.get("standard_name") == standard_name
            or _unit_key(attrs.get("units", "")) in units
        ):
            return dim
    return None


def _normalise(ds: xr.Dataset, variable: str, role: Role, source: str) -> tuple[xr.DataArray, str, tuple]:
    """``ds[variable]`` lazily on (time, latitude, longitude) (no time for the surface height), latitudes
    ascending, longitudes in [−180, 180) ascending; its ``units`` and (scale, offset) to ``role.unit``."""
    da = ds[variable]
    lat = _find_dim(da, {"latitude", "lat"}, "latitude", {"degrees_north", "degree_north", "degrees_n", "degn"})
    lon = _find_dim(da, {"longitude", "lon"}, "longitude", {"degrees_east", "degree_east", "degrees_e", "dege"})
    if lat is None or lon is None:
        raise InputError(
            source,
            f"dims {da.dims} have no latitude/longitude axis",
            variable=variable,
            expected="a regular latitude–longitude grid (latitude, longitude) or (lat, lon)",
        )
    time = next((d for d in da.dims if d in da.coords and np.issubdtype(da[d].dtype, np.datetime64)), None)
    if time is None:
        if any(str(d).lower() in ("time", "valid_time") for d in da.dims):
            raise InputError(
                source,
                "time coordinate is not a date",
                variable=variable,
                expected="CF time units (e.g. 'hours since 1900-01-01') and a standard calendar",
            )
        scalar = next(
            (
                c
                for c in ("valid_time", "time")
                if c in da.coords and da[c].ndim == 0 and np.issubdtype(da[c].dtype, np.datetime64)
            ),
            None,
        )
        if scalar is not None:
            da, time = da.expand_dims(scalar), scalar
        elif role.time_varying:
            raise InputError(
                source,
                f"no time coordinate (dims {da.dims})",
                variable=variable,
                expected="a time dimension (valid_time or time) with CF time units",
            )
    if "expver" in da.dims:  # ERA5/ERA5T mixtures: each time step is valid in one of the versions
        versions = [da.isel(expver=i, drop=True) for i in range(da.sizes["expver"])]
        da = versions[0]
        for other in versions[1:]:
            da = da.combine_first(other)
    core = {lat, lon} | ({time} if time else set())
    for dim in [d for d in da.dims if d not in core]:
        if da.sizes[dim] != 1 or str(dim).lower() in _VERTICAL_DIMS:
            raise InputError(
                source,
                f"extra dimension {dim} (size {da.sizes[dim]})",
                variable=variable,
                expected="a single-level field on (time, latitude, longitude)",
            )
        da = da.isel({dim: 0}, drop=True)
    if time and not role.time_varying:
        da = da.isel({time: 0}, drop=True)  # the surface height does not change: its first time step
        time = None
    da = da.rename({lat: "latitude", lon: "longitude", **({time: "time"} if time else {})})
    da = da.drop_vars([c for c in da.coords if c not in da.dims])
    da = da.transpose(*(("time",) if time else ()), "latitude", "longitude")
    for axis in ("latitude", "longitude"):
        values = da[axis].values
        if values.ndim != 1 or values.size < 2 or not np.isfinite(values).all():
            raise InputError(
                source, f"{axis} has {values.size} values", variable=variable, expected=f"at least two finite {axis}s"
            )
    if np.abs(da["latitude"].values).max() > 90:
        raise InputError(source, "latitudes beyond ±90°", variable=variable, expected="degrees north in [−90, 90]")
    wrapped = (da["longitude"].values + 180.0) % 360.0 - 180.0
    da = da.assign_coords(longitude=wrapped).sortby("latitude").sortby("longitude")
    _, first = np.unique(da["longitude"].values, return_index=True)  # 0 and 360 both in a file: one column
    if first.size < da.sizes["longitude"]:
        da = da.isel(longitude=first)
    if time:
        da = da.sortby("time")
    units = da.attrs.get("units")
    if units is None:
        raise InputError(
            source, "no units attribute", variable=variable, expected=f"units of {role.description}: {role.units_text}"
        )
    if _unit_key(units) not in role.units:
        raise InputError(
            source,
            f"unknown units {units!r}",
            variable=variable,
            expected=f"units of {role.description}: {role.units_text}",
        )
    return da, str(units), role.units[_unit_key(units)]


def _combine(role: Role, pieces) -> ReanalysisField:
    """One field from the files that hold ``role``: time steps concatenated (same grid, same variable name and
    units in every file); the surface height from the first file that has it."""
    sources = [p[0] for p in pieces]
    _, variable, how, (first, units, conversion) = pieces[0]
    if not role.time_varying:
        return ReanalysisField(role, variable, (sources[0],), units, conversion[0], conversion[1], how, first)
    arrays = []
    for source, name, _, (da, unit, conv) in pieces:
        if conv != conversion:
            raise InputError(
                source,
                f"{name} in units {unit!r}, but {units!r} in {sources[0]}",
                variable=name,
                expected="the same units in every file",
            )
        for axis in ("latitude", "longitude"):
            if da.sizes[axis] != first.sizes[axis] or not np.allclose(da[axis].values, first[axis].values):
                raise InputError(
                    source,
                    f"{axis} grid differs from that of {sources[0]}",
                    variable=name,
                    expected="the same grid in every file",
                )
        arrays.append(da.rename(variable))
    data = xr.concat(arrays, dim="time", join="override") if len(arrays) > 1 else arrays[0]
    index = pd.Index(data["time"].values)
    if not index.is_unique:
        duplicate = index[index.duplicated()][0]
        raise InputError(
            ", ".join(sources),
            f"time step {duplicate} appears more than once",
            variable=variable,
            expected="files with distinct time steps (each file once)",
        )
    data = data.sortby("time")
    files = tuple(dict.fromkeys(sources))
    return ReanalysisField(role, variable, files, units, conversion[0], conversion[1], how, data)


# ------------------------------------------------------------------------------------- at the pixels


@dataclass(frozen=True)
class _PixelFrame:
    """The pixels' latitude and longitude (DataArrays of one shape; longitudes continuous around the scene:
    −180…180, or 0…360 when the scene crosses the dateline) and their finite ranges (NaN when none)."""

    latitude: xr.DataArray
    longitude: xr.DataArray
    lat_range: tuple[float, float]
    lon_range: tuple[float, float]

    @property
    def empty(self) -> bool:
        return not np.isfinite(self.lat_range[0])

    def describe(self) -> str:
        return (
            f"latitude {self.lat_range[0]:.3f}…{self.lat_range[1]:.3f}, longitude "
            f"{self.lon_range[0]:.3f}…{self.lon_range[1]:.3f}"
        )


def _as_dataarray(values, name: str) -> xr.DataArray:
    if isinstance(values, xr.DataArray):
        return values
    array = values if isinstance(values, dask.array.Array) else np.asarray(values, dtype=np.float64)
    dims = ("y", "x")[-array.ndim :] if 0 < array.ndim <= 2 else tuple(f"dim_{i}" for i in range(array.ndim))
    return xr.DataArray(array, dims=dims, name=name)


def _pixel_frame(latitude, longitude) -> _PixelFrame:
    lat, lon = _as_dataarray(latitude, "latitude"), _as_dataarray(longitude, "longitude")
    if lat.dims != lon.dims or lat.shape != lon.shape:
        raise ParameterError(
            "atmosphere",
            f"latitude {lat.dims} {lat.shape} and longitude {lon.dims} {lon.shape}",
            variable="longitude",
            expected="latitude and longitude of the same shape",
        )
    lat, lon = (
        lat.astype(np.float64).drop_vars(["latitude", "longitude"], errors="ignore"),
        lon.astype(np.float64).drop_vars(["latitude", "longitude"], errors="ignore"),
    )
    lon180, lon360 = (lon + 180.0) % 360.0 - 180.0, lon % 360.0
    reductions = [lat.min(), lat.max(), lon180.min(), lon180.max(), lon360.min(), lon360.max()]
    values = [float(v) for v in dask.compute(*[r.data for r in reductions])]
    lat_lo, lat_hi, a_lo, a_hi, b_lo, b_hi = values
    if not np.isfinite(lat_lo):
        nan = (np.nan, np.nan)
        return _PixelFrame(lat, lon180, nan, nan)
    if abs(lat_lo) > 90 or abs(lat_hi) > 90:
        raise ParameterError(
            "atmosphere", f"latitudes {lat_lo:g}…{lat_hi:g}", variable="latitude", expected="degrees north in [−90, 90]"
        )
    if min(a_hi - a_lo, b_hi - b_lo) > 180.0:
        raise ParameterError(
            "atmosphere",
            "the pixels span more than 180° of longitude",
            variable="longitude",
            expected="one scene (a few degrees)",
        )
    if b_hi - b_lo < a_hi - a_lo:  # across the dateline: 0…360 keeps the scene in one piece
        return _PixelFrame(lat, lon360, (lat_lo, lat_hi), (b_lo, b_hi))
    return _PixelFrame(lat, lon180, (lat_lo, lat_hi), (a_lo, a_hi))


def _elevation(elevation, like: xr.DataArray) -> xr.DataArray:
    """Pixel elevation in metres on the pixel grid; a DataArray's ``units`` (m or km) is followed."""
    units = elevation.attrs.get("units", "m") if isinstance(elevation, xr.DataArray) else "m"
    scale = {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0, "km": 1000.0}.get(_unit_key(units))
    if scale is None:
        raise ParameterError("atmosphere", f"elevation units {units!r}", variable="elevation", expected="m or km")
    height = _as_dataarray(elevation, "elevation")
    if height.shape != like.shape:
        raise ParameterError(
            "atmosphere",
            f"elevation shape {height.shape}",
            variable="elevation",
            expected=f"the pixel grid's shape {like.shape}",
        )
    # on the pixel grid's dims and coordinates, so arithmetic with the interpolated values never re-aligns
    return xr.DataArray(height.data, dims=like.dims, coords=like.coords).astype(np.float64) * scale


def _utc(time) -> np.datetime64:
    try:
        stamp = pd.Timestamp(time)
    except (ValueError, TypeError) as exc:
        raise ParameterError(
            "atmosphere",
            f"acquisition time {time!r} ({exc})",
            variable="time",
            expected="an ISO 8601 time, datetime or datetime64",
        ) from exc
    if stamp is pd.NaT:
        raise ParameterError("atmosphere", "acquisition time is NaT", variable="time", expected="a time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def _lon_nodes(grid: np.ndarray, lo: float, hi: float):
    """Longitude nodes around [lo, hi] (frame values, may exceed ±180) and their column indices in ``grid``
    (ascending, in [−180, 180)), from the contiguous piece of the periodically repeated grid that overlaps
    [lo, hi] most; and whether that piece covers [lo, hi]. None when nothing overlaps."""
    n = grid.size
    extended = np.concatenate([grid - 360.0, grid, grid + 360.0])
    columns = np.tile(np.arange(n), 3)
    step = float(np.median(np.diff(grid)))
    breaks = np.flatnonzero(np.diff(extended) > MAX_LON_GAP * step)
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks, extended.size - 1]
    overlap = np.minimum(extended[ends], hi) - np.maximum(extended[starts], lo)
    best = int(np.argmax(overlap))
    start, end = starts[best], ends[best]
    if overlap[best] < 0 or (overlap[best] == 0 and not (extended[start] <= lo <= extended[end])):
        return None
    covered = extended[start] <= lo and hi <= extended[end]
    k_lo = max(start, int(np.searchsorted(extended, lo, side="right")) - 1)
    k_hi = min(end, int(np.searchsorted(extended, hi, side="left")))
    k_lo, k_hi = _two_nodes(k_lo, k_hi, start, end)
    return extended[k_lo : k_hi + 1], columns[k_lo : k_hi + 1], covered


def _two_nodes(k_lo, k_hi, start, end):
    """Widen [k_lo, k_hi] to at least two nodes inside [start, end] (interpolation needs two)."""
    if k_hi <= k_lo:
        k_hi = k_lo + 1 if k_lo + 1 <= end else k_hi
        k_lo = k_hi - 1 if k_hi - 1 >= start else k_lo
    return k_lo, k_hi


def _lat_nodes(grid: np.ndarray, lo: float, hi: float):
    """Latitude node indices around [lo, hi] in ascending ``grid`` and whether the grid covers it; None when
    nothing overlaps."""
    if hi < grid[0] or lo > grid[-1]:
        return None
    covered = grid[0] <= lo and hi <= grid[-1]
    k_lo = max(0, int(np.searchsorted(grid, lo, side="right")) - 1)
    k_hi = min(grid.size - 1, int(np.searchsorted(grid, hi, side="left")))
    k_lo, k_hi = _two_nodes(k_lo, k_hi, 0, grid.size - 1)
    return np.arange(k_lo, k_hi + 1), covered


def _space_subset(data: xr.DataArray, lat_range, lon_range):
    """``data`` on the nodes around the ranges (longitudes in the pixels' frame) and whether they are covered;
    None when the grid misses them entirely."""
    lats = _lat_nodes(data["latitude"].values, *lat_range)
    lons = _lon_nodes(data["longitude"].values, *lon_range)
    if lats is None or lons is None:
        return None
    values, columns, lon_covered = lons
    subset = data.isel(latitude=lats[0], longitude=columns).assign_coords(longitude=values)
    return subset, lats[1] and lon_covered


def _time_steps(times: np.ndarray, when: np.datetime64):
    """Indices of the one or two time steps around ``when``; None when outside or in a gap of the steps."""
    if times.size == 0 or when < times[0] or when > times[-1]:
        return None
    i = int(np.searchsorted(times, when, side="right")) - 1
    if times[i] == when:
        return [i]
    spacing = np.median(np.diff(times).astype(np.int64))
    if (times[i + 1] - times[i]).astype(np.int64) > MAX_TIME_GAP * spacing:
        return None
    return [i, i + 1]


def _interpolate(
    fld: ReanalysisField,
    height: ReanalysisField | None,
    frame: _PixelFrame,
    when: np.datetime64,
    elevation: xr.DataArray | None,
    optional: bool,
    voids: xr.DataArray | None = None,
):
    """One quantity at the pixels: (float32 DataArray, coverage note, time steps used, NaN cells used);
    ``voids``: the pixels where ``elevation`` has no value (:func:`_voids`), None when there are none."""
    name = fld.role.name
    times = fld.data["time"].values
    span = f"{_iso(times[0])}…{_iso(times[-1])}" if times.size else "none"
    nothing = xr.full_like(frame.latitude, np.nan, dtype=np.float32).rename(name)
    if frame.empty:
        return _attrs(nothing, fld), f"{name}: none (no finite pixel coordinates)", "none", 0
    steps = _time_steps(times, when)
    if steps is None:
        problem = (
            f"acquisition time {_iso(when)} outside the files' time steps {span}"
            if when < times[0] or when > times[-1]
            else f"acquisition time {_iso(when)} falls in a gap of the files' time steps"
        )
        if not optional:
            raise InputError(
                fld.source,
                problem,
                variable=fld.variable,
                expected="files whose time steps bracket the acquisition time (or optional=True)",
            )
        logger.warning("%s: %s: %s; %s is NaN", fld.source, fld.variable, problem, name)
        return _attrs(nothing, fld), f"{name}: none ({problem})", "none", 0
    found = _space_subset(fld.data, frame.lat_range, frame.lon_range)
    grid = f"latitude {fld.data['latitude'].values[0]:g}…{fld.data['latitude'].values[-1]:g}, " + _describe_longitudes(
        fld.data["longitude"].values
    )
    if found is None or not found[1]:
        problem = f"the grid ({grid}) does not cover the scene ({frame.describe()})"
        if not optional:
            raise InputError(
                fld.source, problem, variable=fld.variable, expected="files covering the scene (or optional=True)"
            )
        logger.warning("%s: %s: %s; %s is NaN at the pixels outside", fld.source, fld.variable, problem, name)
        if found is None:
            return _attrs(nothing, fld), f"{name}: none ({problem})", "none", 0
    subset = found[0].isel(time=steps).load().astype(np.float64) * fld.scale + fld.offset
    note = "" if found[1] else f"{name}: partial (the grid does not cover the whole scene)"
    nan_cells = int(subset.isnull().sum())
    if nan_cells:
        logger.warning(
            "%s: %s: %d of the %d grid values around the scene are NaN; pixels whose interpolation "
            "touches them are NaN",
            fld.source,
            fld.variable,
            nan_cells,
            subset.size,
        )
    _plausible(subset, fld)
    if elevation is not None and height is not None:
        grid_height = _grid_height(height, subset, fld)
        subset = _to_sea_level(subset, grid_height, name)
    at_time = subset.isel(time=0, drop=True) if len(steps) == 1 else subset.interp(time=when).drop_vars("time")
    values = at_time.interp(latitude=frame.latitude, longitude=frame.longitude, method="linear")
    values = values.drop_vars(["latitude", "longitude"], errors="ignore")
    if elevation is not None and height is not None:
        if voids is not None:
            elevation = _fill_voids(elevation, voids, grid_height, frame)
        values = _from_sea_level(values, elevation, name)
    used = (
        f"{_iso(times[steps[0]])}"
        if len(steps) == 1
        else f"{_iso(times[steps[0]])} and {_iso(times[steps[1]])} (weight "
        f"{(when - times[steps[0]]) / (times[steps[1]] - times[steps[0]]):.3f} on the later)"
    )
    return _attrs(values.astype(np.float32).rename(name), fld), note, used, nan_cells


def _describe_longitudes(grid: np.ndarray) -> str:
    """The grid's longitudes as one continuous range (``170…190`` for a grid across the dateline)."""
    gaps = np.diff(np.r_[grid, grid[0] + 360.0])
    widest = int(np.argmax(gaps))
    if gaps[widest] <= MAX_LON_GAP * np.median(gaps[:-1]):
        return "all longitudes"
    start, end = grid[(widest + 1) % grid.size], grid[widest]
    return f"longitude {start:g}…{end + 360.0 if end < start else end:g}"


def _grid_height(height: ReanalysisField, subset: xr.DataArray, fld: ReanalysisField) -> xr.DataArray:
    """The surface height (m) at the nodes of ``subset`` (the same nodes when the grids agree)."""
    lat, lon = subset["latitude"].values, subset["longitude"].values
    found = _space_subset(height.data, (lat[0], lat[-1]), (lon[0], lon[-1]))
    if found is None or not found[1]:
        raise InputError(
            height.source,
            f"the surface height grid does not cover the {fld.role.description} grid around the scene",
            variable=height.variable,
            expected="surface height on the same grid",
        )
    grid = found[0].load().astype(np.float64) * height.scale + height.offset
    _plausible(grid, height)
    return grid.interp(latitude=subset["latitude"], longitude=subset["longitude"])


def _voids(elevation: xr.DataArray, frame: _PixelFrame, source: str) -> xr.DataArray | None:
    """Where the pixel elevation has no value at a pixel with coordinates (DEM voids, as SRTM has), with a warning
    naming their count; None when there are none (counted once per call, for both quantities)."""
    voids = elevation.isnull() & frame.latitude.notnull() & frame.longitude.notnull()
    n = int(voids.sum())
    if not n:
        return None
    logger.warning(
        "%s: the pixel elevation has no value at %d of %d pixels; there the reanalysis is not height-corrected",
        source,
        n,
        int(frame.latitude.notnull().sum()),
    )
    return voids


def _fill_voids(elevation: xr.DataArray, voids: xr.DataArray, grid_height: xr.DataArray, frame) -> xr.DataArray:
    """The pixel elevation with its ``voids`` replaced by the grid's own surface height there, so those pixels
    keep the reanalysis uncorrected instead of losing it."""
    node_height = grid_height.isel(time=0, drop=True) if "time" in grid_height.dims else grid_height
    at_pixels = node_height.interp(latitude=frame.latitude, longitude=frame.longitude, method="linear")
    at_pixels = at_pixels.drop_vars(["latitude", "longitude"], errors="ignore")
    return elevation.where(~voids, at_pixels)


def _to_sea_level(values: xr.DataArray, height: xr.DataArray, name: str) -> xr.DataArray:
    if name == TAIR:
        return values + LAPSE_RATE_K_PER_KM * 1e-3 * height
    return values * np.exp(height / (WATER_VAPOUR_SCALE_HEIGHT_KM * 1e3))


def _from_sea_level(values: xr.DataArray, elevation: xr.DataArray, name: str) -> xr.DataArray:
    if name == TAIR:
        return values - LAPSE_RATE_K_PER_KM * 1e-3 * elevation
    return values * np.exp(-elevation / (WATER_VAPOUR_SCALE_HEIGHT_KM * 1e3))


def _plausible(values: xr.DataArray, fld: ReanalysisField) -> None:
    finite = values.values[np.isfinite(values.values)]
    lo, hi = fld.role.plausible
    if finite.size and (finite.min() < lo or finite.max() > hi):
        raise InputError(
            fld.source,
            f"values {finite.min():.4g}…{finite.max():.4g} {fld.role.unit} after conversion from {fld.units!r}",
            variable=fld.variable,
            expected=f"{fld.role.description} in {lo:g}…{hi:g} {fld.role.unit}: is the units attribute right?",
        )


def _attrs(values: xr.DataArray, fld: ReanalysisField) -> xr.DataArray:
    standard = {CWV: "atmosphere_mass_content_of_water_vapor", TAIR: "air_temperature"}[fld.role.name]
    return values.assign_attrs(
        units=fld.role.unit,
        standard_name=standard,
        long_name=f"{fld.role.description} from reanalysis at the pixel",
        source_variable=fld.variable,
        source_units=fld.units,
        source_files=[Path(f).name for f in fld.files],
    )


def _iso(value) -> str:
    return str(np.datetime64(value, "s"))
