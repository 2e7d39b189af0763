"""Land-cover surface classes: canopy and mixture physics, class priors, splits, NDVI and skin temperature."""

from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.errors import ParameterError
from akkd_scale.simulate import surfaces as L
from akkd_scale.simulate import trainingset as T

from .conftest import simple_terms

CODE = {name: i for i, name in enumerate(L.CLASSES)}


@pytest.fixture(scope="module")
def surfaces():
    return L.land_cover_surfaces(n_per_class=300, seed=1, view_zenith=(0.0, 12.0))


@pytest.fixture(scope="module")
def samples(umbc, umbc_terms, surfaces):
    return T.build_training_set(umbc, surfaces, umbc_terms, 40000, seed=3)


def test_canopy_is_blacker_than_its_leaves():
    # semi-infinite two-stream layer, w = 1 - 0.955: gamma = sqrt(0.955), r = (1 - gamma)/(1 + gamma)
    assert L.canopy_emissivity(0.955) == pytest.approx(1 - (1 - 0.9772410) / (1 + 0.9772410), abs=1e-6)
    leaf = np.linspace(0.8, 1.0, 21)
    canopy = L.canopy_emissivity(leaf)
    assert np.all(canopy >= leaf) and canopy[-1] == pytest.approx(1.0) and np.all(np.diff(canopy) > 0)


def test_cover_mixture_end_members_and_cavity_term():
    canopy, soil = np.full(5, 0.99), np.array([0.80, 0.85, 0.90, 0.95, 0.97])
    np.testing.assert_allclose(L.cover_mixture(canopy, soil, 0.0), soil)
    np.testing.assert_allclose(L.cover_mixture(canopy, soil, 1.0), canopy)
    half = L.cover_mixture(canopy, soil, 0.5)
    np.testing.assert_allclose(half - (canopy + soil) / 2, 0.55 * (1 - soil) * 0.99 * 0.25, atol=1e-12)


# documented bounds (docs/simulation.md): 5th and 95th percentile of ε13 per class at nadir
BOUNDS_E13 = {
    "water": (0.985, 0.996),
    "snow_ice": (0.985, 1.0),
    "tree_cover": (0.965, 0.995),
    "cropland": (0.955, 0.995),
    "grassland_shrubland": (0.945, 0.995),
    "sparse_vegetation_bare_soil": (0.90, 0.99),
    "bare_rock_desert": (0.83, 0.985),
    "built_up": (0.90, 0.99),
}


@pytest.mark.parametrize("name", L.CLASSES)
def test_class_band_emissivity_within_documented_bounds(surfaces, name):
    own = surfaces["land_cover"].values == CODE[name]
    e13 = surfaces["emissivity"].sel(band="B13", view_zenith=0.0).values[own]
    lo, hi = BOUNDS_E13[name]
    assert lo <= np.quantile(e13, 0.05) and np.quantile(e13, 0.95) <= hi, np.quantile(e13, [0.05, 0.95])
    fv = surfaces["vegetation_fraction"].values[own]
    assert np.all((fv >= L.PRIORS[name].vegetation_fraction[0]) & (fv <= L.PRIORS[name].vegetation_fraction[1]))


def test_dense_canopy_and_rock_contrast(surfaces):
    eps = surfaces["emissivity"].sel(view_zenith=0.0).values
    dense = (surfaces["land_cover"].values == CODE["tree_cover"]) & (surfaces["vegetation_fraction"].values >= 0.9)
    assert dense.sum() > 20 and eps[dense, 3].min() >= 0.97
    rock = surfaces["land_cover"].values == CODE["bare_rock_desert"]
    # quartz-bearing rocks: the reststrahlen minimum in B10–B12 makes the spectral contrast
    assert np.quantile(eps[rock].max(1) - eps[rock].min(1), 0.9) > 0.08
    assert np.quantile(eps[dense].max(1) - eps[dense].min(1), 0.9) < 0.03


def test_splits_disjoint_by_spectrum_within_every_class(surfaces):
    for code in range(len(L.CLASSES)):
        own = surfaces["land_cover"].values == code
        used = {s: set() for s in ("train", "validation", "test")}
        for comp, split in zip(surfaces["components"].values[own], surfaces["split"].values[own]):
            used[split].update(comp.split("|"))
        assert all(used.values()), (L.CLASSES[code], {k: len(v) for k, v in used.items()})
        assert not used["train"] & used["validation"] and not used["train"] & used["test"]
        assert not used["validation"] & used["test"]


def test_sample_mixture_follows_global_land_cover(samples):
    shares = np.array([L.GLOBAL_MIXTURE[c] for c in L.CLASSES]) / sum(L.GLOBAL_MIXTURE.values())
    for split in ("train", "test"):
        codes = samples["land_cover"].values[samples["split"].values == split]
        observed = np.bincount(codes, minlength=len(L.CLASSES)) / codes.size
        np.testing.assert_allclose(observed, shares, atol=0.02)


def test_ndvi_consistent_with_vegetation_fraction(samples):
    codes, fv, ndvi = samples["land_cover"].values, samples["vegetation_fraction"].values, samples["ndvi"].values
    vegetated = ~np.isin(codes, [CODE["water"], CODE["snow_ice"]])
    # scaled NDVI (Carlson & Ripley): NDVI = NDVI_s + (NDVI_v - NDVI_s) sqrt(f), end-members in their ranges
    root = np.sqrt(fv[vegetated])
    low = L.NDVI_SOIL[0] + (L.NDVI_VEGETATION[0] - L.NDVI_SOIL[0]) * root - 5 * L.NDVI_NOISE
    high = L.NDVI_SOIL[1] + (L.NDVI_VEGETATION[1] - L.NDVI_SOIL[1]) * root + 5 * L.NDVI_NOISE
    assert np.all((ndvi[vegetated] >= low) & (ndvi[vegetated] <= high))
    assert np.corrcoef(root, ndvi[vegetated])[0, 1] > 0.9
    assert np.all(ndvi[codes == CODE["water"]] <= 0.0)
    snow = ndvi[codes == CODE["snow_ice"]]
    assert snow.min() >= -0.15 and snow.max() <= 0.10


def test_skin_temperature_per_class(samples):
    codes = samples["land_cover"].values
    offset = samples["lst"].values - samples["surface_air_temperature"].values
    for name, prior in L.PRIORS.items():
        own = offset[codes == CODE[name]]
        if name == "snow_ice":  # capped at melting: only uncapped samples show the drawn offset
            lst = samples["lst"].values[codes == CODE[name]]
            assert lst.max() <= 273.15 + 1e-3 and (lst > 273.149).any()
            own = own[lst < 273.149]
        assert own.min() >= prior.lst_offset[0] - 1e-3 and own.max() <= prior.lst_offset[1] + 1e-3, name
    bare = offset[codes == CODE["bare_rock_desert"]]
    assert bare.max() > 20 and offset[codes == CODE["water"]].max() < 3.01


def test_selected_classes_and_bad_mixture(umbc):
    only = L.land_cover_surfaces(mixture={"water": 1.0, "cropland": 3.0}, n_per_class=50, seed=0)
    assert set(only["land_cover_name"].values) == {"water", "cropland"}
    ds = T.build_training_set(umbc, only, simple_terms(umbc), 8000, seed=0)
    assert abs((ds["land_cover"].values == CODE["cropland"]).mean() - 0.75) < 0.03
    with pytest.raises(ParameterError, match=r"mixture: mixture \{'lava': 1\.0\}"):
        L.land_cover_surfaces(mixture={"lava": 1.0}, n_per_class=5)


def test_samples_disjoint_by_profile_and_by_component_within_classes(samples, surfaces):
    components = dict(zip(surfaces["spectrum"].values, surfaces["components"].values))
    split = samples["split"].values
    profiles = {s: set(samples["profile_id"].values[split == s]) for s in ("train", "validation", "test")}
    assert not profiles["train"] & profiles["test"] and not profiles["validation"] & profiles["test"]
    for code in range(len(L.CLASSES)):
        own = samples["land_cover"].values == code
        used = {
            s: {c for sid in samples["spectrum_id"].values[own & (split == s)] for c in components[sid].split("|")}
            for s in ("train", "validation", "test")
        }
        assert not used["train"] & used["test"] and not used["train"] & used["validation"], L.CLASSES[code]
