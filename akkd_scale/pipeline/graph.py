"""One ``xr.map_blocks`` per scene: the retrieval graph stays a few tasks per chunk.

Only ``brightness_temperature`` and ``view_zenith`` enter the blocks; geolocation and other inputs
are attached to the result lazily, outside the kernel, so they add no work to the model tasks.
"""
from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..errors import InputError, ParameterError
from ..models.inference import HEADS
from ..models.retrieve import TES_HEAD
from .kernel import BT, VZA, BundleRef, retrieve_block

GEO = ("latitude", "longitude")


def output_spec(bt_dims: tuple[str, ...], heads: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], str]]:
    """Output variables → (dims, dtype) for the requested heads.

    The first head fills ``lst``/``emissivity``/``lst_uncertainty``/``qc``; with several heads every
    head also gets ``lst_<head>``, ``emissivity_<head>`` and ``lst_uncertainty_<head>`` (the models'
    ``retrieve`` contract).
    """
    spatial = tuple(d for d in bt_dims if d != "band")
    spec = {"lst": (spatial, "float32"), "emissivity": (("band",) + spatial, "float32"),
            "lst_uncertainty": (spatial, "float32"), "qc": (spatial, "uint8")}
    for head in heads if len(heads) > 1 else ():
        spec[f"lst_{head}"] = (spatial, "float32")
        spec[f"emissivity_{head}"] = (("band",) + spatial, "float32")
        spec[f"lst_uncertainty_{head}"] = (spatial, "float32")
    return spec


def check_heads(heads) -> tuple[str, ...]:
    """Heads as a non-empty tuple of distinct bundle heads (checked before any task is built).

    ``tes`` is refused: TES needs per-pixel atmospheric terms that L1B scenes do not carry (use
    ``akkd_scale.models.retrieve.retrieve`` on a dataset that has them).
    """
    heads = tuple(h.strip() for h in ([heads] if isinstance(heads, str) else heads) if h.strip())
    if TES_HEAD in heads:
        raise ParameterError("heads", "the 'tes' head needs transmittance, path_radiance and sky_radiance, "
                             "which scenes do not carry", variable="heads", expected=f"heads from {HEADS}")
    if not heads or len(set(heads)) != len(heads) or not set(heads) <= set(HEADS):
        raise ParameterError("heads", f"heads {heads}", variable="heads",
                             expected=f"one or more distinct heads from {HEADS}, e.g. ('fusion', 'teacher')")
    return heads


def model_inputs(ds: xr.Dataset) -> xr.Dataset:
    """The two variables the kernel reads, with index coordinates and ``wavelength`` only.

    The band dimension becomes one chunk (the network needs all five bands of a pixel).
    """
    source = ds.attrs.get("source_file", "dataset")
    for name in (BT, VZA):
        if name not in ds.variables:
            raise InputError(source, "variable missing", variable=name,
                             expected="a scene opened with engine='aster_l1b' (or the same layout)")
    if "band" not in ds[BT].dims:
        raise InputError(source, f"dimensions {ds[BT].dims} have no 'band'", variable=BT,
                         expected="brightness_temperature(band, y, x)")
    extra = set(ds[VZA].dims) - set(ds[BT].dims)
    if extra:
        raise InputError(source, f"dimensions {sorted(extra)} not in brightness_temperature", variable=VZA,
                         expected="a scalar or dimensions shared with brightness_temperature")
    inputs = ds[[BT, VZA]]
    keep = set(inputs.indexes) | ({"wavelength"} if "wavelength" in ds.coords else set())
    inputs = inputs.drop_vars([c for c in inputs.coords if c not in keep])
    inputs = inputs.assign({BT: inputs[BT].variable.chunk({"band": -1})})
    inputs.attrs = {}
    return inputs.unify_chunks()


def template_for(inputs: xr.Dataset, spec: dict) -> xr.Dataset:
    """Lazy, never-computed stand-in for the result, with the input's chunks."""
    bt = inputs[BT]
    chunks = dict(zip(bt.dims, bt.chunks))
    data_vars = {}
    for name, (dims, dtype) in spec.items():
        shape = tuple(bt.sizes[d] for d in dims)
        data_vars[name] = (dims, da.empty(shape, chunks=tuple(chunks[d] for d in dims), dtype=np.dtype(dtype)))
    return xr.Dataset(data_vars, coords=inputs.coords)


def retrieve_scene(ds: xr.Dataset, bundle_ref: BundleRef, heads=("fusion",)) -> xr.Dataset:
    """Lazy retrieval of a scene (or any dataset with ``brightness_temperature(band, …)``).

    Returns ``lst``, ``emissivity(band, …)``, ``lst_uncertainty``, ``qc`` and per-head extras, with
    the input's chunks, plus ``latitude``/``longitude`` coordinates when the input has them.
    """
    heads = check_heads(heads)
    inputs = model_inputs(ds)
    spec = output_spec(inputs[BT].dims, heads)
    result = xr.map_blocks(retrieve_block, inputs, args=(bundle_ref, heads, spec),
                           template=template_for(inputs, spec))
    chunks = dict(zip(inputs[BT].dims, inputs[BT].chunks))
    geo = {name: ds[name].chunk({d: chunks[d] for d in ds[name].dims if d in chunks})
           for name in GEO if name in ds.variables}
    return result.assign_coords(geo) if geo else result
