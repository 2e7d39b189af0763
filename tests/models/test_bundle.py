"""Bundle: round trip through the random-weight bundle and a real trained one, integrity checks, inference
without TensorFlow."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from akkd_scale.conventions import (
    LAND_COVER_CLASSES,
    OPTIONAL_INPUTS,
    QC_EXTRAPOLATION,
    QC_INVALID_INPUT,
    QC_NO_LAND_COVER,
    QC_OUT_OF_RANGE,
)
from akkd_scale.conventions import NETWORK_HEADS as HEADS
from akkd_scale.errors import BundleError, BundleIntegrityError, ParameterError
from akkd_scale.models.bundle import default_bundle_path, load_bundle, load_bundle_cached
from akkd_scale.models.strata import n_strata
from akkd_scale.training.bundle_writer import write_manifest
from akkd_scale.training.keras_io import load_keras_model


@pytest.fixture
def bundle_copy(tiny_bundle_path, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_bundle_path, target)
    return target


def _inputs(ds):
    return ds["brightness_temperature"].values, ds["view_zenith"].values


def test_round_trip_without_keras_files(tiny_bundle, tiny_bundle_path, synthetic_set):
    """The runtime test bundle (random weights, ONNX only): identity, listed files, every head finite with an
    uncertainty, slabs, class students for classed pixels and the BT-strata students without land cover."""
    manifest = json.loads((tiny_bundle_path / "manifest.json").read_text())
    assert tiny_bundle.sha256 == hashlib.sha256((tiny_bundle_path / "manifest.json").read_bytes()).hexdigest()
    assert (tiny_bundle_path / "bundle.sha256").read_text() == f"{tiny_bundle.sha256}  manifest.json\n"
    files = {p.relative_to(tiny_bundle_path).as_posix() for p in tiny_bundle_path.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json", "bundle.sha256"}
    assert {"teacher.onnx", "students/global.onnx", "students/tree_cover_baseline.onnx"} <= files
    assert not [f for f in files if f.endswith(".keras")] and "keras" not in manifest["models"]["teacher"]
    assert len(manifest["models"]["students"]["strata"]) == n_strata(manifest["strata"]) == 2

    bt, vza = _inputs(synthetic_set)
    ndvi, land_cover = synthetic_set["ndvi"].values, synthetic_set["land_cover"].values
    out = tiny_bundle.predict(bt, vza, heads=HEADS, extra={"ndvi": ndvi}, land_cover=land_cover)
    for head in HEADS:
        assert out[head]["lst"].shape == (len(bt),) and out[head]["emissivity"].shape == (len(bt), 5)
        assert np.all(np.isfinite(out[head]["lst"])) and np.all(out[head]["lst_uncertainty"] > 0)
    small = load_bundle(tiny_bundle_path, slab_rows=7)
    np.testing.assert_array_equal(
        small.predict(bt, vza, ("fusion",), {"ndvi": ndvi}, land_cover)["fusion"]["lst"], out["fusion"]["lst"]
    )
    tree = land_cover == LAND_COVER_CLASSES.index("tree_cover")
    night = tiny_bundle.predict(bt, vza, heads=("teacher", "student"))
    assert not np.allclose(night["student"]["lst"][tree], out["student"]["lst"][tree])
    assert not np.allclose(night["teacher"]["lst"], out["teacher"]["lst"])  # NDVI missing value instead


def test_manifest_and_round_trip(trained_bundle, trained_bundle_path, synthetic_set):
    """The trained tiny bundle: accuracy, and its ONNX files equal its Keras files (slow: trains once)."""
    manifest = json.loads((trained_bundle_path / "manifest.json").read_text())
    assert trained_bundle.sha256 == hashlib.sha256((trained_bundle_path / "manifest.json").read_bytes()).hexdigest()
    assert (trained_bundle_path / "bundle.sha256").read_text() == f"{trained_bundle.sha256}  manifest.json\n"
    assert manifest["inputs"]["bands"] == ["B10", "B11", "B12", "B13", "B14"]
    assert manifest["outputs"]["units"][0] == "K"
    files = {p.relative_to(trained_bundle_path).as_posix() for p in trained_bundle_path.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json", "bundle.sha256"}
    assert {"teacher.onnx", "teacher.keras", "students/global.onnx", "students/global_baseline.keras"} <= files
    assert len(manifest["models"]["students"]["strata"]) == n_strata(manifest["strata"]) == 2
    assert manifest["distillation"]["alpha"] == 0.5
    assert manifest["provenance"]["n_train"] > 0 and "train_arrays_sha256" in manifest["provenance"]

    bt, vza = _inputs(synthetic_set)
    ndvi, land_cover = synthetic_set["ndvi"].values, synthetic_set["land_cover"].values
    out = trained_bundle.predict(bt, vza, heads=HEADS, extra={"ndvi": ndvi}, land_cover=land_cover)
    for head in HEADS:
        assert out[head]["lst"].shape == (len(bt),) and out[head]["emissivity"].shape == (len(bt), 5)
        assert np.all(np.isfinite(out[head]["lst"])) and np.all(out[head]["lst_uncertainty"] > 0)
        assert np.mean(np.abs(out[head]["lst"] - synthetic_set["lst"].values)) < 8.0
    # ONNX through onnxruntime equals the bundle's Keras files loaded with safe_mode=True
    x, _ = trained_bundle.features(bt, vza, {"ndvi": ndvi})  # the atmospheric inputs at their missing values
    assert x.shape[1] == len(trained_bundle.input_names) == 9
    teacher = load_keras_model(trained_bundle, "teacher.keras")
    keras_lst = teacher.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(out["teacher"]["lst"], keras_lst, atol=1e-3)
    global_kd = load_keras_model(trained_bundle, "students/global.keras")
    np.testing.assert_allclose(out["student_global"]["emissivity"], global_kd.predict(x, verbose=0)[:, 1:], atol=1e-4)
    # slabs give the same numbers as one pass
    small = load_bundle(trained_bundle_path, slab_rows=7)
    np.testing.assert_array_equal(
        small.predict(bt, vza, ("fusion",), {"ndvi": ndvi}, land_cover)["fusion"]["lst"], out["fusion"]["lst"]
    )
    # the class students: a tree-cover pixel's student head is the tree_cover student's ONNX output
    tree = land_cover == LAND_COVER_CLASSES.index("tree_cover")
    tree_kd = load_keras_model(trained_bundle, "students/tree_cover.keras")
    np.testing.assert_allclose(out["student"]["lst"][tree], tree_kd.predict(x[tree], verbose=0)[:, 0], atol=1e-3)
    # without NDVI the networks see the missing value; without land cover the BT-strata students answer
    night = trained_bundle.predict(bt, vza, heads=("teacher", "student"))
    x_night = x.copy()
    x_night[:, trained_bundle.input_names.index("ndvi")] = OPTIONAL_INPUTS["ndvi"][2]
    np.testing.assert_allclose(night["teacher"]["lst"], teacher.predict(x_night, verbose=0)[:, 0], atol=1e-3)
    assert not np.allclose(night["student"]["lst"][tree], out["student"]["lst"][tree])


def test_local_index_and_land_cover_qc(tiny_bundle, synthetic_set):
    bt, vza = _inputs(synthetic_set)
    land_cover = synthetic_set["land_cover"].values.astype(np.int16)
    land_cover[:10] = -1
    local = tiny_bundle.local_index(bt, vza, land_cover)
    strata = tiny_bundle.strata(bt, vza)
    n_classes = len(LAND_COVER_CLASSES)
    np.testing.assert_array_equal(local[:10], n_classes + strata[:10])
    np.testing.assert_array_equal(local[10:], land_cover[10:])
    qc = tiny_bundle.quality(bt, vza, land_cover=land_cover)
    assert (qc[:10] & QC_NO_LAND_COVER).all() and not (qc[10:] & QC_NO_LAND_COVER).any()


def test_nan_rows_and_quality_flags(tiny_bundle, synthetic_set):
    bt, vza = _inputs(synthetic_set)
    bt, vza = bt[:20].copy(), vza[:20].copy()
    bt[0, 2] = np.nan
    vza[1] = np.inf
    bt[2] += 80.0  # far outside the training range
    out = tiny_bundle.predict(bt, vza, heads=("fusion", "student"))
    for head in ("fusion", "student"):
        assert np.all(np.isnan(out[head]["lst"][:2])) and np.all(np.isnan(out[head]["emissivity"][:2]))
        assert np.all(np.isfinite(out[head]["lst"][2:]))
    qc = tiny_bundle.quality(bt, vza)
    assert qc[0] & QC_INVALID_INPUT and qc[1] & QC_INVALID_INPUT
    assert qc[2] & QC_OUT_OF_RANGE and qc[2] & QC_EXTRAPOLATION
    assert not np.any(qc[3:] & QC_INVALID_INPUT)
    all_nan = tiny_bundle.predict(np.full((3, 5), np.nan), np.zeros(3), heads=("fusion",))
    assert np.all(np.isnan(all_nan["fusion"]["lst"]))
    assert tiny_bundle.predict(np.empty((0, 5)), np.empty(0))["fusion"]["lst"].shape == (0,)


def test_bad_arguments(tiny_bundle):
    with pytest.raises(ParameterError, match=r"heads: unknown heads \['oracle'\]"):
        tiny_bundle.predict(np.full((2, 5), 300.0), np.zeros(2), heads=("oracle",))
    with pytest.raises(ParameterError, match=r"bt: brightness temperature shape \(2, 4\)"):
        tiny_bundle.predict(np.full((2, 4), 300.0), np.zeros(2))


def test_tampered_file_refused(bundle_copy):
    target = bundle_copy / "students" / "global.onnx"
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"students/global\.onnx.*sha256"):
        load_bundle(bundle_copy)


def test_missing_and_extra_files_refused(bundle_copy):
    for name in ("intruder.onnx", "intruder.keras"):  # the .keras files being optional, an unlisted one is refused
        extra = bundle_copy / "students" / name
        extra.write_bytes(b"not a model")
        with pytest.raises(BundleIntegrityError, match=f"{name}.*not listed"):
            load_bundle(bundle_copy)
        extra.unlink()
    (bundle_copy / "evaluation").mkdir()
    (bundle_copy / "evaluation" / "table.md").write_text("report, never read by the loader")
    assert load_bundle(bundle_copy).sha256
    (bundle_copy / "teacher.onnx").unlink()
    with pytest.raises(BundleIntegrityError, match=r"teacher\.onnx.*missing"):
        load_bundle(bundle_copy)


def test_keras_files_listed_are_all_present_or_all_absent(bundle_copy):
    """Listed .keras files (fine-tuning only) may all be absent, as in the runtime wheel; present ones are checked
    against their sha256, and one missing beside present ones is refused."""
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    stand_ins = {"teacher.keras": b"teacher weights", "students/global.keras": b"global student weights"}
    manifest["models"]["teacher"]["keras"] = "teacher.keras"
    manifest["models"]["students"]["global"]["kd"]["keras"] = "students/global.keras"
    manifest["files"].update({name: hashlib.sha256(data).hexdigest() for name, data in stand_ins.items()})
    write_manifest(bundle_copy, manifest)
    assert load_bundle(bundle_copy).sha256
    for name, data in stand_ins.items():
        (bundle_copy / name).write_bytes(data)
    assert load_bundle(bundle_copy).sha256
    (bundle_copy / "students" / "global.keras").write_bytes(b"altered")
    with pytest.raises(BundleIntegrityError, match=r"students/global\.keras: sha256 .* does not match"):
        load_bundle(bundle_copy)
    (bundle_copy / "students" / "global.keras").write_bytes(stand_ins["students/global.keras"])
    (bundle_copy / "teacher.keras").unlink()
    with pytest.raises(BundleIntegrityError, match=r"teacher\.keras: listed in the manifest but missing"):
        load_bundle(bundle_copy)


def test_default_bundle_loads_without_its_keras_files(tmp_path):
    """The runtime wheel ships the default bundle's ONNX files only (pyproject.toml): it still loads and predicts."""
    target = tmp_path / "default_bundle"
    shutil.copytree(default_bundle_path(), target, ignore=shutil.ignore_patterns("*.keras"))
    bundle = load_bundle(target)
    assert bundle.sha256 == load_bundle(default_bundle_path()).sha256
    assert np.isfinite(bundle.predict(np.full((2, 5), 295.0), 0.0)["fusion"]["lst"]).all()


def test_swapped_model_and_manifest_edits_refused(bundle_copy):
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    shutil.copy(bundle_copy / "students" / "global_baseline.onnx", bundle_copy / "students" / "global.onnx")
    with pytest.raises(BundleIntegrityError, match=r"global\.onnx: sha256 [0-9a-f]{64} does not match the manifest"):
        load_bundle(bundle_copy)
    shutil.copy(bundle_copy / "students" / "global_baseline.onnx", bundle_copy / "teacher.onnx")
    bad = dict(manifest, inputs=dict(manifest["inputs"], bands=["B14", "B13", "B12", "B11", "B10"]))
    write_manifest(bundle_copy, bad)
    with pytest.raises(BundleError, match=r"manifest\.json: field inputs\.bands: .*\(expected \["):
        load_bundle(bundle_copy)
    manifest_path.write_text("{ not json")
    (bundle_copy / "bundle.sha256").write_text(f"{hashlib.sha256(b'{ not json').hexdigest()}  manifest.json\n")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_copy)
    manifest_path.unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="nowhere: bundle directory does not exist"):
        load_bundle(bundle_copy / "nowhere")


def test_default_bundle_path(monkeypatch, tmp_path):
    monkeypatch.setenv("AKKD_BUNDLE", str(tmp_path / "mine"))
    assert default_bundle_path() == tmp_path / "mine"
    monkeypatch.delenv("AKKD_BUNDLE")
    assert default_bundle_path().parts[-3:] == ("akkd_scale", "data", "default_bundle")


def test_cached_load_refuses_a_changed_bundle(tiny_bundle, bundle_copy):
    with pytest.raises(BundleIntegrityError, match="differs from the expected"):
        load_bundle_cached(str(bundle_copy), "0" * 64)


def test_inference_never_imports_tensorflow(tiny_bundle_path):
    script = textwrap.dedent(f"""
        import sys, numpy as np, xarray as xr
        import akkd_scale
        from akkd_scale.conventions import NETWORK_HEADS
        bundle = akkd_scale.load_bundle({str(tiny_bundle_path)!r})
        bt = np.full((4, 5), 295.0); bt[:, 3] += 1.0
        out = bundle.predict(bt, np.zeros(4), heads=NETWORK_HEADS)
        ds = xr.Dataset({{"brightness_temperature": (("band", "sample"), bt.T),
                         "view_zenith": ("sample", np.zeros(4))}},
                        coords={{"band": ["B10", "B11", "B12", "B13", "B14"]}}).chunk({{"sample": 2}})
        akkd_scale.retrieve(ds, bundle, heads=("fusion", "teacher")).compute()
        heavy = sorted(m for m in ("tensorflow", "keras", "autokeras", "keras_tuner") if m in sys.modules)
        assert not heavy, heavy
        print("ok", np.isfinite(out["fusion"]["lst"]).all())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok True"
