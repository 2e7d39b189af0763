"""`akkd-scale simulate` end to end: AFGL profiles, real LOWTRAN terms, library spectra, Zarr out."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from akkd_scale.cli import main
from akkd_scale.simulate.trainingset import open_training_set


def test_simulate_command(tmp_path):
    pytest.importorskip("akkd_scale.physics.atmosphere")
    out = tmp_path / "train.zarr"
    args = ["simulate", "--profiles", "afgl", "--samples", "600", "--seed", "3", "--view-zenith", "0,40",
            "--altitudes", "0,2", "--mixtures", "20", "--processes", "1", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ds = open_training_set(out)
    assert ds.sizes["sample"] == 600 and ds.attrs["seed"] == 3 and ds.attrs["sources"] == "afgl"
    assert float(ds["view_zenith"].max()) <= 40
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "exists" in again.output
    bad = CliRunner().invoke(main, args[:-2] + ["--profiles", "nonsense", "--out", str(tmp_path / "x.zarr")])
    assert bad.exit_code != 0 and "nonsense" in bad.output
