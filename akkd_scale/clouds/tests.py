"""The cloud tests: small pure functions on a block of pixels, each with its physical reason, source and threshold.

Inputs are NumPy arrays of one block: brightness temperatures (K) of bands 11, 13, 14 as (y, x) arrays,
TOA reflectance of VNIR bands 1, 2, 3N as a (3, y, x) array (:mod:`.reflectance`), and scene-level
references passed in as scalars (or arrays broadcasting to the block). Each returns a boolean (y, x)
array that is True where the test finds evidence of cloud — except :func:`snow_like`, which finds
evidence of a clear snow/ice surface. NaN inputs make a test False.

Sources. The day tests follow the Landsat-7 ACCA pass-1 filters (Irish 2000, Proc. SPIE 4049:348) as
adapted to ASTER without SWIR by Hulley & Hook (2008, GRL 35, L16812, "A new methodology for cloud
detection and classification with ASTER data"): a brightness (band-2 reflectance) filter, a vegetation
(NIR/red) filter and a band-13 temperature filter. Thermal tests against a clear-sky reference follow
the ECOSTRESS L2 cloud mask (Hulley & Hook, ECOSTRESS L2 CLOUD ATBD: BT tests against a reference
surface temperature) and MOD35 (Ackerman et al. 1998, JGR 103:32141; Strabala et al. 1994, JAM 33:212
for the 8.6−11 µm "tri-spectral" test; Inoue 1985 / Saunders & Kriebel 1988 for the split window). The
whiteness index is Gómez-Chova et al.'s (2007, IEEE TGRS 45:4105). The night spatial-uniformity test is
MOD35's 3 × 3 BT11 standard deviation, which Tonooka (2008, SPIE 7107) found to help ASTER night masks.

Every threshold below is a named constant; the values were set on the simulated scenes of
``akkd_scale.simulate.clouds`` (LOWTRAN7 terms, the project's surfaces; docs give the measured rates) from
the physically expected separation, with the margins stated next to each.

Neighbourhood tests (:func:`local_std`, :func:`dilate`) need a halo of :data:`TEXTURE_SIZE` // 2 pixels
(and the buffer radius) around a block to give the whole-scene answer at block edges.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

# --- Day (VNIR) -------------------------------------------------------------------------------------------
#: Band-2 (red, 0.66 µm) TOA reflectance above which a pixel is bright enough to be cloud. Thick water
#: clouds reflect 0.4–0.8 (Lacis & Hansen 1974: R ≈ 0.13 τ / (1 + 0.13 τ)); dark land (vegetation 0.03–0.06,
#: soils 0.08–0.2, water ≤ 0.06) does not. ACCA's band-3 (red) brightness filter is 0.08, made to let thin
#: cloud through to the thermal tests; here thin cirrus has its own tests, so the filter can be stricter.
#: Bright deserts (0.3–0.45) and snow (0.65–0.95) pass it: they are the next tests' job.
BRIGHT_MIN_RED = 0.20
#: NDVI below which a pixel is not vegetation. Clouds are spectrally flat (NDVI −0.05…0.05; partly
#: transparent cloud over vegetation higher); ACCA's band-4/band-3 (NIR/red) ratio < 2 ⇔ NDVI < 0.33.
CLOUD_MAX_NDVI = 0.25
#: Largest whiteness Σ|ρ_i / mean(ρ) − 1| over bands 1, 2, 3N of a cloud (Gómez-Chova et al. 2007; MODIS-
#: and VIIRS-style "visible ratio" tests). Clouds and snow are white (< 0.1); bare soil and desert sand are
#: reddish (0.4–1.2: ρ rises from green to NIR), vegetation very much so (> 1).
WHITENESS_MAX = 0.35

# --- Thermal ----------------------------------------------------------------------------------------------
#: Cold: BT13 this far (K) below the clear-sky reference. By day a bright, white pixel is cloud only if cold:
#: sunlit bare land is 10–25 K above the air, cloud tops 6.5 K km⁻¹ below it, so warm bright surfaces (salt
#: flats, bright sand, roofs) are not cloud. Day and night it confirms the band-difference tests.
COLD_MARGIN_K = 8.0
#: Very cold, by day: a bright, non-vegetated pixel this much colder (K) than the reference is cloud even when it is not
#: white: a cloud of visible τ ≈ 5–10 over vegetation or soil keeps some of the ground's colour (whiteness
#: 0.3–0.6), as ACCA's pass 1 (which has no whiteness test) lets through. Bright ground this cold by day is
#: rare (high, shaded or wet bright rock: the relief confusion).
DAY_BRIGHT_COLD_MARGIN_K = 12.0
#: Very cold, at night: a pixel this far below the clear-sky reference is cloud unless snow-like. Without a
#: surface-temperature prior the margin must cover the scene's relief (6.5 K km⁻¹) and water–land contrasts.
NIGHT_COLD_MARGIN_K = 15.0
#: Very cold, at night with a per-pixel surface-temperature prior (ECOSTRESS-style, e.g. reanalysis 2 m air temperature at the
#: pixel's altitude): BT13 this far below the prior (night land is ≤ 6 K below the air, BT13 1–3 K below
#: LST; reanalysis errors 1–2 K).
PRIOR_COLD_MARGIN_K = 10.0

# --- Band differences ---------------------------------------------------------------------------------------
#: BT11 − BT13 (8.6 − 10.7 µm) above this is semi-transparent ice: ice absorbs 4× less at 8.6 than at 10.7 µm
#: (k ≈ 0.037 vs 0.15, Warren & Brandt 2008), so more of the warm surface shows at 8.6 µm (Strabala et al.
#: 1994: BT8.6 − BT11 > 0 for ice clouds). Clear land is negative (lower soil and rock emissivity at 8.6 µm,
#: more water-vapour absorption); rare rocks and snow under a dry sky reach +1 K (a day confirmation by
#: coldness and ¬snow keeps them out).
CIRRUS_TRI_MIN_K = 0.6
#: At night the same test needs a larger margin: without the reflectance tests to exclude them, cold clear
#: ground (relief, snow) with BT11 − BT13 up to +1.4 K would pass.
NIGHT_CIRRUS_TRI_MIN_K = 1.5
#: BT13 − BT14 (10.7 − 11.3 µm, ASTER's split window) above this is cirrus: ice absorbs twice as much at
#: 11.3 µm (Inoue 1985). ASTER's split is narrower than MODIS' 11/12 µm, so the signal is ≈ 1–3 K against a
#: clear-sky spread of −1.6…+1.8 K (NEΔT 0.3 K per band, emissivity, water vapour): a weak, late test.
CIRRUS_SPLIT_MIN_K = 2.2

# --- Spatial ----------------------------------------------------------------------------------------------
#: Window (pixels) of the local BT13 standard deviation, and the offset (K) removed before it.
TEXTURE_SIZE = 3
STD_OFFSET_K = 273.15
#: Local 3 × 3 BT13 standard deviation (K) above which a (cold) pixel is a cloud edge or broken cloud
#: (MOD35's spatial uniformity test; Tonooka 2008). Clear land is smooth at 90 m apart from patch borders
#: (noise alone: 0.3 K).
TEXTURE_MIN_K = 1.5
#: A textured pixel is cloud at night when colder than the reference by this fraction of the night margin.
TEXTURE_MARGIN_FRACTION = 0.75

# --- Snow / ice ---------------------------------------------------------------------------------------------
#: Snow and ice are at most 273.15 K; BT13 of ε ≈ 0.99 snow lies 0–2 K below its LST. Above this BT13 a bright
#: white pixel is not snow.
SNOW_MAX_BT13_K = 274.5
#: Below this BT13 a bright white pixel is taken as a cloud top, not snow (sunlit snow is rarely this cold;
#: winter snowfields below it are a known confusion).
SNOW_MIN_BT13_K = 258.0
#: Snow's band-3N/band-1 reflectance ratio: ice grains (50–1000 µm) absorb at 0.81 µm (Warren 1982), cloud
#: droplets and crystals (10–30 µm) do not. Snow ≈ 0.8–0.95, clouds ≈ 0.95–1.05 (band-1 Rayleigh above the
#: cloud lowers their ratio a little).
SNOW_MAX_NIR_RATIO = 0.96
#: Snow surfaces are smooth: local BT13 standard deviation (K) below this.
SNOW_MAX_TEXTURE_K = 1.0


def _finite_all(*arrays) -> np.ndarray:
    out = np.ones(np.broadcast_shapes(*(np.shape(a) for a in arrays)), bool)
    for a in arrays:
        out &= np.isfinite(a)
    return out


def bright(reflectance) -> np.ndarray:
    """Band-2 reflectance > :data:`BRIGHT_MIN_RED` (cloud vs dark land)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(reflectance[1]) > BRIGHT_MIN_RED


def ndvi(reflectance) -> np.ndarray:
    """TOA NDVI (ρ3N − ρ2)/(ρ3N + ρ2) of a (3, y, x) reflectance block."""
    red, nir = np.asarray(reflectance[1], float), np.asarray(reflectance[2], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (nir - red) / (nir + red)


def not_vegetation(reflectance) -> np.ndarray:
    """NDVI < :data:`CLOUD_MAX_NDVI` (cloud vs vegetation)."""
    with np.errstate(invalid="ignore"):
        return ndvi(reflectance) < CLOUD_MAX_NDVI


def whiteness(reflectance) -> np.ndarray:
    """Σ_i |ρ_i / mean(ρ) − 1| over bands 1, 2, 3N (0 for a spectrally flat, white target)."""
    rho = np.asarray(reflectance, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(rho / rho.mean(axis=0) - 1.0).sum(axis=0)


def white(reflectance) -> np.ndarray:
    """Whiteness < :data:`WHITENESS_MAX` (cloud vs reddish soil, sand and vegetation)."""
    with np.errstate(invalid="ignore"):
        return whiteness(reflectance) < WHITENESS_MAX


def colder_than(bt13, reference, margin_k: float) -> np.ndarray:
    """BT13 < reference − margin: cloud tops are colder than the clear surface (lapse rate)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(bt13) < np.asarray(reference) - margin_k


def cirrus_tri(bt11, bt13, min_k: float = CIRRUS_TRI_MIN_K) -> np.ndarray:
    """BT11 − BT13 > ``min_k`` (semi-transparent ice; :data:`CIRRUS_TRI_MIN_K` by day,
    :data:`NIGHT_CIRRUS_TRI_MIN_K` at night)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(bt11) - np.asarray(bt13) > min_k


def cirrus_split(bt13, bt14) -> np.ndarray:
    """BT13 − BT14 > :data:`CIRRUS_SPLIT_MIN_K` (ice split-window signature)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(bt13) - np.asarray(bt14) > CIRRUS_SPLIT_MIN_K


def local_std(values, size: int = TEXTURE_SIZE) -> np.ndarray:
    """NaN-aware standard deviation over a ``size`` × ``size`` window (edges: nearest padding).

    Float32 on values minus a fixed :data:`STD_OFFSET_K` (no cancellation of E[x²] − E[x]² at 300 K; the same
    offset in every block, so blocks agree with the whole scene)."""
    x = np.asarray(values, np.float32) - np.float32(STD_OFFSET_K)
    valid = np.isfinite(x)
    filled = np.where(valid, x, np.float32(0.0))
    mean = ndimage.uniform_filter(filled, size, mode="nearest")
    square = ndimage.uniform_filter(filled * filled, size, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        if not valid.all():
            count = ndimage.uniform_filter(valid.astype(np.float32), size, mode="nearest")
            mean, square = mean / count, square / count
        return np.where(valid, np.sqrt(np.maximum(square - mean * mean, np.float32(0.0))), np.float32(np.nan))


def textured(bt13_std) -> np.ndarray:
    """Local BT13 standard deviation > :data:`TEXTURE_MIN_K` (cloud edges and broken cloud)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(bt13_std) > TEXTURE_MIN_K


def snow_like(bt13, bt13_std, reflectance=None) -> np.ndarray:
    """Evidence of clear snow/ice: near-freezing BT13 (:data:`SNOW_MIN_BT13_K`…:data:`SNOW_MAX_BT13_K`) and,
    by day, a band-3N/band-1 ratio below :data:`SNOW_MAX_NIR_RATIO` (ice-grain absorption); at night (no
    reflectance) near-freezing and smooth (local std < :data:`SNOW_MAX_TEXTURE_K`).

    Known confusion: by day a cloud over snow, or one whose top is near freezing and reflects little at
    0.81 µm, is taken as snow; cold winter snow (< 258 K) as cloud. At night every smooth cloud top near
    freezing is taken as snow, and snow at a rough snowline as cloud. Without SWIR (ASTER's failed in 2008)
    no NDSI can separate them.
    """
    t = np.asarray(bt13)
    with np.errstate(invalid="ignore", divide="ignore"):
        near_freezing = (t >= SNOW_MIN_BT13_K) & (t <= SNOW_MAX_BT13_K)
        if reflectance is None:
            return near_freezing & (np.asarray(bt13_std) < SNOW_MAX_TEXTURE_K)
        rho = np.asarray(reflectance, float)
        return near_freezing & (rho[2] / rho[0] < SNOW_MAX_NIR_RATIO)


def dilate(mask, radius: int) -> np.ndarray:
    """The mask grown by a disk of ``radius`` pixels (the cloud-edge buffer); radius 0 returns it unchanged."""
    mask = np.asarray(mask, bool)
    if radius <= 0:
        return mask.copy()
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return ndimage.binary_dilation(mask, structure=(x * x + y * y) <= radius * radius + radius)
