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
from ..models.retrieve import TES_HEAD, TES_TERMS
from ..simulate.profiles import AFGL_TABLES, read_afgl
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


def check_heads(heads, atmosphere: str | None = None) -> tuple[str, ...]:
    """Heads as a non-empty tuple of distinct heads (checked before any task is built).

    ``tes`` is an extra head only (the first head must be a network, which also gives ``qc``) and needs
    ``atmosphere``: L1B scenes carry no atmospheric terms, so TES corrects with an assumed atmosphere.
    """
    heads = tuple(h.strip() for h in ([heads] if isinstance(heads, str) else heads) if h.strip())
    if not heads or len(set(heads)) != len(heads) or not set(heads) <= set(HEADS) | {TES_HEAD}:
        raise ParameterError("heads", f"heads {heads}", variable="heads",
                             expected=f"one or more distinct heads from {HEADS + (TES_HEAD,)}, e.g. ('fusion', 'tes')")
    if heads[0] == TES_HEAD:
        raise ParameterError("heads", "'tes' cannot be the first head", variable="heads",
                             expected="a network head first, e.g. ('fusion', 'tes')")
    if TES_HEAD in heads and atmosphere not in AFGL_TABLES:
        raise ParameterError("heads", f"the 'tes' head needs an assumed atmosphere (got {atmosphere!r})",
                             variable="atmosphere",
                             expected=f"an AFGL atmosphere name ({', '.join(AFGL_TABLES)})")
    return heads


def tes_terms(ds: xr.Dataset, atmosphere: str) -> dict[str, np.ndarray]:
    """Band τ, L↑, L↓ of an AFGL ``atmosphere`` at the scene's view zenith, from sea level (LOWTRAN7).

    One set of terms for the whole scene: TES's atmospheric correction with an assumed atmosphere.
    """
    from ..physics.atmosphere import band_terms

    view_zenith = float(np.nanmean(np.asarray(ds[VZA].values)))
    terms = band_terms(read_afgl(atmosphere), view_zenith=view_zenith, surface_altitude=0.0)
    return {name: terms[name].transpose("band").values.astype(np.float32) for name in TES_TERMS}


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


def retrieve_scene(ds: xr.Dataset, bundle_ref: BundleRef, heads=("fusion",), atmosphere: str | None = None) -> xr.Dataset:
    """Lazy retrieval of a scene (or any dataset with ``brightness_temperature(band, …)``).

    Returns ``lst``, ``emissivity(band, …)``, ``lst_uncertainty``, ``qc`` and per-head extras, with
    the input's chunks, plus ``latitude``/``longitude`` coordinates when the input has them. With a
    ``tes`` head, TES uses the terms of the assumed AFGL ``atmosphere`` (:func:`tes_terms`).
    """
    heads = check_heads(heads, atmosphere)
    inputs = model_inputs(ds)
    terms = tes_terms(ds, atmosphere) if TES_HEAD in heads else None
    spec = output_spec(inputs[BT].dims, heads)
    result = xr.map_blocks(retrieve_block, inputs, args=(bundle_ref, heads, spec),
                           kwargs={"tes_terms": terms}, template=template_for(inputs, spec))
    if terms is not None:
        result.attrs["tes_atmosphere"] = f"{atmosphere} (AFGL-1986, LOWTRAN7, sea level)"
    chunks = dict(zip(inputs[BT].dims, inputs[BT].chunks))
    geo = {name: ds[name].chunk({d: chunks[d] for d in ds[name].dims if d in chunks})
           for name in GEO if name in ds.variables}
    return result.assign_coords(geo) if geo else result
