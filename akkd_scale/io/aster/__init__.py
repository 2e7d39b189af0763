"""ASTER L1B/L1T (HDF-EOS) reader: metadata, file structure, scene validation, VNIR NDVI, geolocation, backend."""
from .backend import AsterL1BBackendEntrypoint, open_aster_l1b
from .geolocation import view_zenith_from_pointing
from .scene import inspect_scene

__all__ = ["AsterL1BBackendEntrypoint", "inspect_scene", "open_aster_l1b", "view_zenith_from_pointing"]
