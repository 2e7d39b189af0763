"""Per-chunk retrieval kernel for ``xr.map_blocks``: the model travels by reference, not by value.

Tasks carry a :class:`BundleRef` (path + sha256, a few hundred bytes). Each worker process loads the
bundle once, on first use, through ``models.bundle.load_bundle_cached`` (keyed by path, sha256 and
thread count; it refuses a bundle whose sha256 changed), so a graph with thousands of chunks never
ships network weights and never reloads them per chunk. NumPy-backed datasets run the same kernel
once, in the calling process.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..conventions import (
    ATMOSPHERE_GIVEN,
    BANDS,
    BT,
    CLOUD_TESTS,
    LAND_COVER_UNKNOWN,
    NDVI,
    QC_CLOUD,
    QC_CLOUD_BUFFER,
    QC_INVALID_INPUT,
    QC_LAND_COVER_RULES,
    TES_HEAD,
    TES_TERMS,
    VNIR_BAND,
    VNIR_REFLECTANCE,
    VZA,
)
from ..errors import BundleError, InputError
from ..io.aster.vnir import ndvi_from_reflectance
from .atmosphere_plan import ATMOSPHERE_VARIABLES
from .cloud_plan import CloudPlan, mask_block
from .landcover_plan import LandCoverPlan, classify_block

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundleRef:
    """What a task needs to find a model bundle: its path, the sha256 it must have, the device to run on."""

    path: str
    sha256: str
    device: str = "cpu"


def bundle_ref(bundle=None, device: str | None = None) -> BundleRef:
    """Reference for a Bundle, a bundle path, a BundleRef, or (None) the default bundle.

    Loading a path here (in the client) checks the bundle once before any task is built, so a missing
    or tampered bundle fails the run up front instead of in every task. ``device`` (``cpu``/``cuda``,
    default: the BundleRef's or ``cpu``) is checked here too.
    """
    from ..models.bundle import Bundle, default_bundle_path, load_bundle
    from ..models.inference import execution_providers

    if isinstance(bundle, BundleRef):
        if device is None or device == bundle.device:
            return bundle
        execution_providers(device)
        return BundleRef(bundle.path, bundle.sha256, device)
    device = device or "cpu"
    execution_providers(device)
    if bundle is None:
        bundle = default_bundle_path()
        if not Path(bundle).exists():
            raise BundleError(
                f"{bundle}: no default model bundle there; pass --bundle PATH (bundle=...) or "
                "set AKKD_BUNDLE to a bundle directory built by the training pipeline"
            )
    if not isinstance(bundle, Bundle):
        if Path(bundle).is_file():
            raise BundleError(f"{Path(bundle).resolve()}: is a file; expected a bundle directory (with manifest.json)")
        bundle = load_bundle(bundle)
    return BundleRef(str(Path(bundle.path).expanduser().resolve()), str(bundle.sha256), device)


#: Rows per onnxruntime call within a chunk. Measured with the shipped 4 × 256 teacher, one thread
#: (benchmarks/pipeline/bench_throughput.py): the teacher alone runs at 1.10 / 0.99 / 0.94 / 0.92 / 0.55 of
#: the single-thread sgemm rate with 1024 / 2048 / 4096 / 8192 / 65 536 rows, while the whole fusion
#: kernel (teacher + one student call per stratum present) is flat at 0.35 Mpx/s from 1024 to 8192 rows:
#: 2048 keeps the teacher's activations in cache and the student calls few.
SLAB_ROWS = 2048


def cached_bundle(ref: BundleRef):
    """The referenced bundle, loaded once per process on its device.

    One onnxruntime thread per task: tasks (chunks, scenes) run concurrently on every thread of a
    worker or of the threaded scheduler, so more intra-op threads would only oversubscribe the cores.
    """
    from ..models.bundle import load_bundle_cached

    return load_bundle_cached(ref.path, ref.sha256, 1, SLAB_ROWS, ref.device)


def predict_block(
    bt_block, vza_block, bundle, heads=("fusion",), extra=None, land_cover=None, from_rules=None
) -> dict[str, np.ndarray]:
    """Network heads on one NumPy block: ``bt_block`` (band, ...) in K, ``vza_block``, the bundle's further
    inputs ``extra`` ({variable: array}, e.g. NDVI), ``land_cover`` (class codes choosing the class
    students) and ``from_rules`` (which classes the rules assigned: their fusion entry), each broadcastable
    to (...).

    Returns ``lst`` (...), ``emissivity`` (band, ...), ``lst_uncertainty`` (...) of the first head,
    ``qc`` (uint8, ...) and ``lst_<head>``, ``emissivity_<head>``, ``lst_uncertainty_<head>`` for
    every head. Non-finite bands or view zenith give NaN outputs and QC bit 1.
    """
    bt_block = np.asarray(bt_block, dtype=np.float32)
    if bt_block.ndim < 1 or bt_block.shape[0] != len(BANDS):
        raise InputError(
            "brightness temperature block",
            f"shape {bt_block.shape}",
            variable=BT,
            expected=f"band axis first with {len(BANDS)} bands ({', '.join(BANDS)})",
        )
    shape = bt_block.shape[1:]
    bt = bt_block.reshape(len(BANDS), -1).T
    vza = np.broadcast_to(np.asarray(vza_block, dtype=np.float32), shape).reshape(-1)
    heads = tuple(heads)
    flat = {
        name: np.broadcast_to(np.asarray(value, np.float32), shape).reshape(-1) for name, value in (extra or {}).items()
    }
    if land_cover is not None:
        land_cover = np.broadcast_to(np.asarray(land_cover), shape).reshape(-1)
    if from_rules is not None:
        from_rules = np.broadcast_to(np.asarray(from_rules, bool), shape).reshape(-1)
    result, qc = bundle.predict_with_quality(bt, vza, heads, flat, land_cover, from_rules)
    out = {"qc": qc.reshape(shape)}
    for head, values in result.items():
        out[f"lst_{head}"] = values["lst"].reshape(shape)
        out[f"emissivity_{head}"] = values["emissivity"].T.reshape((len(BANDS),) + shape)
        out[f"lst_uncertainty_{head}"] = values["lst_uncertainty"].reshape(shape)
    for name in ("lst", "emissivity", "lst_uncertainty"):
        out[name] = out[f"{name}_{heads[0]}"]
    return out


def _values(block: xr.Dataset, name: str, dims: tuple[Hashable, ...], dtype=np.float32) -> np.ndarray:
    """``block[name]`` as ``dtype`` with axes in ``dims`` order; axes it lacks have length 1 (broadcastable)."""
    var = block[name].variable
    return np.asarray(var.set_dims({d: var.sizes.get(d, 1) for d in dims}).values, dtype=dtype)


#: Outputs set to NaN on cloudy pixels (unless the plan keeps cloudy values): these and every head's own
#: (``lst_<head>``, ``emissivity_<head>``, ``lst_uncertainty_<head>``).
MASKED_OUTPUTS = ("lst", "emissivity", "lst_uncertainty")


def _cloud_inputs(block: xr.Dataset, plan: CloudPlan, dims: tuple[Hashable, ...]) -> dict[str, np.ndarray]:
    """What :func:`~.cloud_plan.mask_block` reads from the block besides brightness temperature."""
    return {
        name: _values(block, name, ((VNIR_BAND,) if name == VNIR_REFLECTANCE else ()) + dims[1:], np.float64)
        for name in plan.inputs
    }


def _apply_clouds(out: dict, plan: CloudPlan, cloud: np.ndarray, buffer: np.ndarray) -> None:
    """QC bits ``cloud``/``cloud_buffer``; NaN LST, ε and uncertainty of every head on cloud unless kept."""
    out["qc"] = (
        out["qc"]
        | np.where(cloud, np.uint8(QC_CLOUD), np.uint8(0))
        | np.where(buffer, np.uint8(QC_CLOUD_BUFFER), np.uint8(0))
    )
    if plan.keep_cloudy or not cloud.any():
        return
    for name in out:
        if any(name == base or name.startswith(base + "_") for base in MASKED_OUTPUTS):
            out[name] = np.where(cloud, np.float32(np.nan), out[name])


def _predict_unmasked(bt, vza, bundle, heads, extra, land_cover, from_rules, skip) -> dict[str, np.ndarray]:
    """:func:`predict_block` on the pixels not in ``skip`` (cloud whose values are not kept: the networks do not
    run there); skipped pixels get NaN and a ``qc`` of 0, or ``invalid_input`` where their inputs are not finite.
    Each pixel's numbers do not depend on which others are in the call."""
    if skip is None or not skip.any():
        return predict_block(bt, vza, bundle, heads, extra, land_cover, from_rules)
    shape, keep = bt.shape[1:], ~skip
    part = predict_block(
        bt[:, keep],
        np.broadcast_to(vza, shape)[keep],
        bundle,
        heads,
        {name: np.broadcast_to(value, shape)[keep] for name, value in (extra or {}).items()},
        None if land_cover is None else np.broadcast_to(land_cover, shape)[keep],
        None if from_rules is None else np.broadcast_to(from_rules, shape)[keep],
    )
    invalid = ~(np.isfinite(bt).all(axis=0) & np.isfinite(np.broadcast_to(vza, shape)))
    out = {}
    for name, values in part.items():
        if name == "qc":
            full = np.where(invalid, np.uint8(QC_INVALID_INPUT), np.uint8(0))
        else:
            full = np.full(values.shape[:-1] + shape, np.nan, values.dtype)
        full[..., keep] = values
        out[name] = full
    return out


def retrieve_block(
    block: xr.Dataset,
    ref: BundleRef,
    heads: tuple[str, ...],
    spec: dict[str, tuple[tuple[str, ...], str]],
    cover: LandCoverPlan = LandCoverPlan(),
    clouds: CloudPlan = CloudPlan(),
    derived: tuple[str, ...] = (),
) -> xr.Dataset:
    """Retrieve one chunk: ``block`` holds ``brightness_temperature(band, …)``, ``view_zenith``, for a
    ``tes`` head ``transmittance``/``path_radiance``/``sky_radiance`` (band, …) broadcastable to it, and
    what the land-cover plan ``cover`` and the cloud plan ``clouds`` need (``ndvi``, ``vnir_reflectance``,
    ``latitude``/``longitude``).

    ``spec`` maps each output variable to (dims, dtype), exactly as in the map_blocks template, so
    what the kernel returns always matches what the graph promised. The cloud mask comes first: cloudy
    pixels get no land-cover class (-1: the rules never call a cloud snow or water), QC bit ``cloud``
    (its buffer ``cloud_buffer``), the ``cloud_tests`` bits and NaN LST/ε/uncertainty unless the plan keeps
    them (the networks then skip those pixels, whose ``qc`` keeps only the cloud and invalid-input bits).
    The pixels' land cover (``land_cover``, QC bit ``land_cover_from_rules``) chooses the class
    students of bundles that have them, and classes from the rules their fusion entries (``models.fusion``,
    "Rules entries"); the bundle's further inputs (NDVI) are read from the block when
    present, else they take the bundle's missing value. ``derived``: ``("ndvi",)`` when NDVI is to be computed
    from the block's ``vnir_reflectance`` (:func:`~akkd_scale.io.aster.vnir.ndvi_from_reflectance`, the
    reader's NDVI bit for bit) instead of read.
    """
    from ..physics.tes import tes

    bundle = cached_bundle(ref)
    dims = ("band",) + tuple(d for d in block[BT].dims if d != "band")
    bt = _values(block, BT, dims)
    cloud_inputs = _cloud_inputs(block, clouds, dims) if clouds.active else {}
    made = {NDVI: ndvi_from_reflectance(*cloud_inputs[VNIR_REFLECTANCE][1:3])} if NDVI in derived else {}
    extra = {
        name: made[name] if name in made else _values(block, name, dims[1:])
        for name in bundle.extra_inputs
        if name in block or name in made
    }
    cover_inputs = {
        name: extra[name]
        if name in extra
        else made[name]
        if name in made
        else _values(block, name, dims[1:], np.float32 if name == NDVI else np.float64)
        for name in cover.inputs
    }  # NDVI is read once when the networks take it too
    mask = mask_block(clouds, bt, **cloud_inputs) if clouds.active else None
    land_cover, from_rules = classify_block(cover, bt, **cover_inputs)
    if mask is not None and mask.cloud.any():
        land_cover = np.where(mask.cloud, np.int8(LAND_COVER_UNKNOWN), land_cover)
        from_rules = from_rules & ~mask.cloud
    skip = mask.cloud if mask is not None and not clouds.keep_cloudy else None
    out = _predict_unmasked(
        bt,
        _values(block, VZA, dims[1:]),
        bundle,
        tuple(h for h in heads if h != TES_HEAD),
        extra,
        land_cover,
        from_rules,
        skip,
    )
    if TES_HEAD in heads:
        result = tes(
            bt, *(_values(block, name, dims) for name in TES_TERMS), quantity="brightness_temperature", band_axis=0
        )
        out.update(
            {
                "lst_tes": result.lst,
                "emissivity_tes": result.emissivity,  # no uncertainty model: NaN
                "lst_uncertainty_tes": np.full(bt.shape[1:], np.nan, np.float32),
            }
        )
    out["land_cover"] = land_cover
    if ATMOSPHERE_GIVEN in spec:
        given = np.ones(bt.shape[1:], bool)
        for name in ATMOSPHERE_VARIABLES:
            given &= np.isfinite(extra[name]) if name in extra else False
        out[ATMOSPHERE_GIVEN] = given.astype(np.uint8)
    out["qc"] = out["qc"] | np.where(from_rules, np.uint8(QC_LAND_COVER_RULES), np.uint8(0))
    if mask is not None:
        _apply_clouds(out, clouds, mask.cloud, mask.buffer)
        out[CLOUD_TESTS] = mask.tests
    data_vars = {}
    for name, (var_dims, dtype) in spec.items():
        if name not in out:
            raise BundleError(
                f"{ref.path}: the bundle's block prediction gave no {name!r} (got {sorted(out)}) for heads {heads}"
            )
        data_vars[name] = (var_dims, np.asarray(out[name]).astype(dtype, copy=False))
    return xr.Dataset(data_vars, coords=block.coords)
