"""VNIR radiometry: where VNIR bands 1, 2 and 3N fall on the TIR grid, their calibration to top-of-atmosphere
reflectance, the lazy ``ndvi`` (bands 2, 3N) and ``vnir_reflectance`` (bands 1, 2, 3N, for the cloud mask)
variables (steps in ``docs/reader.md``, *VNIR NDVI* and *VNIR reflectance*). Missing or unusable VNIR is
normal (night scenes): it gives NaN and a reason, never an error."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from ...errors import SceneFileError, describe_path
from ...sensors.aster import VNIR_UCC
from ..hdf4 import SdsInfo
from .metadata import MapProjection, Metadata, band_gains, calibration, map_projection
from .structure import PYHDF_UINT8, VNIR_SWATH, Structure, image_bands
from .windows import SpatialArray, read_windows, window_positions

log = logging.getLogger(__name__)

VNIR_FILL, VNIR_SATURATED = 0, 255
#: Exo-atmospheric solar irradiance (W m-2 um-1) of VNIR bands 1, 2, 3N: Thome et al. "B", the values of LP
#: DAAC's ASTERL1T_DN2REF (band 1: 1848; published band-1 values run 1846–1848, Smith vs. Thome tables).
SOLAR_IRRADIANCE = {"1": 1848.0, "2": 1549.0, "3N": 1114.0}
#: VNIR bands used for NDVI and their solar irradiance.
VNIR_BANDS = ("2", "3N")
VNIR_ESUN = tuple(SOLAR_IRRADIANCE[b] for b in VNIR_BANDS)
#: Bands of ``vnir_reflectance`` (its ``vnir_band`` coordinate), in the order the cloud tests use.
REFLECTANCE_BANDS = ("1", "2", "3N")


@dataclass(frozen=True)
class VnirGrid:
    """VNIR bands 2 and 3N and how their pixels fall on the TIR grid."""

    bands: tuple[SdsInfo, SdsInfo]
    gain: tuple[float, float]
    offset: tuple[float, float]
    calibration_source: str
    factor: int  # VNIR pixels per TIR pixel along each axis
    origin: tuple[int, int]  # VNIR (line, pixel) of the upper-left corner of TIR pixel (0, 0)
    reflectance_factor: tuple[float, float]  # ρ = L · π d² / (ESUN cos θs), per band
    band1: VnirBand | None = None  # band 1 (green) for ``vnir_reflectance``; None: missing or unusable
    band1_note: str = ""


@dataclass(frozen=True)
class VnirBand:
    """One more VNIR band on the same grid: its image, L = gain · DN + offset and ρ = reflectance_factor · L."""

    info: SdsInfo
    gain: float
    offset: float
    reflectance_factor: float


def earth_sun_distance_au(day_of_year: int) -> float:
    """Earth–Sun distance (AU): 1 − 0.01672 cos(0.9856° (DOY − 4))."""
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day_of_year - 4)))


#: Most VNIR pixels per TIR pixel along an axis an L1T's grids may give (ASTER: 90 m / 15 m = 6).
MAX_VNIR_FACTOR = 12


def _l1t_placement(meta: Metadata, vshape, tir_shape, tir_projection: MapProjection | None):
    """(factor, origin, note) of an L1T VNIR grid: from both subsystems' UPPERLEFTM/LOWERRIGHTM, else 6 and
    the TIR upper-left corner; None when the two grids do not nest (another zone, or a TIR pixel that is not
    1…MAX_VNIR_FACTOR whole VNIR pixels)."""
    try:
        vproj = map_projection(meta, "VNIR")
    except SceneFileError:
        vproj = None
    if vproj is None or tir_projection is None:
        return 6, (0, 0), " assumed to share the TIR grid's upper-left corner (no VNIR UPPERLEFTM)"
    placement = grid_placement(vproj, vshape, tir_projection, tir_shape)
    if placement is None:
        return None
    factor, origin = placement
    return factor, origin, f" placed by their UPPERLEFTM ({vproj.pixel_size(vshape)[0]:.1f} m VNIR pixels)"


def grid_placement(vnir: MapProjection, vshape, tir: MapProjection, tir_shape) -> tuple[int, tuple[int, int]] | None:
    """(VNIR pixels per TIR pixel, VNIR (line, pixel) of the TIR grid's upper-left corner) of two UTM grids; None
    when they do not nest (another zone, or a TIR pixel that is not 1…MAX_VNIR_FACTOR whole VNIR pixels)."""
    vres, tres = vnir.pixel_size(vshape)[0], tir.pixel_size(tir_shape)[0]
    ratio = tres / vres if vres > 0 else math.nan
    factor = round(ratio) if math.isfinite(ratio) else 0
    if vnir.epsg != tir.epsg or not 1 <= factor <= MAX_VNIR_FACTOR or abs(ratio - factor) > 0.01 * factor:
        return None
    origin = (
        round(((vnir.upper_left[1] + vres / 2) - (tir.upper_left[1] + tres / 2)) / vres),
        round(((tir.upper_left[0] - tres / 2) - (vnir.upper_left[0] - vres / 2)) / vres),
    )
    return factor, origin


def _whole_multiple(vshape, tir_shape) -> int | None:
    """VNIR pixels per TIR pixel of an L1B (the same whole number along both axes), else None."""
    ratios = {vshape[0] / tir_shape[0], vshape[1] / tir_shape[1]}
    if len(ratios) != 1 or not float(next(iter(ratios))).is_integer():
        return None
    return int(next(iter(ratios)))


def reflectance_factors(solar_zenith: float, when: str, bands=VNIR_BANDS) -> tuple[float, ...]:
    """π d² / (ESUN cos θs) of ``bands`` (default 2 and 3N) on the acquisition day."""
    doy = datetime.fromisoformat(when.replace("Z", "+00:00")).timetuple().tm_yday
    distance = earth_sun_distance_au(doy)
    cos_sun = math.cos(math.radians(solar_zenith))
    return tuple(math.pi * distance**2 / (SOLAR_IRRADIANCE[b] * cos_sun) for b in bands)


def _band1(structure: Structure, meta: Metadata, shape, solar_zenith: float, when: str) -> tuple[VnirBand | None, str]:
    """VNIR band 1 on the grid of bands 2/3N (same shape), or (None, why not): it only feeds ``vnir_reflectance``."""
    try:
        (info,) = image_bands(structure, VNIR_SWATH, ("ImageData1",), PYHDF_UINT8, "uint8")
    except SceneFileError as exc:
        return None, f"band 1 unusable ({exc.problem}): its reflectance is NaN"
    gain_setting = band_gains(meta).get("1", "NOR")
    if info.shape != tuple(shape) or gain_setting not in VNIR_UCC["1"]:
        why = f"shape {info.shape} ≠ {tuple(shape)}" if info.shape != tuple(shape) else f"gain {gain_setting}"
        return None, f"band 1 unusable ({why}): its reflectance is NaN"
    (gain,), (offset,), _ = calibration(meta, ("1",), "VNIR", (VNIR_UCC["1"][gain_setting],))
    (factor,) = reflectance_factors(solar_zenith, when, ("1",))
    return VnirBand(info, gain, offset, factor), "band 1 with bands 2 and 3N"


def vnir_grid(
    structure: Structure,
    meta: Metadata,
    level: str,
    tir_shape,
    tir_projection: MapProjection | None,
    solar_zenith: float,
    when: str,
) -> tuple[VnirGrid | None, str]:
    """VNIR bands 2/3N on the TIR grid, or (None, why not)."""
    path = structure.path
    if VNIR_SWATH not in structure.swaths:
        return None, "no VNIR_Swath in the file (night scene or TIR-only product): NDVI is NaN"
    try:
        bands = image_bands(structure, VNIR_SWATH, tuple(f"ImageData{b}" for b in VNIR_BANDS), PYHDF_UINT8, "uint8")
    except SceneFileError as exc:
        log.warning("%s: VNIR bands unusable, NDVI is NaN: %s", describe_path(path), exc)
        return None, f"VNIR bands 2/3N unusable ({exc.problem}): NDVI is NaN"
    if math.isnan(solar_zenith):
        log.warning("%s: no SOLARDIRECTION: NDVI (needs the sun elevation) is NaN", describe_path(path))
        return None, "no SOLARDIRECTION in the metadata: NDVI is NaN"
    vshape = bands[0].shape
    note = "VNIR bands 2 and 3N"
    if level == "1T":
        placement = _l1t_placement(meta, vshape, tir_shape, tir_projection)
        if placement is None:
            log.warning(
                "%s: the VNIR grid (productmetadata.v) does not nest in the TIR grid: NDVI is NaN", describe_path(path)
            )
            return None, "VNIR grid (productmetadata.v) does not nest in the TIR grid: NDVI is NaN"
        factor, origin, placed = placement
        note += placed
    else:
        factor, origin = _whole_multiple(vshape, tir_shape), (0, 0)
        if factor is None:
            log.warning(
                "%s: VNIR %s is not a whole multiple of TIR %s: NDVI is NaN", describe_path(path), vshape, tir_shape
            )
            return None, f"VNIR {vshape} is not a whole multiple of TIR {tir_shape}: NDVI is NaN"
    gains = {b: band_gains(meta).get(b, "NOR") for b in VNIR_BANDS}
    if any(g not in VNIR_UCC[b] for b, g in gains.items()):
        log.warning("%s: VNIR gain %s: NDVI is NaN", describe_path(path), gains)
        return None, f"VNIR gain {gains} (band off or unknown setting): NDVI is NaN"
    gain, offset, source = calibration(meta, VNIR_BANDS, "VNIR", tuple(VNIR_UCC[b][g] for b, g in gains.items()))
    if not all(math.isfinite(g) and g > 0 and math.isfinite(o) for g, o in zip(gain, offset)):
        log.warning(
            "%s: VNIR unit conversion coefficients %s / %s (%s) unusable: NDVI is NaN",
            describe_path(path),
            gain,
            offset,
            source,
        )
        return None, f"VNIR unit conversion coefficients {gain} / {offset} unusable ({source}): NDVI is NaN"
    reflectance = reflectance_factors(solar_zenith, when)
    note += f" ({factor} x {factor} VNIR pixels per TIR pixel), calibration: {source}"
    band1, band1_note = _band1(structure, meta, vshape, solar_zenith, when)
    return VnirGrid(bands, gain, offset, source, factor, origin, reflectance, band1, band1_note), note


class NdviArray(SpatialArray):
    """(y, x) NDVI of top-of-atmosphere reflectance, VNIR bands 2 and 3N averaged over the VNIR pixels of
    each TIR pixel; NaN where any of them is fill/saturated, outside the VNIR image, or without VNIR."""

    def __init__(self, path: str, vnir: VnirGrid | None, shape: tuple[int, int]):
        self.path = path
        self.vnir = vnir
        self.shape = tuple(shape)
        self.dtype = np.dtype("float32")

    def _compute(self, rows, cols):
        if self.vnir is None:
            return np.full((rows.size, cols.size), np.nan, np.float32)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        block = self._block(r0, r1, c0, c1)
        return block[np.ix_(rows - r0, cols - c0)]

    def _block(self, r0, r1, c0, c1) -> np.ndarray:
        vnir, f = self.vnir, self.vnir.factor
        dn = vnir_window(self._read, vnir, vnir.bands, r0, r1, c0, c1)
        valid = (dn != VNIR_FILL) & (dn != VNIR_SATURATED)
        shape = (r1 - r0, f, c1 - c0, f)
        # reflectance is linear in DN: average the DN over the f x f pixels first (no full-size float copy)
        red, nir = (
            (vnir.gain[i] * dn[i].reshape(shape).mean(axis=(1, 3)) + vnir.offset[i]) * vnir.reflectance_factor[i]
            for i in range(2)
        )
        complete = valid.all(axis=0).reshape(shape).all(axis=(1, 3))
        return ndvi_from_reflectance(np.where(complete, red, np.nan), nir)

    def _read(self, infos, window: tuple[slice, slice]) -> list[np.ndarray]:
        """DN of the VNIR bands ``infos`` in a (line, pixel) ``window`` of the VNIR image (the STAC reader's
        arrays read COG windows instead)."""
        return read_windows(self.path, list(infos), window)


def ndvi_from_reflectance(red, nir) -> np.ndarray:
    """float32 NDVI (ρ3N − ρ2)/(ρ3N + ρ2) of band-2 (``red``) and band-3N (``nir``) reflectance; NaN where either is
    not finite (fill, saturated). The reader's ``ndvi`` and the pipeline's NDVI from ``vnir_reflectance`` (float64,
    the same numbers) both come from here, so they agree bit for bit."""
    red, nir = np.asarray(red, np.float64), np.asarray(nir, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (nir - red) / (nir + red)
    return np.where(np.isfinite(red) & np.isfinite(nir), ndvi, np.nan).astype(np.float32)


def vnir_window(read, vnir: VnirGrid, infos, r0, r1, c0, c1) -> np.ndarray:
    """uint8 (len(infos), f·(r1−r0), f·(c1−c0)) DN of the VNIR pixels under TIR rows r0:r1, columns c0:c1
    (fill outside the VNIR image), the image window read by ``read(infos, (lines, pixels))``."""
    f = vnir.factor
    vshape = vnir.bands[0].shape
    lines = (vnir.origin[0] + f * r0, vnir.origin[0] + f * r1)
    pixels = (vnir.origin[1] + f * c0, vnir.origin[1] + f * c1)
    inside = [(max(0, lo), min(n, hi)) for (lo, hi), n in zip((lines, pixels), vshape)]
    dn = np.full((len(infos), lines[1] - lines[0], pixels[1] - pixels[0]), VNIR_FILL, np.uint8)
    if all(lo < hi for lo, hi in inside):
        windows = read(infos, tuple(slice(lo, hi) for lo, hi in inside))
        target = (
            slice(inside[0][0] - lines[0], inside[0][1] - lines[0]),
            slice(inside[1][0] - pixels[0], inside[1][1] - pixels[0]),
        )
        for i, window in enumerate(windows):
            dn[i][target] = window
    return dn


def _pixel_stats(counts: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exact sum, min, max) of the DN over each f × f block of a (f·R, f·C) uint8 image: the block rows reduced
    with whole-row operations, then the f columns of each block by strided elementwise steps (NumPy reduces short
    innermost axes slowly)."""
    rows = counts.reshape(counts.shape[0] // f, f, counts.shape[1])
    total = rows.sum(axis=1, dtype=np.uint16)  # ≤ 6 · 255 per column
    low, high = rows.min(axis=1), rows.max(axis=1)
    total, low, high = (a.reshape(a.shape[0], -1, f) for a in (total, low, high))
    out_total, out_low, out_high = total[..., 0].astype(np.uint32), low[..., 0].copy(), high[..., 0].copy()
    for k in range(1, f):
        out_total += total[..., k]
        np.minimum(out_low, low[..., k], out=out_low)
        np.maximum(out_high, high[..., k], out=out_high)
    return out_total, out_low, out_high


class VnirReflectanceArray(BackendArray):
    """(vnir_band, y, x) TOA reflectance of VNIR bands 1, 2, 3N, each averaged over the VNIR pixels of a TIR pixel
    like NDVI, float64: the very numbers NDVI is computed from (:func:`ndvi_from_reflectance`). NaN where any of
    them is fill, outside the VNIR image, or the band is missing (no VNIR: NaN
    everywhere); +inf where none is fill but any is saturated (DN 255): brighter than the band can measure,
    which the cloud mask must know (a saturated pixel is bright, not missing)."""

    def __init__(self, path: str, vnir: VnirGrid | None, shape: tuple[int, int]):
        self.path = path
        self.vnir = vnir
        self.shape = (len(REFLECTANCE_BANDS),) + tuple(shape)
        self.dtype = np.dtype("float64")

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._raw_indexing_method
        )

    def _raw_indexing_method(self, key: tuple) -> np.ndarray:
        bands = np.arange(self.shape[0])[key[0]]
        rows, cols, squeeze = window_positions(key[1:], self.shape[1:])
        chosen = np.atleast_1d(bands)
        if rows.size == 0 or cols.size == 0 or chosen.size == 0:
            out = np.empty((chosen.size, rows.size, cols.size), self.dtype)
        elif self.vnir is None:
            out = np.full((chosen.size, rows.size, cols.size), np.nan, self.dtype)
        else:
            r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            out = self._block(r0, r1, c0, c1)[np.ix_(chosen, rows - r0, cols - c0)]
        return out[(0 if np.ndim(bands) == 0 else slice(None),) + squeeze]

    def _block(self, r0, r1, c0, c1) -> np.ndarray:
        vnir, f = self.vnir, self.vnir.factor
        calibrated = [
            VnirBand(info, g, o, k)
            for info, g, o, k in zip(vnir.bands, vnir.gain, vnir.offset, vnir.reflectance_factor)
        ]
        present = ([vnir.band1] if vnir.band1 is not None else []) + calibrated
        dn = vnir_window(self._read, vnir, [b.info for b in present], r0, r1, c0, c1)
        out = np.full((len(REFLECTANCE_BANDS), r1 - r0, c1 - c0), np.nan, np.float64)
        for i, (band, counts) in enumerate(zip(present, dn), start=0 if vnir.band1 is not None else 1):
            total, low, high = _pixel_stats(counts, f)
            # reflectance is linear in DN: average the DN over the f x f pixels first. The integer sum is exact, so
            # sum / f² is NdviArray's float64 mean bit for bit
            rho = (band.gain * (total / float(f * f)) + band.offset) * band.reflectance_factor
            out[i] = np.where(low == VNIR_FILL, np.nan, np.where(high == VNIR_SATURATED, np.inf, rho))
        return out

    def _read(self, infos, window: tuple[slice, slice]) -> list[np.ndarray]:
        """DN of the VNIR bands ``infos`` in a (line, pixel) ``window`` of the VNIR image."""
        return read_windows(self.path, list(infos), window)
