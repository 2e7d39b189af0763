"""Batch retrieval: many scene files → one Zarr store, resumable, one bad scene never stops the rest.

Each scene becomes one graph (reader → map_blocks kernel → Zarr chunk writes) submitted to the Dask
cluster; a bounded number of scenes is in flight at once so client memory and the scheduler's task
count stay flat however long the list is. The run holds the store's lock; a scene is marked complete
only after its writes finished, every chunk is verified present and its input is unchanged. A complete
scene is skipped only when its record (input sha256 and size, bundle, heads, chunks, atmosphere,
package version) matches this run; otherwise it is redone and the log says why.
"""
from __future__ import annotations

import datetime as _dt
import errno
import logging
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..conventions import BANDS, BT, QC_INVALID_INPUT
from ..errors import InputError, ParameterError
from ..landcover.legends import check_legend
from ..utils import sha256_file
from .graph import check_heads, retrieve
from .kernel import BundleRef, bundle_ref
from .store import (COMPLETE, INCOMPLETE, group_record, group_status, is_local, mark_complete,
                    missing_chunks, output_dataset, prepare_store, record_mismatch, scene_group, store_lock,
                    write_scene)

log = logging.getLogger(__name__)

COLUMNS = ["scene", "group", "status", "pixels", "seconds", "error"]
#: Seconds a run waits for a cluster with no worker before failing the scenes still to do.
WORKER_TIMEOUT_S = 60.0


def run_scenes(paths, out, bundle=None, heads=("fusion",), chunks="auto", client=None, overwrite=False, *,
               atmosphere: str | None = None, command_line: str | None = None, progress: bool = False,
               max_in_flight: int | None = None, worker_timeout: float = WORKER_TIMEOUT_S,
               executor: str = "auto", device: str | None = None, landcover=None,
               landcover_legend: str | None = None) -> pd.DataFrame:
    """Retrieve LST/emissivity for every scene file into the Zarr store ``out``.

    ``bundle``: Bundle, path or BundleRef (default: the shipped bundle). ``chunks``: spatial chunk
    size (int), a dict for ``open_dataset`` or ``"auto"`` (:func:`auto_chunks`). ``executor``:
    ``"cluster"`` runs on ``client`` (a ``distributed.Client``), else on the current default client,
    else on a LocalCluster started and closed here; ``"threads"`` runs each scene with Dask's threaded scheduler in this process, no
    cluster; ``"auto"`` picks ``"cluster"`` when a client is given or current or the batch has more
    scenes than cores, else ``"threads"`` (the same numbers either way). ``atmosphere``: AFGL
    atmosphere assumed by a ``tes`` head. ``device``: ``cpu`` or ``cuda`` (one GPU per worker process:
    start workers with one visible GPU each, e.g. dask-cuda's LocalCUDACluster). ``landcover``:
    None/``"rules"`` (NDVI rules), ``"none"`` or a land-cover GeoTIFF for every scene (``landcover_legend`` worldcover/igbp,
    default detected; see :func:`~akkd_scale.pipeline.graph.retrieve`). Complete scenes whose record
    matches are skipped unless ``overwrite``. ``worker_timeout``: seconds without any worker before the
    remaining scenes fail.
    Returns one row per path, in input order: scene, group, status (complete/skipped/failed),
    pixels, seconds, error.
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    cover = _landcover_context(landcover, landcover_legend)
    paths = list(paths)
    executor = choose_executor(executor, n_scenes=len(paths), cluster_given=client is not None or
                               _current_client() is not None)
    ref = bundle_ref(bundle, device)
    out = _absolute(out)
    prepare_store(out)
    command_line = command_line or shlex.join(sys.argv)
    context = {"out": out, "ref": ref, "heads": heads, "overwrite": overwrite, "atmosphere": atmosphere,
               "chunks": _chunk_request(chunks), "command_line": command_line, "worker_timeout": worker_timeout,
               **cover}
    with store_lock(out, command_line):
        if executor == "threads":
            rows = _run_threaded(paths, context, progress)
        else:
            from .cluster import close_client, get_client

            own_client = client is None and _current_client() is None
            client = client or _current_client() or get_client()
            try:
                window = max_in_flight or max(2, 2 * len(client.nthreads()))
                rows = _run(paths, client, context, window, progress)
            finally:
                if own_client:
                    close_client(client)
    return pd.DataFrame([rows[i] for i in range(len(rows))], columns=COLUMNS)


def _landcover_context(landcover, legend: str | None) -> dict:
    """The land-cover map of a run, checked to exist, and what identifies it in scene records."""
    check_legend(legend, "landcover_legend")
    if landcover is None or landcover in ("rules", "none"):
        return {"landcover": landcover, "landcover_legend": legend, "landcover_id": landcover or ""}
    path = Path(landcover).expanduser().resolve()
    if not path.is_file():
        raise InputError(path, "no such file", variable="land cover map", expected="a land-cover GeoTIFF")
    return {"landcover": str(path), "landcover_legend": legend,
            "landcover_id": f"{sha256_file(path)} ({legend or 'legend detected'})"}


EXECUTORS = ("auto", "threads", "cluster")
#: Most pixels in one chunk of ``chunks="auto"``: bounds a task's memory (≈ 1 GB with the TES head).
MAX_CHUNK_PIXELS = 1024 * 1024


def auto_chunks(ny: int, nx: int) -> dict[str, int]:
    """Chunks for a scene: a standard scene (up to 2 × MAX_CHUNK_PIXELS) in two column halves, so two
    threads or workers share it with one kernel call each; larger scenes in 1024 × 1024 chunks."""
    if ny * nx <= 2 * MAX_CHUNK_PIXELS:
        return {"y": int(ny), "x": int(-(-nx // 2))}
    side = int(MAX_CHUNK_PIXELS ** 0.5)
    return {"y": side, "x": side}


def _chunk_request(chunks) -> dict | str:
    if chunks == "auto":
        return "auto"
    if isinstance(chunks, int) and chunks >= 1:
        return {"y": chunks, "x": chunks}
    if isinstance(chunks, dict):
        return dict(chunks)
    raise ParameterError(None, f"chunks={chunks!r}", variable="chunks",
                         expected="'auto', a positive number of pixels or a dict such as {'y': 700, 'x': 415}")


def choose_executor(executor: str, *, n_scenes: int, cluster_given: bool) -> str:
    """``threads`` or ``cluster`` for a requested ``executor`` (see :func:`run_scenes`)."""
    if executor not in EXECUTORS:
        raise ParameterError(None, f"unknown executor {executor!r}", variable="executor",
                             expected=" or ".join(EXECUTORS))
    if executor != "auto":
        return executor
    return "cluster" if cluster_given or n_scenes > (os.cpu_count() or 1) else "threads"


def _run_threaded(paths: list, context: dict, progress: bool) -> dict:
    """Scenes computed by Dask's threaded scheduler in this process: as many scenes at once as there are
    cores (scenes are independent, so this parallelises better than chunks), the cores split among them."""
    from concurrent.futures import ThreadPoolExecutor

    bar = _progress_bar(len(paths)) if progress else None
    rows, seen, started = {}, {"groups": {}, "paths": {}}, {}
    for index, path in enumerate(paths):
        started[index] = _start_scene(index, path, context, seen)
    graphs = {i: s for i, s in started.items() if not isinstance(s, dict)}
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, min(cores, len(graphs))))
    with ThreadPoolExecutor(max_workers=max(1, min(cores, len(graphs)))) as pool:
        finished = {i: pool.submit(_finish_scene, lambda g=graph: dask.compute(g, scheduler="threads",
                                                                               num_workers=threads)[0], row, context)
                    for i, (graph, row) in graphs.items()}
        for index in range(len(paths)):
            rows[index] = _report(finished[index].result() if index in finished else started[index], bar)
    if bar is not None:
        bar.close()
    return rows


def _absolute(location) -> str:
    """Local paths made absolute (workers may run elsewhere); URLs (``scheme://``) unchanged."""
    text = str(location)
    return text if not is_local(text) else str(Path(text).expanduser().resolve())


def _current_client():
    """The default distributed client of this process, if any."""
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _run(paths: list, client, context: dict, window: int, progress: bool) -> dict:
    """Submit scenes with at most ``window`` in flight; collect one row per scene."""
    from distributed import wait

    bar = _progress_bar(len(paths)) if progress else None
    rows, in_flight, seen = {}, {}, {"groups": {}, "paths": {}}
    queue = list(enumerate(paths))
    no_workers_since = None
    while queue or in_flight:
        while queue and len(in_flight) < window:
            index, path = queue.pop(0)
            started = _start_scene(index, path, context, seen)
            if isinstance(started, dict):
                rows[index] = _report(started, bar)
            else:
                in_flight[client.compute(started[0])] = (index, started[1])
        if not in_flight:
            continue
        try:
            done = wait(list(in_flight), timeout=1.0, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        for future in done:
            index, row = in_flight.pop(future)
            rows[index] = _report(_finish_scene(future.result, row, context), bar)
            future.release()
        if done or client.nthreads():
            no_workers_since = None
            continue
        no_workers_since = no_workers_since or time.monotonic()
        if time.monotonic() - no_workers_since > context["worker_timeout"]:
            error = (f"ClusterError: the Dask cluster has had no worker for {context['worker_timeout']:.0f} s "
                     "(all workers lost); complete scenes are kept, rerun to finish the rest")
            for future, (index, row) in in_flight.items():
                future.cancel()
                rows[index] = _report(_failed(row, error), bar)
            for index, path in queue:
                rows[index] = _report({"scene": str(path), "group": None, "status": "failed", "pixels": 0,
                                       "seconds": 0.0, "error": error}, bar)
            in_flight, queue = {}, []
    if bar is not None:
        bar.close()
    return rows


def _failed(row: dict, error: str) -> dict:
    started = row.pop("_started")
    for key in ("_record", "_stat"):
        row.pop(key, None)
    return {**row, "status": "failed", "error": error, "seconds": time.perf_counter() - started}


def _stat(path: Path) -> tuple:
    """What changes when a file is rewritten or replaced: size, mtime (ns), inode."""
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino


def _start_scene(index: int, path, context: dict, seen: dict):
    """Open one scene and build its graph: a final row (skipped/failed) or (delayed graph, row in progress)."""
    path = Path(path)
    row = {"scene": str(path), "group": None, "status": "failed", "pixels": 0, "seconds": 0.0, "error": ""}
    started = time.perf_counter()
    try:
        resolved = path.resolve()
        if resolved in seen["paths"]:
            return {**row, "group": scene_group(path), "status": "skipped",
                    "error": f"same file as input {seen['paths'][resolved] + 1} of this run"}
        seen["paths"][resolved] = index
        if path.is_dir():
            raise IsADirectoryError(f"{path}: is a directory (expected an ASTER L1B HDF file)")
        group = row["group"] = scene_group(path)
        if group in seen["groups"]:
            raise ValueError(f"group name {group!r} already used by {seen['groups'][group]} in this run "
                             "(scene files need distinct names)")
        seen["groups"][group] = path
        stat, digest = _stat(path), sha256_file(path)
        chunks = _scene_chunks(resolved, context["chunks"])
        record = _record(digest, stat[0], {**context, "chunks": chunks})
        if not context["overwrite"] and group_status(context["out"], group) == COMPLETE:
            why = record_mismatch(group_record(context["out"], group), record)
            missing = missing_chunks(context["out"], group)
            if not why and not missing:
                return {**row, "status": "skipped"}
            log.info("redoing %s: %s", group, why or f"chunks missing ({', '.join(sorted(missing))})")
        with warnings.catch_warnings():  # square chunks cut the reader's whole-row storage chunks on purpose
            warnings.filterwarnings("ignore", message="The specified chunks separate", category=UserWarning)
            ds = xr.open_dataset(resolved, engine="aster_l1b", chunks=chunks)
        row["pixels"] = int(ds[BT].size // ds.sizes["band"])
        result = retrieve(ds, context["ref"], context["heads"], context["atmosphere"],
                          landcover=context["landcover"], landcover_legend=context["landcover_legend"])
        out_ds = output_dataset(result, ds.attrs, {**_provenance(path, digest, context),
                                                   "land_cover_source": result.attrs["land_cover_source"]})
        graph = write_scene(out_ds, context["out"], group)
    except Exception as exc:  # a bad scene is reported, never stops the batch
        return {**row, "error": _describe(exc), "seconds": time.perf_counter() - started}
    return graph, {**row, "_started": started, "_record": record, "_stat": stat}


def _scene_chunks(path: Path, request) -> dict[str, int]:
    """The chunks of one scene: as requested, or :func:`auto_chunks` of its size (read from metadata)."""
    if request != "auto":
        return request
    sizes = xr.open_dataset(path, engine="aster_l1b").sizes
    return auto_chunks(sizes["y"], sizes["x"])


def _record(digest: str, size: int, context: dict) -> dict:
    """What a complete group must match to be skipped."""
    return {"source_sha256": digest, "source_size": size, "bundle_sha256": context["ref"].sha256,
            "heads": ",".join(context["heads"]), "chunks": {k: int(v) for k, v in context["chunks"].items()},
            "atmosphere": context["atmosphere"] or "", "land_cover_map": context["landcover_id"],
            "akkd_scale_version": __version__}


def _finish_scene(result, row: dict, context: dict) -> dict:
    """Wait for a scene's graph (``result()``), check it (input unchanged, every band has valid pixels,
    every chunk written), then mark its group complete with its record; otherwise report why it failed
    (the group stays incomplete)."""
    started, record, stat = row.pop("_started"), row.pop("_record"), row.pop("_stat")
    try:
        result()
        if _stat(Path(row["scene"])) != stat:
            raise RuntimeError(f"{row['scene']}: the input file changed while it was processed; rerun the scene")
        _check_retrieved(Path(row["scene"]), context["out"], row["group"])
        mark_complete(context["out"], row["group"], record)
        row = {**row, "status": "complete"}
    except Exception as exc:  # the scene failed on the cluster; others go on
        row = {**row, "status": "failed", "error": _describe(exc, context["out"])}
    return {**row, "seconds": time.perf_counter() - started}


def _check_retrieved(path: Path, out: str, group: str) -> None:
    """Refuse a scene where no pixel could be retrieved (read back from its ``qc``), naming the cause."""
    import zarr

    qc = zarr.open_array(out, path=f"{group}/qc", mode="r")[...]
    if np.any((qc & QC_INVALID_INPUT) == 0):
        return
    bt = xr.open_dataset(path, engine="aster_l1b")[BT]
    valid = bt.notnull().sum([d for d in bt.dims if d != "band"]).values
    empty = [band for band, n in zip(BANDS, valid) if n == 0]
    if empty:
        raise ValueError(f"{path}: band(s) {', '.join(empty)} have no valid pixel (all fill, saturated or "
                         "uncalibrated); the scene cannot be retrieved")
    raise ValueError(f"{path}: no pixel could be retrieved (every pixel has QC bit invalid_input: check "
                     "view_zenith, which is NaN when the file has no TIR pointing angle)")


def _provenance(path: Path, digest: str, context: dict) -> dict:
    """Provenance attributes of one scene group."""
    ref: BundleRef = context["ref"]
    return {"akkd_scale_version": __version__, "bundle_path": ref.path, "bundle_sha256": ref.sha256,
            "heads": ",".join(context["heads"]), "source_file": str(path.resolve()),
            "source_sha256": digest, "command_line": context["command_line"],
            "tes_atmosphere": context["atmosphere"] or "",
            "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _describe(exc: BaseException, out: str | None = None) -> str:
    """One-line error text for the result table (a full disk names the store)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and out:
        text = f"no space left on the device of {out} ({text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _report(row: dict, bar) -> dict:
    """Log a finished scene and advance the progress bar."""
    level = logging.WARNING if row["status"] == "failed" else logging.INFO
    log.log(level, "%s %s (%d px, %.1f s)%s", row["status"], row["scene"], row["pixels"], row["seconds"],
            f": {row['error']}" if row["error"] else "")
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str(f"{Path(row['scene']).name}: {row['status']}")
    return row


def _progress_bar(total: int):
    """A tqdm bar over scenes on stderr."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="scene", desc="scenes", file=sys.stderr)


def verify_store(paths, out, bundle=None, heads=("fusion",), chunks="auto", *, atmosphere: str | None = None,
                 landcover=None, landcover_legend: str | None = None) -> pd.DataFrame:
    """Re-check a store without computing: for each scene, would a run skip it (``ok``) or redo it (and why)?

    Rows: scene, group, status (``ok``/``redo``/``missing``), problem.
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    out = _absolute(out)
    context = {"ref": bundle_ref(bundle), "heads": heads, "atmosphere": atmosphere,
               **_landcover_context(landcover, landcover_legend)}
    request = _chunk_request(chunks)
    rows = []
    for path in map(Path, paths):
        group = scene_group(path)
        status = group_status(out, group)
        if status != COMPLETE:
            rows.append({"scene": str(path), "group": group, "status": "redo" if status == INCOMPLETE else status,
                         "problem": f"group {status}"})
            continue
        problems = [record_mismatch(group_record(out, group), _record(
            sha256_file(path), path.stat().st_size, {**context, "chunks": _scene_chunks(path, request)}))
            if path.is_file() else f"{path}: input not found"]
        problems += [f"{name} {what}" for name, what in missing_chunks(out, group).items()]
        problem = "; ".join(p for p in problems if p)
        rows.append({"scene": str(path), "group": group, "status": "redo" if problem else "ok", "problem": problem})
    return pd.DataFrame(rows, columns=["scene", "group", "status", "problem"])
