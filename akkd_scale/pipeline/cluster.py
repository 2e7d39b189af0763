"""Dask clients: a LocalCluster of worker processes by default, or an existing scheduler by address.

Worker processes (not threads) because the HDF4 library is not thread-safe and each process keeps
its own cached model bundle.
"""
from __future__ import annotations

import logging

from ..errors import ClusterError

log = logging.getLogger(__name__)


#: Seconds to wait for an existing scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0


def get_client(scheduler: str | None = None, workers: int | None = None, threads_per_worker: int | None = None,
               *, dashboard_address: str | None = ":8787", connect_timeout: float = CONNECT_TIMEOUT_S,
               **cluster_kwargs):
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
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout:g} s "
                               f"({type(exc).__name__}); check the address and that the scheduler is running") from None
    else:
        if dashboard_address is None:
            cluster_kwargs["scheduler_kwargs"] = {**cluster_kwargs.get("scheduler_kwargs", {}), "dashboard": False}
        # Dask's default MALLOC_TRIM_THRESHOLD_=65536 turns glibc's adaptive mmap threshold off, so every
        # large NumPy temporary of the kernel is a fresh mmap: the kernel ran ~10 % slower in workers.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                                   dashboard_address=dashboard_address, **cluster_kwargs)
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
