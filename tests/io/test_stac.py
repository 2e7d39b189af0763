"""STAC items of COGs read as scenes: the same dataset as the HDF reader, lazily by range reads over HTTP, and
bad items, assets and servers as one clear error naming the URL."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import xarray as xr
from servers import TILE, Fault, write_l1t_pair

from akkd_scale.errors import InputError, SceneFileError
from akkd_scale.io.aster.stac import is_stac_item, open_aster_stac, read_stac_scene, tile_chunks
from akkd_scale.io.remote import Remote, gdal_options, parse_storage_options, redact
from akkd_scale.simulate.stac_writer import write_cog

#: What may differ between the two readers: where values came from, the input's name, and the L1B-only
#: SCENEORIENTATIONANGLE (STAC items of L1T scenes have no orientation: the grid is north-up) and the HDF's
#: geolocation check against its lattice (a STAC item has no lattice).
SOURCE_ATTRS = {"calibration", "comment", "source_file", "scene_orientation_angle", "geolocation"}


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    """Every variable and coordinate bit-identical (NaN where NaN), attributes equal but for where they came from."""
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        x, y = a[name].values, b[name].values
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
        assert {k: v for k, v in a[name].attrs.items() if k not in SOURCE_ATTRS} == {
            k: v for k, v in b[name].attrs.items() if k not in SOURCE_ATTRS
        }, name
    assert {k: v for k, v in a.attrs.items() if k not in SOURCE_ATTRS} == {
        k: v for k, v in b.attrs.items() if k not in SOURCE_ATTRS
    }


def test_cog_scene_is_the_hdf_scene_bit_for_bit(l1t_pair):
    hdf = xr.open_dataset(l1t_pair.hdf, engine="aster_l1b")
    cog = open_aster_stac(l1t_pair.item)
    _same(hdf, cog)
    assert np.isfinite(cog["ndvi"].values).all() and cog["view_zenith"] > 0
    assert cog["radiance"].attrs["calibration"] == "raster:bands scale/offset of the STAC item's TIR asset (W/m2/sr/um)"
    assert "view:off_nadir" in cog["view_zenith"].attrs["comment"]
    assert cog.rio.crs == hdf.rio.crs and cog.rio.transform() == hdf.rio.transform()


def test_over_http_the_scene_opens_lazily_and_reads_tile_ranges(l1t_pair, http_server):
    http_server.log.clear()
    ds = open_aster_stac(l1t_pair.item_url)
    tif = l1t_pair.item.parent / f"{l1t_pair.item.stem}-TIR.tif"
    opened = sum(r[3] for r in http_server.log.for_path("-TIR.tif"))
    assert 0 < opened < tif.stat().st_size / 2  # the header, not the image
    assert ds["brightness_temperature"].chunks[1:] == ((TILE, TILE, 72 - 2 * TILE), (TILE, TILE, 83 - 2 * TILE))
    _same(xr.open_dataset(l1t_pair.hdf, engine="aster_l1b"), ds.compute())
    gets = [r for r in http_server.log.requests if r[0] == "GET" and r[1].endswith(".tif")]
    assert gets and all(r[4] == 206 for r in gets)  # only range requests, each answered with its range


def test_chunks_are_rounded_up_to_whole_tiles(l1t_pair):
    stac = read_stac_scene(l1t_pair.item)
    assert stac.tiles == (TILE, TILE)
    assert tile_chunks(stac, {"y": 72, "x": 42}) == {"y": 72, "x": 64}
    assert tile_chunks(stac, {"y": 10, "x": 100}) == {"y": 32, "x": 83}


def test_without_item_coefficients_the_handbook_is_used_and_recorded(tmp_path, l1t_pair):
    hdf, item = write_l1t_pair(tmp_path, "AST_L1T_handbook", seed=2, raster_scale=False)
    ds = open_aster_stac(item)
    assert ds["radiance"].attrs["calibration"].startswith("ASTER handbook UCC, L = (DN - 1) * UCC")
    _same(xr.open_dataset(hdf, engine="aster_l1b"), ds)  # the synthetic HDF carries the handbook UCC as INCL


def test_a_night_item_without_vnir_has_nan_ndvi(tmp_path):
    _, item = write_l1t_pair(tmp_path, "AST_L1T_night", seed=3, vnir=False)
    ds = open_aster_stac(item)
    assert np.isnan(ds["ndvi"].values).all()
    assert ds["ndvi"].attrs["comment"].startswith("no VNIR asset") and ds["ndvi"].attrs["vnir_available"] == 0


def _edited_item(pair, tmp_path, edit) -> str:
    """A copy of the pair's STAC folder with the item JSON edited by ``edit(dict)``."""
    folder = tmp_path / "edited"
    shutil.copytree(pair.item.parent, folder)
    path = folder / pair.item.name
    item = json.loads(path.read_text())
    edit(item, folder)
    path.write_text(json.dumps(item))
    return str(path)


def _without_tir(item, folder):
    del item["assets"]["TIR"]


def _four_bands(item, folder):
    write_cog(
        folder / "four.tif",
        np.ones((4, 72, 83), np.uint16),
        item["assets"]["TIR"]["proj:transform"],
        item["properties"]["proj:epsg"],
        blocksize=TILE,
    )
    item["assets"]["TIR"]["href"] = "four.tif"


def _float_dn(item, folder):
    write_cog(
        folder / "float.tif",
        np.ones((5, 72, 83), np.float32),
        item["assets"]["TIR"]["proj:transform"],
        item["properties"]["proj:epsg"],
        blocksize=TILE,
    )
    item["assets"]["TIR"]["href"] = "float.tif"


def _moved_grid(item, folder):
    item["assets"]["TIR"]["proj:transform"][2] += 900.0


@pytest.mark.parametrize(
    "edit, problem",
    [
        (_without_tir, "no TIR asset (assets: VNIR, xml)"),
        (_four_bands, "4 band(s) of uint16"),
        (_float_dn, "5 band(s) of float32"),
        (_moved_grid, "item proj:transform"),
    ],
)
def test_bad_items_and_assets_are_one_clear_error(l1t_pair, tmp_path, edit, problem):
    location = _edited_item(l1t_pair, tmp_path, edit)
    with pytest.raises(SceneFileError) as error:
        read_stac_scene(location)
    assert error.value.problem.startswith(problem)
    assert "expected" in str(error.value) and "\n" not in str(error.value)


def test_not_an_item(tmp_path):
    path = tmp_path / "item.json"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(SceneFileError, match="not a STAC item"):
        read_stac_scene(path)
    with pytest.raises(SceneFileError, match="file does not exist"):
        read_stac_scene(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "target, status, problem",
    [
        ("item", 404, "HTTP 404: no such object"),
        ("item", 403, "HTTP 403: access denied"),
        ("tif", 404, "HTTP 404: no such object"),
        ("tif", 403, "HTTP 403: access denied"),
    ],
)
def test_http_errors_name_the_url(l1t_pair, http_server, target, status, problem):
    path = "/pair/" + (l1t_pair.item.name if target == "item" else f"{l1t_pair.item.stem}-TIR.tif")
    http_server.faults[path] = Fault(status)
    try:
        with pytest.raises(SceneFileError) as error:
            read_stac_scene(l1t_pair.item_url)
    finally:
        http_server.faults.clear()
    assert error.value.source == http_server.url + path and error.value.problem.startswith(problem)


def test_a_read_failing_mid_run_names_the_url_and_window(l1t_pair, http_server):
    folder = http_server.publish(l1t_pair.item.parent, under="mid_run")  # URLs no read has cached yet
    ds = open_aster_stac(f"{folder}/{l1t_pair.item.name}")
    path = f"/mid_run/{l1t_pair.item.stem}-TIR.tif"
    http_server.faults[path] = Fault(404)  # the object is gone once the scene is open
    try:
        with pytest.raises(SceneFileError) as error:
            ds["brightness_temperature"].isel(y=slice(32, 64), x=slice(32, 64)).compute(scheduler="threads")
    finally:
        http_server.faults.clear()
    assert error.value.source == http_server.url + path
    assert error.value.problem.startswith("reading lines 32-63, pixels 32-63 failed (HTTP 404")


def test_a_stalled_server_fails_within_the_timeout(stalled_endpoint, closed_endpoint):
    started = time.perf_counter()
    with pytest.raises(SceneFileError, match="no answer within 1 s"):
        read_stac_scene(f"{stalled_endpoint}/item.json", Remote.of(timeout=1.0))
    assert time.perf_counter() - started < 15
    with pytest.raises(SceneFileError, match="endpoint unreachable"):
        read_stac_scene(f"{closed_endpoint}/item.json", Remote.of(timeout=1.0))


def test_urls_are_recorded_without_credentials_or_signatures():
    assert redact("https://user:pw@host.example/a/b.json?sig=abc&se=2030") == "https://host.example/a/b.json"
    assert redact("s3://bucket/key.hdf") == "s3://bucket/key.hdf" and redact("/data/x.hdf") == "/data/x.hdf"
    assert is_stac_item("https://host/item.json?token=1") and not is_stac_item("s3://b/AST_L1T_x.hdf")


def test_storage_options_are_checked_and_reach_gdal_for_s3():
    assert parse_storage_options('{"anon": true}') == {"anon": True} and parse_storage_options(None) == {}
    with pytest.raises(InputError, match="not JSON"):
        parse_storage_options("{anon: true}")
    with pytest.raises(InputError, match="a JSON list"):
        parse_storage_options("[1]")
    remote = Remote.of({"endpoint_url": "http://127.0.0.1:9000", "key": "k", "secret": "s"}, timeout=5)
    options = gdal_options("s3://bucket/x.tif", remote)
    assert options["AWS_S3_ENDPOINT"] == "127.0.0.1:9000" and options["AWS_HTTPS"] == "NO"
    assert options["AWS_ACCESS_KEY_ID"] == "k" and options["GDAL_HTTP_TIMEOUT"] == 5
    assert "AWS_S3_ENDPOINT" not in gdal_options("https://host/x.tif", remote)
    assert remote._options_for("https") == {"client_kwargs": remote._options_for("https")["client_kwargs"]}
    nested = Remote.of({"s3": {"anon": True}, "https": {"headers": {"Authorization": "Bearer t"}}})
    assert nested._options_for("s3")["anon"] and nested._options_for("https")["headers"]["Authorization"]
    with pytest.raises(InputError, match="cannot open nosuch:// URLs"):
        remote.filesystem("nosuch://bucket/AST_L1T_x.hdf")
