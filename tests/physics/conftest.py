"""Physics fixtures: a fresh cache per test session, so LOWTRAN7 is really built from source + patch."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def session_cache(tmp_path_factory):
    """Cache directory under the session's temp dir, inherited by worker processes through the environment."""
    path = tmp_path_factory.getbasetemp() / "akkd_cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AKKD_CACHE_DIR", str(path))
        yield path
