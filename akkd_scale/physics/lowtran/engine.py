"""Run patched LOWTRAN7 on real profiles: level preparation, validation, geometry, unit conversion.

LOWTRAN keeps its state in COMMON blocks, so calls are serialised by a lock inside a process and
parallel work must use processes. Everything is checked here before the Fortran call, because the
Fortran code answers bad input with ``STOP`` (killing the interpreter) or silent garbage.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ...errors import ParameterError, ProfileFormatError
from .build import load_extension

log = logging.getLogger(__name__)

#: LOWTRAN7's 12 molecular species, in its WMOL order.
SPECIES = ("h2o", "co2", "o3", "n2o", "co", "ch4", "o2", "no", "so2", "no2", "nh3", "hno3")
#: Well-mixed gases set explicitly (ppmv) when a profile lacks them (LOWTRAN's default CO2 is 330).
DEFAULT_PPMV = {"co2": 400.0, "ch4": 1.8, "n2o": 0.32}
#: LOWTRAN unit codes: 10 = ppmv; 6 = the built-in US-standard profile of that species.
UNIT_PPMV = 10
UNIT_US_STANDARD = 6
MAX_LEVELS = 34
#: Layer boundaries of LOWTRAN's built-in atmospheres above 0 km (km); the ``"standard"`` thinning grid.
STANDARD_GRID_KM = tuple(float(z) for z in range(1, 26)) + (30.0, 35.0, 40.0, 45.0, 50.0, 70.0, 100.0)
#: ``"near_surface"`` grid: levels 0.1/0.25/0.5/0.75 km above the surface resolve the warm, humid bottom
#: kilometre; the 34-level budget is kept by dropping 21/23/24 km and 45/70 km, which change band τ, L↑, L↓
#: by ≤ 0.0001 (AFGL atmospheres; docs/radiative_transfer.md, benchmarks/physics/check_layering.py).
NEAR_SURFACE_OFFSETS_KM = (0.1, 0.25, 0.5, 0.75)
NEAR_SURFACE_GRID_KM = tuple(float(z) for z in range(1, 21)) + (22.0, 25.0, 30.0, 35.0, 40.0, 50.0, 100.0)
LAYERINGS = ("standard", "near_surface")
TOP_KM = 100.0
MIN_LAYER_KM = 0.05
EARTH_RADIUS_KM = {1: 6378.39, 4: 6356.91, 5: 6356.91}
DEFAULT_EARTH_RADIUS_KM = 6371.23
#: Radiance conversion: LOWTRAN returns W cm-2 sr-1 um-1; the project uses W m-2 sr-1 um-1.
RADIANCE_SCALE = 1.0e4
MIN_WAVENUMBER, MAX_WAVENUMBER = 5.0, 50000.0

_CALL_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class Levels:
    """One atmospheric profile, lowest level first: altitude (km), pressure (hPa), temperature (K)
    and gas amounts (ppmv by volume) keyed by names in :data:`SPECIES`."""

    altitude: np.ndarray
    pressure: np.ndarray
    temperature: np.ndarray
    gases: Mapping[str, np.ndarray] = field(default_factory=dict)
    source: str = "profile"


class Spectrum(NamedTuple):
    """LOWTRAN output on its wavenumber grid: total transmittance and radiance (W m-2 sr-1 um-1)."""

    wavenumber: np.ndarray
    wavelength_um: np.ndarray
    transmittance: np.ndarray
    radiance: np.ndarray


def validate_levels(levels: Levels) -> Levels:
    """Check shapes, finiteness, monotonicity and ranges; drop NaN padding at the top.

    Returns a new ``Levels`` with float64 arrays; raises ProfileFormatError naming the variable.
    """
    src = levels.source
    arrays = {"altitude": levels.altitude, "pressure": levels.pressure, "temperature": levels.temperature}
    unknown = sorted(set(levels.gases) - set(SPECIES))
    if unknown:
        raise ProfileFormatError(
            src, f"unknown gas {unknown[0]!r}", variable=unknown[0], expected=f"one of {', '.join(SPECIES)}"
        )
    arrays.update({f"gases[{k}]": v for k, v in levels.gases.items()})
    arrays = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    n = arrays["altitude"].shape
    for name, values in arrays.items():
        if values.ndim != 1 or values.shape != n:
            raise ProfileFormatError(
                src, f"shape {values.shape}", variable=name, expected=f"1-D with the shape of altitude {n}"
            )
    core = np.isfinite(arrays["altitude"]) & np.isfinite(arrays["pressure"]) & np.isfinite(arrays["temperature"])
    used = int(np.argmin(core)) if not core.all() else core.size
    if core[used:].any():
        raise ProfileFormatError(
            src,
            "non-finite values below the top of the profile",
            variable="altitude",
            expected="finite levels, NaN padding only above the last valid level",
        )
    arrays = {k: v[:used] for k, v in arrays.items()}
    if used < 2:
        raise ProfileFormatError(src, f"{used} valid levels", variable="altitude", expected="at least 2 levels")
    if np.any(np.diff(arrays["altitude"]) <= 0):
        raise ProfileFormatError(
            src,
            "altitude is not strictly increasing",
            variable="altitude",
            expected="levels ordered from the surface upwards",
        )
    if np.any(np.diff(arrays["pressure"]) >= 0) or np.any(arrays["pressure"] <= 0):
        raise ProfileFormatError(
            src,
            "pressure is not strictly decreasing with altitude",
            variable="pressure",
            expected="positive pressure (hPa) decreasing upwards",
        )
    temperature = arrays["temperature"]
    if temperature.min() < 100.0 or temperature.max() > 400.0:
        raise ProfileFormatError(
            src,
            f"temperature spans {temperature.min():.1f}-{temperature.max():.1f} K",
            variable="temperature",
            expected="kelvin between 100 and 400",
        )
    for name in levels.gases:
        values = arrays[f"gases[{name}]"]
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ProfileFormatError(
                src, "negative or non-finite amounts", variable=name, expected="ppmv >= 0 at every level"
            )
    gases = {name: arrays[f"gases[{name}]"] for name in levels.gases}
    return Levels(arrays["altitude"], arrays["pressure"], temperature, gases, src)


def _interp(z_new: np.ndarray, z: np.ndarray, values: np.ndarray, log_scale: bool) -> np.ndarray:
    if log_scale and np.all(values > 0):
        return np.exp(np.interp(z_new, z, np.log(values)))
    return np.interp(z_new, z, values)


def thinning_grid(surface_km: float, top_km: float, layering: str = "standard") -> np.ndarray:
    """Level altitudes for LOWTRAN: the surface, the ``layering`` grid above it, the top (<= 34 levels).

    ``"standard"``: LOWTRAN's own boundaries (identical to the built-in atmospheres' grid for a surface at
    0 km and a profile reaching 100 km), so the bottom kilometre is one layer. ``"near_surface"``: adds
    :data:`NEAR_SURFACE_OFFSETS_KM` above the surface and thins the stratosphere instead.
    """
    if layering not in LAYERINGS:
        raise ParameterError(
            "thinning_grid",
            f"layering {layering!r}",
            variable="layering",
            expected=" or ".join(repr(x) for x in LAYERINGS),
        )
    if layering == "standard":
        grid = STANDARD_GRID_KM
    else:
        grid = tuple(surface_km + dz for dz in NEAR_SURFACE_OFFSETS_KM) + tuple(
            z for z in NEAR_SURFACE_GRID_KM if z > surface_km + NEAR_SURFACE_OFFSETS_KM[-1] + MIN_LAYER_KM
        )
    inner = [z for z in grid if surface_km + MIN_LAYER_KM < z < top_km - MIN_LAYER_KM]
    return np.array([surface_km, *inner, top_km])


def prepare_levels(levels: Levels, surface_altitude: float | None = None, layering: str = "standard") -> Levels:
    """Validated levels starting at ``surface_altitude`` (km, interpolated), thinned to <= 34 on the
    ``layering`` grid (:func:`thinning_grid`).

    Pressure is interpolated in log space, water vapour and ozone log-linearly, temperature and
    other gases linearly. Well-mixed gases missing from the profile get :data:`DEFAULT_PPMV`.
    A surface below the profile's lowest level is refused (the atmosphere below it is unknown).
    """
    valid = validate_levels(levels)
    z = valid.altitude
    zs = float(z[0]) if surface_altitude is None else float(surface_altitude)
    top = min(float(z[-1]), TOP_KM)
    if z[-1] > TOP_KM:
        log.debug("%s: levels above %g km left out (negligible in the thermal infrared)", valid.source, TOP_KM)
    if not math.isfinite(zs) or zs < z[0] - 1e-6:
        raise ParameterError(
            valid.source,
            f"surface altitude {zs} km is below the profile's lowest level ({z[0]:.3f} km)",
            variable="surface_altitude",
            expected="an altitude inside the profile (no extrapolation below its surface)",
        )
    if zs > top - 1.0:
        raise ParameterError(
            valid.source,
            f"surface altitude {zs} km is at or above the profile top ({top:.3f} km) less 1 km",
            variable="surface_altitude",
            expected="a surface well below the top of the profile",
        )
    grid = thinning_grid(zs, top, layering)
    gases = {name: _interp(grid, z, values, name in ("h2o", "o3")) for name, values in valid.gases.items()}
    for name, ppmv in DEFAULT_PPMV.items():
        gases.setdefault(name, np.full(grid.size, ppmv))
    return Levels(
        grid,
        np.exp(np.interp(grid, z, np.log(valid.pressure))),
        np.interp(grid, z, valid.temperature),
        gases,
        valid.source,
    )


def _check_grid(wavenumber: tuple[float, float, float]) -> tuple[float, float, float, int]:
    v1, v2, dv = (float(x) for x in wavenumber)
    ok = (
        MIN_WAVENUMBER <= v1 < v2 <= MAX_WAVENUMBER
        and dv >= 5
        and v1 % 5 == 0
        and v2 % 5 == 0
        and dv % 5 == 0
        and (v2 - v1) % dv == 0
    )
    if not ok:
        raise ParameterError(
            "run_lowtran",
            f"wavenumber grid {wavenumber}",
            variable="wavenumber",
            expected="(v1, v2, dv) cm-1, multiples of 5, v1 < v2, dv >= 5 dividing v2 - v1",
        )
    return v1, v2, dv, int(round((v2 - v1) / dv)) + 1


def _geometry(direction: str, view_zenith: float, surface_km: float, top_km: float, model: int):
    """(ITYPE, H1, H2, ANGLE) for a down-looking path from space to the surface seen at zenith angle
    ``view_zenith`` at the surface, or an up-looking path from the surface to space."""
    if not 0.0 <= view_zenith <= 89.0:
        raise ParameterError(
            "run_lowtran", f"view zenith {view_zenith}", variable="view_zenith", expected="degrees in [0, 89]"
        )
    if direction == "up":
        return 3, surface_km, 0.0, view_zenith
    if direction != "down":
        raise ParameterError(
            "run_lowtran",
            f"direction {direction!r}",
            variable="direction",
            expected="'down' (sensor above the surface) or 'up' (surface looking at the sky)",
        )
    radius = EARTH_RADIUS_KM.get(model, DEFAULT_EARTH_RADIUS_KM)
    sin_top = (radius + surface_km) / (radius + top_km) * math.sin(math.radians(view_zenith))
    return 2, top_km, surface_km, 180.0 - math.degrees(math.asin(sin_top))


def _call(
    *,
    model: int,
    emission: bool,
    itype: int,
    levels: Levels | None,
    grid,
    h1,
    h2,
    angle,
    surface_temperature: float,
    surface_albedo: float,
) -> Spectrum:
    v1, v2, dv, nwl = grid
    if levels is None:
        z = p = t = np.zeros(1, dtype=np.float32)
        wmol = np.zeros((12, 1), dtype=np.float32, order="F")
        units = np.full(12, UNIT_US_STANDARD, dtype=np.int32)
    else:
        if levels.altitude.size > MAX_LEVELS:
            raise ParameterError(
                levels.source,
                f"{levels.altitude.size} levels",
                variable="altitude",
                expected=f"at most {MAX_LEVELS} (use prepare_levels to thin)",
            )
        z, p, t = (np.asarray(a, dtype=np.float32) for a in (levels.altitude, levels.pressure, levels.temperature))
        wmol = np.zeros((12, z.size), dtype=np.float32, order="F")
        units = np.full(12, UNIT_US_STANDARD, dtype=np.int32)
        for i, name in enumerate(SPECIES):
            if name in levels.gases:
                wmol[i] = levels.gases[name]
                units[i] = UNIT_PPMV
    module = load_extension()
    with _CALL_LOCK:
        nu, tau, rad = module.akkdrt(
            nwl,
            v1,
            v2,
            dv,
            model,
            1 if emission else 0,
            itype,
            z,
            p,
            t,
            wmol,
            units,
            float(surface_temperature),
            float(surface_albedo),
            float(h1),
            float(h2),
            float(angle),
        )
    nu = nu.astype(float)
    if nu.size != nwl or not np.allclose(nu, v1 + dv * np.arange(nwl)):
        raise ParameterError(
            "run_lowtran",
            "LOWTRAN returned an unexpected wavenumber grid",
            variable="wavenumber",
            expected=f"{nwl} points from {v1} to {v2} cm-1 (geometry rejected?)",
        )
    radiance = rad.astype(float) * RADIANCE_SCALE if emission else np.full(nwl, np.nan)
    return Spectrum(nu, 1.0e4 / nu, tau.astype(float), radiance)


def _surface_args(mode: str, surface_temperature, surface_albedo):
    """(emission?, TBOUND, SALB); TBOUND 0 makes LOWTRAN use the lowest level's air temperature."""
    if mode not in ("transmittance", "radiance"):
        raise ParameterError("run_lowtran", f"mode {mode!r}", variable="mode", expected="'transmittance' or 'radiance'")
    albedo = float(surface_albedo)
    if not 0.0 <= albedo <= 1.0:
        raise ParameterError(
            "run_lowtran", f"surface albedo {albedo}", variable="surface_albedo", expected="a value in [0, 1]"
        )
    if surface_temperature is None:
        return mode == "radiance", 0.0, albedo
    temperature = float(surface_temperature)
    if not 150.0 <= temperature <= 400.0:
        raise ParameterError(
            "run_lowtran",
            f"surface temperature {temperature} K",
            variable="surface_temperature",
            expected="kelvin between 150 and 400",
        )
    return mode == "radiance", temperature, albedo


def run_lowtran(
    levels: Levels,
    *,
    mode: str = "radiance",
    direction: str = "down",
    view_zenith: float = 0.0,
    surface_altitude: float | None = None,
    surface_temperature: float | None = None,
    surface_albedo: float = 0.0,
    wavenumber: tuple[float, float, float] = (700.0, 1400.0, 5.0),
    layering: str = "standard",
) -> Spectrum:
    """Spectral transmittance and radiance (W m-2 sr-1 um-1) along one path, no aerosols.

    ``direction="down"``: from the profile top to the surface, ``view_zenith`` measured at the
    surface; radiance = surface emission (1 - albedo)·B(T_s)·τ + atmospheric path emission, so
    ``surface_albedo=1`` gives the path radiance L↑. ``direction="up"``: from the surface to space
    (sky radiance at that zenith angle). ``surface_temperature`` defaults to the lowest level's air
    temperature. Levels are validated, interpolated to start at ``surface_altitude`` and thinned on the
    ``layering`` grid (:func:`thinning_grid`).
    """
    grid = _check_grid(wavenumber)
    prepared = prepare_levels(levels, surface_altitude, layering)
    emission, temperature, albedo = _surface_args(mode, surface_temperature, surface_albedo)
    itype, h1, h2, angle = _geometry(
        direction, float(view_zenith), float(prepared.altitude[0]), float(prepared.altitude[-1]), 7
    )
    return _call(
        model=7,
        emission=emission,
        itype=itype,
        levels=prepared,
        grid=grid,
        h1=h1,
        h2=h2,
        angle=angle,
        surface_temperature=temperature,
        surface_albedo=albedo,
    )


def run_builtin_model(
    model: int,
    *,
    mode: str = "radiance",
    direction: str = "down",
    view_zenith: float = 0.0,
    surface_temperature: float | None = None,
    surface_albedo: float = 0.0,
    wavenumber: tuple[float, float, float] = (700.0, 1400.0, 5.0),
) -> Spectrum:
    """Same as :func:`run_lowtran` for LOWTRAN's built-in atmosphere ``model`` (1 tropical … 6 US
    standard; surface at 0 km, top 100 km, CO2 330 ppm): the reference for round-trip checks."""
    if model not in range(1, 7):
        raise ParameterError("run_builtin_model", f"model {model!r}", variable="model", expected="an integer 1-6")
    grid = _check_grid(wavenumber)
    emission, temperature, albedo = _surface_args(mode, surface_temperature, surface_albedo)
    itype, h1, h2, angle = _geometry(direction, float(view_zenith), 0.0, TOP_KM, model)
    return _call(
        model=model,
        emission=emission,
        itype=itype,
        levels=None,
        grid=grid,
        h1=h1,
        h2=h2,
        angle=angle,
        surface_temperature=temperature,
        surface_albedo=albedo,
    )
