"""Band-effective atmospheric terms (τ, L↑, L↓) from LOWTRAN7, singly or as cached parallel tables.

At-sensor radiance per band: ``L = τ·(ε·B(Ts) + (1−ε)·L↓) + L↑``. For one profile, surface altitude
and view zenith:

* τ and L↑ come from one down-looking LOWTRAN radiance run over a zero-emission surface
  (albedo 1, no multiple scattering, so nothing is reflected): the radiance is pure path emission.
* L↓ is the hemispheric sky radiance ∫₀¹ 2μ L(μ) dμ (= E↓/π) by 4-point Gauss–Legendre over μ,
  with the observer on the surface looking up.
* Band values: radiances are SRF-weighted means of the spectral radiance (per µm); τ is the
  SRF-weighted mean of spectral τ (not weighted by the surface Planck function, so it does not
  depend on Ts; the difference from a B(Ts)-weighted τ is ≤ 0.0015 for ASTER TIR bands).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import xarray as xr

from ..config import cache_dir
from ..constants import G0, M_AIR, M_H2O
from ..errors import ParameterError, ProfileFormatError
from ..sensors.aster import ASTER_TIR
from ..sensors.planck import band_average
from .lowtran import SPECIES, Levels, build_key, prepare_levels, run_lowtran

log = logging.getLogger(__name__)

WAVENUMBER_GRID = (700.0, 1400.0, 5.0)
N_SKY_ANGLES = 4
#: Surface altitudes this far (km) below a profile's lowest level are clipped to it, lower ones → NaN.
SURFACE_TOLERANCE_KM = 0.05
TERMS_VERSION = "2"
#: Level grid of the simulation terms (see ``lowtran.thinning_grid``): finer in the bottom kilometre.
LAYERING = "near_surface"


def sky_quadrature(n: int = N_SKY_ANGLES) -> tuple[np.ndarray, np.ndarray]:
    """Zenith angles (deg) and weights with Σ w·L(θ) ≈ ∫₀¹ 2μ L(μ) dμ (Gauss–Legendre in μ)."""
    x, w = np.polynomial.legendre.leggauss(n)
    mu = 0.5 * (x + 1.0)
    return np.degrees(np.arccos(mu)), mu * w


def profile_levels(profile: xr.Dataset, index: int | None = None) -> tuple[Levels, float]:
    """``Levels`` and lowest valid altitude (km) of one profile in the project profile format.

    ``index`` selects along ``profile``; a Dataset without that dimension is one profile. Gases
    that are entirely NaN (unknown) are left out, so LOWTRAN defaults (or 400/1.8/0.32 ppmv) apply.
    """
    one = profile.isel(profile=index) if "profile" in profile.dims else profile
    pid = one["profile_id"].item() if "profile_id" in one.coords or "profile_id" in one else "profile"
    for name in ("altitude", "pressure", "temperature", "h2o"):
        if name not in one:
            raise ProfileFormatError(
                pid, "variable missing", variable=name, expected="the profile format of docs/architecture.md"
            )
    gases = {}
    for name in SPECIES:
        if name in one and np.isfinite(one[name].values).any():
            gases[name] = one[name].values
    altitude = one["altitude"].values
    lowest = float(np.nanmin(altitude))
    if "surface_altitude" in one and np.isfinite(one["surface_altitude"].item()):
        lowest = max(lowest, float(one["surface_altitude"].item()))
    levels = Levels(altitude, one["pressure"].values, one["temperature"].values, gases, str(pid))
    return levels, lowest


def specific_humidity(h2o_ppmv):
    """Specific humidity (kg/kg) from a water-vapour volume mixing ratio in ppmv (per dry air)."""
    w = np.asarray(h2o_ppmv, dtype=float) * 1e-6 * M_H2O / M_AIR
    return w / (1.0 + w)


def column_water_vapour(pressure, h2o_ppmv, altitude=None, surface_altitude=None) -> float:
    """Precipitable water (g cm⁻²) = (1/g) ∫ q dp, trapezoid over pressure (hPa); NaN levels ignored.

    With ``altitude`` and ``surface_altitude`` (km) the column starts at that altitude (ln p and H2O
    interpolated linearly in altitude): the column above a surface placed inside the profile.
    """
    p, w = np.asarray(pressure, float), np.asarray(h2o_ppmv, float)
    ok = np.isfinite(p) & np.isfinite(w)
    if surface_altitude is not None:
        z = np.asarray(altitude, float)
        ok &= np.isfinite(z)
        z, p, w = z[ok], p[ok], w[ok]
        above = z > surface_altitude
        p = np.r_[np.exp(np.interp(surface_altitude, z, np.log(p))), p[above]]
        w = np.r_[np.interp(surface_altitude, z, w), w[above]]
    else:
        p, w = p[ok], w[ok]
    q = specific_humidity(w)
    return float(np.sum(0.5 * (q[1:] + q[:-1]) * (p[:-1] - p[1:])) * 100.0 / G0 / 10.0)


def spectral_terms(
    levels: Levels, view_zenith, surface_altitude: float, layering: str = LAYERING
) -> dict[str, np.ndarray]:
    """Spectral τ and L↑ per view zenith (n_vz, n_wn) and L↓ (n_wn) on :data:`WAVENUMBER_GRID`.

    The profile is cut at ``surface_altitude`` and thinned on the ``layering`` grid; L↓ is computed once
    and shared by all view angles. Plain NumPy in and out, so it runs in worker processes.
    """
    prepared = prepare_levels(levels, surface_altitude, layering)
    zs = float(prepared.altitude[0])
    common = dict(mode="radiance", surface_altitude=zs, wavenumber=WAVENUMBER_GRID, layering=layering)
    angles, weights = sky_quadrature()
    sky = sum(
        w * run_lowtran(prepared, direction="up", view_zenith=a, **common).radiance for a, w in zip(angles, weights)
    )
    up = [
        run_lowtran(prepared, direction="down", view_zenith=float(v), surface_albedo=1.0, **common)
        for v in np.atleast_1d(view_zenith)
    ]
    return {
        "wavelength_um": up[0].wavelength_um,
        "transmittance": np.stack([s.transmittance for s in up]),
        "path_radiance": np.stack([s.radiance for s in up]),
        "sky_radiance": sky,
        "surface_air_temperature": float(prepared.temperature[0]),
        "column_water_vapour": column_water_vapour(levels.pressure, levels.gases["h2o"], levels.altitude, zs),
    }


def _band_dataset(spectra: dict, sensor) -> dict[str, np.ndarray]:
    lam = spectra["wavelength_um"]
    return {
        "transmittance": band_average(lam, spectra["transmittance"], sensor),
        "path_radiance": band_average(lam, spectra["path_radiance"], sensor),
        "sky_radiance": band_average(lam, spectra["sky_radiance"], sensor),
    }


def _check_angles(view_zenith) -> np.ndarray:
    angles = np.atleast_1d(np.asarray(view_zenith, dtype=float))
    if angles.ndim != 1 or not np.all((angles >= 0) & (angles <= 89)):
        raise ParameterError(
            "atmospheric terms", f"view zenith {view_zenith}", variable="view_zenith", expected="degrees in [0, 89]"
        )
    return angles


def band_terms(
    profile: xr.Dataset, view_zenith: float, surface_altitude: float, sensor=ASTER_TIR, layering: str = LAYERING
) -> xr.Dataset:
    """Band-effective ``transmittance``, ``path_radiance`` (L↑) and ``sky_radiance`` (L↓) on ``band``.

    ``profile``: one profile in the project format (or a profile set with a single profile).
    Radiances in W m⁻² sr⁻¹ µm⁻¹. A surface below the profile's lowest level raises ParameterError.
    """
    if "profile" in profile.dims and profile.sizes["profile"] != 1:
        raise ParameterError(
            "band_terms",
            f"{profile.sizes['profile']} profiles",
            variable="profile",
            expected="one profile (use terms_table for many)",
        )
    levels, lowest = profile_levels(profile, 0 if "profile" in profile.dims else None)
    angle = float(_check_angles(view_zenith)[0])
    zs = _effective_surface(float(surface_altitude), lowest)
    if zs is None:
        raise ParameterError(
            levels.source,
            f"surface altitude {surface_altitude} km is below the profile's lowest level ({lowest:.3f} km)",
            variable="surface_altitude",
            expected="an altitude inside the profile (no extrapolation below its surface)",
        )
    spectra = spectral_terms(levels, [angle], zs, layering)
    bands = _band_dataset(spectra, sensor)
    coords = {"band": list(sensor.band_names), "wavelength": ("band", np.asarray(sensor.centers_um))}
    ds = xr.Dataset({k: ("band", v[0] if v.ndim == 2 else v) for k, v in bands.items()}, coords=coords)
    ds["surface_air_temperature"] = spectra["surface_air_temperature"]
    ds["column_water_vapour"] = spectra["column_water_vapour"]
    return _annotate(
        ds.assign_attrs(profile_id=levels.source, view_zenith=angle, surface_altitude=zs, layering=layering)
    )


def _effective_surface(requested: float, lowest: float) -> float | None:
    """Requested surface altitude, clipped up to the profile's lowest level within tolerance; None below."""
    if requested < lowest - SURFACE_TOLERANCE_KM:
        return None
    return max(requested, lowest)


def _annotate(ds: xr.Dataset) -> xr.Dataset:
    units = {
        "transmittance": "1",
        "path_radiance": "W m-2 sr-1 um-1",
        "sky_radiance": "W m-2 sr-1 um-1",
        "surface_air_temperature": "K",
        "column_water_vapour": "g cm-2",
        "wavelength": "um",
        "view_zenith": "degree",
        "surface_altitude": "km",
    }
    for name, unit in units.items():
        if name in ds.variables:
            ds[name].attrs["units"] = unit
    ds.attrs.update(
        rt_model="LOWTRAN7 (patched, no aerosol)",
        band_transmittance="SRF-weighted mean",
        sky_quadrature=f"Gauss-Legendre, {N_SKY_ANGLES} angles",
    )
    return ds


def _table_task(args):
    """Worker: spectral terms for one (profile, surface altitude); None where the altitude is invalid."""
    levels, lowest, zs, angles, layering = args
    effective = _effective_surface(zs, lowest)
    if effective is None:
        return None
    try:
        return spectral_terms(levels, angles, effective, layering)
    except ParameterError as err:  # surface too close to the profile top
        log.warning("%s", err)
        return None


def _table_key(tasks_levels, angles, altitudes, sensor, layering) -> str:
    digest = hashlib.sha256()
    for part in (TERMS_VERSION, build_key(), repr(WAVENUMBER_GRID), str(N_SKY_ANGLES), sensor.name, layering):
        digest.update(part.encode())
    for band in sensor.bands:
        digest.update(band.srf_wavelength_um.tobytes() + band.srf_response.tobytes())
    digest.update(np.asarray(angles, float).tobytes() + np.asarray(altitudes, float).tobytes())
    for levels, lowest in tasks_levels:
        digest.update(levels.source.encode() + np.float64(lowest).tobytes())
        for values in (levels.altitude, levels.pressure, levels.temperature):
            digest.update(np.asarray(values, float).tobytes())
        for name in sorted(levels.gases):
            digest.update(name.encode() + np.asarray(levels.gases[name], float).tobytes())
    return digest.hexdigest()[:24]


def _start_method() -> str:
    """``fork`` where available and the caller runs a single thread: workers then never re-import the
    caller's ``__main__``, so scripts without an ``if __name__ == "__main__"`` guard and code piped on
    stdin work. Otherwise ``spawn`` (forking a multi-threaded process can deadlock)."""
    return "fork" if "fork" in get_all_start_methods() and threading.active_count() == 1 else "spawn"


def _run_tasks(tasks, processes: int):
    if processes <= 1 or len(tasks) <= 1:
        return [_table_task(t) for t in tasks]
    method = _start_method()
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=get_context(method)) as pool:
            return list(pool.map(_table_task, tasks, chunksize=max(1, len(tasks) // (4 * processes))))
    except BrokenProcessPool as exc:
        raise ParameterError(
            "terms_table",
            f"LOWTRAN worker processes ({method}) died",
            variable="processes",
            expected="processes=1, or calling code under if __name__ == '__main__' (worker "
            "processes started by 'spawn' re-import the main script)",
        ) from exc


def terms_table(
    profiles: xr.Dataset,
    view_zenith=(0.0,),
    surface_altitude=(0.0,),
    processes: int = 2,
    cache: bool = True,
    sensor=ASTER_TIR,
    layering: str = LAYERING,
) -> xr.Dataset:
    """Band terms on ``(profile, surface_altitude, view_zenith, band)``, computed in ``processes``
    worker processes and cached on disk (NetCDF keyed by a hash of every input).

    Also ``surface_air_temperature`` and ``column_water_vapour`` on ``(profile, surface_altitude)``.
    Surface altitudes more than 50 m below a profile's lowest level (or within 1 km of its top) give
    NaN with a warning: extrapolating an atmosphere below its surface would invent air.
    """
    angles = _check_angles(view_zenith)
    if int(processes) != processes or processes < 1:
        raise ParameterError(
            "terms_table", f"processes={processes!r}", variable="processes", expected="a positive integer"
        )
    altitudes = np.atleast_1d(np.asarray(surface_altitude, dtype=float))
    if altitudes.ndim != 1 or not np.all(np.isfinite(altitudes)):
        raise ParameterError(
            "terms_table",
            f"surface altitude {surface_altitude}",
            variable="surface_altitude",
            expected="finite altitudes in km",
        )
    if "profile" not in profiles.dims:
        profiles = profiles.expand_dims("profile")
    per_profile = [profile_levels(profiles, i) for i in range(profiles.sizes["profile"])]
    key = _table_key(per_profile, angles, altitudes, sensor, layering)
    path = cache_dir() / "atmosphere_terms" / f"{key}.nc"
    if cache and path.is_file():
        log.info("atmospheric terms from cache %s", path)
        with xr.open_dataset(path, engine="h5netcdf") as cached:
            return cached.load()
    tasks = [(levels, lowest, float(z), angles, layering) for levels, lowest in per_profile for z in altitudes]
    results = _run_tasks(tasks, processes)
    table = _assemble(profiles, per_profile, results, angles, altitudes, sensor).assign_attrs(layering=layering)
    if cache:
        _write_atomic(table, path)
    return table


def _assemble(profiles, per_profile, results, angles, altitudes, sensor) -> xr.Dataset:
    n_p, n_z, n_v, n_b = len(per_profile), altitudes.size, angles.size, len(sensor)
    band_vars = {name: np.full((n_p, n_z, n_v, n_b), np.nan) for name in ("transmittance", "path_radiance")}
    sky = np.full((n_p, n_z, n_b), np.nan)
    scalars = {name: np.full((n_p, n_z), np.nan) for name in ("surface_air_temperature", "column_water_vapour")}
    skipped = []
    for k, spectra in enumerate(results):
        i, j = divmod(k, n_z)
        if spectra is None:
            skipped.append(f"{per_profile[i][0].source}@{altitudes[j]:g}km")
            continue
        bands = _band_dataset(spectra, sensor)
        for name in band_vars:
            band_vars[name][i, j] = bands[name]
        sky[i, j] = bands["sky_radiance"]
        for name in scalars:
            scalars[name][i, j] = spectra[name]
    if skipped:
        message = (
            f"{len(skipped)} (profile, surface altitude) pairs outside their profile are NaN: "
            f"{', '.join(skipped[:5])}{' …' if len(skipped) > 5 else ''}"
        )
        warnings.warn(message, stacklevel=3)
        log.warning(message)
    dims4 = ("profile", "surface_altitude", "view_zenith", "band")
    data = {name: (dims4, values) for name, values in band_vars.items()}
    data["sky_radiance"] = (("profile", "surface_altitude", "band"), sky)
    data.update({name: (("profile", "surface_altitude"), values) for name, values in scalars.items()})
    coords = {
        "profile_id": ("profile", [levels.source for levels, _ in per_profile]),
        "surface_altitude": altitudes,
        "view_zenith": angles,
        "band": list(sensor.band_names),
        "wavelength": ("band", np.asarray(sensor.centers_um)),
    }
    if "source" in profiles.coords:
        coords["source"] = ("profile", [str(s) for s in profiles["source"].values])
    table = xr.Dataset(data, coords=coords)
    table["sky_radiance"] = table["sky_radiance"].broadcast_like(table["transmittance"]).transpose(*dims4)
    return _annotate(table)


def _write_atomic(table: xr.Dataset, path: Path) -> None:
    """Write NetCDF to a temporary file and rename, so readers never see a partial cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".nc.tmp", dir=path.parent)
    os.close(handle)
    try:
        table.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    log.info("atmospheric terms cached in %s", path)
