"""Batch retrieval: many scenes → one Zarr store, resumable, one bad scene never stops the rest.

Each scene becomes one graph (reader → map_blocks kernel → Zarr chunk writes), a :class:`SceneJob`,
submitted to an executor (:mod:`.cluster`: Dask's threaded scheduler in this process, or a distributed
cluster with a bounded number of scenes in flight, so client memory and the scheduler's task count stay
flat however long the list is); :class:`RunContext` holds what is fixed for the run, and one loop
(:func:`_run`) serves both executors. The run holds the store's lock; a scene is marked complete
only after its writes finished, every chunk is verified present and its input is unchanged. A complete
scene is skipped only when its record (input sha256 and size, bundle, heads, chunks, atmosphere, land cover,
cloud mask, package version) matches this run; otherwise it is redone and the log says why. The scene's
summary line and its completion record give its cloud fraction.

A scene is a local HDF file, an HDF object by URL (``s3://``, ``gs://``, ``https://``, glob patterns
expanded), or a STAC item of COGs (``*.json``, local or by URL, or an item's URL in a STAC API); ``stac=``
adds the items a STAC search finds (:mod:`akkd_scale.io.aster.stac_search`), read as items by URL. An HDF
object is staged into the local cache in this (the client) process before its graph is built, because the
reader opens the file to validate it and build the lazy dataset and the run hashes it whole before any task
exists. The threads and the workers on this host read that copy by path; a worker on another host (no
shared file system) stages its own copy on its first read, checked against the run's sha256
(:class:`~akkd_scale.io.remote.StagedSource`). Every copy is removed when the scene ends unless kept. A STAC
scene is never staged: each chunk range-reads its window of the COGs by URL, on whichever worker runs it.
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
from ..io.aster.stac import StacScene, current_digest, is_stac_item, open_stac_dataset, read_stac_scene, tile_chunks
from ..io.aster.stac_search import StacSearch, search_items
from ..io.reanalysis import open_reanalysis
from ..io.remote import TIMEOUT_S as REMOTE_TIMEOUT_S
from ..io.remote import (
    Identity,
    Remote,
    Staged,
    StagedSource,
    discard_copy,
    expand,
    identity,
    is_url,
    redact,
    redact_command_line,
    release,
    stage,
)
from ..landcover.legends import check_legend
from ..utils import sha256_file
from .atmosphere_plan import plan_atmosphere
from .cloud_plan import check_mask_file
from .cluster import SceneExecutor, current_client, scene_executor
from .graph import check_heads, retrieve
from .kernel import BundleRef, bundle_ref
from .store import (
    COMPLETE,
    INCOMPLETE,
    StoreLocation,
    active_writer,
    group_record,
    group_source,
    group_status,
    locate_store,
    mark_complete,
    missing_chunks,
    output_dataset,
    prepare_store,
    record_mismatch,
    scene_group,
    store_lock,
    write_scene,
)

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
        decided over the whole file (:func:`~.cloud_plan.check_mask_file`; the codes under each scene again per
        scene)."""
        check_convention(convention)
        kept = ", keep cloudy" if keep_cloudy else ""
        if cloud_mask in ("auto", "none"):
            if convention is not None:
                raise ParameterError(
                    None,
                    "a cloud-mask convention without an external mask",
                    variable="cloud_mask",
                    expected="--cloud-mask MASK.tif with --cloud-mask-convention",
                )
            return cls(cloud_mask, None, bool(keep_cloudy), cloud_mask + kept)
        path = Path(cloud_mask).expanduser().resolve()
        convention = check_mask_file(path, convention)
        return cls(str(path), convention, bool(keep_cloudy), f"{sha256_file(path)} ({convention}){kept}")


@dataclass(frozen=True)
class AtmosphereData:
    """The reanalysis files a run gives the networks (``--atmosphere-data``; absolute paths, empty: none),
    whether pixels they do not cover may run without them (``optional``), the DEM they are height-corrected to
    (``elevation``, ``--elevation``) and ``record_id`` (sha256 of each file), what identifies them in scene
    records."""

    files: tuple[str, ...] = ()
    optional: bool = False
    record_id: str = ""
    elevation: str | None = None

    @classmethod
    def of(cls, atmosphere_data, optional: bool = False, elevation=None) -> AtmosphereData:
        """The atmosphere options of a run; every file is opened and its fields identified here, before any
        scene or cluster (a file without water vapour or air temperature fails the run, not each scene)."""
        plan = plan_atmosphere(atmosphere_data, optional, elevation)
        if plan.mode == "none":
            return cls()
        if plan.mode != "files":
            raise ParameterError(
                None,
                f"atmosphere_data={atmosphere_data!r}",
                variable="atmosphere_data",
                expected="ERA5 or MERRA-2 files (scene files carry no atmosphere)",
            )
        with open_reanalysis(plan.files) as reanalysis:
            if plan.elevation is not None and "surface_height" not in reanalysis.fields:
                raise InputError(
                    reanalysis.source,
                    "an elevation model was given but no file has the grid's surface height",
                    variable="surface_height",
                    expected="ERA5 z (geopotential) or MERRA-2 PHIS among the atmosphere files, or no --elevation",
                )
        digests = "; ".join(f"{sha256_file(f)} {Path(f).name}" for f in plan.files)
        if plan.elevation is not None:
            digests += f"; elevation {sha256_file(plan.elevation)} {Path(plan.elevation).name}"
        return cls(plan.files, plan.optional, digests + (" (optional)" if plan.optional else ""), plan.elevation)

    @property
    def value(self):
        """What ``retrieve(atmosphere_data=...)`` gets: the files, or None."""
        return list(self.files) or None


@dataclass(frozen=True)
class RunContext:
    """Everything fixed for a whole run: the store ``out``, the bundle, heads, requested ``chunks``
    (``"auto"`` or a dict), atmosphere and land cover, the command line recorded in provenance (credentials
    redacted) and how URL inputs are reached (``remote``: storage options, staging; never recorded)."""

    out: StoreLocation
    ref: BundleRef
    heads: tuple[str, ...]
    chunks: dict[str, int] | str
    atmosphere: str | None
    landcover: LandCover
    command_line: str = ""
    overwrite: bool = False
    remote: Remote = field(default_factory=Remote.of)
    clouds: Clouds = Clouds("auto", None, False, "auto")
    atmosphere_data: AtmosphereData = AtmosphereData()

    def record(self, digest: str, size: int, chunks: dict[str, int]) -> dict:
        """What a complete group must match to be skipped: its input (``digest``, ``size``), chunks and this run."""
        return {
            "source_sha256": digest,
            "source_size": size,
            "bundle_sha256": self.ref.sha256,
            "heads": ",".join(self.heads),
            "chunks": {k: int(v) for k, v in chunks.items()},
            "atmosphere": self.atmosphere or "",
            "land_cover_map": self.landcover.record_id,
            "cloud_mask": self.clouds.record_id,
            "atmosphere_data": self.atmosphere_data.record_id,
            "akkd_scale_version": __version__,
        }

    def provenance(self, source: str, digest: str) -> dict:
        """Provenance attributes of one scene group (``source``: the input's path or redacted URL)."""
        return {
            "akkd_scale_version": __version__,
            "bundle_path": self.ref.path,
            "bundle_sha256": self.ref.sha256,
            "heads": ",".join(self.heads),
            "source_file": source,
            "source_sha256": digest,
            "command_line": self.command_line,
            "tes_atmosphere": self.atmosphere or "",
            "date_created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }


#: Record key of an HDF input by URL: the object's identity (size, ETag/Last-Modified), so a complete scene
#: is skipped on a rerun without downloading the object again while the object is unchanged.
SOURCE_IDENTITY = "source_identity"


@dataclass(frozen=True)
class SceneInput:
    """One scene input once located: ``key`` (resolved path or redacted URL: the same input given twice is
    done once), ``group``, the ``path`` the HDF reader opens (the staged copy of a URL) or the ``stac``
    scene, ``digest``/``size`` (what the record holds) and ``stat`` (what must not change while it runs)."""

    key: str
    group: str
    source: str
    digest: str = ""
    size: int = 0
    stat: Any = None
    path: Path | None = None
    stac: StacScene | None = None
    staged: Staged | None = None
    remote_identity: Identity | None = None


@dataclass(frozen=True, eq=False)
class SceneJob:
    """One scene of a run, input ``index`` of the batch, from its start to its row of the result table.

    A running job carries its ``graph`` (the scene's Zarr writes, delayed), the ``record`` to mark its group
    complete with, the located input (``scene``) and its ``stat`` at the start. ``path`` is the input as
    given: a local path, or a URL (shown without user-info and query string). An ended job has its ``status``
    (complete, skipped,
    failed), ``seconds`` and, when it failed, the exception (``failure``) the table's error text comes from;
    ``note`` says why a scene was skipped when not by its record.
    """

    index: int
    path: Path | str
    started: float
    group: str | None = None
    pixels: int = 0
    graph: Any = None
    record: dict | None = None
    stat: Any = None
    scene: SceneInput | None = None
    cloud_fraction: float | None = None
    status: str = "running"
    seconds: float = 0.0
    failure: BaseException | None = None
    note: str = ""

    def ended(
        self, status: str, failure: BaseException | None = None, *, note: str = "", timed: bool = True
    ) -> SceneJob:
        """This job with its final ``status``; ``seconds`` since its start unless not ``timed`` (0)."""
        return replace(
            self,
            status=status,
            failure=failure,
            note=note,
            graph=None,
            seconds=time.perf_counter() - self.started if timed else 0.0,
        )

    def row(self, out) -> dict:
        """The job's row of the result table (columns :data:`COLUMNS`)."""
        return {
            "scene": redact(self.path),
            "group": self.group,
            "status": self.status,
            "pixels": self.pixels,
            "seconds": self.seconds,
            "error": _describe(self.failure, out) if self.failure else self.note,
        }


def run_scenes(
    paths,
    out,
    bundle=None,
    heads=("fusion",),
    chunks="auto",
    client=None,
    overwrite=False,
    *,
    atmosphere: str | None = None,
    command_line: str | None = None,
    progress: bool = False,
    max_in_flight: int | None = None,
    worker_timeout: float = WORKER_TIMEOUT_S,
    executor: str = "auto",
    device: str | None = None,
    landcover=None,
    landcover_legend: str | None = None,
    storage_options=None,
    staging_dir=None,
    keep_staged: bool = False,
    remote_timeout: float = REMOTE_TIMEOUT_S,
    sign_assets=None,
    cloud_mask="auto",
    cloud_mask_convention: str | None = None,
    keep_cloudy: bool = False,
    stac: StacSearch | None = None,
    atmosphere_data=None,
    atmosphere_data_optional: bool = False,
    elevation=None,
) -> pd.DataFrame:
    """Retrieve LST/emissivity for every scene into the Zarr store ``out``.

    ``paths``: local HDF files, HDF objects by URL (``s3://``, ``gs://``, ``https://``; glob patterns are
    expanded) and STAC items (``*.json``, local or by URL) of COG scenes. ``storage_options``: fsspec options
    (credentials, ``endpoint_url``…; a dict or JSON text; never recorded) for URL inputs, else the usual
    environment; ``staging_dir``: where HDF objects are staged (default
    :func:`akkd_scale.config.staging_dir`), each copy removed when its scene ends unless ``keep_staged``;
    ``remote_timeout``: seconds a connection or read of a URL input may stall before its scene fails;
    ``sign_assets``: a function (or ``"module:function"``) that signs STAC asset URLs, for catalogues whose
    assets need a token (``planetary_computer:sign``); signed URLs are never recorded.

    ``bundle``: Bundle, path or BundleRef (default: the shipped bundle). ``chunks``: spatial chunk
    size (int), a dict for ``open_dataset`` or ``"auto"`` (:func:`auto_chunks`). ``executor``:
    ``"cluster"`` runs on ``client`` (a ``distributed.Client``), else on the current default client,
    else on a LocalCluster started and closed here; ``"threads"`` runs each scene with Dask's threaded scheduler in
    this process, no
    cluster; ``"auto"`` picks ``"cluster"`` when a client is given or current or the batch has more
    scenes than cores, else ``"threads"`` (the same numbers either way). ``atmosphere``: AFGL
    atmosphere assumed by a ``tes`` head. ``device``: ``cpu`` or ``cuda`` (one GPU per worker process:
    start workers with one visible GPU each, e.g. dask-cuda's LocalCUDACluster). ``landcover``:
    None/``"rules"`` (NDVI rules), ``"none"`` or a land-cover GeoTIFF for every scene (``landcover_legend``
    worldcover/igbp,
    default detected; see :func:`~akkd_scale.pipeline.graph.retrieve`). ``cloud_mask``: ``"auto"`` (built-in
    tests), ``"none"`` or a cloud-mask GeoTIFF for every scene (``cloud_mask_convention`` mod35/binary, default
    detected), ``keep_cloudy`` keeps cloudy values (flagged; :mod:`.cloud_plan`). ``atmosphere_data``: ERA5 or
    MERRA-2 files whose column water vapour and air temperature the networks get at every pixel (bundles trained
    with them; :mod:`.atmosphere_plan`), ``atmosphere_data_optional``: pixels they do not cover run without them,
    ``elevation``: a DEM GeoTIFF they are height-corrected to (the files must have the grid's surface height).
    Complete scenes whose record matches are skipped unless ``overwrite``. ``worker_timeout``: seconds without
    any worker before the remaining scenes fail. ``stac``: a :class:`~akkd_scale.io.aster.stac_search.StacSearch`
    (STAC API or static catalog, by collection, bbox, datetime) whose items are added after ``paths`` (which may
    be empty); a search that finds nothing or fails raises InputError before anything is written.
    Returns one row per path, in input order: scene, group, status (complete/skipped/failed),
    pixels, seconds, error.
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    cover = LandCover.of(landcover, landcover_legend)
    clouds = Clouds.of(cloud_mask, cloud_mask_convention, keep_cloudy)
    atmosphere_files = AtmosphereData.of(atmosphere_data, atmosphere_data_optional, elevation)
    remote = Remote.of(storage_options, staging_dir, keep_staged, remote_timeout, sign_assets)
    paths = _with_found(expand(paths, remote), stac, remote)
    client = client or current_client()
    executor = choose_executor(executor, n_scenes=len(paths), cluster_given=client is not None)
    ref = bundle_ref(bundle, device)
    out = prepare_store(_store(out, remote))
    context = RunContext(
        out=out,
        ref=ref,
        heads=heads,
        chunks=_chunk_request(chunks),
        atmosphere=atmosphere,
        landcover=cover,
        command_line=redact_command_line(command_line or shlex.join(sys.argv)),
        overwrite=overwrite,
        remote=remote,
        clouds=clouds,
        atmosphere_data=atmosphere_files,
    )
    with (
        store_lock(out, context.command_line),
        scene_executor(
            executor, len(paths), client, max_in_flight=max_in_flight, worker_timeout=worker_timeout
        ) as pool,
    ):
        rows = _run(paths, context, pool, progress)
    return pd.DataFrame(rows, columns=COLUMNS)


def _with_found(paths: list[str], stac: StacSearch | None, remote: Remote) -> list[str]:
    """The inputs followed by the items a STAC search finds (none without one)."""
    if stac is None:
        return paths
    if not isinstance(stac, StacSearch):
        raise ParameterError(None, f"stac={stac!r}", variable="stac", expected="a StacSearch (StacSearch.of(url, ...))")
    return paths + search_items(stac, remote)


EXECUTORS = ("auto", "threads", "cluster")
#: Most pixels in one chunk of ``chunks="auto"``: bounds a task's memory (≈ 1 GB with the TES head).
MAX_CHUNK_PIXELS = 1024 * 1024


def auto_chunks(ny: int, nx: int) -> dict[str, int]:
    """Chunks for a scene: a standard scene (up to 2 × MAX_CHUNK_PIXELS) in two column halves, so two
    threads or workers share it with one kernel call each; larger scenes in 1024 × 1024 chunks."""
    if ny * nx <= 2 * MAX_CHUNK_PIXELS:
        return {"y": int(ny), "x": int(-(-nx // 2))}
    side = int(MAX_CHUNK_PIXELS**0.5)
    return {"y": side, "x": side}


def _chunk_request(chunks) -> dict | str:
    if chunks == "auto":
        return "auto"
    if isinstance(chunks, int) and chunks >= 1:
        return {"y": chunks, "x": chunks}
    if isinstance(chunks, dict):
        return dict(chunks)
    raise ParameterError(
        None,
        f"chunks={chunks!r}",
        variable="chunks",
        expected="'auto', a positive number of pixels or a dict such as {'y': 700, 'x': 415}",
    )


def choose_executor(executor: str, *, n_scenes: int, cluster_given: bool) -> str:
    """``threads`` or ``cluster`` for a requested ``executor`` (see :func:`run_scenes`)."""
    if executor not in EXECUTORS:
        raise ParameterError(
            None, f"unknown executor {executor!r}", variable="executor", expected=" or ".join(EXECUTORS)
        )
    if executor != "auto":
        return executor
    return "cluster" if cluster_given or n_scenes > (os.cpu_count() or 1) else "threads"


def _absolute(location) -> str:
    """Local paths made absolute (workers may run elsewhere); URLs (``scheme://``) unchanged."""
    text = str(location)
    return text if is_url(text) else str(Path(text).expanduser().resolve())


def _store(out, remote: Remote) -> StoreLocation:
    """The run's store: a local path made absolute; a URL reached with the run's storage options and timeout
    (a :class:`StoreLocation` given, e.g. by the CLI, keeps its own)."""
    if isinstance(out, StoreLocation):
        return out if out.remote else StoreLocation(_absolute(out.url))
    return locate_store(_absolute(out), remote.storage_options, remote.timeout)


def _run(paths: list, context: RunContext, executor: SceneExecutor, progress: bool) -> list[dict]:
    """Start scenes while the executor has room, end each as it finishes; one row per path, in input order.
    HDF objects by URL are staged ahead (:class:`_Prefetch`); while the next one is still in transfer, the
    scenes already started compute (the threaded executor then starts scenes in turn rather than all at
    once). A cluster left without workers fails the scenes in flight and those still to start."""
    bar = _progress_bar(len(paths)) if progress else None
    rows: list = [None] * len(paths)
    claimed = _Claimed()
    queue = deque(enumerate(paths))
    with _Prefetch(context) as prefetch:
        while queue or len(executor):
            prefetch.ahead(queue, executor.window - len(executor) + PREFETCH_AHEAD)
            while queue and len(executor) < executor.window:
                if len(executor) and prefetch.pending(queue[0][0]):
                    break  # the scenes started so far compute while the next input is still being staged
                job = _start_scene(*queue.popleft(), context, claimed, prefetch)
                if job.graph is None:
                    rows[job.index] = _report(_closed(job, context, executor), context.out, bar)
                else:
                    executor.submit(job.graph, job)
            if not len(executor):
                continue
            timeout = STAGING_POLL_S if queue and prefetch.pending(queue[0][0]) else 1.0
            try:
                ended = [_finish_scene(job, error, context) for job, error in executor.wait(timeout=timeout)]
            except ClusterError as lost:  # no worker left: fail the scenes in flight and those still to start
                ended = [job.ended("failed", lost) for job in executor.cancel()]
                ended += [
                    SceneJob(index, _as_given(path), 0.0).ended("failed", lost, timed=False) for index, path in queue
                ]
                queue.clear()
            for job in ended:
                rows[job.index] = _report(_closed(job, context, executor), context.out, bar)
    if bar is not None:
        bar.close()
    return rows


#: HDF objects staged ahead of the scenes the executor has room for (in :data:`PREFETCH_THREADS` threads), so
#: their transfer overlaps the computation of the scenes in flight; bounds the staging cache's extra use.
PREFETCH_AHEAD = 2
PREFETCH_THREADS = 2
#: Seconds between looks at a staging transfer the run loop waits for while scenes compute.
STAGING_POLL_S = 0.2


class _Prefetch:
    """Stages HDF objects by URL ahead of the run loop in a few threads (:func:`_identify` of each input, by
    input index); a prefetched input that is not used (same input twice, a refused group, a lost cluster) is
    released at the end, so nothing staged is left behind."""

    def __init__(self, context: RunContext):
        import concurrent.futures

        self.context = context
        self.pool = concurrent.futures.ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="akkd-stage")
        self.futures: dict[int, Any] = {}
        self.keys: set[str] = set()

    def ahead(self, queue: deque, count: int) -> None:
        """Start staging the URL HDF inputs among the next ``count`` of ``queue`` (each object once)."""
        for index, location in list(queue)[: max(0, count)]:
            if index in self.futures or not is_url(location) or is_stac_item(location):
                continue
            key = _input_key(location)
            if key in self.keys:
                continue
            self.keys.add(key)
            self.futures[index] = self.pool.submit(
                lambda where=location: _identify(_locate(where, self.context.remote), where, self.context)
            )

    def pending(self, index: int) -> bool:
        """Whether input ``index`` is still being staged."""
        future = self.futures.get(index)
        return future is not None and not future.done()

    def take(self, index: int) -> SceneInput | None:
        """The prefetched input ``index`` (waits for it; raises what staging raised), or None if not prefetched."""
        future = self.futures.pop(index, None)
        return None if future is None else future.result()

    def discard(self, index: int) -> None:
        """Release a prefetched input that will not be used."""
        future = self.futures.pop(index, None)
        if future is not None:
            self._release(future)

    def _release(self, future) -> None:
        try:
            scene = future.result()
        except Exception:  # its scene never started: nothing staged to release
            return
        if scene.staged is not None:
            release(scene.staged, self.context.remote.keep_staged)

    def __enter__(self) -> _Prefetch:
        return self

    def __exit__(self, *exc) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True)
        for future in self.futures.values():
            if not future.cancelled():
                self._release(future)
        self.futures.clear()


@dataclass
class _Claimed:
    """What the scenes started so far in a run took: inputs (resolved path or redacted URL → input index) and
    group names (→ input), so the same input given twice is done once and two under one group name are refused."""

    paths: dict[str, int] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    group_of: dict[str, str] = field(default_factory=dict)


def _as_given(location) -> Path | str:
    """An input as the table shows it: a local path as a Path, a URL as text."""
    return str(location) if is_url(location) else Path(location)


def _input_key(location) -> str:
    """What identifies an input within a run: the resolved local path or the URL without user-info and query."""
    return redact(location) if is_url(location) else str(Path(location).expanduser().resolve())


def _url_group(url: str) -> str:
    """Group name of an HDF object: the stem of its name, as for a local file."""
    from urllib.parse import urlsplit

    return scene_group(Path(urlsplit(url).path).name or "object")


def _stat(path: Path) -> tuple:
    """What changes when a file is rewritten or replaced: size, mtime (ns), inode."""
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino


def _locate(location, remote: Remote) -> SceneInput:
    """An input's key, group and kind, reading only what naming it needs (a STAC item and its COG headers)."""
    key = _input_key(location)
    if is_stac_item(location):
        stac = read_stac_scene(location, remote)
        source = redact(location) if is_url(location) else key
        return SceneInput(
            key, scene_group(f"{stac.item_id}.json"), source, stac.digest, stac.size, stac.digest, stac=stac
        )
    if is_url(location):
        return SceneInput(key, _url_group(str(location)), redact(location))
    given = Path(location)
    if given.is_dir():
        raise SceneFileError(given, "is a directory", expected="an ASTER L1B HDF file")
    return SceneInput(key, scene_group(given), key, path=Path(key))


def _identify(scene: SceneInput, location, context: RunContext) -> SceneInput:
    """The input with its digest, size and stat: a local file hashed; an HDF object by URL staged (hashed as it
    streams) unless its group is complete with a record of this very object (same identity: nothing to
    download); a STAC scene as located."""
    if scene.stac is not None:
        return scene
    if scene.path is not None and scene.staged is None:
        stat = _stat(scene.path)
        return replace(scene, digest=sha256_file(scene.path), size=stat[0], stat=stat)
    url = str(location)
    current = identity(url, context.remote, "an ASTER L1B/L1T HDF object")
    stored = group_record(context.out, scene.group) if not context.overwrite else None
    if stored and stored.get(SOURCE_IDENTITY) == [current.size, current.tag]:
        return replace(
            scene, digest=stored.get("source_sha256", ""), size=current.size, stat=current, remote_identity=current
        )
    staged = stage(url, context.remote)
    return replace(
        scene,
        digest=staged.sha256,
        size=staged.size,
        path=staged.path,
        staged=staged,
        stat=(_stat(staged.path), staged.identity),
        remote_identity=staged.identity,
    )


def _record(scene: SceneInput, chunks: dict[str, int], context: RunContext) -> dict:
    """The completion record of a scene (an HDF object's also names the object's identity)."""
    record = context.record(scene.digest, scene.size, chunks)
    if scene.remote_identity is not None:
        record[SOURCE_IDENTITY] = [scene.remote_identity.size, scene.remote_identity.tag]
    return record


def _start_scene(
    index: int, location, context: RunContext, claimed: _Claimed, prefetch: _Prefetch | None = None
) -> SceneJob:
    """Open one scene and build its graph: a running job, or one already ended (skipped or failed)."""
    job = SceneJob(index, _as_given(location), time.perf_counter())
    try:
        key = _input_key(location)
        if key in claimed.paths:
            if prefetch is not None:
                prefetch.discard(index)
            return replace(job, group=claimed.group_of.get(key)).ended(
                "skipped", note=f"same file as input {claimed.paths[key] + 1} of this run", timed=False
            )
        claimed.paths[key] = index
        scene = _locate(location, context.remote)
        claimed.group_of[key] = scene.group
        job = replace(job, group=scene.group, scene=scene)
        if job.group in claimed.groups:
            if prefetch is not None:
                prefetch.discard(index)
            raise InputError(
                None,
                f"group name {job.group!r} already used by {claimed.groups[job.group]} in this "
                "run (scene files need distinct names)",
            )
        claimed.groups[job.group] = redact(job.path)
        _check_same_source(job, context)
        prefetched = prefetch.take(index) if prefetch is not None else None
        scene = prefetched or _identify(scene, location, context)
        job = replace(job, scene=scene, stat=scene.stat)
        redo = context.overwrite
        if scene.path is None and scene.stac is None:  # an unchanged object whose group is complete: not staged
            job = replace(job, record=_record(scene, _recorded_chunks(scene, context), context))
            if _is_current(job, context):
                return job.ended("skipped", timed=False)
            scene = _identify(scene, location, replace(context, overwrite=True))  # redone after all: stage it
            job, redo = replace(job, scene=scene, stat=scene.stat), True
        chunks = _scene_chunks(scene, context.chunks)
        job = replace(job, record=_record(scene, chunks, context))
        if not redo and _is_current(job, context):
            return job.ended("skipped", timed=False)
        ds = _open_scene(scene, chunks, context.remote)
        job = replace(job, pixels=int(ds[BT].size // ds.sizes["band"]))
        return replace(job, graph=_scene_graph(ds, job, scene, context))
    except Exception as exc:  # a bad scene is reported, never stops the batch
        return job.ended("failed", exc)


def _recorded_chunks(scene: SceneInput, context: RunContext) -> dict[str, int]:
    """The chunks of a scene known without its file: as requested, else as its complete group records them."""
    if context.chunks != "auto":
        return context.chunks
    stored = group_record(context.out, scene.group) or {}
    return {k: int(v) for k, v in (stored.get("chunks") or {}).items()}


def _open_scene(scene: SceneInput, chunks: dict[str, int] | None, remote: Remote | None = None) -> xr.Dataset:
    """The scene's lazy dataset: the HDF reader on the (staged) file, or the COGs of a STAC scene. With
    ``remote``, the pixel reads of a staged object know where it came from (a worker on another host stages
    its own copy)."""
    if scene.stac is not None:
        return open_stac_dataset(scene.stac, chunks)
    extra = {}
    if scene.staged is not None and remote is not None:
        extra["staged_from"] = StagedSource.of(scene.staged, remote)
    with warnings.catch_warnings():  # square chunks cut the reader's whole-row storage chunks on purpose
        warnings.filterwarnings("ignore", message="The specified chunks separate", category=UserWarning)
        return xr.open_dataset(scene.path, engine="aster_l1b", chunks=chunks, **extra)


def _closed(job: SceneJob, context: RunContext, executor: SceneExecutor) -> SceneJob:
    """An ended job with its staged copies released (removed unless kept): this process's and those workers
    on other hosts made."""
    if job.scene is not None and job.scene.staged is not None:
        release(job.scene.staged, context.remote.keep_staged)
        executor.on_workers(discard_copy, StagedSource.of(job.scene.staged, context.remote))
    return job


def _check_same_source(job: SceneJob, context: RunContext) -> None:
    """A group written from another file (a different name that maps to the same group) is not replaced
    silently: refused, or with ``overwrite`` replaced with a warning naming that file."""
    source = group_source(context.out, job.group)
    if source is None or Path(source).name == Path(str(job.path)).name:
        return  # new group, or the same file (perhaps moved to another folder or given by URL)
    if not context.overwrite:
        raise InputError(
            redact(job.path),
            f"maps to group {job.group!r} of {context.out}, which holds the results of another file, {source}",
            variable="scene group",
            expected="distinct file names (rename one), another --out, or --overwrite to replace them",
        )
    log.warning("replacing group %s of %s, written from %s, with %s", job.group, context.out, source, redact(job.path))


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


def _scene_graph(ds: xr.Dataset, job: SceneJob, scene: SceneInput, context: RunContext):
    """The delayed Zarr writes of one opened scene: retrieval, output variables and provenance."""
    clouds = context.clouds
    result = retrieve(
        ds,
        context.ref,
        context.heads,
        context.atmosphere,
        landcover=context.landcover.source,
        landcover_legend=context.landcover.legend,
        cloud_mask=clouds.mask,
        cloud_mask_convention=clouds.convention,
        keep_cloudy=clouds.keep_cloudy,
        atmosphere_data=context.atmosphere_data.value,
        atmosphere_data_optional=context.atmosphere_data.optional,
        elevation=context.atmosphere_data.elevation,
    )
    out_ds = output_dataset(
        result,
        ds.attrs,
        {
            **context.provenance(scene.source, scene.digest),
            **{
                name: result.attrs[name]
                for name in ("land_cover_source", "cloud_mask", "cloud_mask_source", "keep_cloudy")
            },
            **{name: value for name, value in result.attrs.items() if name.startswith("atmosphere_")},
        },
    )
    return write_scene(out_ds, context.out, job.group)


def _scene_chunks(scene: SceneInput, request) -> dict[str, int]:
    """The chunks of one scene: as requested, or :func:`auto_chunks` of its size (read from metadata). A COG
    scene's automatic chunks are rounded up to whole tiles, so no tile is range-read by two chunks, and a
    standard scene is cut into row halves rather than column halves: a COG stores its tiles row by row, so
    each chunk's tiles are then one run of bytes (column halves interleave, and GDAL's read-ahead for one
    half fetches tiles of the other: 1.33 x the bytes in ``benchmarks/io/bench_remote.py``)."""
    if request != "auto":
        return request
    if scene.stac is not None:
        ny, nx = scene.stac.scene.shape
        chunks = auto_chunks(ny, nx)
        if chunks["y"] == ny and chunks["x"] < nx:  # a standard scene in two halves
            chunks = {"y": -(-ny // 2), "x": nx}
        return tile_chunks(scene.stac, chunks)
    sizes = xr.open_dataset(scene.path, engine="aster_l1b").sizes
    return auto_chunks(sizes["y"], sizes["x"])


def _changed(job: SceneJob, context: RunContext) -> str | None:
    """Why the job's input is not what it was when the scene started (None when unchanged)."""
    scene = job.scene
    if scene.stac is not None:
        if current_digest(scene.stac, context.remote) != job.stat:
            return "the STAC item or its COG assets changed while the scene was processed; rerun the scene"
        return None
    if scene.staged is not None:
        now = (_stat(scene.staged.path), identity(scene.staged.url, context.remote, "an ASTER L1B/L1T HDF object"))
        if now[1] != job.stat[1]:
            return "the object changed while the scene was processed; rerun the scene"
        if now[0] != job.stat[0]:
            return f"the staged copy {scene.staged.path} changed while the scene was processed; rerun the scene"
        return None
    return "the input file changed while it was processed; rerun the scene" if _stat(scene.path) != job.stat else None


def _finish_scene(job: SceneJob, error: BaseException | None, context: RunContext) -> SceneJob:
    """End a scene whose graph ran (``error``: what it raised, if it did): check it (input unchanged, every
    band has valid pixels, every chunk written), then mark its group complete with its record; otherwise
    it failed (the group stays incomplete)."""
    if error is None:
        try:
            changed = _changed(job, context)
            if changed:
                raise InputError(redact(job.path), changed)
            fraction = _cloud_fraction(context.out, job.group, _check_retrieved(job, context.out))
            mark_complete(context.out, job.group, {**job.record, "cloud_fraction": fraction})
            job = replace(job, cloud_fraction=fraction)
        except Exception as exc:  # the scene failed its checks; others go on
            error = exc
    return job.ended("complete") if error is None else job.ended("failed", error)


def _cloud_fraction(out: StoreLocation, group: str, qc: np.ndarray) -> float | None:
    """Share of a scene's pixels with valid input that have QC bit ``cloud`` (None: no cloud mask ran)."""
    import zarr

    if zarr.open_group(out.zarr_store(), path=group, mode="r").attrs.get("cloud_mask", "none") == "none":
        return None
    valid = (qc & QC_INVALID_INPUT) == 0
    return round(float(np.mean((qc[valid] & QC_CLOUD) > 0)), 6)


def _check_retrieved(job: SceneJob, out: StoreLocation) -> np.ndarray:
    """Refuse a scene where no pixel could be retrieved (read back from its ``qc``), naming the cause; else its
    ``qc``."""
    import zarr

    qc = zarr.open_array(out.zarr_store(), path=f"{job.group}/qc", mode="r")[...]
    if np.any((qc & QC_INVALID_INPUT) == 0):
        return qc
    path = redact(job.path)
    bt = _open_scene(job.scene, None)[BT]
    valid = bt.notnull().sum([d for d in bt.dims if d != "band"]).compute(scheduler="threads").values
    empty = [band for band, n in zip(BANDS, valid) if n == 0]
    if empty:
        raise SceneFileError(
            path,
            f"band(s) {', '.join(empty)} have no valid pixel (all fill, saturated or "
            "uncalibrated); the scene cannot be retrieved",
        )
    raise SceneFileError(
        path,
        "no pixel could be retrieved (every pixel has QC bit invalid_input: check "
        "view_zenith, which is NaN when the file has no TIR pointing angle)",
    )


def _describe(exc: BaseException, out=None) -> str:
    """One-line error text for the result table (a full disk names the store)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and out:
        text = f"no space left on the device of {out} ({text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _report(job: SceneJob, out, bar) -> dict:
    """Log an ended scene, advance the progress bar; the scene's row."""
    row = job.row(out)
    level = logging.WARNING if row["status"] == "failed" else logging.INFO
    cloud = "" if job.cloud_fraction is None else f", cloud {job.cloud_fraction:.1%}"
    log.log(
        level,
        "%s %s (%d px, %.1f s%s)%s",
        row["status"],
        row["scene"],
        row["pixels"],
        row["seconds"],
        cloud,
        f": {row['error']}" if row["error"] else "",
    )
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str(f"{Path(row['scene']).name}: {row['status']}")
    return row


def _progress_bar(total: int):
    """A tqdm bar over scenes on stderr."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="scene", desc="scenes", file=sys.stderr)


def verify_store(
    paths,
    out,
    bundle=None,
    heads=("fusion",),
    chunks="auto",
    *,
    atmosphere: str | None = None,
    landcover=None,
    landcover_legend: str | None = None,
    storage_options=None,
    staging_dir=None,
    keep_staged: bool = False,
    remote_timeout: float = REMOTE_TIMEOUT_S,
    sign_assets=None,
    cloud_mask="auto",
    cloud_mask_convention: str | None = None,
    keep_cloudy: bool = False,
    stac: StacSearch | None = None,
    atmosphere_data=None,
    atmosphere_data_optional: bool = False,
    elevation=None,
) -> pd.DataFrame:
    """Re-check a store without computing: for each scene, would a run skip it (``ok``) or redo it (and why)?

    Inputs (and ``stac``) as for :func:`run_scenes` (an HDF object by URL is staged only when its record names another
    version of it). Rows: scene, group, status (``ok``/``redo``/``missing``), problem; scenes not complete while
    another run
    holds the store's lock name that run (they may be in progress, not damaged).
    """
    heads = check_heads(heads, atmosphere=atmosphere)
    remote = Remote.of(storage_options, staging_dir, keep_staged, remote_timeout, sign_assets)
    out = _store(out, remote)
    context = RunContext(
        out=out,
        ref=bundle_ref(bundle),
        heads=heads,
        atmosphere=atmosphere,
        landcover=LandCover.of(landcover, landcover_legend),
        chunks=_chunk_request(chunks),
        remote=remote,
        clouds=Clouds.of(cloud_mask, cloud_mask_convention, keep_cloudy),
        atmosphere_data=AtmosphereData.of(atmosphere_data, atmosphere_data_optional, elevation),
    )
    writer = active_writer(out)
    return pd.DataFrame(
        [_verify_one(location, context, writer) for location in _with_found(expand(paths, remote), stac, remote)],
        columns=["scene", "group", "status", "problem"],
    )


def _verify_one(location, context: RunContext, writer) -> dict:
    """One row of :func:`verify_store` (``writer``: the run holding the store's lock, if any)."""
    shown = redact(_as_given(location))
    try:
        scene = _locate(location, context.remote)
    except Exception as exc:  # an input that cannot be located is reported in its row
        return {"scene": shown, "group": None, "status": "redo", "problem": _describe(exc)}
    status = group_status(context.out, scene.group)
    if status != COMPLETE:
        problem = f"group {status}" + (f" (the store is being written by a running run: {writer})" if writer else "")
        return {
            "scene": shown,
            "group": scene.group,
            "status": "redo" if status == INCOMPLETE else status,
            "problem": problem,
        }
    if scene.path is not None and not scene.path.is_file():
        problems = [f"{scene.path}: input not found"]
    else:
        try:
            scene = _identify(scene, location, context)
            chunks = (
                _recorded_chunks(scene, context)
                if scene.path is None and scene.stac is None
                else _scene_chunks(scene, context.chunks)
            )
            problems = [record_mismatch(group_record(context.out, scene.group), _record(scene, chunks, context))]
        except Exception as exc:  # an unreachable input is a problem of its row
            problems = [_describe(exc)]
        finally:
            if scene.staged is not None:
                release(scene.staged, context.remote.keep_staged)
    problems += [f"{name} {what}" for name, what in missing_chunks(context.out, scene.group).items()]
    problem = "; ".join(p for p in problems if p)
    return {"scene": shown, "group": scene.group, "status": "redo" if problem else "ok", "problem": problem}
