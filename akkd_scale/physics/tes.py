"""ASTER temperature–emissivity separation (TES; Gillespie et al. 1998), vectorised over arrays.

TES is the physics reference every AK-KD table compares against: it splits five at-sensor
radiances into one surface temperature and five emissivities using the same atmospheric terms
(τ, L↑, L↓ per band) as the simulation, so any difference from the networks is the algorithm's.

Modules (see docs/evaluation.md for the conventions chosen where the ATBD leaves room):

* atmospheric correction: surface-leaving radiance ``R = (L − L↑) / τ``;
* NEM: ``ε_max`` (0.99) for every band, ``R' = R − (1 − ε)·L↓``, ``T = max_b B_b⁻¹(R'_b / ε_max)``,
  ``ε_b = R'_b / B_b(T)``; iterate with the new ε until ``max_b |ΔR'| < t1`` (converged), the change
  grows by more than ``t2`` (diverged: the previous iteration is kept) or ``max_iterations`` is hit;
* RATIO: ``β_b = ε_b / mean(ε)``; MMD: ``MMD = max β − min β``, ``ε_min = a − b·MMD^c``,
  ``ε_b = β_b·ε_min / min β``; ``T`` from the band of largest ε with its reflected sky removed.

NumPy and Dask arrays are both accepted (Dask through ``map_blocks``; the band axis is made one
chunk). NaN in any band of a pixel gives NaN out and a QC flag, never an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ParameterError
from ..sensors.planck import band_radiance, brightness_temperature

logger = logging.getLogger(__name__)

#: QC bit flags (``TESResult.qc``, uint8).
QC_INVALID_INPUT = 1
"""NaN/inf input, τ ≤ 0, or a surface radiance that cannot be inverted (no retrieval)."""
QC_NEM_NOT_CONVERGED = 2
"""NEM reached ``max_iterations`` without the ``t1`` convergence test passing."""
QC_NEM_DIVERGED = 4
"""NEM correction grew by more than ``t2``; the previous iteration's T and ε were used."""
QC_EMISSIVITY_OUT_OF_RANGE = 8
"""A final emissivity lies outside (0, 1] (off the calibration curve's domain)."""

_QUANTITIES = ("radiance", "brightness_temperature")


@dataclass(frozen=True)
class TESParameters:
    """TES constants: NEM ε_max and thresholds, MMD calibration ``ε_min = a − b·MMD^c``.

    Defaults are ASTER's (Gillespie et al. 1998): ε_max 0.99, t1 = t2 = 0.05 W m⁻² sr⁻¹ µm⁻¹
    (≈ NEΔT in radiance), at most 12 NEM iterations, a = 0.994, b = 0.687, c = 0.737.
    """

    emissivity_max: float = 0.99
    mmd_a: float = 0.994
    mmd_b: float = 0.687
    mmd_c: float = 0.737
    convergence_radiance: float = 0.05
    divergence_radiance: float = 0.05
    max_iterations: int = 12

    def __post_init__(self):
        checks = {
            "emissivity_max": 0.0 < self.emissivity_max <= 1.0,
            "mmd_a": 0.0 < self.mmd_a <= 1.0,
            "mmd_b": self.mmd_b >= 0.0,
            "mmd_c": self.mmd_c > 0.0,
            "convergence_radiance": self.convergence_radiance >= 0.0,
            "divergence_radiance": self.divergence_radiance >= 0.0,
            "max_iterations": int(self.max_iterations) == self.max_iterations and self.max_iterations >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ParameterError(
                    "TESParameters",
                    f"invalid value {getattr(self, name)!r}",
                    variable=name,
                    expected="0 < ε_max ≤ 1, 0 < a ≤ 1, b ≥ 0, c > 0, thresholds ≥ 0, integer max_iterations ≥ 1",
                )

    def calibration(self, mmd):
        """ε_min from the MMD calibration curve."""
        return self.mmd_a - self.mmd_b * np.power(mmd, self.mmd_c)


@dataclass(frozen=True)
class TESResult:
    """TES output: ``lst`` (K), ``emissivity`` (band axis where the input had it), ``mmd``,
    ``nem_iterations`` (accepted NEM iterations) and ``qc`` (uint8, ``QC_*`` bits)."""

    lst: Any
    emissivity: Any
    mmd: Any
    nem_iterations: Any
    qc: Any


def tes(
    observed,
    transmittance,
    path_radiance,
    sky_radiance,
    sensor=None,
    *,
    quantity: str = "radiance",
    band_axis: int = -1,
    parameters: TESParameters = TESParameters(),
) -> TESResult:
    """Run TES on at-sensor ``observed`` radiance (W m⁻² sr⁻¹ µm⁻¹) or brightness temperature (K).

    ``observed`` has the sensor's bands on ``band_axis``; the atmospheric terms (τ, L↑, hemispheric
    L↓) have theirs on the same axis and broadcast against it (e.g. shape ``(band,)`` for one
    atmosphere over a whole scene when ``band_axis=-1``). ``sensor`` defaults to ASTER_TIR.
    NumPy in → NumPy out, Dask in → Dask out.
    """
    if sensor is None:
        from ..sensors.aster import ASTER_TIR

        sensor = ASTER_TIR
    if quantity not in _QUANTITIES:
        raise ParameterError(
            "tes", f"unknown quantity {quantity!r}", variable="quantity", expected=" or ".join(_QUANTITIES)
        )
    arrays = {
        "observed": observed,
        "transmittance": transmittance,
        "path_radiance": path_radiance,
        "sky_radiance": sky_radiance,
    }
    lazy = any(_is_dask(a) for a in arrays.values())
    xp = _dask_array() if lazy else np
    arrays = {name: xp.asarray(a) for name, a in arrays.items()}
    ndim = arrays["observed"].ndim
    if ndim == 0 or not -ndim <= band_axis < ndim:
        raise ParameterError(
            "tes",
            f"band_axis {band_axis} is outside an array of {ndim} dimensions",
            variable="observed",
            expected="an array with a band axis",
        )
    axis = band_axis % ndim
    nbands = len(sensor.bands)
    if arrays["observed"].shape[axis] != nbands:
        raise ParameterError(
            "tes",
            f"band axis has length {arrays['observed'].shape[axis]}",
            variable="observed",
            expected=f"{nbands} bands {', '.join(sensor.band_names)}",
        )
    moved = {}
    for name, a in arrays.items():
        if name != "observed" and a.ndim < ndim:  # right-aligned broadcasting, like NumPy
            a = a.reshape((1,) * (ndim - a.ndim) + a.shape)
        if a.ndim != ndim or a.shape[axis] not in (1, nbands):
            raise ParameterError(
                "tes",
                f"shape {a.shape} does not broadcast to {arrays['observed'].shape} with bands on axis {axis}",
                variable=name,
                expected=f"band axis of length {nbands} (or 1)",
            )
        moved[name] = xp.moveaxis(a, axis, -1)
    try:
        shape = np.broadcast_shapes(*(a.shape for a in moved.values()))
    except ValueError as exc:
        raise ParameterError(
            "tes",
            f"atmospheric terms do not broadcast to observed {moved['observed'].shape}",
            variable="transmittance/path_radiance/sky_radiance",
            expected="shapes broadcastable against observed",
        ) from exc
    kernel_args = dict(sensor=sensor, quantity=quantity, parameters=parameters)
    if lazy:
        da = xp
        obs = da.broadcast_to(moved["observed"], shape).rechunk({len(shape) - 1: -1})
        others = [
            da.broadcast_to(moved[n], shape).rechunk(obs.chunks)
            for n in ("transmittance", "path_radiance", "sky_radiance")
        ]
        stacked = da.map_blocks(
            _tes_block, obs, *others, dtype=np.float64, chunks=obs.chunks[:-1] + ((nbands + 4,),), **kernel_args
        )
    else:
        stacked = _tes_block(
            *(np.broadcast_to(moved[n], shape) for n in ("observed", "transmittance", "path_radiance", "sky_radiance")),
            **kernel_args,
        )
    emissivity = xp.moveaxis(stacked[..., 1 : 1 + nbands], -1, axis)
    return TESResult(
        lst=stacked[..., 0],
        emissivity=emissivity,
        mmd=stacked[..., 1 + nbands],
        nem_iterations=stacked[..., 2 + nbands].astype(np.int16),
        qc=stacked[..., 3 + nbands].astype(np.uint8),
    )


def tes_dataset(ds, sensor=None, *, parameters: TESParameters = TESParameters()):
    """TES on an ``xr.Dataset`` with ``brightness_temperature`` and ``transmittance``,
    ``path_radiance``, ``sky_radiance`` sharing a ``band`` dimension (the training-set contract).

    Returns a Dataset ``lst``, ``emissivity(…, band)``, ``tes_mmd``, ``nem_iterations``, ``tes_qc``
    over the broadcast non-band dimensions; lazy when the inputs are.
    """
    names = ("brightness_temperature", "transmittance", "path_radiance", "sky_radiance")
    source = ds.attrs.get("source_file", "dataset")
    for name in names:
        if name not in ds or "band" not in ds[name].dims:
            raise ParameterError(
                source,
                "variable missing or without a band dimension",
                variable=name,
                expected="(…, band) variable as in the training-set contract",
            )

    def run(bt, tau, lu, ld):
        r = tes(bt, tau, lu, ld, sensor, quantity="brightness_temperature", band_axis=-1, parameters=parameters)
        return r.lst, r.emissivity, r.mmd, r.nem_iterations, r.qc

    lst, emissivity, mmd, iterations, qc = xr.apply_ufunc(
        run,
        *(ds[n] for n in names),
        input_core_dims=[["band"]] * 4,
        output_core_dims=[[], ["band"], [], [], []],
        dask="allowed",
    )
    out = xr.Dataset({"lst": lst, "emissivity": emissivity, "tes_mmd": mmd, "nem_iterations": iterations, "tes_qc": qc})
    out["lst"].attrs.update(units="K", long_name="land surface temperature (TES)")
    out["emissivity"].attrs.update(units="1", long_name="band emissivity (TES)")
    out["tes_qc"].attrs.update(
        flag_masks=[QC_INVALID_INPUT, QC_NEM_NOT_CONVERGED, QC_NEM_DIVERGED, QC_EMISSIVITY_OUT_OF_RANGE],
        flag_meanings="invalid_input nem_not_converged nem_diverged emissivity_out_of_range",
    )
    return out.transpose(*[d for d in emissivity.dims if d != "band"], "band")


def _tes_block(observed, transmittance, path_radiance, sky_radiance, *, sensor, quantity, parameters):
    """NumPy kernel, band on the last axis: returns ``(…, nbands + 4)`` = [lst, ε…, mmd, iterations, qc]."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        observed = np.asarray(observed, dtype=np.float64)
        if quantity == "brightness_temperature":
            observed = band_radiance(observed, sensor)
        tau = np.asarray(transmittance, dtype=np.float64)
        sky = np.asarray(sky_radiance, dtype=np.float64)
        surface = (observed - np.asarray(path_radiance, dtype=np.float64)) / tau
        valid = np.all(np.isfinite(surface) & np.isfinite(sky) & (tau > 0) & (surface > 0), axis=-1)
        surface = np.where(valid[..., None], surface, np.nan)
        sky = np.where(valid[..., None], sky, np.nan)
        t_nem, eps_nem, iterations, flags = _nem(surface, sky, sensor, parameters)
        valid &= np.all(np.isfinite(eps_nem) & (eps_nem > 0), axis=-1) & np.isfinite(t_nem)
        beta = eps_nem / np.mean(eps_nem, axis=-1, keepdims=True)
        mmd = np.max(beta, axis=-1) - np.min(beta, axis=-1)
        eps_min = parameters.calibration(mmd)
        emissivity = beta * (eps_min / np.min(beta, axis=-1))[..., None]
        lst = _temperature_from_max_band(surface, sky, emissivity, sensor)
        valid &= np.isfinite(lst)
        out_of_range = valid & np.any((emissivity > 1.0) | (emissivity <= 0.0), axis=-1)
        flags = np.where(valid, flags | np.where(out_of_range, QC_EMISSIVITY_OUT_OF_RANGE, 0), QC_INVALID_INPUT)
        invalid = ~valid
        lst = np.where(invalid, np.nan, lst)
        emissivity = np.where(invalid[..., None], np.nan, emissivity)
        mmd = np.where(invalid, np.nan, mmd)
        return np.concatenate(
            [
                lst[..., None],
                emissivity,
                mmd[..., None],
                iterations[..., None].astype(np.float64),
                flags[..., None].astype(np.float64),
            ],
            axis=-1,
        )


def _nem(surface, sky, sensor, p):
    """NEM module: returns T_NEM, ε_NEM, accepted iterations and QC bits (NEM part) per pixel.

    Works on the flattened still-iterating pixels only, so converged pixels cost nothing more.
    """
    shape, nbands = surface.shape[:-1], surface.shape[-1]
    radiance = surface.reshape(-1, nbands)
    sky = np.broadcast_to(sky, surface.shape).reshape(-1, nbands)
    t_nem = np.full(radiance.shape[0], np.nan)
    eps_nem = np.full(radiance.shape, np.nan)
    iterations = np.zeros(radiance.shape[0], dtype=np.int64)
    flags = np.zeros(radiance.shape[0], dtype=np.uint8)
    active = np.flatnonzero(np.all(np.isfinite(radiance), axis=-1))
    eps_current = np.full((active.size, nbands), p.emissivity_max)
    previous = previous_change = None
    for n in range(1, p.max_iterations + 1):
        if active.size == 0:
            break
        corrected = radiance[active] - (1.0 - eps_current) * sky[active]
        temperature = np.max(brightness_temperature(corrected / p.emissivity_max, sensor), axis=-1)
        eps_new = corrected / band_radiance(temperature[:, None], sensor)
        change = None if previous is None else np.max(np.abs(corrected - previous), axis=-1)
        # Diverging: the correction grows by more than t2, or (after the first iteration) the
        # corrected radiance can no longer be inverted; either way the previous iteration is kept.
        diverging = np.zeros(active.size, dtype=bool)
        if n > 1:
            diverging |= ~(np.isfinite(temperature) & np.all(np.isfinite(eps_new), axis=-1))
        if previous_change is not None:
            diverging |= change - previous_change > p.divergence_radiance
        accept = ~diverging
        t_nem[active[accept]] = temperature[accept]
        eps_nem[active[accept]] = eps_new[accept]
        iterations[active[accept]] = n
        converging = accept & (change < p.convergence_radiance) if change is not None else np.zeros_like(accept)
        flags[active[diverging]] |= QC_NEM_DIVERGED
        keep = ~(converging | diverging)
        active, eps_current, previous = active[keep], eps_new[keep], corrected[keep]
        previous_change = None if change is None else change[keep]
    flags[active] |= QC_NEM_NOT_CONVERGED
    logger.debug(
        "NEM: %d pixels, %d diverged, %d not converged",
        radiance.shape[0],
        int(np.count_nonzero(flags & QC_NEM_DIVERGED)),
        active.size,
    )
    return (t_nem.reshape(shape), eps_nem.reshape(surface.shape), iterations.reshape(shape), flags.reshape(shape))


def _temperature_from_max_band(surface, sky, emissivity, sensor):
    """T from the band of largest ε: ``B⁻¹((R − (1 − ε)·L↓) / ε)`` in that band."""
    emitted = (surface - (1.0 - emissivity) * sky) / emissivity
    temperatures = brightness_temperature(emitted, sensor)
    filled = np.where(np.isfinite(emissivity), emissivity, -np.inf)
    index = np.argmax(filled, axis=-1)[..., None]
    return np.take_along_axis(temperatures, index, axis=-1)[..., 0]


def _is_dask(value) -> bool:
    return type(value).__module__.startswith("dask.")


def _dask_array():
    import dask.array as da

    return da
