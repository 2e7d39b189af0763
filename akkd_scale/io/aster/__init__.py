"""ASTER L1B/L1T (HDF-EOS) reader: metadata, file structure, scene validation, VNIR NDVI, geolocation, backend;
and STAC items of L1T COGs read into the same dataset (``stac``)."""

from .backend import AsterL1BBackendEntrypoint, open_aster_l1b
from .geolocation import view_zenith_from_pointing
from .scene import inspect_scene
from .stac import open_aster_stac

__all__ = [
    "AsterL1BBackendEntrypoint",
    "inspect_scene",
    "open_aster_l1b",
    "open_aster_stac",
    "view_zenith_from_pointing",
]
