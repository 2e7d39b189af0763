"""Scenes by URL through ``run_scenes`` and ``akkd-scale run``, against real servers on 127.0.0.1: HDF objects
from moto's S3 server (staged, verified, removed) and STAC items of COGs over HTTP range requests give the
local numbers bit for bit; bad URLs fail their scene alone with one clear line, within a bounded wait; no
credential reaches the store."""

from __future__ import annotations

import json
import os
import re
import shlex
import time

import pytest
import xarray as xr
import zarr
from click.testing import CliRunner
from distributed import WorkerPlugin
from pipeline_checks import assert_same, stored
from servers import BUCKET, S3_KEY, S3_SECRET, Fault

from akkd_scale.cli import main
from akkd_scale.errors import SceneFileError
from akkd_scale.io.remote import redact_command_line
from akkd_scale.pipeline import runner as runner_module
from akkd_scale.pipeline.runner import run_scenes, verify_store
from akkd_scale.pipeline.store import scene_group

NAMES = ("lst", "emissivity", "lst_uncertainty", "qc", "land_cover", "latitude", "longitude")


def _options(s3_server) -> dict:
    return {"endpoint_url": s3_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}


def _store_text(out) -> str:
    """Every byte of a store's metadata and lock files, as text (credentials must not be in there)."""
    return "\n".join(
        p.read_text(errors="replace")
        for p in out.rglob("*")
        if p.is_file() and p.suffix in (".json", "") and p.stat().st_size < 1 << 20
    )


def test_hdf_from_s3_gives_the_local_numbers_bit_for_bit(scenes, bundle_path, s3_server, tmp_path, monkeypatch):
    local = [scenes["good_a"], scenes["good_b"]]
    urls = [s3_server.upload(path, f"bitwise/{path.name}") for path in local]
    run_scenes(local, tmp_path / "local.zarr", bundle=bundle_path, chunks=24, executor="threads")
    staging = tmp_path / "staging"
    table = run_scenes(
        [f"s3://{BUCKET}/bitwise/*.hdf"],
        tmp_path / "s3.zarr",
        bundle=bundle_path,
        chunks=24,
        executor="threads",
        storage_options=_options(s3_server),
        staging_dir=staging,
        command_line=f"akkd-scale run --storage-options {json.dumps(_options(s3_server))}",
    )
    assert list(table["status"]) == ["complete", "complete"] and list(table["scene"]) == sorted(urls)
    for path, url in zip(local, urls, strict=True):
        group = scene_group(path)
        assert_same(stored(tmp_path / "s3.zarr", group, NAMES), stored(tmp_path / "local.zarr", group, NAMES))
        attrs = zarr.open_group(str(tmp_path / "s3.zarr"), path=group, mode="r").attrs
        local_attrs = zarr.open_group(str(tmp_path / "local.zarr"), path=group, mode="r").attrs
        assert attrs["source_file"] == url and attrs["source_sha256"] == local_attrs["source_sha256"]
    assert not [p for p in staging.rglob("*") if p.is_file()]  # staged copies removed after use
    assert S3_SECRET not in _store_text(tmp_path / "s3.zarr")

    def no_download(*args, **kwargs):
        raise AssertionError("a complete, unchanged object was downloaded again")

    monkeypatch.setattr(runner_module, "stage", no_download)
    again = run_scenes(
        urls,
        tmp_path / "s3.zarr",
        bundle=bundle_path,
        chunks=24,
        executor="threads",
        storage_options=_options(s3_server),
        staging_dir=staging,
    )
    assert list(again["status"]) == ["skipped", "skipped"]
    checked = verify_store(
        urls,
        tmp_path / "s3.zarr",
        bundle=bundle_path,
        chunks=24,
        storage_options=_options(s3_server),
        staging_dir=staging,
    )
    assert list(checked["status"]) == ["ok", "ok"] and list(checked["scene"]) == urls


def test_kept_staged_copies_are_reused_while_the_object_is_unchanged(scenes, bundle_path, s3_server, tmp_path, caplog):
    url = s3_server.upload(scenes["good_c"], f"kept/{scenes['good_c'].name}")
    staging = tmp_path / "staging"
    kwargs = {
        "bundle": bundle_path,
        "chunks": 24,
        "executor": "threads",
        "storage_options": _options(s3_server),
        "staging_dir": staging,
        "keep_staged": True,
    }
    assert run_scenes([url], tmp_path / "a.zarr", **kwargs)["status"][0] == "complete"
    kept = [p for p in staging.rglob("*.hdf")]
    assert len(kept) == 1 and kept[0].read_bytes() == scenes["good_c"].read_bytes()
    with caplog.at_level("INFO", logger="akkd_scale.io.remote"):
        assert run_scenes([url], tmp_path / "b.zarr", **kwargs)["status"][0] == "complete"
    assert "reusing kept copy" in caplog.text
    s3_server.upload(scenes["good_a"], f"kept/{scenes['good_c'].name}")  # the object changes: staged again
    assert run_scenes([url], tmp_path / "c.zarr", **kwargs)["status"][0] == "complete"
    assert kept[0].read_bytes() == scenes["good_a"].read_bytes()
    assert run_scenes([url], tmp_path / "d.zarr", **{**kwargs, "keep_staged": False})["status"][0] == "complete"
    assert kept[0].is_file()  # kept on purpose by an earlier run: a run that does not keep copies leaves it


def test_a_copy_left_behind_by_a_killed_run_is_reused_and_removed(scenes, s3_server, tmp_path):
    from akkd_scale.io.remote import Remote, release, stage

    url = s3_server.upload(scenes["good_a"], f"left/{scenes['good_a'].name}")
    remote = Remote.of(_options(s3_server), tmp_path / "staging")
    left = stage(url, remote)  # a run killed before it released its copy
    assert left.removable and left.path.is_file()
    again = stage(url, remote)
    assert again.path == left.path and again.sha256 == left.sha256 and again.removable  # reused, and ours
    release(again, keep=False)
    assert not [p for p in (tmp_path / "staging").rglob("*") if p.is_file()]


def test_bad_s3_inputs_fail_alone_with_one_clear_line(scenes, bundle_path, s3_server, tmp_path):
    good = s3_server.upload(scenes["good_a"], f"mixed/{scenes['good_a'].name}")
    inputs = [
        f"s3://{BUCKET}/mixed/AST_L1B_missing.hdf",
        "s3://no-such-bucket-akkd/AST_L1B_x.hdf",
        f"s3://{BUCKET}/nothing/*.hdf",
        good,
        scenes["good_b"],
    ]
    table = run_scenes(
        inputs,
        tmp_path / "out.zarr",
        bundle=bundle_path,
        chunks=24,
        executor="threads",
        storage_options=_options(s3_server),
        staging_dir=tmp_path / "staging",
    )
    assert list(table["status"]) == ["failed", "failed", "failed", "complete", "complete"]
    errors = list(table["error"])
    assert errors[0] == (
        f"SceneFileError: s3://{BUCKET}/mixed/AST_L1B_missing.hdf: no such object "
        "(expected an ASTER L1B/L1T HDF object)"
    )
    assert errors[1] == (
        "SceneFileError: s3://no-such-bucket-akkd/AST_L1B_x.hdf: no such bucket (expected an ASTER L1B/L1T HDF object)"
    )
    assert errors[2] == (
        f"SceneFileError: s3://{BUCKET}/nothing/*.hdf: the pattern matches no object "
        "(expected an ASTER L1B/L1T HDF object)"
    )


def test_missing_credentials_and_unreachable_endpoints_fail_within_the_timeout(
    scenes, bundle_path, s3_server, tmp_path, monkeypatch, closed_endpoint, stalled_endpoint
):
    url = s3_server.upload(scenes["good_a"], f"creds/{scenes['good_a'].name}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    kwargs = {"bundle": bundle_path, "executor": "threads", "staging_dir": tmp_path / "staging", "remote_timeout": 1.0}
    started = time.perf_counter()
    table = run_scenes([url], tmp_path / "a.zarr", storage_options={"endpoint_url": s3_server.endpoint}, **kwargs)
    assert table["error"][0].startswith(f"SceneFileError: {url}: no credentials found")
    for endpoint, problem in ((closed_endpoint, "endpoint unreachable"), (stalled_endpoint, "no answer within 1 s")):
        options = {"endpoint_url": endpoint, "key": S3_KEY, "secret": S3_SECRET}
        table = run_scenes(
            [url, f"{endpoint}/AST_L1B_x.hdf", scenes["good_b"]],
            tmp_path / f"{problem[:3]}.zarr",
            storage_options={"s3": options},
            **kwargs,
        )
        assert list(table["status"]) == ["failed", "failed", "complete"], table["error"].tolist()
        assert problem in table["error"][0] and problem in table["error"][1]
    assert time.perf_counter() - started < 60  # bounded: retries and timeouts, never a hang


def test_stac_item_over_http_gives_the_hdf_numbers_bit_for_bit(l1t_pair, bundle_path, http_server, tmp_path):
    group = scene_group(l1t_pair.hdf)
    http_server.log.clear()
    table = run_scenes([l1t_pair.item_url], tmp_path / "cog.zarr", bundle=bundle_path, executor="threads")
    # the HDF in the COG run's chunks (whole tiles): the cloud mask's buffer depends on the chunking (main's
    # cloud plan; LST, emissivity and every other output do not), and the comparison is of readers
    chunks = zarr.open_group(str(tmp_path / "cog.zarr"), path=group, mode="r").attrs["akkd_record"]["chunks"]
    local = run_scenes([l1t_pair.hdf], tmp_path / "hdf.zarr", bundle=bundle_path, executor="threads", chunks=chunks)
    assert list(local["status"]) == list(table["status"]) == ["complete"] and table["group"][0] == group
    assert_same(stored(tmp_path / "cog.zarr", group, NAMES), stored(tmp_path / "hdf.zarr", group, NAMES))
    cog = xr.open_zarr(str(tmp_path / "cog.zarr"), group=group, consolidated=False)
    assert cog.attrs["source_file"] == l1t_pair.item_url
    assert cog["lst"].chunks == ((64, 8), (83,))  # row halves of whole tiles
    gets = [r for r in http_server.log.requests if r[0] == "GET" and r[1].endswith(".tif")]
    assert gets and all(r[4] == 206 for r in gets)  # range reads only: the COGs are never downloaded whole
    hdf_url = http_server.publish(l1t_pair.hdf, under="hdf")  # the HDF itself over https:// is staged
    staged = run_scenes(
        [hdf_url],
        tmp_path / "staged.zarr",
        bundle=bundle_path,
        executor="threads",
        chunks=chunks,
        staging_dir=tmp_path / "staging",
    )
    assert staged["status"][0] == "complete"
    assert_same(stored(tmp_path / "staged.zarr", group, NAMES), stored(tmp_path / "hdf.zarr", group, NAMES))


def test_bad_stac_inputs_fail_alone_with_one_clear_line(l1t_pair, bundle_path, http_server, tmp_path, monkeypatch):
    import shutil

    folder = http_server.root / "bad"
    shutil.copytree(l1t_pair.item.parent, folder, dirs_exist_ok=True)
    item = json.loads(l1t_pair.item.read_text())
    item["id"] = "AST_L1T_no_tir"
    del item["assets"]["TIR"]
    (folder / "no_tir.json").write_text(json.dumps(item))
    item = json.loads(l1t_pair.item.read_text())
    item["id"] = "AST_L1T_gone"
    (folder / "gone.json").write_text(json.dumps(item))
    base = f"{http_server.url}/bad"
    tif = f"/bad/{l1t_pair.item.stem}-TIR.tif"
    opened = runner_module.open_stac_dataset

    def open_then_lose_the_tir(stac, chunks):  # the TIR COG disappears once the scene is open: a 404 mid-run
        ds = opened(stac, chunks)
        if stac.location.endswith("/bad/gone.json"):
            http_server.faults[tif] = Fault(404)
        return ds

    monkeypatch.setattr(runner_module, "open_stac_dataset", open_then_lose_the_tir)
    http_server.faults["/bad/forbidden.json"] = Fault(403)
    try:
        table = run_scenes(
            [
                f"{base}/missing.json",
                f"{base}/forbidden.json",
                f"{base}/no_tir.json",
                f"{base}/gone.json",
                l1t_pair.item_url,
            ],
            tmp_path / "out.zarr",
            bundle=bundle_path,
            executor="threads",
        )
    finally:
        http_server.faults.clear()
    assert list(table["status"]) == ["failed"] * 4 + ["complete"]
    errors = list(table["error"])
    assert errors[0].startswith(f"SceneFileError: {base}/missing.json: HTTP 404: no such object (expected a STAC item")
    assert errors[1].startswith(f"SceneFileError: {base}/forbidden.json: HTTP 403: access denied")
    assert errors[2].startswith(f"SceneFileError: {base}/no_tir.json: assets: no TIR asset (assets: VNIR, xml)")
    assert re.fullmatch(
        rf"SceneFileError: {re.escape(http_server.url + tif)}: TIR: reading lines \d+-\d+, pixels "
        r"\d+-\d+ failed \(HTTP 404: no such object\) \(expected a cloud-optimised GeoTIFF .*\)",
        errors[3],
    )


def test_cli_takes_urls_and_storage_options_and_records_neither_secret(scenes, bundle_path, s3_server, tmp_path):
    url = s3_server.upload(scenes["good_b"], f"cli/{scenes['good_b'].name}")
    options = json.dumps(_options(s3_server))
    result = CliRunner().invoke(
        main,
        [
            "run",
            url,
            "--out",
            str(tmp_path / "out.zarr"),
            "--bundle",
            str(bundle_path),
            "--storage-options",
            options,
            "--staging-dir",
            str(tmp_path / "staging"),
            "--executor",
            "threads",
            "--chunks",
            "24",
        ],
    )
    assert result.exit_code == 0, result.output
    assert url in result.output and "1 complete" in result.output
    assert S3_SECRET not in _store_text(tmp_path / "out.zarr")
    bad = CliRunner().invoke(main, ["run", url, "--out", str(tmp_path / "x.zarr"), "--storage-options", "{key: 1}"])
    assert bad.exit_code == 2 and "--storage-options" in bad.output and "not JSON" in bad.output
    line = redact_command_line(
        shlex.join(
            [
                "akkd-scale",
                "run",
                "https://u:pw@host/AST_L1B_x.hdf?sig=abc",
                "--storage-options",
                options,
                f"--storage-options={options}",
                "--out",
                "s3://b/out.zarr",
            ]
        )
    )
    assert line == (
        "akkd-scale run https://host/AST_L1B_x.hdf --storage-options '<redacted>' "
        "'--storage-options=<redacted>' --out s3://b/out.zarr"
    )


def test_on_a_cluster_workers_range_read_the_cogs_and_read_the_staged_copy(
    l1t_pair, scenes, bundle_path, client, s3_server, tmp_path
):
    url = s3_server.upload(scenes["good_c"], f"cluster/{scenes['good_c'].name}")
    inputs = [l1t_pair.item_url, url]
    table = run_scenes(
        inputs,
        tmp_path / "cluster.zarr",
        bundle=bundle_path,
        client=client,
        chunks=32,
        storage_options=_options(s3_server),
        staging_dir=tmp_path / "staging",
    )
    assert list(table["status"]) == ["complete", "complete"], table["error"].tolist()
    run_scenes(
        [l1t_pair.hdf, scenes["good_c"]], tmp_path / "local.zarr", bundle=bundle_path, chunks=32, executor="threads"
    )
    for path in (l1t_pair.hdf, scenes["good_c"]):
        group = scene_group(path)
        assert_same(stored(tmp_path / "cluster.zarr", group, NAMES), stored(tmp_path / "local.zarr", group, NAMES))


class OtherHost(WorkerPlugin):
    """Makes each worker process a host of its own for staging: another host name than the client's and its
    own staging directory (what a Kubernetes pod without a shared file system has)."""

    def __init__(self, staging: str):
        self.staging = staging

    def setup(self, worker):
        from akkd_scale.io import remote

        self.saved = (remote.host_name, os.environ.get("AKKD_STAGING_DIR"))
        remote.host_name = lambda: f"worker-host-{os.getpid()}"
        os.environ["AKKD_STAGING_DIR"] = self.staging

    def teardown(self, worker):
        from akkd_scale.io import remote

        remote.host_name, staging = self.saved
        if staging is None:
            os.environ.pop("AKKD_STAGING_DIR", None)
        else:
            os.environ["AKKD_STAGING_DIR"] = staging


def test_workers_on_other_hosts_stage_their_own_copy_and_remove_it(scenes, bundle_path, client, http_server, tmp_path):
    """No shared file system: each worker stages the object itself, checked against the run's sha256; the
    numbers are the local file's; no copy is left on either side."""
    url = http_server.publish(scenes["good_b"], under="hosts")
    name = scenes["good_b"].name
    kwargs = {"bundle": bundle_path, "chunks": 24, "client": client, "staging_dir": tmp_path / "client-staging"}
    http_server.log.clear()
    run_scenes([url], tmp_path / "same-host.zarr", **kwargs)
    same_host = len([r for r in http_server.log.for_path(name) if r[0] == "GET"])
    worker_staging = tmp_path / "worker-staging"
    client.register_plugin(OtherHost(str(worker_staging)), name="other-host")
    try:
        http_server.log.clear()
        table = run_scenes([url], tmp_path / "other-hosts.zarr", **kwargs)
        other_hosts = len([r for r in http_server.log.for_path(name) if r[0] == "GET"])
    finally:
        client.unregister_worker_plugin("other-host")
    assert list(table["status"]) == ["complete"], table["error"].tolist()
    assert same_host >= 1 and other_hosts > same_host, (same_host, other_hosts)  # the workers fetched it too
    local = tmp_path / "local.zarr"
    run_scenes([scenes["good_b"]], local, bundle=bundle_path, chunks=24, executor="threads")
    group = scene_group(scenes["good_b"])
    assert_same(stored(tmp_path / "other-hosts.zarr", group, NAMES), stored(local, group, NAMES))
    assert worker_staging.is_dir()  # the workers staged there ...
    assert not [p for p in worker_staging.rglob("*") if p.is_file()]  # ... and removed their copies
    assert not [p for p in (tmp_path / "client-staging").rglob("*") if p.is_file()]


def test_a_worker_copy_of_a_changed_object_is_refused_and_removed(scenes, http_server, tmp_path, monkeypatch):
    from akkd_scale.io.remote import StagedSource, discard_copy, local_copy
    from akkd_scale.utils import sha256_file

    monkeypatch.setenv("AKKD_STAGING_DIR", str(tmp_path / "staging"))
    url = http_server.publish(scenes["good_c"], under="changed")
    good = StagedSource(url, sha256_file(scenes["good_c"]), 0, "/client/only/copy.hdf", "client-host", "{}")
    path = local_copy(good)
    assert path.startswith(str(tmp_path / "staging")) and sha256_file(path) == good.sha256
    assert local_copy(good) == path  # staged once per process
    assert discard_copy(good) and not os.path.exists(path)
    stale = StagedSource(url, "0" * 64, 0, "/client/only/copy.hdf", "client-host", "{}")
    with pytest.raises(SceneFileError, match=r"changed/AST_L1B_good_c.hdf: changed since the run staged it"):
        local_copy(stale)
    assert not [p for p in (tmp_path / "staging").rglob("*") if p.is_file()]


def test_signed_assets_are_read_with_the_signing_function_and_never_recorded(
    l1t_pair, bundle_path, http_server, tmp_path, monkeypatch
):
    """A catalogue whose assets need a token (Planetary Computer's SAS): refused with HTTP 403 and the asset
    named unless --sign-assets signs them; signed, the item gives the unsigned item's numbers."""
    from servers import ASSET_TOKEN, sign_asset

    monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", f"/vsicurl/{http_server.url}")  # GDAL must ask again
    folder = http_server.publish(l1t_pair.item.parent, under="signed")
    http_server.tokens["/signed/"] = ASSET_TOKEN
    item_url = f"{folder}/{l1t_pair.item.name}"
    group = scene_group(l1t_pair.hdf)
    kwargs = {"bundle": bundle_path, "executor": "threads"}
    try:
        refused = run_scenes([item_url], tmp_path / "unsigned.zarr", **kwargs)
        assert list(refused["status"]) == ["failed"]
        assert re.search(rf"{folder}/\S+-TIR\.tif: .*HTTP 403", refused["error"][0]), refused["error"][0]
        signed = run_scenes([item_url], tmp_path / "signed.zarr", sign_assets=sign_asset, **kwargs)
        assert list(signed["status"]) == ["complete"], signed["error"].tolist()
        assert any("sig=" in r[1] and r[1].endswith(ASSET_TOKEN) for r in http_server.log.for_path(ASSET_TOKEN))
        assert verify_store([item_url], tmp_path / "signed.zarr", sign_assets=sign_asset, **{"bundle": bundle_path})[
            "status"
        ].tolist() == ["ok"]
    finally:
        http_server.tokens.clear()
    run_scenes([l1t_pair.item_url], tmp_path / "public.zarr", **kwargs)
    assert_same(stored(tmp_path / "signed.zarr", group, NAMES), stored(tmp_path / "public.zarr", group, NAMES))
    assert ASSET_TOKEN not in _store_text(tmp_path / "signed.zarr")


def test_a_bad_signing_function_is_refused_before_the_run(l1t_pair, tmp_path):
    for value, problem in (
        ("no_such_module_x:sign", "cannot import 'no_such_module_x'"),
        ("servers:no_such_function", "module 'servers' has no 'no_such_function'"),
        ("planetary_computer", "'planetary_computer' is not MODULE:FUNCTION"),
    ):
        result = CliRunner().invoke(
            main, ["run", str(l1t_pair.item), "--out", str(tmp_path / "x.zarr"), "--sign-assets", value]
        )
        assert result.exit_code == 2 and problem in result.output and "Traceback" not in result.output, result.output
        assert "--sign-assets" in result.output
    assert not (tmp_path / "x.zarr").exists()


def test_a_signed_url_is_no_glob_pattern():
    from akkd_scale.io.remote import has_glob

    assert not has_glob("https://host/scenes/AST_L1B_x.hdf?sv=2024&sig=a%2Fb")  # a query is no pattern
    assert has_glob("https://host/scenes/AST_L1B_*.hdf") and has_glob("s3://bucket/AST_L1B_?.hdf")
    assert not has_glob("s3://bucket/AST_L1B_x.hdf")


def test_a_signing_function_that_fails_fails_its_scene_alone(l1t_pair, scenes, bundle_path, tmp_path):
    def broken(href: str) -> str:
        raise RuntimeError("token service down")

    def not_a_url(href: str):
        return 42

    cases = {broken: "broken: token service down)", not_a_url: "not_a_url returned int '42'"}
    for sign, problem in cases.items():
        table = run_scenes(
            [l1t_pair.item_url, scenes["good_a"]],
            tmp_path / f"{sign.__name__}.zarr",
            bundle=bundle_path,
            executor="threads",
            sign_assets=sign,
        )
        assert list(table["status"]) == ["failed", "complete"], table["error"].tolist()
        error = table["error"][0]
        assert re.search(r"-TIR\.tif: ", error) and problem in error, error
