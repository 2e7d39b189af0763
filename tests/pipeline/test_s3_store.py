"""Result stores on S3 (moto's S3 server on 127.0.0.1, through s3fs as users get it): the same Zarr layout and
numbers as a local store, the writer lock object (conditional writes, stale takeover, a lost lock marks nothing
complete), foreign prefixes refused, bad buckets/credentials/endpoints in one line, and a run killed mid-write
resumed to bit-identical results."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr
from click.testing import CliRunner
from dask.utils import key_split
from distributed import WorkerPlugin
from pipeline_checks import assert_same, stored
from servers import BUCKET, S3_KEY, S3_SECRET

from akkd_scale.cli import main
from akkd_scale.errors import StoreError
from akkd_scale.pipeline import store as store_module
from akkd_scale.pipeline.runner import run_scenes, verify_store
from akkd_scale.pipeline.store import (
    LOCK_FILE,
    ObjectStoreLock,
    check_lock,
    group_status,
    locate_store,
    mark_complete,
    prepare_store,
    scene_group,
)

NAMES = ("lst", "emissivity", "lst_uncertainty", "qc", "land_cover", "latitude", "longitude")
#: Attributes that differ between two runs of the same scenes (when, and the command that ran).
VOLATILE = {"date_created", "date_completed", "command_line"}


def _options(s3_server) -> dict:
    return {"endpoint_url": s3_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}


def _url(name: str) -> str:
    return f"s3://{BUCKET}/stores/{name}"


def _keys(s3_server, url: str) -> list[str]:
    root = url.removeprefix("s3://")
    return sorted(k.removeprefix(root + "/") for k in s3_server.fs.find(root))


def _local_keys(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def _attrs(out, group: str) -> dict:
    attrs = dict(zarr.open_group(locate_store(out).zarr_store(), path=group, mode="r").attrs)
    return {k: v for k, v in attrs.items() if k not in VOLATILE}


def test_s3_store_has_the_local_layout_numbers_and_records(scenes, bundle_path, s3_server, tmp_path):
    paths = [scenes["good_a"], scenes["good_b"]]
    kwargs = {"bundle": bundle_path, "chunks": 24, "executor": "threads"}
    local = tmp_path / "local.zarr"
    run_scenes(paths, local, **kwargs)
    url = _url("layout.zarr")
    table = run_scenes(paths, url, storage_options=_options(s3_server), **kwargs)
    assert list(table["status"]) == ["complete", "complete"], table["error"].tolist()
    assert _keys(s3_server, url) == _local_keys(local)  # the same objects as files: marker, groups, chunks
    location = locate_store(url, _options(s3_server))
    for path in paths:
        group = scene_group(path)
        assert group_status(location, group) == "complete"
        assert_same(stored(location, group, NAMES), stored(local, group, NAMES))
        assert _attrs(location, group) == _attrs(local, group)  # status, record, provenance
    assert zarr.open_group(location.zarr_store(), mode="r").attrs["akkd_scale_store"] == 1
    assert LOCK_FILE not in _keys(s3_server, url)  # the lock object is removed at the end
    metadata = [f"{url}/{k}" for k in _keys(s3_server, url) if k.endswith("zarr.json")]
    text = "".join(s3_server.fs.cat(key).decode() for key in metadata)
    assert len(metadata) > 10 and "akkd_record" in text and S3_SECRET not in text and S3_KEY not in text

    again = run_scenes(paths, url, storage_options=_options(s3_server), **kwargs)
    assert list(again["status"]) == ["skipped", "skipped"]
    checked = verify_store(paths, url, bundle=bundle_path, chunks=24, storage_options=_options(s3_server))
    assert list(checked["status"]) == ["ok", "ok"], checked["problem"].tolist()

    s3_server.fs.rm(f"{url.removeprefix('s3://')}/{scene_group(paths[1])}/lst/c/0/0")  # a chunk lost
    checked = verify_store(paths, url, bundle=bundle_path, chunks=24, storage_options=_options(s3_server))
    assert list(checked["status"]) == ["ok", "redo"] and "lst 5 of 6 chunks present" in checked["problem"][1]
    repaired = run_scenes(paths, url, storage_options=_options(s3_server), **kwargs)
    assert list(repaired["status"]) == ["skipped", "complete"]
    assert_same(stored(location, scene_group(paths[1]), NAMES), stored(local, scene_group(paths[1]), NAMES))


HOLD_LOCK = """
import sys, time
from akkd_scale.pipeline.store import ObjectStoreLock, locate_store
with ObjectStoreLock(locate_store(sys.argv[1], {"endpoint_url": sys.argv[2]}), "akkd-scale run first.hdf"):
    print("held", flush=True)
    time.sleep(120)
"""


def _lock_record(host: str, pid: int, token: str = "other") -> bytes:
    return json.dumps(
        {"pid": pid, "process_started": 0.0, "host": host, "started": "2026-01-01T00:00:00+00:00", "token": token}
    ).encode()


def test_a_second_writer_is_refused_and_a_dead_one_is_taken_over(scenes, bundle_path, s3_server, tmp_path, caplog):
    url = _url("locked.zarr")
    options = _options(s3_server)
    kwargs = {"bundle": bundle_path, "chunks": 24, "executor": "threads", "storage_options": options}
    prepare_store(url, options)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, url, s3_server.endpoint], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match=rf"^{url}: locked by another run \(pid {holder.pid} on .*first.hdf"):
            run_scenes([scenes["good_a"]], url, **kwargs)
        assert group_status(locate_store(url, options), scene_group(scenes["good_a"])) == "missing"
    finally:
        holder.send_signal(signal.SIGKILL)  # the holder dies with its lock in place
        holder.wait()
    assert LOCK_FILE in _keys(s3_server, url)
    with caplog.at_level("WARNING", logger="akkd_scale"):
        table = run_scenes([scenes["good_a"]], url, **kwargs)
    assert list(table["status"]) == ["complete"] and "taking over a stale lock" in caplog.text
    assert LOCK_FILE not in _keys(s3_server, url)

    key = f"{url.removeprefix('s3://')}/{LOCK_FILE}"
    s3_server.fs.pipe(key, _lock_record("another-host", 1))  # a live run elsewhere: its heartbeat is recent
    with pytest.raises(StoreError, match=r"locked by another run \(pid 1 on another-host, .*last heartbeat"):
        run_scenes([scenes["good_b"]], url, **kwargs)
    s3_server.fs.pipe(key, b"not a lock of ours")
    with pytest.raises(StoreError, match=r"locked by another run \(a lock object not written by akkd-scale"):
        run_scenes([scenes["good_b"]], url, **kwargs)
    s3_server.fs.pipe(key, _lock_record("another-host", 1))
    store_module.LOCK_STALE_S, saved = -1.0, store_module.LOCK_STALE_S  # its heartbeat is overdue
    try:
        assert list(run_scenes([scenes["good_b"]], url, **kwargs)["status"]) == ["complete"]
    finally:
        store_module.LOCK_STALE_S = saved
    assert LOCK_FILE not in _keys(s3_server, url)


def test_a_run_that_lost_its_lock_marks_nothing_complete(scenes, bundle_path, s3_server, monkeypatch):
    url = _url("lost.zarr")
    location = prepare_store(url, _options(s3_server))
    run_scenes([scenes["good_a"]], location, bundle=bundle_path, chunks=24, executor="threads")
    group = scene_group(scenes["good_a"])
    zarr.open_group(location.zarr_store(), path=group, mode="r+").attrs["akkd_status"] = "incomplete"
    key = f"{url.removeprefix('s3://')}/{LOCK_FILE}"
    monkeypatch.setattr(store_module, "LOCK_HEARTBEAT_S", 0.05)
    with ObjectStoreLock(location, "this run") as lock:
        first = s3_server.fs.info(key)["ETag"]
        deadline = time.monotonic() + 10
        while s3_server.fs.info(key)["ETag"] == first:  # the heartbeat rewrites the lock object
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)
        check_lock(location)  # still ours
        record = json.loads(s3_server.fs.cat(key))
        assert record["token"] and record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        s3_server.fs.pipe(key, _lock_record("another-host", 1))  # another run took the lock over
        with pytest.raises(StoreError, match=rf"^{url}: .*(taken over|no longer this run's).*not marked complete"):
            mark_complete(location, group, {"test": 1})
        assert lock.lost
    assert group_status(location, group) == "incomplete"
    assert json.loads(s3_server.fs.cat(key))["host"] == "another-host"  # the other run's lock is left in place
    s3_server.fs.rm(key)


def test_a_prefix_with_foreign_objects_is_refused_and_untouched(scenes, bundle_path, s3_server):
    url = _url("foreign")
    s3_server.fs.pipe(f"{url.removeprefix('s3://')}/notes/readme.txt", b"mine")
    s3_server.fs.pipe(f"{url.removeprefix('s3://')}/zarr.json", b'{"zarr_format": 3, "node_type": "group"}')
    before = {k: s3_server.fs.info(f"{url.removeprefix('s3://')}/{k}")["ETag"] for k in _keys(s3_server, url)}
    args = ["run", str(scenes["good_a"]), "--out", url, "--bundle", str(bundle_path), "--executor", "threads"]
    result = CliRunner().invoke(main, [*args, "--storage-options", json.dumps(_options(s3_server))])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{url}: holds objects and is not a result store written by akkd-scale; refusing" in result.output
    assert {k: s3_server.fs.info(f"{url.removeprefix('s3://')}/{k}")["ETag"] for k in _keys(s3_server, url)} == before


def test_bad_store_urls_fail_in_one_line_within_the_timeout(
    scenes, bundle_path, s3_server, tmp_path, monkeypatch, closed_endpoint, stalled_endpoint
):
    def run(out: str, options: dict, *extra: str):
        args = ["run", str(scenes["good_a"]), "--out", out, "--bundle", str(bundle_path), "--executor", "threads"]
        result = CliRunner().invoke(main, [*args, "--storage-options", json.dumps(options), *extra])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        return result.output.strip()

    started = time.perf_counter()
    assert run("s3://no-such-bucket-akkd/x.zarr", _options(s3_server)) == (
        "Error: s3://no-such-bucket-akkd/x.zarr: cannot reach the result store: no such bucket (expected an "
        "existing bucket, reachable, with credentials that may list and write it)"
    )
    assert "result stores by URL must be s3://" in run("gs://bucket/x.zarr", {})
    for endpoint, problem in ((closed_endpoint, "endpoint unreachable"), (stalled_endpoint, "no answer within 1 s")):
        options = {"endpoint_url": endpoint, "key": S3_KEY, "secret": S3_SECRET}
        line = run(_url("x.zarr"), options, "--remote-timeout", "1")
        assert line.startswith(f"Error: {_url('x.zarr')}: cannot reach the result store: {problem}"), line
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    # s3fs keeps one filesystem per options, with the credentials it found when it connected: options of its own
    options = {"endpoint_url": s3_server.endpoint, "config_kwargs": {"user_agent_extra": "no-credentials-test"}}
    line = run(_url("x.zarr"), options)
    assert re.match(rf"Error: {_url('x.zarr')}: cannot (reach|create) the result store: no credentials found", line)
    assert time.perf_counter() - started < 60  # bounded: timeouts and retries, never a hang


@pytest.mark.slow  # a CLI process started and killed, then two runs: about 40 s
def test_a_run_killed_mid_write_on_s3_resumes_to_identical_results(scenes, bundle_path, s3_server, tmp_path):
    """SIGKILL `akkd-scale run --out s3://…` while it writes, rerun, compare with an uninterrupted run."""
    paths = [scenes[k] for k in ("good_a", "good_b", "good_c")]
    url, options = _url("killed.zarr"), {"endpoint_url": s3_server.endpoint}
    command = [
        *(sys.executable, "-m", "akkd_scale.cli", "run", *map(str, paths), "--out", url),
        *("--bundle", str(bundle_path), "--executor", "threads", "--chunks", "16"),
        *("--storage-options", json.dumps(options)),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    location = locate_store(url, options)
    groups = [scene_group(p) for p in paths]
    try:
        deadline = time.monotonic() + 120
        while True:  # one scene complete and another one being written
            statuses = [group_status(location, g) for g in groups]
            if "complete" in statuses and "incomplete" in statuses:
                break
            assert process.poll() is None, "run ended before it was killed"
            assert time.monotonic() < deadline, f"no scene complete with another being written in 120 s: {statuses}"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    statuses = [group_status(location, g) for g in groups]
    assert "incomplete" in statuses and statuses.count("complete") < len(groups), statuses
    assert LOCK_FILE in _keys(s3_server, url)  # left by the killed run

    kwargs = {"bundle": bundle_path, "chunks": 16, "executor": "threads", "storage_options": options}
    table = run_scenes(paths, url, **kwargs)
    assert list(table["status"]).count("skipped") == statuses.count("complete")
    assert set(table["status"]) <= {"complete", "skipped"}, table["error"].tolist()
    clean = _url("clean.zarr")
    run_scenes(paths, clean, **kwargs)
    for group in groups:
        assert_same(stored(location, group, NAMES), stored(locate_store(clean, options), group, NAMES))
    assert _keys(s3_server, url) == _keys(s3_server, clean)


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


def test_a_worker_killed_mid_write_to_s3_gives_identical_results(scenes, bundle_path, s3_server, client, tmp_path):
    """Workers write the chunks to S3 themselves (the store travels with the graph); one dies mid-scene."""
    paths = [scenes[k] for k in ("good_a", "good_b")]
    kwargs = {"bundle": bundle_path, "chunks": 16, "client": client, "storage_options": _options(s3_server)}
    clean = _url("worker-clean.zarr")
    run_scenes(paths, clean, **kwargs)
    marker = tmp_path / "killed.pid"
    client.register_plugin(KillOnce(str(marker), after=4), name="kill-once-s3")
    try:
        table = run_scenes(paths, _url("worker-killed.zarr"), **kwargs)
    finally:
        client.unregister_worker_plugin("kill-once-s3")
    assert marker.exists(), "no worker was killed"
    assert list(table["status"]) == ["complete", "complete"], table["error"].tolist()
    for path in paths:
        group = scene_group(path)
        expected = stored(locate_store(clean, _options(s3_server)), group, NAMES)
        assert_same(stored(locate_store(_url("worker-killed.zarr"), _options(s3_server)), group, NAMES), expected)
    client.wait_for_workers(2, timeout=60)


def test_export_and_quicklook_read_an_s3_store_and_write_to_s3_or_here(scenes, bundle_path, s3_server, tmp_path):
    import rioxarray  # noqa: F401  (the .rio accessor)
    import xarray as xr

    url, options = _url("export.zarr"), json.dumps(_options(s3_server))
    local = tmp_path / "local.zarr"
    for out in (str(local), url):
        table = run_scenes(
            [scenes["good_c"]],
            out,
            bundle=bundle_path,
            chunks=24,
            executor="threads",
            storage_options=_options(s3_server),
        )
        assert list(table["status"]) == ["complete"]
    runner = CliRunner()
    tifs = f"s3://{BUCKET}/exports/tifs"
    result = runner.invoke(main, ["export", url, "--out", tifs, "--variables", "lst,qc", "--storage-options", options])
    assert result.exit_code == 0, result.output
    group = scene_group(scenes["good_c"])
    printed = [line for line in result.output.splitlines() if line.startswith("s3://")]
    assert printed == [f"{tifs}/{group}_lst.tif", f"{tifs}/{group}_qc.tif"]
    result = runner.invoke(main, ["export", str(local), "--out", str(tmp_path / "tif"), "--variables", "lst,qc"])
    assert result.exit_code == 0, result.output
    for name in ("lst", "qc"):
        copy = tmp_path / f"s3_{name}.tif"
        s3_server.fs.get_file(f"{tifs.removeprefix('s3://')}/{group}_{name}.tif", str(copy))
        ours = xr.open_dataarray(copy, engine="rasterio")
        assert ours.attrs["source_store"] == url
        xr.testing.assert_identical(
            ours.drop_attrs(),
            xr.open_dataarray(tmp_path / "tif" / f"{group}_{name}.tif", engine="rasterio").drop_attrs(),
        )
    result = runner.invoke(main, ["quicklook", url, "--out", str(tmp_path / "png"), "--storage-options", options])
    assert result.exit_code == 0, result.output
    printed = [line for line in result.output.splitlines() if line.endswith(".png") and " " not in line]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(Path(p).name for p in printed)
    assert any(p.name.startswith(group) for p in (tmp_path / "png").iterdir())
    result = runner.invoke(
        main, ["quicklook", url, "--out", f"s3://{BUCKET}/exports/png", "--storage-options", options]
    )
    assert result.exit_code == 0, result.output
    assert len(s3_server.fs.ls(f"{BUCKET}/exports/png")) == len(list((tmp_path / "png").iterdir()))

    result = runner.invoke(
        main, ["export", _url("nothing.zarr"), "--out", str(tmp_path / "x"), "--storage-options", options]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{_url('nothing.zarr')}: not a result store: no Zarr group there" in result.output


def test_replacing_a_scene_group_leaves_a_group_with_a_longer_name_alone(scenes, bundle_path, s3_server, tmp_path):
    """Replacing ``AST_L1B_x`` deletes the objects under ``AST_L1B_x/``, never those of ``AST_L1B_x_2``."""
    longer = tmp_path / f"{scenes['good_a'].stem}_2.hdf"
    longer.write_bytes(scenes["good_b"].read_bytes())
    url, kwargs = _url("siblings.zarr"), {"bundle": bundle_path, "chunks": 48, "executor": "threads"}
    location = locate_store(url, _options(s3_server))
    run_scenes([scenes["good_a"], longer], location, **kwargs)
    before = {k: s3_server.fs.info(f"{url.removeprefix('s3://')}/{k}")["ETag"] for k in _keys(s3_server, url)}
    assert list(run_scenes([scenes["good_a"]], location, overwrite=True, **kwargs)["status"]) == ["complete"]
    after = {k: s3_server.fs.info(f"{url.removeprefix('s3://')}/{k}")["ETag"] for k in _keys(s3_server, url)}
    sibling = {k: v for k, v in before.items() if k.startswith(f"{scene_group(longer)}/")}
    assert sibling and {k: after.get(k) for k in sibling} == sibling
    assert group_status(location, scene_group(longer)) == "complete"


def test_without_conditional_delete_the_lock_is_removed_only_while_it_is_ours(s3_server, monkeypatch, caplog):
    location = prepare_store(_url("nodelete.zarr"), _options(s3_server))
    fs, _ = location.filesystem()
    plain = fs.call_s3

    def no_conditional_delete(method, *args, **kwargs):  # a store that refuses If-Match on DeleteObject
        if method == "delete_object" and "IfMatch" in kwargs:
            raise OSError(95, "conditional delete not implemented")
        return plain(method, *args, **kwargs)

    monkeypatch.setattr(fs, "call_s3", no_conditional_delete)
    key = f"{_url('nodelete.zarr').removeprefix('s3://')}/{LOCK_FILE}"
    with ObjectStoreLock(location, "this run"):
        assert s3_server.fs.exists(key)
    assert not s3_server.fs.exists(key)  # ours: removed
    with caplog.at_level("WARNING", logger="akkd_scale"), ObjectStoreLock(location, "this run"):
        s3_server.fs.pipe(key, _lock_record("another-host", 1))  # taken over meanwhile
    assert json.loads(s3_server.fs.cat(key))["host"] == "another-host"  # not ours: left in place
    assert "the lock is another run's now; left in place" in caplog.text
    s3_server.fs.rm(key)
