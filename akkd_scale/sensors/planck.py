"""Planck's law, band-effective radiance L(T) = ∫B(λ,T)R(λ)dλ / ∫R dλ, its inverse BT(L), SRF means.

Radiance is spectral radiance per µm (W m⁻² sr⁻¹ µm⁻¹) everywhere. Band-effective values come from
a per-band table of ln L on a 0.05 K temperature grid (120–480 K) built by integrating Planck over the
SRF (cached on disk per SRF); linear interpolation of ln L against T (and back) is accurate to ~1e-5 K,
far inside the 0.005 K round-trip requirement, and costs an index computation per pixel and band (no
search). Outside the table's range the result is NaN. Every array function accepts NumPy or Dask arrays (Dask stays lazy) and, where noted,
xarray DataArrays.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, NamedTuple

import dask.array as da
import numpy as np
import xarray as xr

from ..config import cache_dir
from ..constants import C1, C2
from ..errors import ParameterError, SpectrumError

log = logging.getLogger(__name__)

#: Temperature range and step (K) of the band tables.
LUT_T_MIN, LUT_T_MAX, LUT_T_STEP = 120.0, 480.0, 0.05
#: Points of the even ln L segment index per table interval: fine enough that each of its cells holds
#: at most one table node (the narrowest ln L interval, at 480 K, is ≈ 1/29 000 of the range).
INVERSE_OVERSAMPLING = 8


def planck_radiance(wavelength_um, temperature_k):
    """Monochromatic blackbody radiance B(λ, T) in W m⁻² sr⁻¹ µm⁻¹ (broadcasts λ against T)."""
    wavelength = np.asarray(wavelength_um, dtype=float) if not isinstance(wavelength_um, da.Array) else wavelength_um
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return C1 / (wavelength**5 * np.expm1(C2 / (wavelength * temperature_k)))


class BandLUT(NamedTuple):
    """Band-effective ln L on an even temperature grid, with O(1) lookups both ways.

    Both directions compute ``np.interp``'s formula (precomputed slopes) without its per-value binary
    search: the segment of a temperature is index arithmetic on the even grid; the segment of a ln L
    is read from ``segment_of_log`` (the table's segment at each point of an even, finer ln L grid)
    and corrected by one comparison.
    """

    temperature_k: np.ndarray
    log_radiance: np.ndarray
    segment_of_log: np.ndarray   # table segment at log_radiance[0] + k · (ln L range) / (size − 1)
    temperature_slope: np.ndarray  # dT / d ln L of each table segment

    def radiance(self, temperature):
        """NumPy kernel: band radiance of temperatures (NaN outside the table)."""
        index, fraction, inside = temperature_index(self.temperature_k, temperature)
        table = self.log_radiance
        return np.exp(np.where(inside, table[index] + fraction * (table[index + 1] - table[index]), np.nan))

    def temperature(self, radiance):
        """NumPy kernel: brightness temperature of band radiances (NaN for L ≤ 0 or outside the table)."""
        values = np.asarray(radiance, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(np.where(values > 0, values, np.nan))
        xp, fp = self.log_radiance, self.temperature_k
        n = self.segment_of_log.size
        cell = (x - xp[0]) * ((n - 1) / (xp[-1] - xp[0]))
        inside = (x >= xp[0]) & (x <= xp[-1])
        j = self.segment_of_log[np.where(inside, cell, 0.0).astype(np.intp)].astype(np.intp)
        j += (x >= xp[j + 1]) & (j < xp.size - 2)
        return np.where(inside, self.temperature_slope[j] * (x - xp[j]) + fp[j], np.nan)


def temperature_index(grid: np.ndarray, temperature) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment index, fraction within it, inside) of temperatures on an even table grid."""
    t = np.asarray(temperature, dtype=float)
    position = (t - grid[0]) * ((grid.size - 1) / (grid[-1] - grid[0]))
    inside = (position >= 0) & (position <= grid.size - 1)
    index = np.minimum(np.where(inside, position, 0.0).astype(np.intp), grid.size - 2)
    return index, position - index, inside


def band_effective_radiance(srf_wavelength_um, srf_response, temperature_k) -> np.ndarray:
    """Band-effective radiance by trapezoidal integration of Planck × SRF (exact path, for tables/tests)."""
    wavelength = np.asarray(srf_wavelength_um, dtype=float)
    response = np.asarray(srf_response, dtype=float)
    t = np.asarray(temperature_k, dtype=float)
    flat = t.reshape(-1)
    out = np.empty(flat.shape)
    norm = np.trapezoid(response, wavelength)
    for start in range(0, flat.size, 512):  # bounded memory: 512 temperatures × SRF samples at a time
        block = flat[start:start + 512, None]
        out[start:start + 512] = np.trapezoid(planck_radiance(wavelength, block) * response, wavelength, axis=-1) / norm
    return out.reshape(t.shape)


def band_lut(srf_wavelength_um, srf_response) -> BandLUT:
    """The ln L(T) table of one band and its segment index, computed once per SRF and cached on disk.

    Building means integrating Planck × SRF at 7 201 temperatures (~0.1 s per band); the cache
    (``config.cache_dir()/planck``, keyed by the SRF and the grid) spares every new process that cost.
    """
    wavelength = np.ascontiguousarray(srf_wavelength_um, dtype=float)
    response = np.ascontiguousarray(srf_response, dtype=float)
    key = hashlib.sha256(wavelength.tobytes() + response.tobytes() +
                         repr((LUT_T_MIN, LUT_T_MAX, LUT_T_STEP, INVERSE_OVERSAMPLING, C1, C2)).encode()).hexdigest()
    path = cache_dir() / "planck" / f"{key[:24]}.npz"
    try:
        with np.load(path) as cached:
            return BandLUT(*(cached[name] for name in BandLUT._fields))
    except (OSError, KeyError, ValueError):
        pass
    n = int(round((LUT_T_MAX - LUT_T_MIN) / LUT_T_STEP)) + 1
    temperature = np.linspace(LUT_T_MIN, LUT_T_MAX, n)
    log_radiance = np.log(band_effective_radiance(wavelength, response, temperature))
    even_log = np.linspace(log_radiance[0], log_radiance[-1], INVERSE_OVERSAMPLING * (n - 1) + 1)
    segments = np.clip(np.searchsorted(log_radiance, even_log, side="right") - 1, 0, n - 2).astype(np.int32)
    slope = np.diff(temperature) / np.diff(log_radiance)
    lut = BandLUT(temperature, log_radiance, segments, slope)
    _save_atomic(path, lut)
    log.debug("built band table: %d temperatures %.1f–%.1f K (%s)", n, LUT_T_MIN, LUT_T_MAX, path)
    return lut


def _save_atomic(path: Path, lut: BandLUT) -> None:
    """Write the table under a temporary name and rename it, so concurrent processes never read half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
            np.savez(handle, **lut._asdict())
        os.replace(handle.name, path)
    except OSError as exc:  # a read-only cache only costs the rebuild
        log.debug("band table not cached at %s: %s", path, exc)


def _out_dtype(dtype) -> np.dtype:
    """Keep float32/float64 inputs in their precision; everything else becomes float64."""
    return np.dtype(dtype) if np.issubdtype(dtype, np.floating) else np.dtype("float64")


def elementwise(values, kernel: Callable[[np.ndarray], np.ndarray]):
    """Apply a NumPy kernel element by element to NumPy, Dask (lazy, via map_blocks) or xarray input."""
    if isinstance(values, xr.DataArray):
        return xr.DataArray(elementwise(values.data, kernel), coords=values.coords, dims=values.dims, name=values.name)
    if isinstance(values, da.Array):
        dtype = _out_dtype(values.dtype)
        return da.map_blocks(lambda block: kernel(block).astype(dtype, copy=False), values, dtype=dtype)
    array = np.asarray(values)
    result = kernel(array).astype(_out_dtype(array.dtype), copy=False)
    return result if result.ndim else result[()]


def _per_band_kernel(block: np.ndarray, luts, kernel_name: str, axis: int, dtype) -> np.ndarray:
    """Apply band i's table to index i of the band axis; a length-1 band axis is broadcast to every band
    (for radiance, one temperature index serves all bands: the tables share their temperature grid)."""
    moved = np.moveaxis(block, axis, -1)
    if moved.shape[-1] == 1 and kernel_name == "radiance":
        index, fraction, inside = temperature_index(luts[0].temperature_k, moved[..., 0])
        out = np.empty(moved.shape[:-1] + (len(luts),))
        for b, lut in enumerate(luts):
            table = lut.log_radiance
            out[..., b] = table[index] + fraction * (table[index + 1] - table[index])
        out = np.exp(np.where(inside[..., None], out, np.nan)).astype(dtype, copy=False)
    else:
        pick = (lambda i: moved[..., 0]) if moved.shape[-1] == 1 else (lambda i: moved[..., i])
        out = np.stack([getattr(lut, kernel_name)(pick(i)) for i, lut in enumerate(luts)],
                       axis=-1).astype(dtype, copy=False)
    return np.moveaxis(out, -1, axis)


def _per_band(values, sensor, band_axis: int, kernel_name: str, what: str):
    """Dispatch a per-band table lookup over NumPy, Dask or xarray (band dimension ``band``) input."""
    if isinstance(values, xr.DataArray):
        axis = values.get_axis_num("band") if "band" in values.dims else band_axis % values.ndim
        result = _per_band(values.data, sensor, axis, kernel_name, what)
        if result.shape == values.shape:
            return xr.DataArray(result, coords=values.coords, dims=values.dims, name=values.name)
        dim = values.dims[axis]  # a broadcast length-1 band axis: its coordinates no longer apply
        coords = {k: v for k, v in values.coords.items() if dim not in v.dims}
        if dim == "band":
            coords["band"] = list(sensor.band_names)
        return xr.DataArray(result, coords=coords, dims=values.dims, name=values.name)
    is_dask = isinstance(values, da.Array)
    array: Any = values if is_dask else np.asarray(values)  # dask's map_blocks defeats the type checker
    if array.ndim == 0:
        raise ParameterError(f"{what} for {sensor.name}", "scalar input has no band axis",
                             variable="band_axis", expected=f"an array with a band axis of length {len(sensor)} or 1")
    axis = band_axis % array.ndim
    if array.shape[axis] not in (1, len(sensor)):
        raise ParameterError(f"{what} for {sensor.name}", f"band axis {band_axis} has length {array.shape[axis]}",
                             variable="band_axis", expected=f"length {len(sensor)} ({', '.join(sensor.band_names)}) or 1")
    luts = [band.lut for band in sensor.bands]
    dtype = _out_dtype(array.dtype)
    if not is_dask:
        return _per_band_kernel(array, luts, kernel_name, axis, dtype)
    array = array.rechunk({axis: -1})
    chunks = tuple((len(sensor),) if i == axis else c for i, c in enumerate(array.chunks))
    return array.map_blocks(_per_band_kernel, luts, kernel_name, axis, dtype, dtype=dtype, chunks=chunks)


def band_radiance(temperature, sensor, band_axis: int = -1):
    """Band-effective radiance (W m⁻² sr⁻¹ µm⁻¹) for temperatures whose ``band_axis`` holds the bands.

    A band axis of length 1 is broadcast to every band (one temperature → all band radiances).
    NumPy, Dask (lazy) or xarray (dimension ``band`` if present) input.
    """
    return _per_band(temperature, sensor, band_axis, "radiance", "band radiance")


def brightness_temperature(radiance, sensor, band_axis: int = -1):
    """Brightness temperature (K) of band radiances whose ``band_axis`` holds the sensor's bands."""
    return _per_band(radiance, sensor, band_axis, "temperature", "brightness temperature")


def srf_weights(wavelength_um, sensor, *, max_missing: float = 0.01) -> np.ndarray:
    """Weights (n_wavelength, n_band) that turn a spectrum on ``wavelength_um`` into SRF-weighted means.

    The spectrum is taken as piecewise linear between its samples and integrated against each SRF
    on the SRF's own grid, so coarse grids (e.g. 5 cm⁻¹) stay accurate. Raises SpectrumError if more
    than ``max_missing`` of a band's SRF area lies outside the spectrum's wavelength range.
    """
    grid = np.asarray(wavelength_um, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)):
        raise SpectrumError("spectral grid", "wavelengths are not a finite 1-D grid of ≥ 2 points",
                            variable="wavelength_um", expected="1-D finite wavelengths in µm")
    order = np.argsort(grid)
    ascending = grid[order]
    if np.any(np.diff(ascending) <= 0):
        raise SpectrumError("spectral grid", "wavelengths repeat", variable="wavelength_um",
                            expected="distinct wavelengths in µm")
    weights = np.zeros((grid.size, len(sensor)))
    for b, band in enumerate(sensor.bands):
        lam, response = band.srf_wavelength_um, band.srf_response
        mass = response * _trapezoid_weights(lam)
        inside = (lam >= ascending[0]) & (lam <= ascending[-1])
        missing = 1.0 - mass[inside].sum() / mass.sum()
        if missing > max_missing:
            raise SpectrumError("spectral grid", f"covers {ascending[0]:.3f}–{ascending[-1]:.3f} µm, missing "
                                f"{missing:.1%} of band {band.name}'s response", variable="wavelength_um",
                                expected=f"coverage of {lam[response > 0][0]:.3f}–{lam[response > 0][-1]:.3f} µm")
        idx = np.clip(np.searchsorted(ascending, lam[inside], side="right") - 1, 0, grid.size - 2)
        frac = (lam[inside] - ascending[idx]) / (ascending[idx + 1] - ascending[idx])
        column = np.zeros(grid.size)
        np.add.at(column, idx, (1 - frac) * mass[inside])
        np.add.at(column, idx + 1, frac * mass[inside])
        weights[order, b] = column / column.sum()
    return weights


def _trapezoid_weights(x: np.ndarray) -> np.ndarray:
    """Trapezoid-rule weights of an increasing grid."""
    dx = np.diff(x)
    return np.concatenate([[dx[0] / 2], (dx[:-1] + dx[1:]) / 2, [dx[-1] / 2]])


def band_average(wavelength_um, values, sensor):
    """SRF-weighted band means of spectra: ``values`` (..., n_wavelength) → (..., n_band).

    For emissivity spectra and radiative-transfer spectra (any grid order, e.g. wavenumber-ordered).
    NaN samples only matter where a band's SRF is non-zero (they then make that band NaN).
    NumPy or Dask input (the spectral axis is the last axis).
    """
    weights = srf_weights(wavelength_um, sensor)
    is_dask = isinstance(values, da.Array)
    array = values if is_dask else np.asarray(values, dtype=float)
    if array.ndim == 0 or array.shape[-1] != weights.shape[0]:
        raise SpectrumError("spectra", f"last axis has shape {array.shape[-1:] or '()'}", variable="values",
                            expected=f"last axis of length {weights.shape[0]} (one value per wavelength)")
    out = []
    for b in range(weights.shape[1]):
        used = np.flatnonzero(weights[:, b] > 0)
        out.append(array[..., used] @ weights[used, b])
    return (da if is_dask else np).stack(out, axis=-1)
