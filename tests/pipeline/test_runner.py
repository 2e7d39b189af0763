"""run_scenes and `akkd-scale run` on a real LocalCluster: bad scenes, resume, interruption, worker death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from dask.utils import key_split
from distributed import WorkerPlugin
from pipeline_checks import assert_same, reference, stored

from akkd_scale.cli import main
from akkd_scale.errors import BundleError
from akkd_scale.pipeline import bundle_ref, group_status, run_scenes, scene_group

GOOD = ("good_a", "good_b", "good_c")
BAD = ("truncated", "not_hdf", "vnir_only")


def test_cli_batch_with_bad_scenes(scenes, bundle_path, client, tmp_path):
    out = tmp_path / "results.zarr"
    order = ["good_a", "truncated", "not_hdf", "good_b", "vnir_only", "good_c"]
    args = [
        "run",
        *[str(scenes[k]) for k in order],
        "--out",
        str(out),
        "--bundle",
        str(bundle_path),
        "--scheduler",
        client.scheduler.address,
        "--chunks",
        "32",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "3 complete" in result.output and "3 failed" in result.output, result.output
    for key in GOOD:
        group = scene_group(scenes[key])
        assert group_status(out, group) == "complete"
        assert_same(stored(out, group), reference(scenes[key], bundle_path))
    for key in BAD:
        assert group_status(out, scene_group(scenes[key])) != "complete"
        line = next(line for line in result.output.splitlines() if scenes[key].name in line)
        assert "failed" in line, line


def test_run_scenes_table_and_resume(scenes, bundle_path, client, tmp_path):
    out = tmp_path / "results.zarr"
    paths = [scenes[k] for k in ("good_a", "not_hdf", "good_b")]
    first = run_scenes(paths, out, bundle=bundle_path, chunks=24, client=client)
    assert list(first["status"]) == ["complete", "failed", "complete"]
    assert list(first["pixels"])[::2] == [48 * 56, 48 * 56]
    assert str(scenes["not_hdf"]) in first.loc[1, "error"] or "not_hdf" in first.loc[1, "error"]
    before = {k: stored(out, scene_group(scenes[k])) for k in ("good_a", "good_b")}

    # An interrupted scene: marker back to incomplete and one chunk's data destroyed.
    group_b = scene_group(scenes["good_b"])
    zarr.open_group(str(out), path=group_b, mode="r+").attrs["akkd_status"] = "incomplete"
    lst = zarr.open_array(str(out), path=f"{group_b}/lst", mode="r+")
    lst[:24, :24] = -1.0
    second = run_scenes(paths, out, bundle=bundle_path, chunks=24, client=client)
    assert list(second["status"]) == ["skipped", "failed", "complete"]
    assert_same(stored(out, group_b), before["good_b"])

    third = run_scenes(paths[:1], out, bundle=bundle_path, chunks=24, client=client, overwrite=True)
    assert list(third["status"]) == ["complete"]
    assert_same(stored(out, scene_group(scenes["good_a"])), before["good_a"])


def test_chunking_invariance(scenes, bundle_path, client, tmp_path):
    paths = [scenes["good_b"]]  # has fill pixels
    heads = ("fusion", "teacher", "student")
    for chunks in (16, 25, 48):
        run_scenes(paths, tmp_path / f"c{chunks}.zarr", bundle=bundle_path, heads=heads, chunks=chunks, client=client)
    names = ("lst", "emissivity", "lst_uncertainty", "qc", "lst_teacher", "emissivity_student")
    group = scene_group(paths[0])
    base = stored(tmp_path / "c16.zarr", group, names)
    assert np.isnan(base["lst"][:5, :9]).all() and (base["qc"][:5, :9] & 1).all()
    assert np.isfinite(base["lst"][10:, 10:]).all()
    for chunks in (25, 48):
        assert_same(stored(tmp_path / f"c{chunks}.zarr", group, names), base)
    assert_same(base, {k: v for k, v in reference(paths[0], bundle_path, heads).items() if k in names})


def test_missing_bundle_is_a_clear_error(tmp_path, scenes, bundle_path, monkeypatch):
    with pytest.raises(BundleError, match="does not exist"):
        bundle_ref(tmp_path / "no-bundle")
    monkeypatch.setenv("AKKD_BUNDLE", str(tmp_path / "no-default"))
    with pytest.raises(BundleError, match="no-default: no default model bundle"):
        run_scenes([scenes["good_a"]], tmp_path / "o.zarr")
    monkeypatch.setenv("AKKD_BUNDLE", str(bundle_path))
    assert bundle_ref(None) == bundle_ref(bundle_path)
    result = CliRunner().invoke(
        main, ["run", str(scenes["good_a"]), "--out", str(tmp_path / "o.zarr"), "--bundle", str(tmp_path)]
    )
    assert result.exit_code != 0 and "manifest.json" in result.output


def test_interrupted_run_then_rerun_gives_same_arrays(scenes, bundle_path, client, tmp_path):
    """Kill `akkd-scale run` (and its LocalCluster) after the first scene, rerun, compare."""
    paths = [scenes[k] for k in GOOD] + [scenes["good_a"].with_name("AST_L1B_copy_d.hdf")]
    paths[-1].write_bytes(scenes["good_a"].read_bytes())
    out = tmp_path / "killed.zarr"
    command = [
        sys.executable,
        "-m",
        "akkd_scale.cli",
        "run",
        *map(str, paths),
        "--out",
        str(out),
        "--bundle",
        str(bundle_path),
        "--workers",
        "1",
        "--threads-per-worker",
        "1",
        "--chunks",
        "8",
        "--dashboard-address",
        "",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    groups = [scene_group(p) for p in paths]
    try:
        deadline = time.monotonic() + 120
        while not any(group_status(out, g) == "complete" for g in groups):
            assert process.poll() is None, "run ended before any scene completed"
            assert time.monotonic() < deadline, "no scene completed in 120 s"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and the worker processes it started
        process.wait()
    statuses = [group_status(out, g) for g in groups]
    assert statuses.count("complete") < len(groups), statuses

    table = run_scenes(paths, out, bundle=bundle_path, chunks=8, client=client)
    assert set(table["status"]) <= {"complete", "skipped"}
    assert list(table["status"]).count("skipped") == statuses.count("complete")
    clean = tmp_path / "clean.zarr"
    run_scenes(paths, clean, bundle=bundle_path, chunks=8, client=client)
    for group in groups:
        assert_same(stored(out, group), stored(clean, group))


class TruncateOnFirstKernel(WorkerPlugin):
    """Cut ``victim`` to 64 bytes when the first retrieval task starts: its remaining reads fail on workers."""

    def __init__(self, victim: str):
        self.victim = victim

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and key_split(key) == "retrieve_block" and os.path.getsize(self.victim) > 64:
            with open(self.victim, "r+b") as handle:
                handle.truncate(64)


def test_scene_failing_on_the_cluster_is_reported_and_others_finish(scenes, bundle_path, client, tmp_path):
    victim = tmp_path / "AST_L1B_victim.hdf"
    victim.write_bytes(scenes["good_c"].read_bytes())
    out = tmp_path / "failing.zarr"
    client.register_plugin(TruncateOnFirstKernel(str(victim)), name="truncate")
    try:
        table = run_scenes(
            [victim, scenes["good_a"]], out, bundle=bundle_path, chunks=8, client=client, max_in_flight=1
        )
    finally:
        client.unregister_worker_plugin("truncate")
    assert list(table["status"]) == ["failed", "complete"], table
    assert victim.name in table.loc[0, "error"]
    assert group_status(out, scene_group(victim)) == "incomplete"
    assert_same(stored(out, scene_group(scenes["good_a"])), reference(scenes["good_a"], bundle_path))


class KillOnce(WorkerPlugin):
    """Kill the worker process (os._exit) right after its ``after``-th retrieval task, once per marker."""

    def __init__(self, marker: str, after: int):
        self.marker, self.after, self.count = marker, after, 0

    def transition(self, key, start, finish, **kwargs):
        if finish == "memory" and key_split(key) == "retrieve_block":
            self.count += 1
            if self.count >= self.after and not os.path.exists(self.marker):
                Path(self.marker).write_text(str(os.getpid()))
                os._exit(1)


def test_worker_killed_mid_run_gives_identical_output(scenes, bundle_path, client, tmp_path):
    paths = [scenes[k] for k in GOOD]
    clean = tmp_path / "clean.zarr"
    run_scenes(paths, clean, bundle=bundle_path, chunks=8, client=client)
    marker = tmp_path / "killed.pid"
    before = set(client.nthreads())
    client.register_plugin(KillOnce(str(marker), after=5), name="kill-once")
    try:
        table = run_scenes(paths, tmp_path / "faulty.zarr", bundle=bundle_path, chunks=8, client=client)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists(), "no worker was killed"
    client.wait_for_workers(2, timeout=60)
    assert set(client.nthreads()) != before  # a worker really was replaced
    assert list(table["status"]) == ["complete"] * 3
    for path in paths:
        assert_same(stored(tmp_path / "faulty.zarr", scene_group(path)), stored(clean, scene_group(path)))


def test_threaded_executor_gives_the_cluster_numbers_bit_for_bit(scenes, bundle_path, client, tmp_path):
    """No-cluster mode (Dask's threaded scheduler) vs the LocalCluster, and auto chunks vs explicit ones."""
    from akkd_scale.pipeline.runner import auto_chunks, choose_executor

    paths = [scenes["good_b"], scenes["good_c"]]
    heads = ("fusion", "teacher", "tes")
    names = ("lst", "emissivity", "lst_uncertainty", "qc", "lst_teacher", "lst_tes", "emissivity_tes")
    threaded = run_scenes(
        paths,
        tmp_path / "threads.zarr",
        bundle=bundle_path,
        heads=heads,
        chunks="auto",
        atmosphere="tropical",
        executor="threads",
    )
    clustered = run_scenes(
        paths,
        tmp_path / "cluster.zarr",
        bundle=bundle_path,
        heads=heads,
        chunks=16,
        atmosphere="tropical",
        client=client,
    )
    assert list(threaded["status"]) == list(clustered["status"]) == ["complete", "complete"]
    for path in paths:
        group = scene_group(path)
        assert_same(stored(tmp_path / "threads.zarr", group, names), stored(tmp_path / "cluster.zarr", group, names))
    assert zarr.open_array(str(tmp_path / "threads.zarr"), path=f"{scene_group(paths[0])}/lst").chunks == (48, 28)
    assert auto_chunks(700, 830) == {"y": 700, "x": 415} and auto_chunks(4096, 4096) == {"y": 1024, "x": 1024}
    assert choose_executor("auto", n_scenes=1, cluster_given=False) == "threads"
    assert choose_executor("auto", n_scenes=1, cluster_given=True) == "cluster"
    assert choose_executor("auto", n_scenes=10_000, cluster_given=False) == "cluster"
