"""Training-set builder: profiles × surface altitude × view angle × emissivity × LST → noisy band BTs.

Per sample (all arithmetic vectorised over samples):

1. split s ∈ {train, validation, test} drawn with ``split_fractions``; profile uniform among the profiles
   of split s, spectrum by ``weight`` among the spectra of split s. Profiles are assigned to splits by their
   base id (the part before ``+``, so augmented copies stay with their original), spectra by their
   ``split`` coordinate when present (``natural_surfaces`` keeps mixtures within one split), otherwise
   at random. Hence splits are disjoint by profile and by spectrum.
2. surface altitude z ~ U(altitude range ∩ terms grid), view zenith θ ~ U(angle range ∩ terms grid);
   the default 0–60° is far wider than ASTER's TIR range (|θ| ≲ 10° incl. pointing) on purpose: θ is a
   network input and other sensors/off-nadir pointing must stay inside the training domain.
3. terms τ, L↑, L↓ bilinearly interpolated in (z, sec θ) — ln τ is interpolated (Beer–Lambert).
4. near-surface air temperature T_air(z) from the profile (below the profile's own surface: standard
   lapse 6.5 K/km); LST = T_air + U(lst_offset); column water vapour above z from the profile.
5. L = τ(εB(T) + (1−ε)L↓) + L↑ per band; Gaussian radiance noise σ_b = NEΔT·dB_b/dT at 300 K; BT.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from .. import __version__
from ..conventions import NEDT_K, TES_TERMS as TERMS
from ..errors import InputError, ParameterError
from ..physics.atmosphere import column_water_vapour
from ..physics.forward import at_sensor_radiance, radiance_noise_sigma
from ..sensors import ASTER_TIR, brightness_temperature
from .emissivity import assign_splits

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
LAPSE_RATE = 6.5  # K/km, standard atmosphere, for surfaces below a profile's lowest level
REQUIRED = ("brightness_temperature", "view_zenith", "column_water_vapour", "surface_altitude", "lst",
            "emissivity", "split", "profile_id", "spectrum_id")


def _check(condition, name, problem, expected):
    if not condition:
        raise ParameterError("build_training_set", problem, variable=name, expected=expected)


def _range(value, name, lo, hi):
    a, b = (float(v) for v in value)
    _check(np.isfinite([a, b]).all() and lo <= a <= b <= hi, name, f"range {value}", f"{lo} ≤ min ≤ max ≤ {hi}")
    return a, b


def profile_columns(profiles: xr.Dataset, altitudes) -> tuple[np.ndarray, np.ndarray]:
    """Per profile and altitude (km): column water vapour above it (g cm⁻²) and air temperature (K)."""
    altitudes = np.asarray(altitudes, float)
    n = profiles.sizes["profile"]
    cwv = np.empty((n, altitudes.size))
    tair = np.empty((n, altitudes.size))
    for i in range(n):
        z, p = profiles["altitude"].values[i], profiles["pressure"].values[i]
        t, h2o = profiles["temperature"].values[i], profiles["h2o"].values[i]
        ok = np.isfinite(z)
        for j, zj in enumerate(altitudes):
            cwv[i, j] = column_water_vapour(p, h2o, z, zj)
            tair[i, j] = np.interp(zj, z[ok], t[ok]) + LAPSE_RATE * max(z[ok][0] - zj, 0.0)
    return cwv, tair


def interpolate_grid(grids, values, points) -> np.ndarray:
    """Multilinear interpolation (``RegularGridInterpolator``) of ``values`` (grid axes first, trailing
    axes kept) at ``points`` (one array per grid), clamped to the grid; single-node axes are constant."""
    keep = [i for i, g in enumerate(grids) if len(g) > 1]
    values = values[tuple(slice(None) if i in keep else 0 for i in range(len(grids)))]
    if not keep:
        return np.broadcast_to(values, np.shape(points[0]) + values.shape).copy()
    xi = np.stack([np.clip(points[i], grids[i][0], grids[i][-1]) for i in keep], axis=-1)
    return RegularGridInterpolator([grids[i] for i in keep], values)(xi)


def _terms_for(profiles, terms, sensor):
    """Terms as (profile, z, v, band) arrays aligned with ``profiles``; grids; checks."""
    for name in TERMS:
        if name not in terms:
            raise InputError("terms", f"missing variable {name}", variable=name,
                             expected="terms_table Dataset (profile, surface_altitude, view_zenith, band)")
    if "profile_id" in terms.coords:
        index = {pid: i for i, pid in enumerate(terms["profile_id"].values)}
        missing = [pid for pid in profiles["profile_id"].values if pid not in index]
        if missing:
            raise InputError("terms", f"no terms for profiles {missing[:3]}", variable="profile_id",
                             expected="terms for every profile")
        terms = terms.isel(profile=[index[pid] for pid in profiles["profile_id"].values])
    elif terms.sizes["profile"] != profiles.sizes["profile"]:
        raise InputError("terms", f"{terms.sizes['profile']} profiles", variable="profile",
                         expected=f"{profiles.sizes['profile']} profiles (one per input profile)")
    terms = terms.sortby("surface_altitude").sortby("view_zenith")
    if "band" in terms.coords:
        terms = terms.sel(band=list(sensor.band_names))
    arrays = [terms[n].transpose("profile", "surface_altitude", "view_zenith", "band").values.astype(float)
              for n in TERMS]
    valid = np.all([np.isfinite(a).all(axis=(2, 3)) for a in arrays], axis=0)  # (profile, z)
    tau = arrays[0][valid]
    if np.any(tau <= 0) or np.any(tau > 1):
        raise InputError("terms", "transmittance outside (0, 1]", variable="transmittance", expected="0 < τ ≤ 1")
    z_grid = terms["surface_altitude"].values.astype(float)
    if "column_water_vapour" in terms and "surface_air_temperature" in terms:
        cwv = terms["column_water_vapour"].transpose("profile", "surface_altitude").values.astype(float)
        tair = terms["surface_air_temperature"].transpose("profile", "surface_altitude").values.astype(float)
    else:
        cwv, tair = profile_columns(profiles, z_grid)
    return z_grid, terms["view_zenith"].values.astype(float), valid, cwv, tair, *arrays


def _valid_altitudes(valid, z_grid, z_lo, z_hi):
    """Per profile: the altitude interval inside [z_lo, z_hi] spanned by consecutive valid grid nodes."""
    lo = np.full(valid.shape[0], np.nan)
    hi = np.full(valid.shape[0], np.nan)
    for i, row in enumerate(valid):
        nodes = np.flatnonzero(row)
        if not nodes.size or np.any(np.diff(nodes) != 1):
            continue  # no terms, or holes: unusable
        a, b = max(z_lo, z_grid[nodes[0]]), min(z_hi, z_grid[nodes[-1]])
        if a <= b:
            lo[i], hi[i] = a, b
    return lo, hi


def _band_table(spectra, sensor):
    """Band emissivity as (spectrum, view_zenith, band) plus angle grid, weights, splits or None."""
    eps = spectra["emissivity"] if isinstance(spectra, xr.Dataset) else spectra
    if "band" not in eps.dims or "spectrum" not in eps.dims:
        raise InputError("spectra", f"emissivity dims {eps.dims}", variable="emissivity",
                         expected="band emissivity (spectrum, [view_zenith,] band); see band_emissivity()")
    eps = eps.sel(band=list(sensor.band_names))
    if "view_zenith" not in eps.dims:
        eps = eps.expand_dims(view_zenith=[0.0])
    eps = eps.sortby("view_zenith").transpose("spectrum", "view_zenith", "band")
    values = eps.values.astype(float)
    if not np.isfinite(values).all() or values.min() <= 0 or values.max() > 1:
        raise InputError("spectra", "band emissivity outside (0, 1] or NaN", variable="emissivity",
                         expected="0 < ε ≤ 1 for every spectrum and band")
    n = values.shape[0]
    weight = spectra["weight"].values.astype(float) if "weight" in spectra.coords or (
        isinstance(spectra, xr.Dataset) and "weight" in spectra) else np.ones(n)
    split = spectra["split"].values.astype(str) if "split" in spectra.coords else None
    classes = (spectra["material_class"].values.astype(str) if "material_class" in spectra.coords
               else np.full(n, "unknown"))
    return values, eps["view_zenith"].values.astype(float), weight, split, classes, eps["spectrum"].values.astype(str)


def build_training_set(profiles: xr.Dataset, spectra, terms: xr.Dataset, n_samples: int, seed: int = 0, *,
                       sensor=ASTER_TIR, view_zenith_range=(0.0, 60.0), surface_altitude_range=(0.0, 4.0),
                       lst_offset=(-5.0, 20.0), nedt=NEDT_K, split_fractions=(0.7, 0.15, 0.15),
                       noise=True) -> xr.Dataset:
    """Simulate ``n_samples`` ASTER TIR samples (see module docstring); deterministic for ``seed``.

    ``spectra``: band emissivities ``emissivity(spectrum, [view_zenith,] band)`` (e.g. from
    ``natural_surfaces`` or ``band_emissivity``), optional ``weight``/``split``/``material_class``.
    ``terms``: ``terms_table`` output for exactly these profiles (matched by ``profile_id``).
    """
    _check(isinstance(n_samples, (int, np.integer)) and n_samples > 0, "n_samples", f"n_samples={n_samples}",
           "a positive integer")
    vz_lo, vz_hi = _range(view_zenith_range, "view_zenith_range", 0.0, 89.0)
    z_lo, z_hi = _range(surface_altitude_range, "surface_altitude_range", -0.5, 9.0)
    off_lo, off_hi = _range(lst_offset, "lst_offset", -60.0, 60.0)
    _check(np.isfinite(nedt) and 0 <= nedt <= 5, "nedt", f"nedt={nedt}", "0–5 K")
    fractions = np.asarray(split_fractions, float)
    _check(fractions.shape == (3,) and np.all(fractions >= 0) and np.isclose(fractions.sum(), 1), "split_fractions",
           f"split_fractions={split_fractions}", "three non-negative fractions (train, validation, test) summing to 1")
    rng = np.random.default_rng(seed)

    z_grid, v_grid, valid, cwv_table, tair_table, tau, lup, ldown = _terms_for(profiles, terms, sensor)
    _check(z_grid.min() <= z_lo and z_hi <= z_grid.max(), "surface_altitude_range",
           f"{z_lo}–{z_hi} km outside the terms grid {z_grid.min()}–{z_grid.max()} km",
           "a range inside terms.surface_altitude")
    _check(v_grid.min() <= vz_lo and vz_hi <= v_grid.max(), "view_zenith_range",
           f"{vz_lo}–{vz_hi}° outside the terms grid {v_grid.min()}–{v_grid.max()}°",
           "a range inside terms.view_zenith")
    z_min, z_max = _valid_altitudes(valid, z_grid, z_lo, z_hi)
    usable = np.isfinite(z_min)
    if not usable.all():
        logger.warning("%d profiles have no valid terms within %g–%g km and are not used",
                       (~usable).sum(), z_lo, z_hi)
    eps_table, eps_angles, weight, spec_split, classes, spec_ids = _band_table(spectra, sensor)

    profile_ids = profiles["profile_id"].values.astype(str)
    base = np.array([pid.split("+")[0] for pid in profile_ids])
    unique_base = np.unique(base)
    base_split = dict(zip(unique_base, assign_splits(unique_base, fractions, rng)))
    prof_split = np.array([base_split[b] for b in base])
    if spec_split is None:
        spec_split = assign_splits(spec_ids, fractions, rng)

    sample_split = rng.choice(3, size=n_samples, p=fractions)
    p_idx = np.empty(n_samples, int)
    s_idx = np.empty(n_samples, int)
    for k, name in enumerate(SPLITS):
        chosen = np.flatnonzero(sample_split == k)
        if not chosen.size:
            continue
        members = np.flatnonzero((prof_split == name) & usable)
        spec_members = np.flatnonzero((spec_split == name) & (weight > 0))
        _check(members.size > 0 and spec_members.size > 0, "split_fractions",
               f"split {name!r} has {members.size} usable profiles and {spec_members.size} spectra",
               "at least one profile and one spectrum per split with a non-zero fraction")
        p_idx[chosen] = rng.choice(members, chosen.size)
        w = weight[spec_members] / weight[spec_members].sum()
        s_idx[chosen] = rng.choice(spec_members, chosen.size, p=w)

    z = z_min[p_idx] + rng.uniform(0.0, 1.0, n_samples) * (z_max[p_idx] - z_min[p_idx])
    vz = rng.uniform(vz_lo, vz_hi, n_samples)
    with np.errstate(invalid="ignore", divide="ignore"):
        stacked = np.nan_to_num(np.concatenate([np.log(tau), lup, ldown], axis=-1))  # ln τ: Beer–Lambert
    sec_vz = 1.0 / np.cos(np.deg2rad(vz))
    at = interpolate_grid((np.arange(len(tau)), z_grid, 1.0 / np.cos(np.deg2rad(v_grid))), stacked,
                          (p_idx, z, sec_vz))
    n_band = tau.shape[-1]
    tau_s, lup_s, ldown_s = np.exp(at[:, :n_band]), at[:, n_band:2 * n_band], at[:, 2 * n_band:]
    eps = interpolate_grid((np.arange(len(eps_table)), eps_angles), eps_table, (s_idx, vz))
    columns = np.nan_to_num(np.stack([cwv_table, tair_table], axis=-1))
    cwv, tair = interpolate_grid((np.arange(len(tau)), z_grid), columns, (p_idx, z)).T
    lst = tair + rng.uniform(off_lo, off_hi, n_samples)

    radiance = at_sensor_radiance(lst, eps, tau_s, lup_s, ldown_s, sensor)
    clean_bt = brightness_temperature(radiance, sensor)
    if noise and nedt > 0:
        radiance = radiance + rng.standard_normal(radiance.shape) * radiance_noise_sigma(nedt, sensor)
    bt = brightness_temperature(radiance, sensor)

    f32 = np.float32
    band_coords = {"band": list(sensor.band_names), "wavelength": ("band", sensor.centers_um)}
    ds = xr.Dataset(
        {"brightness_temperature": (("sample", "band"), bt.astype(f32)),
         "brightness_temperature_noise_free": (("sample", "band"), clean_bt.astype(f32)),
         "view_zenith": ("sample", vz.astype(f32)),
         "column_water_vapour": ("sample", cwv.astype(f32)),
         "surface_altitude": ("sample", z.astype(f32)),
         "lst": ("sample", lst.astype(f32)),
         "emissivity": (("sample", "band"), eps.astype(f32)),
         "transmittance": (("sample", "band"), tau_s.astype(f32)),
         "path_radiance": (("sample", "band"), lup_s.astype(f32)),
         "sky_radiance": (("sample", "band"), ldown_s.astype(f32)),
         "surface_air_temperature": ("sample", tair.astype(f32)),
         "split": ("sample", np.array(SPLITS, dtype=object)[sample_split]),
         "profile_id": ("sample", profile_ids.astype(object)[p_idx]),
         "spectrum_id": ("sample", spec_ids.astype(object)[s_idx]),
         "material_class": ("sample", classes.astype(object)[s_idx])},
        coords=band_coords,
        attrs={"seed": int(seed), "version": __version__, "sensor": sensor.name, "nedt_k": float(nedt),
               "noise": int(bool(noise)),
               "sources": ", ".join(sorted(set(profiles["source"].values.astype(str)))) if "source" in profiles.coords else "",
               "spectra": str(getattr(spectra, "attrs", {}).get("description", "")),
               "view_zenith_range": [vz_lo, vz_hi], "surface_altitude_range": [z_lo, z_hi],
               "lst_offset": [off_lo, off_hi], "split_fractions": fractions.tolist(),
               "radiative_transfer": str(terms.attrs.get("model", "terms table")),
               "n_profiles": int(profiles.sizes["profile"]), "n_spectra": int(eps_table.shape[0])})
    units = {"brightness_temperature": "K", "brightness_temperature_noise_free": "K", "view_zenith": "degree",
             "column_water_vapour": "g cm-2", "surface_altitude": "km", "lst": "K",
             "path_radiance": "W m-2 sr-1 um-1", "sky_radiance": "W m-2 sr-1 um-1", "surface_air_temperature": "K"}
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    logger.info("simulated %d samples (%s)", n_samples,
                ", ".join(f"{s}: {(sample_split == k).sum()}" for k, s in enumerate(SPLITS)))
    return ds


def write_training_set(ds: xr.Dataset, path, *, chunk=262144, overwrite=False) -> None:
    """Write a training set to a Zarr store (v3, unconsolidated), chunked along ``sample``."""
    missing = [v for v in REQUIRED if v not in ds]
    if missing:
        raise InputError("write_training_set", f"missing variables {missing}", variable=missing[0],
                         expected="a build_training_set() Dataset")
    out = ds.copy()
    for name in list(out.data_vars):
        if out[name].dtype.kind == "O":  # fixed-width text reads back as plain NumPy '<U' everywhere
            out[name] = out[name].astype(str)
    out = out.chunk({"sample": min(chunk, ds.sizes["sample"])})
    with warnings.catch_warnings():
        # zarr 3.1 flags fixed-width UTF-32 as "no Zarr v3 spec yet"; zarr-python reads it back exactly
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        out.to_zarr(path, mode="w" if overwrite else "w-", consolidated=False)


def open_training_set(path) -> xr.Dataset:
    """Open a training set written by :func:`write_training_set` (lazy, Dask-backed)."""
    try:
        ds = xr.open_zarr(path, consolidated=False)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise InputError(path, f"not a readable Zarr store ({exc})", expected="a training-set Zarr store") from exc
    missing = [v for v in REQUIRED if v not in ds]
    if missing:
        raise InputError(path, f"missing variables {missing}", variable=missing[0],
                         expected="a training set written by write_training_set()")
    return ds


def simulate_training_set(n_samples: int, *, seed: int = 0, profile_sets=("ecmwf83", "ecmwf52", "umbc48"),
                          tigr=None, emissivity_library=None, view_zenith=(0, 15, 30, 45, 60),
                          altitudes=(0, 1, 2, 3, 4), n_mixtures: int = 400, temperature_offsets=(0.0,),
                          water_scales=(1.0,), processes: int = 2, sensor=ASTER_TIR) -> xr.Dataset:
    """The whole simulation: profiles (+ augmentation) → LOWTRAN terms (cached) → natural surfaces → samples.

    Samples span the ``view_zenith`` and ``altitudes`` grids of the terms table. Shared by
    ``akkd-scale simulate`` and the training recipe in ``pipelines/``.
    """
    from ..physics.atmosphere import terms_table
    from .emissivity import load_library, natural_surfaces
    from .profiles import augment_profiles, concat_profiles, load_profiles, read_tigr

    parts = [load_profiles(list(profile_sets))] if profile_sets else []
    if tigr:
        parts.append(read_tigr(tigr))
    if not parts:
        raise ParameterError("simulate_training_set", "no profiles", variable="profile_sets",
                             expected="at least one profile set or a TIGR file")
    profiles = augment_profiles(concat_profiles(parts), temperature_offsets, water_scales)
    surfaces = natural_surfaces(load_library(emissivity_library), n_mixtures=n_mixtures, seed=seed,
                                view_zenith=view_zenith, sensor=sensor)
    logger.info("%d profiles, %d surfaces; terms for %d altitudes x %d angles", profiles.sizes["profile"],
                surfaces.sizes["spectrum"], len(altitudes), len(view_zenith))
    terms = terms_table(profiles, view_zenith=view_zenith, surface_altitude=altitudes, processes=processes,
                        sensor=sensor)
    return build_training_set(profiles, surfaces, terms, n_samples, seed, sensor=sensor,
                              view_zenith_range=(min(view_zenith), max(view_zenith)),
                              surface_altitude_range=(min(altitudes), max(altitudes)))
