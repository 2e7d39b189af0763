"""``ds.akkd``: the scale pipeline's retrieval from users' own xarray/Dask code.

Registered when this module is imported (``import akkd_scale`` does it). Importing it loads only
xarray; the models load on first use.
"""
from __future__ import annotations

import xarray as xr


@xr.register_dataset_accessor("akkd")
class AkkdAccessor:
    """Methods under ``Dataset.akkd``."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def retrieve(self, bundle=None, heads=("fusion",), atmosphere: str | None = None) -> xr.Dataset:
        """Lazy LST/emissivity for this dataset (one ``map_blocks``; compute or ``to_zarr`` it).

        ``bundle``: a Bundle, a bundle path or a BundleRef (default: the shipped bundle);
        ``atmosphere``: AFGL atmosphere assumed by a ``tes`` head.
        """
        from .graph import retrieve_scene
        from .kernel import bundle_ref

        return retrieve_scene(self._ds, bundle_ref(bundle), heads, atmosphere)
