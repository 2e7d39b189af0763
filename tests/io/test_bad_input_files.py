"""Bad input files of the bad-input corpus at the reader's level: L1T projections that contradict the file's own
lattice or lack keys, impossible UTM zones, and truncated land-cover GeoTIFFs. Each gives one SceneFileError /
InputError naming the file, the key and what was expected (or, for a missing projection key, a warning and
the lattice); none gives a library traceback or a silently shifted grid."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import xarray as xr
from pyhdf.SD import SD, SDC

from akkd_scale.errors import InputError, SceneFileError
from akkd_scale.io.aster.metadata import Metadata
from akkd_scale.io.aster.scene import l1t_projection
from akkd_scale.io.categorical_map import open_map, sample_codes
from akkd_scale.simulate.l1b_writer import write_aster_l1b, write_aster_l1t

SHAPE = (31, 37)


def open_scene(path):
    return xr.open_dataset(path, engine="aster_l1b", chunks={})


def edit_attribute(path, name: str, edit) -> None:
    """Replace the text attribute ``name`` of an HDF file by ``edit(text)``."""
    sd = SD(str(path), SDC.WRITE)
    try:
        text = sd.attributes()[name]
        sd.attr(name).set(SDC.CHAR8, edit(text))
    finally:
        sd.end()


def set_object(text: str, name: str, value: str) -> str:
    """ODL text with the VALUE of OBJECT ``name`` replaced."""
    pattern = rf"(OBJECT\s*=\s*{name}\b.*?VALUE\s*=\s*)([^\n]*)"
    edited, count = re.subn(pattern, lambda m: m.group(1) + value, text, count=1, flags=re.S)
    assert count == 1, name
    return edited


def drop_block(text: str, kind: str, name: str) -> str:
    """ODL text without the OBJECT/GROUP ``name`` block."""
    edited, count = re.subn(rf"[ \t]*{kind}\s*=\s*{name}\b.*?END_{kind}\s*=\s*{name}\b[^\n]*\n", "", text, flags=re.S)
    assert count == 1, name
    return edited


@pytest.fixture
def l1t(tmp_path):
    """An L1T of zone 11 (36.5° N, 116.9° W) and the true latitude/longitude of its pixels."""
    path = write_aster_l1t(tmp_path / "AST_L1T_case.hdf", shape=SHAPE, center_lat=36.5, center_lon=-116.9)
    truth = open_scene(path)
    return path, truth["latitude"].values, truth["longitude"].values


def test_a_correct_l1t_records_its_checked_grid(l1t, caplog):
    path, _, _ = l1t
    with caplog.at_level(logging.WARNING, logger="akkd_scale"):
        ds = open_scene(path)
    assert not caplog.records
    assert re.fullmatch(r"UTM grid EPSG:32611 of productmetadata.t, within \d\.\d m of the file's Latitude/Longitude "
                        r"lattice", ds.attrs["geolocation"]), ds.attrs["geolocation"]
    assert ds.rio.crs.to_epsg() == 32611


def test_l1t_zone_contradicting_the_lattice_is_refused(l1t):
    path, _, _ = l1t
    edit_attribute(path, "productmetadata.t", lambda text: set_object(text, "UTMZONENUMBER", "33"))
    with pytest.raises(SceneFileError, match=r"AST_L1T_case.hdf: productmetadata.t: map projection EPSG:32633 "
                                             r"\(UTMZONENUMBER 33, UPPERLEFTM, LOWERRIGHTM\) puts lattice point .* at "
                                             r"3\d\.\d+°, 1\d\.\d+° but the file's Latitude/Longitude lattice at "
                                             r"3\d\.\d+°, -11\d\.\d+°: \d+ km apart \(expected agreement within 90 m"):
        open_scene(path)


@pytest.mark.parametrize("zone", ["0", "99", "-61", "11.5", '"eleven"'])
def test_impossible_utm_zone_is_refused_with_the_valid_range(l1t, zone):
    path, _, _ = l1t
    edit_attribute(path, "productmetadata.t", lambda text: set_object(text, "UTMZONENUMBER", zone))
    with pytest.raises(SceneFileError, match=r"AST_L1T_case.hdf: UTMZONENUMBER: zone .* in productmetadata.t is not "
                                             r"a UTM zone \(expected a whole number from 1 to 60"):
        open_scene(path)


@pytest.mark.parametrize("missing", ["UPPERLEFTM", "MAPPROJECTIONINFORMATION"])
def test_l1t_without_its_projection_falls_back_to_the_lattice_with_a_warning(l1t, missing, caplog):
    path, latitude, longitude = l1t
    kind = "GROUP" if missing == "MAPPROJECTIONINFORMATION" else "OBJECT"
    edit_attribute(path, "productmetadata.t", lambda text: drop_block(text, kind, missing))
    with caplog.at_level(logging.WARNING, logger="akkd_scale"):
        ds = open_scene(path)
    # the lattice gives the true pixel centres (not the VNIR grid's upper-left corner, 37.5 m away)
    np.testing.assert_allclose(ds["latitude"].values, latitude, atol=2e-7)
    np.testing.assert_allclose(ds["longitude"].values, longitude, atol=2e-7)
    keys = "UPPERLEFTM" if missing == "UPPERLEFTM" else "UTMZONENUMBER, UPPERLEFTM, LOWERRIGHTM"
    assert f"AST_L1T_case.hdf: L1T map projection incomplete (no {keys} for TIR): geolocated by its " \
           "Latitude/Longitude lattice" in caplog.text
    assert ds.attrs["geolocation"] == (f"Latitude/Longitude lattice: L1T map projection incomplete (no {keys} for "
                                       "TIR)")
    assert ds.rio.crs.to_epsg() == 4326 and len(ds.rio.get_gcps()) == 121


def test_l1t_without_projection_and_without_lattice_is_refused():
    meta = Metadata.from_attributes({"productmetadata.t": "END\n"}, "/data/AST_L1T_x.hdf")
    with pytest.raises(SceneFileError, match=r"AST_L1T_x.hdf: productmetadata.t: L1T map projection incomplete \(no "
                                             r"UTMZONENUMBER, UPPERLEFTM, LOWERRIGHTM for TIR\) and no Latitude/"
                                             r"Longitude lattice \(expected"):
        l1t_projection("/data/AST_L1T_x.hdf", meta, SHAPE, None, (0.0, 3.0), (0.0, 3.0))


def test_vnir_projection_is_not_taken_for_the_tir_grid(tmp_path):
    path = write_aster_l1t(tmp_path / "AST_L1T_vnir.hdf", shape=SHAPE)
    edit_attribute(path, "productmetadata.t", lambda text: drop_block(text, "GROUP", "MAPPROJECTIONINFORMATION"))
    ds = open_scene(path)
    assert ds.attrs["geolocation"].startswith("Latitude/Longitude lattice")
    assert "x" not in ds.coords  # no UTM grid built from the VNIR corners


def test_an_l1b_records_its_lattice(tmp_path):
    ds = open_scene(write_aster_l1b(tmp_path / "AST_L1B_x.hdf", shape=SHAPE))
    assert ds.attrs["geolocation"] == "Latitude/Longitude lattice"


# land-cover GeoTIFF reads ----------------------------------------------------------------------------------------

def _map_around(path, scene_path):
    import rioxarray  # noqa: F401

    ds = xr.open_dataset(scene_path, engine="aster_l1b")
    lat, lon = ds["latitude"].values, ds["longitude"].values
    cell, west, north = 0.0003, lon.min() - 0.002, lat.max() + 0.002
    ny, nx = int((north - lat.min() + 0.002) / cell) + 1, int((lon.max() + 0.002 - west) / cell) + 1
    codes = np.array([10, 20, 30, 40], np.uint8)[(np.arange(ny)[:, None] + np.arange(nx)[None]) % 4]
    xr.DataArray(codes, dims=("y", "x"), coords={"y": north - cell * (np.arange(ny) + 0.5),
                                                  "x": west + cell * (np.arange(nx) + 0.5)}
                 ).rio.write_crs("EPSG:4326").rio.to_raster(path)
    return ds


def test_truncated_land_cover_map_names_the_file_and_the_cause(tmp_path):
    ds = _map_around(tmp_path / "cover.tif", write_aster_l1b(tmp_path / "AST_L1B_lc.hdf", shape=SHAPE))
    good = open_map(tmp_path / "cover.tif", ds["latitude"], ds["longitude"])
    data = (tmp_path / "cover.tif").read_bytes()
    (tmp_path / "cover.tif").write_bytes(data[: len(data) // 3])
    message = (rf"{tmp_path / 'cover.tif'}: land cover map: cannot read map rows \d+–\d+, columns \d+–\d+ "
               r"\(.*TIFFReadEncodedStrip.*\); truncated or corrupt\? "
               r"\(expected a complete, readable land-cover GeoTIFF")
    with pytest.raises(InputError, match=message):
        open_map(tmp_path / "cover.tif", ds["latitude"], ds["longitude"])
    with pytest.raises(InputError, match=message):  # a task's window read (the map checked before it was cut)
        sample_codes(ds["latitude"].values, ds["longitude"].values, good.lcmap)


# found by the fuzz tests (tests/io/test_fuzz_metadata.py) ----------------------------------------------------------

def edit_key(path, attribute: str, key: str, value: str, occurrence: int = 0) -> None:
    """Replace the value of ``key`` (an ECS object's VALUE or a StructMetadata statement) in ``attribute``."""
    def edit(text):
        if attribute == "StructMetadata.0":
            spans = [m.span(1) for m in re.finditer(rf"\b{key}=([^\n]*)", text)]
        else:
            spans = [m.span(2) for m in re.finditer(rf"(?<![A-Z_])OBJECT\s*=\s*{key}\b.*?(VALUE\s*=\s*)([^\n]*)",
                                                      text, re.S)]
        start, end = spans[occurrence]
        return text[:start] + value + text[end:]
    edit_attribute(path, attribute, edit)


@pytest.mark.parametrize("key, value", [("Offset", "abc"), ("Offset", "(1, 2)"), ("Offset", "1e309"),
                                        ("Increment", "nan"), ("Increment", "-3"), ("Increment", "1e309"),
                                        ("Increment", "1e-300")])
def test_tir_dimension_map_that_is_not_a_lattice_is_refused(tmp_path, key, value):
    path = write_aster_l1b(tmp_path / "AST_L1B_map.hdf", shape=SHAPE)
    edit_key(path, "StructMetadata.0", key, value, occurrence=-1)  # the TIR swath's GeoXtrack → ImagePixel map
    with pytest.raises(SceneFileError, match=r"AST_L1B_map.hdf: DimensionMap: GeoXtrack → ImagePixel: "
                                             r"Offset .*, Increment .* put the 11 lattice points at ImagePixel .* of "
                                             r"0 … 36 \(expected finite numbers, Increment > 0"):
        open_scene(path).load()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_tir_offset_is_refused(tmp_path, value):
    path = write_aster_l1b(tmp_path / "AST_L1B_offset.hdf", shape=SHAPE)
    edit_key(path, "productmetadata.t", "OFFSET13", value)
    with pytest.raises(SceneFileError, match=rf"AST_L1B_offset.hdf: OFFSET: unit conversion offsets B13 {value} .*"
                                             r"\(expected a finite radiance offset for every TIR band"):
        open_scene(path)


@pytest.mark.parametrize("key, value, attribute", [("SOLARDIRECTION", "(135.0, inf)", "solar_elevation"),
                                                   ("SOLARDIRECTION", "(135.0, -95.0)", "solar_elevation"),
                                                   ("SCENEORIENTATIONANGLE", "1e309", "scene_orientation_angle"),
                                                   ("SCENECENTER", "(91.0, 10.0)", "scene_center_lat")])
def test_scene_geometry_out_of_range_is_left_out_with_a_warning(tmp_path, caplog, key, value, attribute):
    path = write_aster_l1b(tmp_path / "AST_L1B_sun.hdf", shape=SHAPE)
    edit_key(path, "productmetadata.0", key, value)
    with caplog.at_level(logging.WARNING, logger="akkd_scale"):
        ds = open_scene(path)
        ndvi = ds["ndvi"].values
    assert attribute not in ds.attrs and re.search(rf"AST_L1B_sun.hdf: {key} .* is outside ±[\d/]+ degrees: ignored",
                                                   caplog.text)
    if key == "SOLARDIRECTION":  # was 185° or a ValueError ("math domain error") from the NDVI
        assert np.isnan(float(ds["solar_zenith"])) and np.isnan(ndvi).all()


def test_time_of_day_with_a_non_decimal_digit(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_time.hdf", shape=SHAPE, acquisition_time="2004-07-15T18:30:05Z")
    edit_key(path, "coremetadata.0", "TIMEOFDAY", '"18:30:05.²Z"')  # "²".isdigit() but int("²") fails
    assert open_scene(path).attrs["acquisition_time"] == "2004-07-15T18:30:05Z"


def test_setting_time_without_zone_is_utc_not_local_time(monkeypatch):
    import time

    text = ('GROUP = POINTINGANGLES\n OBJECT = SENSORNAME\n CLASS = "3"\n VALUE = "TIR"\n END_OBJECT = SENSORNAME\n'
            ' OBJECT = SETTINGTIMEOFPOINTING\n CLASS = "3"\n VALUE = "2004-07-15T18:30:05"\n'
            ' END_OBJECT = SETTINGTIMEOFPOINTING\nEND_GROUP = POINTINGANGLES\nEND\n')
    from akkd_scale.io.aster.metadata import acquisition_time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert acquisition_time(Metadata.from_attributes({"productmetadata.0": text}, "x")) == "2004-07-15T18:30:05Z"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("key, value", [("LOWERRIGHTM", "(4039945.5, 508333.5)"), ("LOWERRIGHTM", "(4040000.0, 0.0)"),
                                        ("UTMZONENUMBER", "12")])
def test_l1t_vnir_grid_that_does_not_nest_gives_nan_ndvi_with_a_reason(tmp_path, caplog, key, value):
    path = write_aster_l1t(tmp_path / "AST_L1T_vnir.hdf", shape=(12, 14), center_lat=36.5, center_lon=-116.9)
    edit_key(path, "productmetadata.v", key, value)  # VNIR pixels of 0 m, negative, or in another zone
    with caplog.at_level(logging.WARNING, logger="akkd_scale"):
        ds = open_scene(path)
        assert np.isnan(ds["ndvi"].values).all()
    assert ds["ndvi"].attrs["comment"] == "VNIR grid (productmetadata.v) does not nest in the TIR grid: NDVI is NaN"
    assert "does not nest in the TIR grid" in caplog.text


@pytest.mark.parametrize("value", ["-0.8", "0", "nan"])
def test_unusable_vnir_coefficients_give_nan_ndvi_with_a_reason(tmp_path, value):
    path = write_aster_l1b(tmp_path / "AST_L1B_vnir.hdf", shape=SHAPE)
    edit_key(path, "productmetadata.v", "INCL2", value)
    ds = open_scene(path)
    assert np.isnan(ds["ndvi"].values).all() and "unusable" in ds["ndvi"].attrs["comment"]


@pytest.mark.parametrize("key, value, message", [
    ("INCL10", "2.0e34", r"INCL: unit conversion coefficients B10 2e\+34 .* within a factor 10 of the ASTER handbook"),
    ("INCL10", "1e-9", r"INCL: unit conversion coefficients B10 1e-09 .* within a factor 10 of the ASTER handbook"),
    ("OFFSET10", "-1e39", r"OFFSET: unit conversion offsets B10 -1e\+39 .* no larger than the full-scale radiance"),
])
def test_tir_calibration_far_from_the_handbook_is_refused(tmp_path, key, value, message):
    path = write_aster_l1b(tmp_path / "AST_L1B_gain.hdf", shape=SHAPE)  # radiance was inf (float32 overflow)
    edit_key(path, "productmetadata.t", key, value)
    with pytest.raises(SceneFileError, match=r"AST_L1B_gain.hdf: " + message):
        open_scene(path)
