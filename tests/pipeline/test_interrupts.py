"""Ctrl-C in a terminal (SIGINT to the whole process group): the CLI owns it in both executors — one line,
exit 130, no dependency tracebacks, and a rerun of the same command resumes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from akkd_scale.models.bundle import default_bundle_path
from akkd_scale.simulate.l1b_writer import write_aster_l1b

SHAPE = (700, 830)  # standard scenes with the shipped 4 x 256 teacher: seconds per scene, time to interrupt


@pytest.fixture(scope="module")
def standard_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("standard")
    return [write_aster_l1b(root / f"AST_L1B_standard_{i}.hdf", shape=SHAPE) for i in range(4)]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["threads", "cluster"])
def test_ctrl_c_prints_one_line_exits_130_and_the_rerun_resumes(executor, standard_scenes, tmp_path):
    out = tmp_path / "r.zarr"
    command = [sys.executable, "-m", "akkd_scale.cli", "run", *map(str, standard_scenes), "--out", str(out),
               "--bundle", str(default_bundle_path()), "--executor", executor, "--dashboard-address", ""]
    if executor == "cluster":
        command += ["--workers", "2", "--threads-per-worker", "1"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # its own process group, as a terminal's foreground job
    deadline = time.monotonic() + 120
    while not any(out.glob("AST_L1B_standard_*")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)  # scenes are being written
    assert run.poll() is None, run.communicate()
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and "scene/s" not in line and "scenes:" not in line]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("interrupted; ") and lines[0].endswith(
        " to redo — rerun the same command to resume"), lines[0]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "4 complete" in rerun.stdout or "complete" in rerun.stdout.splitlines()[-1], rerun.stdout
