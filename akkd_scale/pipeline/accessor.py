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

    def retrieve(
        self,
        bundle=None,
        heads=("fusion",),
        atmosphere: str | None = None,
        *,
        device: str | None = None,
        landcover=None,
        landcover_legend: str | None = None,
        cloud_mask="auto",
        cloud_mask_convention: str | None = None,
        keep_cloudy: bool = False,
        atmosphere_data=None,
        atmosphere_data_optional: bool = False,
        elevation=None,
    ) -> xr.Dataset:
        """``akkd_scale.retrieve`` on this dataset (lazy for Dask-backed data; compute or ``to_zarr`` it)."""
        from .graph import retrieve

        return retrieve(
            self._ds,
            bundle,
            heads,
            atmosphere,
            device,
            landcover=landcover,
            landcover_legend=landcover_legend,
            cloud_mask=cloud_mask,
            cloud_mask_convention=cloud_mask_convention,
            keep_cloudy=keep_cloudy,
            atmosphere_data=atmosphere_data,
            atmosphere_data_optional=atmosphere_data_optional,
            elevation=elevation,
        )
