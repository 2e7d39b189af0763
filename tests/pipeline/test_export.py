"""GeoTIFF/COG export of result stores. The stores are written here in the layout of pipeline/store.py
(one Zarr v3 group per scene, ``akkd_status`` last), from scenes opened with the reader, so these tests
do not depend on the pipeline or a bundle."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
import zarr
from click.testing import CliRunner
from pyproj import Transformer

from akkd_scale.cli import main
from akkd_scale.errors import InputError
from akkd_scale.pipeline.export import export_store, georeferenced, utm_epsg
from akkd_scale.pipeline.store import open_scene
from akkd_scale.simulate.l1b_writer import write_aster_l1b, write_aster_l1t

SHAPE = (60, 70)
BANDS = ["B10", "B11", "B12", "B13", "B14"]


def lst_field(shape):
    """A field linear in (line, pixel): 0.5 K per line, 0.3 K per pixel."""
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return (280.0 + 0.5 * yy + 0.3 * xx).astype(np.float32)


def write_result(store, group, scene_path, *, complete=True, with_spatial_ref=True):
    """A result group as pipeline/store.py writes it: lst, emissivity, qc, lat/lon coordinates, attrs."""
    scene = xr.open_dataset(scene_path, engine="aster_l1b").load()
    shape = (scene.sizes["y"], scene.sizes["x"])
    qc = np.zeros(shape, np.uint8)
    qc[:3, :4] = 1
    coords = {
        "latitude": scene.latitude.variable,
        "longitude": scene.longitude.variable,
        "band": np.array(BANDS, dtype=object),
    }
    coords.update({k: scene[k] for k in ("x", "y", "spatial_ref") if k in scene.coords and with_spatial_ref})
    result = xr.Dataset(
        {
            "lst": (("y", "x"), lst_field(shape), {"units": "K", "long_name": "land surface temperature"}),
            "emissivity": (
                ("band", "y", "x"),
                np.broadcast_to(np.linspace(0.95, 0.99, 5, dtype=np.float32)[:, None, None], (5,) + shape).copy(),
                {"units": "1"},
            ),
            "qc": (
                ("y", "x"),
                qc,
                {
                    "long_name": "retrieval quality flags",
                    "flag_masks": np.array([1, 2, 4, 8], np.uint8),
                    "flag_meanings": "invalid_input out_of_training_range extrapolation global",
                },
            ),
        },
        coords=coords,
        attrs={"Conventions": "CF-1.10", "source_file": str(scene_path), "bundle": "tiny", "akkd_status": "incomplete"},
    )
    result.to_zarr(str(store), group=group, mode="w", consolidated=False, zarr_format=3)
    if complete:
        zarr.open_group(str(store), path=group, mode="r+").attrs.update({"akkd_status": "complete"})
    return scene


@pytest.fixture(scope="module")
def l1b_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    scene_path = write_aster_l1b(root / "AST_L1B_export.hdf", shape=SHAPE, center_lat=36.5, center_lon=-116.9)
    store = root / "results.zarr"
    scene = write_result(store, "AST_L1B_export", scene_path)
    return store, scene


def test_cog_at_lattice_points_equals_swath_within_half_a_pixel(l1b_store, tmp_path):
    store, scene = l1b_store
    gcps = georeferenced(open_scene(store, "AST_L1B_export"), store, "AST_L1B_export").rio.get_gcps()
    assert [(g.row, g.col) for g in gcps] == [(g.row, g.col) for g in scene.rio.get_gcps()]  # the stored lattice
    assert max(g.row for g in gcps) == 60.5  # lattice line 60 lies past the last image line
    paths = export_store(store, tmp_path, variables=["lst", "emissivity", "qc"])
    assert sorted(p.name for p in paths) == [
        "AST_L1B_export_emissivity.tif",
        "AST_L1B_export_lst.tif",
        "AST_L1B_export_qc.tif",
    ]
    cog = rioxarray.open_rasterio(tmp_path / "AST_L1B_export_lst.tif", masked=True).squeeze("band", drop=True)
    assert cog.rio.crs.to_epsg() == utm_epsg(36.5, -116.9) == 32611
    assert cog.rio.resolution() == (90.0, -90.0)
    with rasterio.open(tmp_path / "AST_L1B_export_lst.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert np.isnan(src.nodata) and src.tags()["units"] == "K" and src.tags()["akkd_bundle"] == "tiny"
    # interior lattice points (line 6k, pixel 7m): where the swath put them, projected independently
    to_utm = Transformer.from_crs(4326, 32611, always_xy=True)
    swath = lst_field(SHAPE)
    errors = []
    for line in range(6, 54, 6):
        for pixel in range(7, 63, 7):
            x, y = to_utm.transform(float(scene.longitude[line, pixel]), float(scene.latitude[line, pixel]))
            errors.append(float(cog.interp(x=x, y=y)) - swath[line, pixel])
    half_pixel = 0.5 * np.hypot(0.5, 0.3)  # value change of half a pixel of geolocation error
    assert np.all(np.isfinite(errors)) and np.max(np.abs(errors)) < half_pixel


def test_band_and_flag_files(l1b_store, tmp_path):
    store, _ = l1b_store
    export_store(store, tmp_path, variables=["emissivity", "qc"], fmt="geotiff")
    with rasterio.open(tmp_path / "AST_L1B_export_emissivity.tif") as src:
        assert src.count == 5 and src.descriptions == tuple(f"emissivity {b}" for b in BANDS)
        data = src.read(masked=True)
        np.testing.assert_allclose([np.ma.median(band) for band in data], np.linspace(0.95, 0.99, 5), rtol=1e-6)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG" and src.profile["tiled"]
    with rasterio.open(tmp_path / "AST_L1B_export_qc.tif") as src:
        values = src.read(1)
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        assert set(np.unique(values)) <= {0, 1, 255} and (values == 1).any()
        assert src.tags()["flag_meanings"].startswith("invalid_input")


def test_geographic_crs_and_explicit_resolution(l1b_store, tmp_path):
    store, _ = l1b_store
    (path,) = export_store(store, tmp_path, variables=["lst"], crs="EPSG:4326", resolution=0.001)
    out = rioxarray.open_rasterio(path)
    assert out.rio.crs.to_epsg() == 4326 and out.rio.resolution() == pytest.approx((0.001, -0.001))


def test_l1t_store_keeps_its_grid(tmp_path):
    scene_path = write_aster_l1t(tmp_path / "AST_L1T_export.hdf", shape=(31, 37), center_lat=36.5, center_lon=-116.9)
    store = tmp_path / "results.zarr"
    scene = write_result(store, "AST_L1T_export", scene_path)
    (path,) = export_store(store, tmp_path / "out", variables=["lst"])
    out = rioxarray.open_rasterio(path).squeeze("band", drop=True)
    assert out.rio.crs == scene.rio.crs
    common = out.sel(x=scene.x.values[2:-2], y=scene.y.values[2:-2])
    np.testing.assert_allclose(common.values, lst_field((31, 37))[2:-2, 2:-2], rtol=1e-6)


def test_store_without_spatial_ref_uses_latitude_longitude(tmp_path):
    scene_path = write_aster_l1b(tmp_path / "AST_L1B_old.hdf", shape=SHAPE)
    store = tmp_path / "results.zarr"
    write_result(store, "old", scene_path, with_spatial_ref=False)
    gcps = georeferenced(open_scene(store, "old"), store, "old").rio.get_gcps()
    assert len(gcps) == 121 and max(g.row for g in gcps) == 59.5  # 11 x 11 pixel centres of the image
    (path,) = export_store(store, tmp_path / "out", variables=["lst"])
    assert rioxarray.open_rasterio(path).rio.crs.to_epsg() == 32611


def test_errors_write_nothing(l1b_store, tmp_path):
    store, _ = l1b_store
    scene_path = write_aster_l1b(tmp_path / "AST_L1B_half.hdf", shape=(20, 24))
    mixed = tmp_path / "mixed.zarr"
    write_result(mixed, "a_complete", scene_path)
    write_result(mixed, "b_unfinished", scene_path, complete=False)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="b_unfinished: scene group is incomplete"):
        export_store(mixed, out)
    with pytest.raises(
        InputError, match="variable.s. ndvi not in scene group AST_L1B_export.*expected some of emissivity, lst, qc"
    ):
        export_store(store, out, variables=["lst", "ndvi"])
    with pytest.raises(InputError, match="not a result store: no Zarr group there"):
        export_store(tmp_path / "AST_L1B_half.hdf", out)
    with pytest.raises(InputError, match="'EPSG:999999' is not a CRS"):
        export_store(store, out, crs="EPSG:999999")
    assert not out.exists() or not any(out.iterdir())


def test_cli_export(l1b_store, tmp_path):
    store, _ = l1b_store
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["export", str(store), "--out", str(tmp_path), "--variables", "lst", "--crs", "utm", "--resolution", "180"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("AST_L1B_export_lst.tif")
    assert rioxarray.open_rasterio(tmp_path / "AST_L1B_export_lst.tif").rio.resolution() == (180.0, -180.0)
    bad = runner.invoke(main, ["export", str(store), "--out", str(tmp_path / "x"), "--variables", "lts"])
    assert bad.exit_code == 1 and "variable(s) lts not in scene group" in bad.output
