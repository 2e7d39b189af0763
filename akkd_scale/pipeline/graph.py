"""The one retrieval graph: ``xr.map_blocks(retrieve_block, inputs, template=…)`` with the bundle by reference.

``retrieve`` (also ``akkd_scale.retrieve``, ``ds.akkd.retrieve`` and every scene of ``run_scenes``)
validates the heads (:func:`check_heads`, before any task exists), selects the kernel's inputs and
builds one map_blocks over them. Dask in → Dask out (a few tasks per chunk); NumPy in → the same
kernel runs once, eagerly. Geolocation and other coordinates are attached outside the kernel.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files

import dask.array as da
import numpy as np
import xarray as xr

from ..clouds.mask import CLOUD_TEST_BITS, CLOUD_TEST_MEANINGS
from ..conventions import (
    ATMOSPHERE_GIVEN,
    BANDS,
    BT,
    CLOUD_TESTS,
    HEADS,
    NDVI,
    NDVI_FROM_REFLECTANCE,
    NETWORK_HEADS,
    OUTPUT_ATTRS,
    QC_BITS,
    TES_HEAD,
    TES_TERMS,
    VNIR_BAND,
    VNIR_REFLECTANCE,
    VZA,
)
from ..errors import InputError, ParameterError
from .atmosphere_plan import ATMOSPHERE_VARIABLES, plan_atmosphere, with_atmosphere
from .cloud_plan import AUTO, CloudPlan, plan_clouds
from .kernel import bundle_ref, cached_bundle, retrieve_block
from .landcover_plan import LandCoverPlan, plan_land_cover

GEO = ("latitude", "longitude")
AFGL_TERMS_FILE = "afgl_tes_terms.json"


def check_heads(heads, *, atmosphere: str | None = None, dataset_terms: bool = False) -> tuple[str, ...]:
    """Heads as a non-empty tuple of distinct known heads, checked before any cluster or task exists.

    ``heads`` may be a comma-separated string. ``tes`` is an extra head only (the first head must be a
    network, which also gives ``qc``) and needs atmospheric terms: from the dataset
    (``dataset_terms``) or an assumed AFGL ``atmosphere``. An ``atmosphere`` without ``tes`` is refused.
    """
    names = heads.split(",") if isinstance(heads, str) else list(heads)
    heads = tuple(str(h).strip() for h in names if str(h).strip())
    unknown = [h for h in heads if h not in HEADS]
    if not heads or unknown:
        raise ParameterError(
            None,
            f"unknown heads {unknown}" if unknown else "no heads given",
            variable="heads",
            expected=f"one or more of {', '.join(HEADS)}, e.g. fusion,tes",
        )
    if len(set(heads)) != len(heads):
        raise ParameterError(
            None, f"repeated heads in {','.join(heads)}", variable="heads", expected="each head at most once"
        )
    if TES_HEAD in heads and not dataset_terms and atmosphere is None:
        raise ParameterError(
            None,
            "the 'tes' head needs atmospheric terms",
            variable="atmosphere",
            expected=f"{', '.join(TES_TERMS)} (band, …) in the dataset, or an assumed AFGL "
            f"atmosphere ({', '.join(afgl_atmospheres())})",
        )
    if atmosphere is not None and atmosphere not in afgl_atmospheres():
        raise ParameterError(
            None,
            f"unknown atmosphere {atmosphere!r} for the 'tes' head",
            variable="atmosphere",
            expected=f"an AFGL atmosphere: {', '.join(afgl_atmospheres())}",
        )
    if atmosphere is not None and TES_HEAD not in heads:
        raise ParameterError(
            None,
            f"atmosphere {atmosphere!r} given but no 'tes' head",
            variable="atmosphere",
            expected="the 'tes' head among the heads (only TES uses an assumed atmosphere)",
        )
    if heads[0] == TES_HEAD:
        raise ParameterError(
            None,
            "'tes' cannot be the first head",
            variable="heads",
            expected=f"a network head first ({', '.join(NETWORK_HEADS)}), e.g. fusion,tes",
        )
    return heads


def output_spec(
    spatial: tuple[str, ...], heads: tuple[str, ...], clouds: bool = False, atmosphere_data: bool = False
) -> dict[str, tuple[tuple[str, ...], str]]:
    """Output variables → (dims, dtype): the first head fills ``lst``/``emissivity``/``lst_uncertainty``/``qc``,
    ``land_cover`` holds the classes, with a cloud mask (``clouds``) ``cloud_tests`` its test bits, with
    ``atmosphere_data`` ``atmosphere_input`` where the networks had it; with several heads every head also gets
    ``lst_<head>``, ``emissivity_<head>``, ``lst_uncertainty_<head>``."""
    spec = {
        "lst": (spatial, "float32"),
        "emissivity": (("band",) + spatial, "float32"),
        "lst_uncertainty": (spatial, "float32"),
        "qc": (spatial, "uint8"),
        "land_cover": (spatial, "int8"),
    }
    if clouds:
        spec[CLOUD_TESTS] = (spatial, "uint16")
    if atmosphere_data:
        spec[ATMOSPHERE_GIVEN] = (spatial, "uint8")
    for head in heads if len(heads) > 1 else ():
        spec[f"lst_{head}"] = (spatial, "float32")
        spec[f"emissivity_{head}"] = (("band",) + spatial, "float32")
        spec[f"lst_uncertainty_{head}"] = (spatial, "float32")
    return spec


@functools.lru_cache(maxsize=1)
def _afgl_table() -> dict:
    """The shipped AFGL band terms (``scripts/make_afgl_tes_terms.py`` writes them)."""
    return json.loads((files("akkd_scale") / "data" / AFGL_TERMS_FILE).read_text())


def afgl_atmospheres() -> tuple[str, ...]:
    """Names of the AFGL atmospheres a ``tes`` head can assume."""
    return tuple(_afgl_table()["atmospheres"])


def tes_terms(ds: xr.Dataset, atmosphere: str) -> dict[str, np.ndarray]:
    """Band τ, L↑, L↓ (band,) of an AFGL ``atmosphere`` at sea level and the scene's mean view zenith.

    One set of terms for the whole scene: TES's atmospheric correction with an assumed atmosphere,
    interpolated in view zenith from the shipped LOWTRAN7 table (ln τ, radiances linearly).
    """
    table = _afgl_table()
    if atmosphere not in table["atmospheres"]:
        raise ParameterError(
            "tes_terms",
            f"unknown atmosphere {atmosphere!r}",
            variable="atmosphere",
            expected=f"one of {', '.join(table['atmospheres'])}",
        )
    grid = np.asarray(table["view_zenith"])
    view_zenith = float(np.nanmean(np.asarray(ds[VZA].values)))
    if not grid[0] <= view_zenith <= grid[-1]:
        raise InputError(
            ds.attrs.get("source_file", "dataset"),
            f"mean view zenith {view_zenith}°",
            variable=VZA,
            expected=f"{grid[0]}–{grid[-1]}° for the assumed-atmosphere TES terms",
        )
    terms = xr.Dataset(
        {name: (table["dims"], np.asarray(values)) for name, values in table["atmospheres"][atmosphere].items()},
        coords={"view_zenith": grid, "band": table["bands"]},
    )
    terms["transmittance"] = np.log(terms["transmittance"])
    at = terms.interp(view_zenith=view_zenith).sel(band=list(BANDS))
    at["transmittance"] = np.exp(at["transmittance"])
    return {name: at[name].values.astype(np.float32) for name in TES_TERMS}


def _band_variable(ds: xr.Dataset, name: str, spatial: tuple[str, ...]) -> xr.DataArray:
    """A (band, …) input with bands in BANDS order and no dimension outside ``spatial``."""
    source = ds.attrs.get("source_file", "dataset")
    var = ds[name]
    if "band" not in var.dims:
        raise InputError(
            source,
            f"dimensions {var.dims} have no 'band'",
            variable=name,
            expected=f"{name}(band, …) with bands {', '.join(BANDS)}",
        )
    if "band" in var.coords:
        labels = [str(b) for b in var["band"].values]
        if sorted(labels) != sorted(BANDS):
            raise InputError(source, f"bands {labels}", variable=name, expected=f"bands {list(BANDS)}")
        if labels != list(BANDS):
            var = var.sel(band=list(BANDS))
    elif var.sizes["band"] != len(BANDS):
        raise InputError(source, f"{var.sizes['band']} bands", variable=name, expected=f"bands {list(BANDS)}")
    extra = [d for d in var.dims if d != "band" and d not in spatial]
    if extra:
        raise InputError(
            source, f"dimensions {extra} not in {BT}", variable=name, expected=f"band plus dimensions of {BT} {spatial}"
        )
    return var


def ndvi_from_reflectance(ds: xr.Dataset, clouds: CloudPlan) -> bool:
    """Whether the kernel computes NDVI from ``vnir_reflectance``: the cloud plan reads the reflectance and the
    dataset's ``ndvi`` says it is exactly that NDVI (the reader's), so VNIR is read once per chunk."""
    return VNIR_REFLECTANCE in clouds.inputs and NDVI in ds.variables and ds[NDVI].attrs.get(NDVI_FROM_REFLECTANCE) == 1


def model_inputs(
    ds: xr.Dataset,
    heads: tuple[str, ...],
    atmosphere: str | None = None,
    cover: LandCoverPlan = LandCoverPlan(),
    extra: tuple[str, ...] = (),
    clouds: CloudPlan = CloudPlan(),
) -> xr.Dataset:
    """What the kernel reads: brightness temperature, view zenith, for ``tes`` the band terms, what the
    land-cover plan ``cover`` and the cloud plan ``clouds`` need (``ndvi``, ``vnir_reflectance``,
    ``latitude``/``longitude``) and the bundle's further inputs ``extra`` the dataset has (e.g. ``ndvi``;
    the networks see the missing value for those it lacks).

    Only index coordinates (and ``wavelength``) are kept; with Dask-backed input the band dimensions
    become one chunk (the networks need all five bands of a pixel, the cloud tests all three VNIR bands).
    """
    source = ds.attrs.get("source_file", "dataset")
    for name in (BT, VZA):
        if name not in ds.variables:
            raise InputError(
                source,
                "variable missing",
                variable=name,
                expected="brightness_temperature(band, …) and view_zenith broadcastable to it "
                "(a scene opened with engine='aster_l1b' has both)",
            )
    bt = _band_variable(ds, BT, tuple(ds[BT].dims))
    spatial = tuple(d for d in bt.dims if d != "band")
    if not set(ds[VZA].dims) <= set(spatial):
        raise InputError(
            source, f"dimensions {ds[VZA].dims}", variable=VZA, expected=f"a scalar or a subset of {spatial}"
        )
    inputs = {BT: bt, VZA: ds[VZA]}
    if TES_HEAD in heads and atmosphere is not None:
        inputs.update(
            {
                name: xr.DataArray(values, dims="band", coords={"band": bt["band"]} if "band" in bt.coords else {})
                for name, values in tes_terms(ds, atmosphere).items()
            }
        )
    elif TES_HEAD in heads:
        inputs.update({name: _band_variable(ds, name, spatial) for name in TES_TERMS})
    names = dict.fromkeys(cover.inputs + clouds.inputs + tuple(n for n in extra if n in ds.variables))
    if ndvi_from_reflectance(ds, clouds):
        names.pop(NDVI, None)  # the kernel computes it from the reflectance it reads anyway
    for name in names:
        if not set(ds[name].dims) <= set(spatial) | {VNIR_BAND}:
            raise InputError(
                source,
                f"dimensions {ds[name].dims}",
                variable=name,
                expected=f"a subset of {spatial} (the land cover is classed per pixel)",
            )
        inputs[name] = ds[name].variable
    inputs = xr.Dataset(inputs)
    keep = set(inputs.indexes) | ({"wavelength"} if "wavelength" in inputs.coords else set())
    inputs = inputs.drop_vars([c for c in inputs.coords if c not in keep])
    if any(isinstance(v.data, da.Array) for v in inputs.variables.values()):
        inputs = inputs.chunk({"band": -1, **({VNIR_BAND: -1} if VNIR_BAND in inputs.dims else {})}).unify_chunks()
    return inputs


def template_for(inputs: xr.Dataset, spec: dict) -> xr.Dataset:
    """Lazy, never-computed stand-in for the result, with the input's chunks."""
    chunks = dict(zip(inputs[BT].dims, inputs[BT].chunks))
    data_vars = {
        name: (
            dims,
            da.empty(
                tuple(inputs.sizes[d] for d in dims), dtype=np.dtype(dtype), chunks=tuple(chunks[d] for d in dims)
            ),
        )
        for name, (dims, dtype) in spec.items()
    }
    return xr.Dataset(data_vars, coords=inputs.coords)


def cf_attrs(name: str) -> dict:
    """CF attributes of an output variable; per-head variables (``lst_<head>`` …) name their head."""
    if name == CLOUD_TESTS:
        return {
            "long_name": "cloud tests that found cloud evidence (bit field)",
            "units": "1",
            "flag_masks": np.array(list(CLOUD_TEST_BITS.values()), dtype=np.uint16),
            "flag_meanings": " ".join(CLOUD_TEST_BITS),
            "comment": "; ".join(f"{name}: {text}" for name, text in CLOUD_TEST_MEANINGS.items()),
        }
    if name in OUTPUT_ATTRS:
        return dict(OUTPUT_ATTRS[name])
    for base in ("lst_uncertainty", "emissivity", "lst"):  # longest prefix first
        if name.startswith(base + "_"):
            attrs = dict(OUTPUT_ATTRS[base])
            attrs["long_name"] += f" ({name[len(base) + 1 :]} head)"
            return attrs
    return {}


def _carried_coords(ds: xr.Dataset, spatial: tuple[str, ...], result: xr.Dataset) -> dict:
    """Coordinates of ``ds`` on the output grid (latitude/longitude, spatial_ref, …), chunked like ``result``."""
    names = [n for n in ds.coords if n not in result.coords and set(ds[n].dims) <= set(spatial)]
    names += [n for n in GEO if n in ds.data_vars]
    chunks = dict(zip(result["lst"].dims, result["lst"].chunks or ()))
    carried = {}
    for name in names:
        var = ds[name].variable
        if chunks and var.ndim:
            var = var.chunk({d: chunks[d] for d in var.dims})
        carried[name] = var
    return carried


def retrieve(
    ds: xr.Dataset,
    bundle=None,
    heads=("fusion",),
    atmosphere: str | None = None,
    device: str | None = None,
    landcover=None,
    landcover_legend: str | None = None,
    *,
    cloud_mask=AUTO,
    cloud_mask_convention: str | None = None,
    keep_cloudy: bool = False,
    atmosphere_data=None,
    atmosphere_data_optional: bool = False,
    elevation=None,
) -> xr.Dataset:
    """LST, emissivity(band, …), lst_uncertainty and qc from ``brightness_temperature`` and ``view_zenith``.

    ``bundle``: a Bundle, a bundle path or a BundleRef (default: the shipped bundle). ``heads``: the
    first fills ``lst``/``emissivity``/``lst_uncertainty``; with several, each head also gets
    ``lst_<head>``, ``emissivity_<head>``, ``lst_uncertainty_<head>``. A ``tes`` head uses the
    dataset's ``transmittance``/``path_radiance``/``sky_radiance`` (band, …) or, when ``atmosphere``
    is given, that AFGL atmosphere (:func:`tes_terms`). ``device``: ``cpu`` (default) or ``cuda``
    (onnxruntime's CUDA provider in every task). ``landcover``: None (default) or ``"rules"``: NDVI/BT
    rules where the scene has NDVI (QC bit ``land_cover_from_rules``), ``"none"`` (not classed), or a
    land-cover GeoTIFF (legend ``landcover_legend``, ``worldcover``/``igbp``, default detected) sampled
    in the same kernel task, the rules where it gives no class (:mod:`.landcover`); attribute
    ``land_cover_source`` says which. The class chooses the pixel's class students (bundles with them);
    pixels without a class use their brightness-temperature stratum (QC bit
    ``brightness_temperature_strata``). Bundle inputs beyond the bands (NDVI) come from the dataset when it
    has them. ``cloud_mask``: ``"auto"`` (default: the built-in tests, day or night, on scene images with a
    ``solar_zenith``), ``"none"``, or a cloud-mask GeoTIFF (convention ``cloud_mask_convention``
    ``mod35``/``binary``, default detected) with the built-in tests where it has no data
    (:mod:`.cloud_plan`): cloudy pixels get QC bit ``cloud`` (edges ``cloud_buffer``), class -1, NaN LST,
    ε and uncertainty unless ``keep_cloudy``, and ``cloud_tests`` their test bits; attributes
    ``cloud_mask``/``cloud_mask_source`` say which mask ran and how. The scene's clear-sky reference is
    computed here, from a strided sample of band 13. ``atmosphere_data``: ERA5/MERRA-2 file(s) giving bundles
    trained with them the reanalysis column water vapour and air temperature at every pixel, or ``"dataset"``
    for the dataset's own ``column_water_vapour``/``air_temperature`` (:mod:`.atmosphere_plan`; without, the
    networks run on the bands alone); ``atmosphere_data_optional``: pixels the files do not cover run without
    them instead of failing; ``elevation``: a DEM GeoTIFF the reanalysis is height-corrected to (else the dataset's
    ``elevation``, if any); ``atmosphere_input`` says per pixel which way it ran, ``atmosphere_*`` attributes
    name the files (sha256) and the interpolation. Dask-backed input gives a lazy result with the input's
    chunks; NumPy input an eager one.
    """
    has_terms = all(name in ds.variables for name in TES_TERMS)
    heads = check_heads(heads, atmosphere=atmosphere, dataset_terms=has_terms)
    ref = bundle_ref(bundle, device)
    cover = plan_land_cover(ds, landcover, landcover_legend)
    plan = plan_atmosphere(atmosphere_data, atmosphere_data_optional, elevation)
    ds, atmosphere_attrs = with_atmosphere(ds, plan, cached_bundle(ref))
    extra = tuple(
        n for n in cached_bundle(ref).extra_inputs if plan.active or n not in ATMOSPHERE_VARIABLES
    )  # the atmosphere only when asked for
    clouds = plan_clouds(ds, cloud_mask, cloud_mask_convention, keep_cloudy=keep_cloudy)
    inputs = model_inputs(ds, heads, atmosphere, cover, extra, clouds)
    spatial = tuple(d for d in inputs[BT].dims if d != "band")
    spec = output_spec(spatial, heads, clouds.active, plan.active)
    lazy = any(isinstance(v.data, da.Array) for v in inputs.variables.values())
    # band coordinates (wavelength: five numbers) go around the kernel, not through one graph task per chunk
    band_coords = {
        name: inputs[name].compute(scheduler="synchronous")
        for name in inputs.coords
        if inputs[name].dims == ("band",) and name not in inputs.indexes
    }  # here, never on a cluster
    inputs = inputs.drop_vars(list(band_coords))
    derived = (NDVI,) if ndvi_from_reflectance(ds, clouds) else ()
    result = xr.map_blocks(
        retrieve_block,
        inputs,
        args=(ref, heads, spec, cover, clouds, derived),
        template=template_for(inputs, spec) if lazy else None,
    )
    result = result.assign_coords({**band_coords, **_carried_coords(ds, spatial, result)})
    for name in result.variables:
        result[name].attrs = {**result[name].attrs, **cf_attrs(name)}
    result["lst"].attrs["long_name"] += f" ({heads[0]})"
    result["qc"].attrs = {
        "long_name": "retrieval quality flags",
        "flag_masks": np.array(list(QC_BITS.values()), dtype=np.uint8),
        "flag_meanings": " ".join(QC_BITS),
    }
    result["land_cover"].attrs["source"] = cover.source
    result.attrs = {
        "bundle": ref.path,
        "bundle_sha256": ref.sha256,
        "heads": ",".join(heads),
        "land_cover_source": cover.source,
        "cloud_mask": clouds.mode,
        "cloud_mask_source": clouds.source,
        "keep_cloudy": int(clouds.keep_cloudy),
        **atmosphere_attrs,
    }
    if TES_HEAD in heads:
        result.attrs["tes_atmosphere"] = (
            f"{atmosphere} (AFGL-1986, LOWTRAN7, sea level)" if atmosphere else "terms from the dataset"
        )
    return result
