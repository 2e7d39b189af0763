"""Batch retrieval: many scene files → one Zarr store, resumable, one bad scene never stops the rest.

Each scene becomes one graph (reader → map_blocks kernel → Zarr chunk writes), a :class:`SceneJob`,
submitted to an executor (:mod:`.cluster`: Dask's threaded scheduler in this process, or a distributed
cluster with a bounded number of scenes in flight, so client memory and the scheduler's task count stay
flat however long the list is); :class:`RunContext` holds what is fixed for the run, and one loop
(:func:`_run`) serves both executors. The run holds the store's lock; a scene is marked complete
only after its writes finished, every chunk is verified present and its input is unchanged. A complete
scene is skipped only when its record (input sha256 and size, bundle, heads, chunks, atmosphere, land cover,
cloud mask, package version) matches this run; otherwise it is redone and the log says why. The scene's
summary line and its completion record give its cloud fraction.
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
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..clouds.external import check_convention
from ..conventions import BANDS, BT, QC_CLOUD, QC_INVALID_INPUT
from ..errors import ClusterError, InputError, ParameterError, SceneFileError
from ..landcover.legends import check_legend
from ..utils import sha256_file
from .cloud_plan import check_mask_file
from .cluster import SceneExecutor, current_client, scene_executor
from .graph import check_heads, retrieve
from .kernel import BundleRef, bundle_ref
from .store import (COMPLETE, active_writer, group_source, INCOMPLETE, group_record, group_status, is_local, mark_complete,
                    missing_chunks, output_dataset, prepare_store, record_mismatch, scene_group, store_lock,
                    write_scene)

log = logging.getLogger(__name__)

COLUMNS = ["scene", "group", "status", "pixels", "seconds", "error"]
#: Seconds a run waits for a cluster with no worker before failing the scenes still to do.
WORKER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LandCover:
    """The land cover a run asks for: ``source`` (None, ``"rules"``, ``"none"`` or a GeoTIFF's absolute path),
    its ``legend`` (None: detected) and ``record_id``, what identifies it in scene records."""

    source: str | None
    legend: str | None
    record_id: str

    @classmethod
    def of(cls, landcover, legend: str | None) -> LandCover:
        """The land cover of a run, its map checked to exist."""
        check_legend(legend, "landcover_legend")
        if landcover is None or landcover in ("rules", "none"):
            return cls(landcover, legend, landcover or "")
        path = Path(landcover).expanduser().resolve()
        if not path.is_file():
            raise InputError(path, "no such file", variable="land cover map", expected="a land-cover GeoTIFF")
        return cls(str(path), legend, f"{sha256_file(path)} ({legend or 'legend detected'})")


@dataclass(frozen=True)
class Clouds:
    """The cloud mask a run asks for: ``mask`` (``"auto"``, ``"none"`` or a GeoTIFF's absolute path), its
    ``convention`` (None: detected), ``keep_cloudy`` and ``record_id``, what identifies them in scene records."""

    mask: str
    convention: str | None
    keep_cloudy: bool
    record_id: str

    @classmethod
    def of(cls, cloud_mask, convention: str | None, keep_cloudy: bool) -> Clouds:
        """The cloud options of a run; a mask file is checked here, before any scene or cluster, and its convention
        decided over the whole file (:func:`~.cloud_plan.check_mask_file`; the codes under each scene again per scene)."""
        check_convention(convention)
        kept = ", keep cloudy" if keep_cloudy else ""
        if cloud_mask in ("auto", "none"):
            if convention is not None:
                raise ParameterError(None, "a cloud-mask convention without an external mask",
                                     variable="cloud_mask", expected="--cloud-mask MASK.tif with --cloud-mask-convention")
            return cls(cloud_mask, None, bool(keep_cloudy), cloud_mask + kept)
        path = Path(cloud_mask).expanduser().resolve()
        convention = check_mask_file(path, convention)
        return cls(str(path), convention, bool(keep_cloudy), f"{sha256_file(path)} ({convention}){kept}")


@dataclass(frozen=True)
class RunContext:
    """Everything fixed for a whole run: the store ``out``, the bundle, heads, requested ``chunks``
    (``"auto"`` or a dict), atmosphere and land cover, and the command line recorded in provenance."""

    out: str
    ref: BundleRef
    heads: tuple[str, ...]
    chunks: dict[str, int] | str
    atmosphere: str | None
    landcover: LandCover
    command_line: str = ""
    overwrite: bool = False
    clouds: Clouds = Clouds("auto", None, False, "auto")

    def record(self, digest: str, size: int, chunks: dict[str, int]) -> dict:
        """What a complete group must match to be skipped: its input (``digest``, ``size``), chunks and this run."""
        return {"source_sha256": digest, "source_size": size, "bundle_sha256": self.ref.sha256,
                "heads": ",".join(self.heads), "chunks": {k: int(v) for k, v in chunks.items()},
                "atmosphere": self.atmosphere or "", "land_cover_map": self.landcover.record_id,
                "cloud_mask": self.clouds.record_id, "akkd_scale_version": __version__}

    def provenance(self, path: Path, digest: str) -> dict:
        """Provenance attributes of one scene group."""
        return {"akkd_scale_version": __version__, "bundle_path": self.ref.path, "bundle_sha256": self.ref.sha256,
                "heads": ",".join(self.heads), "source_file": str(path.resolve()),
                "source_sha256": digest, "command_line": self.command_line,
                "tes_atmosphere": self.atmosphere or "",
                "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


@dataclass(frozen=True, eq=False)
class SceneJob:
    """One scene of a run, input ``index`` of the batch, from its start to its row of the result table.

    A running job carries its ``graph`` (the scene's Zarr writes, delayed), the ``record`` to mark its group
    complete with and the input's ``stat`` at the start. An ended job has its ``status`` (complete, skipped,
    failed), ``seconds`` and, when it failed, the exception (``failure``) the table's error text comes from;
    ``note`` says why a scene was skipped when not by its record.
    """

    index: int
    path: Path
    started: float
    group: str | None = None
    pixels: int = 0
    graph: Any = None
    record: dict | None = None
    stat: tuple | None = None
    cloud_fraction: float | None = None
    status: str = "running"
    seconds: float = 0.0
    failure: BaseException | None = None
    note: str = ""

    def ended(self, status: str, failure: BaseException | None = None, *, note: str = "",
              timed: bool = True) -> SceneJob:
        """This job with its final ``status``; ``seconds`` since its start unless not ``timed`` (0)."""
        return replace(self, status=status, failure=failure, note=note, graph=None,
                       seconds=time.perf_counter() - self.started if timed else 0.0)

    def row(self, out: str) -> dict:
        """The job's row of the result table (columns :data:`COLUMNS`)."""
        return {"scene": str(self.path), "group": self.group, "status": self.status, "pixels": self.pixels,
                "seconds": self.seconds, "error": _describe(self.failure, out) if self.failure else self.note}


def run_scenes(paths, out, bundle=None, heads=("fusion",), chunks="auto", client=None, overwrite=False, *,
               atmosphere: str | None = None, command_line: str | None = None, progress: bool = False,
               max_in_flight: int | None = None, worker_timeout: float = WORKER_TIMEOUT_S,
               executor: str = "auto", device: str | None = None, landcover=None,
               landcover_legend: str | None = None, cloud_mask="auto", cloud_mask_convention: str | None = None,
               keep_cloudy: bool = False) -> pd.DataFrame:
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
    default detected; see :func:`~akkd_scale.pipeline.graph.retrieve`). ``cloud_mask``: ``"auto"`` (built-in
    tests), ``"none"`` or a cloud-mask GeoTIFF for every scene (``cloud_mask_convention`` mod35/binary, default
    detected), ``keep_cloudy`` keeps cloudy values (flagged; :mod:`.cloud_plan`). Complete scenes whose record
    matches are skipped unless ``overwrite``. ``worker_timeout``: seconds without any worker before the
    remaining scenes fail.
    Returns one row per path, in input order: scene, group, status (complete/skipped/failed),
    pixels, seconds, error.
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    cover = LandCover.of(landcover, landcover_legend)
    clouds = Clouds.of(cloud_mask, cloud_mask_convention, keep_cloudy)
    paths = list(paths)
    client = client or current_client()
    executor = choose_executor(executor, n_scenes=len(paths), cluster_given=client is not None)
    ref = bundle_ref(bundle, device)
    out = _absolute(out)
    prepare_store(out)
    context = RunContext(out=out, ref=ref, heads=heads, chunks=_chunk_request(chunks), atmosphere=atmosphere,
                         landcover=cover, command_line=command_line or shlex.join(sys.argv), overwrite=overwrite,
                         clouds=clouds)
    with store_lock(out, context.command_line), scene_executor(
            executor, len(paths), client, max_in_flight=max_in_flight, worker_timeout=worker_timeout) as pool:
        rows = _run(paths, context, pool, progress)
    return pd.DataFrame(rows, columns=COLUMNS)


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


def _absolute(location) -> str:
    """Local paths made absolute (workers may run elsewhere); URLs (``scheme://``) unchanged."""
    text = str(location)
    return text if not is_local(text) else str(Path(text).expanduser().resolve())


def _run(paths: list, context: RunContext, executor: SceneExecutor, progress: bool) -> list[dict]:
    """Start scenes while the executor has room, end each as it finishes; one row per path, in input order.
    A cluster left without workers fails the scenes in flight and those still to start."""
    bar = _progress_bar(len(paths)) if progress else None
    rows: list = [None] * len(paths)
    claimed = _Claimed()
    queue = deque(enumerate(paths))
    while queue or len(executor):
        while queue and len(executor) < executor.window:
            job = _start_scene(*queue.popleft(), context, claimed)
            if job.graph is None:
                rows[job.index] = _report(job, context.out, bar)
            else:
                executor.submit(job.graph, job)
        if not len(executor):
            continue
        try:
            ended = [_finish_scene(job, error, context) for job, error in executor.wait(timeout=1.0)]
        except ClusterError as lost:  # no worker left: fail the scenes in flight and those still to start
            ended = [job.ended("failed", lost) for job in executor.cancel()]
            ended += [SceneJob(index, Path(path), 0.0).ended("failed", lost, timed=False) for index, path in queue]
            queue.clear()
        for job in ended:
            rows[job.index] = _report(job, context.out, bar)
    if bar is not None:
        bar.close()
    return rows


@dataclass
class _Claimed:
    """What the scenes started so far in a run took: input files (resolved → input index) and group names
    (→ path), so the same file given twice is done once and two files under one group name are refused."""

    paths: dict[Path, int] = field(default_factory=dict)
    groups: dict[str, Path] = field(default_factory=dict)


def _stat(path: Path) -> tuple:
    """What changes when a file is rewritten or replaced: size, mtime (ns), inode."""
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino


def _start_scene(index: int, path, context: RunContext, claimed: _Claimed) -> SceneJob:
    """Open one scene and build its graph: a running job, or one already ended (skipped or failed)."""
    job = SceneJob(index, Path(path), time.perf_counter())
    try:
        resolved = job.path.resolve()
        if resolved in claimed.paths:
            return replace(job, group=scene_group(job.path)).ended(
                "skipped", note=f"same file as input {claimed.paths[resolved] + 1} of this run", timed=False)
        claimed.paths[resolved] = index
        if job.path.is_dir():
            raise SceneFileError(job.path, "is a directory", expected="an ASTER L1B HDF file")
        job = replace(job, group=scene_group(job.path))
        if job.group in claimed.groups:
            raise InputError(None, f"group name {job.group!r} already used by {claimed.groups[job.group]} in this "
                                   "run (scene files need distinct names)")
        claimed.groups[job.group] = job.path
        _check_same_source(job, context)
        stat, digest = _stat(job.path), sha256_file(job.path)
        chunks = _scene_chunks(resolved, context.chunks)
        job = replace(job, record=context.record(digest, stat[0], chunks), stat=stat)
        if not context.overwrite and _is_current(job, context):
            return job.ended("skipped", timed=False)
        with warnings.catch_warnings():  # square chunks cut the reader's whole-row storage chunks on purpose
            warnings.filterwarnings("ignore", message="The specified chunks separate", category=UserWarning)
            ds = xr.open_dataset(resolved, engine="aster_l1b", chunks=chunks)
        job = replace(job, pixels=int(ds[BT].size // ds.sizes["band"]))
        return replace(job, graph=_scene_graph(ds, job, digest, context))
    except Exception as exc:  # a bad scene is reported, never stops the batch
        return job.ended("failed", exc)


def _check_same_source(job: SceneJob, context: RunContext) -> None:
    """A group written from another file (a different name that maps to the same group) is not replaced
    silently: refused, or with ``overwrite`` replaced with a warning naming that file."""
    source = group_source(context.out, job.group)
    if source is None or Path(source).name == job.path.name:
        return  # new group, or the same file (perhaps moved to another folder)
    if not context.overwrite:
        raise InputError(job.path, f"maps to group {job.group!r} of {context.out}, which holds the results of "
                                   f"another file, {source}", variable="scene group",
                         expected="distinct file names (rename one), another --out, or --overwrite to replace them")
    log.warning("replacing group %s of %s, written from %s, with %s", job.group, context.out, source, job.path)


def _is_current(job: SceneJob, context: RunContext) -> bool:
    """Whether the scene's group is complete with the record of this run and every chunk; logs why it is redone."""
    if group_status(context.out, job.group) != COMPLETE:
        return False
    why = record_mismatch(group_record(context.out, job.group), job.record)
    missing = missing_chunks(context.out, job.group)
    if not why and not missing:
        return True
    log.info("redoing %s: %s", job.group, why or f"chunks missing ({', '.join(sorted(missing))})")
    return False


def _scene_graph(ds: xr.Dataset, job: SceneJob, digest: str, context: RunContext):
    """The delayed Zarr writes of one opened scene: retrieval, output variables and provenance."""
    clouds = context.clouds
    result = retrieve(ds, context.ref, context.heads, context.atmosphere, landcover=context.landcover.source,
                      landcover_legend=context.landcover.legend, cloud_mask=clouds.mask,
                      cloud_mask_convention=clouds.convention, keep_cloudy=clouds.keep_cloudy)
    out_ds = output_dataset(result, ds.attrs, {**context.provenance(job.path, digest),
                                               **{name: result.attrs[name] for name in (
                                                   "land_cover_source", "cloud_mask", "cloud_mask_source",
                                                   "keep_cloudy")}})
    return write_scene(out_ds, context.out, job.group)


def _scene_chunks(path: Path, request) -> dict[str, int]:
    """The chunks of one scene: as requested, or :func:`auto_chunks` of its size (read from metadata)."""
    if request != "auto":
        return request
    sizes = xr.open_dataset(path, engine="aster_l1b").sizes
    return auto_chunks(sizes["y"], sizes["x"])


def _finish_scene(job: SceneJob, error: BaseException | None, context: RunContext) -> SceneJob:
    """End a scene whose graph ran (``error``: what it raised, if it did): check it (input unchanged, every
    band has valid pixels, every chunk written), then mark its group complete with its record; otherwise
    it failed (the group stays incomplete)."""
    if error is None:
        try:
            if _stat(job.path) != job.stat:
                raise InputError(job.path, "the input file changed while it was processed; rerun the scene")
            fraction = _cloud_fraction(context.out, job.group, _check_retrieved(job.path, context.out, job.group))
            mark_complete(context.out, job.group, {**job.record, "cloud_fraction": fraction})
            job = replace(job, cloud_fraction=fraction)
        except Exception as exc:  # the scene failed its checks; others go on
            error = exc
    return job.ended("complete") if error is None else job.ended("failed", error)


def _cloud_fraction(out: str, group: str, qc: np.ndarray) -> float | None:
    """Share of a scene's pixels with valid input that have QC bit ``cloud`` (None: no cloud mask ran)."""
    import zarr

    if zarr.open_group(out, path=group, mode="r").attrs.get("cloud_mask", "none") == "none":
        return None
    valid = (qc & QC_INVALID_INPUT) == 0
    return round(float(np.mean((qc[valid] & QC_CLOUD) > 0)), 6)


def _check_retrieved(path: Path, out: str, group: str) -> np.ndarray:
    """Refuse a scene where no pixel could be retrieved (read back from its ``qc``), naming the cause; else its
    ``qc``."""
    import zarr

    qc = zarr.open_array(out, path=f"{group}/qc", mode="r")[...]
    if np.any((qc & QC_INVALID_INPUT) == 0):
        return qc
    bt = xr.open_dataset(path, engine="aster_l1b")[BT]
    valid = bt.notnull().sum([d for d in bt.dims if d != "band"]).values
    empty = [band for band, n in zip(BANDS, valid) if n == 0]
    if empty:
        raise SceneFileError(path, f"band(s) {', '.join(empty)} have no valid pixel (all fill, saturated or "
                                   "uncalibrated); the scene cannot be retrieved")
    raise SceneFileError(path, "no pixel could be retrieved (every pixel has QC bit invalid_input: check "
                               "view_zenith, which is NaN when the file has no TIR pointing angle)")


def _describe(exc: BaseException, out: str | None = None) -> str:
    """One-line error text for the result table (a full disk names the store)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and out:
        text = f"no space left on the device of {out} ({text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _report(job: SceneJob, out: str, bar) -> dict:
    """Log an ended scene, advance the progress bar; the scene's row."""
    row = job.row(out)
    level = logging.WARNING if row["status"] == "failed" else logging.INFO
    cloud = "" if job.cloud_fraction is None else f", cloud {job.cloud_fraction:.1%}"
    log.log(level, "%s %s (%d px, %.1f s%s)%s", row["status"], row["scene"], row["pixels"], row["seconds"], cloud,
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
                 landcover=None, landcover_legend: str | None = None, cloud_mask="auto",
                 cloud_mask_convention: str | None = None, keep_cloudy: bool = False) -> pd.DataFrame:
    """Re-check a store without computing: for each scene, would a run skip it (``ok``) or redo it (and why)?

    Rows: scene, group, status (``ok``/``redo``/``missing``), problem; scenes not complete while another run
    holds the store's lock name that run (they may be in progress, not damaged).
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    out = _absolute(out)
    context = RunContext(out=out, ref=bundle_ref(bundle), heads=heads, atmosphere=atmosphere,
                         landcover=LandCover.of(landcover, landcover_legend), chunks=_chunk_request(chunks),
                         clouds=Clouds.of(cloud_mask, cloud_mask_convention, keep_cloudy))
    rows = []
    writer = active_writer(out)
    for path in map(Path, paths):
        group = scene_group(path)
        status = group_status(out, group)
        if status != COMPLETE:
            problem = f"group {status}" + (f" (the store is being written by a running run: {writer})" if writer else "")
            rows.append({"scene": str(path), "group": group, "status": "redo" if status == INCOMPLETE else status,
                         "problem": problem})
            continue
        problems = [record_mismatch(group_record(out, group), context.record(
            sha256_file(path), path.stat().st_size, _scene_chunks(path, context.chunks)))
            if path.is_file() else f"{path}: input not found"]
        problems += [f"{name} {what}" for name, what in missing_chunks(out, group).items()]
        problem = "; ".join(p for p in problems if p)
        rows.append({"scene": str(path), "group": group, "status": "redo" if problem else "ok", "problem": problem})
    return pd.DataFrame(rows, columns=["scene", "group", "status", "problem"])
