"""Perturbations of band atmospheric terms that mimic radiative-transfer model error, so networks trained
on LOWTRAN7 terms need not inherit LOWTRAN7's band biases (docs/radiative_transfer.md, "RT error").

Two physically separate errors, each scaled by a per-sample amplitude (0 = LOWTRAN7 as computed, 1 = the
LOWTRAN7 → line-by-line (LBLRTM) difference measured on 80 TIGR profiles, ASTER_FACTS.md):

* water-vapour continuum strength: per g cm⁻² of water LBLRTM has B13 τ 0.009 lower and L↓ 0.25 W m⁻² sr⁻¹
  µm⁻¹ higher; the other bands scale with the measured L↓ biases (B10…B14: 0.06, 0.10, 0.14, 0.25, 0.29).
  τ changes along the slant path (× sec θ); the extra absorber sits in the warm bottom layer, so L↑
  changes by −Δτ·B(T_air) (Kirchhoff);
* trace gases (CH4 near 1210 cm⁻¹, O3 at the B12 edge): LBLRTM is more transparent in B10–B12 by
  0.039, 0.021, 0.016 at nadir at every humidity; the gases emit at T_air − 40 K (which reproduces the
  measured B10 L↑ bias of 0.11 for a 0.039 τ bias); L↓ changes by −1.66·Δτ·B(T_air − 40 K)
  (diffusivity factor).
"""

from __future__ import annotations

import numpy as np

from ..sensors import ASTER_TIR, band_radiance

#: Per g cm⁻² of column water, amplitude 1: Δτ (nadir) and ΔL↓ per band B10…B14.
CONTINUUM_TAU_PER_G = np.array([-0.0022, -0.0036, -0.0050, -0.009, -0.0104])
CONTINUUM_SKY_PER_G = np.array([0.06, 0.10, 0.14, 0.25, 0.29])
#: Amplitude 1: Δτ (nadir) per band from trace gases, and their emission temperature below T_air (K).
TRACE_GAS_TAU = np.array([0.039, 0.021, 0.016, 0.0, 0.0])
TRACE_GAS_COLDER_K = 40.0
DIFFUSIVITY = 1.66
#: Amplitudes drawn per sample when the perturbation is switched on (U(lo, hi) for each error).
DEFAULT_AMPLITUDE = (-0.5, 1.5)


def perturb_terms(
    transmittance,
    path_radiance,
    sky_radiance,
    column_water_vapour,
    air_temperature,
    view_zenith,
    continuum,
    trace_gas,
    sensor=ASTER_TIR,
):
    """Perturbed (τ, L↑, L↓), band on the last axis; amplitudes ``continuum`` and ``trace_gas`` per sample.

    τ is kept within [0.01, 1] and radiances non-negative.
    """
    sec = 1.0 / np.cos(np.deg2rad(np.asarray(view_zenith, float)))[..., None]
    w = np.asarray(column_water_vapour, float)[..., None]
    a_c, a_t = np.asarray(continuum, float)[..., None], np.asarray(trace_gas, float)[..., None]
    t_air = np.asarray(air_temperature, float)
    warm = band_radiance(t_air[..., None], sensor)
    cold = band_radiance(t_air[..., None] - TRACE_GAS_COLDER_K, sensor)
    d_cont = a_c * CONTINUUM_TAU_PER_G * w
    d_trace = a_t * TRACE_GAS_TAU
    tau = np.clip(transmittance + (d_cont + d_trace) * sec, 0.01, 1.0)
    lup = path_radiance - (d_cont * warm + d_trace * cold) * sec
    ldown = sky_radiance + a_c * CONTINUUM_SKY_PER_G * w - DIFFUSIVITY * d_trace * cold
    return tau, np.maximum(lup, 0.0), np.maximum(ldown, 0.0)
