"""Where scene graphs run: Dask clients, and the two executors of a batch run (threads or cluster).

Clients: a LocalCluster of worker processes by default, or an existing scheduler by address. Worker
processes (not threads) because the HDF4 library is not thread-safe and each process keeps its own
cached model bundle. Executors: :class:`ThreadedExecutor` (Dask's threaded scheduler in this process)
and :class:`ClusterExecutor` (a distributed Client) offer the same small interface, so
``runner._run`` is one loop for both.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ..errors import ClusterError

log = logging.getLogger(__name__)


#: Seconds to wait for an existing scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0


#: Preloaded into LocalCluster workers: they leave Ctrl-C to the process that started them.
WORKER_SETUP = "akkd_scale.pipeline.worker_setup"


def get_client(
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    *,
    dashboard_address: str | None = ":8787",
    connect_timeout: float = CONNECT_TIMEOUT_S,
    **cluster_kwargs,
):
    """Connect to ``scheduler`` (e.g. ``tcp://host:8786``) or start a LocalCluster with processes.

    ``workers``/``threads_per_worker`` apply only to the LocalCluster; ``dashboard_address=None``
    starts it without the Bokeh dashboard. An unreachable scheduler raises ClusterError after
    ``connect_timeout`` seconds. Closing the returned client also closes a cluster it started.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        if workers or threads_per_worker:
            log.warning("--workers/--threads-per-worker are ignored when connecting to %s", scheduler)
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout:g} s "
                f"({type(exc).__name__}); check the address and that the scheduler is running"
            ) from None
    else:
        if dashboard_address is None:
            cluster_kwargs["scheduler_kwargs"] = {**cluster_kwargs.get("scheduler_kwargs", {}), "dashboard": False}
        # Dask's default MALLOC_TRIM_THRESHOLD_=65536 turns glibc's adaptive mmap threshold off, so every
        # large NumPy temporary of the kernel is a fresh mmap: the kernel ran ~10 % slower in workers.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=dashboard_address,
                preload=[WORKER_SETUP],
                **cluster_kwargs,
            )
        client = Client(cluster)
    log.debug("Dask client %s; dashboard: %s", client.scheduler.address, dashboard_link(client))
    return client


def close_client(client) -> None:
    """Close a client from :func:`get_client` and the LocalCluster it started (if any)."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


def dashboard_link(client) -> str | None:
    """URL of the Dask dashboard, or None when the scheduler runs without one."""
    try:
        return client.dashboard_link
    except (AttributeError, KeyError):
        return None


def current_client():
    """The default distributed client of this process, if any."""
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


class SceneExecutor(Protocol):
    """What the run loop needs of an executor: ``window`` scenes in flight at most (``len``: how many are),
    ``submit`` a scene's graph with the job it belongs to, ``wait`` up to ``timeout`` s for finished jobs,
    each with its error or None (raises ClusterError when nothing can run any more), ``cancel`` the jobs in
    flight (returned)."""

    window: int

    def __len__(self) -> int: ...

    def submit(self, graph, job) -> None: ...

    def wait(self, timeout: float) -> list[tuple[Any, BaseException | None]]: ...

    def cancel(self) -> list: ...

    def on_workers(self, function, *args) -> None: ...


def _error(future) -> BaseException | None:
    """What a finished future raised, or None when it succeeded."""
    try:
        future.result()
    except Exception as exc:  # a failed scene is reported, never stops the batch
        return exc
    return None


class ThreadedExecutor:
    """Scenes on Dask's threaded scheduler in this process, every scene of the batch started before any
    computes; as many at once as there are cores (scenes are independent, so this parallelises better than
    chunks), the cores split among them. Submitted scenes start together at the next :meth:`wait`."""

    def __init__(self, n_scenes: int):
        self.cores = os.cpu_count() or 1
        self.window = max(1, n_scenes)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.cores)
        self._queued: list[tuple[Any, Any]] = []
        self._in_flight: dict[concurrent.futures.Future, Any] = {}

    def __len__(self) -> int:
        return len(self._queued) + len(self._in_flight)

    def submit(self, graph, job) -> None:
        self._queued.append((graph, job))

    def wait(self, timeout: float) -> list[tuple[Any, BaseException | None]]:
        import dask

        if self._queued:
            threads = max(1, self.cores // min(self.cores, len(self._queued)))
            for graph, job in self._queued:
                self._in_flight[self._pool.submit(dask.compute, graph, scheduler="threads", num_workers=threads)] = job
            self._queued = []
        done, _ = concurrent.futures.wait(
            self._in_flight, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return [(self._in_flight.pop(future), _error(future)) for future in done]

    def cancel(self) -> list:
        jobs = [job for _, job in self._queued] + list(self._in_flight.values())
        for future in self._in_flight:
            future.cancel()
        self._queued, self._in_flight = [], {}
        return jobs

    def on_workers(self, function, *args) -> None:
        """Nothing: the scenes run in this process."""

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class ClusterExecutor:
    """Scenes on a distributed ``client``, at most ``window`` in flight, so client memory and the scheduler's
    task count stay flat however long the batch is. A cluster with no worker for ``worker_timeout`` s
    (all lost) makes :meth:`wait` raise ClusterError."""

    def __init__(self, client, window: int, worker_timeout: float):
        self.client, self.window, self.worker_timeout = client, window, worker_timeout
        self._in_flight: dict[Any, Any] = {}
        self._no_workers_since: float | None = None

    def __len__(self) -> int:
        return len(self._in_flight)

    def submit(self, graph, job) -> None:
        self._in_flight[self.client.compute(graph)] = job

    def wait(self, timeout: float) -> list[tuple[Any, BaseException | None]]:
        from distributed import wait

        try:
            done = wait(list(self._in_flight), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        finished = []
        for future in done:
            finished.append((self._in_flight.pop(future), _error(future)))
            future.release()
        self._check_workers(bool(done))
        return finished

    def _check_workers(self, progressed: bool) -> None:
        """Raise ClusterError once the cluster has had no worker and made no progress for ``worker_timeout`` s."""
        if progressed or self.client.nthreads():
            self._no_workers_since = None
            return
        self._no_workers_since = self._no_workers_since or time.monotonic()
        if time.monotonic() - self._no_workers_since > self.worker_timeout:
            raise ClusterError(
                f"the Dask cluster has had no worker for {self.worker_timeout:.0f} s (all workers "
                "lost); complete scenes are kept, rerun to finish the rest"
            )

    def cancel(self) -> list:
        jobs = list(self._in_flight.values())
        for future in self._in_flight:
            future.cancel()
        self._in_flight = {}
        return jobs

    def on_workers(self, function, *args) -> None:
        """Call ``function(*args)`` in every worker process; a worker that fails or is gone is passed over."""
        try:
            self.client.run(function, *args, on_error="ignore")
        except Exception as exc:  # noqa: BLE001  (a cluster shutting down: nothing left to clean there)
            log.debug("on_workers(%s) failed: %s", getattr(function, "__name__", function), exc)


@contextmanager
def scene_executor(
    kind: str, n_scenes: int, client=None, *, max_in_flight: int | None = None, worker_timeout: float
) -> Iterator[SceneExecutor]:
    """The executor of a run: ``"threads"`` (:class:`ThreadedExecutor`) or ``"cluster"`` on ``client``, else
    a LocalCluster started here (:func:`get_client`) and closed at the end; at most ``max_in_flight``
    scenes at once on a cluster (default twice its thread count, at least 2)."""
    if kind == "threads":
        executor = ThreadedExecutor(n_scenes)
        try:
            yield executor
        finally:
            executor.close()
        return
    own_client = client is None
    client = client or get_client()
    try:
        yield ClusterExecutor(client, max_in_flight or max(2, 2 * len(client.nthreads())), worker_timeout)
    finally:
        if own_client:
            close_client(client)
