"""Shared fixtures: the data directory (../shared/data unless AKKD_DATA_DIR says otherwise)."""
from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("AKKD_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["AKKD_DATA_DIR"])
    if not path.is_dir():
        pytest.fail(f"AKKD_DATA_DIR={path} does not exist: tests need the shared data directory")
    return path


class ComputeCounter(dask.callbacks.Callback):
    """Counts Dask graph executions on local schedulers: proves what stays lazy."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


@pytest.fixture
def compute_counter() -> ComputeCounter:
    """A fresh compute counter; use as ``with compute_counter as counter:``."""
    return ComputeCounter()
