"""Demo scenes: spatially coherent ASTER TIR radiance fields from the project's own radiative transfer.

A scene is built from physical layers, each kept as truth beside the radiance:

* **terrain** — lowland with a Gaussian mountain (surface altitude up to ``mountain_km``);
* **atmosphere** — one AFGL atmosphere whose water vapour is scaled across the scene (a moisture
  gradient from ``water_scales[0]`` in the west to ``water_scales[-1]`` in the east); band τ, L↑, L↓
  come from LOWTRAN7 terms on a (water scale × surface altitude) grid, interpolated per pixel, so the
  mountain sees a thinner, drier and colder atmosphere;
* **land cover** — coherent patches (competing smooth random fields) of the simulator's land-cover
  classes (:data:`SCENE_CLASSES`, codes of ``conventions.LAND_COVER_CLASSES``) and a lake (water).
  Surfaces are the training simulator's own (:func:`akkd_scale.simulate.surfaces.land_cover_surfaces`),
  from its *test* split, i.e. spectra a training set with the same seed holds out: every patch blends
  two surfaces of its class with a smooth weight (an areal mixture), the lake is one water surface;
* **NDVI** — from each pixel's vegetation cover fraction by the simulator's relation
  (:func:`akkd_scale.simulate.surfaces.ndvi`);
* **LST** — the near-surface air temperature of the pixel's atmosphere (hence a lapse rate with altitude)
  plus the class's LST − air temperature offset from the simulator's skin-temperature prior
  (``surfaces.PRIORS``), taken as a smooth quantile field within the upper half of the class range:
  a late-morning (daytime) scene, bare ground up to 25 K above the air, canopies and water within a few K.

snow_ice is left out: the 2.6 km summit under these July atmospheres has a near-surface air
temperature 8–12 K above freezing, where snow would be an unphysical remnant.

At-sensor radiance follows :func:`akkd_scale.physics.forward.at_sensor_radiance` with NEΔT noise.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr
from scipy import ndimage, special

from ..conventions import LAND_COVER_CLASSES, NEDT_K, OUTPUT_ATTRS
from ..errors import ParameterError
from ..physics.atmosphere import terms_table
from ..physics.forward import at_sensor_radiance, radiance_noise_sigma
from ..sensors import ASTER_TIR, brightness_temperature
from .profiles import augment_profiles, read_afgl
from .surfaces import PRIORS, land_cover_surfaces, ndvi
from .trainingset import interpolate_grid

log = logging.getLogger(__name__)

#: Land-cover classes of demo scenes (names of ``LAND_COVER_CLASSES``); the first, water, is the lake.
SCENE_CLASSES = (
    "water",
    "tree_cover",
    "cropland",
    "grassland_shrubland",
    "sparse_vegetation_bare_soil",
    "bare_rock_desert",
    "built_up",
)
#: Land classes' pull towards high ground (per standard deviation of altitude): rock and forest up the
#: mountain, fields and towns in the lowland.
ALTITUDE_PULL = {
    "tree_cover": 0.5,
    "cropland": -0.8,
    "grassland_shrubland": 0.0,
    "sparse_vegetation_bare_soil": 0.2,
    "bare_rock_desert": 1.2,
    "built_up": -0.8,
}
#: Offsets of the land classes' fields: built-up is the rarest.
ABUNDANCE = {"built_up": -0.6}
#: Quantiles of each class's LST − air temperature prior a daytime scene spans.
DAYTIME_QUANTILES = (0.5, 1.0)
#: Seed and surfaces per class of :func:`demo_surfaces` (seed 0: the training simulator's default split).
SURFACE_SEED, SURFACES_PER_CLASS = 0, 200
#: Demo surfaces have ε ≥ this in every band: the prior keeps rare pure low-emissivity minerals (ε down
#: to 0.2), but not as patches several kilometres across.
MIN_EMISSIVITY = 0.8


def demo_surfaces(
    view_zenith=(0.0,),
    *,
    seed: int = SURFACE_SEED,
    n_per_class: int = SURFACES_PER_CLASS,
    library=None,
    sensor=ASTER_TIR,
) -> xr.Dataset:
    """Test-split surfaces of :data:`SCENE_CLASSES` from ``land_cover_surfaces`` (``seed`` fixes the split)
    with ε ≥ :data:`MIN_EMISSIVITY`: ``emissivity(spectrum, view_zenith, band)`` with ``land_cover`` and
    ``vegetation_fraction``."""
    surfaces = land_cover_surfaces(
        library,
        mixture=dict.fromkeys(SCENE_CLASSES, 1.0),
        n_per_class=n_per_class,
        view_zenith=tuple(view_zenith),
        seed=seed,
        sensor=sensor,
    )
    keep = (surfaces["split"] == "test") & (surfaces["emissivity"].min(("view_zenith", "band")) >= MIN_EMISSIVITY)
    return surfaces.isel(spectrum=keep.values)


def _smooth_field(rng, shape, scale_px: float) -> np.ndarray:
    """Gaussian-smoothed white noise, standardised: the basis of coherent spatial patterns.

    Drawn on a grid coarser by ``scale_px // 4`` (the filter still spans ≥ 4 coarse cells) and
    interpolated linearly: the same statistics at a fraction of the cost of filtering 700 × 830 pixels.
    """
    step = max(1, int(scale_px // 4))
    if step == 1:
        field = ndimage.gaussian_filter(rng.standard_normal(shape), scale_px, mode="reflect")
    else:
        coarse = ndimage.gaussian_filter(
            rng.standard_normal(tuple(n // step + 2 for n in shape)), scale_px / step, mode="reflect"
        )
        field = ndimage.map_coordinates(coarse, np.mgrid[0 : shape[0], 0 : shape[1]] / step, order=1)
    return (field - field.mean()) / field.std()


def _terrain(shape, mountain_km: float) -> np.ndarray:
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    cy, cx, width = 0.35 * ny, 0.72 * nx, 0.16 * min(shape)
    return 0.1 + mountain_km * np.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2)))


def _land_cover(rng, shape, altitude: np.ndarray) -> np.ndarray:
    """int8 class codes: patches of the land classes from competing smooth fields, a lake in the south-west."""
    land = SCENE_CLASSES[1:]
    scale = max(shape) / 25
    relief = (altitude - altitude.mean()) / altitude.std()
    fields = np.stack(
        [_smooth_field(rng, shape, scale) + ALTITUDE_PULL[name] * relief + ABUNDANCE.get(name, 0.0) for name in land]
    )
    codes = np.array([LAND_COVER_CLASSES.index(name) for name in land], np.int8)
    cover = codes[np.argmax(fields, axis=0)]
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    lake = ((y - 0.72 * ny) / (0.12 * ny)) ** 2 + ((x - 0.25 * nx) / (0.16 * nx)) ** 2 < 1.0
    cover[lake] = LAND_COVER_CLASSES.index("water")
    return cover


def _surfaces(rng, cover, surfaces: xr.Dataset, shape) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel band emissivity (ny, nx, band) and vegetation cover fraction (ny, nx).

    Each connected patch of a class blends two of the class's surfaces with a smooth weight; the lake
    (water) is one surface.
    """
    eps_pool = surfaces["emissivity"].values
    fv_pool = surfaces["vegetation_fraction"].values
    pool_class = surfaces["land_cover"].values
    weight = ((np.tanh(_smooth_field(rng, shape, max(shape) / 60)) + 1) / 2)[..., None]
    eps = np.empty(shape + (eps_pool.shape[-1],))
    fv = np.empty(shape)
    for code in np.unique(cover):
        members = np.flatnonzero(pool_class == code)
        if not members.size:
            raise ParameterError(
                "demo surfaces",
                f"no {LAND_COVER_CLASSES[code]} surfaces",
                variable="surfaces",
                expected=f"surfaces of every class in {SCENE_CLASSES}",
            )
        labels, n_patches = ndimage.label(cover == code)
        a, b = (members[rng.integers(0, members.size, n_patches + 1)] for _ in range(2))
        if LAND_COVER_CLASSES[code] == "water":
            b = a
        own = labels > 0
        patch, w = labels[own], weight[own]
        eps[own] = w * eps_pool[a[patch]] + (1 - w) * eps_pool[b[patch]]
        fv[own] = w[:, 0] * fv_pool[a[patch]] + (1 - w[:, 0]) * fv_pool[b[patch]]
    return eps, fv


def _skin_temperature(rng, cover, air_temperature, shape) -> np.ndarray:
    """Air temperature + the class's LST − T_air prior at a smooth quantile within :data:`DAYTIME_QUANTILES`."""
    lo = np.array([PRIORS[name].lst_offset[0] for name in LAND_COVER_CLASSES])[cover]
    hi = np.array([PRIORS[name].lst_offset[1] for name in LAND_COVER_CLASSES])[cover]
    q0, q1 = DAYTIME_QUANTILES
    quantile = q0 + (q1 - q0) * special.ndtr(_smooth_field(rng, shape, max(shape) / 40))
    return air_temperature + lo + (hi - lo) * quantile


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


def make_demo_scene(
    shape=(350, 415),
    *,
    seed: int = 0,
    view_zenith: float = 6.3,
    atmosphere: str = "midlatitude_summer",
    water_scales=(0.3, 0.6, 0.9, 1.2),
    mountain_km: float = 2.6,
    altitude_grid=(0.0, 0.7, 1.4, 2.1, 2.8),
    nedt: float = NEDT_K,
    surfaces: xr.Dataset | None = None,
    landscape_seed: int | None = None,
    processes: int = 2,
    sensor=ASTER_TIR,
) -> xr.Dataset:
    """Simulate one demo scene; returns at-sensor ``radiance(band, y, x)`` and every truth layer.

    Truth variables: ``lst``, ``emissivity(band, y, x)``, ``land_cover`` (int8 codes of
    ``LAND_COVER_CLASSES``), ``vegetation_fraction``, ``ndvi``, ``surface_altitude``,
    ``column_water_vapour``, ``surface_air_temperature`` and the per-pixel atmospheric terms, so any pixel
    can be re-simulated (``at_sensor_radiance``) and checked against the scene's brightness temperature.
    ``surfaces``: :func:`demo_surfaces` (made for ``view_zenith`` when None; the nearest of its view
    zenith angles is used). ``landscape_seed`` (default ``seed``) draws the ground — land cover, surfaces,
    NDVI — and ``seed`` the rest (LST, noise): scenes sharing a landscape seed show the same ground under
    different atmospheres, so one land-cover map fits them all.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 16:
        raise ParameterError("make_demo_scene", f"shape {shape}", variable="shape", expected="(ny, nx), both ≥ 16")
    if not 0 <= view_zenith < 30:
        raise ParameterError(
            "make_demo_scene",
            f"view_zenith={view_zenith}",
            variable="view_zenith",
            expected="0–30° (ASTER TIR pointing range)",
        )
    if max(altitude_grid) < mountain_km + 0.1:
        raise ParameterError(
            "make_demo_scene",
            f"altitude grid tops at {max(altitude_grid)} km",
            variable="altitude_grid",
            expected=f"a grid reaching the summit ({mountain_km + 0.1} km)",
        )
    rng = np.random.default_rng(seed)
    ground = np.random.default_rng(seed if landscape_seed is None else landscape_seed)
    altitude = _terrain(shape, mountain_km)
    profiles = augment_profiles(read_afgl(atmosphere), water_scales=water_scales)
    table = terms_table(
        profiles, view_zenith=(view_zenith,), surface_altitude=altitude_grid, processes=processes, sensor=sensor
    )
    x_fraction = np.broadcast_to(np.linspace(0.0, 1.0, shape[1]), shape)
    terms = _interpolate_terms(table, x_fraction * (len(water_scales) - 1), altitude)

    cover = _land_cover(ground, shape, altitude)
    surfaces = demo_surfaces((view_zenith,), sensor=sensor) if surfaces is None else surfaces
    surfaces = surfaces.sel(view_zenith=view_zenith, method="nearest").transpose("spectrum", "band")
    eps, fv = _surfaces(ground, cover, surfaces, shape)
    vegetation_index = ndvi(cover.ravel(), fv.ravel(), ground).reshape(shape)
    lst = _skin_temperature(rng, cover, terms["surface_air_temperature"], shape)

    radiance = at_sensor_radiance(
        lst, eps, terms["transmittance"], terms["path_radiance"], terms["sky_radiance"], sensor
    )
    radiance = radiance + rng.standard_normal(radiance.shape) * radiance_noise_sigma(nedt, sensor)

    band_dims = ("band", "y", "x")

    def bands_first(values):
        return np.moveaxis(values, -1, 0).astype(np.float32)

    cover_attrs = {k: v for k, v in OUTPUT_ATTRS["land_cover"].items() if k != "long_name"}
    ds = xr.Dataset(
        {
            "radiance": (band_dims, bands_first(radiance), {"units": "W m-2 sr-1 um-1"}),
            "brightness_temperature": (
                band_dims,
                bands_first(brightness_temperature(radiance, sensor)),
                {"units": "K"},
            ),
            "lst": (("y", "x"), lst.astype(np.float32), {"units": "K", "long_name": "true land surface temperature"}),
            "emissivity": (band_dims, bands_first(eps), {"units": "1", "long_name": "true band emissivity"}),
            "land_cover": (("y", "x"), cover, {"long_name": "true land-cover class", **cover_attrs}),
            "vegetation_fraction": (("y", "x"), fv.astype(np.float32), {"units": "1"}),
            "ndvi": (("y", "x"), vegetation_index.astype(np.float32), {"units": "1", "long_name": "true TOA NDVI"}),
            "surface_altitude": (("y", "x"), altitude.astype(np.float32), {"units": "km"}),
            "column_water_vapour": (("y", "x"), terms["column_water_vapour"].astype(np.float32), {"units": "g cm-2"}),
            "surface_air_temperature": (
                ("y", "x"),
                terms["surface_air_temperature"].astype(np.float32),
                {"units": "K"},
            ),
            "transmittance": (band_dims, bands_first(terms["transmittance"]), {"units": "1"}),
            "path_radiance": (band_dims, bands_first(terms["path_radiance"]), {"units": "W m-2 sr-1 um-1"}),
            "sky_radiance": (band_dims, bands_first(terms["sky_radiance"]), {"units": "W m-2 sr-1 um-1"}),
        },
        coords={"band": list(sensor.band_names), "wavelength": ("band", sensor.centers_um)},
        attrs={
            "view_zenith": float(view_zenith),
            "atmosphere": atmosphere,
            "water_scales": list(water_scales),
            "seed": int(seed),
            "landscape_seed": int(seed if landscape_seed is None else landscape_seed),
            "nedt_k": float(nedt),
            "description": "akkd_scale demo scene: LOWTRAN7 terms, the simulator's land-cover surfaces",
        },
    )
    log.info(
        "demo scene %s: LST %.1f–%.1f K, CWV %.2f–%.2f g cm-2",
        shape,
        lst.min(),
        lst.max(),
        terms["column_water_vapour"].min(),
        terms["column_water_vapour"].max(),
    )
    return ds
