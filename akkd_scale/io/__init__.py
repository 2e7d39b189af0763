"""Scene readers: the lazy ASTER L1B/L1T xarray backend (``engine="aster_l1b"``) and its helpers."""

from .aster import AsterL1BBackendEntrypoint, inspect_scene, open_aster_l1b, view_zenith_from_pointing

__all__ = ["AsterL1BBackendEntrypoint", "inspect_scene", "open_aster_l1b", "view_zenith_from_pointing"]
