"""Shared fixtures: the data directory (../shared/data unless AKKD_DATA_DIR says otherwise)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("AKKD_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["AKKD_DATA_DIR"])
    if not path.is_dir():
        pytest.fail(f"AKKD_DATA_DIR={path} does not exist: tests need the shared data directory")
    return path
