"""Clouds, snow, night and VNIR reflectance for demo scenes, with physical radiances and the truth kept.

Everything starts from a scene of :func:`akkd_scale.simulate.scenes.make_demo_scene`, whose truth layers
(LST, emissivity, per-pixel τ, L↑, L↓) let every pixel be re-simulated:

* :func:`add_snow` — snow/ice above a ragged snowline (the simulator's held-out snow/ice surfaces, a melting
  or cold snowpack at ≤ 273.15 K): the hard case "cold, bright, white, smooth";
* :func:`night_scene` — the same ground at night: LST in the lower part of each class's LST − air prior,
  water in its upper part (a lake stays warmer than the air at night); no VNIR;
* :func:`clear_reflectance` — top-of-atmosphere reflectance of VNIR bands 1, 2, 3N for every class,
  consistent with the scene's NDVI (``bright_desert``: the bright warm desert hard case);
* :func:`add_clouds` — cloud layers (:class:`CloudLayer`: opaque water clouds, semi-transparent ice
  cirrus) as smooth coherent fields of a given fractional cover.

Cloud radiative transfer (per band b, view zenith θ, μ = cos θ), one geometrically thin layer at its
top altitude z_c over whatever lies below (the clear scene or a lower cloud):

* the atmosphere **above** the cloud: τ_a, L↑_a, L↓_a are LOWTRAN7 terms of the scene's own profile with
  the "surface" placed at z_c (``physics.atmosphere.terms_table`` on :data:`CLOUD_ALTITUDE_GRID`,
  interpolated per pixel in (water scale, z_c) exactly as the scene's surface terms). That is the
  surface-to-space path cut at the cloud top: only the water and trace gases above z_c absorb and emit.
  The clear profile's humidity is kept above the cloud (no saturation layer is added);
* cloud-top temperature T_c: the profile's temperature at z_c (the same interpolation; the lapse rate is
  the profile's own between its levels);
* cloud layer: transmissivity t_b = exp(−τ_abs,b / μ), reflectivity r_b = R_b (1 − t_b), emissivity
  ε_b = 1 − t_b − r_b. Absorption optical depth τ_abs,b = τ_vis · Q_abs,b / 2 (visible extinction
  efficiency 2 for particles much larger than the wavelength; scattering in the thermal infrared is taken
  as forward, i.e. transmitted, except for the small reflectivity R_b). Q_abs,b is the anomalous-diffraction
  absorption efficiency of spheres of the layer's effective radius (van de Hulst 1957, "Light Scattering by Small
  Particles", ch. 11: Q_abs = 1 + 2e^(−y)/y + 2(e^(−y) − 1)/y², y = 8π r k_b / λ_b) with the band imaginary
  refractive index k_b of ice (Warren & Brandt 2008) or water (Hale & Querry 1973) from
  ``simulate.emissivity.optical_constants`` weighted by each band's SRF. Ice k rises from ≈ 0.037 (B10–B12)
  to 0.15 (B13) and 0.32 (B14): cirrus is more transparent at 8–9 µm than at 10.7 µm, and at 10.7 than
  at 11.3 µm, which gives the BT11 − BT13 > 0 and BT13 − BT14 > 0 signatures of semi-transparent ice.
  Thick water clouds (τ_vis ≥ 10) are black to within R_b (ε 0.98–0.99);
* at-sensor radiance, with L_below the top-of-atmosphere radiance of the scene below (the exact clear-sky
  relation L_below = τ_a L_up(z_c) + L↑_a gives the upwelling radiance at the cloud base):
  ``L = t_b · L_below + (1 − t_b) · L↑_a + τ_a (ε_b B_b(T_c) + r_b L↓_a)``; the cloud's effect on the
  surface below (shading, downwelling from the cloud base) is neglected;
* VNIR: conservative two-stream reflectance of the cloud R_c = √3 (1 − g) τ / (2 + √3 (1 − g) τ) (Lacis &
  Hansen 1974, J. Atmos. Sci. 31:118: 0.13 τ / (1 + 0.13 τ) for g = 0.85; asymmetry parameter g 0.85
  water, 0.75 ice), white across bands 1, 2, 3N, and the adding
  of cloud and clear scene R = R_c + (1 − R_c)² ρ / (1 − R_c ρ) (the clear atmosphere's path reflectance
  is counted as if below the cloud), plus the Rayleigh reflectance of the air above the cloud where the
  cloud hides the path below: :data:`RAYLEIGH_REFLECTANCE` × p(z_c)/p₀ (p ∝ exp(−z / 8 km)) × (1 − e^(−τ))
  (single scattering, τ_R ≈ 0.094, 0.045, 0.020 at 0.56, 0.66, 0.81 µm, Bodhaine et al. 1999, at a 30° sun).

Truth kept: the cloud optical depth of each kind, top altitude and temperature of the topmost layer,
``cloud_type`` (0 clear, 1 water, 2 ice, 3 ice over water), the clear-sky radiance/BT/reflectance, and
``cloud_mask`` (any layer with visible τ ≥ :data:`VISIBLE_OPTICAL_DEPTH`). ``opaque_cloud`` marks the
pixels whose stack lets less than :data:`OPAQUE_TRANSMISSIVITY` of the band-13 radiance below through.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special

from ..conventions import LAND_COVER_CLASSES, NEDT_K
from ..errors import ParameterError
from ..physics.atmosphere import terms_table
from ..physics.forward import at_sensor_radiance, radiance_noise_sigma
from ..sensors import ASTER_TIR, band_radiance, brightness_temperature
from .emissivity import optical_constants
from .profiles import augment_profiles, read_afgl
from .scenes import _interpolate_terms, _smooth_field
from .surfaces import MELTING_POINT_K, PRIORS, land_cover_surfaces

#: VNIR bands of the reflectance layer (band 1 green 0.56 µm, band 2 red 0.66 µm, band 3N NIR 0.81 µm).
VNIR_BANDS = ("1", "2", "3N")
#: Cloud-top altitudes (km) of the above-cloud terms table (interpolated per pixel).
CLOUD_ALTITUDE_GRID = (0.3, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0)
#: A cloud top lies at least this far (km) above the ground (a deck meeting a mountain is cut there).
MIN_CLOUD_DEPTH_KM = 0.2
#: Visible optical depth from which a layer counts as a (visible) cloud in the truth mask.
VISIBLE_OPTICAL_DEPTH = 0.5
#: A stack transmitting less than this of the band-13 radiance from below is "opaque".
OPAQUE_TRANSMISSIVITY = 0.1
#: Thermal-infrared reflectivity of a thick cloud per band (B10…B14): water droplets scatter more where
#: they absorb less (8–9 µm); thick water clouds are then 0.98–0.99 emissive, ice clouds ≈ 0.99.
IR_REFLECTIVITY = {"water": (0.02, 0.02, 0.02, 0.01, 0.01), "ice": (0.01, 0.01, 0.01, 0.01, 0.01)}
#: Asymmetry parameter of the scattering phase function in the visible (water droplets, ice crystals).
ASYMMETRY = {"water": 0.85, "ice": 0.75}
#: Optical constants of each cloud phase (``simulate.emissivity.OPTICAL_CONSTANTS`` sources).
PHASE_MATERIAL = {"water": ("water", "Hale"), "ice": ("ice", "Warren-2008")}
#: Single-scattering Rayleigh reflectance of the whole atmosphere in bands 1, 2, 3N (30° sun, near nadir).
RAYLEIGH_REFLECTANCE = (0.030, 0.015, 0.006)
#: Pressure scale height (km) for the air above a cloud.
PRESSURE_SCALE_KM = 8.0
#: Noise of the simulated VNIR reflectance (ASTER VNIR is 8-bit: one DN ≈ 0.002–0.004 in reflectance).
REFLECTANCE_NOISE = 0.003
#: Scale (px) and amplitude (km) of small-scale cloud-top relief (turrets, cells) on top of the deck.
TOP_RELIEF_PX, TOP_RELIEF_KM = 2.0, 0.15
#: Width of the optical-depth ramp at cloud edges, in standard deviations of the cover field.
EDGE_WIDTH = 0.25


@dataclass(frozen=True)
class CloudLayer:
    """One cloud layer: ``kind`` "water" or "ice", fractional ``cover`` of the scene, ranges of cloud-top
    altitude (km) and interior visible optical depth (log-uniform over a smooth field), the horizontal
    ``scale`` of the cover field as a fraction of the scene, and the particles' effective radius (µm)."""

    kind: str
    cover: float
    top_km: tuple[float, float]
    optical_depth: tuple[float, float]
    scale: float = 1 / 12
    effective_radius_um: float = 10.0


#: Default layers: low-to-mid water clouds (cumulus/stratocumulus, tops 1–5 km) and cirrus (8–12 km) —
#: a total cover near 30 %, as in the ≈ 20–40 % of the demo's target.
DEFAULT_LAYERS = (CloudLayer("water", 0.18, (1.0, 5.0), (8.0, 40.0), 1 / 14, 10.0),
                  CloudLayer("ice", 0.14, (8.0, 12.0), (0.3, 3.0), 1 / 8, 25.0))

#: Clear top-of-atmosphere reflectance of band 2 (red) per class (range over a smooth field), and band 1
#: relative to band 2 for bare and snow surfaces. Band 3N follows from the scene's NDVI. Typical TOA values
#: of ASTER/Landsat scenes (spectral libraries, e.g. ASTER/USGS: green vegetation red 0.03–0.06, soils 0.1–0.3,
#: sand dunes 0.3–0.45, snow 0.7–0.95, water 0.02–0.06 including the atmospheric path).
RED_REFLECTANCE = {"water": (0.03, 0.06), "snow_ice": (0.65, 0.92), "tree_cover": (0.03, 0.06),
                   "cropland": (0.04, 0.12), "grassland_shrubland": (0.05, 0.12),
                   "sparse_vegetation_bare_soil": (0.08, 0.20), "bare_rock_desert": (0.15, 0.32),
                   "built_up": (0.10, 0.20)}
#: ``bright_desert=True``: bright sand/playa (quartz dunes, dry lake beds).
BRIGHT_DESERT_RED = (0.30, 0.45)
#: Snow: band 3N relative to band 2 (ice absorbs slightly at 0.81 µm; coarse old snow is darker there).
SNOW_NIR_RATIO = (0.82, 0.97)
#: Night quantiles of each class's LST − T_air prior (water: its upper part).
NIGHT_QUANTILES, NIGHT_WATER_QUANTILES = (0.0, 0.3), (0.6, 1.0)
#: Snow LST (K): a melting daytime snowpack, a radiatively cooled night one.
SNOW_LST_DAY, SNOW_LST_NIGHT = (270.5, MELTING_POINT_K), (262.0, 270.0)


def _check_scene(scene: xr.Dataset, what: str) -> None:
    needed = ("lst", "emissivity", "transmittance", "path_radiance", "sky_radiance", "land_cover", "ndvi",
              "surface_altitude")
    missing = [n for n in needed if n not in scene]
    if missing:
        raise ParameterError(what, f"scene lacks {', '.join(missing)}", variable="scene",
                             expected="a scene of simulate.scenes.make_demo_scene")


def _bands_last(da: xr.DataArray) -> np.ndarray:
    return np.moveaxis(da.transpose("band", "y", "x").values.astype(float), 0, -1)


def _bands_first(values: np.ndarray) -> np.ndarray:
    return np.moveaxis(values, -1, 0).astype(np.float32)


def clear_radiance(scene: xr.Dataset, sensor=ASTER_TIR) -> np.ndarray:
    """Noise-free at-sensor radiance (y, x, band) of the scene's truth (LST, emissivity, terms)."""
    return at_sensor_radiance(scene["lst"].values, _bands_last(scene["emissivity"]),
                              _bands_last(scene["transmittance"]),
                              _bands_last(scene["path_radiance"]), _bands_last(scene["sky_radiance"]), sensor)


def _with_radiance(scene: xr.Dataset, radiance: np.ndarray, rng, sensor=ASTER_TIR) -> xr.Dataset:
    """Scene with ``radiance`` (noise-free, y, x, band) plus NEΔT noise, and its brightness temperature."""
    noisy = radiance + rng.standard_normal(radiance.shape) * radiance_noise_sigma(scene.attrs.get("nedt_k", NEDT_K),
                                                                                  sensor)
    out = scene.copy()
    out["radiance"] = (("band", "y", "x"), _bands_first(noisy), scene["radiance"].attrs)
    out["brightness_temperature"] = (("band", "y", "x"), _bands_first(brightness_temperature(noisy, sensor)),
                                     scene["brightness_temperature"].attrs)
    return out


def add_snow(scene: xr.Dataset, snowline_km: float = 2.0, *, seed: int = 0, night: bool = False,
             sensor=ASTER_TIR) -> xr.Dataset:
    """Snow/ice above a ragged snowline (altitude + 0.15 km smooth jitter > ``snowline_km``), re-simulated.

    Snow surfaces: the held-out (test split) snow/ice surfaces of ``land_cover_surfaces``; LST uniform in
    :data:`SNOW_LST_DAY` (or ``_NIGHT``) over a smooth field; NDVI of snow (−0.1…0.03). Reflectance of
    snow comes from :func:`clear_reflectance`. Radiance gets a fresh noise draw.
    """
    _check_scene(scene, "add_snow")
    rng = np.random.default_rng(seed)
    shape = scene["lst"].shape
    altitude = scene["surface_altitude"].values + 0.15 * _smooth_field(rng, shape, max(shape) / 20)
    snow = altitude > snowline_km
    vz = float(scene.attrs.get("view_zenith", 0.0))
    pool = land_cover_surfaces(mixture={"snow_ice": 1.0}, n_per_class=60, view_zenith=(vz,), seed=0, sensor=sensor)
    pool = pool.isel(spectrum=(pool["split"] == "test").values)["emissivity"].isel(view_zenith=0).values
    pick = pool[rng.integers(0, pool.shape[0])]
    lo, hi = SNOW_LST_NIGHT if night else SNOW_LST_DAY
    lst = scene["lst"].values.astype(float).copy()
    lst[snow] = (lo + (hi - lo) * special.ndtr(_smooth_field(rng, shape, max(shape) / 30)))[snow]
    eps = _bands_last(scene["emissivity"])
    eps[snow] = pick
    out = scene.copy()
    out["lst"] = (("y", "x"), lst.astype(np.float32), scene["lst"].attrs)
    out["emissivity"] = (("band", "y", "x"), _bands_first(eps), scene["emissivity"].attrs)
    cover = scene["land_cover"].values.copy()
    cover[snow] = LAND_COVER_CLASSES.index("snow_ice")
    out["land_cover"] = (("y", "x"), cover, scene["land_cover"].attrs)
    ndvi = scene["ndvi"].values.copy()
    ndvi[snow] = rng.uniform(-0.1, 0.03, int(snow.sum()))
    out["ndvi"] = (("y", "x"), ndvi, scene["ndvi"].attrs)
    out["vegetation_fraction"] = scene["vegetation_fraction"].where(~snow, 0.0)
    out.attrs["snowline_km"] = float(snowline_km)
    return _with_radiance(out, clear_radiance(out, sensor), rng, sensor)


def night_scene(scene: xr.Dataset, *, seed: int = 0, sensor=ASTER_TIR) -> xr.Dataset:
    """The same ground at night: LST = T_air + the class prior's LST − T_air at a smooth quantile within
    :data:`NIGHT_QUANTILES` (water :data:`NIGHT_WATER_QUANTILES`), snow within :data:`SNOW_LST_NIGHT`; the
    scene's atmospheric terms are kept (the same profile; its near-surface night inversion is not modelled)."""
    _check_scene(scene, "night_scene")
    rng = np.random.default_rng(seed)
    shape = scene["lst"].shape
    cover = scene["land_cover"].values
    lo = np.array([PRIORS[name].lst_offset[0] for name in LAND_COVER_CLASSES])[cover]
    hi = np.array([PRIORS[name].lst_offset[1] for name in LAND_COVER_CLASSES])[cover]
    water = cover == LAND_COVER_CLASSES.index("water")
    q0 = np.where(water, NIGHT_WATER_QUANTILES[0], NIGHT_QUANTILES[0])
    q1 = np.where(water, NIGHT_WATER_QUANTILES[1], NIGHT_QUANTILES[1])
    quantile = q0 + (q1 - q0) * special.ndtr(_smooth_field(rng, shape, max(shape) / 40))
    lst = scene["surface_air_temperature"].values + lo + (hi - lo) * quantile
    snow = cover == LAND_COVER_CLASSES.index("snow_ice")
    lo_s, hi_s = SNOW_LST_NIGHT
    lst[snow] = (lo_s + (hi_s - lo_s) * quantile)[snow]
    out = scene.copy()
    out["lst"] = (("y", "x"), lst.astype(np.float32), scene["lst"].attrs)
    out.attrs["time_of_day"] = "night"
    return _with_radiance(out, clear_radiance(out, sensor), rng, sensor)


def clear_reflectance(scene: xr.Dataset, *, seed: int = 0, bright_desert: bool = False) -> np.ndarray:
    """Clear-sky TOA reflectance (3, y, x) of VNIR bands 1, 2, 3N consistent with the scene's NDVI.

    Band 2 (red) per class from :data:`RED_REFLECTANCE` (``bright_desert``: bare_rock_desert from
    :data:`BRIGHT_DESERT_RED`) at a smooth quantile; band 3N = ρ2 (1 + NDVI)/(1 − NDVI) (snow: ρ2 ×
    :data:`SNOW_NIR_RATIO`, capped at 1); band 1 (green) = ρ2 × r, r = 0.8 + 1.2 · clip(NDVI − 0.15, 0, 0.6)
    (bare ground is reddish, green canopies reflect more green than red), water 1.3, snow 1.02.
    """
    rng = np.random.default_rng(seed)
    shape = scene["lst"].shape
    cover = scene["land_cover"].values
    ndvi = np.clip(scene["ndvi"].values.astype(float), -0.9, 0.95)
    ranges = dict(RED_REFLECTANCE, **({"bare_rock_desert": BRIGHT_DESERT_RED} if bright_desert else {}))
    lo = np.array([ranges[name][0] for name in LAND_COVER_CLASSES])[cover]
    hi = np.array([ranges[name][1] for name in LAND_COVER_CLASSES])[cover]
    red = lo + (hi - lo) * special.ndtr(_smooth_field(rng, shape, max(shape) / 30))
    nir = red * (1 + ndvi) / (1 - ndvi)
    green = red * (0.8 + 1.2 * np.clip(ndvi - 0.15, 0.0, 0.6))
    water = cover == LAND_COVER_CLASSES.index("water")
    snow = cover == LAND_COVER_CLASSES.index("snow_ice")
    green[water] = 1.3 * red[water]
    s0, s1 = SNOW_NIR_RATIO
    nir[snow] = np.minimum(red * (s0 + (s1 - s0) * special.ndtr(_smooth_field(rng, shape, max(shape) / 30))), 1.0)[snow]
    green[snow] = np.minimum(1.02 * red[snow], 1.0)
    return np.stack([green, red, nir])


def absorption_efficiency(kind: str, radius_um: float, sensor=ASTER_TIR) -> np.ndarray:
    """Anomalous-diffraction absorption efficiency per band of spheres of ``radius_um`` (see module)."""
    material, source = PHASE_MATERIAL[kind]
    lam, k, _ = optical_constants(material, source)
    out = []
    for band in sensor.bands:
        weights = band.srf_response / band.srf_response.sum()
        k_band = float(np.sum(np.interp(band.srf_wavelength_um, lam, k) * weights))
        y = 8 * np.pi * radius_um * k_band / float(np.sum(band.srf_wavelength_um * weights))
        out.append(1 + 2 * np.exp(-y) / y + 2 * (np.exp(-y) - 1) / y ** 2)
    return np.array(out)


def _layer_field(rng, shape, layer: CloudLayer, surface_altitude) -> tuple[np.ndarray, np.ndarray]:
    """(visible optical depth, top altitude km) of one layer: a smooth cover field thresholded at the
    ``cover`` quantile, τ ramping up over :data:`EDGE_WIDTH` at the edges, log-uniform interior τ."""
    scale = max(shape) * layer.scale
    field = _smooth_field(rng, shape, scale)
    threshold = special.ndtri(1 - layer.cover) if 0 < layer.cover < 1 else (np.inf if layer.cover <= 0 else -np.inf)
    ramp = np.clip((field - threshold) / EDGE_WIDTH, 0.0, None)
    lo, hi = np.log(layer.optical_depth[0]), np.log(layer.optical_depth[1])
    interior = np.exp(lo + (hi - lo) * special.ndtr(_smooth_field(rng, shape, scale / 2)))
    tau = interior * (1 - np.exp(-ramp))
    z0, z1 = layer.top_km
    top = (z0 + (z1 - z0) * special.ndtr(_smooth_field(rng, shape, scale * 1.5))
           + TOP_RELIEF_KM * _smooth_field(rng, shape, TOP_RELIEF_PX))
    top = np.maximum(top, surface_altitude + MIN_CLOUD_DEPTH_KM)
    return tau, top


def _check_layers(layers) -> None:
    for layer in layers:
        if layer.kind not in PHASE_MATERIAL or not 0 <= layer.cover <= 1 or min(layer.optical_depth) <= 0 \
                or max(layer.top_km) > max(CLOUD_ALTITUDE_GRID) or min(layer.top_km) < 0:
            raise ParameterError("add_clouds", f"layer {layer}", variable="layers",
                                 expected=f"kind in {tuple(PHASE_MATERIAL)}, cover in [0, 1], optical depth > 0, "
                                          f"tops within 0–{max(CLOUD_ALTITUDE_GRID)} km")


def add_clouds(scene: xr.Dataset, layers=DEFAULT_LAYERS, *, seed: int = 0, day: bool = True,
               solar_zenith: float = 30.0, bright_desert: bool = False, processes: int = 2,
               sensor=ASTER_TIR) -> xr.Dataset:
    """The scene under cloud ``layers`` (lowest first; later layers lie above earlier ones), re-simulated.

    Returns the scene with cloudy ``radiance``/``brightness_temperature`` (fresh NEΔT noise), ``ndvi`` of
    the cloudy TOA reflectance and, by day, ``reflectance(vnir_band, y, x)`` (TOA, bands 1, 2, 3N, with
    :data:`REFLECTANCE_NOISE`), plus the truth: ``clear_radiance``, ``clear_brightness_temperature``,
    ``clear_reflectance``, ``clear_ndvi``, ``cloud_optical_depth_water``/``_ice``, ``cloud_top_altitude``,
    ``cloud_top_temperature`` (topmost layer, NaN where clear), ``cloud_type``, ``cloud_mask`` and
    ``opaque_cloud``. Attributes ``solar_zenith`` (NaN at night) and ``cloud_fraction``.
    """
    _check_scene(scene, "add_clouds")
    _check_layers(layers)
    rng = np.random.default_rng(seed)
    shape = scene["lst"].shape
    vz = float(scene.attrs.get("view_zenith", 0.0))
    mu = np.cos(np.radians(vz))
    water_scales = tuple(scene.attrs.get("water_scales", (1.0,)))
    profiles = augment_profiles(read_afgl(scene.attrs.get("atmosphere", "midlatitude_summer")),
                                water_scales=water_scales)
    table = terms_table(profiles, view_zenith=(vz,), surface_altitude=CLOUD_ALTITUDE_GRID, processes=processes,
                        sensor=sensor)
    # the scene's moisture gradient, as in make_demo_scene: water-scale index linear from west to east
    moisture_index = np.broadcast_to(np.linspace(0.0, 1.0, shape[1]), shape) * (len(water_scales) - 1)
    surface_altitude = scene["surface_altitude"].values.astype(float)

    below = clear_radiance(scene, sensor)
    clear = below.copy()
    rho_clear = clear_reflectance(scene, seed=seed, bright_desert=bright_desert)
    cloud_r = np.zeros(shape)  # VNIR reflectance of the cloud stack (white)
    tau_kind = {"water": np.zeros(shape), "ice": np.zeros(shape)}
    top_altitude = np.full(shape, np.nan)
    top_temperature = np.full(shape, np.nan)
    transmissivity13 = np.ones(shape)
    b13 = sensor.band_names.index("B13")
    for layer in layers:
        tau, top = _layer_field(rng, shape, layer, surface_altitude)
        cloudy = tau > 0
        terms = _interpolate_terms(table, moisture_index, top)
        tau_abs = tau[..., None] * absorption_efficiency(layer.kind, layer.effective_radius_um, sensor) / 2
        t = np.exp(-tau_abs / mu)
        r = np.asarray(IR_REFLECTIVITY[layer.kind]) * (1 - t)
        eps = 1 - t - r
        emitted = band_radiance(terms["surface_air_temperature"][..., None], sensor)
        radiance = (t * below + (1 - t) * terms["path_radiance"]
                    + terms["transmittance"] * (eps * emitted + r * terms["sky_radiance"]))
        below = np.where(cloudy[..., None], radiance, below)
        transmissivity13 = np.where(cloudy, transmissivity13 * t[..., b13], transmissivity13)
        g = ASYMMETRY[layer.kind]
        r_layer = np.sqrt(3) * (1 - g) * tau / (2 + np.sqrt(3) * (1 - g) * tau)
        cloud_r = cloud_r + (1 - cloud_r) ** 2 * r_layer / (1 - cloud_r * r_layer)  # adding (non-absorbing)
        tau_kind[layer.kind] = tau_kind[layer.kind] + tau
        top_altitude = np.where(cloudy, top, top_altitude)
        top_temperature = np.where(cloudy, terms["surface_air_temperature"], top_temperature)

    cloudy_rho = cloud_r + (1 - cloud_r) ** 2 * rho_clear / (1 - cloud_r * rho_clear)
    above = np.exp(-np.nan_to_num(top_altitude) / PRESSURE_SCALE_KM)
    hidden = (1 - np.exp(-(tau_kind["water"] + tau_kind["ice"]))) * above
    cloudy_rho = cloudy_rho + np.asarray(RAYLEIGH_REFLECTANCE)[:, None, None] * hidden
    noisy_rho = np.clip(cloudy_rho + rng.normal(0.0, REFLECTANCE_NOISE, cloudy_rho.shape), 0.0, None)
    ndvi = (noisy_rho[2] - noisy_rho[1]) / (noisy_rho[2] + noisy_rho[1])
    water_tau, ice_tau = tau_kind["water"], tau_kind["ice"]
    cloud_type = (np.where(water_tau > 0, 1, 0) + np.where(ice_tau > 0, 2, 0)).astype(np.int8)
    truth = (water_tau >= VISIBLE_OPTICAL_DEPTH) | (ice_tau >= VISIBLE_OPTICAL_DEPTH)

    out = _with_radiance(scene, below, rng, sensor)
    yx = ("y", "x")
    out["clear_radiance"] = (("band", "y", "x"), _bands_first(clear), {"units": "W m-2 sr-1 um-1"})
    out["clear_brightness_temperature"] = (("band", "y", "x"), _bands_first(brightness_temperature(clear, sensor)),
                                           {"units": "K", "long_name": "noise-free clear-sky brightness temperature"})
    out["clear_ndvi"] = scene["ndvi"].astype(np.float32)
    out["cloud_optical_depth_water"] = (yx, water_tau.astype(np.float32), {"units": "1", "long_name": "visible τ"})
    out["cloud_optical_depth_ice"] = (yx, ice_tau.astype(np.float32), {"units": "1", "long_name": "visible τ"})
    out["cloud_top_altitude"] = (yx, top_altitude.astype(np.float32), {"units": "km"})
    out["cloud_top_temperature"] = (yx, top_temperature.astype(np.float32), {"units": "K"})
    out["cloud_type"] = (yx, cloud_type, {"flag_values": [0, 1, 2, 3],
                                          "flag_meanings": "clear water ice ice_over_water"})
    out["cloud_mask"] = (yx, truth, {"long_name": f"true cloud: a layer with visible τ ≥ {VISIBLE_OPTICAL_DEPTH}"})
    out["opaque_cloud"] = (yx, transmissivity13 < OPAQUE_TRANSMISSIVITY,
                           {"long_name": f"cloud stack transmits < {OPAQUE_TRANSMISSIVITY} of B13 from below"})
    if day:
        dims = ("vnir_band", "y", "x")
        out = out.assign_coords(vnir_band=list(VNIR_BANDS))
        out["reflectance"] = (dims, noisy_rho.astype(np.float32), {"units": "1", "long_name": "TOA reflectance"})
        out["clear_reflectance"] = (dims, rho_clear.astype(np.float32), {"units": "1"})
        out["ndvi"] = (yx, ndvi.astype(np.float32), scene["ndvi"].attrs)
    else:
        out["ndvi"] = (yx, np.full(shape, np.nan, np.float32), scene["ndvi"].attrs)
    out.attrs.update(solar_zenith=float(solar_zenith) if day else float("nan"),
                     cloud_fraction=float(truth.mean()),
                     cloud_layers=[f"{la.kind}: cover {la.cover}, tops {la.top_km} km, tau {la.optical_depth}, "
                                   f"r_eff {la.effective_radius_um} um" for la in layers])
    return out


@dataclass(frozen=True)
class MaskRates:
    """Hit and false-alarm rates of a cloud flag against a cloudy scene's truth (NaN where a group is empty).

    ``opaque``: hit rate over :data:`OPAQUE_TRANSMISSIVITY`-opaque pixels (``opaque_over_snow``: those above
    snow/ice ground, the confusion no ASTER test without SWIR resolves); ``cirrus``: over the other pixels with
    ice of visible τ ≥ :data:`VISIBLE_OPTICAL_DEPTH`; ``false_alarm``: flagged fraction of cloud-free pixels
    (τ = 0),
    overall and per land-cover class of :data:`HARD_CASES`; ``faint``: flagged fraction of pixels with
    0 < τ < :data:`VISIBLE_OPTICAL_DEPTH` (neither hit nor false alarm); counts of each group.
    """

    opaque: float
    opaque_over_snow: float
    opaque_by_height: dict
    cirrus: float
    false_alarm: float
    false_alarm_by_class: dict
    faint: float
    counts: dict


#: Land-cover classes whose false alarms are reported separately (the hard cases).
HARD_CASES = ("snow_ice", "bare_rock_desert", "water")
#: Bands of cloud-top height above the ground (km) of the opaque hit rates.
HEIGHT_BANDS_KM = ((0.0, 2.0), (2.0, 3.5), (3.5, np.inf))


def mask_rates(scene: xr.Dataset, flag, valid=None) -> MaskRates:
    """Rates of a boolean (y, x) cloud ``flag`` against the truth of a scene from :func:`add_clouds`, over the
    ``valid`` pixels (default all; e.g. those a retrieval could read)."""
    flag = np.asarray(flag, bool)
    valid = np.ones(flag.shape, bool) if valid is None else np.asarray(valid, bool)
    tau = scene["cloud_optical_depth_water"].values + scene["cloud_optical_depth_ice"].values
    opaque = scene["opaque_cloud"].values & valid
    cirrus = (scene["cloud_optical_depth_ice"].values >= VISIBLE_OPTICAL_DEPTH) & ~opaque & valid
    clear = (tau == 0) & valid
    faint = ~(tau == 0) & ~scene["cloud_mask"].values & valid
    cover = scene["land_cover"].values

    def rate(group):
        return float(flag[group].mean()) if group.any() else float("nan")

    by_class = {name: rate(clear & (cover == LAND_COVER_CLASSES.index(name))) for name in HARD_CASES}
    over_snow = opaque & (cover == LAND_COVER_CLASSES.index("snow_ice"))
    height = scene["cloud_top_altitude"].values - scene["surface_altitude"].values
    bands = {f"{lo:g}-{hi:g} km": opaque & (height >= lo) & (height < hi) for lo, hi in HEIGHT_BANDS_KM}
    counts = {"opaque": int(opaque.sum()), "opaque_over_snow": int(over_snow.sum()), "cirrus": int(cirrus.sum()),
              "clear": int(clear.sum()), **{name: int(group.sum()) for name, group in bands.items()},
              "faint": int(faint.sum()),
              **{name: int((clear & (cover == LAND_COVER_CLASSES.index(name))).sum()) for name in HARD_CASES}}
    return MaskRates(rate(opaque), rate(over_snow), {name: rate(group) for name, group in bands.items()},
                     rate(cirrus), rate(clear), by_class, rate(faint), counts)
