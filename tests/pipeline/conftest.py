"""Pipeline fixtures: a real tiny bundle, real fixture L1B files (good and bad), a real LocalCluster, and the test
servers (moto S3, range-capable HTTP) with the L1T HDF / COG + STAC pair (tests/servers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from servers import closed_endpoint, http_server, l1t_pair, s3_server, stalled_endpoint  # noqa: F401

SHAPE = (48, 56)


def scene_bt(seed: int, shape=SHAPE) -> np.ndarray:
    """A (5, ny, nx) brightness-temperature field with structure in every band (K)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    base = 290.0 + 20.0 * np.sin(2 * np.pi * (xx + seed / 7)) * np.cos(np.pi * yy) + rng.normal(0, 1.5, shape)
    offsets = np.array([-4.0, -3.2, -2.5, 0.0, -0.6])[:, None, None] * (1 + yy)
    return base[None] + offsets


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> dict[str, Path]:
    """Three good scenes (one with fill pixels) and three bad files: truncated, not HDF, VNIR-only."""
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    root = tmp_path_factory.mktemp("scenes")
    fill = np.zeros(SHAPE, dtype=bool)
    fill[:5, :9] = True
    files = {
        "good_a": write_aster_l1b(root / "AST_L1B_good_a.hdf", brightness_temperature=scene_bt(1), shape=SHAPE),
        "good_b": write_aster_l1b(
            root / "AST_L1B_good_b.hdf",
            brightness_temperature=scene_bt(2),
            shape=SHAPE,
            fill_mask=fill,
            pointing_angle=-8.5,
            acquisition_time="2005-03-02T10:11:12Z",
        ),
        "good_c": write_aster_l1b(
            root / "AST_L1B_good_c.hdf", brightness_temperature=scene_bt(3), shape=SHAPE, pointing_angle=5.0
        ),
        "vnir_only": write_aster_l1b(root / "AST_L1B_vnir_only.hdf", shape=SHAPE, include_tir=False),
    }
    truncated = write_aster_l1b(root / "AST_L1B_truncated.hdf", brightness_temperature=scene_bt(4), shape=SHAPE)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    files["truncated"] = truncated
    not_hdf = root / "AST_L1B_not_hdf.hdf"
    not_hdf.write_text("this is a text file, not HDF4\n" * 20)
    files["not_hdf"] = not_hdf
    return files


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster: two single-threaded worker processes (with nannies), no dashboard.

    Module-scoped: a live Client is Dask's default scheduler, which must not leak into other test modules.
    """
    from akkd_scale.pipeline import close_client, get_client

    client = get_client(workers=2, threads_per_worker=1, dashboard_address=None)
    yield client
    close_client(client)
