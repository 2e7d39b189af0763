"""Result-store integrity and bad input, one reproducer per case of the store-safety issue: exclusive
writer, safe --out, completeness you can trust, no endless waits, smaller CLI cases."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from dask.utils import key_split
from distributed import WorkerPlugin
from pipeline_checks import assert_same, reference, stored

from akkd_scale.cli import main
from akkd_scale.errors import BundleError, ClusterError, StoreError
from akkd_scale.pipeline import group_status, run_scenes, scene_group
from akkd_scale.pipeline.cluster import get_client
from akkd_scale.pipeline.runner import _describe, verify_store
from akkd_scale.pipeline.store import LOCK_FILE, StoreLock, mark_complete
from akkd_scale.simulate.l1b_writer import write_aster_l1b

SHAPE = (48, 56)  # the pipeline fixtures' scene size


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# 1. exclusive writer -------------------------------------------------------------------------------


def test_second_run_on_a_locked_store_is_refused_with_the_owner(scenes, bundle_path, client, tmp_path):
    import socket

    import psutil

    out = tmp_path / "locked.zarr"
    run_scenes([scenes["good_a"]], out, bundle=bundle_path, chunks=24, client=client)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the other, live run
    try:
        (out / LOCK_FILE).write_text(
            json.dumps(
                {
                    "pid": other.pid,
                    "process_started": psutil.Process(other.pid).create_time(),
                    "host": socket.gethostname(),
                    "started": "2026-01-01T00:00:00+00:00",
                    "command_line": "akkd-scale run first.hdf",
                }
            )
        )
        with pytest.raises(StoreError, match=rf"locked by another run \(pid {other.pid} on .*akkd-scale run first"):
            run_scenes([scenes["good_b"]], out, bundle=bundle_path, chunks=24, client=client)
        assert group_status(out, scene_group(scenes["good_b"])) == "missing"
    finally:
        other.kill()
        other.wait()
    with StoreLock(out, "this run"):  # the owner is gone: its lock is stale and taken over
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_FILE).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(scenes, bundle_path, client, tmp_path, caplog):
    out = tmp_path / "stale.zarr"
    run_scenes([scenes["good_a"]], out, bundle=bundle_path, chunks=24, client=client)
    import socket

    (out / LOCK_FILE).write_text(
        json.dumps(
            {
                "pid": _dead_pid(),
                "host": socket.gethostname(),
                "process_started": 0.0,
                "started": "2026-01-01T00:00:00+00:00",
            }
        )
    )
    with caplog.at_level(logging.WARNING, logger="akkd_scale"):
        table = run_scenes([scenes["good_b"]], out, bundle=bundle_path, chunks=24, client=client)
    assert list(table["status"]) == ["complete"]
    assert "taking over a stale lock" in caplog.text


@pytest.mark.slow
def test_two_processes_on_one_store_one_runs_one_is_refused(scenes, bundle_path, tmp_path):
    out = tmp_path / "two.zarr"
    paths = [str(scenes[k]) for k in ("good_a", "good_b", "good_c")]
    command = [
        sys.executable,
        "-m",
        "akkd_scale.cli",
        "run",
        *paths,
        "--out",
        str(out),
        "--bundle",
        str(bundle_path),
        "--workers",
        "1",
        "--chunks",
        "8",
        "--dashboard-address",
        "",
    ]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / LOCK_FILE).exists():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1 and "locked by another run (pid" in second.stderr, second.stderr
    assert first.wait(timeout=180) == 0, first.communicate()
    for path in paths:
        assert group_status(out, scene_group(path)) == "complete"
        assert_same(stored(out, scene_group(path)), reference(path, bundle_path))


# 2. safe output location ---------------------------------------------------------------------------


def test_foreign_directory_as_out_is_refused_and_untouched(scenes, bundle_path, tmp_path):
    folder = tmp_path / "my_folder"
    (folder / scene_group(scenes["good_a"])).mkdir(parents=True)
    kept = folder / scene_group(scenes["good_a"]) / "input.hdf"
    kept.write_bytes(scenes["good_a"].read_bytes())
    (folder / "README.txt").write_text("mine")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    result = CliRunner().invoke(main, ["run", str(kept), "--out", str(folder), "--bundle", str(bundle_path)])
    assert result.exit_code == 1
    assert "is not a result store written by akkd-scale; refusing to write into it" in result.output
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before and kept.stat().st_size > 0


def test_file_or_foreign_zarr_as_out_is_refused(scenes, bundle_path, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="notes.txt: exists and is a file"):
        run_scenes([scenes["good_a"]], a_file, bundle=bundle_path)
    foreign = tmp_path / "other.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("data", shape=(3,), dtype="f4")
    with pytest.raises(StoreError, match="other.zarr: exists and is not a result store"):
        run_scenes([scenes["good_a"]], foreign, bundle=bundle_path)
    assert "data" in zarr.open_group(str(foreign), mode="r")


def test_a_foreign_node_at_a_scene_group_is_never_replaced(scenes, bundle_path, client, tmp_path):
    out = tmp_path / "store.zarr"
    run_scenes([scenes["good_a"]], out, bundle=bundle_path, chunks=24, client=client)
    zarr.open_group(str(out), mode="a").create_group(scene_group(scenes["good_b"])).attrs["owner"] = "user"
    table = run_scenes([scenes["good_b"]], out, bundle=bundle_path, chunks=24, client=client)
    assert table.loc[0, "status"] == "failed" and "was not written by akkd-scale" in table.loc[0, "error"]
    assert zarr.open_group(str(out), path=scene_group(scenes["good_b"]), mode="r").attrs["owner"] == "user"


# 3. completeness you can trust ---------------------------------------------------------------------


def test_rerun_redoes_changed_input_more_heads_and_other_chunks(scenes, bundle_path, client, tmp_path, caplog):
    out = tmp_path / "stale.zarr"
    scene = tmp_path / "AST_L1B_same_stem.hdf"
    scene.write_bytes(scenes["good_a"].read_bytes())
    assert list(run_scenes([scene], out, bundle=bundle_path, chunks=24, client=client)["status"]) == ["complete"]
    assert list(run_scenes([scene], out, bundle=bundle_path, chunks=24, client=client)["status"]) == ["skipped"]
    scene.write_bytes(scenes["good_c"].read_bytes())  # another file under the same name
    with caplog.at_level(logging.INFO, logger="akkd_scale"):
        table = run_scenes([scene], out, bundle=bundle_path, chunks=24, client=client)
    assert list(table["status"]) == ["complete"] and "redoing AST_L1B_same_stem: source_sha256" in caplog.text
    assert_same(stored(out, scene_group(scene)), reference(scene, bundle_path))
    table = run_scenes([scene], out, bundle=bundle_path, heads=("fusion", "teacher"), chunks=24, client=client)
    assert list(table["status"]) == ["complete"] and "lst_teacher" in zarr.open_group(str(out), path=scene.stem)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="akkd_scale"):
        run_scenes([scene], out, bundle=bundle_path, heads=("fusion", "teacher"), chunks=16, client=client)
    assert "chunks {'y': 24, 'x': 24} → {'y': 16, 'x': 16}" in caplog.text


def test_completion_is_one_metadata_write_with_its_record(tmp_path, monkeypatch):
    """A run killed while a scene is marked complete must not leave it complete without its record: every
    state of the group's metadata that says complete carries the record (and keeps the earlier attributes)."""
    from akkd_scale.pipeline.store import RECORD, STATUS

    out = tmp_path / "one.zarr"
    node = zarr.open_group(str(out), path="scene", mode="w", zarr_format=3)
    node.attrs.put({STATUS: "incomplete", "source_file": "scene.hdf"})
    node.create_array("lst", shape=(4,), chunks=(2,), dtype="f4")[:] = 1.0
    states = []
    put = zarr.storage.LocalStore.set

    async def recording_set(self, key, value):
        await put(self, key, value)
        if key == "scene/zarr.json":
            states.append(json.loads(value.to_bytes())["attributes"])

    monkeypatch.setattr(zarr.storage.LocalStore, "set", recording_set)
    mark_complete(out, "scene", {"source_sha256": "abc"})
    assert states, "mark_complete wrote no group metadata"
    assert all(s.get(RECORD) == {"source_sha256": "abc"} for s in states if s.get(STATUS) == "complete"), states
    assert states[-1][STATUS] == "complete" and states[-1]["source_file"] == "scene.hdf"


def test_missing_chunks_are_never_marked_complete_and_are_repaired(scenes, bundle_path, client, tmp_path):
    out = tmp_path / "holes.zarr"
    paths = [scenes["good_a"]]
    run_scenes(paths, out, bundle=bundle_path, chunks=16, client=client)
    group = scene_group(paths[0])
    chunk = out / group / "lst" / "c" / "1" / "1"
    assert chunk.is_file()
    chunk.unlink()
    with pytest.raises(StoreError, match=r"not marked complete, chunks missing: lst \(11 of 12 chunks present\)"):
        mark_complete(out, group, {})
    report = verify_store(paths, out, bundle=bundle_path, chunks=16)
    assert list(report["status"]) == ["redo"] and "lst 11 of 12 chunks present" in report.loc[0, "problem"]
    result = CliRunner().invoke(
        main, ["run", str(paths[0]), "--out", str(out), "--bundle", str(bundle_path), "--chunks", "16", "--verify"]
    )
    assert result.exit_code == 1 and "redo" in result.output
    table = run_scenes(paths, out, bundle=bundle_path, chunks=16, client=client)
    assert list(table["status"]) == ["complete"] and chunk.is_file()
    assert list(verify_store(paths, out, bundle=bundle_path, chunks=16)["status"]) == ["ok"]
    assert_same(stored(out, group), reference(paths[0], bundle_path))


class TouchOnFirstKernel(WorkerPlugin):
    """Give ``victim`` a new modification time when the first retrieval task runs: an input changed mid-run
    (only the time, so that reads still running never see a half-written file)."""

    def __init__(self, victim: str):
        self.victim, self.done = victim, False

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and key_split(key) == "retrieve_block" and not self.done:
            self.done = True
            os.utime(self.victim, ns=(time.time_ns(), time.time_ns() + 10**9))


def test_input_replaced_mid_run_fails_that_scene(scenes, bundle_path, client, tmp_path):
    victim = tmp_path / "AST_L1B_changing.hdf"
    victim.write_bytes(scenes["good_b"].read_bytes())
    client.register_plugin(TouchOnFirstKernel(str(victim)), name="touch")
    try:
        table = run_scenes([victim], tmp_path / "changing.zarr", bundle=bundle_path, chunks=24, client=client)
    finally:
        client.unregister_worker_plugin("touch")
    assert table.loc[0, "status"] == "failed"
    assert "the input file changed while it was processed" in table.loc[0, "error"]
    assert group_status(tmp_path / "changing.zarr", scene_group(victim)) == "incomplete"


# 4. no endless waits -------------------------------------------------------------------------------


def test_unreachable_scheduler_fails_fast_with_one_line(tmp_path, scenes, bundle_path):
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"):
        get_client("tcp://127.0.0.1:9", connect_timeout=1.0)
    assert time.monotonic() - started < 15
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(scenes["good_a"]),
            "--out",
            str(tmp_path / "u.zarr"),
            "--bundle",
            str(bundle_path),
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--connect-timeout",
            "1",
        ],
    )
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "cannot reach" in result.output


@pytest.mark.slow
def test_run_fails_in_bounded_time_when_every_worker_is_gone(scenes, bundle_path, tmp_path):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(1)
        cluster.scale(0)
        deadline = time.monotonic() + 30
        while client.nthreads():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        table = run_scenes(
            [scenes["good_a"], scenes["good_c"]],
            tmp_path / "orphan.zarr",
            bundle=bundle_path,
            chunks=24,
            client=client,
            worker_timeout=2.0,
            max_in_flight=1,
        )
    assert time.monotonic() - started < 30
    assert list(table["status"]) == ["failed", "failed"]
    assert all("has had no worker for 2 s" in e for e in table["error"])


# 9. smaller cases ----------------------------------------------------------------------------------


def test_directory_and_duplicate_paths_do_not_abort_or_fail_the_batch(scenes, bundle_path, tmp_path, client):
    folder = tmp_path / "AST_L1B_folder.hdf"
    folder.mkdir()
    out = tmp_path / "batch.zarr"
    table = run_scenes([scenes["good_a"], folder, scenes["good_a"]], out, bundle=bundle_path, chunks=24, client=client)
    assert list(table["status"]) == ["complete", "failed", "skipped"]
    assert "is a directory (expected an ASTER L1B HDF file)" in table.loc[1, "error"]
    assert table.loc[2, "error"] == "same file as input 1 of this run"


def test_bundle_given_as_a_file_is_named(tmp_path, scenes):
    bundle_file = tmp_path / "bundle.onnx"
    bundle_file.write_bytes(b"x")
    with pytest.raises(BundleError, match="bundle.onnx: is a file; expected a bundle directory"):
        run_scenes([scenes["good_a"]], tmp_path / "o.zarr", bundle=bundle_file)


def test_a_band_without_valid_pixels_fails_the_scene(tmp_path, bundle_path, client):
    dn = np.full((5,) + SHAPE, 2000, dtype=np.uint16)
    dn[2] = 0  # B12 all fill
    path = write_aster_l1b(tmp_path / "AST_L1B_no_b12.hdf", dn=dn, shape=SHAPE)
    table = run_scenes([path], tmp_path / "empty.zarr", bundle=bundle_path, chunks=24, client=client)
    assert table.loc[0, "status"] == "failed"
    assert "band(s) B12 have no valid pixel (all fill, saturated or uncalibrated)" in table.loc[0, "error"]


def test_quicklook_of_a_foreign_store_is_an_error(tmp_path):
    foreign = tmp_path / "other.zarr"
    zarr.open_group(str(foreign), mode="w").create_group("something")
    result = CliRunner().invoke(main, ["quicklook", str(foreign), "--out", str(tmp_path / "png")])
    assert result.exit_code == 1 and "no complete scene group (of 1 groups)" in result.output


def test_no_dashboard_prints_no_link(scenes, bundle_path, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(scenes["good_a"]),
            "--out",
            str(tmp_path / "d.zarr"),
            "--bundle",
            str(bundle_path),
            "--workers",
            "1",
            "--dashboard-address",
            "",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Dask dashboard: off" in result.output and "http" not in result.output


def test_disk_full_error_names_the_store():
    text = _describe(OSError(errno.ENOSPC, "No space left on device"), "/data/results.zarr")
    assert text == "OSError: no space left on the device of /data/results.zarr ([Errno 28] No space left on device)"


def test_a_scene_without_pointing_angle_is_not_a_silent_all_nan_complete(tmp_path, bundle_path, client):
    path = write_aster_l1b(
        tmp_path / "AST_L1B_no_pointing.hdf", brightness_temperature=295.0, shape=SHAPE, pointing_angle=None
    )
    table = run_scenes([path], tmp_path / "nan.zarr", bundle=bundle_path, chunks=24, client=client)
    assert table.loc[0, "status"] == "failed"
    assert "no pixel could be retrieved (every pixel has QC bit invalid_input" in table.loc[0, "error"]
