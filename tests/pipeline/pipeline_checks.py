"""Shared checks for pipeline tests: reference predictions straight from the Bundle API, store reads."""

from __future__ import annotations

import numpy as np
import xarray as xr

from akkd_scale.conventions import QC_LAND_COVER_RULES
from akkd_scale.landcover.rules import classes_from_rules
from akkd_scale.models.bundle import load_bundle
from akkd_scale.pipeline.store import locate_store

OUTPUTS = ("lst", "emissivity", "lst_uncertainty", "qc")


def reference(path, bundle_path, heads=("fusion",), land_cover=None, from_rules=None) -> dict[str, np.ndarray]:
    """Per-pixel ``Bundle.predict``/``Bundle.quality`` on the eagerly read scene: what the pipeline must give.

    NDVI, when the scene has it, is the networks' NDVI input and gives the land cover by the rules unless
    ``land_cover`` (y, x) is given, with ``from_rules`` (y, x) saying which of its classes are the rules'
    (fused by their rules entries); the QC bits 1–32 are compared (land-cover rule bit included).
    """
    bundle = load_bundle(bundle_path)
    ds = xr.open_dataset(path, engine="aster_l1b").load()
    bt = ds["brightness_temperature"].transpose("band", "y", "x").values
    ny, nx = bt.shape[1:]
    vza = np.broadcast_to(np.asarray(ds["view_zenith"].values, dtype=np.float32), (ny, nx))
    rows, angles = bt.reshape(5, -1).T, vza.ravel()
    ndvi = ds["ndvi"].values.ravel() if "ndvi" in ds else None
    if land_cover is None:
        land_cover = (
            classes_from_rules(ndvi, rows[:, 0], rows[:, 3], rows[:, 4]) if ndvi is not None else np.full(ny * nx, -1)
        )
        from_rules = land_cover >= 0
    land_cover = np.asarray(land_cover).ravel()
    from_rules = None if from_rules is None else np.asarray(from_rules, bool).ravel()
    extra = {"ndvi": ndvi} if ndvi is not None else None
    pred = bundle.predict(rows, angles, heads=heads, extra=extra, land_cover=land_cover, from_rules=from_rules)
    first = pred[heads[0]]
    qc = bundle.quality(rows, angles, extra=extra, land_cover=land_cover)
    out = {
        "lst": first["lst"].reshape(ny, nx),
        "emissivity": first["emissivity"].T.reshape(5, ny, nx),
        "lst_uncertainty": first["lst_uncertainty"].reshape(ny, nx),
        "qc": (qc | np.where(land_cover >= 0, QC_LAND_COVER_RULES, 0).astype(np.uint8)).reshape(ny, nx),
    }
    for head in heads[1:]:
        out[f"lst_{head}"] = pred[head]["lst"].reshape(ny, nx)
        out[f"emissivity_{head}"] = pred[head]["emissivity"].T.reshape(5, ny, nx)
    return out


def stored(out, group, names=OUTPUTS) -> dict[str, np.ndarray]:
    """Arrays of one scene group, read back from the Zarr store (a path, or a StoreLocation of a URL)."""
    ds = xr.open_zarr(locate_store(out).zarr_store(), group=group, consolidated=False)
    return {
        name: ds[name].transpose(*(("band",) if "band" in ds[name].dims else ()), "y", "x").values for name in names
    }


def assert_same(actual: dict, expected: dict) -> None:
    """Bit-identical arrays (NaN where NaN) for every key of ``expected``."""
    for name, values in expected.items():
        np.testing.assert_array_equal(actual[name], values, err_msg=name)
