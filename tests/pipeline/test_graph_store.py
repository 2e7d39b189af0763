"""The retrieval graph (size, model by reference, accessor) and the Zarr layout (CF, provenance, chunks)."""

from __future__ import annotations

import hashlib
import warnings

import cloudpickle
import numpy as np
import onnx
import pytest
import xarray as xr
from dask.utils import key_split
from onnx import numpy_helper
from pipeline_checks import assert_same, reference, stored

import akkd_scale.pipeline  # noqa: F401  (registers Dataset.akkd)
from akkd_scale import __version__
from akkd_scale.conventions import QC_BITS
from akkd_scale.errors import InputError
from akkd_scale.pipeline import bundle_ref, open_scene, retrieve, run_scenes, scene_group


def open_scene_file(path, chunks):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # square chunks cut the reader's row chunks
        return xr.open_dataset(path, engine="aster_l1b", chunks={"y": chunks, "x": chunks})


def test_graph_is_a_few_tasks_per_chunk_and_carries_no_weights(scenes, bundle_path):
    ds = open_scene_file(scenes["good_a"], 8)
    n_chunks = int(np.prod([len(c) for c in ds["brightness_temperature"].chunks[1:]]))
    read = ["brightness_temperature", "view_zenith", "latitude", "longitude"] + (["ndvi"] if "ndvi" in ds else [])
    reader_tasks = len(ds[read].__dask_graph__())
    result = retrieve(ds, bundle_ref(bundle_path), heads=("fusion", "teacher"))
    graph = dict(result.__dask_graph__())
    added = len(graph) - reader_tasks
    n_outputs = len(result.data_vars)
    assert n_chunks == 42
    assert added <= n_chunks * (n_outputs + 5), (added, n_chunks)  # + NDVI aligned to the TIR chunks
    kernel = [k for k in graph if key_split(k) == "retrieve_block"]
    assert len(kernel) == n_chunks

    teacher = onnx.load(str(bundle_path / "teacher.onnx"))
    weights = max((numpy_helper.to_array(t) for t in teacher.graph.initializer), key=lambda a: a.size)
    pickled = cloudpickle.dumps(graph)
    assert weights.astype(np.float32).tobytes()[:64] not in pickled
    assert len(pickled) < 600 * n_chunks * n_outputs


def test_accessor_equals_bundle_predict(scenes, bundle_path):
    ds = open_scene_file(scenes["good_b"], 20)
    lazy = ds.akkd.retrieve(bundle=bundle_path, heads=("fusion", "student"))
    assert lazy["lst"].chunks == ((20, 20, 8), (20, 20, 16))
    result = lazy.compute(scheduler="threads")
    got = {
        name: result[name].transpose(*(("band",) if "band" in result[name].dims else ()), "y", "x").values
        for name in result.data_vars
    }
    expected = reference(scenes["good_b"], bundle_path, heads=("fusion", "student"))
    assert_same(got, expected)
    assert (got["qc"][:5, :9] & QC_BITS["invalid_input"]).all() and np.isnan(got["lst"][:5, :9]).all()


def test_bad_dataset_is_named(bundle_path):
    ds = xr.Dataset({"radiance": (("band", "y", "x"), np.zeros((5, 2, 2)))}, attrs={"source_file": "x.hdf"})
    with pytest.raises(InputError, match="x.hdf: brightness_temperature"):
        retrieve(ds, bundle_ref(bundle_path))
    for heads, message in (
        (("fusion", "fusion"), r"heads: repeated heads in fusion,fusion"),
        (
            ("fusion", "tes"),
            r"atmosphere: the 'tes' head needs atmospheric terms \(expected "
            r"transmittance, path_radiance, sky_radiance",
        ),
        (("nonsense",), r"heads: unknown heads \['nonsense'\] \(expected one or more of teacher"),
        ((), r"heads: no heads given"),
    ):
        with pytest.raises(InputError, match=message):
            retrieve(ds, bundle_ref(bundle_path), heads=heads)


def test_zarr_layout_cf_attrs_and_provenance(scenes, bundle_path, client, tmp_path):
    out = tmp_path / "layout.zarr"
    path = scenes["good_b"]
    table = run_scenes(
        [path],
        out,
        bundle=bundle_path,
        heads=("fusion", "teacher"),
        chunks=20,
        client=client,
        command_line="akkd-scale run test",
    )
    assert list(table["status"]) == ["complete"]
    group = scene_group(path)
    assert group == "AST_L1B_good_b"
    ds = open_scene(out, group)
    source = xr.open_dataset(path, engine="aster_l1b").load()

    for name in ("lst", "lst_uncertainty", "lst_teacher", "qc", "latitude", "longitude"):
        assert ds[name].encoding["chunks"] == (20, 20), name
        assert ds[name].chunks == ((20, 20, 8), (20, 20, 16)), name
    assert ds["emissivity"].encoding["chunks"] == (5, 20, 20)
    for name in ("lst", "lst_uncertainty", "lst_teacher", "emissivity", "emissivity_teacher"):
        assert np.isnan(ds[name].encoding["_FillValue"]), name
        assert ds[name].attrs["long_name"] and ds[name].attrs["units"] in ("K", "1"), name
    assert ds["lst"].attrs["units"] == "K" and ds["emissivity"].attrs["units"] == "1"
    assert "teacher" in ds["lst_teacher"].attrs["long_name"]
    assert ds["lst_uncertainty_fusion"].attrs["long_name"].startswith("land surface temperature uncertainty")
    assert list(ds["qc"].attrs["flag_masks"]) == list(QC_BITS.values())
    assert ds["qc"].attrs["flag_meanings"].split() == list(QC_BITS)
    assert list(ds["band"].values) == ["B10", "B11", "B12", "B13", "B14"]
    np.testing.assert_allclose(ds["wavelength"].values, source["wavelength"].values)
    np.testing.assert_array_equal(ds["latitude"].values, source["latitude"].values)
    np.testing.assert_array_equal(ds["longitude"].values, source["longitude"].values)
    assert ds["time"].values == np.datetime64("2005-03-02T10:11:12", "ns")

    attrs = ds.attrs
    assert attrs["akkd_status"] == "complete" and attrs["Conventions"].startswith("CF-")
    assert attrs["akkd_scale_version"] == __version__
    assert attrs["bundle_sha256"] == bundle_ref(bundle_path).sha256
    assert attrs["source_file"] == str(path.resolve())
    assert attrs["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert attrs["command_line"] == "akkd-scale run test" and attrs["heads"] == "fusion,teacher"
    assert_same(
        stored(out, group, ("lst_teacher",)),
        {"lst_teacher": reference(path, bundle_path, ("fusion", "teacher"))["lst_teacher"]},
    )


def test_open_scene_refuses_incomplete(scenes, bundle_path, client, tmp_path):
    import zarr

    out = tmp_path / "r.zarr"
    run_scenes([scenes["good_a"]], out, bundle=bundle_path, chunks=48, client=client)
    group = scene_group(scenes["good_a"])
    zarr.open_group(str(out), path=group, mode="r+").attrs["akkd_status"] = "incomplete"
    with pytest.raises(InputError, match=f"{group}: scene group is incomplete"):
        open_scene(out, group)
    with pytest.raises(InputError, match="no_such_scene: scene group is missing"):
        open_scene(out, "no_such_scene")
