"""A small STAC catalog of synthetic L1T scenes for the search tests: three scenes (two over the same place a few
weeks apart, one elsewhere), written as HDF and as COG + STAC items by the project's writers, one static
catalog over them, and the package's local server (files with byte ranges + a minimal STAC API) on 127.0.0.1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

#: name → (centre latitude, centre longitude, acquisition time, seed).
SEARCH_SCENES = {
    "AST_L1T_00307152004183005_search_a": (36.5, -116.9, "2004-07-15T18:30:05.250Z", 1),
    "AST_L1T_00308022004183010_search_b": (36.5, -116.9, "2004-08-02T18:30:10.000Z", 2),
    "AST_L1T_00307152004183100_search_c": (40.0, -105.0, "2004-07-15T18:31:00.000Z", 3),
}
SHAPE, TILE = (40, 50), 128
#: A box over scenes a and b (Death Valley) that misses c (Colorado).
BBOX_AB = (-117.5, 36.0, -116.0, 37.0)


@dataclass(frozen=True)
class SearchCatalog:
    """The scenes' HDF files and item JSONs (by name), the catalog's path, and the server's URLs."""

    hdf: dict
    items: dict
    catalog: Path
    catalog_url: str
    api_url: str
    server: object

    def item_url(self, name: str) -> str:
        return self.server.file_url(self.items[name])


def write_search_scene(root: Path, name: str, lat: float, lon: float, when: str, seed: int) -> tuple[Path, Path]:
    from akkd_scale.simulate.l1b_writer import vnir_dn_for_ndvi, write_aster_l1t
    from akkd_scale.simulate.stac_writer import write_aster_l1t_stac

    rng = np.random.default_rng(seed)
    ny, nx = SHAPE
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    base = 293.0 + 12.0 * np.sin(2 * np.pi * (xx + seed / 5)) * np.cos(np.pi * yy) + rng.normal(0, 1.0, (ny, nx))
    bt = base[None] + np.array([-4.0, -3.2, -2.5, 0.0, -0.6])[:, None, None]
    ndvi = np.clip(0.6 * np.sin(3 * xx + seed) * yy, -0.3, 0.8)
    sun = (135.0, 62.0)
    hdf = write_aster_l1t(
        root / "hdf" / f"{name}.hdf",
        shape=SHAPE,
        brightness_temperature=bt,
        center_lat=lat,
        center_lon=lon,
        acquisition_time=when,
        solar_direction=sun,
        pointing_angle=2.0 + seed,
        vnir_dn=vnir_dn_for_ndvi(ndvi, acquisition_time=when, solar_direction=sun),
    )
    return hdf, write_aster_l1t_stac(hdf, root / "stac" / "scenes" / name, blocksize=TILE)


@pytest.fixture(scope="session")
def search_catalog(tmp_path_factory):
    """The three scenes, their static catalog (collection aster-l1t) and a running server (search pages of 1 item,
    so pystac-client follows ``next`` links)."""
    from akkd_scale.simulate.stac_server import serve
    from akkd_scale.simulate.stac_writer import write_stac_catalog

    root = tmp_path_factory.mktemp("stac_search")
    (root / "hdf").mkdir()
    hdf, items = {}, {}
    for name, spec in SEARCH_SCENES.items():
        hdf[name], items[name] = write_search_scene(root, name, *spec)
    catalog = write_stac_catalog(root / "stac", list(items.values()))
    server = serve(root / "stac", catalog=catalog, page=1)
    yield SearchCatalog(hdf, items, catalog, server.file_url(catalog), server.api_url, server)
    server.close()
