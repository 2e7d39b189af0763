"""Zarr output: one store, one group per scene, a completion marker written last.

Layout::

    results.zarr/                      zarr v3 store (consolidated=False)
      <scene stem>/                    one group per input file, named from the file stem
        lst(y, x), emissivity(band, y, x), lst_uncertainty(y, x), qc(y, x),
        lst_<head>, emissivity_<head>, lst_uncertainty_<head>  (every head, when several are asked for)
        latitude/longitude(y, x), time, band, wavelength
        attrs: CF + provenance + akkd_status

A group is ``akkd_status="incomplete"`` from the moment it is created and becomes ``"complete"``
only after every chunk has been written; readers and reruns trust nothing else.
"""
from __future__ import annotations

import datetime as _dt
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

log = logging.getLogger(__name__)

STATUS = "akkd_status"
COMPLETE = "complete"
INCOMPLETE = "incomplete"
MISSING = "missing"


def scene_group(path) -> str:
    """Group name of a scene: the file stem with characters Zarr paths dislike replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).stem).lstrip(".")
    if not name:
        raise InputError(path, "file name gives an empty group name", expected="a named scene file")
    return name


def group_status(out, group: str) -> str:
    """``complete``, ``incomplete`` (started, not finished) or ``missing`` for one scene group."""
    import zarr

    try:
        attrs = zarr.open_group(str(out), path=group, mode="r").attrs
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError,
            zarr.errors.NodeTypeValidationError):
        return MISSING
    return COMPLETE if attrs.get(STATUS) == COMPLETE else INCOMPLETE


def output_dataset(result: xr.Dataset, scene_attrs: dict, provenance: dict) -> xr.Dataset:
    """Result (with its CF attributes) plus a ``time`` coordinate and provenance, ready for Zarr.

    Returns a new Dataset; ``result`` is not modified.
    """
    out = result.copy()
    if "band" in out.coords:  # variable-length strings have a Zarr v3 spec; fixed-width unicode has none
        out = out.assign_coords(band=xr.Variable("band", out["band"].values.astype(object), out["band"].attrs))
    for name in out.variables:
        out[name].encoding = {}
    time = scene_attrs.get("acquisition_time")
    if time:
        out = out.assign_coords(time=np.datetime64(pd.Timestamp(time).tz_localize(None), "ns"))
        out["time"].attrs = {"long_name": "acquisition time", "standard_name": "time"}
    out.attrs = {"Conventions": "CF-1.10", "title": "AK-KD land surface temperature and emissivity",
                 **provenance, STATUS: INCOMPLETE}
    return out


def encoding_for(ds: xr.Dataset) -> dict:
    """Zarr chunks equal to the Dask chunks and CF fill values (NaN for floats)."""
    encoding = {}
    for name, var in ds.variables.items():
        enc = {}
        if var.chunks is not None:
            enc["chunks"] = tuple(c[0] for c in var.chunks)
        if np.issubdtype(var.dtype, np.floating):
            enc["_FillValue"] = np.nan
        if enc:
            encoding[name] = enc
    return encoding


def write_scene(ds: xr.Dataset, out, group: str):
    """Create (or replace) the scene group as ``incomplete`` and return the delayed chunk writes."""
    log.debug("writing group %s of %s", group, out)
    return ds.to_zarr(str(out), group=group, mode="w", consolidated=False, compute=False,
                      encoding=encoding_for(ds), zarr_format=3)


def mark_complete(out, group: str) -> None:
    """Flag a group complete; call only after its writes have finished."""
    import zarr

    node = zarr.open_group(str(out), path=group, mode="r+")
    node.attrs.update({STATUS: COMPLETE,
                       "date_completed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})


def open_scene(out, group: str, *, require_complete: bool = True) -> xr.Dataset:
    """Open one scene group lazily; by default refuse a group that is not complete."""
    status = group_status(out, group)
    if require_complete and status != COMPLETE:
        raise InputError(out, f"scene group is {status}", variable=group,
                         expected=f"{STATUS}={COMPLETE!r} (rerun `akkd-scale run` to finish it)")
    return xr.open_zarr(str(out), group=group, consolidated=False)
