"""Band-effective atmospheric terms and cached parallel tables (real LOWTRAN runs, real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from akkd_scale.config import cache_dir
from akkd_scale.errors import ParameterError
from akkd_scale.physics.atmosphere import band_terms, profile_levels, sky_quadrature, spectral_terms, terms_table
from akkd_scale.physics.lowtran import thinning_grid
from akkd_scale.sensors.aster import ASTER_TIR
from akkd_scale.sensors.planck import band_average, planck_radiance
from akkd_scale.simulate.profiles import concat_profiles, read_afgl


@pytest.fixture(scope="module")
def mls():
    return read_afgl("midlatitude_summer")


@pytest.fixture(scope="module")
def two_profiles():
    return concat_profiles([read_afgl("midlatitude_summer"), read_afgl("subarctic_winter")])


def raised_surface(profile):
    """The same atmosphere with its lowest level (0 km) removed: surface at 1 km."""
    return (
        profile.isel(level=slice(1, None))
        .assign(surface_altitude=("profile", [1.0]))
        .assign_coords(profile_id=("profile", ["afgl:mls-1km"]))
    )


def test_quadrature_integrates_the_hemisphere():
    angles, weights = sky_quadrature()
    mu = np.cos(np.radians(angles))
    assert angles.size == 4 and np.all((angles > 0) & (angles < 90))
    for k in range(6):  # exact for polynomials in mu up to degree 6: ∫ 2 mu^(k+1) dmu = 2/(k+2)
        assert np.sum(weights * mu**k) == pytest.approx(2.0 / (k + 2), rel=1e-12)


def test_band_terms_for_mid_latitude_summer(mls):
    terms = band_terms(mls, 0.0, 0.0)
    assert list(terms.band.values) == ["B10", "B11", "B12", "B13", "B14"]
    assert terms.path_radiance.attrs["units"] == "W m-2 sr-1 um-1"
    b13 = terms.sel(band="B13")
    # published orders of magnitude (ASTER_FACTS: tau ~0.71, L_up ~2.2, L_down ~3.4)
    assert float(b13.transmittance) == pytest.approx(0.71, abs=0.03)
    assert float(b13.path_radiance) == pytest.approx(2.2, abs=0.2)
    assert float(b13.sky_radiance) == pytest.approx(3.4, abs=0.3)
    assert float(terms.column_water_vapour) == pytest.approx(float(mls.column_water_vapour[0]), rel=1e-3)


def test_band_terms_are_srf_means_of_the_spectra(mls):
    levels, _ = profile_levels(mls, 0)
    spectra = spectral_terms(levels, [30.0], 0.0)
    terms = band_terms(mls, 30.0, 0.0)
    expected = band_average(spectra["wavelength_um"], spectra["path_radiance"][0], ASTER_TIR)
    np.testing.assert_allclose(terms.path_radiance.values, expected)
    assert np.all(terms.sky_radiance > terms.path_radiance)  # the sky's slant paths emit more than nadir
    t_max = float(mls.temperature.max())
    bound = band_average(spectra["wavelength_um"], planck_radiance(spectra["wavelength_um"], t_max), ASTER_TIR)
    assert np.all(terms.path_radiance < bound * (1 - terms.transmittance))


def test_band_terms_refuses_surface_below_profile(mls):
    raised = raised_surface(mls)
    with pytest.raises(ParameterError) as info:
        band_terms(raised, 0.0, 0.0)
    assert info.value.variable == "surface_altitude"
    with pytest.raises(ParameterError, match=r"profile: 2 profiles \(expected one profile"):
        band_terms(concat_profiles([mls, raised]), 0.0, 0.0)


def test_terms_table_parallel_cached_and_consistent(two_profiles, session_cache):
    kwargs = dict(view_zenith=[0.0, 50.0], surface_altitude=[0.0, 2.0], processes=2)
    table = terms_table(two_profiles, **kwargs)
    assert table.transmittance.dims == ("profile", "surface_altitude", "view_zenith", "band")
    assert table.sky_radiance.dims == table.transmittance.dims
    assert np.all(np.isfinite(table.transmittance))
    tau = table.transmittance
    assert np.all(tau.sel(view_zenith=50.0) < tau.sel(view_zenith=0.0))
    assert np.all(tau.sel(surface_altitude=2.0) > tau.sel(surface_altitude=0.0))
    assert np.all(
        table.column_water_vapour.sel(surface_altitude=2.0) < table.column_water_vapour.sel(surface_altitude=0.0)
    )
    single = band_terms(two_profiles.isel(profile=[0]), 50.0, 2.0)
    for name in ("transmittance", "path_radiance", "sky_radiance"):
        np.testing.assert_allclose(
            table[name].isel(profile=0).sel(view_zenith=50.0, surface_altitude=2.0), single[name], rtol=1e-10
        )
    files = list((session_cache / "atmosphere_terms").glob("*.nc"))
    assert len(files) == 1
    again = terms_table(two_profiles, **kwargs)
    xr.testing.assert_identical(again, table)
    assert list((cache_dir() / "atmosphere_terms").glob("*.nc")) == files
    changed = two_profiles.assign(temperature=two_profiles.temperature + 1.0)
    terms_table(changed, view_zenith=[0.0], surface_altitude=[0.0], processes=1)
    assert len(list((session_cache / "atmosphere_terms").glob("*.nc"))) == 2


def test_terms_table_marks_altitudes_outside_a_profile(mls):
    profiles = concat_profiles([mls, raised_surface(mls)])
    with pytest.warns(UserWarning, match="outside their profile"):
        table = terms_table(profiles, view_zenith=[0.0], surface_altitude=[0.0, 1.0], processes=1, cache=False)
    assert np.all(np.isnan(table.transmittance.isel(profile=1).sel(surface_altitude=0.0)))
    assert np.all(np.isfinite(table.transmittance.isel(profile=1).sel(surface_altitude=1.0)))
    assert np.all(np.isfinite(table.transmittance.isel(profile=0)))
    np.testing.assert_allclose(
        table.transmittance.isel(profile=0).sel(surface_altitude=1.0),
        table.transmittance.isel(profile=1).sel(surface_altitude=1.0),
        atol=2e-3,
    )


def test_near_surface_layering_warms_the_humid_bottom_kilometre():
    """The near-surface grid resolves the bottom kilometre (more L↓ from warm humid air); the thinned
    stratosphere changes nothing; the standard grid is kept where asked (LOWTRAN round trips)."""
    for zs in (0.0, 0.3, 1.7, 4.0):
        grid = thinning_grid(zs, 100.0, "near_surface")
        assert grid.size <= 34 and np.allclose(grid[1:5] - zs, [0.1, 0.25, 0.5, 0.75])
        assert np.all(np.diff(grid) >= 0.05)
    with pytest.raises(ParameterError, match="layering: layering 'fine'"):
        thinning_grid(0.0, 100.0, "fine")
    tropical = read_afgl("tropical")
    fine, coarse = band_terms(tropical, 0.0, 0.0), band_terms(tropical, 0.0, 0.0, layering="standard")
    assert fine.attrs["layering"] == "near_surface" and coarse.attrs["layering"] == "standard"
    d_sky = (fine.sky_radiance - coarse.sky_radiance).values
    assert np.all(d_sky > 0.03) and np.all(np.abs((fine.transmittance - coarse.transmittance).values) < 0.003)
    dry = read_afgl("subarctic_winter")
    assert np.all(
        np.abs(
            (
                band_terms(dry, 0.0, 0.0).sky_radiance - band_terms(dry, 0.0, 0.0, layering="standard").sky_radiance
            ).values
        )
        < 0.01
    )


def test_parallel_terms_from_stdin_and_unguarded_script(tmp_path, session_cache):
    """Worker processes must not re-run the caller's main module (no BrokenProcessPool)."""
    code = (
        "from akkd_scale.physics.atmosphere import terms_table\n"
        "from akkd_scale.simulate.profiles import load_profiles\n"
        "t = terms_table(load_profiles(['afgl']).isel(profile=[0, 1]), surface_altitude=[0.0, 1.0], "
        "processes=2, cache=False)\n"
        "print('ok', int(t.transmittance.notnull().all()))\n"
    )
    script = tmp_path / "unguarded.py"
    script.write_text(code)
    env = {**os.environ, "AKKD_CACHE_DIR": str(session_cache), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for args, stdin in (([str(script)], None), (["-"], code)):
        run = subprocess.run([sys.executable, *args], input=stdin, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and run.stdout.strip() == "ok 1", run.stderr[-2000:]
