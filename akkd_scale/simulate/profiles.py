"""Atmospheric profile readers: every source into one xarray profile format.

The format (docs/architecture.md): dims ``(profile, level)``, level 0 = surface, altitude increasing;
``pressure`` hPa, ``altitude`` km, ``temperature`` K, gases ``h2o o3 co2 ch4 n2o co`` in ppmv by volume;
per profile ``surface_pressure`` hPa, ``surface_altitude`` km, ``surface_air_temperature`` K,
``column_water_vapour`` g cm⁻²; coordinates ``profile_id`` ("ecmwf83:017") and ``source``.

Conventions shared by the readers, chosen because the files give different things:

* Levels below the surface pressure (the ECMWF/TIGR grids run to 1100/1013 hPa everywhere) are cut and a
  surface level is inserted at the surface pressure, interpolated linearly in ln p.
* Altitudes come from the hypsometric equation with virtual temperature (layer mean, g = 9.80665), starting
  from the file's surface altitude when it has one (UMBC, AFGL) and otherwise from the surface pressure
  through the ICAO standard-atmosphere relation (ECMWF-83/52 and TIGR carry no orography).
* Gases a file does not give are filled with present-day constants (CO2 400, CH4 1.8, N2O 0.32 ppmv,
  ASTER_FACTS) so LOWTRAN never falls back to its 330 ppm CO2; CO stays NaN when unknown.
* Column water vapour = (1/g) ∫ q dp from the surface to the top (trapezoid in pressure).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import numpy as np
import xarray as xr

from .. import config
from ..constants import EARTH_RADIUS_KM, G0, M_AIR, M_H2O, M_O3, R_DRY
from ..errors import ParameterError, ProfileFormatError
from ..physics.atmosphere import column_water_vapour, specific_humidity
from ..physics.lowtran import DEFAULT_PPMV

logger = logging.getLogger(__name__)

GASES = ("h2o", "o3", "co2", "ch4", "n2o", "co")

AFGL_TABLES = {
    "tropical": "table_1a.csv",
    "midlatitude_summer": "table_1b.csv",
    "midlatitude_winter": "table_1c.csv",
    "subarctic_summer": "table_1d.csv",
    "subarctic_winter": "table_1e.csv",
    "us_standard": "table_1f.csv",
}
SETS = ("ecmwf83", "ecmwf52", "umbc48", "afgl", "tigr")
#: TIGR-2000 file under ``data_dir()/profiles`` (2 231 profiles, CC BY 4.0; data/README.md).
TIGR_FILE = "tigr2000/tigr2000_v1.2_43lev_2231.dsf"
#: Clear-sky screening: a profile is taken as cloudy where the relative humidity over liquid water reaches
#: this value at any level between the surface and :data:`SCREEN_TOP_HPA`.
CLEAR_SKY_MAX_RH = 0.95
SCREEN_TOP_HPA = 300.0

# TIGR-2000 43-level grid, surface first. Levels 1013…0.05 hPa as in UMBC's TIGR-derived profiles
# (crtm_umbc48/myp19), top 0.024/0.0089/0.0026 hPa per the TIGR-2000 range 0.0026–1013 hPa.
TIGR_PRESSURE_LEVELS = np.array(
    [
        1013.0,
        955.12,
        900.33,
        848.69,
        800.0,
        724.78,
        651.04,
        584.8,
        525.0,
        471.86,
        423.85,
        380.73,
        341.99,
        307.2,
        275.95,
        247.87,
        222.65,
        200.0,
        161.99,
        131.2,
        106.27,
        86.07,
        69.71,
        56.46,
        45.73,
        37.04,
        24.79,
        16.6,
        11.11,
        7.43,
        4.98,
        3.33,
        2.23,
        1.5,
        1.0,
        0.55,
        0.3,
        0.17,
        0.09,
        0.05,
        0.024,
        0.0089,
        0.0026,
    ]
)


def standard_atmosphere_altitude(pressure_hpa):
    """Altitude (km) of a pressure in the ICAO standard troposphere; used where files lack orography."""
    return 44.3308 * (1.0 - (np.asarray(pressure_hpa, dtype=float) / 1013.25) ** 0.190263)


def hypsometric_altitude(pressure, temperature, h2o_ppmv, surface_altitude):
    """Level altitudes (km, geometric) from the hypsometric equation with layer-mean virtual temperature.

    The equation gives geopotential height (constant g0); it is converted to geometric height with
    z = R·H/(R − H) (R = 6371 km), which matters above ~20 km.
    """
    pressure = np.asarray(pressure, float)
    tv = np.asarray(temperature, float) * (1.0 + 0.6078 * specific_humidity(h2o_ppmv))
    tv_layer = 0.5 * (tv[1:] + tv[:-1])
    dh = R_DRY * tv_layer / G0 * np.log(pressure[:-1] / pressure[1:]) / 1000.0
    h_surface = EARTH_RADIUS_KM * surface_altitude / (EARTH_RADIUS_KM + surface_altitude)
    h = h_surface + np.concatenate([[0.0], np.cumsum(dh)])
    return EARTH_RADIUS_KM * h / (EARTH_RADIUS_KM - h)


def saturation_h2o_ppmv(pressure, temperature, over_ice=True):
    """Saturation volume mixing ratio (ppmv): Magnus over water above 0 °C, over ice below
    (``over_ice=False``: over liquid water everywhere, the WMO convention for relative humidity)."""
    t = np.asarray(temperature, float) - 273.15
    es = np.where(
        (t >= 0.0) | (not over_ice),
        6.1094 * np.exp(17.625 * t / (t + 243.04)),
        6.1121 * np.exp(22.587 * t / (t + 273.86)),
    )
    es = np.minimum(es, 0.5 * np.asarray(pressure, float))
    return es / (np.asarray(pressure, float) - es) * 1e6


def _profile(
    source_file,
    profile_id,
    pressure,
    temperature,
    gases,
    *,
    surface_pressure=None,
    surface_altitude=None,
    expected_levels=None,
):
    """Validate one profile (any level order), cut it at the surface and return a dict of arrays."""
    pressure = np.asarray(pressure, float)
    temperature = np.asarray(temperature, float)
    if expected_levels is not None and pressure.size != expected_levels:
        raise ProfileFormatError(
            source_file,
            f"profile {profile_id} has {pressure.size} levels",
            variable="level",
            expected=f"{expected_levels} levels",
        )
    if pressure.size < 3:
        raise ProfileFormatError(
            source_file,
            f"profile {profile_id} has {pressure.size} levels",
            variable="level",
            expected="at least 3 levels",
        )
    order = -1 if pressure[0] < pressure[-1] else 1  # make level 0 the highest pressure
    pressure, temperature = pressure[::order], temperature[::order]
    gases = {k: np.asarray(v, float)[::order] for k, v in gases.items()}
    if not (np.all(np.isfinite(pressure)) and np.all(np.diff(pressure) < 0) and pressure[-1] > 0):
        raise ProfileFormatError(
            source_file,
            f"profile {profile_id}: pressure is not monotonic",
            variable="pressure",
            expected="strictly monotonic positive pressures",
        )
    if not np.all((temperature > 100) & (temperature < 400)):
        raise ProfileFormatError(
            source_file,
            f"profile {profile_id}: temperature outside 100–400 K",
            variable="temperature",
            expected="kelvin between 100 and 400",
        )
    for name, values in gases.items():
        if values.shape != pressure.shape:
            raise ProfileFormatError(
                source_file,
                f"profile {profile_id}: {values.size} values",
                variable=name,
                expected=f"{pressure.size} values, one per level",
            )
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ProfileFormatError(
                source_file,
                f"profile {profile_id}: negative or missing amounts",
                variable=name,
                expected="non-negative finite ppmv",
            )
    if surface_pressure is not None and surface_pressure < pressure[0]:
        keep = pressure < surface_pressure
        lnp = np.log(pressure)

        def at_surface(values):
            return np.interp(np.log(surface_pressure), lnp[::-1], values[::-1])

        temperature = np.concatenate([[at_surface(temperature)], temperature[keep]])
        gases = {k: np.concatenate([[at_surface(v)], v[keep]]) for k, v in gases.items()}
        pressure = np.concatenate([[surface_pressure], pressure[keep]])
    if surface_altitude is None:
        surface_altitude = float(standard_atmosphere_altitude(pressure[0]))
    for name, value in DEFAULT_PPMV.items():
        gases.setdefault(name, np.full(pressure.shape, value))
    for name in GASES:  # unknown gases (e.g. CO, or O3 in a water-only file) stay NaN
        gases.setdefault(name, np.full(pressure.shape, np.nan))
    altitude = hypsometric_altitude(pressure, temperature, gases["h2o"], surface_altitude)
    return {
        "profile_id": profile_id,
        "pressure": pressure,
        "altitude": altitude,
        "temperature": temperature,
        **{g: gases[g] for g in GASES},
        "surface_pressure": pressure[0],
        "surface_altitude": altitude[0],
        "surface_air_temperature": temperature[0],
        "column_water_vapour": column_water_vapour(pressure, gases["h2o"]),
    }


def _stack(profiles, source, attrs=None):
    """Dicts from :func:`_profile` → one Dataset, NaN-padded at the top to the longest profile."""
    n_level = max(p["pressure"].size for p in profiles)

    def pad(values):
        out = np.full(n_level, np.nan)
        out[: values.size] = values
        return out

    level_vars = ("pressure", "altitude", "temperature") + GASES
    data = {v: (("profile", "level"), np.stack([pad(p[v]) for p in profiles])) for v in level_vars}
    for v in ("surface_pressure", "surface_altitude", "surface_air_temperature", "column_water_vapour"):
        data[v] = ("profile", np.array([p[v] for p in profiles], float))
    ds = xr.Dataset(
        data,
        coords={
            "profile_id": ("profile", [p["profile_id"] for p in profiles]),
            "source": ("profile", [source] * len(profiles)),
        },
        attrs=dict(attrs or {}),
    )
    return _annotate(ds)


def _annotate(ds):
    units = {
        "pressure": "hPa",
        "altitude": "km",
        "temperature": "K",
        "surface_pressure": "hPa",
        "surface_altitude": "km",
        "surface_air_temperature": "K",
        "column_water_vapour": "g cm-2",
        **{g: "ppmv" for g in GASES},
    }
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    return ds


def _numbers(line):
    return [float(x) for x in line.replace("D", "E").split()]


def _check_file(path):
    path = Path(path)
    if not path.is_file():
        raise ProfileFormatError(path, "file does not exist", expected="a profile text file")
    return path


def read_afgl(name: str) -> xr.Dataset:
    """One of the six AFGL-1986 atmospheres shipped by ``joseki`` (CO2 330 ppmv as tabulated)."""
    if name not in AFGL_TABLES:
        raise ParameterError(
            "read_afgl", f"unknown AFGL atmosphere {name!r}", variable="name", expected=", ".join(AFGL_TABLES)
        )
    spec = importlib.util.find_spec("joseki")  # locate the package data without importing joseki (slow)
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError(
            "read_afgl",
            "package joseki is not installed",
            variable="joseki",
            expected="pip install joseki (AFGL-1986 tables)",
        )
    folder = Path(spec.submodule_search_locations[0]) / "data" / "afgl_1986"

    def table(fname):
        text = (folder / fname).read_text()
        header, *rows = [line for line in text.splitlines() if line.strip()]
        values = np.array([_numbers(r.replace(",", " ")) for r in rows])
        return {h.strip(): values[:, i] for i, h in enumerate(header.split(","))}

    t1, t2 = table(AFGL_TABLES[name]), table("table_2a.csv")
    gases = {"h2o": t1["H2O"], "o3": t1["O3"], "n2o": t1["N2O"], "co": t1["CO"], "ch4": t1["CH4"], "co2": t2["CO2"]}
    prof = _profile(
        folder / AFGL_TABLES[name], f"afgl:{name}", t1["p"], t1["t"], gases, surface_altitude=float(t1["z"][0])
    )
    prof["altitude"] = np.asarray(t1["z"], float)  # tabulated geometric heights
    return _stack([prof], "afgl", {"reference": "Anderson et al. 1986, AFGL-TR-86-0110 (via joseki)"})


def _records(path: Path, header_prefix: str) -> list[tuple[str, list[str]]]:
    """(header line, following lines) per profile of a multi-profile text file; ``!`` comments and blank
    lines dropped, a record starting at each line that begins with ``header_prefix``."""
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("!")]
    starts = [i for i, ln in enumerate(lines) if ln.startswith(header_prefix)]
    return [(lines[a], lines[a + 1 : b]) for a, b in zip(starts, starts[1:] + [len(lines)])]


def read_crtm_ecmwf83(path=None, *, drop_envelopes=True) -> xr.Dataset:
    """ECMWF 83 diverse profiles (Matricardi 2008), all ppmv; drops envelopes 81–83."""
    path = _check_file(path or config.data_dir() / "profiles" / "crtm_ecmwf83" / "ECMWF_83P_91L.dat")
    records = _records(path, "Profile")
    if not records:
        raise ProfileFormatError(path, "no 'Profile N' lines", variable="Profile", expected="ECMWF-83 layout")
    profiles = []
    for header, body in records:
        number = int(header.split()[1])
        pid = f"ecmwf83:{number:03d}"
        if drop_envelopes and number >= 81:
            continue
        head = _numbers(body[0]) if body else []
        rows = [_numbers(ln) for ln in body[1:]]
        if any(len(r) != 8 for r in rows) or len(head) < 6:
            raise ProfileFormatError(
                path, f"profile {pid}: rows must have 8 columns", variable="row", expected="P T H2O CO2 O3 N2O CO CH4"
            )
        a = np.array(rows).reshape(-1, 8)
        gases = dict(zip(("h2o", "co2", "o3", "n2o", "co", "ch4"), a[:, 2:].T))
        profiles.append(_profile(path, pid, a[:, 0], a[:, 1], gases, surface_pressure=head[5], expected_levels=101))
    logger.info("read %d ECMWF-83 profiles from %s", len(profiles), path)
    return _stack(profiles, "ecmwf83", {"reference": "Matricardi 2008, ECMWF TM 564 (CRTM)"})


def read_crtm_ecmwf52(path=None, *, drop_envelopes=True) -> xr.Dataset:
    """ECMWF 52 diverse profiles (kg/kg → ppmv); drops the dry/moist/mean test profiles 50–52."""
    path = _check_file(path or config.data_dir() / "profiles" / "crtm_ecmwf52" / "diverse_52profiles_101L.dat")
    records = _records(path, "#")
    if not records:
        raise ProfileFormatError(path, "no '#NN' header lines", variable="header", expected="ECMWF-52 layout")
    profiles = []
    for header, body in records:
        head = header[1:].split()
        number = int(head[0])
        pid = f"ecmwf52:{number:03d}"
        if drop_envelopes and number >= 50:
            continue
        rows = [_numbers(ln) for ln in body]
        if any(len(r) != 4 for r in rows):
            raise ProfileFormatError(
                path, f"profile {pid}: rows must have 4 columns", variable="row", expected="P T Wv(kg/kg) O3(kg/kg)"
            )
        a = np.array(rows).reshape(-1, 4)
        if np.any(a[:, 2] < 0):
            raise ProfileFormatError(
                path, f"profile {pid}: negative water vapour", variable="h2o", expected="non-negative kg/kg"
            )
        gases = {"h2o": a[:, 2] * M_AIR / M_H2O * 1e6, "o3": a[:, 3] * M_AIR / M_O3 * 1e6}
        profiles.append(
            _profile(path, pid, a[:, 0], a[:, 1], gases, surface_pressure=float(head[4]), expected_levels=101)
        )
    logger.info("read %d ECMWF-52 profiles from %s", len(profiles), path)
    return _stack(
        profiles,
        "ecmwf52",
        {"reference": "ECMWF 52 diverse profiles (CRTM)", "h2o_conversion": "mass mixing ratio kg/kg -> ppmv"},
    )


HITRAN_GAS = {1: "h2o", 2: "co2", 3: "o3", 4: "n2o", 5: "co", 6: "ch4"}


def read_umbc_file(path, profile_id=None) -> dict:
    """One UMBC/AFGL-style ``'P' nlev ngas`` file → profile dict (gas columns by HITRAN id, ppmv)."""
    path = _check_file(path)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("!")]
    pid = profile_id or f"umbc48:{path.name}"
    head = lines[0].replace("'", " ").split()
    if len(head) < 3 or head[0] != "P":
        raise ProfileFormatError(
            path,
            "first data line is not 'P' nlev ngas",
            variable="header",
            expected="'P' nlev ngas (pressure-based AFGL layout)",
        )
    nlev, ngas = int(head[1]), int(head[2])
    ids = [int(x) for x in lines[1].split()]
    if len(ids) != ngas or any(i not in HITRAN_GAS for i in ids):
        raise ProfileFormatError(
            path, f"gas ids {ids}", variable="gas_ids", expected=f"{ngas} HITRAN ids among {sorted(HITRAN_GAS)}"
        )
    surface = _numbers(lines[2])
    rows = [_numbers(ln) for ln in lines[3:]]
    if len(rows) != nlev:
        raise ProfileFormatError(
            path, f"profile {pid} has {len(rows)} levels", variable="level", expected=f"{nlev} levels as declared"
        )
    if any(len(r) != 3 + ngas for r in rows):
        raise ProfileFormatError(
            path, f"profile {pid}: wrong column count", variable="row", expected=f"P T density + {ngas} gases"
        )
    a = np.array(rows)
    gases = {HITRAN_GAS[g]: a[:, 3 + i] for i, g in enumerate(ids)}
    surface_pressure = surface[3] if len(surface) >= 4 else None
    return _profile(
        path,
        pid,
        a[:, 0],
        a[:, 1],
        gases,
        surface_pressure=surface_pressure,
        surface_altitude=surface[1] if len(surface) >= 2 else 0.0,
    )


def read_crtm_umbc48(folder=None) -> xr.Dataset:
    """UMBC 48 profiles ``myp1``…``myp48`` (not ``mypref``); surface line is lat, altitude [, Ts, Ps]."""
    folder = Path(folder or config.data_dir() / "profiles" / "crtm_umbc48")
    files = sorted(folder.glob("myp*"), key=lambda p: (len(p.name), p.name))
    files = [f for f in files if re.fullmatch(r"myp\d+", f.name)]
    if not files:
        raise ProfileFormatError(folder, "no myp<N> files", expected="UMBC-48 profile folder")
    profiles = [read_umbc_file(f, f"umbc48:{int(f.name[3:]):03d}") for f in files]
    logger.info("read %d UMBC-48 profiles from %s", len(profiles), folder)
    return _stack(profiles, "umbc48", {"reference": "UMBC 48 AIRS profiles (CRTM), ppmv"})


def read_tigr(path, *, pressure_levels=TIGR_PRESSURE_LEVELS) -> xr.Dataset:
    """TIGR-2000 text: 26-line records (header; 43 T; Tsurf Psurf; 43 H2O g/g; 43 O3 g/g), top first.

    ``pressure_levels`` (hPa, surface first) defaults to :data:`TIGR_PRESSURE_LEVELS`.
    """
    path = _check_file(path)
    levels = np.asarray(pressure_levels, float)
    n = levels.size
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if len(lines) % 26:
        raise ProfileFormatError(
            path,
            f"{len(lines)} non-empty lines",
            variable="record",
            expected="a multiple of 26 (one 26-line record per profile)",
        )
    profiles = []
    for start in range(0, len(lines), 26):
        head = lines[start].split()
        pid = f"tigr:{int(float(head[0])):04d}"
        values = [v for ln in lines[start + 1 : start + 26] for v in _numbers(ln)]
        if len(values) != 3 * n + 2:
            raise ProfileFormatError(
                path,
                f"profile {pid}: {len(values)} numbers",
                variable="record",
                expected=f"{3 * n + 2} ({n} T, Tsurf Psurf, {n} H2O, {n} O3)",
            )
        t = np.array(values[:n])
        psurf = values[n + 1]
        h2o = np.array(values[n + 2 : 2 * n + 2])
        o3 = np.array(values[2 * n + 2 :])
        if np.any(h2o < 0):
            raise ProfileFormatError(
                path, f"profile {pid}: negative water vapour", variable="h2o", expected="non-negative g/g"
            )
        gases = {"h2o": h2o * M_AIR / M_H2O * 1e6, "o3": o3 * M_AIR / M_O3 * 1e6}
        # file order is top first; the levels are given surface first
        profiles.append(_profile(path, pid, levels[::-1], t, gases, surface_pressure=psurf))
    return _stack(profiles, "tigr", {"reference": "TIGR-2000 (LMD/ARA)"})


def concat_profiles(datasets) -> xr.Dataset:
    """Concatenate profile Datasets along ``profile``, NaN-padding levels at the top."""
    n_level = max(ds.sizes["level"] for ds in datasets)
    padded = [ds.pad(level=(0, n_level - ds.sizes["level"])) if ds.sizes["level"] < n_level else ds for ds in datasets]
    out = xr.concat(padded, dim="profile", coords="different", compat="equals", combine_attrs="drop")
    ids = out["profile_id"].values
    if len(set(ids)) != len(ids):
        raise ProfileFormatError(
            "concat_profiles", "duplicate profile ids", variable="profile_id", expected="unique ids across sets"
        )
    return _annotate(out)


def load_profiles(sets=("ecmwf83", "ecmwf52", "umbc48"), data_dir=None) -> xr.Dataset:
    """Profiles of several sets (names in :data:`SETS`) in one Dataset."""
    root = Path(data_dir) if data_dir else config.data_dir()
    parts = []
    for name in sets:
        if name == "afgl":
            parts.extend(read_afgl(n) for n in AFGL_TABLES)
        elif name == "ecmwf83":
            parts.append(read_crtm_ecmwf83(root / "profiles" / "crtm_ecmwf83" / "ECMWF_83P_91L.dat"))
        elif name == "ecmwf52":
            parts.append(read_crtm_ecmwf52(root / "profiles" / "crtm_ecmwf52" / "diverse_52profiles_101L.dat"))
        elif name == "umbc48":
            parts.append(read_crtm_umbc48(root / "profiles" / "crtm_umbc48"))
        elif name == "tigr":
            parts.append(read_tigr(root / "profiles" / TIGR_FILE))
        else:
            raise ParameterError(
                "load_profiles", f"unknown profile set {name!r}", variable="sets", expected=", ".join(SETS)
            )
    if not parts:
        raise ParameterError("load_profiles", "no profile sets given", variable="sets", expected=", ".join(SETS))
    return concat_profiles(parts)


def clear_sky(
    profiles: xr.Dataset, max_relative_humidity=CLEAR_SKY_MAX_RH, top_pressure=SCREEN_TOP_HPA
) -> xr.DataArray:
    """True per profile that passes the clear-sky screening (TIGR is not cloud-screened).

    Cloudy: relative humidity over liquid water ≥ ``max_relative_humidity`` at any level with pressure
    ≥ ``top_pressure`` hPa (the troposphere where clouds that hide the surface form). The maximum is
    returned as the coordinate ``max_relative_humidity``.
    """
    saturation = saturation_h2o_ppmv(profiles["pressure"], profiles["temperature"], over_ice=False)
    rh = (profiles["h2o"] / saturation).where(profiles["pressure"] >= top_pressure).max("level")
    return (rh < max_relative_humidity).assign_coords(max_relative_humidity=rh)


def screen_clear_sky(
    profiles: xr.Dataset, max_relative_humidity=CLEAR_SKY_MAX_RH, top_pressure=SCREEN_TOP_HPA
) -> tuple[xr.Dataset, list[str]]:
    """Profiles that pass :func:`clear_sky` and the ids of those dropped (logged by name)."""
    keep = clear_sky(profiles, max_relative_humidity, top_pressure).values
    dropped = [str(p) for p in profiles["profile_id"].values[~keep]]
    if dropped:
        logger.warning(
            "clear-sky screening (RH ≥ %.0f %% below %g hPa) drops %d profiles: %s",
            100 * max_relative_humidity,
            top_pressure,
            len(dropped),
            ", ".join(dropped),
        )
    return profiles.isel(profile=np.flatnonzero(keep)), dropped


def augment_profiles(profiles: xr.Dataset, temperature_offsets=(0.0,), water_scales=(1.0,)) -> xr.Dataset:
    """Copies of every profile with a uniform temperature offset (K) and a water-vapour scale factor.

    Water is capped at saturation at the (shifted) temperature, so scaling never makes supersaturated
    air; altitudes and column water vapour are recomputed. Ids get a suffix ``+dT{offset}w{scale}``.
    """
    offsets = np.atleast_1d(np.asarray(temperature_offsets, float))
    scales = np.atleast_1d(np.asarray(water_scales, float))
    if np.any(np.abs(offsets) > 30):
        raise ParameterError(
            "augment_profiles",
            "temperature offset beyond ±30 K",
            variable="temperature_offsets",
            expected="|offset| ≤ 30 K",
        )
    if np.any(scales <= 0) or np.any(scales > 5):
        raise ParameterError(
            "augment_profiles", "water scale outside (0, 5]", variable="water_scales", expected="0 < scale ≤ 5"
        )
    out = []
    for dt in offsets:
        for s in scales:
            if dt == 0 and s == 1:
                out.append(profiles)
                continue
            temperature = profiles["temperature"] + dt
            sat = saturation_h2o_ppmv(profiles["pressure"], temperature)
            h2o = np.minimum(profiles["h2o"] * s, np.maximum(sat, profiles["h2o"]))
            new = profiles.copy()
            new["temperature"] = temperature
            new["h2o"] = h2o
            new["surface_air_temperature"] = profiles["surface_air_temperature"] + dt
            alt = np.full(profiles["altitude"].shape, np.nan)
            cwv = np.empty(profiles.sizes["profile"])
            for i in range(profiles.sizes["profile"]):
                p = profiles["pressure"].values[i]
                ok = np.isfinite(p)
                alt[i, ok] = hypsometric_altitude(
                    p[ok], temperature.values[i][ok], h2o.values[i][ok], float(profiles["surface_altitude"].values[i])
                )
                cwv[i] = column_water_vapour(p[ok], h2o.values[i][ok])
            new["altitude"] = (("profile", "level"), alt)
            new["column_water_vapour"] = ("profile", cwv)
            suffix = f"+dT{dt:+g}w{s:g}"
            new = new.assign_coords(profile_id=("profile", [f"{p}{suffix}" for p in profiles["profile_id"].values]))
            out.append(_annotate(new))
    return xr.concat(out, dim="profile", combine_attrs="override") if len(out) > 1 else out[0]
