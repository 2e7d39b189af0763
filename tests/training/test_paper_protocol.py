"""scripts/paper_protocol.py at toy size: the paper's table beside ours, the protocol's choices, targets."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from akkd_scale.simulate.trainingset import open_training_set

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paper_protocol.py"


def _load():
    spec = importlib.util.spec_from_file_location("paper_protocol", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def protocol():
    return _load()


@pytest.fixture(scope="module")
def toy_run(protocol, tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("paper_protocol")
    return protocol.main(["--toy", "--work", str(work), "--seed", "3"]), work


@pytest.mark.slow
def test_toy_run_writes_the_table(toy_run):
    report, work = toy_run
    markdown = (work / "paper_protocol.md").read_text()
    for row in ("| Teacher (AutoKeras) | 0.348 |", "| Student, no KD | 1.065 |", "| Student, KD | 0.724 |",
                "| Fusion | – |"):
        assert row in markdown
    assert "random per sample 70/15/15" in markdown and "--toy --work" in markdown
    saved = json.loads((work / "paper_protocol.json").read_text())
    assert saved["paper"]["student"]["emissivity_mae"] == 0.0054
    assert [t["head"] for t in saved["targets"]] == ["teacher", "teacher", "student"]
    n_test = report["samples"]["test"]
    assert 350 < n_test < 560  # 15 % of 3 000
    for head in ("teacher", "student_baseline", "student", "fusion"):
        row = saved["ours"][head]
        assert row["n"] == n_test
        assert 0.0 < row["lst_mae"] < 6.0 and row["lst_pcc"] > 0.9, head
        assert 0.0 < row["emissivity_mae"] < 0.06, head
    for target in saved["targets"]:
        value = saved["ours"][target["head"]][target["metric"]]
        assert target["value"] == value
    assert (work / "bundle" / "manifest.json").is_file() and (work / "evaluation" / "evaluation.md").is_file()


@pytest.mark.slow
def test_toy_set_follows_the_stated_protocol(toy_run):
    report, work = toy_run
    ds = open_training_set(work / "trainingset.zarr").load()
    assert ds.attrs["split_by"] == "sample" and ds.attrs["sources"] == "tigr"
    assert len(set(ds["profile_id"].values)) == 8 and len(set(ds["spectrum_id"].values)) <= 16
    assert np.all(ds["surface_altitude"].values == 0) and ds["view_zenith"].max() <= 12
    split = ds["split"].values
    for column in ("profile_id", "spectrum_id"):
        assert set(ds[column].values[split == "test"]) <= set(ds[column].values[split == "train"])
    assert report["shared_test_fraction"] == 1.0
    assert "8 used" in report["choices"]["atmospheres"] and "16 spectra" in report["choices"]["surfaces"]


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_targets_met_and_missed(protocol):
    results = {"teacher": {"lst_mae": 0.349, "lst_pcc": 0.9991}, "student": {"emissivity_mae": 0.0061}}
    checks = protocol.check_targets(results)
    assert [(c["metric"], c["met"]) for c in checks] == [("lst_mae", True), ("lst_pcc", True),
                                                           ("emissivity_mae", False)]
    results["teacher"]["lst_pcc"] = math.nan
    assert protocol.check_targets(results)[1]["met"] is False


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_bad_options_exit_with_status_2(protocol, tmp_path):
    for argv in (["--samples", "0"], ["--tigr-profiles", "-1"], ["--spectra-per-class", "0"]):
        with pytest.raises(SystemExit) as raised:
            protocol.main([*argv, "--work", str(tmp_path)])
        assert raised.value.code == 2
