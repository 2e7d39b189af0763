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


def test_verify_while_another_run_holds_the_lock_names_that_run(scenes, bundle_path, tmp_path):
    """Scenes a live run is writing are incomplete on purpose: ``--verify`` says who is writing."""
    import json
    import socket
    import subprocess
    import sys

    import psutil

    from akkd_scale.pipeline.store import LOCK_FILE

    out = tmp_path / "busy.zarr"
    assert _run(scenes["good_a"], "--out", out, "--bundle", bundle_path).exit_code == 0
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the running writer
    try:
        (out / LOCK_FILE).write_text(json.dumps({
            "pid": other.pid, "process_started": psutil.Process(other.pid).create_time(),
            "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00",
            "command_line": "akkd-scale run b.hdf"}))
        result = _run(scenes["good_a"], scenes["good_b"], "--out", out, "--bundle", bundle_path, "--verify")
    finally:
        other.kill()
        other.wait()
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert (f"group missing (the store is being written by a running run: pid {other.pid} on "
            f"{socket.gethostname()}, started 2026-01-01T00:00:00+00:00: akkd-scale run b.hdf)") in text, text
    assert "AST_L1B_good_a ok" in text
