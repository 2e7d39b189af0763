"""Land cover at retrieval time: user maps (WorldCover, IGBP) sampled at the pixels, NDVI/BT rules, night
scenes, the QC bit and attributes, the CLI option and the errors. Expected classes are computed here by
hand from the map geometry, independently of akkd_scale.pipeline.landcover_plan."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from pipeline_checks import reference

from akkd_scale.conventions import QC_BITS, QC_LAND_COVER_RULES, QC_NO_LAND_COVER
from akkd_scale.errors import InputError
from akkd_scale.models.bundle import default_bundle_path
from akkd_scale.pipeline.graph import retrieve

SHAPE = (12, 14)
CHUNKS = {"y": 6, "x": 7}
#: Hand-written legend tables (the documented mapping), independent of akkd_scale.landcover.legends.
WORLDCOVER_CLASS = {10: 2, 20: 4, 30: 4, 40: 3, 50: 7, 60: 6, 70: 1, 80: 0, 90: 4, 95: 2, 100: 5}
IGBP_CLASS = {
    1: 2,
    2: 2,
    3: 2,
    4: 2,
    5: 2,
    6: 4,
    7: 5,
    8: 2,
    9: 4,
    10: 4,
    11: 4,
    12: 3,
    13: 7,
    14: 3,
    15: 1,
    16: 6,
    17: 0,
    255: -1,
}
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"


@pytest.fixture(scope="module")
def day_scene(tmp_path_factory):
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    root = tmp_path_factory.mktemp("lc_scenes")
    rng = np.random.default_rng(3)
    bt = 295.0 + rng.normal(0, 2, (5,) + SHAPE) + np.array([-6.0, -5, -4, 0, -0.5])[:, None, None]
    return write_aster_l1b(
        root / "AST_L1T_day.hdf",
        brightness_temperature=bt,
        shape=SHAPE,
        processing_level="1T",
        vnir_dn={"2": rng.integers(20, 90, (SHAPE[0] * 6, SHAPE[1] * 6)).astype(np.uint8)},
    )


@pytest.fixture(scope="module")
def night_scene(tmp_path_factory):
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    return write_aster_l1b(
        tmp_path_factory.mktemp("lc_night") / "AST_L1T_night.hdf",
        shape=SHAPE,
        processing_level="1T",
        include_vnir=False,
    )


def _open(path):
    return xr.open_dataset(path, engine="aster_l1b", chunks=CHUNKS)


def _geo(path):
    ds = xr.open_dataset(path, engine="aster_l1b")
    return ds["latitude"].values, ds["longitude"].values


def _write_map(path, codes, x_edges_start, y_edges_start, cell, crs, nodata=None, tags=None):
    """A north-up GeoTIFF whose cell (r, c) spans x0 + c·cell … and y0 − r·cell …, written by rioxarray."""
    import rioxarray  # noqa: F401

    ny, nx = codes.shape
    grid = xr.DataArray(
        codes,
        dims=("y", "x"),
        coords={"y": y_edges_start - cell * (np.arange(ny) + 0.5), "x": x_edges_start + cell * (np.arange(nx) + 0.5)},
    )
    grid = grid.rio.write_crs(crs)
    if nodata is not None:
        grid = grid.rio.write_nodata(nodata)
    grid.attrs.update(tags or {})
    grid.rio.to_raster(path)
    return path


def _worldcover_map(path, day_scene, columns=None):
    """WorldCover codes on a 0.0003° grid (≈ 30 m, several cells per 90 m pixel) around the scene; with
    ``columns`` only that many map columns (the west part of the scene)."""
    lat, lon = _geo(day_scene)
    cell, west, north = 0.0003, lon.min() - 0.002, lat.max() + 0.002
    ny, nx = int((north - lat.min() + 0.002) / cell) + 1, columns or int((lon.max() + 0.002 - west) / cell) + 1
    legend = np.array(sorted(WORLDCOVER_CLASS), np.uint8)
    codes = legend[(np.arange(ny)[:, None] * 7 + np.arange(nx)[None] * 3) % legend.size]
    _write_map(path, codes, west, north, cell, "EPSG:4326")
    return codes, west, north, cell


def test_worldcover_map_sampled_at_each_pixel(day_scene, tmp_path):
    codes, west, north, cell = _worldcover_map(tmp_path / "cover.tif", day_scene)
    result = retrieve(_open(day_scene), landcover=tmp_path / "cover.tif", landcover_legend="worldcover")
    assert result["land_cover"].chunks == ((6, 6), (7, 7))
    out = result.compute()
    lat, lon = _geo(day_scene)
    rows, cols = np.floor((north - lat) / cell).astype(int), np.floor((lon - west) / cell).astype(int)
    expected = np.vectorize(WORLDCOVER_CLASS.get)(codes[rows, cols])
    np.testing.assert_array_equal(out["land_cover"].values, expected)
    assert out["land_cover"].dtype == np.int8
    assert out.attrs["land_cover_source"].startswith(f"map: {tmp_path / 'cover.tif'} (worldcover)")
    assert not np.any(out["qc"].values & QC_LAND_COVER_RULES)


def test_igbp_map_in_modis_sinusoidal_with_legend_detected(day_scene, tmp_path):
    from pyproj import Transformer

    lat, lon = _geo(day_scene)
    x, y = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL, always_xy=True).transform(lon, lat)
    cell, west, north = 231.656358, x.min() - 500.0, y.max() + 500.0
    ny, nx = int((north - y.min() + 500) / cell) + 1, int((x.max() + 500 - west) / cell) + 1
    codes = (np.arange(ny)[:, None] * 5 + np.arange(nx)[None] * 2) % 17 + 1
    codes[0, 0] = 255
    _write_map(tmp_path / "modis.tif", codes.astype(np.uint8), west, north, cell, MODIS_SINUSOIDAL)
    out = retrieve(_open(day_scene).drop_vars("ndvi"), landcover=tmp_path / "modis.tif").compute()
    rows, cols = np.floor((north - y) / cell).astype(int), np.floor((x - west) / cell).astype(int)
    np.testing.assert_array_equal(out["land_cover"].values, np.vectorize(IGBP_CLASS.get)(codes[rows, cols]))
    assert len(np.unique(out["land_cover"].values)) >= 4
    assert out.attrs["land_cover_source"] == f"map: {tmp_path / 'modis.tif'} (igbp)"


def _rules_by_hand(ds):
    ndvi = ds["ndvi"].values
    bt = ds["brightness_temperature"].values
    b10, b13, b14 = bt[0], bt[3], bt[4]
    contrast = b14 - b10
    out = np.full(ndvi.shape, 5)
    out[contrast > 4] = 6
    out[ndvi > 0.3] = 4
    out[ndvi > 0.6] = 2
    out[(ndvi < 0) & (np.abs(contrast) < 6.5)] = 0
    out[(ndvi < 0.1) & (b13 < 275)] = 1
    out[~np.isfinite(ndvi + b10 + b13 + b14)] = -1
    return out


def test_rules_without_a_map_and_the_qc_bit(day_scene):
    ds = _open(day_scene)
    assert retrieve(ds, landcover="none").attrs["land_cover_source"].startswith("none: not requested")
    assert retrieve(ds).attrs["land_cover_source"] == "ndvi_bt_rules"  # the rules by default
    out = retrieve(ds, landcover="rules").compute()
    expected = _rules_by_hand(ds.compute())
    assert len(np.unique(expected)) >= 2  # the fixture's NDVI spans several rule classes
    np.testing.assert_array_equal(out["land_cover"].values, expected)
    assert out.attrs["land_cover_source"] == "ndvi_bt_rules" == out["land_cover"].attrs["source"]
    assert np.all((out["qc"].values & QC_LAND_COVER_RULES) == np.where(expected >= 0, 16, 0))
    assert out["qc"].dtype == np.uint8
    assert list(out["qc"].attrs["flag_masks"])[:6] == [1, 2, 4, 8, 16, 32]
    assert list(out["qc"].attrs["flag_masks"]) == list(QC_BITS.values())
    assert out["qc"].attrs["flag_meanings"].split()[4:6] == ["land_cover_from_rules", "brightness_temperature_strata"]
    assert out["land_cover"].attrs["flag_values"] == list(range(-1, 8))
    assert out["land_cover"].attrs["flag_meanings"].split()[:3] == ["unknown", "water", "snow_ice"]


def test_map_gaps_fall_back_to_rules_and_classes_choose_the_students(day_scene, tmp_path):
    codes, west, north, cell = _worldcover_map(tmp_path / "west.tif", day_scene, columns=12)
    ds = _open(day_scene)
    mapped = retrieve(ds, landcover=tmp_path / "west.tif", landcover_legend="worldcover").compute()
    plain = retrieve(ds.drop_vars("ndvi")).compute()  # no map, no NDVI: brightness-temperature strata
    lat, lon = _geo(day_scene)
    on_map = np.floor((lon - west) / cell) < 12
    assert on_map.any() and (~on_map).any()
    rows, cols = np.floor((north - lat) / cell).astype(int), np.floor((lon - west) / cell).astype(int)
    expected = np.where(
        on_map, np.vectorize(WORLDCOVER_CLASS.get)(codes[rows, np.minimum(cols, 11)]), _rules_by_hand(ds.compute())
    )
    np.testing.assert_array_equal(mapped["land_cover"].values, expected)
    assert np.all((mapped["qc"].values & QC_LAND_COVER_RULES) == np.where(on_map, 0, 16))
    assert mapped.attrs["land_cover_source"].endswith("; ndvi_bt_rules where the map gives no class")
    by_hand = reference(day_scene, default_bundle_path(), land_cover=expected, from_rules=~on_map)
    for name in ("lst", "emissivity", "lst_uncertainty"):
        np.testing.assert_array_equal(mapped[name].values, by_hand[name], err_msg=name)
    np.testing.assert_array_equal(
        mapped["qc"].values & ~np.uint8(QC_LAND_COVER_RULES), by_hand["qc"] & ~np.uint8(QC_LAND_COVER_RULES)
    )
    assert np.all(plain["land_cover"].values == -1)


def test_night_scene_keeps_todays_behaviour(night_scene):
    out = _open(night_scene).akkd.retrieve(landcover="rules").compute()
    assert np.all(out["land_cover"].values == -1) and out["land_cover"].dtype == np.int8
    assert out.attrs["land_cover_source"] == "none: no map and no NDVI (night scene)"
    assert not np.any(out["qc"].values & QC_LAND_COVER_RULES)
    valid = np.isfinite(out["lst"].values)  # the shipped bundle has class students: BT strata answer instead
    assert valid.any() and np.all((out["qc"].values[valid] & QC_NO_LAND_COVER) > 0)


def test_errors_name_the_file_and_what_was_expected(day_scene, tmp_path):
    ds = _open(day_scene)
    missing = tmp_path / "missing.tif"
    message = f"{missing}: land cover map: no such file (expected a land-cover GeoTIFF)"
    with pytest.raises(InputError, match=re.escape(message)):
        retrieve(ds, landcover=missing)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster\n")
    with pytest.raises(InputError, match=re.escape(f"{text}: land cover map: cannot be read as a raster")):
        retrieve(ds, landcover=text)
    _write_map(tmp_path / "far.tif", np.full((4, 4), 10, np.uint8), 100.0, -30.0, 0.01, "EPSG:4326")
    with pytest.raises(InputError, match=r"far\.tif: land cover map: does not cover the scene"):
        retrieve(ds, landcover=tmp_path / "far.tif")
    lat, lon = _geo(day_scene)
    bad = np.full((40, 40), 30, np.uint8)
    bad[::2] = 33
    _write_map(tmp_path / "bad.tif", bad, lon.min() - 0.01, lat.max() + 0.01, 0.002, "EPSG:4326")
    with pytest.raises(InputError, match=r"bad\.tif: land cover: codes \[33\] are not in the worldcover legend"):
        retrieve(ds, landcover=tmp_path / "bad.tif", landcover_legend="worldcover")
    with pytest.raises(InputError, match=r"codes \[30, 33\] under the scene fit no known legend"):
        retrieve(ds, landcover=tmp_path / "bad.tif")
    _write_map(
        tmp_path / "tens.tif", np.full((40, 40), 10, np.uint8), lon.min() - 0.01, lat.max() + 0.01, 0.002, "EPSG:4326"
    )
    with pytest.raises(InputError, match=r"codes \[10\] under the scene fit both .*--landcover-legend"):
        retrieve(ds, landcover=tmp_path / "tens.tif")
    assert set(np.unique(retrieve(ds, landcover=tmp_path / "tens.tif", landcover_legend="igbp")["land_cover"])) == {4}
    _write_map(
        tmp_path / "empty.tif",
        np.zeros((40, 40), np.uint8),
        lon.min() - 0.01,
        lat.max() + 0.01,
        0.002,
        "EPSG:4326",
        nodata=0,
    )
    with pytest.raises(InputError, match=r"empty\.tif: land cover map: only no-data cells under the scene"):
        retrieve(ds, landcover=tmp_path / "empty.tif")
    _write_map(
        tmp_path / "ESA_WorldCover_10m_2021_v200_tile.tif",
        np.full((40, 40), 10, np.uint8),
        lon.min() - 0.01,
        lat.max() + 0.01,
        0.002,
        "EPSG:4326",
    )
    named = retrieve(ds, landcover=tmp_path / "ESA_WorldCover_10m_2021_v200_tile.tif")
    assert set(np.unique(named["land_cover"])) == {2} and "(worldcover)" in named.attrs["land_cover_source"]


def test_cli_landcover_option(day_scene, tmp_path):
    import rasterio

    from akkd_scale.cli import main
    from akkd_scale.pipeline.export import export_store
    from akkd_scale.pipeline.store import open_scene

    codes, west, north, cell = _worldcover_map(tmp_path / "cover.tif", day_scene)
    store = tmp_path / "out.zarr"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(day_scene),
            "--out",
            str(store),
            "--executor",
            "threads",
            "--landcover",
            str(tmp_path / "cover.tif"),
            "--landcover-legend",
            "worldcover",
        ],
    )
    assert result.exit_code == 0, result.output
    out = open_scene(store, "AST_L1T_day").compute()
    lat, lon = _geo(day_scene)
    rows, cols = np.floor((north - lat) / cell).astype(int), np.floor((lon - west) / cell).astype(int)
    np.testing.assert_array_equal(out["land_cover"].values, np.vectorize(WORLDCOVER_CLASS.get)(codes[rows, cols]))
    assert out.attrs["land_cover_source"].startswith(f"map: {tmp_path / 'cover.tif'} (worldcover)")
    assert out.attrs["akkd_record"]["land_cover_map"].endswith("(worldcover)")
    (tif,) = export_store(store, tmp_path / "tifs", variables=["land_cover"], crs="utm", fmt="geotiff")
    with rasterio.open(tif) as src:  # an L1T scene exported to its own UTM grid: no resampling
        np.testing.assert_array_equal(src.read(1), out["land_cover"].values)
        assert src.nodata == -1 and src.tags()["flag_values"] == "-1 0 1 2 3 4 5 6 7"
    usage = CliRunner().invoke(
        main, ["run", str(day_scene), "--out", str(tmp_path / "o2.zarr"), "--landcover-legend", "igbp"]
    )
    assert usage.exit_code == 2 and "--landcover-legend" in usage.output and "needs --landcover" in usage.output


def test_run_scenes_on_a_cluster_samples_the_map_and_records_it(day_scene, tmp_path, client):
    from akkd_scale.pipeline import run_scenes
    from akkd_scale.pipeline.store import open_scene

    codes, west, north, cell = _worldcover_map(tmp_path / "cover.tif", day_scene)
    out = tmp_path / "results.zarr"
    table = run_scenes([day_scene], out, chunks=7, client=client, landcover=tmp_path / "cover.tif")
    assert list(table["status"]) == ["complete"], table["error"].tolist()
    lat, lon = _geo(day_scene)
    rows, cols = np.floor((north - lat) / cell).astype(int), np.floor((lon - west) / cell).astype(int)
    np.testing.assert_array_equal(
        open_scene(out, "AST_L1T_day")["land_cover"].values, np.vectorize(WORLDCOVER_CLASS.get)(codes[rows, cols])
    )
    again = run_scenes([day_scene], out, chunks=7, client=client, landcover=tmp_path / "cover.tif")
    assert list(again["status"]) == ["skipped"]
    without = run_scenes([day_scene], out, chunks=7, client=client, landcover="rules")  # record names the map
    assert list(without["status"]) == ["complete"]
    assert open_scene(out, "AST_L1T_day").attrs["land_cover_source"] == "ndvi_bt_rules"
