"""Training-set builder: radiative-transfer arithmetic, splits, determinism, bad input, Zarr, real LOWTRAN."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from akkd_scale.errors import InputError, ParameterError
from akkd_scale.sensors import ASTER_TIR, band_radiance, brightness_temperature
from akkd_scale.simulate import emissivity as E
from akkd_scale.simulate import profiles as P
from akkd_scale.simulate import trainingset as T

from .conftest import simple_terms


@pytest.fixture(scope="module")
def surfaces(data_dir):
    lib = E.load_library(data_dir / "emissivity" / "tir_emissivity_library.nc")
    return E.natural_surfaces(lib, n_mixtures=50, seed=0, view_zenith=[0, 30, 60])


@pytest.fixture(scope="module")
def small(umbc, umbc_terms, surfaces):
    return T.build_training_set(umbc, surfaces, umbc_terms, 4000, seed=7)


def test_contract_variables(small):
    for name in (
        "brightness_temperature",
        "view_zenith",
        "column_water_vapour",
        "surface_altitude",
        "lst",
        "emissivity",
        "transmittance",
        "path_radiance",
        "sky_radiance",
        "surface_air_temperature",
        "split",
        "profile_id",
        "spectrum_id",
        "material_class",
    ):
        assert name in small, name
    assert small["brightness_temperature"].dims == ("sample", "band")
    assert list(small["band"].values) == list(ASTER_TIR.band_names)
    assert small.attrs["seed"] == 7 and "version" in small.attrs and small.attrs["sources"] == "umbc48"
    vz, z = small["view_zenith"].values, small["surface_altitude"].values
    assert 0 <= vz.min() and vz.max() <= 60 and 0 <= z.min() and z.max() <= 4
    offset = small["lst"].values - small["surface_air_temperature"].values
    assert -5.001 <= offset.min() < -4 and 19 < offset.max() <= 20.001


def test_radiance_equation_and_noise(small):
    eps, tau = small["emissivity"].values, small["transmittance"].values
    lup, ldn = small["path_radiance"].values, small["sky_radiance"].values
    surface = band_radiance(small["lst"].values[:, None].astype(float), ASTER_TIR)
    expected = brightness_temperature(tau * (eps * surface + (1 - eps) * ldn) + lup, ASTER_TIR)
    np.testing.assert_allclose(small["brightness_temperature_noise_free"].values, expected, atol=2e-3)
    noise = small["brightness_temperature"].values - small["brightness_temperature_noise_free"].values
    # NEΔT 0.3 K at 300 K; scenes here are colder (larger dT/dL), so the BT noise is ≥ 0.3 K
    std = noise.std(axis=0)
    assert np.all((std > 0.27) & (std < 0.8)) and abs(noise.mean()) < 0.05


def test_interpolated_terms_stay_between_grid_values(small, umbc_terms):
    tau = small["transmittance"].values
    assert tau.min() >= umbc_terms["transmittance"].values.min() - 1e-9
    assert tau.max() <= umbc_terms["transmittance"].values.max() + 1e-9
    # more water above the surface, lower B13 transmittance
    r = np.corrcoef(small["column_water_vapour"], np.log(tau[:, 3]))[0, 1]
    assert r < -0.8


def test_blackbody_in_vacuum_sees_lst(umbc, surfaces):
    terms = simple_terms(umbc).copy()
    terms["transmittance"][:] = 1.0
    terms["path_radiance"][:] = 0.0
    black = xr.Dataset(
        {"emissivity": (("spectrum", "band"), np.ones((3, 5)))},
        coords={
            "spectrum": ["a", "b", "c"],
            "band": list(ASTER_TIR.band_names),
            "split": ("spectrum", ["train", "validation", "test"]),
        },
    )
    ds = T.build_training_set(umbc, black, terms, 500, seed=1, noise=False)
    np.testing.assert_allclose(
        ds["brightness_temperature"].values, np.repeat(ds["lst"].values[:, None], 5, 1), atol=2e-3
    )


def test_splits_disjoint_by_profile_and_spectrum(small):
    split = small["split"].values
    assert set(split) == {"train", "validation", "test"}
    assert 0.6 < (split == "train").mean() < 0.8
    for column in ("profile_id", "spectrum_id"):
        seen = {s: set(small[column].values[split == s]) for s in ("train", "validation", "test")}
        assert not seen["train"] & seen["validation"]
        assert not seen["train"] & seen["test"]
        assert not seen["validation"] & seen["test"]


def test_split_by_sample_shares_profiles_and_spectra(umbc, umbc_terms, surfaces, small):
    shared = T.build_training_set(umbc, surfaces, umbc_terms, 4000, seed=7, split_by="sample")
    split = shared["split"].values
    assert shared.attrs["split_by"] == "sample" and small.attrs["split_by"] == "profile_and_spectrum"
    assert 0.6 < (split == "train").mean() < 0.8
    for column in ("profile_id", "spectrum_id"):
        seen = {s: set(shared[column].values[split == s]) for s in ("train", "validation", "test")}
        # most test profiles/spectra also occur in training (the disjoint default shares none)
        assert len(seen["test"] & seen["train"]) >= 0.8 * len(seen["test"]), column
    assert set(shared["profile_id"].values[split == "train"]) == set(umbc["profile_id"].values)
    # spectra labelled for one split by natural_surfaces are drawn in every split
    labelled_test = set(surfaces["spectrum"].values[surfaces["split"].values == "test"])
    assert labelled_test & set(shared["spectrum_id"].values[split == "train"])
    explicit = T.build_training_set(umbc, surfaces, umbc_terms, 4000, seed=7, split_by="profile_and_spectrum")
    xr.testing.assert_identical(small, explicit)  # the default is the disjoint split
    with pytest.raises(ParameterError, match="split_by: split_by='random'"):
        T.build_training_set(umbc, surfaces, umbc_terms, 10, split_by="random")


def test_augmented_profiles_stay_with_their_base(umbc, surfaces):
    aug = P.augment_profiles(umbc.isel(profile=slice(0, 20)), temperature_offsets=[0, 3])
    ds = T.build_training_set(aug, surfaces, simple_terms(aug), 3000, seed=2)
    base = np.array([p.split("+")[0] for p in ds["profile_id"].values])
    for b in np.unique(base):
        assert len(set(ds["split"].values[base == b])) == 1


def test_deterministic_for_a_seed(umbc, umbc_terms, surfaces, small):
    again = T.build_training_set(umbc, surfaces, umbc_terms, 4000, seed=7)
    xr.testing.assert_identical(small, again)
    other = T.build_training_set(umbc, surfaces, umbc_terms, 4000, seed=8)
    assert not np.array_equal(other["lst"].values, small["lst"].values)


def test_impossible_parameters(umbc, umbc_terms, surfaces):
    build = lambda **kw: T.build_training_set(umbc, surfaces, umbc_terms, kw.pop("n", 10), **kw)  # noqa: E731
    with pytest.raises(ParameterError, match=r"n_samples: n_samples=-5 \(expected a positive integer\)"):
        build(n=-5)
    with pytest.raises(ParameterError, match=r"view_zenith_range: range \(0, 95\)"):
        build(view_zenith_range=(0, 95))
    with pytest.raises(ParameterError, match=r"view_zenith_range: 0\.0–70\.0° outside the terms grid 0\.0–60\.0°"):
        build(view_zenith_range=(0, 70))  # terms only up to 60°
    with pytest.raises(ParameterError, match=r"surface_altitude_range: range \(3, 1\)"):
        build(surface_altitude_range=(3, 1))
    with pytest.raises(ParameterError, match=r"split_fractions: split_fractions=\(0\.5, 0\.5, 0\.5\)"):
        build(split_fractions=(0.5, 0.5, 0.5))
    with pytest.raises(InputError, match="sky_radiance: missing variable sky_radiance"):
        T.build_training_set(umbc, surfaces, umbc_terms.drop_vars("sky_radiance"), 10)


def test_terms_below_a_profile_surface_are_never_sampled(umbc, surfaces):
    terms = simple_terms(umbc).copy()
    high = umbc["profile_id"].values[:10]
    for name in ("transmittance", "path_radiance", "sky_radiance"):
        terms[name].values[:10, :2] = np.nan  # first 10 profiles: no terms at 0 and 1 km
    ds = T.build_training_set(umbc, surfaces, terms, 3000, seed=4)
    on_high = np.isin(ds["profile_id"].values, high)
    assert on_high.any() and ds["surface_altitude"].values[on_high].min() >= 2.0
    assert np.isfinite(ds["brightness_temperature"].values).all()


def test_zarr_round_trip(small, tmp_path):
    path = tmp_path / "train.zarr"
    T.write_training_set(small, path, chunk=1000)
    back = T.open_training_set(path)
    assert back.attrs["seed"] == 7
    np.testing.assert_array_equal(back["brightness_temperature"].values, small["brightness_temperature"].values)
    assert back["split"].dtype.kind == "U"  # plain NumPy text for every reader
    assert list(back["split"].values) == list(small["split"].values)
    assert list(back["spectrum_id"].values) == list(small["spectrum_id"].values)
    with pytest.raises(FileExistsError):
        T.write_training_set(small, path)
    with pytest.raises(InputError, match=r"nothing\.zarr: not a readable Zarr store"):
        T.open_training_set(tmp_path / "nothing.zarr")


def test_real_lowtran_terms(surfaces):
    """2 AFGL profiles × 2 angles × 2 altitudes from the patched LOWTRAN7 (cached after the first run)."""
    from akkd_scale.physics import atmosphere

    prof = P.concat_profiles([P.read_afgl("midlatitude_summer"), P.read_afgl("subarctic_winter")])
    terms = atmosphere.terms_table(prof, view_zenith=[0, 40], surface_altitude=[0, 2], processes=1)
    ds = T.build_training_set(
        prof,
        surfaces,
        terms,
        2000,
        seed=5,
        view_zenith_range=(0, 40),
        surface_altitude_range=(0, 2),
        split_fractions=(0.5, 0.0, 0.5),
    )
    assert set(ds["split"].values) == {"train", "test"}
    assert set(ds["profile_id"].values) == set(prof["profile_id"].values)
    humid = ds["profile_id"].values == "afgl:midlatitude_summer"
    assert ds["column_water_vapour"].values[humid].max() <= 2.92 and ds["column_water_vapour"].values[humid].min() > 1
    tau13 = ds["transmittance"].sel(band="B13").values
    assert tau13[humid].mean() < tau13[~humid].mean()
    assert np.all((tau13 > 0.6) & (tau13 < 1))
    # near-blackbodies: B13 BT within a few kelvin below LST (warm surface, cooler air above)
    black = ds["emissivity"].sel(band="B13").values > 0.97
    diff = ds["brightness_temperature_noise_free"].sel(band="B13").values[black] - ds["lst"].values[black]
    assert black.sum() > 100 and np.all(diff < 1.5) and np.all(diff > -12)
