"""The run loop's two executors without a cluster: errors come back per job, a cluster without workers
raises ClusterError, and the table row of a scene lost with it reads as before."""

from __future__ import annotations

import time
from pathlib import Path

import dask
import pytest

from akkd_scale.errors import ClusterError
from akkd_scale.pipeline.cluster import ClusterExecutor, ThreadedExecutor
from akkd_scale.pipeline.runner import SceneJob


@dask.delayed
def _fail():
    raise ValueError("broken scene")


def test_threaded_executor_returns_each_job_with_its_error():
    executor = ThreadedExecutor(n_scenes=2)
    try:
        executor.submit(dask.delayed(sum)([1, 2]), "good")
        executor.submit(_fail(), "bad")
        assert len(executor) == 2
        finished = []
        while len(executor):
            finished += executor.wait(timeout=1.0)
    finally:
        executor.close()
    errors = dict(finished)
    assert errors["good"] is None and isinstance(errors["bad"], ValueError)


class _NoWorkers:
    """A distributed Client stand-in whose cluster has lost every worker."""

    def nthreads(self):
        return {}


def test_cluster_without_workers_fails_the_scenes_with_a_cluster_error():
    executor = ClusterExecutor(_NoWorkers(), window=2, worker_timeout=0.05)
    executor._check_workers(progressed=False)  # the clock starts
    time.sleep(0.1)
    with pytest.raises(ClusterError) as lost:
        executor._check_workers(progressed=False)
    job = SceneJob(0, Path("AST_L1B_x.hdf"), 0.0).ended("failed", lost.value, timed=False)
    assert job.row("/out.zarr") == {
        "scene": "AST_L1B_x.hdf",
        "group": None,
        "status": "failed",
        "pixels": 0,
        "seconds": 0.0,
        "error": "ClusterError: the Dask cluster has had no worker for 0 s (all workers lost); complete scenes are "
        "kept, rerun to finish the rest",
    }
    executor._check_workers(progressed=True)  # any progress resets the clock
    assert executor._no_workers_since is None
