"""Clouds in the retrieval: simulated cloudy L1B scenes (day and night) end to end through `akkd-scale run`, the
invariants (cloud ⇒ NaN unless --keep-cloudy, class -1 on cloud), external masks in another CRS and their bad
input, the record, the exported QC bit, the reader's VNIR reflectance. The mask's rates do not depend on the
networks, so the random-weight ``bundle_path`` serves."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import rasterio
import xarray as xr
from click.testing import CliRunner

from akkd_scale.cli import main
from akkd_scale.clouds.mask import CLOUD_TEST_BITS
from akkd_scale.conventions import (LAND_COVER_CLASSES, LAND_COVER_UNKNOWN, QC_BITS, QC_CLOUD, QC_CLOUD_BUFFER,
                                    QC_INVALID_INPUT)
from akkd_scale.errors import InputError
from akkd_scale.pipeline.graph import retrieve
from akkd_scale.pipeline.store import open_scene, scene_group
from akkd_scale.simulate.clouds import mask_rates
from akkd_scale.simulate.l1b_writer import vnir_dn_for_reflectance, write_aster_l1b
from akkd_scale.workflows.cloud_demo import CLOUD_SCENES, MIN_CLOUD_SHAPE, write_cloudy_scenes
from akkd_scale.workflows.demo import ACQUISITION_TIME, LANDSCAPE_SEED, SOLAR_DIRECTION, no_data_margins

SHAPE = MIN_CLOUD_SHAPE
DAY, NIGHT = CLOUD_SCENES[0], CLOUD_SCENES[2]
#: Rates of the mask on this module's scenes (``write_cloudy_scenes`` at 120 × 140, the demo's seeds), measured
#: once through `akkd-scale run` (chunks auto): opaque hit, cirrus hit, false alarms (all clear pixels), false
#: alarms over snow / bright desert / water. Deterministic (seeded scenes, no network in the mask): the margin
#: only absorbs float noise across machines.
MEASURED = {DAY[0]: (0.996, 0.933, 0.0242, 0.308, 0.031, 0.0),
            NIGHT[0]: (0.268, 0.986, 0.0247, 0.179, 0.077, 0.0)}
RATE_MARGIN = 0.01


@pytest.fixture(scope="module")
def cloudy(tmp_path_factory):
    """The demo's cloudy midlatitude-summer day scene and its night scene, written as L1B files with truth."""
    root = tmp_path_factory.mktemp("cloudy")
    paths = write_cloudy_scenes(root, shape=SHAPE, scenes=(DAY, NIGHT), acquisition_time=ACQUISITION_TIME,
                                solar_direction=SOLAR_DIRECTION, landscape_seed=LANDSCAPE_SEED,
                                fill_mask=no_data_margins(SHAPE))
    return {path.stem: (path, xr.open_dataset(root / "truth" / f"{path.stem}.nc", engine="h5netcdf").load())
            for path in paths}


@pytest.fixture(scope="module")
def cli_run(cloudy, bundle_path, tmp_path_factory):
    """Both scenes through `akkd-scale run` (threads): with the default mask and with --keep-cloudy."""
    root = tmp_path_factory.mktemp("cloudy_runs")
    paths = [str(path) for path, _ in cloudy.values()]
    runs = {}
    for name, options in (("auto", []), ("keep", ["--keep-cloudy"])):
        out = root / f"{name}.zarr"
        result = CliRunner().invoke(main, ["run", *paths, "--out", str(out), "--bundle", str(bundle_path),
                                           "--executor", "threads", "--heads", "fusion,teacher", *options])
        assert result.exit_code == 0, result.output
        runs[name] = (out, result.output)
    return runs


def _flag(result):
    qc = result["qc"].values
    return (qc & QC_CLOUD) > 0, (qc & QC_INVALID_INPUT) == 0


def test_cloudy_scenes_end_to_end_hit_and_false_alarm_rates(cloudy, cli_run):
    out, output = cli_run["auto"]
    for name, (path, truth) in cloudy.items():
        result = open_scene(out, scene_group(path)).load()
        flag, valid = _flag(result)
        rates = mask_rates(truth, flag, valid)
        opaque, cirrus, false_alarm, snow, desert, water = MEASURED[name]
        assert rates.opaque == pytest.approx(opaque, abs=RATE_MARGIN), (name, rates)
        assert rates.cirrus == pytest.approx(cirrus, abs=RATE_MARGIN), (name, rates)
        assert rates.false_alarm == pytest.approx(false_alarm, abs=RATE_MARGIN / 2), (name, rates)
        by_class = rates.false_alarm_by_class
        for got, want in zip((by_class["snow_ice"], by_class["bare_rock_desert"], by_class["water"]),
                             (snow, desert, water)):
            assert got == pytest.approx(want, abs=RATE_MARGIN), (name, by_class)
        day = "_night_" not in name
        assert result.attrs["cloud_mask"] == "auto"
        assert result.attrs["cloud_mask_source"].startswith("built-in tests (" + ("day" if day else "night"))
        tests = result["cloud_tests"].values
        assert result["cloud_tests"].dtype == np.uint16
        assert result["cloud_tests"].attrs["flag_meanings"].split() == list(CLOUD_TEST_BITS)
        night_bit = (tests & CLOUD_TEST_BITS["night_tests"]) > 0
        assert night_bit[valid].all() if not day else not night_bit[valid].any()
        record = result.attrs["akkd_record"]
        assert record["cloud_mask"] == "auto"
        assert record["cloud_fraction"] == pytest.approx(flag[valid].mean(), abs=1e-6)
        line = next(line for line in output.splitlines() if path.name in line and "complete" in line)
        assert f"cloud {flag[valid].mean():.1%}" in line, line


def test_no_cloudy_pixel_leaves_with_a_value_unless_kept(cloudy, cli_run):
    for name, (path, _) in cloudy.items():
        masked = open_scene(cli_run["auto"][0], scene_group(path)).load()
        kept = open_scene(cli_run["keep"][0], scene_group(path)).load()
        flag, valid = _flag(masked)
        assert flag.any() and ((masked["qc"].values & QC_CLOUD_BUFFER) > 0).any()
        for var in ("lst", "lst_uncertainty", "emissivity", "lst_teacher", "emissivity_teacher",
                    "lst_uncertainty_fusion"):
            values = masked[var].values
            assert np.isnan(values[..., flag]).all(), (name, var)
            assert np.isfinite(values[..., ~flag & valid]).all(), (name, var)
            assert np.isfinite(kept[var].values[..., flag & valid]).all(), (name, var)
        bits = np.uint8(QC_CLOUD | QC_CLOUD_BUFFER)
        np.testing.assert_array_equal(kept["qc"].values & bits, masked["qc"].values & bits)  # kept: still flagged
        np.testing.assert_array_equal(kept["qc"].values[~flag], masked["qc"].values[~flag])
        # the networks skip masked cloud: its qc has only the cloud bit (and invalid_input where inputs are not)
        assert set(np.unique(masked["qc"].values[flag])) <= {QC_CLOUD, QC_CLOUD | QC_INVALID_INPUT}
        assert kept.attrs["keep_cloudy"] == 1 and kept.attrs["akkd_record"]["cloud_mask"] == "auto, keep cloudy"
        # no class on cloud: the rules never call a cloud snow or water
        cover = masked["land_cover"].values
        assert (cover[flag] == LAND_COVER_UNKNOWN).all()
        assert not ((masked["qc"].values & QC_BITS["land_cover_from_rules"]) > 0)[flag].any()
        np.testing.assert_array_equal(kept["land_cover"].values, cover)


def test_clear_pixels_are_not_disturbed(cloudy, bundle_path, tmp_path):
    """Without the mask the same scene gives the same values on every pixel the mask leaves alone."""
    path, truth = cloudy[DAY[0]]
    ds = xr.open_dataset(path, engine="aster_l1b", chunks={"y": 60, "x": 70})
    masked = retrieve(ds, bundle_path).compute()
    plain = retrieve(ds, bundle_path, cloud_mask="none").compute()
    assert "cloud_tests" not in plain and plain.attrs["cloud_mask_source"].startswith("none: not requested")
    flag, _ = _flag(masked)
    for var in ("lst", "emissivity", "lst_uncertainty", "land_cover"):
        np.testing.assert_array_equal(masked[var].values[..., ~flag], plain[var].values[..., ~flag], err_msg=var)
    np.testing.assert_array_equal((masked["qc"].values & ~np.uint8(QC_CLOUD | QC_CLOUD_BUFFER))[~flag],
                                  plain["qc"].values[~flag])


def test_chunk_edges_change_the_mask_only_near_them(cloudy, bundle_path):
    """No halo: only pixels within 3 (texture 1 + buffer 2) of an inner chunk edge may differ from the whole scene."""
    path, _ = cloudy[DAY[0]]
    whole = retrieve(xr.open_dataset(path, engine="aster_l1b"), bundle_path)
    chunked = retrieve(xr.open_dataset(path, engine="aster_l1b", chunks={"y": 40, "x": 50}), bundle_path).compute()
    rows, cols = np.nonzero(whole["qc"].values != chunked["qc"].values)
    to_edge = np.minimum(np.abs(rows[:, None] + 0.5 - np.array([40, 80])).min(axis=1),
                         np.abs(cols[:, None] + 0.5 - np.array([50, 100])).min(axis=1))
    assert (to_edge <= 3.5).all(), to_edge.max()
    assert rows.size < 0.01 * SHAPE[0] * SHAPE[1]


def _write_raster(path, values, transform, crs, nodata=None, tags=None):
    profile = {"driver": "GTiff", "height": values.shape[0], "width": values.shape[1], "count": 1,
               "dtype": values.dtype, "transform": transform}
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        if tags:
            dst.update_tags(**tags)
    return path


def _mercator_mask(path, ds, truth_cloud, *, codes=(0, 1), cell=45.0, tags=None, west_only=False):
    """The true cloud mask as a GeoTIFF in EPSG:3857 (Web Mercator), ``cell`` metres: each cell takes the code of
    the scene pixel nearest its centre (``codes`` = (clear, cloud)); returns the raster and its grid."""
    from pyproj import Transformer
    from rasterio.transform import from_origin
    from scipy.spatial import cKDTree

    lat, lon = ds["latitude"].values, ds["longitude"].values
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    west, north = x.min() - 200, y.max() + 200
    nx, ny = int((x.max() + 200 - west) / cell) + 1, int((north - y.min() + 200) / cell) + 1
    cx, cy = west + cell * (np.arange(nx) + 0.5), north - cell * (np.arange(ny) + 0.5)
    gx, gy = np.meshgrid(cx, cy)
    _, nearest = cKDTree(np.column_stack([x.ravel(), y.ravel()])).query(np.column_stack([gx.ravel(), gy.ravel()]))
    values = np.where(truth_cloud.ravel()[nearest], codes[1], codes[0]).reshape(ny, nx).astype(np.uint8)
    if west_only:
        values = values[:, : nx // 2]
    _write_raster(path, values, from_origin(west, north, cell, cell), "EPSG:3857", tags=tags)
    return values, west, north, cell, x, y


def test_external_mask_in_web_mercator_sampled_at_pixel_centres(cloudy, bundle_path, tmp_path):
    path, truth = cloudy[DAY[0]]
    ds = xr.open_dataset(path, engine="aster_l1b")
    values, west, north, cell, x, y = _mercator_mask(tmp_path / "clouds_binary.tif", ds, truth["cloud_mask"].values)
    out = retrieve(ds, bundle_path, cloud_mask=tmp_path / "clouds_binary.tif")
    rows, cols = np.floor((north - y) / cell).astype(int), np.floor((x - west) / cell).astype(int)
    expected = values[rows, cols] == 1
    flag, valid = _flag(out)
    np.testing.assert_array_equal(flag[valid], expected[valid])
    assert ((out["cloud_tests"].values & CLOUD_TEST_BITS["external_mask"]) > 0).all()
    assert out.attrs["cloud_mask"] == "external"
    assert out.attrs["cloud_mask_source"].startswith(f"external: {tmp_path / 'clouds_binary.tif'} (binary), "
                                                     "covering 100.0% of the scene")
    # MOD35 codes (0 cloudy … 3 clear) are detected from the codes; the same pixels are cloud
    _mercator_mask(tmp_path / "mask.tif", ds, truth["cloud_mask"].values, codes=(3, 0))
    mod35 = retrieve(ds, bundle_path, cloud_mask=tmp_path / "mask.tif")
    assert "(mod35)" in mod35.attrs["cloud_mask_source"]
    np.testing.assert_array_equal(_flag(mod35)[0], flag)


def test_external_mask_covering_part_of_the_scene_warns_and_uses_the_built_in_tests(cloudy, bundle_path, tmp_path,
                                                                                     caplog):
    path, truth = cloudy[DAY[0]]
    ds = xr.open_dataset(path, engine="aster_l1b")
    _mercator_mask(tmp_path / "west_binary.tif", ds, np.zeros(SHAPE, bool), west_only=True)  # all clear, west half
    with caplog.at_level("WARNING"):
        out = retrieve(ds, bundle_path, cloud_mask=tmp_path / "west_binary.tif")
    assert "covers" in caplog.text and "built-in tests decide the rest" in caplog.text
    builtin = retrieve(ds, bundle_path)
    external = (out["cloud_tests"].values & CLOUD_TEST_BITS["external_mask"]) > 0
    assert 0.3 < external.mean() < 0.7
    flag, builtin_flag = _flag(out)[0], _flag(builtin)[0]
    assert not flag[external].any()
    np.testing.assert_array_equal(flag[:, -20:], builtin_flag[:, -20:])  # far from the covered half
    assert re.search(r"covering \d+\.\d% of the scene", out.attrs["cloud_mask_source"])


def test_bad_cloud_masks_are_named_before_any_cluster(cloudy, bundle_path, tmp_path, monkeypatch):
    from rasterio.transform import from_origin

    def refuse(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr("akkd_scale.pipeline.cluster.get_client", refuse)
    monkeypatch.setattr("akkd_scale.pipeline.get_client", refuse, raising=False)
    path, truth = cloudy[DAY[0]]
    ds = xr.open_dataset(path, engine="aster_l1b")
    notes = tmp_path / "notes.tif"
    notes.write_text("not a raster\n")
    _write_raster(tmp_path / "nocrs.tif", np.zeros((4, 4), np.uint8), from_origin(0, 0, 1, 1), None)
    _mercator_mask(tmp_path / "ambiguous.tif", ds, truth["cloud_mask"].values)
    _mercator_mask(tmp_path / "odd_binary.tif", ds, truth["cloud_mask"].values, codes=(0, 7))
    cases = {notes: "cloud mask: cannot be read as a raster",
             tmp_path / "nocrs.tif": "cloud mask: no coordinate reference system",
             tmp_path / "ambiguous.tif": "cloud mask: codes [0, 1] fit both cloud-mask conventions",
             tmp_path / "odd_binary.tif": "cloud mask: unknown codes [7]"}
    for mask, message in cases.items():
        result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o.zarr"), "--bundle",
                                           str(bundle_path), "--cloud-mask", str(mask)])
        assert result.exit_code == 1, result.output
        assert f"{mask}: {message}" in " ".join(result.output.split()), result.output
        assert not (tmp_path / "o.zarr").exists()
        with pytest.raises(InputError, match=re.escape(f"{mask}: {message}")):
            retrieve(ds, bundle_path, cloud_mask=mask)
    given = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o.zarr"), "--cloud-mask", "none",
                                      "--cloud-mask-convention", "binary"])
    assert given.exit_code == 2 and "needs --cloud-mask MASK.tif" in given.output
    missing = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o.zarr"), "--cloud-mask",
                                        str(tmp_path / "missing.tif")])
    assert missing.exit_code == 2 and "expected 'auto', 'none' or an existing cloud-mask GeoTIFF" in missing.output
    # declared, the ambiguous mask is read as binary
    declared = retrieve(ds, bundle_path, cloud_mask=tmp_path / "ambiguous.tif", cloud_mask_convention="binary")
    assert "(binary)" in declared.attrs["cloud_mask_source"]


def test_other_cloud_options_redo_the_scene_and_the_qc_bit_reaches_the_geotiff(cloudy, bundle_path, tmp_path):
    from akkd_scale.pipeline import run_scenes
    from akkd_scale.pipeline.export import export_store

    path, _ = cloudy[DAY[0]]
    out = tmp_path / "r.zarr"
    assert list(run_scenes([path], out, bundle=bundle_path, executor="threads")["status"]) == ["complete"]
    assert list(run_scenes([path], out, bundle=bundle_path, executor="threads")["status"]) == ["skipped"]
    for options in ({"keep_cloudy": True}, {"cloud_mask": "none"}):
        assert list(run_scenes([path], out, bundle=bundle_path, executor="threads", **options)["status"]) == [
            "complete"], options
    assert open_scene(out, scene_group(path)).attrs["akkd_record"]["cloud_fraction"] is None
    run_scenes([path], out, bundle=bundle_path, executor="threads")
    qc_tif, tests_tif = export_store(out, tmp_path / "tifs", variables=["qc", "cloud_tests"], fmt="geotiff")
    with rasterio.open(qc_tif) as src:
        tags = src.tags()
        masks = [int(v) for v in tags["flag_masks"].split()]
        meanings = tags["flag_meanings"].split()
        assert dict(zip(meanings, masks))["cloud"] == QC_CLOUD and dict(zip(meanings, masks))["cloud_buffer"] == 128
        qc = src.read(1)
        assert ((qc != src.nodata) & ((qc & QC_CLOUD) > 0)).any()
        assert tags["akkd_cloud_mask"] == "auto" and tags["akkd_cloud_mask_source"].startswith("built-in tests")
    with rasterio.open(tests_tif) as src:
        assert src.dtypes[0] == "uint16" and src.nodata == 65535
        assert src.tags()["flag_meanings"].split() == list(CLOUD_TEST_BITS)


def test_day_scene_without_vnir_runs_the_night_tests_and_says_so(cloudy, bundle_path, tmp_path, caplog):
    path, truth = cloudy[DAY[0]]
    ds = xr.open_dataset(path, engine="aster_l1b").load()
    no_vnir = write_aster_l1b(tmp_path / "AST_L1B_no_vnir.hdf", radiance=ds["radiance"].values, shape=SHAPE,
                              include_vnir=False, acquisition_time=ACQUISITION_TIME, solar_direction=SOLAR_DIRECTION)
    with caplog.at_level("WARNING"):
        out = retrieve(xr.open_dataset(no_vnir, engine="aster_l1b"), bundle_path)
    assert "without VNIR reflectance: the night (TIR-only) tests ran" in caplog.text
    assert "night: TIR only" in out.attrs["cloud_mask_source"]
    assert "without VNIR reflectance" in out.attrs["cloud_mask_source"]
    assert ((out["cloud_tests"].values & CLOUD_TEST_BITS["night_tests"]) > 0).all()


def test_small_images_and_sample_datasets_get_no_mask(bundle_path, tmp_path):
    small = write_aster_l1b(tmp_path / "AST_L1B_small.hdf", shape=(40, 50))
    out = retrieve(xr.open_dataset(small, engine="aster_l1b"), bundle_path)
    assert "cloud_tests" not in out and out.attrs["cloud_mask"] == "none"
    assert "2000 pixels, fewer than the 4096" in out.attrs["cloud_mask_source"]
    with pytest.raises(InputError, match="an external cloud mask needs a scene image"):
        retrieve(xr.open_dataset(small, engine="aster_l1b"), bundle_path, cloud_mask=small)


def test_reader_vnir_reflectance_by_hand_saturation_and_fill(tmp_path):
    shape, f = (6, 7), 6
    rho = np.stack([np.full(shape, 0.3), np.full(shape, 0.25), np.full(shape, 0.5)])
    rho[2, 1, 1] = 0.95  # saturates band 3N
    dn = vnir_dn_for_reflectance(rho, acquisition_time=ACQUISITION_TIME, solar_direction=SOLAR_DIRECTION)
    dn["1"][f * 3 + 2, f * 4 + 1] = 0  # one fill VNIR pixel under TIR pixel (3, 4)
    path = write_aster_l1b(tmp_path / "AST_L1B_rho.hdf", shape=shape, vnir_dn=dn, acquisition_time=ACQUISITION_TIME,
                           solar_direction=SOLAR_DIRECTION)
    ds = xr.open_dataset(path, engine="aster_l1b")
    got = ds["vnir_reflectance"].values
    assert ds["vnir_reflectance"].dtype == np.float64 and list(ds["vnir_band"].values) == ["1", "2", "3N"]
    doy = 197
    d = 1 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))
    cos_sza = math.cos(math.radians(90 - SOLAR_DIRECTION[1]))
    for i, (band, ucc, esun) in enumerate((("1", 1.688, 1848.0), ("2", 1.415, 1549.0), ("3N", 0.862, 1114.0))):
        by_hand = math.pi * (dn[band][::f, ::f].astype(float) - 1) * ucc * d * d / (esun * cos_sza)
        finite = np.isfinite(got[i])
        np.testing.assert_allclose(got[i][finite], by_hand[finite], rtol=1e-6)
    assert np.isposinf(got[2, 1, 1]) and np.isnan(got[0, 3, 4]) and np.isfinite(got).sum() == got.size - 2
    np.testing.assert_allclose(got[:, 0, 0], rho[:, 0, 0], atol=0.003)
    assert np.isnan(ds["ndvi"].values[1, 1])  # saturated: no NDVI, as before
    no_vnir = write_aster_l1b(tmp_path / "AST_L1B_novnir.hdf", shape=shape, include_vnir=False)
    night = xr.open_dataset(no_vnir, engine="aster_l1b")["vnir_reflectance"]
    assert np.isnan(night.values).all() and night.attrs["vnir_available"] == 0


def test_cloudy_scene_land_cover_is_never_snow_or_water_under_cloud(cloudy, bundle_path):
    path, truth = cloudy[DAY[0]]
    out = retrieve(xr.open_dataset(path, engine="aster_l1b"), bundle_path, keep_cloudy=True)
    plain = retrieve(xr.open_dataset(path, engine="aster_l1b"), bundle_path, cloud_mask="none")
    flag, _ = _flag(out)
    opaque = truth["opaque_cloud"].values & flag
    snow_or_water = np.isin(plain["land_cover"].values, [LAND_COVER_CLASSES.index(c) for c in ("snow_ice", "water")])
    assert (snow_or_water & opaque).any()  # without the mask the rules call some clouds snow or water
    assert (out["land_cover"].values[flag] == LAND_COVER_UNKNOWN).all()
