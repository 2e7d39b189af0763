"""The quick loop's bundle (``bundle_path``): written from random weights without TensorFlow or Keras, with the
structure of the trained tiny bundle, the same for the same seed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from akkd_scale.conventions import INPUT_NAMES, LAND_COVER_CLASSES, NETWORK_HEADS


def test_random_bundle_is_written_loaded_and_run_without_tensorflow(tmp_path):
    """Writing, loading and retrieving through the random bundle, in a fresh interpreter: no training stack."""
    script = textwrap.dedent(f"""
        import sys, numpy as np, xarray as xr
        import akkd_scale
        from akkd_scale.conventions import NETWORK_HEADS
        from akkd_scale.training.random_bundle import write_random_bundle
        bundle = akkd_scale.load_bundle(write_random_bundle({str(tmp_path / "random")!r}, seed=3))
        bt = np.full((4, 5), 295.0); bt[:, 3] += 1.0
        out = bundle.predict(bt, np.zeros(4), heads=NETWORK_HEADS, land_cover=np.array([2, 5, 6, -1]))
        ds = xr.Dataset({{"brightness_temperature": (("band", "sample"), bt.T),
                         "view_zenith": ("sample", np.zeros(4))}},
                        coords={{"band": ["B10", "B11", "B12", "B13", "B14"]}}).chunk({{"sample": 2}})
        akkd_scale.retrieve(ds, bundle, heads=("fusion", "teacher")).compute()
        heavy = sorted(m for m in ("tensorflow", "keras", "autokeras", "keras_tuner") if m in sys.modules)
        assert not heavy, heavy
        print("ok", all(np.isfinite(out[h]["lst"]).all() for h in NETWORK_HEADS))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok True"


def test_random_bundle_has_the_tiny_bundle_structure(bundle_path):
    manifest = json.loads((bundle_path / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["inputs"]["names"] == list(INPUT_NAMES) + ["ndvi"]
    students = manifest["models"]["students"]
    assert [e["name"] for e in students["strata"]] == ["moisture0_contrast0_view0", "moisture1_contrast0_view0"]
    assert all(e["kd"] and e["baseline"] for e in students["strata"])
    assert [e["name"] for e in students["land_cover"]] == list(LAND_COVER_CLASSES)
    assert {e["name"] for e in students["land_cover"] if e["kd"]} == {
        "tree_cover",
        "sparse_vegetation_bare_soil",
        "bare_rock_desert",
    }
    n_local = len(LAND_COVER_CLASSES) + 2
    fusion = manifest["fusion"]
    # one row per local model, then the classes' rules entries, as the recipe writes them
    n_rows = n_local + len(LAND_COVER_CLASSES)
    assert fusion["rules_offset"] == n_local
    assert len(fusion["teacher_weight"]) == n_rows and set(fusion["lst_rmse"]) == set(NETWORK_HEADS)
    calibration = fusion["calibration"]
    assert len(calibration["edges"]) == 6 and len(calibration["factor"]["fusion"][0]) == 7
    assert len(calibration["factor"]["fusion"]) == n_rows and len(calibration["cwv_coefficients"]) == 36
    assert manifest["inputs"]["range_min"][-1] == -2.0  # NDVI missing value inside the domain, as the recipe trains
    assert manifest["inputs"]["mahalanobis"]["threshold"] > 0


def test_random_bundle_is_fixed_by_its_seed(bundle_path, tmp_path):
    from akkd_scale.training.random_bundle import write_random_bundle

    def content(path):
        manifest = json.loads((path / "manifest.json").read_text())
        return manifest["files"], manifest["fusion"], manifest["inputs"], manifest["strata"]

    assert content(write_random_bundle(tmp_path / "again", seed=0)) == content(bundle_path)
    other = content(write_random_bundle(tmp_path / "other", seed=1))
    assert other[0]["teacher.onnx"] != content(bundle_path)[0]["teacher.onnx"]
