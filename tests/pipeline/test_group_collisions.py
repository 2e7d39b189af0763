"""Two input files whose names map to one scene group, in separate runs: the second never replaces the first
file's results silently (issue: "two inputs mapping to one group")."""
from __future__ import annotations

import shutil

import numpy as np
import zarr
from click.testing import CliRunner

from akkd_scale.cli import main
from akkd_scale.pipeline import group_status, scene_group
from akkd_scale.pipeline.store import group_source


def _run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args), "--executor", "threads"])


def test_a_second_file_of_the_same_group_is_refused_then_replaced_only_with_overwrite(scenes, bundle_path, tmp_path):
    first = tmp_path / "AST_L1B ünïcødé scene é.hdf"
    second = tmp_path / "AST_L1B ünïcødé scene ü.hdf"
    shutil.copy(scenes["good_a"], first)
    shutil.copy(scenes["good_b"], second)
    assert scene_group(first) == scene_group(second)
    out = tmp_path / "r.zarr"
    assert _run(first, "--out", out, "--bundle", bundle_path).exit_code == 0
    group = scene_group(first)
    before = np.asarray(zarr.open_group(str(out), path=group, mode="r")["lst"][:])

    refused = _run(second, "--out", out, "--bundle", bundle_path)
    assert refused.exit_code == 1, refused.output
    text = " ".join(refused.output.split())
    assert (f"maps to group '{group}' of {out}, which holds the results of another file, {first.resolve()}"
            in text), text
    assert "rename one), another --out, or --overwrite to replace them" in text
    assert group_status(out, group) == "complete" and group_source(out, group) == str(first.resolve())
    after = np.asarray(zarr.open_group(str(out), path=group, mode="r")["lst"][:])
    np.testing.assert_array_equal(before, after)  # the first file's results are untouched

    assert _run(first, "--out", out, "--bundle", bundle_path).exit_code == 0  # the same file again: skipped
    replaced = _run(second, "--out", out, "--bundle", bundle_path, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert group_source(out, group) == str(second.resolve())
