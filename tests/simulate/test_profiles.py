"""Profile readers on the shared CRTM files, AFGL from joseki, a TIGR-layout file, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.errors import ParameterError, ProfileFormatError
from akkd_scale.simulate import profiles as P

# Published AFGL-1986 precipitable water (cm): tropical 4.1, MLS 2.9, MLW 0.85, SAS 2.1, SAW 0.42, US 1.4
AFGL_PW = {
    "tropical": 4.1,
    "midlatitude_summer": 2.92,
    "midlatitude_winter": 0.85,
    "subarctic_summer": 2.1,
    "subarctic_winter": 0.42,
    "us_standard": 1.42,
}


def _check_format(ds):
    assert set(ds.dims) == {"profile", "level"}
    for name in (
        "pressure",
        "altitude",
        "temperature",
        "h2o",
        "o3",
        "co2",
        "ch4",
        "n2o",
        "surface_pressure",
        "surface_altitude",
        "surface_air_temperature",
        "column_water_vapour",
    ):
        assert name in ds, name
    p = ds["pressure"].values
    for row in p:
        row = row[np.isfinite(row)]
        assert np.all(np.diff(row) < 0)  # level 0 is the surface
    np.testing.assert_allclose(ds["pressure"].isel(level=0), ds["surface_pressure"])
    np.testing.assert_allclose(ds["altitude"].isel(level=0), ds["surface_altitude"])
    assert np.all(np.nan_to_num(np.diff(ds["altitude"].values, axis=1), nan=1.0) > 0)
    assert len(set(ds["profile_id"].values)) == ds.sizes["profile"]


@pytest.mark.parametrize("name", sorted(AFGL_PW))
def test_afgl_column_water_matches_published(name):
    ds = P.read_afgl(name)
    _check_format(ds)
    assert ds["profile_id"].item() == f"afgl:{name}"
    assert ds["column_water_vapour"].item() == pytest.approx(AFGL_PW[name], rel=0.04)


def test_hypsometric_heights_reproduce_afgl_tabulated_heights():
    ds = P.read_afgl("midlatitude_summer").isel(profile=0)
    z = P.hypsometric_altitude(ds["pressure"].values, ds["temperature"].values, ds["h2o"].values, 0.0)
    lower = ds["altitude"].values <= 50
    np.testing.assert_allclose(z[lower], ds["altitude"].values[lower], atol=0.15)


def test_afgl_unknown_name():
    with pytest.raises(ParameterError, match="name: unknown AFGL atmosphere 'tropic'"):
        P.read_afgl("tropic")


def test_ecmwf83_drops_envelopes_and_cuts_at_surface(data_dir):
    ds = P.read_crtm_ecmwf83(data_dir / "profiles" / "crtm_ecmwf83" / "ECMWF_83P_91L.dat")
    _check_format(ds)
    assert ds.sizes["profile"] == 80
    assert "ecmwf83:081" not in ds["profile_id"].values
    # profile 2 has Psurf 772.7 hPa (high terrain): surface level at Psurf, altitude ≈ 2.2 km
    two = ds.sel(profile=list(ds["profile_id"].values).index("ecmwf83:002"))
    assert two["surface_pressure"].item() == pytest.approx(772.69928)
    assert 1.8 < two["surface_altitude"].item() < 2.6
    assert np.all(ds["co2"].isel(level=0) > 350)
    cwv = ds["column_water_vapour"].values
    assert 0.005 < cwv.min() < 0.5 and 5 < cwv.max() < 12


def test_ecmwf52_converts_mass_mixing_ratio(data_dir):
    ds = P.read_crtm_ecmwf52(data_dir / "profiles" / "crtm_ecmwf52" / "diverse_52profiles_101L.dat")
    _check_format(ds)
    assert ds.sizes["profile"] == 49
    # profile 01 surface layer: Wv 0.0156 kg/kg-scale values → tens of thousands of ppmv, not 0.01
    assert 1e3 < ds["h2o"].isel(profile=0, level=0).item() < 5e4
    assert np.all(ds["co2"].isel(level=0) == P.DEFAULT_PPMV["co2"])


def test_umbc48_reads_gas_ids(data_dir):
    ds = P.read_crtm_umbc48(data_dir / "profiles" / "crtm_umbc48")
    _check_format(ds)
    assert ds.sizes["profile"] == 48
    one = ds.isel(profile=0)  # myp1 = AFGL tropical, CO2 scaled to 370
    assert one["profile_id"].item() == "umbc48:001"
    assert one["co2"].isel(level=0).item() == pytest.approx(370.0)
    assert one["ch4"].isel(level=0).item() == pytest.approx(1.8)
    assert one["column_water_vapour"].item() == pytest.approx(AFGL_PW["tropical"], rel=0.05)


def test_load_profiles_pads_levels(data_dir):
    ds = P.load_profiles(["umbc48", "afgl"], data_dir)
    assert ds.sizes["profile"] == 54
    assert ds.sizes["level"] == 102
    afgl = ds.isel(profile=-1)
    assert np.isnan(afgl["pressure"].values[60:]).all() and np.isfinite(afgl["pressure"].values[:50]).all()
    with pytest.raises(ParameterError, match="sets: unknown profile set 'nonsense'"):
        P.load_profiles(["nonsense"], data_dir)


def _write_tigr(path, temperatures, h2o, psurf=1000.0):
    """Two 26-line records in the TIGR-2000 layout: 43 values on 8 lines of ≤6 each, top first."""
    lines = []

    def block(values):
        return [" ".join(f"{v:.6e}" for v in values[i : i + 6]) for i in range(0, 43, 6)] + [""] * 0

    for k, (t, w) in enumerate(zip(temperatures, h2o)):
        lines.append(f"{k + 1} -12345 4500 930615")
        lines += block(t)
        lines.append(f"{t[-1] + 1:.2f} {psurf:.2f}")
        lines += block(w)
        lines += block(np.full(43, 1e-6))
        lines += ["0"] * (26 - 1 - 8 - 1 - 8 - 8)
    path.write_text("\n".join(lines) + "\n")


def test_tigr_layout(tmp_path):
    levels = P.TIGR_PRESSURE_LEVELS[::-1]  # file order: top first
    t = 220 + 70 * (np.log(levels) - np.log(levels[0])) / (np.log(1013) - np.log(levels[0]))
    w = 0.01 * (levels / 1013.0) ** 3
    path = tmp_path / "tigr.dat"
    _write_tigr(path, [t, t - 10], [w, w / 2])
    ds = P.read_tigr(path)
    _check_format(ds)
    assert list(ds["profile_id"].values) == ["tigr:0001", "tigr:0002"]
    assert ds["surface_pressure"].values == pytest.approx([1000.0, 1000.0])
    np.testing.assert_allclose(ds["temperature"].isel(profile=0).values[-1], t[0])
    assert ds["column_water_vapour"].values[1] == pytest.approx(ds["column_water_vapour"].values[0] / 2, rel=1e-2)


def test_tigr_truncated_record(tmp_path):
    path = tmp_path / "bad.dat"
    path.write_text("\n".join(["1 0 0 0"] + ["250.0"] * 20) + "\n")
    with pytest.raises(ProfileFormatError, match=r"bad\.dat: record: 21 non-empty lines \(expected a multiple of 26"):
        P.read_tigr(path)


UMBC_TEMPLATE = """! test profile
'P' {n} 2
 1 2
 10.0 0.0
{rows}
"""


def _umbc(path, pressures, water, n=None):
    rows = "\n".join(
        f" {p:.5E} {280 - 6 * i:.2f} 2.0E+19 {w:.3E} 4.000E+02" for i, (p, w) in enumerate(zip(pressures, water))
    )
    path.write_text(UMBC_TEMPLATE.format(n=n or len(pressures), rows=rows))
    return path


def test_bad_profiles_name_file_profile_and_field(tmp_path):
    good_p, good_w = [1000, 850, 700, 500, 300], [1e4, 5e3, 2e3, 5e2, 50]
    ok = P.read_umbc_file(_umbc(tmp_path / "ok", good_p, good_w), "x:1")
    assert ok["column_water_vapour"] > 0
    with pytest.raises(ProfileFormatError, match=r"wrong.*x:1.*4 levels.*expected 5 levels as declared"):
        P.read_umbc_file(_umbc(tmp_path / "wrong", good_p[:4], good_w[:4], n=5), "x:1")
    with pytest.raises(ProfileFormatError, match=r"nonmono.*pressure.*monotonic"):
        P.read_umbc_file(_umbc(tmp_path / "nonmono", [1000, 850, 900, 500, 300], good_w), "x:1")
    with pytest.raises(ProfileFormatError, match=r"negative: h2o: profile x:1: negative"):
        P.read_umbc_file(_umbc(tmp_path / "negative", good_p, [1e4, -5, 2e3, 5e2, 50]), "x:1")


def test_ecmwf83_wrong_level_count(tmp_path, data_dir):
    text = (data_dir / "profiles" / "crtm_ecmwf83" / "ECMWF_83P_91L.dat").read_text().splitlines()
    start = next(i for i, ln in enumerate(text) if ln.startswith("Profile"))
    record = text[start : start + 2 + 101]
    del record[50]
    path = tmp_path / "short.dat"
    path.write_text("\n".join(record) + "\n")
    with pytest.raises(ProfileFormatError, match=r"short.dat.*ecmwf83:001 has 100 levels"):
        P.read_crtm_ecmwf83(path)


def test_augmentation_caps_water_at_saturation():
    base = P.read_afgl("tropical")
    aug = P.augment_profiles(base, temperature_offsets=[0.0, -10.0], water_scales=[1.0, 3.0])
    assert aug.sizes["profile"] == 4
    assert list(aug["profile_id"].values)[0] == "afgl:tropical"
    assert "afgl:tropical+dT-10w3" in aug["profile_id"].values
    sat = P.saturation_h2o_ppmv(aug["pressure"], aug["temperature"])
    scaled = aug.sel(profile=1)  # dT 0, ×3: capped at saturation near the humid surface
    assert np.all(scaled["h2o"].values <= np.maximum(sat[1], base["h2o"].values[0]) + 1e-6)
    assert (
        1.2 * base["column_water_vapour"].item()
        < scaled["column_water_vapour"].item()
        < 3 * base["column_water_vapour"].item()
    )
    assert aug["surface_air_temperature"].values[2] == pytest.approx(base["surface_air_temperature"].item() - 10)
    with pytest.raises(ParameterError, match=r"water_scales: water scale outside \(0, 5\]"):
        P.augment_profiles(base, water_scales=[-1])


def test_clear_sky_screening_flags_saturated_layers(data_dir):
    base = P.read_afgl("us_standard")
    assert bool(P.clear_sky(base).item())
    wet = base.copy(deep=True)
    sat = P.saturation_h2o_ppmv(wet["pressure"], wet["temperature"], over_ice=False)
    level = int(np.argmin(np.abs(wet["pressure"].values[0] - 700.0)))
    wet["h2o"].values[0, level] = 0.97 * sat[0, level]  # a cloud layer at 700 hPa
    assert not bool(P.clear_sky(wet).item()) and bool(P.clear_sky(wet, max_relative_humidity=0.99).item())
    assert P.clear_sky(wet)["max_relative_humidity"].item() == pytest.approx(0.97, abs=1e-9)
    wet["h2o"].values[0, :] = base["h2o"].values[0, :]
    high = int(np.argmin(np.abs(wet["pressure"].values[0] - 200.0)))
    wet["h2o"].values[0, high] = sat[0, high]  # saturated above 300 hPa: cirrus, not screened
    assert bool(P.clear_sky(wet).item())
    tigr = P.load_profiles(["tigr"], data_dir)
    assert tigr.sizes["profile"] == 2231 and np.allclose(tigr["surface_pressure"], 1013.0)
    # data/README.md: ≈370 TIGR profiles reach ≥ 99 % RH below 300 hPa
    assert 300 < (~P.clear_sky(tigr, max_relative_humidity=0.99)).sum() < 450
    kept, dropped = P.screen_clear_sky(tigr)
    assert kept.sizes["profile"] + len(dropped) == 2231 and len(dropped) > 370
    assert not set(dropped) & set(kept["profile_id"].values)


def test_tigr_surface_placed_by_cutting_the_profile(data_dir):
    """Column water and air temperature of a surface at z: the profile cut at z, computed independently."""
    from akkd_scale.simulate.trainingset import profile_columns

    tigr = P.load_profiles(["tigr"], data_dir).isel(profile=[0, 900, 2000])
    z_new = np.array([0.0, 1.0, 2.5, 4.0])
    cwv, tair = profile_columns(tigr, z_new)
    g = 9.80665
    for i in range(3):
        z, p = tigr["altitude"].values[i], tigr["pressure"].values[i]
        t, h2o = tigr["temperature"].values[i], tigr["h2o"].values[i]
        for j, zs in enumerate(z_new):
            zs_eff = max(zs, z[0])
            keep = z > zs_eff
            p_cut = np.r_[np.exp(np.interp(zs_eff, z, np.log(p))), p[keep]]
            w_cut = np.r_[np.interp(zs_eff, z, h2o), h2o[keep]] * 18.01528 / 28.9644 * 1e-6
            expected = -np.trapezoid(w_cut / (1 + w_cut), p_cut * 100.0) / g / 10.0
            assert cwv[i, j] == pytest.approx(expected, rel=1e-9)
            assert tair[i, j] == pytest.approx(np.interp(zs_eff, z, t) + 6.5 * (zs_eff - zs), abs=1e-9)
    assert np.all(np.diff(cwv, axis=1) < 0) and np.all(np.diff(tair[:, 1:], axis=1) < 0)
