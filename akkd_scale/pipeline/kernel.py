"""Per-chunk retrieval kernel for ``xr.map_blocks``: the model travels by reference, not by value.

Tasks carry a :class:`BundleRef` (path + sha256, a few hundred bytes). Each worker process loads the
bundle once, on first use, through ``models.bundle.load_bundle_cached`` (keyed by path, sha256 and
thread count; it refuses a bundle whose sha256 changed), so a graph with thousands of chunks never
ships network weights and never reloads them per chunk.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import BundleError

log = logging.getLogger(__name__)

BT = "brightness_temperature"
VZA = "view_zenith"


@dataclass(frozen=True)
class BundleRef:
    """What a task needs to find a model bundle: its path and the sha256 it must have."""

    path: str
    sha256: str


def bundle_ref(bundle=None) -> BundleRef:
    """Reference for a Bundle, a bundle path, a BundleRef, or (None) the default bundle.

    Loading here (in the client) checks the bundle once before any task is built, so a missing or
    tampered bundle fails the run up front instead of in every task.
    """
    if isinstance(bundle, BundleRef):
        return bundle
    from ..models.bundle import load_bundle

    if bundle is None:
        from ..models.bundle import default_bundle_path

        path = default_bundle_path()
        if path is None or not Path(path).exists():
            raise BundleError(f"{path}: no default model bundle there; pass --bundle PATH (bundle=...) or "
                              "set AKKD_BUNDLE to a bundle directory built by the models pipeline")
        bundle = path
    if isinstance(bundle, (str, Path)):
        bundle = load_bundle(bundle)
    return BundleRef(str(Path(bundle.path).expanduser().resolve()), str(bundle.sha256))


def worker_threads() -> int:
    """Threads of the Dask worker running this task; 1 outside a worker (threaded/sync schedulers).

    Outside a distributed worker several tasks usually run at once on a thread pool, so one
    intra-op thread per task avoids oversubscription.
    """
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


#: Rows per onnxruntime call within a chunk. A 256-wide teacher's activations then stay in cache
#: (8192 × 256 × 4 B = 8 MiB per layer): predict_block ran 1.4× faster than with 65 536-row slabs
#: (0.42 vs 0.30 Mpx/s, one thread; benchmarks/pipeline/bench_throughput.py), and workers use less memory.
SLAB_ROWS = 8192


def cached_bundle(ref: BundleRef):
    """The referenced bundle, loaded once per process with this worker's thread count."""
    from ..models.bundle import load_bundle_cached

    return load_bundle_cached(ref.path, ref.sha256, worker_threads(), SLAB_ROWS)


def retrieve_block(block: xr.Dataset, ref: BundleRef, heads: tuple[str, ...],
                   spec: dict[str, tuple[tuple[str, ...], str]], tes_terms: dict | None = None) -> xr.Dataset:
    """Retrieve one chunk: ``block`` holds ``brightness_temperature(band, …)`` and ``view_zenith``.

    ``spec`` maps each output variable to (dims, dtype), exactly as in the map_blocks template, so
    what the kernel returns always matches what the graph promised. ``tes_terms`` (τ, L↑, L↓ per
    band) run TES for a ``tes`` head.
    """
    from ..models.retrieve import TES_HEAD, predict_block

    bundle = cached_bundle(ref)
    bt_da = block[BT].transpose("band", ...)
    plane = bt_da.isel(band=0, drop=True)
    bt = np.asarray(bt_da.values, dtype=np.float32)
    vza = np.asarray(block[VZA].broadcast_like(plane).transpose(*plane.dims).values, dtype=np.float32)
    networks = tuple(h for h in heads if h != TES_HEAD)
    out = predict_block(bt, vza, bundle, networks)
    if TES_HEAD in heads:
        out.update(_tes_block(bt, tes_terms))
    data_vars = {}
    for name, (dims, dtype) in spec.items():
        if name not in out:
            raise BundleError(f"{ref.path}: the bundle's block prediction gave no {name!r} "
                              f"(got {sorted(out)}) for heads {heads}")
        shape = tuple(block.sizes[d] for d in dims)
        data_vars[name] = (dims, np.asarray(out[name]).astype(dtype, copy=False).reshape(shape))
    return xr.Dataset(data_vars, coords=block.coords)


def _tes_block(bt: np.ndarray, terms: dict) -> dict[str, np.ndarray]:
    """TES outputs of one block (band axis first); TES has no per-pixel uncertainty model (NaN)."""
    from ..models.retrieve import TES_TERMS
    from ..physics.tes import tes

    extra = (1,) * (bt.ndim - 1)
    result = tes(bt, *(np.asarray(terms[name]).reshape((-1,) + extra) for name in TES_TERMS),
                 quantity="brightness_temperature", band_axis=0)
    return {"lst_tes": result.lst, "emissivity_tes": result.emissivity,
            "lst_uncertainty_tes": np.full(bt.shape[1:], np.nan, np.float32)}
