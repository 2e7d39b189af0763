"""Patched LOWTRAN7: build, AFGL round trip, physical sanity and input checks (real Fortran runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from akkd_scale.errors import BuildError, ParameterError, ProfileFormatError
from akkd_scale.physics import lowtran
from akkd_scale.physics.lowtran import (
    MAX_LEVELS,
    Levels,
    apply_unified_diff,
    build_key,
    ensure_built,
    prepare_levels,
    run_builtin_model,
    run_lowtran,
)
from akkd_scale.physics.lowtran.build import PATCH_FILE, lowtran_source
from akkd_scale.physics.lowtran.engine import _call, _check_grid
from akkd_scale.sensors.planck import planck_radiance
from akkd_scale.simulate.profiles import read_afgl

GRID = (700.0, 1350.0, 5.0)
WINDOW = (800.0, 1250.0)


def mls_levels(**scale) -> Levels:
    ds = read_afgl("midlatitude_summer").isel(profile=0)
    gases = {g: ds[g].values * scale.get(g, 1.0) for g in ("h2o", "o3", "co2", "n2o", "co", "ch4")}
    return Levels(ds.altitude.values, ds.pressure.values, ds.temperature.values, gases, "afgl:mls")


def in_window(spectrum, lo=WINDOW[0], hi=WINDOW[1]):
    return (spectrum.wavenumber >= lo) & (spectrum.wavenumber <= hi)


def test_extension_is_built_into_keyed_cache(session_cache):
    path = ensure_built()
    assert path.parent == session_cache / "lowtran" / build_key()
    assert "AKKDRT" in (path.parent / "lowtran7.f").read_text()


def test_patch_applies_only_to_the_expected_source():
    original = lowtran_source().read_text()
    patched = apply_unified_diff(original, PATCH_FILE.read_text())
    assert "SUBROUTINE AKKDRT" in patched and "SUBROUTINE AKKDRT" not in original
    altered = original.replace("TBOUND=0; SALB=0; NOPRT=0", "TBOUND=1; SALB=0; NOPRT=0")
    with pytest.raises(BuildError, match=r"lowtran7\.f: patch hunk at line \d+ does not match the source"):
        apply_unified_diff(altered, PATCH_FILE.read_text())


def test_user_mls_profile_reproduces_builtin_model_2():
    user = run_lowtran(mls_levels(), mode="transmittance", wavenumber=GRID)
    builtin = run_builtin_model(2, mode="transmittance", wavenumber=GRID)
    assert np.array_equal(user.wavenumber, builtin.wavenumber)
    assert np.max(np.abs(user.transmittance - builtin.transmittance)) <= 0.001
    user_l = run_lowtran(mls_levels(), surface_albedo=1.0, wavenumber=GRID)
    builtin_l = run_builtin_model(2, surface_albedo=1.0, wavenumber=GRID)
    assert np.max(np.abs(user_l.radiance - builtin_l.radiance)) <= 0.02


def test_missing_well_mixed_gases_default_to_400_ppm_co2():
    levels = mls_levels()
    without = Levels(
        levels.altitude,
        levels.pressure,
        levels.temperature,
        {k: v for k, v in levels.gases.items() if k not in ("co2", "ch4", "n2o")},
        "no-co2",
    )
    explicit = Levels(
        levels.altitude,
        levels.pressure,
        levels.temperature,
        {
            **levels.gases,
            "co2": np.full(levels.altitude.size, 400.0),
            "ch4": np.full(levels.altitude.size, 1.8),
            "n2o": np.full(levels.altitude.size, 0.32),
        },
    )
    a, b = (run_lowtran(x, mode="transmittance", wavenumber=GRID) for x in (without, explicit))
    np.testing.assert_allclose(a.transmittance, b.transmittance, atol=1e-6)
    co2_band = a.wavenumber <= 740
    assert np.all(
        a.transmittance[co2_band]
        < run_lowtran(levels, mode="transmittance", wavenumber=GRID).transmittance[co2_band] + 1e-6
    )


def test_transmittance_falls_as_water_vapour_rises():
    spectra = [run_lowtran(mls_levels(h2o=s), mode="transmittance", wavenumber=GRID) for s in (0.25, 0.5, 1.0, 2.0)]
    window = in_window(spectra[0])
    means = [s.transmittance[window].mean() for s in spectra]
    assert np.all(np.diff(means) < -0.01)
    for wetter, drier in zip(spectra[1:], spectra[:-1]):
        assert np.all(wetter.transmittance <= drier.transmittance + 1e-5)


def test_path_radiance_positive_and_energy_bounded():
    levels = mls_levels()
    s = run_lowtran(levels, surface_albedo=1.0, wavenumber=GRID)
    assert np.all((s.transmittance > 0) & (s.transmittance < 1))
    assert np.all(s.radiance > 0)
    bound = planck_radiance(s.wavelength_um, levels.temperature.max()) * (1 - s.transmittance)
    assert np.all(s.radiance < bound)


def test_surface_emission_adds_tau_times_planck():
    levels = mls_levels()
    path = run_lowtran(levels, surface_albedo=1.0, wavenumber=GRID)
    hot = run_lowtran(levels, surface_albedo=0.0, surface_temperature=310.0, wavenumber=GRID)
    expected = hot.transmittance * planck_radiance(hot.wavelength_um, 310.0) + path.radiance
    np.testing.assert_allclose(hot.radiance, expected, rtol=2e-3)


def test_slant_path_is_more_opaque_than_nadir():
    nadir, slant = (run_lowtran(mls_levels(), mode="transmittance", view_zenith=v, wavenumber=GRID) for v in (0, 60))
    informative = (nadir.transmittance > 0.01) & (nadir.transmittance < 0.99)
    assert np.all(slant.transmittance[informative] < nadir.transmittance[informative])
    # twice the air mass at 60°: band-averaged τ cannot fall faster than Beer's law, τ(60°) >= τ(0°)²
    assert np.all(slant.transmittance[informative] >= nadir.transmittance[informative] ** 2 - 1e-3)


def test_higher_surface_is_more_transparent():
    means = [
        run_lowtran(mls_levels(), mode="transmittance", surface_altitude=z, wavenumber=GRID) for z in (0.0, 1.0, 2.5)
    ]
    window = in_window(means[0])
    values = [m.transmittance[window].mean() for m in means]
    assert np.all(np.diff(values) > 0.02)


def test_downwelling_view_is_brighter_near_horizon():
    zenith, low = (run_lowtran(mls_levels(), direction="up", view_zenith=v, wavenumber=GRID) for v in (0, 75))
    window = in_window(zenith)
    assert np.all(low.radiance[window] > zenith.radiance[window])


def test_profile_is_thinned_to_34_levels_from_the_surface():
    levels = mls_levels()
    assert levels.altitude.size == 50
    prepared = prepare_levels(levels, 0.7)
    assert prepared.altitude.size <= MAX_LEVELS and prepared.altitude[0] == pytest.approx(0.7)
    assert np.all(np.diff(prepared.altitude) > 0) and np.all(np.diff(prepared.pressure) < 0)
    assert prepared.pressure[0] == pytest.approx(np.exp(np.interp(0.7, levels.altitude, np.log(levels.pressure))))
    with pytest.raises(ParameterError, match=r"altitude: 50 levels \(expected at most 34"):
        _call(
            model=7,
            emission=False,
            itype=3,
            levels=lowtran.validate_levels(levels),
            grid=_check_grid(GRID),
            h1=0.0,
            h2=0.0,
            angle=0.0,
            surface_temperature=0.0,
            surface_albedo=0.0,
        )


def test_nan_padding_at_top_is_dropped():
    levels = mls_levels()
    pad = lambda a: np.r_[a, np.nan, np.nan]  # noqa: E731
    padded = Levels(
        pad(levels.altitude),
        pad(levels.pressure),
        pad(levels.temperature),
        {k: pad(v) for k, v in levels.gases.items()},
        "padded",
    )
    assert lowtran.validate_levels(padded).altitude.size == levels.altitude.size


@pytest.mark.parametrize(
    "change, variable",
    [
        (
            lambda lv: Levels(
                lv.altitude,
                np.r_[lv.pressure[:5], lv.pressure[6:7], lv.pressure[5:6], lv.pressure[7:]],
                lv.temperature,
                lv.gases,
                "bad",
            ),
            "pressure",
        ),
        (
            lambda lv: Levels(lv.altitude, lv.pressure, lv.temperature, {**lv.gases, "h2o": -lv.gases["h2o"]}, "bad"),
            "h2o",
        ),
        (lambda lv: Levels(lv.altitude, lv.pressure, lv.temperature - 273.15, lv.gases, "bad"), "temperature"),
        (lambda lv: Levels(lv.altitude[::-1], lv.pressure, lv.temperature, lv.gases, "bad"), "altitude"),
        (lambda lv: Levels(lv.altitude, lv.pressure, lv.temperature, {**lv.gases, "xe": lv.gases["h2o"]}, "bad"), "xe"),
    ],
)
def test_bad_profiles_are_named(change, variable):
    with pytest.raises(ProfileFormatError) as info:
        run_lowtran(change(mls_levels()))
    assert info.value.variable == variable and "bad" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, variable",
    [
        ({"surface_altitude": -0.5}, "surface_altitude"),
        ({"surface_altitude": 99.5}, "surface_altitude"),
        ({"view_zenith": 95.0}, "view_zenith"),
        ({"surface_albedo": 1.5}, "surface_albedo"),
        ({"surface_temperature": 20.0}, "surface_temperature"),
        ({"mode": "flux"}, "mode"),
        ({"wavenumber": (700.0, 1400.0, 3.0)}, "wavenumber"),
        ({"direction": "sideways"}, "direction"),
    ],
)
def test_bad_parameters_are_named(kwargs, variable):
    with pytest.raises(ParameterError) as info:
        run_lowtran(mls_levels(), **kwargs)
    assert info.value.variable == variable


def test_missing_compiler_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("AKKD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FC", str(tmp_path / "no-such-gfortran"))
    with pytest.raises(BuildError, match=r"apt-get install gfortran"):
        ensure_built()
    monkeypatch.delenv("FC")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(BuildError, match=r"install gfortran \(apt-get install gfortran\)"):
        ensure_built()
    assert not any(Path(tmp_path, "lowtran").glob("*/*.so"))


def test_concurrent_first_use_builds_once(tmp_path):
    env = {**os.environ, "AKKD_CACHE_DIR": str(tmp_path)}
    code = "from akkd_scale.physics.lowtran import ensure_built; print(ensure_built())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    paths = {proc.communicate(timeout=600)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(paths) == 1 and Path(paths.pop()).is_file()
    assert sorted(p.name for p in (tmp_path / "lowtran").iterdir()) == sorted([build_key(), f"{build_key()}.lock"])
