"""Regional adaptation (``akkd-scale adapt``): a tiny real run — scene pixels with the NDVI rules, a small LOWTRAN
simulation with user profiles, class students distilled — gives a loadable bundle whose class students differ."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.errors import InputError
from akkd_scale.workflows.adapt import air_mass

SHAPE = (24, 28)


def test_air_mass_by_latitude_band_and_season():
    assert air_mass(10.0, 1) == "tropical" and air_mass(-29.0, 7) == "tropical"
    assert air_mass(45.0, 7) == "midlatitude_summer" and air_mass(45.0, 1) == "midlatitude_winter"
    assert air_mass(-45.0, 1) == "midlatitude_summer" and air_mass(-45.0, 7) == "midlatitude_winter"
    assert air_mass(75.0, 6) == "polar_summer" and air_mass(-75.0, 6) == "polar_winter"


@pytest.fixture(scope="module")
def vegetated_scene(tmp_path_factory):
    """A day scene whose NDVI rules give tree cover (west) and sparse vegetation/bare soil (east)."""
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    rng = np.random.default_rng(5)
    bt = 296.0 + rng.normal(0, 1.5, (5,) + SHAPE) + np.array([-3.0, -2.5, -2.0, 0.0, -0.4])[:, None, None]
    red = np.full((SHAPE[0] * 6, SHAPE[1] * 6), 60, np.uint8)
    nir = np.full_like(red, 70)
    nir[:, : SHAPE[1] * 3] = 200           # west half: dense canopy (NDVI > 0.6)
    red[:, : SHAPE[1] * 3] = 20
    return write_aster_l1b(tmp_path_factory.mktemp("adapt") / "AST_L1T_region.hdf", brightness_temperature=bt,
                           shape=SHAPE, processing_level="1T", vnir_dn={"2": red, "3N": nir})


def _tigr_file(path, data_dir, n=16):
    """The first ``n`` tropical TIGR-2000 records (26 lines each) as the user's regional profile file."""
    lines = [ln for ln in (data_dir / "profiles/tigr2000/tigr2000_v1.2_43lev_2231.dsf").read_text().splitlines()
             if ln.strip()]
    path.write_text("\n".join(lines[: 26 * n]) + "\n")
    return path


@pytest.mark.slow
def test_adapt_writes_a_bundle_with_new_class_students(trained_bundle_path, vegetated_scene, data_dir, tmp_path):
    from akkd_scale.cli import main
    from akkd_scale.models.bundle import load_bundle

    profiles = _tigr_file(tmp_path / "region.dsf", data_dir)
    out = tmp_path / "local_bundle"
    args = ["adapt", str(vegetated_scene), "--bundle", str(trained_bundle_path), "--out", str(out), "--profiles",
            str(profiles), "--samples", "8000", "--pixels-per-class", "200", "--epochs", "3"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    adapted = load_bundle(out)
    original = json.loads((trained_bundle_path / "manifest.json").read_text())
    manifest = adapted.manifest
    assert manifest["provenance"]["adapted_from"]["sha256"] == load_bundle(trained_bundle_path).sha256
    assert manifest["provenance"]["scenes"][0]["path"].endswith("AST_L1T_region.hdf")
    assert "user profiles" in manifest["provenance"]["atmospheres"]
    new = manifest["distillation"]["adaptation"]["classes"]
    seen = manifest["distillation"]["adaptation"]["scene_pixels_per_class"]
    assert seen["tree_cover"] > 0 and "tree_cover" in new  # the canopy half of the scene
    assert all(seen[name] > 0 for name in new) and seen["built_up"] == 0 and "built_up" not in new
    for name in new:
        code = [e["name"] for e in manifest["models"]["students"]["land_cover"]].index(name)
        before = original["models"]["students"]["land_cover"][code]
        after = manifest["models"]["students"]["land_cover"][code]
        assert after["kd"] is not None
        assert before["kd"] is None or original["files"][before["kd"]["onnx"]] != manifest["files"][after["kd"]["onnx"]]
    # teacher and strata students are carried over unchanged, and so are the fusion rows of what was not adapted
    assert manifest["files"]["teacher.onnx"] == original["files"]["teacher.onnx"]
    codes = sorted(LAND_COVER_CLASSES.index(name) for name in new)
    assert manifest["fusion"]["adapted_rows"] == codes
    for s in range(len(original["fusion"]["teacher_weight"])):
        same = manifest["fusion"]["teacher_weight"][s] == original["fusion"]["teacher_weight"][s]
        kept = manifest["fusion"]["calibration"]["factor"]["fusion"][s] == \
            original["fusion"]["calibration"]["factor"]["fusion"][s]
        assert (same and kept) or s in codes, s
    assert manifest["fusion"]["calibration"]["cwv_coefficients"] == \
        original["fusion"]["calibration"]["cwv_coefficients"]
    bt = np.full((3, 5), 295.0, np.float32)
    assert np.isfinite(adapted.predict(bt, np.zeros(3), land_cover=np.array([2, 5, -1]))["fusion"]["lst"]).all()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "exists (expected a new bundle directory)" in again.output


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_adapt_refuses_scenes_without_land_cover(tiny_bundle_path, tmp_path):
    from akkd_scale.workflows.adapt import AdaptConfig, adapt_bundle
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    night = write_aster_l1b(tmp_path / "AST_L1T_night.hdf", shape=SHAPE, processing_level="1T", include_vnir=False)
    with pytest.raises(InputError, match=r"AST_L1T_night\.hdf: land_cover: no pixel has a land-cover class "
                                         r"\(expected day scenes with VNIR \(NDVI\) or a land-cover map"):
        adapt_bundle([night], tiny_bundle_path, tmp_path / "out", config=AdaptConfig(n_samples=100))
