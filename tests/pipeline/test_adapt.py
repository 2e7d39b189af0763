"""Regional adaptation (``akkd-scale adapt``): a tiny real run — scene pixels with the NDVI rules, a small LOWTRAN
simulation with user profiles, class students distilled — gives a loadable bundle whose class students differ;
per class the adapted students are kept only when they beat the input bundle's on the held-out (test-split)
rows of the local simulation, and the choice is recorded and printed."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.errors import InputError
from akkd_scale.workflows.adapt import adaptation_table, air_mass, keep_adapted

SHAPE = (24, 28)
#: The local simulation of the slow tests, made once per module (same scene, profiles and size each time).
_SIMULATIONS: dict = {}


def test_air_mass_by_latitude_band_and_season():
    assert air_mass(10.0, 1) == "tropical" and air_mass(-29.0, 7) == "tropical"
    assert air_mass(45.0, 7) == "midlatitude_summer" and air_mass(45.0, 1) == "midlatitude_winter"
    assert air_mass(-45.0, 1) == "midlatitude_summer" and air_mass(-45.0, 7) == "midlatitude_winter"
    assert air_mass(75.0, 6) == "polar_summer" and air_mass(-75.0, 6) == "polar_winter"


def test_keep_adapted_only_when_strictly_better():
    assert keep_adapted(0.50, 0.49) and not keep_adapted(0.50, 0.50) and not keep_adapted(0.50, 0.61)


def test_adaptation_table_lists_every_class_and_what_was_kept():
    by_class = {
        "water": {
            "kept": "adapted",
            "input_students": "class",
            "scene_pixels": 900,
            "n_fit": 700,
            "n_held_out": 120,
            "held_out_mae_input": 0.5,
            "held_out_mae_adapted": 0.4,
        },
        "tree_cover": {
            "kept": "input",
            "input_students": "global",
            "scene_pixels": 10,
            "n_fit": 650,
            "n_held_out": 80,
            "held_out_mae_input": 0.4,
            "held_out_mae_adapted": 0.556,
            "reason": "adapted student not better on the held-out rows",
        },
        "built_up": {
            "kept": "input",
            "input_students": "class",
            "scene_pixels": 0,
            "n_fit": 12,
            "n_held_out": 3,
            "held_out_mae_input": None,
            "held_out_mae_adapted": None,
            "reason": "not adapted: no scene pixels",
        },
    }
    lines = adaptation_table(by_class).splitlines()
    assert len(lines) == 2 + 3 and lines[0].startswith("| class | scene pixels | fit rows | held-out rows |")
    assert lines[2] == "| water | 900 | 700 | 120 | 0.500 (class) | 0.400 | -20 % | adapted |"
    assert lines[3] == (
        "| tree_cover | 10 | 650 | 80 | 0.400 (global) | 0.556 | +39 % "
        "| input (adapted student not better on the held-out rows) |"
    )
    assert lines[4] == "| built_up | 0 | 12 | 3 | – (class) | – |  | input (not adapted: no scene pixels) |"


@pytest.fixture
def local_simulation(monkeypatch):
    """``simulate_training_set`` run once per module; each adapt run gets a copy (``.last``) with the LST shifted
    per class in the chosen splits: fill ``.shifts`` with {class name: (kelvin, splits)}."""
    import akkd_scale.simulate.trainingset as trainingset

    real = trainingset.simulate_training_set
    state = SimpleNamespace(shifts={}, last=None)

    def simulate(n_samples, **kwargs):
        key = (n_samples, kwargs["seed"], tuple(kwargs["altitudes"]), kwargs["profiles"].sizes["profile"])
        if key not in _SIMULATIONS:
            _SIMULATIONS[key] = real(n_samples, **kwargs)
        ds = _SIMULATIONS[key].copy(deep=True)
        split = np.asarray(ds["split"].values).astype(str)
        lst = ds["lst"].values.copy()
        for name, (kelvin, splits) in state.shifts.items():
            lst[(ds["land_cover"].values == LAND_COVER_CLASSES.index(name)) & np.isin(split, splits)] += kelvin
        ds["lst"] = ds["lst"].copy(data=lst)
        state.last = ds
        return ds

    monkeypatch.setattr(trainingset, "simulate_training_set", simulate)
    return state


@pytest.fixture(scope="module")
def vegetated_scene(tmp_path_factory):
    """A day scene whose NDVI rules give tree cover (west) and sparse vegetation/bare soil (east)."""
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    rng = np.random.default_rng(5)
    bt = 296.0 + rng.normal(0, 1.5, (5,) + SHAPE) + np.array([-3.0, -2.5, -2.0, 0.0, -0.4])[:, None, None]
    red = np.full((SHAPE[0] * 6, SHAPE[1] * 6), 60, np.uint8)
    nir = np.full_like(red, 70)
    nir[:, : SHAPE[1] * 3] = 200  # west half: dense canopy (NDVI > 0.6)
    red[:, : SHAPE[1] * 3] = 20
    return write_aster_l1b(
        tmp_path_factory.mktemp("adapt") / "AST_L1T_region.hdf",
        brightness_temperature=bt,
        shape=SHAPE,
        processing_level="1T",
        vnir_dn={"2": red, "3N": nir},
    )


def _tigr_file(path, data_dir, n=16):
    """The first ``n`` tropical TIGR-2000 records (26 lines each) as the user's regional profile file."""
    lines = [
        ln
        for ln in (data_dir / "profiles/tigr2000/tigr2000_v1.2_43lev_2231.dsf").read_text().splitlines()
        if ln.strip()
    ]
    path.write_text("\n".join(lines[: 26 * n]) + "\n")
    return path


def _adapt_args(scene, bundle, out, profiles):
    return [
        "adapt",
        str(scene),
        "--bundle",
        str(bundle),
        "--out",
        str(out),
        "--profiles",
        str(profiles),
        "--samples",
        "8000",
        "--pixels-per-class",
        "200",
        "--epochs",
        "3",
    ]


@pytest.mark.slow
def test_adapt_writes_a_bundle_with_new_class_students(
    trained_bundle_path, vegetated_scene, data_dir, tmp_path, local_simulation
):
    from akkd_scale.cli import main
    from akkd_scale.models.bundle import load_bundle

    profiles = _tigr_file(tmp_path / "region.dsf", data_dir)
    out = tmp_path / "local_bundle"
    args = _adapt_args(vegetated_scene, trained_bundle_path, out, profiles)
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
    by_class = manifest["distillation"]["adaptation"]["by_class"]
    assert seen["tree_cover"] > 0 and by_class["tree_cover"]["held_out_mae_adapted"] is not None  # the canopy half
    assert all(seen[name] > 0 for name in new) and seen["built_up"] == 0 and "built_up" not in new
    assert sorted(new) == sorted(name for name, r in by_class.items() if r["kept"] == "adapted")
    for name in new:
        code = [e["name"] for e in manifest["models"]["students"]["land_cover"]].index(name)
        before = original["models"]["students"]["land_cover"][code]
        after = manifest["models"]["students"]["land_cover"][code]
        assert after["kd"] is not None
        assert before["kd"] is None or original["files"][before["kd"]["onnx"]] != manifest["files"][after["kd"]["onnx"]]
    # teacher and strata students are carried over unchanged, and so are the fusion rows of what was not adapted
    assert manifest["files"]["teacher.onnx"] == original["files"]["teacher.onnx"]
    codes = sorted(LAND_COVER_CLASSES.index(name) for name in new)
    # the adapted classes' rows and their rules entries (rules_offset + class)
    offset = original["fusion"]["rules_offset"]
    assert manifest["fusion"]["rules_offset"] == offset
    codes = codes + [offset + c for c in codes]
    assert manifest["fusion"]["adapted_rows"] == codes
    for s in range(len(original["fusion"]["teacher_weight"])):
        same = manifest["fusion"]["teacher_weight"][s] == original["fusion"]["teacher_weight"][s]
        kept = (
            manifest["fusion"]["calibration"]["factor"]["fusion"][s]
            == original["fusion"]["calibration"]["factor"]["fusion"][s]
        )
        assert (same and kept) or s in codes, s
    assert (
        manifest["fusion"]["calibration"]["cwv_coefficients"] == original["fusion"]["calibration"]["cwv_coefficients"]
    )
    bt = np.full((3, 5), 295.0, np.float32)
    assert np.isfinite(adapted.predict(bt, np.zeros(3), land_cover=np.array([2, 5, -1]))["fusion"]["lst"]).all()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "exists (expected a new bundle directory)" in again.output


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_adapt_refuses_scenes_without_land_cover(tiny_bundle_path, tmp_path):
    from akkd_scale.simulate.l1b_writer import write_aster_l1b
    from akkd_scale.workflows.adapt import AdaptConfig, adapt_bundle

    night = write_aster_l1b(tmp_path / "AST_L1T_night.hdf", shape=SHAPE, processing_level="1T", include_vnir=False)
    with pytest.raises(
        InputError,
        match=r"AST_L1T_night\.hdf: land_cover: no pixel has a land-cover class "
        r"\(expected day scenes with VNIR \(NDVI\) or a land-cover map",
    ):
        adapt_bundle([night], tiny_bundle_path, tmp_path / "out", config=AdaptConfig(n_samples=100))


@pytest.mark.slow
def test_adapt_keeps_the_input_students_unless_the_adapted_ones_are_better_on_held_out_rows(
    trained_bundle_path, vegetated_scene, data_dir, tmp_path, local_simulation
):
    """Tree cover's local LST shifted by +8 K in the fit part only (bad adaptation data): its adapted students learn
    the shift and lose on the unshifted held-out rows, so the input bundle's are kept. Bare rock's shifted
    by +8 K in every split (a region unlike the input bundle's training): the adapted ones win and are kept."""
    from akkd_scale.cli import main
    from akkd_scale.models.bundle import load_bundle
    from akkd_scale.training.data import dataset_rows

    bad, better = "tree_cover", "bare_rock_desert"
    local_simulation.shifts.update(
        {bad: (8.0, ("train", "validation")), better: (8.0, ("train", "validation", "test"))}
    )
    out = tmp_path / "local_bundle"
    args = _adapt_args(vegetated_scene, trained_bundle_path, out, _tigr_file(tmp_path / "region.dsf", data_dir))
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    original = json.loads((trained_bundle_path / "manifest.json").read_text())
    adaptation = manifest["distillation"]["adaptation"]
    by_class = adaptation["by_class"]
    assert list(by_class) == list(LAND_COVER_CLASSES)
    assert by_class[bad]["kept"] == "input" and bad not in adaptation["classes"]
    assert by_class[bad]["held_out_mae_adapted"] > by_class[bad]["held_out_mae_input"] + 1.0
    assert by_class[better]["kept"] == "adapted" and better in adaptation["classes"], result.output
    assert by_class[better]["held_out_mae_adapted"] < by_class[better]["held_out_mae_input"] - 1.0
    assert by_class["built_up"]["kept"] == "input" and by_class["built_up"]["reason"].startswith(
        "not adapted: no scene pixels"
    )
    assert by_class["built_up"]["held_out_mae_input"] is None
    assert sorted(adaptation["classes"]) == sorted(n for n, r in by_class.items() if r["kept"] == "adapted")

    # the written students: the input bundle's files for the class that kept them, new ones for the adapted class
    def entry(m, name):
        return m["models"]["students"]["land_cover"][LAND_COVER_CLASSES.index(name)]

    for kind in ("kd", "baseline"):
        assert (
            manifest["files"][entry(manifest, bad)[kind]["onnx"]]
            == original["files"][entry(original, bad)[kind]["onnx"]]
        )
    assert (
        manifest["files"][entry(manifest, better)["kd"]["onnx"]]
        != original["files"][entry(original, better)["kd"]["onnx"]]
    )
    rows = manifest["fusion"]["adapted_rows"]
    assert LAND_COVER_CLASSES.index(better) in rows and LAND_COVER_CLASSES.index(bad) not in rows

    # the recorded held-out MAE, recomputed with the written bundles' ONNX students on the test split
    missing = load_bundle(trained_bundle_path).manifest["distillation"].get("atmosphere_missing_fraction", 0.0)
    test = dataset_rows(
        local_simulation.last, "test", load_bundle(out).input_names, seed=2, atmosphere_missing_fraction=missing
    )
    for name, path, key in ((bad, trained_bundle_path, "held_out_mae_input"), (better, out, "held_out_mae_adapted")):
        bundle, code = load_bundle(path), LAND_COVER_CLASSES.index(name)
        x, y = test.x[test.land_cover == code], test.y[test.land_cover == code]
        extra = dict(zip(bundle.input_names[6:], x[:, 6:].T))
        lst = bundle.predict(x[:, :5], x[:, 5], heads=("student",), extra=extra, land_cover=code)["student"]["lst"]
        assert len(x) == by_class[name]["n_held_out"] >= 50
        assert np.mean(np.abs(lst - y[:, 0])) == pytest.approx(by_class[name][key], abs=2e-3)

    # the printed table
    printed = {ln.split("|")[1].strip(): ln for ln in result.output.splitlines() if ln.startswith("| ")}
    assert set(LAND_COVER_CLASSES) <= set(printed)
    assert printed[bad].endswith("| input (adapted student not better on the held-out rows) |")
    assert printed[better].endswith("| adapted |")
    assert f"| {by_class[better]['held_out_mae_adapted']:.3f} |" in printed[better]


@pytest.mark.slow
def test_adapt_where_no_class_wins_writes_the_input_bundles_students(
    trained_bundle_path, vegetated_scene, data_dir, tmp_path, local_simulation, caplog
):
    """Tree cover, the only class with scene pixels and 900 simulated rows, gets +8 K labels in the fit part only:
    nothing is adapted, the written bundle has the input bundle's students and fusion, and a warning says so."""
    from akkd_scale.workflows.adapt import AdaptConfig, adapt_bundle

    local_simulation.shifts["tree_cover"] = (8.0, ("train", "validation"))
    out = tmp_path / "local_bundle"
    config = AdaptConfig(n_samples=8000, pixels_per_class=200, epochs=3, min_class_samples=900)
    with caplog.at_level(logging.INFO, logger="akkd_scale"):
        adapt_bundle(
            [vegetated_scene],
            trained_bundle_path,
            out,
            profiles=_tigr_file(tmp_path / "r.dsf", data_dir),
            config=config,
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no adapted class student was better than the input bundle's" in m for m in warnings), warnings
    manifest = json.loads((out / "manifest.json").read_text())
    original = json.loads((trained_bundle_path / "manifest.json").read_text())
    by_class = manifest["distillation"]["adaptation"]["by_class"]
    assert manifest["distillation"]["adaptation"]["classes"] == {}
    assert all(r["kept"] == "input" for r in by_class.values())
    assert [n for n, r in by_class.items() if r["held_out_mae_adapted"] is not None] == ["tree_cover"]
    assert "< 900 simulated rows" in by_class["bare_rock_desert"]["reason"]
    assert {k: v for k, v in manifest["fusion"].items() if k != "adapted_rows"} == {
        k: v for k, v in original["fusion"].items() if k != "adapted_rows"
    }
    assert manifest["fusion"]["adapted_rows"] == []
    onnx = {f: h for f, h in manifest["files"].items() if f.endswith(".onnx")}
    assert onnx == {f: h for f, h in original["files"].items() if f.endswith(".onnx")}
