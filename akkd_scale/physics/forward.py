"""Forward model of at-sensor thermal-infrared radiance over a Lambertian surface.

Per band: ``L_sensor = τ·(ε·B(T_s) + (1 − ε)·L↓) + L↑`` with band-effective Planck radiance B; the one
equation shared by the training-set builder, the demo scenes and (inverted) TES.
"""

from __future__ import annotations

import numpy as np

from ..conventions import NEDT_K
from ..sensors import ASTER_TIR, band_radiance


def at_sensor_radiance(lst, emissivity, transmittance, path_radiance, sky_radiance, sensor=ASTER_TIR):
    """At-sensor band radiance (W m⁻² sr⁻¹ µm⁻¹); band on the last axis, ``lst`` without it."""
    surface = band_radiance(np.asarray(lst, dtype=float)[..., None], sensor)
    return transmittance * (emissivity * surface + (1.0 - emissivity) * sky_radiance) + path_radiance


def radiance_noise_sigma(nedt=NEDT_K, sensor=ASTER_TIR, temperature=300.0) -> np.ndarray:
    """Per-band radiance noise equivalent to ``nedt`` kelvin at ``temperature`` (dB/dT · NEΔT)."""
    step = 0.05
    high = band_radiance(np.full((1,), temperature + step), sensor)
    low = band_radiance(np.full((1,), temperature - step), sensor)
    return nedt * (high - low) / (2 * step)
