"""Where akkd_scale finds shared data and keeps caches (environment-configurable)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError


def data_dir() -> Path:
    """Root of the public data (profiles/, emissivity/): ``$AKKD_DATA_DIR``.

    The repository never stores these files; tests and the Makefile point ``AKKD_DATA_DIR`` at the
    shared data directory.
    """
    value = os.environ.get("AKKD_DATA_DIR")
    if not value:
        raise InputError(
            "AKKD_DATA_DIR",
            "environment variable is not set",
            expected="the directory holding profiles/ and emissivity/",
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise InputError(
            path,
            "data directory does not exist",
            variable="AKKD_DATA_DIR",
            expected="a directory holding profiles/ and emissivity/",
        )
    return path


def cache_dir() -> Path:
    """Cache for built extensions and atmospheric-term tables: ``$AKKD_CACHE_DIR`` or ~/.cache/akkd_scale."""
    path = Path(os.environ.get("AKKD_CACHE_DIR", Path.home() / ".cache" / "akkd_scale")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def staging_dir() -> Path:
    """Local cache for scene inputs staged from URLs: ``$AKKD_STAGING_DIR`` or ``cache_dir()/staging``.

    Not created here: staging creates what it needs. Put it on a disk with room for the scenes in flight.
    """
    value = os.environ.get("AKKD_STAGING_DIR")
    return Path(value).expanduser() if value else cache_dir() / "staging"
