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


@pytest.fixture(scope="module")
def umbc_surfaces(data_dir):
    """UMBC profiles, land-cover surfaces and grey-absorber terms (no LOWTRAN) for builder tests."""
    from akkd_scale.simulate import profiles, surfaces
    from tests.simulate.conftest import simple_terms

    umbc = profiles.read_crtm_umbc48(data_dir / "profiles" / "crtm_umbc48")
    return umbc, surfaces.land_cover_surfaces(n_per_class=40, seed=0), simple_terms(umbc)
