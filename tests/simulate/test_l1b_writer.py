"""The synthetic L1B writer produces what real AST_L1B files contain (checked with pyhdf directly)."""

from __future__ import annotations

import numpy as np
import pytest
from pyhdf.SD import SD, SDC

from akkd_scale.errors import ParameterError
from akkd_scale.io.hdf4 import swath_members
from akkd_scale.io.odl import parse_odl
from akkd_scale.simulate.l1b_writer import geodetic_to_geocentric, radiance_to_dn, write_aster_l1b, write_aster_l1t

SHAPE = (20, 30)


def contents(path):
    sd = SD(str(path), SDC.READ)
    try:
        table = {}
        for index in range(sd.info()[0]):
            sds = sd.select(index)
            name, rank, dims, type_code, _ = sds.info()
            dim_names = tuple(sds.dim(k).info()[0] for k in range(rank))
            table[(name, dim_names[0].split(":")[-1])] = (np.asarray(sds[:]), dim_names, type_code)
        return table, sd.attributes()
    finally:
        sd.end()


def test_dn_encoding():
    ucc = 5.693e-3
    radiance = np.array([0.0, ucc * 10.4, ucc * 10.6, 1e3, np.nan])
    np.testing.assert_array_equal(radiance_to_dn(radiance, ucc), [1, 11, 12, 4094, 0])


def test_structure_and_values(tmp_path):
    fill = np.zeros(SHAPE, bool)
    fill[0, 0] = True
    path = write_aster_l1b(
        tmp_path / "AST_L1B_x.hdf",
        radiance=np.full((5,) + SHAPE, 9.0),
        shape=SHAPE,
        fill_mask=fill,
        pointing_angle=-8.55,
        center_lat=60.0,
    )
    table, attrs = contents(path)
    for band, ucc in zip(range(10, 15), [6.822e-3, 6.780e-3, 6.590e-3, 5.693e-3, 5.225e-3]):
        data, dims, type_code = table[(f"ImageData{band}", "TIR_Swath")]
        assert data.shape == SHAPE and type_code == SDC.UINT16
        assert dims == ("ImageLine:TIR_Swath", "ImagePixel:TIR_Swath")
        assert data[0, 0] == 0 and data[1, 1] == round(9.0 / ucc) + 1
    lat, dims, _ = table[("Latitude", "TIR_Swath")]
    assert lat.shape == (11, 11) and dims == ("GeoTrack:TIR_Swath", "GeoXtrack:TIR_Swath")
    geodetic = np.degrees(np.arctan(1.0067395 * np.tan(np.radians(lat))))
    assert abs(geodetic.mean() - 60.0) < 0.05 and abs(lat.mean() - 60.0) > 0.1  # stored geocentric
    assert ("Latitude", "VNIR_Swath") in table
    struct = parse_odl(attrs["StructMetadata.0"])
    tir = [n for n in struct.walk() if n.attrs.get("SWATHNAME") == "TIR_Swath"][0]
    sizes = {n.attrs["DIMENSIONNAME"]: n.attrs["SIZE"] for n in tir.walk() if "DIMENSIONNAME" in n.attrs}
    assert sizes == {"ImageLine": 20, "ImagePixel": 30, "GeoTrack": 11, "GeoXtrack": 11}
    fields = {n.attrs["DATAFIELDNAME"] for n in tir.walk() if "DATAFIELDNAME" in n.attrs}
    assert fields == {f"ImageData{b}" for b in range(10, 15)}
    product = parse_odl(attrs["productmetadata.0"])
    sensors = [n.value for n in product.walk() if n.name == "SENSORNAME"]
    angles = [n.value for n in product.walk() if n.name == "POINTINGANGLE"]
    assert angles[sensors.index("TIR")] == -8.55
    core = parse_odl(attrs["coremetadata.0"])
    assert core.find("SHORTNAME").value == "ASTL1B" and core.find("CALENDARDATE").value == "2004-07-15"
    assert core.find("TIMEOFDAY").value == "18:30:05.250000Z"
    assert product.find("ASTERGENERICMETADATA", "GROUP") is not None
    tir_meta = parse_odl(attrs["productmetadata.t"])
    coeff = tir_meta.find("TIRBAND13DATA", "GROUP").find("UNITCONVERSIONCOEFF13", "GROUP")
    assert coeff.find("INCL13").value == 5.693e-3 and coeff.find("OFFSET13").value == -5.693e-3
    vnir, _, _ = table[("ImageData3N", "VNIR_Swath")]
    assert vnir.shape == (6 * SHAPE[0], 6 * SHAPE[1]) and vnir.dtype == np.uint8
    assert swath_members(path)["TIR_Swath"] == {i for i, (name, swath) in enumerate(table) if swath == "TIR_Swath"}


def test_l1t_layout(tmp_path):
    path = write_aster_l1t(
        tmp_path / "AST_L1T_x.hdf",
        shape=(25, 33),
        center_lat=-34.9,
        center_lon=138.7,
        acquisition_time="2023-12-17T00:24:43.486Z",
    )
    _, attrs = contents(path)
    core = parse_odl(attrs["coremetadata.0"])
    assert core.find("SHORTNAME").value == "AST_L1T" and core.find("PROCESSINGLEVELID").value == "1T"
    assert (core.find("CALENDARDATE").value, core.find("TIMEOFDAY").value) == ("20231217", "002443486000Z")
    tir = parse_odl(attrs["productmetadata.t"])
    (uln, ule), (lrn, lre) = tir.find("UPPERLEFTM").value, tir.find("LOWERRIGHTM").value
    assert tir.find("UTMZONENUMBER").value == 54  # 138.7 E
    # southern scene: northings without the 10 000 km false northing, as LP DAAC's ASTERL1T_hdf2tif expects
    assert (lre - ule, uln - lrn) == (32 * 90.0, 24 * 90.0) and -3_900_000 < uln < -3_800_000


def test_geocentric_round_trip():
    lat = np.array([-89.0, -45.0, 0.0, 36.5, 80.0])
    back = np.degrees(np.arctan(1.0067395 * np.tan(np.radians(geodetic_to_geocentric(lat)))))
    np.testing.assert_allclose(back, lat, atol=1e-12)


def test_rejects_conflicting_inputs(tmp_path):
    with pytest.raises(ParameterError, match="more than one of brightness_temperature, radiance, dn given"):
        write_aster_l1b(tmp_path / "a.hdf", shape=SHAPE, radiance=np.ones((5,) + SHAPE), brightness_temperature=300.0)
    with pytest.raises(ParameterError, match=r"bands: unknown bands \['B9'\]"):
        write_aster_l1b(tmp_path / "a.hdf", shape=SHAPE, bands=("B9",))


def test_brightness_temperature_summary(tmp_path):
    from akkd_scale.io import open_aster_l1b
    from akkd_scale.io.summary import brightness_temperature_summary

    ny, nx = 70, 83
    margin = np.zeros((ny, nx), bool)
    margin[:, :5] = True
    path = write_aster_l1b(tmp_path / "AST_L1B_demo.hdf", shape=(ny, nx), fill_mask=margin)
    lines = brightness_temperature_summary(open_aster_l1b(path)).splitlines()
    rows = [line.split() for line in lines[3:]]
    assert [r[0] for r in rows] == ["B10", "B11", "B12", "B13", "B14"]
    for row in rows:
        low, mean, high, valid = float(row[2]), float(row[3]), float(row[4]), int(row[5])
        assert 270 < low < mean < high < 330 and valid == ny * (nx - 5)
