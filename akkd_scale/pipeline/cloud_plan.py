"""Cloud masking in the retrieval: decided once in the client (:func:`plan_clouds`), computed per chunk in the
kernel's task (:func:`mask_block`).

``cloud_mask``: ``"auto"`` (default) the built-in tests of :mod:`akkd_scale.clouds` — by day (solar zenith
< 85° and the reader's ``vnir_reflectance``) VNIR + TIR, else the night (TIR-only) tests, said in
``cloud_mask_source`` and logged; ``"none"``: no mask; a GeoTIFF path: an external mask (any CRS, sampled at
the pixel centres like the land-cover map, :mod:`akkd_scale.io.categorical_map`; its codes read by a
convention, :mod:`akkd_scale.clouds.external`), the built-in tests where it has no data or does not reach.
The client checks the mask's file and computes the scene's clear-sky BT13 reference once (a strided
sample of band 13, :func:`akkd_scale.clouds.mask.scene_reference`), so every chunk uses the same scalar.

``auto`` needs an image (two spatial dimensions) of at least :data:`MIN_IMAGE_PIXELS` and a ``solar_zenith``
(day or night): the reader's scenes have both; other datasets (training samples, hand-built arrays, small
subsets) get no mask and ``cloud_mask_source`` says why.

Chunk edges: the kernel has no halo (one ``map_blocks`` task per chunk). The mask's neighbourhood steps
(3 × 3 texture, buffer dilation) see only their chunk, so only pixels within :func:`halo_px` (3) pixels of an
inner chunk edge can differ from the whole-scene mask (measured: docs/clouds.md, "Integration").
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..clouds.external import CONVENTION_MEANINGS, check_convention, cloudy_codes, decide_convention
from ..clouds.mask import CloudMask, CloudMaskConfig, SceneReference, cloud_mask, scene_reference, with_external
from ..clouds.reflectance import MAX_DAY_SOLAR_ZENITH
from ..conventions import BANDS, BT, VNIR_REFLECTANCE
from ..errors import InputError, ParameterError
from ..io.categorical_map import CLOUD_MASK_MAP, CategoricalMap, open_map, sample_codes

log = logging.getLogger(__name__)

AUTO, NONE, EXTERNAL = "auto", "none", "external"
#: Stride (pixels, each way) of the band-13 sample the scene reference is computed from: 1/16 of the pixels
#: (strides 1–16 move the reference by < 0.4 K on the simulated scenes, docs/clouds.md).
REFERENCE_STRIDE = 4
#: Fewest pixels of an image the built-in tests run on (64 × 64, a 5.8 km square; ≥ 256 sampled for the
#: reference). The clear-sky reference is a landscape statistic (the 90th percentile of BT13 over the scene):
#: a few fields or one cloud filling a small subset give none, and noise outliers become "cold" pixels.
MIN_IMAGE_PIXELS = 64 * 64


@dataclass(frozen=True)
class CloudPlan:
    """What every chunk does about clouds: nothing (``mode`` none), the built-in tests (auto) or an external
    mask with the built-in tests where it has no data (external); the scene reference, whether the day tests run,
    the buffer, whether cloudy values are kept, and ``note`` (why the night tests run by day, or why no mask)."""

    mode: str = NONE
    reference: SceneReference | None = None
    cmap: CategoricalMap | None = None
    config: CloudMaskConfig = CloudMaskConfig()
    keep_cloudy: bool = False
    covered: float = 0.0
    note: str = ""

    @property
    def active(self) -> bool:
        return self.mode != NONE

    @property
    def inputs(self) -> tuple[str, ...]:
        """Variables the kernel needs besides brightness temperature."""
        day = self.reference is not None and self.reference.day
        return ((VNIR_REFLECTANCE,) if day else ()) + (("latitude", "longitude") if self.cmap else ())

    @property
    def source(self) -> str:
        """``cloud_mask_source``: which mask, how, and (when it matters) why."""
        if not self.active:
            return f"none: {self.note}"
        ref = self.reference
        tests = (f"built-in tests ({'day: VNIR reflectance and TIR' if ref.day else 'night: TIR only'}; clear-sky "
                 f"BT13 reference {ref.bt13:.2f} K, the {ref.percentile:g}th percentile of the scene; buffer "
                 f"{self.config.buffer_px} px)")
        if self.note:
            tests += f" [{self.note}]"
        if self.cmap is None:
            return tests
        return (f"external: {self.cmap.path} ({self.cmap.legend}), covering {self.covered:.1%} of the scene; "
                f"{tests} where it has no data")


def _no_mask(note: str) -> CloudPlan:
    log.info("no cloud mask: %s", note)
    return CloudPlan(NONE, note=note)


def _solar_zenith(ds: xr.Dataset) -> float:
    values = np.asarray(ds["solar_zenith"].values, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def _vnir_available(ds: xr.Dataset) -> bool:
    return VNIR_REFLECTANCE in ds.variables and ds[VNIR_REFLECTANCE].attrs.get("vnir_available", 1) != 0


def _reference(ds: xr.Dataset, day: bool) -> SceneReference:
    """The scene's clear-sky BT13 reference from every :data:`REFERENCE_STRIDE`-th pixel (computed here)."""
    bt = ds[BT]
    bt13 = bt.sel(band="B13") if "band" in bt.coords else bt.isel(band=BANDS.index("B13"))
    spatial = [d for d in bt.dims if d != "band"]
    sample = bt13.transpose(*spatial).isel({d: slice(None, None, REFERENCE_STRIDE) for d in spatial})
    sample = sample.compute(scheduler="synchronous")  # in the client, before any task: never on a cluster
    try:
        return scene_reference(sample, day=day, stride=1)
    except ParameterError:  # no finite BT13: no pixel can be cloud (the mask needs BT13)
        return SceneReference(math.nan, day)


def plan_clouds(ds: xr.Dataset, cloud_mask=AUTO, convention: str | None = None, *, keep_cloudy: bool = False,
                config: CloudMaskConfig = CloudMaskConfig()) -> CloudPlan:
    """The cloud plan of a scene, decided before any task exists. ``cloud_mask``: ``"auto"``, ``"none"`` or a
    cloud-mask GeoTIFF (checked here: readable, one band of integer codes, a CRS, codes of ``convention`` —
    ``mod35``/``binary``, None: from the file's name/tags or its codes; InputError naming the file). A mask
    that misses part of the scene gives a warning and the built-in tests there (recorded in the source)."""
    source = ds.attrs.get("source_file", "dataset")
    check_convention(convention)
    external = not (isinstance(cloud_mask, str) and cloud_mask in (AUTO, NONE))
    if not external and convention is not None:
        raise ParameterError(None, "a cloud-mask convention without an external mask", variable="cloud_mask",
                             expected="--cloud-mask MASK.tif with --cloud-mask-convention")
    if cloud_mask == NONE:
        return CloudPlan(NONE, note="not requested (cloud_mask='none')")
    spatial = [d for d in ds[BT].dims if d != "band"] if BT in ds.variables else []
    pixels = int(np.prod([ds.sizes[d] for d in spatial])) if spatial else 0
    if len(spatial) != 2 or "solar_zenith" not in ds.variables or pixels < MIN_IMAGE_PIXELS:
        why = (f"not an image (dimensions {tuple(spatial)}, the tests need two spatial ones)" if len(spatial) != 2
               else "the dataset has no solar_zenith (day or night unknown; the reader's scenes have it)"
               if "solar_zenith" not in ds.variables else
               f"{pixels} pixels, fewer than the {MIN_IMAGE_PIXELS} the scene's clear-sky reference needs")
        if external:
            raise InputError(source, f"an external cloud mask needs a scene image with solar_zenith: {why}",
                             variable="cloud_mask", expected=f"a scene opened with engine='aster_l1b' of at least "
                                                             f"{MIN_IMAGE_PIXELS} pixels")
        return _no_mask(f"auto, but {why}")
    zenith = _solar_zenith(ds)
    sun_up = math.isfinite(zenith) and zenith < MAX_DAY_SOLAR_ZENITH
    day = sun_up and _vnir_available(ds)
    note = ""
    if sun_up and not day:
        note = f"day scene (solar zenith {zenith:.1f}°) without VNIR reflectance: the night (TIR-only) tests ran"
        log.warning("%s: %s", source, note)
    elif not math.isfinite(zenith):
        note = "solar zenith unknown: the night (TIR-only) tests ran"
        log.warning("%s: %s", source, note)
    reference = _reference(ds, day)
    if not external:
        return CloudPlan(AUTO, reference, config=config, keep_cloudy=keep_cloudy, note=note)
    for name in ("latitude", "longitude"):
        if name not in ds.variables:
            raise InputError(source, "variable missing", variable=name,
                             expected="latitude/longitude (y, x) to place the scene's pixels on the cloud mask")
    found = open_map(cloud_mask, ds["latitude"], ds["longitude"], CLOUD_MASK_MAP, require_overlap=False)
    if not found.codes:
        missed = (f"the cloud mask {found.lcmap.path} " + ("has only no-data cells under the scene" if found.covered
                                                           else "does not cover the scene") + ": built-in tests only")
        log.warning("%s: %s", source, missed)
        return CloudPlan(EXTERNAL, reference, None, config, keep_cloudy, 0.0, "; ".join(filter(None, (missed, note))))
    if found.covered < 1.0:
        log.warning("%s: the cloud mask %s covers %.1f%% of the scene: the built-in tests decide the rest", source,
                    found.lcmap.path, 100 * found.covered)
    chosen = decide_convention(found.lcmap.path, found.codes, convention, found.hint_text)
    return CloudPlan(EXTERNAL, reference, found.lcmap.with_legend(chosen), config, keep_cloudy, found.covered, note)


def check_mask_file(path, convention: str | None = None) -> str:
    """Check a cloud-mask GeoTIFF on its own, before any scene or cluster (readable, one band of integer codes, a
    CRS, codes of one convention over the whole file) and return its convention (given, named by the file, or
    proven by its codes). InputError naming the file otherwise."""
    check_convention(convention)
    found = open_map(path, None, None, CLOUD_MASK_MAP)
    if not found.codes:
        raise InputError(found.lcmap.path, "only no-data cells", variable=CLOUD_MASK_MAP.variable,
                         expected=f"{CLOUD_MASK_MAP.codes} ({' or '.join(CONVENTION_MEANINGS.values())})")
    return decide_convention(found.lcmap.path, found.codes, convention, found.hint_text)


def mask_block(plan: CloudPlan, bt: np.ndarray, vnir_reflectance=None, latitude=None, longitude=None) -> CloudMask:
    """The cloud tests, cloud and buffer flags of one chunk (``bt`` (band, y, x) in BANDS order; the others as
    ``plan.inputs`` asks)."""
    mask = cloud_mask(bt, plan.reference, vnir_reflectance, config=plan.config)
    if plan.cmap is None:
        return mask
    shape = bt.shape[1:]
    codes, inside = sample_codes(np.broadcast_to(latitude, shape), np.broadcast_to(longitude, shape), plan.cmap)
    cloudy, known = cloudy_codes(codes, plan.cmap.legend)
    covered = inside & known
    if plan.cmap.nodata is not None:
        covered &= codes != plan.cmap.nodata
    return with_external(mask, cloudy, covered, bt[BANDS.index("B13")], plan.config)
