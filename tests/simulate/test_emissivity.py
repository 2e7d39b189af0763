"""Emissivity library, text spectra, band emissivity, Fresnel water/ice, mixtures, natural surfaces."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from akkd_scale.errors import ParameterError, SpectrumError
from akkd_scale.simulate import emissivity as E


@pytest.fixture(scope="module")
def library(data_dir):
    return E.load_library(data_dir / "emissivity" / "tir_emissivity_library.nc")


def _spectrum(wavelength, values, name="s"):
    return xr.Dataset(
        {"emissivity": (("spectrum", "wavelength"), np.asarray(values, float)[None])},
        coords={"spectrum": [name], "wavelength": wavelength, "material_class": ("spectrum", ["rock"])},
    )


def test_library_band_emissivity(library):
    assert library.sizes["spectrum"] == 717
    bands = E.band_emissivity(library)
    assert bands["emissivity"].dims == ("spectrum", "band")
    assert list(bands["band"].values) == ["B10", "B11", "B12", "B13", "B14"]
    values = bands["emissivity"].values
    assert np.isfinite(values).all() and values.min() > 0.05 and values.max() <= 1.0
    # quartz-rich rocks have the reststrahlen minimum in B10–B12, not in B13/B14
    quartz = bands.sel(spectrum=[s for s in bands["spectrum"].values if "quartz" in s.lower()])
    assert quartz.sizes["spectrum"] > 0
    q = quartz["emissivity"].mean("spectrum").values
    assert q[:3].min() < q[3:].min() - 0.05
    assert set(bands["material_class"].values) >= {"rock", "mineral", "vegetation"}


def test_flat_spectrum_gives_its_value():
    wl = np.round(np.arange(7.5, 13.0001, 0.01), 4)
    out = E.band_emissivity(_spectrum(wl, np.full(wl.size, 0.93)))
    np.testing.assert_allclose(out["emissivity"].values, 0.93, atol=1e-9)


def test_nan_gap_inside_band_is_interpolated():
    wl = np.round(np.arange(7.5, 13.0001, 0.01), 4)
    values = 0.9 + 0.05 * (wl - 7.5) / 5.5  # linear: interpolation over a gap is exact
    gapped = values.copy()
    gapped[(wl > 10.5) & (wl < 10.8)] = np.nan
    full = E.band_emissivity(_spectrum(wl, values))["emissivity"].values
    holey = E.band_emissivity(_spectrum(wl, gapped))["emissivity"].values
    np.testing.assert_allclose(holey, full, atol=1e-6)


def test_spectrum_not_covering_a_band_names_spectrum_and_band():
    wl = np.round(np.arange(9.5, 13.0001, 0.01), 4)
    spectra = _spectrum(wl, np.full(wl.size, 0.95), name="short.range")
    with pytest.raises(SpectrumError, match=r"short\.range: emissivity: data miss 100\.0% of band B10's response"):
        E.band_emissivity(spectra)
    wl = np.round(np.arange(7.5, 13.0001, 0.01), 4)
    values = np.full(wl.size, 0.95)
    values[wl < 9.0] = np.nan  # in-grid but NaN: also missing
    two = xr.concat([_spectrum(wl, np.full(wl.size, 0.9), "ok"), _spectrum(wl, values, "nan.edge")], "spectrum")
    with pytest.raises(SpectrumError, match=r"nan\.edge: emissivity: data miss 100\.0% of band B10's response"):
        E.band_emissivity(two)
    kept = E.band_emissivity(two, on_error="drop")
    assert list(kept["spectrum"].values) == ["ok"]


def test_read_ecostress_style_reflectance_percent(tmp_path):
    path = tmp_path / "quartz.spectrum.txt"
    rows = "\n".join(f"{w:.4f}\t{100 * (0.02 + 0.01 * (w > 10)):.4f}" for w in np.arange(13.5, 7.0, -0.05))
    path.write_text(
        "Name: Quartz SiO2\nType: mineral\nX Units: Wavelength (micrometers)\n"
        f"Y Units: Reflectance (percent)\nAdditional Information: none\n\n{rows}\n"
    )
    ds = E.read_spectrum_text(path)
    assert ds["spectrum"].item() == "Quartz SiO2"
    assert ds["material_class"].item() == "mineral"
    assert np.all(np.diff(ds["wavelength"].values) > 0)
    e = ds["emissivity"].values[0]
    np.testing.assert_allclose(e[ds["wavelength"].values < 9.9], 0.98, atol=1e-9)
    np.testing.assert_allclose(e[ds["wavelength"].values > 10.1], 0.97, atol=1e-9)


def test_read_two_column_nanometres(tmp_path):
    path = tmp_path / "grass.txt"
    path.write_text("\n".join(f"{w:.1f} {0.97:.3f}" for w in np.arange(7500, 13001, 10.0)) + "\n")
    ds = E.read_spectrum_text(path)
    assert ds["wavelength"].values[0] == pytest.approx(7.5)
    assert E.band_emissivity(ds)["emissivity"].values == pytest.approx(np.full((1, 5), 0.97))


def test_read_text_rejects_impossible_values(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("8.0 0.5\n9.0 -0.9\n10.0 0.4\n")
    with pytest.raises(SpectrumError, match=r"bad\.txt: Y: emissivity range -0\.900–0\.500"):
        E.read_spectrum_text(path)


def test_fresnel_water_emissivity():
    eps = E.water_emissivity([0, 30, 55, 70, 85])
    b13 = eps.sel(band="B13").values
    assert 0.98 <= b13[0] <= 0.995
    assert np.all(np.diff(b13) < 0)  # falls with angle
    assert b13[2] < 0.98 and b13[4] < 0.6
    # nearly angle-independent near nadir
    assert abs(b13[1] - b13[0]) < 0.002
    # a matched index (m = 1) reflects nothing
    assert E.fresnel_emissivity(1.0 + 0j, [0, 45, 80]) == pytest.approx([1, 1, 1])
    with pytest.raises(ParameterError, match="view_zenith: view zenith 95–95°"):
        E.water_emissivity([95])


def test_fresnel_ice_differs_from_water_in_b14():
    water, ice = E.water_emissivity([0]), E.ice_emissivity([0])
    assert 0.95 < ice.sel(band="B14").item() < 0.99
    assert ice.sel(band="B14").item() < water.sel(band="B14").item() - 0.01


def test_mixtures_are_linear_and_validated():
    wl = np.round(np.arange(7.5, 13.0001, 0.01), 4)
    pair = xr.concat(
        [_spectrum(wl, np.full(wl.size, 0.98), "veg"), _spectrum(wl, np.full(wl.size, 0.70), "rock")], "spectrum"
    )
    mixed = E.mix(pair, [[0.25, 0.75], [1.0, 0.0]])
    np.testing.assert_allclose(mixed["emissivity"].values[:, 0], [0.25 * 0.98 + 0.75 * 0.70, 0.98])
    assert mixed["spectrum"].values[1] == "1.000*veg"
    band_first = E.mix(E.band_emissivity(pair), [0.25, 0.75])
    np.testing.assert_allclose(band_first["emissivity"].values, E.band_emissivity(mixed)["emissivity"].values[:1])
    with pytest.raises(ParameterError, match=r"fractions: fractions of shape \(1, 2\) \(sums \[1\.1\]\)"):
        E.mix(pair, [0.5, 0.6])


def test_natural_surfaces(library):
    ns = E.natural_surfaces(library, n_mixtures=60, seed=3, view_zenith=[0, 30, 60])
    assert ns["emissivity"].dims == ("spectrum", "view_zenith", "band")
    classes = ns["material_class"].values
    assert (classes == "vegetation_mixture").sum() == 60
    # mixtures only combine components of their own split
    split = dict(zip(ns["spectrum"].values, ns["split"].values))
    for name, cls in zip(ns["spectrum"].values, classes):
        if cls == "vegetation_mixture":
            parts = [p.split("*", 1)[1] for p in name.split("+")]
            assert {split[p] for p in parts} == {split[name]}
    water = ns.sel(spectrum="fresnel.water.Hale")["emissivity"].sel(band="B13").values
    assert water[0] > water[-1]
    lib = ns.sel(spectrum=ns["spectrum"].values[0])["emissivity"].values
    assert np.all(lib == lib[0])  # library spectra are angle-independent
    low = ns["emissivity"].min(("view_zenith", "band")) < 0.65
    assert low.any() and np.all(ns["weight"].values[low.values] < 0.3)
    assert np.all(ns["weight"].values[(ns["emissivity"].min(("view_zenith", "band")) >= 0.8).values] == 1)
    again = E.natural_surfaces(library, n_mixtures=60, seed=3, view_zenith=[0, 30, 60])
    xr.testing.assert_identical(ns, again)
    with pytest.raises(ParameterError, match=r"split_fractions: split_fractions \(0\.5, 0\.5, 0\.5\)"):
        E.natural_surfaces(library, split_fractions=(0.5, 0.5, 0.5))
