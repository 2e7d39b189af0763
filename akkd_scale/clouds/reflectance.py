"""Top-of-atmosphere reflectance of ASTER VNIR bands 1, 2, 3N from calibrated radiance.

ρ = π L d² / (E_sun cos θs), with L the band radiance (W m⁻² sr⁻¹ µm⁻¹), d the Earth–Sun distance (AU,
the reader's :func:`~akkd_scale.io.aster.vnir.earth_sun_distance_au`), θs the solar zenith angle and
E_sun the band's exo-atmospheric solar irradiance. E_sun of bands 2 and 3N are the reader's
(``VNIR_ESUN``: Thome et al. "B", the values of LP DAAC's ASTERL1T_DN2REF); band 1 uses the same table's
1848 W m⁻² µm⁻¹ (published values run 1846–1848: Smith vs. Thome tables).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError
from ..io.aster.vnir import VNIR_BANDS, VNIR_ESUN, earth_sun_distance_au

#: Exo-atmospheric solar irradiance (W m⁻² µm⁻¹) of VNIR bands 1, 2, 3N (Thome et al. "B" table).
ESUN = {"1": 1848.0, **dict(zip(VNIR_BANDS, VNIR_ESUN))}
#: The bands the cloud tests use, in the order of a ``reflectance`` array's first axis.
REFLECTANCE_BANDS = ("1", "2", "3N")
#: Above this solar zenith (deg) a scene counts as night: no usable reflectance (civil twilight starts at 96°,
#: but ASTER daytime VNIR at θs > 85° is too dark and too slanted for the reflectance tests).
MAX_DAY_SOLAR_ZENITH = 85.0


def reflectance_factor(band: str, day_of_year: int, solar_zenith: float) -> float:
    """Factor f with ρ = f · L for one VNIR band: π d² / (E_sun cos θs)."""
    if band not in ESUN:
        raise ParameterError("toa_reflectance", f"band {band!r}", variable="band", expected=f"one of {tuple(ESUN)}")
    if not 0.0 <= solar_zenith < MAX_DAY_SOLAR_ZENITH:
        raise ParameterError("toa_reflectance", f"solar zenith {solar_zenith}°", variable="solar_zenith",
                             expected=f"a daytime sun: 0 ≤ θs < {MAX_DAY_SOLAR_ZENITH}° (night scenes: no VNIR tests)")
    distance = earth_sun_distance_au(int(day_of_year))
    return math.pi * distance ** 2 / (ESUN[band] * math.cos(math.radians(solar_zenith)))


def toa_reflectance(radiance, band: str, day_of_year: int, solar_zenith: float):
    """TOA reflectance of VNIR band radiance (any array, NaN kept) on ``day_of_year`` with sun at ``solar_zenith``."""
    return np.asarray(radiance, dtype=np.float32) * np.float32(reflectance_factor(band, day_of_year, solar_zenith))


def radiance_from_reflectance(reflectance, band: str, day_of_year: int, solar_zenith: float):
    """Inverse of :func:`toa_reflectance` (for simulated VNIR radiance)."""
    return np.asarray(reflectance, dtype=float) / reflectance_factor(band, day_of_year, solar_zenith)
