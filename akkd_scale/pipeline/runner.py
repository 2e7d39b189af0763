"""Batch retrieval: many scene files → one Zarr store, resumable, one bad scene never stops the rest.

Each scene becomes one graph (reader → map_blocks kernel → Zarr chunk writes) submitted to the Dask
cluster; a bounded number of scenes is in flight at once so client memory and the scheduler's task
count stay flat however long the list is. A scene is marked complete only after its future finished.
"""
from __future__ import annotations

import datetime as _dt
import logging
import shlex
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import xarray as xr

from .. import __version__
from ..conventions import BT
from ..utils import sha256_file
from .graph import check_heads, retrieve
from .kernel import BundleRef, bundle_ref
from .store import COMPLETE, group_status, mark_complete, output_dataset, scene_group, write_scene

log = logging.getLogger(__name__)

COLUMNS = ["scene", "group", "status", "pixels", "seconds", "error"]


def run_scenes(paths, out, bundle=None, heads=("fusion",), chunks=512, client=None, overwrite=False, *,
               atmosphere: str | None = None, command_line: str | None = None, progress: bool = False,
               max_in_flight: int | None = None) -> pd.DataFrame:
    """Retrieve LST/emissivity for every scene file into the Zarr store ``out``.

    ``bundle``: Bundle, path or BundleRef (default: the shipped bundle). ``chunks``: spatial chunk
    size (int) or a dict for ``open_dataset``. ``client``: a ``distributed.Client``; without one the
    current default client is used, or a LocalCluster is started (and closed afterwards).
    ``atmosphere``: AFGL atmosphere assumed by a ``tes`` head. Complete scenes are skipped unless
    ``overwrite``. Returns one row per path, in input order: scene, group, status
    (complete/skipped/failed), pixels, seconds, error.
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    ref = bundle_ref(bundle)
    from .cluster import close_client, get_client

    own_client = client is None and _current_client() is None
    if client is None:
        client = _current_client() if not own_client else get_client()
    try:
        window = max_in_flight or max(2, 2 * len(client.nthreads()))
        context = {"out": _absolute(out), "ref": ref, "heads": heads, "overwrite": overwrite, "atmosphere": atmosphere,
                   "chunks": {"y": chunks, "x": chunks} if isinstance(chunks, int) else dict(chunks),
                   "command_line": command_line or shlex.join(sys.argv)}
        rows = _run(list(paths), client, context, window, progress)
    finally:
        if own_client:
            close_client(client)
    return pd.DataFrame([rows[i] for i in range(len(rows))], columns=COLUMNS)


def _absolute(location) -> str:
    """Local paths made absolute (workers may run elsewhere); URLs (``scheme://``) unchanged."""
    text = str(location)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def _current_client():
    """The default distributed client of this process, if any."""
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _run(paths: list, client, context: dict, window: int, progress: bool) -> dict:
    """Submit scenes with at most ``window`` in flight; collect one row per scene."""
    from distributed import as_completed

    bar = _progress_bar(len(paths)) if progress else None
    rows, in_flight, groups = {}, {}, {}
    queue = list(enumerate(paths))
    completed = as_completed()
    while queue or in_flight:
        while queue and len(in_flight) < window:
            index, path = queue.pop(0)
            started = _start_scene(path, client, context, groups)
            if isinstance(started, dict):
                rows[index] = _report(started, bar)
            else:
                in_flight[started[0]] = (index, started[1])
                completed.add(started[0])
        if in_flight:
            future = next(completed)
            index, row = in_flight.pop(future)
            rows[index] = _report(_finish_scene(future, row, context["out"]), bar)
    if bar is not None:
        bar.close()
    return rows


def _start_scene(path, client, context: dict, groups: dict):
    """Open and submit one scene: a final row (skipped/failed) or (future, row in progress)."""
    path = Path(path)
    row = {"scene": str(path), "group": None, "status": "failed", "pixels": 0, "seconds": 0.0, "error": ""}
    started = time.perf_counter()
    try:
        group = row["group"] = scene_group(path)
        if group in groups:
            raise ValueError(f"group name {group!r} already used by {groups[group]} in this run "
                             "(scene files need distinct names)")
        groups[group] = path
        if not context["overwrite"] and group_status(context["out"], group) == COMPLETE:
            return {**row, "status": "skipped"}
        with warnings.catch_warnings():  # square chunks cut the reader's whole-row storage chunks on purpose
            warnings.filterwarnings("ignore", message="The specified chunks separate", category=UserWarning)
            ds = xr.open_dataset(path.resolve(), engine="aster_l1b", chunks=context["chunks"])
        row["pixels"] = int(ds[BT].size // ds.sizes["band"])
        result = retrieve(ds, context["ref"], context["heads"], context["atmosphere"])
        out_ds = output_dataset(result, ds.attrs, _provenance(path, context))
        delayed = write_scene(out_ds, context["out"], group)
        future = client.compute(delayed)
    except Exception as exc:  # a bad scene is reported, never stops the batch
        return {**row, "error": _describe(exc), "seconds": time.perf_counter() - started}
    return future, {**row, "_started": started}


def _finish_scene(future, row: dict, out: str) -> dict:
    """Wait for a scene's writes, then mark its group complete (or report why it failed)."""
    started = row.pop("_started")
    try:
        future.result()
        mark_complete(out, row["group"])
        row = {**row, "status": "complete"}
    except Exception as exc:  # the scene failed on the cluster; others go on
        row = {**row, "status": "failed", "error": _describe(exc)}
    finally:
        future.release()
    return {**row, "seconds": time.perf_counter() - started}


def _provenance(path: Path, context: dict) -> dict:
    """Provenance attributes of one scene group."""
    ref: BundleRef = context["ref"]
    return {"akkd_scale_version": __version__, "bundle_path": ref.path, "bundle_sha256": ref.sha256,
            "heads": ",".join(context["heads"]), "source_file": str(path.resolve()),
            "source_sha256": sha256_file(path), "command_line": context["command_line"],
            "tes_atmosphere": context["atmosphere"] or "",
            "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _describe(exc: BaseException) -> str:
    """One-line error text for the result table."""
    text = " ".join(str(exc).split())
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
