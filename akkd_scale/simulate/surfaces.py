"""Land-cover surface classes: a documented generative prior over band emissivity, NDVI and skin
temperature per class, built from the v2 emissivity library (docs/simulation.md, "Land-cover classes").

Each class draws surfaces as a vegetation cover fraction ``f`` of a closed canopy over a background
(soil, non-photosynthetic vegetation, rock/mineral, urban material), or as water or snow/ice:

* canopy emissivity from a leaf spectrum ε_l by the diffusive reflectance of a semi-infinite layer of
  scatterers with single-scattering albedo w = 1 − ε_l: r = (1 − γ)/(1 + γ), γ = √(1 − w) (two-stream /
  Kubelka–Munk; Hapke 2012, "Theory of reflectance and emittance spectroscopy", ch. 8): the multiple
  scattering between leaves that makes a canopy blacker than its leaves (leaf 0.955 → canopy 0.988);
* cover mixtures by the vegetation cover method (Valor & Caselles 1996, RSE 57:167),
  ε = f·ε_c + (1 − f)·ε_b + dε, with the cavity term dε = F·(1 − ε_b)·ε_c·f·(1 − f), F = 0.55 the
  geometric shape factor of Sobrino et al. (2004, RSE 90:434);
* water: Fresnel water (Hale & Querry; Segelstein) and the library's water spectra; snow/ice: the
  library's snow, ice and frost spectra and Fresnel ice (Warren).

Components are split (train/validation/test) within each material pool, and every surface uses
components of one split only, so splits are disjoint by spectrum within every class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..config import data_dir
from ..conventions import LAND_COVER_CLASSES
from ..errors import ParameterError
from ..sensors import ASTER_TIR
from .emissivity import OPTICAL_CONSTANTS, band_emissivity, ice_emissivity, load_library, water_emissivity

logger = logging.getLogger(__name__)

#: Land-cover classes, in the order of the ``land_cover`` codes 0…7 (shared with retrieval).
CLASSES = LAND_COVER_CLASSES

#: Default class mixture (% of the land surface): FAO GLC-SHARE global land-cover shares (Latham et al.
#: 2014): tree-covered 27.7 + mangroves 0.1; grassland 13.0 + shrub-covered 9.5 + herbaceous 1.3;
#: croplands 12.6; sparse vegetation 7.7; bare soils 15.2; snow and glaciers 9.7; inland water 2.6;
#: artificial surfaces 0.6.
GLOBAL_MIXTURE = {
    "water": 2.6,
    "snow_ice": 9.7,
    "tree_cover": 27.8,
    "cropland": 12.6,
    "grassland_shrubland": 23.8,
    "sparse_vegetation_bare_soil": 7.7,
    "bare_rock_desert": 15.2,
    "built_up": 0.6,
}

#: The library the classes are built from (v1 lacks soils and most vegetation).
LIBRARY_V2 = "emissivity/tir_emissivity_library_v2.nc"
#: Shape factor of the cavity term (Sobrino et al. 2004).
CAVITY_SHAPE_FACTOR = 0.55
#: Leaf spectra below this band emissivity (bark, stems, waxy or dry samples) are not used as foliage.
MIN_LEAF_EMISSIVITY = 0.90
#: Snow and ice cannot be warmer than melting (K).
MELTING_POINT_K = 273.15


@dataclass(frozen=True)
class ClassPrior:
    """Generative prior of one class: cover fraction range, background pools (probabilities),
    LST − near-surface air temperature range (K) and, for classes without vegetation, an NDVI range."""

    vegetation_fraction: tuple[float, float]
    backgrounds: dict[str, float]
    lst_offset: tuple[float, float]
    ndvi: tuple[float, float] | None = None


#: Per-class priors. LST − T_air ranges cover night (surfaces a few K below the air) and day (bare soil
#: and rock 20–25 K above it, dense canopy and water within a few K: transpiration and heat capacity).
PRIORS = {
    "water": ClassPrior((0.0, 0.0), {"water": 1.0}, (-3.0, 3.0), ndvi=(-0.40, 0.0)),
    "snow_ice": ClassPrior((0.0, 0.0), {"snow_ice": 1.0}, (-8.0, 2.0), ndvi=(-0.15, 0.10)),
    "tree_cover": ClassPrior((0.6, 1.0), {"soil": 0.4, "npv": 0.6}, (-3.0, 5.0)),
    "cropland": ClassPrior((0.05, 1.0), {"soil": 0.85, "npv": 0.15}, (-4.0, 10.0)),
    "grassland_shrubland": ClassPrior((0.2, 0.9), {"soil": 0.5, "npv": 0.5}, (-4.0, 15.0)),
    "sparse_vegetation_bare_soil": ClassPrior((0.0, 0.3), {"soil": 0.7, "npv": 0.1, "rock": 0.2}, (-5.0, 22.0)),
    "bare_rock_desert": ClassPrior((0.0, 0.1), {"rock": 0.7, "soil": 0.3}, (-6.0, 25.0)),
    "built_up": ClassPrior((0.0, 0.4), {"urban": 0.85, "soil": 0.15}, (-3.0, 18.0)),
}

#: NDVI end-members (top of atmosphere) drawn per sample: bare background and full cover; Gaussian noise.
NDVI_SOIL = (0.05, 0.25)
NDVI_VEGETATION = (0.70, 0.90)
NDVI_NOISE = 0.02

#: Library ``material_class`` values of each component pool.
POOLS = {
    "leaf": ("vegetation",),
    "soil": ("soil",),
    "npv": ("npv",),
    "rock": ("rock", "mineral"),
    "urban": ("urban",),
    "water": ("water",),
    "snow_ice": ("snow", "ice", "frost"),
}


def canopy_emissivity(leaf):
    """Emissivity of a closed canopy of leaves with emissivity ``leaf`` (multiple scattering, see module)."""
    gamma = np.sqrt(np.asarray(leaf, float))  # √(1 − w) with w = 1 − ε_l
    return 1.0 - (1.0 - gamma) / (1.0 + gamma)


def cover_mixture(canopy, background, fraction):
    """Vegetation-cover-method mixture of canopy and background emissivity for cover ``fraction``."""
    f = np.asarray(fraction, float)[..., None]
    cavity = CAVITY_SHAPE_FACTOR * (1.0 - background) * canopy * f * (1.0 - f)
    return np.minimum(f * canopy + (1.0 - f) * background + cavity, 1.0)


def ndvi(land_cover, vegetation_fraction, rng):
    """Top-of-atmosphere NDVI per sample consistent with its cover fraction.

    Vegetated and bare classes: scaled-NDVI relation of Carlson & Ripley (1997, RSE 62:241),
    f = N*², N* = (NDVI − NDVI_s)/(NDVI_v − NDVI_s), inverted with per-sample end-members
    NDVI_s ~ U(:data:`NDVI_SOIL`), NDVI_v ~ U(:data:`NDVI_VEGETATION`), plus N(0, :data:`NDVI_NOISE`).
    Water and snow/ice: uniform in their class ranges.
    """
    codes = np.asarray(land_cover)
    n = codes.size
    soil, veg = rng.uniform(*NDVI_SOIL, n), rng.uniform(*NDVI_VEGETATION, n)
    out = soil + (veg - soil) * np.sqrt(np.asarray(vegetation_fraction, float)) + rng.normal(0.0, NDVI_NOISE, n)
    for code, name in enumerate(CLASSES):
        if PRIORS[name].ndvi is not None:
            own = codes == code
            out[own] = rng.uniform(*PRIORS[name].ndvi, own.sum())
    return np.clip(out, -1.0, 1.0)


def skin_temperature(land_cover, air_temperature, rng):
    """LST = near-surface air temperature + U(class ``lst_offset``); snow/ice capped at melting."""
    codes = np.asarray(land_cover)
    lo = np.array([PRIORS[c].lst_offset[0] for c in CLASSES])[codes]
    hi = np.array([PRIORS[c].lst_offset[1] for c in CLASSES])[codes]
    lst = air_temperature + rng.uniform(lo, hi)
    snow = codes == CLASSES.index("snow_ice")
    lst[snow] = np.minimum(lst[snow], MELTING_POINT_K)
    return lst


def _split_within(names, fractions, rng):
    """Split labels with at least one member per split with a non-zero fraction where the pool allows."""
    labels = np.empty(len(names), dtype="<U10")
    order = rng.permutation(len(names))
    counts = np.floor(np.asarray(fractions) * len(names)).astype(int)
    counts = np.where((np.asarray(fractions) > 0) & (counts == 0), 1, counts)
    counts[0] = max(len(names) - counts[1:].sum(), 1 if len(names) else 0)
    bounds = np.cumsum(counts)
    for k, name in enumerate(("train", "validation", "test")):
        labels[order[(bounds[k - 1] if k else 0) : bounds[k]]] = name
    return labels


def _pools(library, angles, sensor, fractions, rng):
    """Per pool: band emissivity (n, angle, band), component names and split labels."""
    bands = band_emissivity(library, sensor, on_error="drop")
    eps = bands["emissivity"].transpose("spectrum", "band").values
    classes = bands["material_class"].values.astype(str)
    names = bands["spectrum"].values.astype(str)
    pools = {}
    for pool, members in POOLS.items():
        pick = np.isin(classes, members)
        if pool == "leaf":
            pick &= eps.min(axis=1) >= MIN_LEAF_EMISSIVITY
        values = np.repeat(eps[pick][:, None, :], angles.size, axis=1)
        pool_names = list(names[pick])
        if pool in ("water", "snow_ice"):
            material, fresnel_band = ("water", water_emissivity) if pool == "water" else ("ice", ice_emissivity)
            for source in OPTICAL_CONSTANTS[material]:
                fresnel = fresnel_band(angles, sensor, source).values
                values = np.concatenate([values, fresnel[None]], axis=0)
                pool_names.append(f"fresnel.{material}.{source}")
        if not len(pool_names):
            raise ParameterError(
                "emissivity library",
                f"no spectra for the {pool!r} pool",
                variable="material_class",
                expected=f"spectra of class {' or '.join(members)} covering bands 10–14",
            )
        if pool == "leaf":
            values = canopy_emissivity(values)
        pools[pool] = (values, np.array(pool_names), _split_within(pool_names, fractions, rng))
    return pools


def _weights_by_emissivity(values):
    """Pure low-emissivity materials are rare as whole 90 m pixels: weight 1 for min ε ≥ 0.8, falling
    linearly to 0.05 at 0.6 (as in ``natural_surfaces``)."""
    return np.clip(1.0 - (0.8 - values.min(axis=(1, 2))) / 0.2 * 0.95, 0.05, 1.0)


def land_cover_surfaces(
    library=None,
    *,
    mixture=None,
    n_per_class=400,
    view_zenith=(0.0, 12.0),
    split_fractions=(0.7, 0.15, 0.15),
    seed=0,
    sensor=ASTER_TIR,
) -> xr.Dataset:
    """Band emissivities of ``n_per_class`` surfaces for each class of ``mixture`` (default
    :data:`GLOBAL_MIXTURE`), drawn from the class priors with components of one split each.
    ``library``: spectra Dataset (default: the v2 library, :data:`LIBRARY_V2` under ``data_dir()``).

    Returns ``emissivity(spectrum, view_zenith, band)`` with coordinates ``land_cover`` (code into
    :data:`CLASSES`), ``land_cover_name``, ``vegetation_fraction``, ``split``, ``components``
    ("canopy|background" library names), ``material_class`` (= class name) and ``weight`` such that
    sampling by weight within a split reproduces the class mixture.
    """
    mixture = dict(GLOBAL_MIXTURE if mixture is None else mixture)
    unknown = sorted(set(mixture) - set(CLASSES))
    if unknown or not mixture or any(v < 0 for v in mixture.values()) or sum(mixture.values()) <= 0:
        raise ParameterError(
            "land_cover_surfaces",
            f"mixture {mixture}",
            variable="mixture",
            expected=f"non-negative shares of {', '.join(CLASSES)} (not all zero)",
        )
    fractions = np.asarray(split_fractions, float)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1):
        raise ParameterError(
            "land_cover_surfaces",
            f"split_fractions {split_fractions}",
            variable="split_fractions",
            expected="three non-negative fractions summing to 1",
        )
    if int(n_per_class) < 1:
        raise ParameterError(
            "land_cover_surfaces", f"n_per_class={n_per_class}", variable="n_per_class", expected="≥ 1"
        )
    angles = np.atleast_1d(np.asarray(view_zenith, float))
    rng = np.random.default_rng(seed)
    library = library if library is not None else load_library(data_dir() / LIBRARY_V2)
    pools = _pools(library, angles, sensor, fractions, rng)
    splits = np.array(("train", "validation", "test"))
    shares, eps, fv, split_of, components, codes = [], [], [], [], [], []
    for code, name in enumerate(CLASSES):
        share = mixture.get(name, 0.0)
        if share <= 0:
            continue
        prior = PRIORS[name]
        pool_names = list(prior.backgrounds)
        p_pool = np.array([prior.backgrounds[k] for k in pool_names])
        split = rng.choice(3, size=int(n_per_class), p=fractions)
        f = rng.uniform(*prior.vegetation_fraction, int(n_per_class))
        background = rng.choice(len(pool_names), size=int(n_per_class), p=p_pool / p_pool.sum())
        for i in range(int(n_per_class)):
            s = splits[split[i]]
            values, names, labels = pools[pool_names[background[i]]]
            members = np.flatnonzero(labels == s)
            if not members.size:
                raise ParameterError(
                    "land_cover_surfaces",
                    f"no {pool_names[background[i]]!r} spectra in split {s!r}",
                    variable="split_fractions",
                    expected="a library with spectra for every split",
                )
            weight = _weights_by_emissivity(values[members])
            b = members[rng.choice(members.size, p=weight / weight.sum())]
            surface = values[b]
            parts = [str(names[b])]
            if f[i] > 0:
                leaf_values, leaf_names, leaf_labels = pools["leaf"]
                c = rng.choice(np.flatnonzero(leaf_labels == s))
                surface = cover_mixture(leaf_values[c], surface, f[i])
                parts.insert(0, str(leaf_names[c]))
            shares.append(share)
            eps.append(surface)
            fv.append(f[i])
            split_of.append(s)
            components.append("|".join(parts))
            codes.append(code)
    codes, split_of, share = np.array(codes), np.array(split_of), np.array(shares, float)
    weight = np.empty(share.size)
    for code in np.unique(codes):
        for s in splits:
            own = (codes == code) & (split_of == s)
            weight[own] = share[own] / max(own.sum(), 1)
    out = xr.Dataset(
        {"emissivity": (("spectrum", "view_zenith", "band"), np.array(eps))},
        coords={
            "spectrum": [f"{CLASSES[c]}.{i:05d}" for i, c in enumerate(codes)],
            "view_zenith": angles,
            "band": list(sensor.band_names),
            "land_cover": ("spectrum", codes.astype(np.int8)),
            "land_cover_name": ("spectrum", np.array(CLASSES)[codes]),
            "material_class": ("spectrum", np.array(CLASSES)[codes]),
            "vegetation_fraction": ("spectrum", np.array(fv)),
            "split": ("spectrum", split_of),
            "components": ("spectrum", np.array(components)),
            "weight": ("spectrum", weight),
        },
        attrs={
            "description": "land-cover classes from the emissivity library (akkd_scale.simulate.surfaces)",
            "mixture": str(mixture),
            "seed": int(seed),
            "n_per_class": int(n_per_class),
        },
    )
    logger.info(
        "%d land-cover surfaces (%s)",
        codes.size,
        ", ".join(f"{CLASSES[c]}: {(codes == c).sum()}" for c in np.unique(codes)),
    )
    return out
