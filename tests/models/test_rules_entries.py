"""Rules entries of the fusion: pixels whose class the NDVI/BT rules assigned are fused and given σ by their
class's rules row (``rules_offset`` + class), pixels classed by a map by the class row — through a real bundle,
the kernel, the schema check and the row bookkeeping of ``fusion_entries``/``student_of``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from akkd_scale.conventions import LAND_COVER_CLASSES, QC_LAND_COVER_RULES
from akkd_scale.errors import BundleError
from akkd_scale.models.bundle import load_bundle
from akkd_scale.models.fusion import RULES_OFFSET_KEY, fusion_entries, student_of
from akkd_scale.training.bundle_writer import write_manifest

N_CLASSES = len(LAND_COVER_CLASSES)


def test_entries_and_students_of_rules_rows():
    fusion = {RULES_OFFSET_KEY: 10, "teacher_weight": [[0.5] * 6] * (10 + N_CLASSES)}
    local = np.array([0, 3, 8, 9, -1, 3])  # classes 0 and 3, strata (8, 9), invalid, class 3
    rules = np.array([True, True, True, True, True, False])
    entries = fusion_entries(local, rules, fusion)
    # classes from the rules → their rules row; strata, −1 and map classes keep theirs
    np.testing.assert_array_equal(entries, [10, 13, 8, 9, -1, 3])
    np.testing.assert_array_equal(student_of(entries, fusion), [0, 3, 8, 9, -1, 3])
    np.testing.assert_array_equal(fusion_entries(local, None, fusion), local)
    older = {"teacher_weight": fusion["teacher_weight"][:10]}
    np.testing.assert_array_equal(fusion_entries(local, rules, older), local)  # bundles without the entries


@pytest.fixture(scope="module")
def rules_bundle(tmp_path_factory):
    """The random bundle with every class's rules row made distinct: teacher weight 1 (teacher alone), twice
    the class row's LST RMSE and its calibration factors."""
    from akkd_scale.training.random_bundle import write_random_bundle

    path = write_random_bundle(tmp_path_factory.mktemp("rules") / "b", seed=3)
    manifest = json.loads((path / "manifest.json").read_text())
    fusion = manifest["fusion"]
    offset = fusion[RULES_OFFSET_KEY]
    for c in range(N_CLASSES):
        fusion["teacher_weight"][offset + c] = [1.0] * 6
        for values in fusion["lst_rmse"].values():
            values[offset + c] = 2.0 * values[c]
        for table in fusion["calibration"]["factor"].values():
            table[offset + c] = table[c]
    write_manifest(path, manifest)
    return load_bundle(path)


def _rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    bt = (rng.uniform(285.0, 305.0, (n, 1)) + rng.uniform(-1.5, 1.5, (n, 5))).astype(np.float32)
    return bt, np.full(n, 4.0, np.float32), {"ndvi": rng.uniform(0.1, 0.8, n).astype(np.float32)}


def test_rules_pixels_use_the_rules_row(rules_bundle):
    bt, vza, extra = _rows()
    heads = ("fusion", "teacher", "student")
    cover = np.arange(len(bt)) % N_CLASSES
    by_map = rules_bundle.predict(bt, vza, heads, extra, land_cover=cover)
    by_rules = rules_bundle.predict(bt, vza, heads, extra, land_cover=cover, from_rules=True)
    # teacher and the class students do not depend on where the class came from
    for head in ("teacher", "student"):
        np.testing.assert_array_equal(by_rules[head]["lst"], by_map[head]["lst"])
    # the rules rows have teacher weight 1: fused = teacher; the map rows fuse with the class weight
    np.testing.assert_allclose(by_rules["fusion"]["lst"], by_map["teacher"]["lst"], atol=1e-5)
    w = np.asarray(rules_bundle.manifest["fusion"]["teacher_weight"])[cover, 0]
    expected = w * by_map["teacher"]["lst"] + (1 - w) * by_map["student"]["lst"]
    np.testing.assert_allclose(by_map["fusion"]["lst"], expected, atol=1e-4)
    assert np.abs(by_map["fusion"]["lst"] - by_rules["fusion"]["lst"]).max() > 0.01
    # a student head's σ is its row's RMSE (× calibration): doubled on the rules rows
    np.testing.assert_allclose(
        by_rules["student"]["lst_uncertainty"] / by_map["student"]["lst_uncertainty"], 2.0, rtol=1e-5
    )
    mixed = rules_bundle.predict(bt, vza, heads, extra, land_cover=cover, from_rules=np.arange(len(bt)) % 2 == 0)
    even = np.arange(len(bt)) % 2 == 0
    np.testing.assert_array_equal(mixed["fusion"]["lst"][even], by_rules["fusion"]["lst"][even])
    np.testing.assert_array_equal(mixed["fusion"]["lst"][~even], by_map["fusion"]["lst"][~even])


def test_kernel_fuses_rule_classed_pixels_by_their_rules_row(rules_bundle, tmp_path):
    """A chunk without a map: every classed pixel has the rules QC bit and the fusion of the rules rows."""
    import xarray as xr

    from akkd_scale.pipeline.kernel import BundleRef, retrieve_block
    from akkd_scale.pipeline.landcover_plan import plan_land_cover

    bt, vza, extra = _rows(24, seed=1)
    block = xr.Dataset(
        {
            "brightness_temperature": (("band", "y", "x"), bt.T.reshape(5, 4, 6)),
            "view_zenith": (("y", "x"), vza.reshape(4, 6)),
            "ndvi": (("y", "x"), extra["ndvi"].reshape(4, 6)),
        }
    )
    ref = BundleRef(str(rules_bundle.path), rules_bundle.sha256)
    spec = {"lst": (("y", "x"), "float32"), "qc": (("y", "x"), "uint8"), "land_cover": (("y", "x"), "int8")}
    plan = plan_land_cover(block, "rules")
    out = retrieve_block(block, ref, ("fusion",), spec, plan)
    cover = out["land_cover"].values.ravel()
    assert (cover >= 0).all() and (out["qc"].values & QC_LAND_COVER_RULES).all()
    expected = rules_bundle.predict(bt, vza, ("fusion",), extra, land_cover=cover, from_rules=True)
    np.testing.assert_allclose(out["lst"].values.ravel(), expected["fusion"]["lst"], atol=1e-5)
    teacher = rules_bundle.predict(bt, vza, ("teacher",), extra, land_cover=cover)["teacher"]["lst"]
    np.testing.assert_allclose(out["lst"].values.ravel(), teacher, atol=1e-5)  # rules rows: teacher weight 1


def test_schema_refuses_a_wrong_rules_offset(rules_bundle, tmp_path):
    manifest = json.loads(json.dumps(rules_bundle.manifest))
    offset = manifest["fusion"][RULES_OFFSET_KEY]
    manifest["fusion"][RULES_OFFSET_KEY] = offset - 1
    target = tmp_path / "b"
    shutil.copytree(rules_bundle.path, target)
    write_manifest(target, manifest)
    expected = rf"field fusion\.rules_offset: {offset - 1} \(expected {offset} \(the number of local models"
    with pytest.raises(BundleError, match=expected):
        load_bundle(target)
    manifest["fusion"][RULES_OFFSET_KEY] = offset
    manifest["fusion"]["teacher_weight"] = manifest["fusion"]["teacher_weight"][:offset]
    write_manifest(target, manifest)
    with pytest.raises(BundleError, match=r"fusion\.teacher_weight"):
        load_bundle(target)
