"""Sensor descriptions (bands, spectral responses, calibration) and band-effective Planck physics."""

from .aster import ASTER_TIR, NEDT_K, UCC, read_pyrsr_srf
from .base import Band, Sensor
from .planck import (
    band_average,
    band_effective_radiance,
    band_radiance,
    brightness_temperature,
    planck_radiance,
    srf_weights,
)

__all__ = [
    "ASTER_TIR",
    "Band",
    "NEDT_K",
    "Sensor",
    "UCC",
    "band_average",
    "band_effective_radiance",
    "band_radiance",
    "brightness_temperature",
    "planck_radiance",
    "read_pyrsr_srf",
    "srf_weights",
]
