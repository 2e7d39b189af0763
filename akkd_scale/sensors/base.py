"""Sensor and band descriptions as plain data, so a new instrument (ECOSTRESS, Landsat) needs no code.

A :class:`Band` carries its spectral response function (SRF); everything band-effective (Planck
radiance, brightness temperature, SRF-weighted means) is derived from it in :mod:`.planck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import SpectrumError
from . import planck


@dataclass(frozen=True, eq=False)
class Band:
    """One spectral band: name, centre (µm), SRF on a wavelength grid (µm), calibration facts.

    ``ucc`` is the unit-conversion coefficient (W m⁻² sr⁻¹ µm⁻¹ per DN) where the instrument has
    one; ``nedt`` the noise-equivalent temperature difference (K). Equality is identity, because the
    SRF arrays make value equality ambiguous and bands are long-lived singletons.
    """

    name: str
    center_um: float
    srf_wavelength_um: np.ndarray = field(repr=False)
    srf_response: np.ndarray = field(repr=False)
    ucc: float | None = None
    nedt: float | None = None

    def __post_init__(self):
        wavelength = np.asarray(self.srf_wavelength_um, dtype=float)
        response = np.asarray(self.srf_response, dtype=float)
        if wavelength.ndim != 1 or wavelength.shape != response.shape or wavelength.size < 2:
            raise SpectrumError(
                f"band {self.name}",
                "SRF wavelength and response differ in shape or are too short",
                variable="srf_response",
                expected="two 1-D arrays of equal length ≥ 2",
            )
        if np.any(np.diff(wavelength) <= 0) or np.any(response < 0) or not np.any(response > 0):
            raise SpectrumError(
                f"band {self.name}",
                "SRF is not a non-negative response on increasing wavelengths",
                variable="srf_response",
                expected="increasing wavelength (µm), response ≥ 0, not all 0",
            )
        wavelength.setflags(write=False)
        response.setflags(write=False)
        object.__setattr__(self, "srf_wavelength_um", wavelength)
        object.__setattr__(self, "srf_response", response)

    @classmethod
    def from_srf(
        cls, name: str, wavelength_um, response, *, ucc: float | None = None, nedt: float | None = None
    ) -> Band:
        """Band whose centre is the SRF-weighted mean wavelength (centroid)."""
        wavelength = np.asarray(wavelength_um, dtype=float)
        weights = np.asarray(response, dtype=float)
        center = float(np.trapezoid(wavelength * weights, wavelength) / np.trapezoid(weights, wavelength))
        return cls(name, center, wavelength, weights, ucc=ucc, nedt=nedt)

    @cached_property
    def lut(self) -> planck.BandLUT:
        """Fine temperature → radiance table used by the fast forward and inverse Planck."""
        return planck.band_lut(self.srf_wavelength_um, self.srf_response)

    def radiance(self, temperature):
        """Band-effective Planck radiance (W m⁻² sr⁻¹ µm⁻¹) of ``temperature`` (K), NumPy or Dask."""
        return planck.elementwise(temperature, self.lut.radiance)

    def brightness_temperature(self, radiance):
        """Brightness temperature (K) of a band-effective ``radiance``, NumPy or Dask."""
        return planck.elementwise(radiance, self.lut.temperature)


@dataclass(frozen=True, eq=False)
class Sensor:
    """An ordered set of bands; array band axes follow this order."""

    name: str
    bands: tuple[Band, ...]

    def __post_init__(self):
        bands = tuple(self.bands)
        names = [band.name for band in bands]
        if not bands or len(set(names)) != len(names):
            raise SpectrumError(
                f"sensor {self.name}",
                "band names are empty or repeated",
                variable="bands",
                expected="at least one band, unique names",
            )
        object.__setattr__(self, "bands", bands)

    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names in band-axis order (e.g. ``("B10", …, "B14")``)."""
        return tuple(band.name for band in self.bands)

    @property
    def centers_um(self) -> np.ndarray:
        """Centre wavelengths (µm) in band-axis order."""
        return np.array([band.center_um for band in self.bands])

    def __len__(self) -> int:
        return len(self.bands)

    def __getitem__(self, name: str) -> Band:
        for band in self.bands:
            if band.name == name:
                return band
        raise KeyError(f"{self.name} has no band {name!r}; bands are {', '.join(self.band_names)}")
