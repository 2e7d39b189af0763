"""Physical constants, in one place for every layer (SI unless the name says otherwise).

Top-level (like ``errors`` and ``config``) rather than under ``physics/`` so that ``sensors/``, the
leftmost layer, can use the radiation constants without importing from a layer to its right.
"""

from __future__ import annotations

#: First and second radiation constants for λ in µm: c1 = 2hc² (W µm⁴ m⁻² sr⁻¹), c2 = hc/k (µm K).
C1 = 1.191042972e8
C2 = 1.438776877e4
#: Molar masses (g mol⁻¹): dry air (US Standard Atmosphere 1976), water vapour, ozone.
M_AIR = 28.9644
M_H2O = 18.01528
M_O3 = 47.9982
#: Specific gas constant of dry air (J kg⁻¹ K⁻¹) and standard gravity (m s⁻²).
R_DRY = 287.05
G0 = 9.80665
#: Mean Earth radius (km).
EARTH_RADIUS_KM = 6371.0
#: WGS84 1/(1 − e²): tan(geodetic latitude) = GEOCENTRIC_FACTOR · tan(geocentric latitude).
GEOCENTRIC_FACTOR = 1.0067395
#: Terra's mean orbit altitude (km).
TERRA_ALTITUDE_KM = 705.0
#: Near-surface air-temperature lapse rate (K km⁻¹, standard atmosphere) and water-vapour scale height (km):
#: reanalysis air temperature and column water vapour are moved from a grid cell's surface height to a pixel's
#: elevation with them (io.reanalysis).
LAPSE_RATE_K_PER_KM = 6.5
WATER_VAPOUR_SCALE_HEIGHT_KM = 2.0
#: Error model of reanalysis atmospheres at a pixel (training and evaluation with atmosphere inputs): column water
#: vapour × lognormal(0, σ) and air temperature + N(0, σ). Of the order of ERA5/MERRA-2 against radiosondes and
#: station 2 m temperature in clear land conditions (TCWV ~10–15 %, T2m 1–2 K, larger in complex terrain).
REANALYSIS_CWV_LOG_SIGMA = 0.15
REANALYSIS_TAIR_SIGMA_K = 1.5
