"""The demo job end to end with the shipped default bundle: scenes → L1B → cluster → Zarr → PNGs → report."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from akkd_scale.cli import main
from akkd_scale.pipeline.demo import DEMO_SCENES, run_demo

SHAPE = (48, 60)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, client):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, shape=SHAPE, client=client, chunks=32)


def test_demo_writes_scenes_truth_results_and_report(demo_run):
    out, report = demo_run
    names = [name for name, *_ in DEMO_SCENES]
    for name in names:
        assert (out / "scenes" / f"{name}.hdf").is_file()
        assert (out / "scenes" / "truth" / f"{name}.nc").is_file()
    assert set(report["scenes"]) == set(names)
    saved = json.loads((out / "report.json").read_text())
    for name in names:
        methods = saved["scenes"][name]["methods"]
        assert set(methods) == {"fusion", "tes"}
        for lst in (m["lst"] for m in methods.values()):
            # fill margins are excluded; real networks and real TES: errors finite, not zero, not absurd
            assert 0 < lst["n"] < SHAPE[0] * SHAPE[1]
            assert 0.05 < lst["mae"] < 6.0
            assert lst["rmse"] >= lst["mae"]
        assert methods["fusion"]["lst"]["n"] == methods["tes"]["lst"]["n"]
    text = (out / "report.md").read_text()
    assert "| fusion |" in text and "| tes |" in text and "ε B13 MAE" in text


def test_demo_quicklooks_are_real_images(demo_run):
    out, _ = demo_run
    pngs = sorted((out / "quicklooks").glob("*.png"))
    assert len(pngs) == 6 * len(DEMO_SCENES)  # lst, ε, uncertainty, qc, lst error, ε error
    image = np.asarray(Image.open(next(p for p in pngs if p.name.endswith("_lst.png"))).convert("L"))
    assert image.std() > 10  # a rendered field, not a blank canvas


def test_quicklook_command_renders_any_result_store(demo_run, tmp_path):
    out, _ = demo_run
    result = CliRunner().invoke(main, ["quicklook", str(out / "results.zarr"), "--out", str(tmp_path), "--band", "B10"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*_emissivity_B10.png"))) == len(DEMO_SCENES)


def test_quicklook_command_with_truth_renders_error_maps(demo_run, tmp_path):
    out, _ = demo_run
    result = CliRunner().invoke(main, ["quicklook", str(out / "results.zarr"), "--out", str(tmp_path),
                                       "--truth", str(out / "scenes" / "truth")])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*_lst_error.png"))) == len(DEMO_SCENES)


def test_quicklook_refuses_a_directory_that_is_not_a_store(tmp_path):
    result = CliRunner().invoke(main, ["quicklook", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a result store" in result.output
