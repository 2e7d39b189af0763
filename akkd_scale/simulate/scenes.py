"""Demo scenes: spatially coherent ASTER TIR radiance fields from the project's own radiative transfer.

A scene is built from physical layers, each kept as truth beside the radiance:

* **terrain** — lowland with a Gaussian mountain (surface altitude up to ``mountain_km``);
* **atmosphere** — one AFGL atmosphere whose water vapour is scaled across the scene (a moisture
  gradient from ``water_scales[0]`` in the west to ``water_scales[-1]`` in the east); band τ, L↑, L↓
  come from LOWTRAN7 terms on a (water scale × surface altitude) grid, interpolated per pixel, so the
  mountain sees a thinner, drier and colder atmosphere;
* **land cover** — coherent patches (smoothed random fields) of dense vegetation, sparse vegetation,
  bare rock/soil and urban materials with band emissivities from the spectral library (vegetation
  fractions mixed linearly over rock/mineral spectra), and a lake with Fresnel water emissivity;
* **LST** — the near-surface air temperature of the pixel's atmosphere (hence a lapse rate with altitude)
  plus a land-cover contrast (bare ground hot, vegetation and water near air temperature) and smooth
  spatial variability.

At-sensor radiance follows :func:`akkd_scale.physics.forward.at_sensor_radiance` with NEΔT noise.
"""
from __future__ import annotations

import logging

import numpy as np
import xarray as xr
from scipy import ndimage

from ..conventions import NEDT_K
from ..errors import ParameterError
from ..physics.atmosphere import terms_table
from ..physics.forward import at_sensor_radiance, radiance_noise_sigma
from ..sensors import ASTER_TIR, brightness_temperature
from .emissivity import band_emissivity, load_library, water_emissivity
from .profiles import augment_profiles, read_afgl
from .trainingset import interpolate_grid

log = logging.getLogger(__name__)

#: Land-cover classes of demo scenes (value → name); stored as ``land_cover`` flag values.
LAND_COVER = {0: "water", 1: "dense_vegetation", 2: "sparse_vegetation", 3: "bare_rock_soil", 4: "urban"}
#: LST minus near-surface air temperature per class (K): daytime contrast of the surface energy balance.
LST_CONTRAST = {0: -1.0, 1: 2.0, 2: 8.0, 3: 14.0, 4: 10.0}
#: Vegetation cover fraction range per class (mixed linearly over the class's background spectrum).
VEGETATION_FRACTION = {1: (0.8, 1.0), 2: (0.25, 0.6), 3: (0.0, 0.1), 4: (0.0, 0.15)}


def _smooth_field(rng, shape, scale_px: float) -> np.ndarray:
    """Gaussian-smoothed white noise, standardised: the basis of coherent spatial patterns."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), scale_px, mode="reflect")
    return (field - field.mean()) / field.std()


def _terrain(shape, mountain_km: float) -> np.ndarray:
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    cy, cx, width = 0.35 * ny, 0.72 * nx, 0.16 * min(shape)
    return 0.1 + mountain_km * np.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / (2 * width ** 2)))


def _land_cover(rng, shape, altitude: np.ndarray) -> np.ndarray:
    """Patches of classes 1–4 from competing smooth fields, a lake in the lowland south-west."""
    scale = max(shape) / 25
    fields = np.stack([_smooth_field(rng, shape, scale) for _ in range(4)])
    fields[2] += 0.8 * (altitude - altitude.mean()) / altitude.std()  # more bare rock up the mountain
    fields[3] -= 0.6  # urban is the rarest
    cover = 1 + np.argmax(fields, axis=0)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    lake = ((y - 0.72 * ny) / (0.12 * ny)) ** 2 + ((x - 0.25 * nx) / (0.16 * nx)) ** 2 < 1.0
    cover[lake] = 0
    return cover.astype(np.uint8)


def _class_spectra(library_bands: xr.Dataset) -> dict[str, np.ndarray]:
    """Band emissivities (n, 5) of the library's vegetation, rock/mineral (ε ≥ 0.8 everywhere) and urban spectra."""
    eps = library_bands["emissivity"].transpose("spectrum", "band").values
    classes = library_bands["material_class"].values.astype(str)
    ok = np.all(np.isfinite(eps), axis=1)
    pick = {
        "vegetation": ok & (classes == "vegetation"),
        "background": ok & np.isin(classes, ["rock", "mineral"]) & (eps.min(axis=1) >= 0.8),
        "urban": ok & (classes == "urban") & (eps.min(axis=1) >= 0.8),
    }
    out = {name: eps[mask] for name, mask in pick.items()}
    for name, values in out.items():
        if not len(values):
            raise ParameterError("emissivity library", f"no usable {name} spectra", variable="material_class",
                                 expected="vegetation, rock/mineral and urban spectra covering bands 10–14")
    return out


def _emissivity(rng, cover, library_bands, water_eps, shape) -> np.ndarray:
    """Per-pixel band emissivity (ny, nx, 5): one library spectrum per connected patch, mixed with vegetation."""
    spectra = _class_spectra(library_bands)
    veg_fraction_field = (np.tanh(_smooth_field(rng, shape, max(shape) / 60)) + 1) / 2
    eps = np.empty(shape + (water_eps.size,))
    eps[cover == 0] = water_eps
    for cls in (1, 2, 3, 4):
        labels, n_patches = ndimage.label(cover == cls)
        background_pool = spectra["urban"] if cls == 4 else spectra["background"]
        background = background_pool[rng.integers(0, len(background_pool), n_patches + 1)]
        vegetation = spectra["vegetation"][rng.integers(0, len(spectra["vegetation"]), n_patches + 1)]
        lo, hi = VEGETATION_FRACTION[cls]
        fv = (lo + (hi - lo) * veg_fraction_field)[..., None]
        in_class = labels > 0
        patch = labels[in_class]
        eps[in_class] = fv[in_class] * vegetation[patch] + (1 - fv[in_class]) * background[patch]
    return eps


def _interpolate_terms(table: xr.Dataset, moisture_index: np.ndarray, altitude: np.ndarray) -> dict[str, np.ndarray]:
    """Bilinear interpolation of the terms table in (water-scale index, surface altitude) per pixel.

    Transmittance is interpolated in log space (Beer–Lambert), the radiances linearly.
    """
    grids = (np.arange(table.sizes["profile"]), table["surface_altitude"].values)
    out = {}
    for name in ("transmittance", "path_radiance", "sky_radiance", "surface_air_temperature", "column_water_vapour"):
        da = table[name].isel(view_zenith=0) if "view_zenith" in table[name].dims else table[name]
        values = da.transpose("profile", "surface_altitude", ...).values
        log = name == "transmittance"
        value = interpolate_grid(grids, np.log(values) if log else values, (moisture_index, altitude))
        out[name] = np.exp(value) if log else value
    return out


def make_demo_scene(shape=(350, 415), *, seed: int = 0, view_zenith: float = 6.3,
                    atmosphere: str = "midlatitude_summer", water_scales=(0.3, 0.6, 0.9, 1.2),
                    mountain_km: float = 2.6, altitude_grid=(0.0, 0.7, 1.4, 2.1, 2.8), nedt: float = NEDT_K,
                    library: xr.Dataset | None = None, processes: int = 2, sensor=ASTER_TIR) -> xr.Dataset:
    """Simulate one demo scene; returns at-sensor ``radiance(band, y, x)`` and every truth layer.

    Truth variables: ``lst``, ``emissivity(band, y, x)``, ``surface_altitude``, ``column_water_vapour``,
    ``land_cover``, ``surface_air_temperature`` and the per-pixel atmospheric terms, so any pixel can be
    re-simulated (``at_sensor_radiance``) and checked against the scene's brightness temperature.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 16:
        raise ParameterError("make_demo_scene", f"shape {shape}", variable="shape", expected="(ny, nx), both ≥ 16")
    if not 0 <= view_zenith < 30:
        raise ParameterError("make_demo_scene", f"view_zenith={view_zenith}", variable="view_zenith",
                             expected="0–30° (ASTER TIR pointing range)")
    if max(altitude_grid) < mountain_km + 0.1:
        raise ParameterError("make_demo_scene", f"altitude grid tops at {max(altitude_grid)} km",
                             variable="altitude_grid", expected=f"a grid reaching the summit ({mountain_km + 0.1} km)")
    rng = np.random.default_rng(seed)
    altitude = _terrain(shape, mountain_km)
    profiles = augment_profiles(read_afgl(atmosphere), water_scales=water_scales)
    table = terms_table(profiles, view_zenith=(view_zenith,), surface_altitude=altitude_grid, processes=processes,
                        sensor=sensor)
    x_fraction = np.broadcast_to(np.linspace(0.0, 1.0, shape[1]), shape)
    terms = _interpolate_terms(table, x_fraction * (len(water_scales) - 1), altitude)

    cover = _land_cover(rng, shape, altitude)
    library_bands = band_emissivity(library if library is not None else load_library(), sensor, on_error="drop")
    water = water_emissivity(view_zenith, sensor).values.reshape(-1)
    eps = _emissivity(rng, cover, library_bands, water, shape)

    contrast = np.vectorize(LST_CONTRAST.get)(cover).astype(float)
    variability = np.where(cover == 0, 0.3, 2.0) * _smooth_field(rng, shape, max(shape) / 40)
    lst = terms["surface_air_temperature"] + contrast + variability

    radiance = at_sensor_radiance(lst, eps, terms["transmittance"], terms["path_radiance"], terms["sky_radiance"],
                                  sensor)
    radiance = radiance + rng.standard_normal(radiance.shape) * radiance_noise_sigma(nedt, sensor)

    band_dims = ("band", "y", "x")

    def bands_first(values):
        return np.moveaxis(values, -1, 0).astype(np.float32)

    ds = xr.Dataset(
        {"radiance": (band_dims, bands_first(radiance), {"units": "W m-2 sr-1 um-1"}),
         "brightness_temperature": (band_dims, bands_first(brightness_temperature(radiance, sensor)), {"units": "K"}),
         "lst": (("y", "x"), lst.astype(np.float32), {"units": "K", "long_name": "true land surface temperature"}),
         "emissivity": (band_dims, bands_first(eps), {"units": "1", "long_name": "true band emissivity"}),
         "surface_altitude": (("y", "x"), altitude.astype(np.float32), {"units": "km"}),
         "column_water_vapour": (("y", "x"), terms["column_water_vapour"].astype(np.float32), {"units": "g cm-2"}),
         "surface_air_temperature": (("y", "x"), terms["surface_air_temperature"].astype(np.float32), {"units": "K"}),
         "land_cover": (("y", "x"), cover, {"flag_values": list(LAND_COVER), "flag_meanings": " ".join(LAND_COVER.values())}),
         "transmittance": (band_dims, bands_first(terms["transmittance"]), {"units": "1"}),
         "path_radiance": (band_dims, bands_first(terms["path_radiance"]), {"units": "W m-2 sr-1 um-1"}),
         "sky_radiance": (band_dims, bands_first(terms["sky_radiance"]), {"units": "W m-2 sr-1 um-1"})},
        coords={"band": list(sensor.band_names), "wavelength": ("band", sensor.centers_um)},
        attrs={"view_zenith": float(view_zenith), "atmosphere": atmosphere, "water_scales": list(water_scales),
               "seed": int(seed), "nedt_k": float(nedt),
               "description": "akkd_scale demo scene: LOWTRAN7 terms, library emissivities, synthetic land cover"})
    log.info("demo scene %s: LST %.1f–%.1f K, CWV %.2f–%.2f g cm-2", shape, lst.min(), lst.max(),
             terms["column_water_vapour"].min(), terms["column_water_vapour"].max())
    return ds
