"""The bad-input and fault corpus of the store, `export`, the land-cover map and the CLI's options: every case
ends in one line naming the file (or option), what is wrong and what was expected, never a library traceback
or a silent result. Full and read-only file systems are real tmpfs mounts (as root; else chmod, or skipped)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from akkd_scale.cli import main
from akkd_scale.errors import InputError, OutputError, StoreError
from akkd_scale.pipeline.export import MAX_EXPORT_BYTES, export_store
from akkd_scale.pipeline.store import (LOCK_FILE, StoreLock, mark_complete, open_scene, output_dataset, prepare_store,
                                       write_scene)
from akkd_scale.simulate.l1b_writer import write_aster_l1b

SHAPE = (40, 48)
CHUNK = 20
GROUP = "AST_L1B_corpus"


@contextmanager
def tmpfs(path: Path, size: str = "1m"):
    """A real tmpfs of ``size`` mounted at ``path`` (needs root and mount permission, else the test is skipped)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def make_read_only(path: Path) -> str:
    """Remount the tmpfs at ``path`` read-only; returns the errno name a write then gets."""
    done = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return "EROFS"


@contextmanager
def read_only_folder(path: Path, populate=None):
    """``path`` on a read-only file system: a tmpfs remounted ``ro`` (root), else a chmod 555 folder (non-root,
    where writes fail with EACCES instead). ``populate(path)`` runs while it is still writable. Yields the
    errno name expected from a write."""
    if os.geteuid() == 0:
        with tmpfs(path):
            if populate:
                populate(path)
            yield make_read_only(path)
        return
    path.mkdir(parents=True, exist_ok=True)
    if populate:
        populate(path)
    for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
        folder.chmod(0o555)
    try:
        yield "EACCES"
    finally:
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)


@pytest.fixture(scope="module")
def corpus_scene(tmp_path_factory) -> Path:
    return write_aster_l1b(tmp_path_factory.mktemp("corpus") / f"{GROUP}.hdf", shape=SHAPE)


def complete_store(store: Path, scene_path: Path) -> Path:
    """A result store holding one complete scene group, written and marked with pipeline/store.py itself:
    lst and emissivity (CHUNK × CHUNK chunks), latitude/longitude and the reader's spatial_ref."""
    scene = xr.open_dataset(scene_path, engine="aster_l1b", chunks={"y": CHUNK, "x": CHUNK})
    bt = scene["brightness_temperature"]
    result = xr.Dataset({"lst": bt.sel(band="B13", drop=True).assign_attrs(units="K"),
                         "emissivity": (bt * 0 + 0.97).assign_attrs(units="1")},
                        coords={k: scene[k] for k in ("latitude", "longitude", "spatial_ref")})
    result = result.drop_vars("wavelength")
    prepare_store(store)
    dask.compute(write_scene(output_dataset(result, scene.attrs, {"source_file": str(scene_path)}), store, GROUP))
    mark_complete(store, GROUP, {"source_sha256": "test"})
    return store


# 1. read-only file system ------------------------------------------------------------------------------------

def test_new_store_on_a_read_only_file_system_is_one_line(tmp_path, corpus_scene):
    with read_only_folder(tmp_path / "ro") as code:
        out = tmp_path / "ro" / "results.zarr"
        with pytest.raises(StoreError, match=rf"results.zarr: cannot create the result store: .*\({code}\)"):
            prepare_store(out)
        result = CliRunner().invoke(main, ["run", str(corpus_scene), "--out", str(out), "--executor", "threads"])
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"Error: {out}: cannot create the result store"), result.output
        assert f"({code})" in result.output
        assert not out.exists()


def test_existing_store_on_a_read_only_file_system_is_one_line(tmp_path, corpus_scene):
    with read_only_folder(tmp_path / "ro", populate=lambda p: prepare_store(p / "results.zarr")) as code:
        out = tmp_path / "ro" / "results.zarr"
        prepare_store(out)  # a store of ours: accepted (reading works), the lock is what needs writing
        with pytest.raises(StoreError, match=rf"results.zarr: cannot take the store lock {LOCK_FILE}: .*\({code}\)"):
            with StoreLock(out, "test"):
                pass
        result = CliRunner().invoke(main, ["run", str(corpus_scene), "--out", str(out), "--executor", "threads"])
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert "cannot take the store lock" in result.output and f"({code})" in result.output


# 5. a lock path that is a directory ---------------------------------------------------------------------------

def test_a_lock_path_that_is_a_directory_is_named(tmp_path):
    out = tmp_path / "results.zarr"
    prepare_store(out)
    (out / LOCK_FILE).mkdir()
    with pytest.raises(StoreError, match=rf"results.zarr/{LOCK_FILE}: is a directory, not the store's lock file"):
        with StoreLock(out, "test"):
            pass
    assert (out / LOCK_FILE).is_dir()


# 7. lock race --------------------------------------------------------------------------------------------------

CREATOR = """import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)  # created, owner record not written yet
print("created", flush=True)
time.sleep(120)
"""


def test_an_empty_lock_of_a_live_creator_is_respected(tmp_path, caplog):
    out = tmp_path / "results.zarr"
    prepare_store(out)
    creator = subprocess.Popen([sys.executable, "-c", CREATOR, str(out / LOCK_FILE)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert creator.stdout.readline().strip() == "created"
        with pytest.raises(StoreError, match=r"locked by another run \(its lock file is being written"):
            with StoreLock(out, "second run"):
                pass
        assert (out / LOCK_FILE).read_text() == ""  # not taken over
    finally:
        creator.kill()
        creator.wait()
    old = time.time() - 3600  # a lock left empty long ago (its creator died before writing): stale
    os.utime(out / LOCK_FILE, (old, old))
    with caplog.at_level(logging.WARNING, logger="akkd_scale"), StoreLock(out, "third run"):
        assert str(os.getpid()) in (out / LOCK_FILE).read_text()
    assert "taking over a stale lock" in caplog.text


RACER = """import json, sys, time
from pathlib import Path
from akkd_scale.errors import StoreError
from akkd_scale.pipeline.store import LOCK_FILE, StoreLock
out, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    with StoreLock(out, "racer"):
        seen = json.loads((out / LOCK_FILE).read_text())  # the owner record is complete while held
        time.sleep(1.5)
        print("won", seen["pid"], flush=True)
except StoreError as exc:
    print("refused", exc, flush=True)
"""


def test_racing_processes_one_takes_the_lock(tmp_path):
    out, go = tmp_path / "results.zarr", tmp_path / "go"
    prepare_store(out)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(out), str(go)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    for racer in racers:
        assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
    go.touch()
    results = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    winners = [(racer.pid, text) for racer, text in zip(racers, results, strict=True) if text.startswith("won")]
    assert len(winners) == 1, results
    assert winners[0][1] == f"won {winners[0][0]}"  # the lock file named the winner while it held the lock
    assert all("locked by another run" in r for r in results if not r.startswith("won")), results
    assert not (out / LOCK_FILE).exists() and not [p for p in out.iterdir() if p.name.startswith(".akkd-lock")]


# 3. export verifies the chunks of a "complete" scene -------------------------------------------------------------

def test_export_of_a_complete_scene_with_a_deleted_chunk_is_refused(tmp_path, corpus_scene):
    store = complete_store(tmp_path / "results.zarr", corpus_scene)
    export_store(store, tmp_path / "good", variables=["lst"])  # intact: exports
    (store / GROUP / "lst" / "c" / "1" / "0").unlink()
    out = tmp_path / "out"
    message = (rf"results.zarr: {GROUP}: scene group is marked complete but chunks are missing: lst \(5 of 6 chunks "
               r"present\) \(expected every chunk present")
    with pytest.raises(InputError, match=message):
        export_store(store, out, variables=["lst"])
    with pytest.raises(InputError, match=message):
        open_scene(store, GROUP)  # one validation: quicklook and the Python API get the same
    result = CliRunner().invoke(main, ["export", str(store), "--out", str(out), "--variables", "lst"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "lst (5 of 6 chunks present)" in result.output
    assert not out.exists()


# 5. export output-size guard -------------------------------------------------------------------------------------

@pytest.mark.parametrize("crs, resolution", [("utm", 1e-9), ("utm", 0.01), ("EPSG:4326", 1e-7)])
def test_export_output_size_guard(tmp_path, corpus_scene, crs, resolution):
    store = complete_store(tmp_path / "results.zarr", corpus_scene)
    out = tmp_path / "out"
    limit = f"{MAX_EXPORT_BYTES / 2 ** 30:g} GiB"
    with pytest.raises(InputError, match=rf"{GROUP}: lst: the output grid at resolution {resolution:g} would be "
                                         rf"\d+ x \d+ pixels x 1 band\(s\) = .* \(expected at most {limit} per file: a "
                                         r"coarser --resolution \(at least .*\) or another --crs"):
        export_store(store, out, variables=["lst"], crs=crs, resolution=resolution)
    assert not out.exists()
    result = CliRunner().invoke(main, ["export", str(store), "--out", str(out), "--variables", "lst", "--crs", crs,
                                       "--resolution", str(resolution)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "--resolution" in result.output, result.output


# 5. export onto a full disk ----------------------------------------------------------------------------------------

def test_export_onto_a_full_disk_names_the_file_and_leaves_the_folder_clean(tmp_path, corpus_scene):
    store = complete_store(tmp_path / "results.zarr", corpus_scene)
    with tmpfs(tmp_path / "small", size="64k") as small:
        out = small / "tifs"
        with pytest.raises(OutputError, match=rf"tifs/{GROUP}_(lst|emissivity).tif: cannot write the [\d.]+ KiB "
                                              r"GeoTIFF: no space left on device \(ENOSPC\)$"):
            export_store(store, out, variables=["lst", "emissivity"], resolution=10.0)
        assert list(small.iterdir()) == []
        result = CliRunner().invoke(main, ["export", str(store), "--out", str(out), "--variables", "lst,emissivity",
                                           "--resolution", "10"])
        assert result.exit_code == 1 and result.output.count("\n") == 1 and "(ENOSPC)" in result.output, result.output
        assert list(small.iterdir()) == []


def test_export_into_a_read_only_folder_names_it(tmp_path, corpus_scene):
    store = complete_store(tmp_path / "results.zarr", corpus_scene)
    with read_only_folder(tmp_path / "ro") as code:
        with pytest.raises(OutputError, match=rf"ro/tifs: cannot create the output folder: .*\({code}\)"):
            export_store(store, tmp_path / "ro" / "tifs", variables=["lst"])


# 5. --scheduler that is not an address ------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["notanaddress", "tcp://host", "host:99999", "tcp://host:port"])
def test_a_scheduler_that_is_not_an_address_is_a_usage_error(tmp_path, address):
    result = CliRunner().invoke(main, ["run", "AST_L1B_x.hdf", "--out", str(tmp_path / "r.zarr"), "--scheduler",
                                       address])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--scheduler'" in result.output and "host:port" in result.output
    assert not (tmp_path / "r.zarr").exists()


@pytest.mark.parametrize("address", ["tcp://10.0.0.1:8786", "scheduler.example.org:8786", "tls://[::1]:8786"])
def test_scheduler_addresses_that_are_accepted(address):
    from akkd_scale.cli import _options_checked

    assert _options_checked("fusion", None, address, None) == ("fusion",)


# 6 / 5. a truncated land-cover GeoTIFF in run and adapt ---------------------------------------------------------------

@pytest.fixture(scope="module")
def truncated_map(tmp_path_factory, corpus_scene) -> Path:
    """A WorldCover-coded GeoTIFF around the corpus scene, cut to 40 % of its bytes."""
    import rioxarray  # noqa: F401

    ds = xr.open_dataset(corpus_scene, engine="aster_l1b")
    lat, lon = ds["latitude"].values, ds["longitude"].values
    cell = 0.0003
    west, north = lon.min() - 0.002, lat.max() + 0.002
    ny, nx = int((north - lat.min() + 0.002) / cell) + 1, int((lon.max() + 0.002 - west) / cell) + 1
    codes = np.array([10, 20, 30, 40, 50, 60], np.uint8)[(np.arange(ny)[:, None] + np.arange(nx)[None]) % 6]
    grid = xr.DataArray(codes, dims=("y", "x"), coords={"y": north - cell * (np.arange(ny) + 0.5),
                                                         "x": west + cell * (np.arange(nx) + 0.5)})
    path = tmp_path_factory.mktemp("maps") / "cover.tif"
    grid.rio.write_crs("EPSG:4326").rio.to_raster(path)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.4)])
    return path


def test_run_with_a_truncated_land_cover_map_names_the_file_and_the_cause(tmp_path, corpus_scene, truncated_map):
    from akkd_scale.pipeline import run_scenes

    table = run_scenes([corpus_scene], tmp_path / "r.zarr", landcover=truncated_map, executor="threads")
    error = table.loc[0, "error"]
    assert table.loc[0, "status"] == "failed"
    assert f"{truncated_map}: land cover map: cannot read map rows" in error, error
    assert "TIFFReadEncodedStrip" in error and "truncated or corrupt" in error, error
    assert "See previous exception" not in error


def test_adapt_with_a_truncated_land_cover_map_names_the_file(corpus_scene, truncated_map):
    from akkd_scale.models.bundle import default_bundle_path, load_bundle
    from akkd_scale.workflows.adapt import scene_pixels  # adapt's first step: the scenes' classed pixels

    with pytest.raises(InputError, match=rf"{truncated_map}: land cover map: cannot read map rows .*"
                                         r"TIFFReadEncodedStrip.*truncated or corrupt"):
        scene_pixels(corpus_scene, load_bundle(default_bundle_path()), landcover=truncated_map)
