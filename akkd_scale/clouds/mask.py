"""The combined cloud mask of one block: a bit field of the tests, a cloud flag and an edge-buffer flag.

Built to run per chunk (e.g. inside ``map_blocks``/``map_overlap``): scene-level references come in as
scalars computed once in the client (:func:`scene_reference`), everything else is per pixel or in a small
neighbourhood. Neighbourhood operations and the halo they need (:func:`halo_px`): the local BT13 standard
deviation (3 × 3: 1 pixel) and the buffer dilation (``buffer_px``) of a cloud flag that itself depends on
the 3 × 3 texture: ``1 + buffer_px`` pixels. Run with ``dask.array.map_overlap(depth=halo_px(config))``
the blocks reproduce the whole-scene mask exactly; without a halo only pixels within that distance of a
block edge can differ.

Decision (``day``: VNIR reflectance given; ``night``: TIR only), with ``cold`` = BT13 more than
:data:`~.tests.COLD_MARGIN_K` below the reference and ``very_cold`` = more than DAY_BRIGHT_COLD_MARGIN_K (day),
NIGHT_COLD_MARGIN_K (night) or PRIOR_COLD_MARGIN_K below the prior (night with a prior):

* day: cloud = ¬snow_like ∧ ([bright ∧ not_vegetation ∧ (white ∧ cold ∨ very_cold)]
  ∨ [cold ∧ (cirrus_tri ∨ cirrus_split)]);
* night: cloud = [very_cold ∧ ¬snow_like] ∨ [cold ∧ (cirrus_tri ∨ cirrus_split)]
  ∨ [textured ∧ very_cold at TEXTURE_MARGIN_FRACTION of its margin] (edges and broken cloud are less cold);
* buffer = the cloud flag dilated by ``buffer_px`` (disk), minus the cloud itself.

At night a per-pixel ``prior`` (expected clear-sky surface temperature, e.g. reanalysis 2 m air temperature
brought to the pixel's altitude) replaces the scene reference and the night margin by
:data:`~.tests.PRIOR_COLD_MARGIN_K` below the prior (ECOSTRESS-style); it is what makes low clouds over
relief detectable at night. By day the reflectance tests carry the decision and the prior is not used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..conventions import BANDS
from ..errors import ParameterError
from . import tests as T

#: Bits of the ``cloud_tests`` field (uint16): each set where the test found cloud evidence (``snow``:
#: clear-snow evidence). Tests that did not run (no VNIR at night) leave their bit 0.
CLOUD_TEST_BITS = {"bright": 1, "not_vegetation": 2, "white": 4, "cold": 8, "very_cold": 16, "cirrus_tri": 32,
                   "cirrus_split": 64, "textured": 128, "snow": 256, "night_tests": 512, "saturated": 1024,
                   "external_mask": 2048}
CLOUD_TEST_MEANINGS = {
    "bright": f"band-2 TOA reflectance > {T.BRIGHT_MIN_RED}",
    "not_vegetation": f"NDVI < {T.CLOUD_MAX_NDVI}",
    "white": f"whiteness of bands 1, 2, 3N < {T.WHITENESS_MAX}",
    "cold": f"BT13 more than {T.COLD_MARGIN_K} K below the clear-sky reference",
    "very_cold": f"BT13 more than {T.DAY_BRIGHT_COLD_MARGIN_K} K (day) or {T.NIGHT_COLD_MARGIN_K} K (night) below the "
                 f"clear-sky reference, or at night with a prior more than {T.PRIOR_COLD_MARGIN_K} K below the prior",
    "cirrus_tri": f"BT11 - BT13 > {T.CIRRUS_TRI_MIN_K} K by day, {T.NIGHT_CIRRUS_TRI_MIN_K} K at night (semi-"
                  "transparent ice)",
    "cirrus_split": f"BT13 - BT14 > {T.CIRRUS_SPLIT_MIN_K} K (ice split window)",
    "textured": f"3x3 BT13 standard deviation > {T.TEXTURE_MIN_K} K",
    "snow": "snow-like: near-freezing BT13 and ice-grain NIR absorption or smooth (clear-sky evidence)",
    "night_tests": "no (finite) VNIR reflectance: the night (TIR-only) decision was used",
    "saturated": "a VNIR band is saturated: taken as reflectance 1 (bright); band 1 or 3N saturated: no snow veto",
    "external_mask": "the cloud flag comes from the external cloud mask, not from these tests",
}
#: Reflectance given to a saturated VNIR band (the reader's +inf): at least the saturation level (0.4–0.9 with
#: the normal and high gains at θs < 60°), so bright; 1 keeps a fully saturated pixel white and flat (NDVI 0).
SATURATED_REFLECTANCE = 1.0
#: Default buffer radius (pixels of 90 m) around cloud: see :class:`CloudMaskConfig`.
DEFAULT_BUFFER_PX = 2
#: Percentile of BT13 over the scene taken as the clear-sky reference, and the stride of the sample.
REFERENCE_PERCENTILE, REFERENCE_STRIDE = 90.0, 2


@dataclass(frozen=True)
class CloudMaskConfig:
    """Settings of the mask: buffer radius (pixels) around cloud. The default 2 is the smallest radius at which
    cloud ∪ buffer holds ≥ 99 % of the visible cirrus on the simulated scenes (radius 1: 98.5 %, 3 % of clear
    pixels buffered; 2: 99.4 %, 6 %; 3: 99.7 %, 10 %; docs/clouds.md)."""

    buffer_px: int = DEFAULT_BUFFER_PX

    def __post_init__(self):
        if int(self.buffer_px) != self.buffer_px or self.buffer_px < 0:
            raise ParameterError("cloud mask", f"buffer_px={self.buffer_px!r}", variable="buffer_px",
                                 expected="a non-negative whole number of pixels")


@dataclass(frozen=True)
class SceneReference:
    """Scene-level inputs computed once in the client: the clear-sky BT13 reference (K) and whether the
    scene has VNIR reflectance (day)."""

    bt13: float
    day: bool
    percentile: float = REFERENCE_PERCENTILE


@dataclass(frozen=True)
class CloudMask:
    """Per-pixel results: ``tests`` (uint16 bits of :data:`CLOUD_TEST_BITS`), ``cloud`` and ``buffer`` (bool)."""

    tests: np.ndarray
    cloud: np.ndarray
    buffer: np.ndarray


def halo_px(config: CloudMaskConfig = CloudMaskConfig()) -> int:
    """Pixels of overlap a block needs for the whole-scene answer (texture window + buffer radius)."""
    return T.TEXTURE_SIZE // 2 + config.buffer_px


def scene_reference(bt13, *, day: bool, percentile: float = REFERENCE_PERCENTILE,
                    stride: int = REFERENCE_STRIDE) -> SceneReference:
    """The clear-sky reference: the ``percentile`` of BT13 over the scene (every ``stride``-th pixel each way;
    a Dask array is computed only for that sample). A high percentile lands on clear land for any cloud
    cover below 100 − percentile %, and below the hottest few per cent of sunlit bare ground."""
    sample = np.asarray(bt13[::stride, ::stride], dtype=float)
    finite = sample[np.isfinite(sample)]
    if not finite.size:
        raise ParameterError("cloud mask", "no finite BT13 in the scene", variable="brightness_temperature",
                             expected="a scene with valid band-13 pixels")
    return SceneReference(float(np.percentile(finite, percentile)), bool(day), float(percentile))


def _night(bt11, bt13, bt14, std, reference: SceneReference, prior, snow_possible):
    """Night (TIR-only) decision and its test results."""
    against, margin = (reference.bt13, T.NIGHT_COLD_MARGIN_K) if prior is None else (prior, T.PRIOR_COLD_MARGIN_K)
    very_cold = T.colder_than(bt13, against, margin)
    rough = T.textured(std)
    edge = rough & T.colder_than(bt13, against, margin * T.TEXTURE_MARGIN_FRACTION)
    snow = T.snow_like(bt13, std) & snow_possible
    tri = T.cirrus_tri(bt11, bt13, T.NIGHT_CIRRUS_TRI_MIN_K)
    split = T.cirrus_split(bt13, bt14)
    cold = T.colder_than(bt13, reference.bt13, T.COLD_MARGIN_K)
    cloud = (very_cold & ~snow) | (cold & (tri | split)) | edge
    return cloud, {"cold": cold, "very_cold": very_cold, "cirrus_tri": tri, "cirrus_split": split,
                   "textured": rough, "snow": snow}


def _day(bt11, bt13, bt14, std, rho, reference: SceneReference, snow_possible, saturated):
    """Day (VNIR + TIR) decision and its test results; ``saturated`` (3, y, x): bands at saturation (their
    ``rho`` is :data:`SATURATED_REFLECTANCE`): where band 1 or 3N is, the snow test has lost its evidence (the
    ice-grain NIR absorption) and does not veto: bright, white and cold without it is cloud (clear-sky
    conservative, as MOD35; docs/clouds.md, "Saturated VNIR", gives the measured trade)."""
    bright, vegetation_free, white = T.bright(rho), T.not_vegetation(rho), T.white(rho)
    cold = T.colder_than(bt13, reference.bt13, T.COLD_MARGIN_K)
    very_cold = T.colder_than(bt13, reference.bt13, T.DAY_BRIGHT_COLD_MARGIN_K)
    snow = T.snow_like(bt13, std, rho) & snow_possible & ~(saturated[0] | saturated[2])
    tri, split = T.cirrus_tri(bt11, bt13, T.CIRRUS_TRI_MIN_K), T.cirrus_split(bt13, bt14)
    cloud = ((bright & vegetation_free & (white & cold | very_cold)) | (cold & (tri | split))) & ~snow
    return cloud, {"bright": bright, "not_vegetation": vegetation_free, "white": white, "cold": cold,
                   "very_cold": very_cold, "cirrus_tri": tri, "cirrus_split": split, "textured": T.textured(std),
                   "snow": snow}


def cloud_mask(bt, reference: SceneReference, reflectance=None, *, prior=None, snow_possible=None,
               config: CloudMaskConfig = CloudMaskConfig()) -> CloudMask:
    """Cloud tests, cloud and buffer flags of one block.

    ``bt``: brightness temperature (band, y, x) in the order of ``conventions.BANDS``; ``reflectance``:
    TOA reflectance (3, y, x) of VNIR bands 1, 2, 3N, or None (night or no VNIR); +inf marks a saturated band
    (the reader's convention: bit ``saturated``, the band taken as :data:`SATURATED_REFLECTANCE`; a saturated
    band 1 or 3N leaves no snow evidence, so no snow veto there). The day
    decision is used where the reference says day and all three reflectances are given (finite or saturated),
    the night decision elsewhere (its pixels get the ``night_tests`` bit: a day scene without VNIR, fill
    VNIR). ``prior``:
    optional expected clear-sky surface temperature (K, broadcasting to (y, x); night decision only);
    ``snow_possible``: optional boolean (y, x) where snow may lie (e.g. a land-cover map's snow/ice class,
    a snow climatology); None: anywhere. Pixels with a non-finite BT13 are never cloud.
    """
    bt = np.asarray(bt, dtype=np.float32)
    if bt.ndim != 3 or bt.shape[0] != len(BANDS):
        raise ParameterError("cloud mask", f"brightness temperature of shape {bt.shape}", variable="bt",
                             expected=f"(band, y, x) with {len(BANDS)} bands {BANDS}")
    bt11, bt13, bt14 = (bt[BANDS.index(b)] for b in ("B11", "B13", "B14"))
    std = T.local_std(bt13)
    snow_possible = np.ones(bt13.shape, bool) if snow_possible is None else np.asarray(snow_possible, bool)
    cloud, bits = _night(bt11, bt13, bt14, std, reference, prior, snow_possible)
    use_day = np.zeros(bt13.shape, bool)
    if reference.day and reflectance is not None:
        rho = np.asarray(reflectance, dtype=np.float32)
        if rho.shape != (3,) + bt13.shape:
            raise ParameterError("cloud mask", f"reflectance of shape {rho.shape}", variable="reflectance",
                                 expected=f"(3, y, x) = {(3,) + bt13.shape}: VNIR bands 1, 2, 3N")
        saturated = np.isposinf(rho)
        use_day = (np.isfinite(rho) | saturated).all(axis=0)
        if saturated.any():
            rho = np.where(saturated, np.float32(SATURATED_REFLECTANCE), rho)
        day_cloud, day_bits = _day(bt11, bt13, bt14, std, rho, reference, snow_possible, saturated)
        cloud = np.where(use_day, day_cloud, cloud)
        bits = {name: np.where(use_day, hit, bits.get(name, False)) for name, hit in day_bits.items()}
        bits["saturated"] = use_day & saturated.any(axis=0)
    bits["night_tests"] = ~use_day
    cloud = cloud & np.isfinite(bt13)
    tests = np.zeros(bt13.shape, np.uint16)
    for name, hit in bits.items():
        tests |= np.where(hit, np.uint16(CLOUD_TEST_BITS[name]), np.uint16(0))
    buffer = T.dilate(cloud, config.buffer_px) & ~cloud & np.isfinite(bt13)
    return CloudMask(tests, cloud, buffer)


def with_external(mask: CloudMask, cloudy, covered, bt13, config: CloudMaskConfig = CloudMaskConfig()) -> CloudMask:
    """``mask`` with an external mask's ``cloudy`` flag where it is ``covered`` (bit ``external_mask``), the
    built-in flag elsewhere; the buffer grown around the combined cloud."""
    covered = np.asarray(covered, bool)
    valid = np.isfinite(np.asarray(bt13))
    cloud = np.where(covered, np.asarray(cloudy, bool), mask.cloud) & valid
    tests = mask.tests | np.where(covered, np.uint16(CLOUD_TEST_BITS["external_mask"]), np.uint16(0))
    return CloudMask(tests, cloud, T.dilate(cloud, config.buffer_px) & ~cloud & valid)
