"""Retrieval of LST and emissivity from brightness temperatures with a model bundle (xarray, lazy or eager).

``predict_block`` is the pure NumPy kernel (band axis first) that Dask map_blocks kernels wrap;
``retrieve`` applies it to a Dataset: Dask in → Dask out (one task per input block, the bundle
carried by reference), NumPy in → NumPy out. Non-finite inputs give NaN outputs and QC bit 1.
"""
from __future__ import annotations

import logging
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..errors import InputError, ParameterError
from .bundle import BANDS, load_bundle
from .inference import HEADS, QC_BITS, Bundle

log = logging.getLogger(__name__)

TES_HEAD = "tes"
TES_TERMS = ("transmittance", "path_radiance", "sky_radiance")
_PER_HEAD = 2 + len(BANDS)  # lst, emissivity (5), lst_uncertainty


def predict_block(bt_block, vza_block, bundle: Bundle, heads=("fusion",)) -> dict[str, np.ndarray]:
    """Retrieve one NumPy block: ``bt_block`` (band=5, ...) in K, ``vza_block`` broadcastable to (...).

    Returns ``lst`` (...), ``emissivity`` (5, ...), ``lst_uncertainty`` (...) of the first head,
    ``qc`` (uint8, ...) and ``lst_<head>``, ``emissivity_<head>``, ``lst_uncertainty_<head>`` for
    every head in ``heads`` (bundle heads only; TES needs atmospheric terms, see ``retrieve``).
    """
    bt_block = np.asarray(bt_block, dtype=np.float32)
    if bt_block.ndim < 1 or bt_block.shape[0] != len(BANDS):
        raise InputError("brightness temperature block", f"shape {bt_block.shape}", variable="brightness_temperature",
                         expected=f"band axis first with {len(BANDS)} bands ({', '.join(BANDS)})")
    shape = bt_block.shape[1:]
    bt = bt_block.reshape(len(BANDS), -1).T
    vza = np.broadcast_to(np.asarray(vza_block, dtype=np.float32), shape).reshape(-1)
    heads = tuple(heads)
    result, qc = bundle.predict_with_quality(bt, vza, heads)
    out = {"qc": qc.reshape(shape)}
    for head, values in result.items():
        out[f"lst_{head}"] = values["lst"].reshape(shape)
        out[f"emissivity_{head}"] = values["emissivity"].T.reshape((len(BANDS),) + shape)
        out[f"lst_uncertainty_{head}"] = values["lst_uncertainty"].reshape(shape)
    for name in ("lst", "emissivity", "lst_uncertainty"):
        out[name] = out[f"{name}_{heads[0]}"]
    return out


def _stacked_block(bt_block, vza_block, bundle: Bundle, heads: tuple[str, ...]) -> np.ndarray:
    """predict_block packed as one float32 array (7·len(heads) + 1, ...) for dask map_blocks."""
    out = predict_block(bt_block, vza_block[0], bundle, heads)
    parts = []
    for head in heads:
        parts += [out[f"lst_{head}"][None], out[f"emissivity_{head}"], out[f"lst_uncertainty_{head}"][None]]
    parts.append(out["qc"][None].astype(np.float32))
    return np.concatenate(parts, axis=0)


def _inputs(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """Brightness temperature (band first, bands B10..B14) and view zenith broadcast to the other dims."""
    source = ds.attrs.get("source_file", "dataset")
    for name in ("brightness_temperature", "view_zenith"):
        if name not in ds:
            raise InputError(source, "variable missing", variable=name, expected="brightness_temperature(band, ...) "
                             "and view_zenith broadcastable to it")
    bt = ds["brightness_temperature"]
    if "band" not in bt.dims:
        raise InputError(source, f"dimensions {bt.dims}", variable="brightness_temperature",
                         expected="a 'band' dimension")
    if "band" in bt.coords:
        labels = [str(b) for b in bt["band"].values]
        if sorted(labels) != sorted(BANDS):
            raise InputError(source, f"bands {labels}", variable="brightness_temperature",
                             expected=f"bands {list(BANDS)}")
        bt = bt.sel(band=list(BANDS))
    elif bt.sizes["band"] != len(BANDS):
        raise InputError(source, f"{bt.sizes['band']} bands", variable="brightness_temperature",
                         expected=f"{len(BANDS)} bands {list(BANDS)}")
    others = [d for d in bt.dims if d != "band"]
    bt = bt.transpose("band", *others)
    vza = ds["view_zenith"]
    if "band" in vza.dims or not set(vza.dims) <= set(others):
        raise InputError(source, f"dimensions {vza.dims}", variable="view_zenith",
                         expected=f"a subset of {tuple(others)}")
    vza = vza.broadcast_like(bt.isel(band=0, drop=True)).transpose(*others)
    return bt, vza


def _tes_outputs(ds: xr.Dataset, bt: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """TES LST and emissivity(band, ...) using the atmospheric terms carried by ``ds``."""
    missing = [name for name in TES_TERMS if name not in ds or "band" not in ds[name].dims]
    if missing:
        raise ParameterError(ds.attrs.get("source_file", "dataset"), "the 'tes' head needs atmospheric terms",
                             variable=", ".join(missing), expected="transmittance, path_radiance, sky_radiance "
                             "with a band dimension")
    from ..physics.tes import tes_dataset

    terms = ds[list(TES_TERMS)].sel(band=list(BANDS)) if "band" in ds.coords else ds[list(TES_TERMS)]
    result = tes_dataset(terms.assign(brightness_temperature=bt))
    others = [d for d in bt.dims if d != "band"]
    return result["lst"].transpose(*others), result["emissivity"].transpose("band", *others)


def _resolve(bundle) -> Bundle:
    return bundle if isinstance(bundle, Bundle) else load_bundle(Path(bundle))


def retrieve(ds: xr.Dataset, bundle, heads=("fusion",)) -> xr.Dataset:
    """LST, emissivity(band, ...), lst_uncertainty and qc from ``brightness_temperature`` and ``view_zenith``.

    ``heads`` picks the networks (teacher, student, student_baseline, student_global,
    student_global_baseline, fusion; ``tes`` if ``ds`` carries transmittance/path_radiance/
    sky_radiance). The first head gives ``lst``/``emissivity``/``lst_uncertainty``; with several
    heads every head also gets ``lst_<head>``, ``emissivity_<head>`` (and ``lst_uncertainty_<head>``
    for network heads). Dask-backed input gives a lazy result; NumPy input an eager one.
    """
    bundle = _resolve(bundle)
    heads = tuple(heads)
    unknown = [h for h in heads if h not in HEADS + (TES_HEAD,)]
    if not heads or unknown or len(set(heads)) != len(heads):
        raise ParameterError("retrieve", f"heads {heads}", variable="heads",
                             expected=f"distinct names from {', '.join(HEADS + (TES_HEAD,))}")
    bt, vza = _inputs(ds)
    others = bt.dims[1:]
    net_heads = tuple(h for h in heads if h != TES_HEAD) or ("student",)
    lazy = isinstance(bt.data, da.Array) or isinstance(vza.data, da.Array)
    if lazy:
        bt_data = da.asarray(bt.data).rechunk({0: -1})
        vza_data = da.asarray(vza.data).rechunk(bt_data.chunks[1:])[None]
        n_channels = _PER_HEAD * len(net_heads) + 1
        stacked = da.map_blocks(_stacked_block, bt_data, vza_data, bundle, net_heads, dtype=np.float32,
                                chunks=((n_channels,),) + bt_data.chunks[1:], name="akkd-retrieve")
    else:
        stacked = _stacked_block(bt.values, vza.values[None], bundle, net_heads)

    coords = {k: v for k, v in bt.coords.items() if set(v.dims) <= set(others)}
    band_coords = {k: v for k, v in bt.coords.items() if set(v.dims) <= set(bt.dims)}
    per_head = {}
    for i, head in enumerate(net_heads):
        base = i * _PER_HEAD
        per_head[head] = {
            "lst": xr.DataArray(stacked[base], dims=others, coords=coords, attrs={"units": "K"}),
            "emissivity": xr.DataArray(stacked[base + 1: base + 1 + len(BANDS)], dims=bt.dims,
                                       coords=band_coords, attrs={"units": "1"}),
            "lst_uncertainty": xr.DataArray(stacked[base + 1 + len(BANDS)], dims=others, coords=coords,
                                            attrs={"units": "K"})}
    if TES_HEAD in heads:
        lst, eps = _tes_outputs(ds, bt)
        per_head[TES_HEAD] = {"lst": lst.assign_attrs(units="K"), "emissivity": eps.assign_attrs(units="1"),
                              "lst_uncertainty": xr.full_like(lst, np.nan, dtype=np.float32)}
    qc = xr.DataArray(stacked[-1], dims=others, coords=coords).astype(np.uint8)
    primary = per_head[heads[0]]
    out = xr.Dataset({"lst": primary["lst"], "emissivity": primary["emissivity"],
                      "lst_uncertainty": primary["lst_uncertainty"], "qc": qc})
    if len(heads) > 1:
        for head in heads:
            out[f"lst_{head}"] = per_head[head]["lst"]
            out[f"emissivity_{head}"] = per_head[head]["emissivity"]
            if head != TES_HEAD:
                out[f"lst_uncertainty_{head}"] = per_head[head]["lst_uncertainty"]
    out["qc"].attrs = {"flag_masks": list(QC_BITS.values()), "flag_meanings": " ".join(QC_BITS)}
    out["lst"].attrs["long_name"] = f"land surface temperature ({heads[0]})"
    out.attrs = {"bundle": str(bundle.path), "bundle_sha256": bundle.sha256, "heads": ",".join(heads)}
    return out
