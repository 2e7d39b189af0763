"""The reader on the real AST_L1B/L1T layout: calibration in productmetadata.t, L1T grid, optional keys,
SDS lookup without the ':' separator, VNIR NDVI, georeferencing, and a real granule's metadata."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from pyhdf.SD import SD, SDC
from pyproj import Transformer

from akkd_scale.errors import SceneFileError
from akkd_scale.io.aster.metadata import (
    Metadata,
    acquisition_time,
    map_projection,
    processing_level,
    short_name,
    unit_conversion,
)
from akkd_scale.io.aster.structure import dimension_maps, find_sds, lattice_map
from akkd_scale.io.hdf4 import SdsInfo
from akkd_scale.io.odl import parse_odl
from akkd_scale.simulate.l1b_writer import write_aster_l1b, write_aster_l1t

SHAPE = (20, 30)
DATA = Path(__file__).parent / "data"


def open_scene(path, **kwargs):
    return xr.open_dataset(path, engine="aster_l1b", chunks={}, **kwargs)


def set_text_attribute(path, name, text):
    sd = SD(str(path), SDC.WRITE)
    try:
        sd.attr(name).set(SDC.CHAR8, text)
    finally:
        sd.end()


def read_sds(path, name, swath):
    """Independent read through the HDF-EOS dimension names."""
    sd = SD(str(path), SDC.READ)
    try:
        for index in range(sd.info()[0]):
            sds = sd.select(index)
            if sds.info()[0] == name and sds.dim(0).info()[0].endswith(swath):
                return np.asarray(sds[:])
    finally:
        sd.end()
    raise AssertionError(name)


TIR_METADATA = """GROUP                  = PRODUCTSPECIFICMETADATATIR
  GROUPTYPE            = MASTERGROUP
{bands}END_GROUP              = PRODUCTSPECIFICMETADATATIR
END
"""
BAND = """  GROUP                  = TIRBAND{n}DATA
    GROUP                  = UNITCONVERSIONCOEFF{n}
      OBJECT                 = INCL{n}
        NUM_VAL              = 1
        VALUE                = {incl}
      END_OBJECT             = INCL{n}
      OBJECT                 = OFFSET{n}
        NUM_VAL              = 1
        VALUE                = {offset}
      END_OBJECT             = OFFSET{n}
      OBJECT                 = CONUNIT{n}
        NUM_VAL              = 1
        VALUE                = "W/m2/sr/um"
      END_OBJECT             = CONUNIT{n}
    END_GROUP              = UNITCONVERSIONCOEFF{n}
  END_GROUP              = TIRBAND{n}DATA
"""


def test_calibration_from_productmetadata_t_with_its_own_offset(tmp_path):
    dn = np.full((5,) + SHAPE, 2001, np.uint16)
    path = write_aster_l1b(tmp_path / "AST_L1B_cal.hdf", dn=dn, shape=SHAPE)
    incl = {"10": 7.5e-3, "11": 7.4e-3, "12": 7.2e-3, "13": 6.3e-3, "14": 5.8e-3}
    offset = {"10": -0.05, "11": -0.04, "12": -0.03, "13": -0.02, "14": -0.01}
    text = TIR_METADATA.format(bands="".join(BAND.format(n=n, incl=incl[n], offset=offset[n]) for n in incl))
    set_text_attribute(path, "productmetadata.t", text)
    ds = open_scene(path)
    expected = [incl[n] * 2001 + offset[n] for n in incl]
    np.testing.assert_allclose(ds.radiance.values[:, 5, 5], expected, rtol=1e-6)
    handbook = [2000 * u for u in (6.822e-3, 6.780e-3, 6.590e-3, 5.693e-3, 5.225e-3)]
    assert np.all(np.abs(np.array(expected) - handbook) > 1.0)
    assert ds.radiance.attrs["calibration"].startswith("productmetadata.t INCLnn/OFFSETnn (W/m2/sr/um)")


def test_missing_coefficients_fall_back_to_handbook_with_a_warning(tmp_path, caplog):
    path = write_aster_l1b(
        tmp_path / "AST_L1B_nocal.hdf", dn=np.full((5,) + SHAPE, 1001, np.uint16), shape=SHAPE, unit_conversion=False
    )
    with caplog.at_level(logging.WARNING):
        ds = open_scene(path)
    assert "no unit conversion coefficients (INCL) for TIR bands 10, 11, 12, 13, 14" in caplog.text
    assert ds.radiance.attrs["calibration"].startswith("ASTER handbook UCC")
    assert float(ds.radiance[3, 0, 0]) == pytest.approx(1000 * 5.693e-3, rel=1e-6)


def test_l1t_opens_with_utm_crs_pixel_size_and_geodetic_latitude(tmp_path):
    shape = (25, 33)
    path = write_aster_l1t(
        tmp_path / "AST_L1T_t.hdf", shape=shape, center_lat=-34.87, center_lon=138.68, pointing_angle=4.0
    )
    ds = open_scene(path)
    assert ds.attrs["processing_level"] == "1T" and ds.attrs["product"] == "AST_L1T"
    assert ds.rio.crs.to_epsg() == 32754
    assert ds.rio.resolution() == (90.0, -90.0)
    assert ds.x.attrs["units"] == "metre" and np.all(np.diff(ds.x.values) == 90.0)
    meta = parse_odl(read_text(path, "productmetadata.t"))
    (uln, ule), (lrn, lre) = meta.find("UPPERLEFTM").value, meta.find("LOWERRIGHTM").value
    assert uln < 0  # southern scene: the file's northings lack the false northing
    uln, lrn = uln + 10_000_000, lrn + 10_000_000
    assert (ds.x.values[0], ds.y.values[0], ds.x.values[-1], ds.y.values[-1]) == (ule, uln, lre, lrn)
    transform = ds.rio.transform()
    assert (transform.c, transform.f) == (ule - 45.0, uln + 45.0)
    # latitude/longitude of the UTM pixel centres, computed here independently with pyproj
    lon, lat = Transformer.from_crs(32754, 4326, always_xy=True).transform(ule + 90.0 * 7, uln - 90.0 * 11)
    assert float(ds.latitude[11, 7]) == pytest.approx(lat, abs=1e-9)
    assert float(ds.longitude[11, 7]) == pytest.approx(lon, abs=1e-9)
    # the L1T lattice is geodetic: no geocentric conversion (it would move latitude by ~0.19 deg here)
    stored = read_sds(path, "Latitude", "TIR_Swath")
    increment = (shape[0] // 10, shape[1] // 10)
    got = ds.latitude.values[:: increment[0], :: increment[1]][:11, :11]
    np.testing.assert_allclose(got, stored[: got.shape[0], : got.shape[1]], atol=1e-7)
    assert float(ds.view_zenith) > 4.0 and ds.brightness_temperature.notnull().all()


def test_l1t_graph_pickles_by_path(tmp_path):
    path = write_aster_l1t(tmp_path / "AST_L1T_pickle.hdf", shape=(14, 16))
    ds = open_scene(path)
    for name in ("latitude", "ndvi", "brightness_temperature"):
        clone = pickle.loads(pickle.dumps(ds[name].data))
        np.testing.assert_array_equal(clone.compute(), ds[name].values)


def read_text(path, name):
    sd = SD(str(path), SDC.READ)
    try:
        return sd.attributes()[name]
    finally:
        sd.end()


def test_l1b_spatial_ref_has_lattice_gcps(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_gcp.hdf", shape=SHAPE)
    ds = open_scene(path)
    assert ds.rio.crs.to_epsg() == 4326 and "spatial_ref" in ds.coords
    gcps = ds.rio.get_gcps()
    assert len(gcps) == 121
    lat_c = read_sds(path, "Latitude", "TIR_Swath")
    lon = read_sds(path, "Longitude", "TIR_Swath")
    point = gcps[2 * 11 + 3]  # lattice point (2, 3): line 2·2, pixel 3·3
    assert (point.row, point.col) == (4.5, 9.5)
    assert point.y == pytest.approx(math.degrees(math.atan(1.0067395 * math.tan(math.radians(lat_c[2, 3])))))
    assert point.x == pytest.approx(lon[2, 3])
    assert ds.brightness_temperature.encoding.get("grid_mapping") == "spatial_ref"


def test_no_sensorname_opens_with_warning_and_class_3(tmp_path, caplog):
    path = write_aster_l1b(tmp_path / "AST_L1B_nosensor.hdf", shape=SHAPE, pointing_angle=-6.0, sensor_names=False)
    with caplog.at_level(logging.WARNING):
        ds = open_scene(path)
    assert 'no SENSORNAME "TIR" in POINTINGANGLES: taking the POINTINGANGLE of CLASS "3"' in caplog.text
    assert ds.attrs["pointing_angle"] == -6.0
    assert float(ds.view_zenith) == pytest.approx(math.degrees(math.asin(7076 / 6371 * math.sin(math.radians(6)))))


def test_no_pointing_angles_gives_nan_view_zenith_and_a_reason(tmp_path, caplog):
    path = write_aster_l1b(tmp_path / "AST_L1B_nopointing.hdf", shape=SHAPE, pointing_angle=None)
    with caplog.at_level(logging.WARNING):
        ds = open_scene(path)
    assert "TIR pointing angle unavailable (no POINTINGANGLES group in the metadata)" in caplog.text
    assert np.isnan(float(ds.view_zenith))
    assert "NaN because the pointing angle is unavailable" in ds.view_zenith.attrs["comment"]


@pytest.mark.parametrize(
    "separator, vgroups, vnir", [(".", True, True), ("_", False, True), (None, True, False), (None, False, False)]
)
def test_band_lookup_with_other_dimension_separators(tmp_path, separator, vgroups, vnir):
    """Swath membership from Vgroups, a dimension name mentioning the swath, or the only SDS of the name.
    (Bare names shared by VNIR and TIR without Vgroups cannot be written: HDF4 dimensions of one name
    must have one size.)"""
    dn = np.arange(5 * SHAPE[0] * SHAPE[1], dtype=np.uint16).reshape((5,) + SHAPE) % 4000 + 1
    path = write_aster_l1b(
        tmp_path / "AST_L1B_sep.hdf",
        dn=dn,
        shape=SHAPE,
        dimension_separator=separator,
        vgroups=vgroups,
        include_vnir=vnir,
    )
    ds = open_scene(path)
    expected = (dn[2].astype(float) - 1) * 6.590e-3
    np.testing.assert_allclose(ds.radiance.sel(band="B12").values, expected, rtol=1e-6)
    assert float(ds.latitude.mean()) == pytest.approx(36.5, abs=0.05)


def test_sds_lookup_rules():
    """Vgroup membership decides; without Vgroups a dimension name naming the swath, then the shape."""
    vnir = SdsInfo(0, "ImageData2", (120, 180), 21, ("ImageLine", "ImagePixel"))
    tir_lat = SdsInfo(1, "Latitude", (11, 11), 6, ("GeoTrack", "GeoXtrack"))
    vnir_lat = SdsInfo(2, "Latitude", (11, 11), 6, ("GeoTrack", "GeoXtrack"))
    named = SdsInfo(3, "Latitude", (11, 11), 6, ("GeoTrack.TIR_Swath", "GeoXtrack.TIR_Swath"))
    table = [vnir, tir_lat, vnir_lat]
    assert find_sds(table, "Latitude", "TIR_Swath", {"TIR_Swath": {1}}, None, "f") is tir_lat
    assert find_sds(table + [named], "Latitude", "TIR_Swath", {}, None, "f") is named
    assert find_sds(table, "ImageData2", "VNIR_Swath", {}, (120, 180), "f") is vnir
    assert find_sds(table, "ImageData10", "TIR_Swath", {}, (20, 30), "f") is None
    with pytest.raises(
        SceneFileError, match="f: Latitude: 2 datasets called Latitude and nothing says which belongs to TIR_Swath"
    ):
        find_sds(table, "Latitude", "TIR_Swath", {}, None, "f")


def test_ndvi_equals_hand_computation(tmp_path):
    f = 6
    red = np.full((SHAPE[0] * f, SHAPE[1] * f), 40, np.uint8)
    nir = np.full_like(red, 100)
    nir[:f, :f] = np.arange(f * f, dtype=np.uint8).reshape(f, f) + 80  # one TIR pixel with varying VNIR
    red[f * 3 + 2, f * 4 + 5] = 0  # a fill VNIR pixel inside TIR pixel (3, 4)
    path = write_aster_l1b(
        tmp_path / "AST_L1B_ndvi.hdf",
        shape=SHAPE,
        vnir_dn={"2": red, "3N": nir},
        acquisition_time="2004-07-15T18:30:05Z",
        solar_direction=(135.0, 62.0),
    )
    ds = open_scene(path)
    ndvi = ds.ndvi.values
    # by hand: L = (DN - 1)·UCC (handbook INCL written by the fixture), rho = pi L d^2 / (ESUN cos sza)
    doy = 197
    d = 1 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))
    cos_sza = math.cos(math.radians(90 - 62.0))
    rho_red = math.pi * (red.astype(float) - 1) * 1.415 * d * d / (1549.0 * cos_sza)  # normal gain UCC
    rho_nir = math.pi * (nir.astype(float) - 1) * 0.862 * d * d / (1114.0 * cos_sza)
    mean_red = rho_red.reshape(SHAPE[0], f, SHAPE[1], f).mean(axis=(1, 3))
    mean_nir = rho_nir.reshape(SHAPE[0], f, SHAPE[1], f).mean(axis=(1, 3))
    expected = (mean_nir - mean_red) / (mean_nir + mean_red)
    expected[3, 4] = np.nan
    np.testing.assert_allclose(ndvi, expected, rtol=1e-5)
    assert np.isnan(ndvi[3, 4]) and np.isfinite(ndvi).sum() == SHAPE[0] * SHAPE[1] - 1
    np.testing.assert_allclose(ds.ndvi[5:9:2, ::7].values, expected[5:9:2, ::7], rtol=1e-5)
    assert float(ds.solar_zenith) == pytest.approx(28.0)
    assert ds.ndvi.dtype == np.float32 and ds.ndvi.chunks is not None


def test_vnir_fallback_coefficients_follow_the_gain(tmp_path, caplog):
    """Without INCL in productmetadata.v, the handbook UCC of the gain in GAININFORMATION (here HGH)."""
    path = write_aster_l1b(tmp_path / "AST_L1B_gain.hdf", shape=SHAPE, vnir_dn={"2": 40, "3N": 100}, vnir_gain="HGH")
    set_text_attribute(path, "productmetadata.v", "END\n")
    with caplog.at_level(logging.WARNING):
        ds = open_scene(path)
    assert "no unit conversion coefficients (INCL) for VNIR bands 2, 3N" in caplog.text
    red, nir = 39 * 0.708 / 1549.0, 99 * 0.423 / 1114.0  # pi d^2 / cos(sza) cancels in the ratio
    assert float(ds.ndvi[0, 0]) == pytest.approx((nir - red) / (nir + red), rel=1e-5)


def test_night_scene_without_vnir_has_nan_ndvi(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_night.hdf", shape=SHAPE, include_vnir=False, solar_direction=None)
    ds = open_scene(path)
    assert np.isnan(ds.ndvi.values).all() and "no VNIR_Swath" in ds.ndvi.attrs["comment"]
    assert np.isnan(float(ds.solar_zenith))


def test_l1t_ndvi_uses_the_vnir_grid(tmp_path):
    path = write_aster_l1t(tmp_path / "AST_L1T_ndvi.hdf", shape=(12, 14), vnir_dn={"2": 30, "3N": 90})
    ndvi = open_scene(path).ndvi.values
    assert np.isfinite(ndvi).all() and np.ptp(ndvi) < 1e-6
    assert "placed by their UPPERLEFTM (15.0 m VNIR pixels)" in open_scene(path).ndvi.attrs["comment"]


def test_real_l1t_granule_metadata():
    """ODL text of a real AST_L1T (2023-12-17) as published verbatim (tests/io/data/README.md)."""
    struct = parse_odl((DATA / "ast_l1t_20231217_StructMetadata.0.txt").read_text())
    swath = struct.find("SWATH_1", "GROUP")
    assert swath.attrs["SWATHNAME"] == "VNIR_Swath"
    maps = dimension_maps(swath)
    assert maps == {
        ("GeoTrack", "ImageLine"): (0.0, 485.0),
        ("GeoXtrack", "ImagePixel"): (0.0, 552.0),
        ("GeoTrack", "ImageLine3B"): (0.0, 485.0),
    }
    # the file's increments are floor(n/10), as the fallback assumes: 4855 // 10, 5521 // 10
    assert lattice_map({}, "GeoTrack", "ImageLine", 11, 4855) == (0.0, 485.0)
    assert lattice_map({}, "GeoXtrack", "ImagePixel", 11, 5521) == (0.0, 552.0)
    core_text = (DATA / "ast_l1t_20231217_coremetadata.0.txt").read_text()
    meta = Metadata.from_attributes({"coremetadata.0": core_text}, "real AST_L1T")
    assert acquisition_time(meta) == "2023-12-17T00:24:43.486000Z"
    assert processing_level(meta) == "1T" and short_name(meta) == "AST_L1T"
    assert meta.value("MAPPROJECTIONNAME") == "Universal Transverse Mercator"
    assert meta.value("SOUTHBOUNDINGCOORDINATE") == pytest.approx(-35.2064028921335)
    assert unit_conversion(meta, "13", "TIR") is None  # no productmetadata.t in the published excerpt


def test_unit_conversion_lookup_prefers_the_subsystem_attribute():
    generic = "OBJECT = INCL13\n VALUE = 1.0\nEND_OBJECT = INCL13\nEND\n"
    tir = TIR_METADATA.format(bands=BAND.format(n="13", incl=5.7e-3, offset=-0.02))
    meta = Metadata.from_attributes({"productmetadata.0": generic, "productmetadata.t": tir}, "x")
    assert unit_conversion(meta, "13", "TIR") == (5.7e-3, -0.02, "W/m2/sr/um", "productmetadata.t")
    only_generic = Metadata.from_attributes({"productmetadata.0": generic}, "x")
    assert unit_conversion(only_generic, "13", "TIR") == (1.0, -1.0, "", "productmetadata.0")


def l1t_meta(zone, upper_left, lower_right, north_bound):
    text = "".join(
        f"OBJECT = {k}\n VALUE = {v}\nEND_OBJECT = {k}\n"
        for k, v in (("UTMZONENUMBER", zone), ("UPPERLEFTM", upper_left), ("LOWERRIGHTM", lower_right))
    )
    core = f"OBJECT = NORTHBOUNDINGCOORDINATE\n VALUE = {north_bound}\nEND_OBJECT = NORTHBOUNDINGCOORDINATE\nEND\n"
    return Metadata.from_attributes({"productmetadata.t": text + "END\n", "coremetadata.0": core}, "x")


def test_map_projection_hemisphere_and_pixel_size():
    south = map_projection(l1t_meta(54, "(-3860002.0, 286502.0)", "(-3934162.0, 370382.0)", -34.5), "TIR")
    assert south.epsg == 32754 and south.upper_left == (286502.0, 6139998.0)
    # 825 x 933 pixels: corners read as centres (n - 1 steps) or as an n-pixel extent both give 90 m
    assert south.pixel_size((825, 933)) == (90.0, 90.0)
    extent = map_projection(l1t_meta(54, "(-3860002.0, 286502.0)", "(-3934252.0, 370472.0)", -34.5), "TIR")
    assert extent.pixel_size((825, 933)) == (90.0, 90.0)
    straddling = map_projection(l1t_meta(36, "(30000.0, 500000.0)", "(-44160.0, 583880.0)", 0.27), "TIR")
    assert straddling.epsg == 32636 and straddling.upper_left == (500000.0, 30000.0)
    with pytest.raises(SceneFileError, match="map projection incomplete"):
        map_projection(Metadata.from_attributes({"productmetadata.t": "END\n"}, "x"), "TIR")
