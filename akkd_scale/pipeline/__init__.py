"""Scale pipeline: map_blocks retrieval on a Dask cluster into a resumable Zarr store.

``run_scenes`` for batches, ``retrieve`` for one dataset, ``get_client`` for clusters.
Importing this package registers ``Dataset.akkd`` (xarray only); everything else, which pulls in
onnxruntime, pandas and distributed, loads on first attribute access.
"""

from __future__ import annotations

import importlib

from . import accessor as _accessor  # noqa: F401  (registers Dataset.akkd)

_EXPORTS = {
    "run_scenes": "runner",
    "retrieve": "graph",
    "BundleRef": "kernel",
    "bundle_ref": "kernel",
    "get_client": "cluster",
    "close_client": "cluster",
    "dashboard_link": "cluster",
    "group_status": "store",
    "open_scene": "store",
    "scene_group": "store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Lazy exports (PEP 562)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
