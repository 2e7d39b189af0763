"""VNIR radiometry for NDVI: where VNIR bands 2 and 3N fall on the TIR grid, their calibration to top-of-
atmosphere reflectance, and the lazy ``ndvi`` variable (steps in ``docs/reader.md``, *VNIR NDVI*). Missing or
unusable VNIR is normal (night scenes): it gives NaN NDVI and a reason, never an error."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ...errors import SceneFileError, describe_path
from ...sensors.aster import VNIR_UCC
from ..hdf4 import SdsInfo
from .metadata import MapProjection, Metadata, band_gains, calibration, map_projection
from .structure import PYHDF_UINT8, VNIR_SWATH, Structure, image_bands
from .windows import SpatialArray, read_windows

log = logging.getLogger(__name__)

VNIR_FILL, VNIR_SATURATED = 0, 255
#: VNIR bands used for NDVI and their exo-atmospheric solar irradiance (W m-2 um-1; Thome et al. "B", the
#: values of LP DAAC's ASTERL1T_DN2REF).
VNIR_BANDS = ("2", "3N")
VNIR_ESUN = (1549.0, 1114.0)


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


def earth_sun_distance_au(day_of_year: int) -> float:
    """Earth–Sun distance (AU): 1 − 0.01672 cos(0.9856° (DOY − 4))."""
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day_of_year - 4)))


def _l1t_placement(meta: Metadata, vshape, tir_shape, tir_projection: MapProjection | None):
    """(factor, origin, note) of an L1T VNIR grid: from both subsystems' UPPERLEFTM/LOWERRIGHTM, else 6 and
    the TIR upper-left corner."""
    try:
        vproj = map_projection(meta, "VNIR")
    except SceneFileError:
        vproj = None
    if vproj is None or tir_projection is None:
        return 6, (0, 0), " assumed to share the TIR grid's upper-left corner (no VNIR UPPERLEFTM)"
    factor, origin = grid_placement(vproj, vshape, tir_projection, tir_shape)
    return factor, origin, f" placed by their UPPERLEFTM ({vproj.pixel_size(vshape)[0]:.1f} m VNIR pixels)"


def grid_placement(vnir: MapProjection, vshape, tir: MapProjection, tir_shape) -> tuple[int, tuple[int, int]]:
    """(VNIR pixels per TIR pixel, VNIR (line, pixel) of the TIR grid's upper-left corner) of two UTM grids."""
    vres, tres = vnir.pixel_size(vshape)[0], tir.pixel_size(tir_shape)[0]
    factor = max(1, round(tres / vres))
    origin = (round(((vnir.upper_left[1] + vres / 2) - (tir.upper_left[1] + tres / 2)) / vres),
              round(((tir.upper_left[0] - tres / 2) - (vnir.upper_left[0] - vres / 2)) / vres))
    return factor, origin


def _whole_multiple(vshape, tir_shape) -> int | None:
    """VNIR pixels per TIR pixel of an L1B (the same whole number along both axes), else None."""
    ratios = {vshape[0] / tir_shape[0], vshape[1] / tir_shape[1]}
    if len(ratios) != 1 or not float(next(iter(ratios))).is_integer():
        return None
    return int(next(iter(ratios)))


def reflectance_factors(solar_zenith: float, when: str) -> tuple[float, float]:
    """π d² / (ESUN cos θs) of bands 2 and 3N on the acquisition day."""
    doy = datetime.fromisoformat(when.replace("Z", "+00:00")).timetuple().tm_yday
    distance = earth_sun_distance_au(doy)
    cos_sun = math.cos(math.radians(solar_zenith))
    return tuple(math.pi * distance ** 2 / (esun * cos_sun) for esun in VNIR_ESUN)


def vnir_grid(structure: Structure, meta: Metadata, level: str, tir_shape, tir_projection: MapProjection | None,
              solar_zenith: float, when: str) -> tuple[VnirGrid | None, str]:
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
        factor, origin, placed = _l1t_placement(meta, vshape, tir_shape, tir_projection)
        note += placed
    else:
        factor, origin = _whole_multiple(vshape, tir_shape), (0, 0)
        if factor is None:
            log.warning("%s: VNIR %s is not a whole multiple of TIR %s: NDVI is NaN", describe_path(path),
                        vshape, tir_shape)
            return None, f"VNIR {vshape} is not a whole multiple of TIR {tir_shape}: NDVI is NaN"
    gains = {b: band_gains(meta).get(b, "NOR") for b in VNIR_BANDS}
    if any(g not in VNIR_UCC[b] for b, g in gains.items()):
        log.warning("%s: VNIR gain %s: NDVI is NaN", describe_path(path), gains)
        return None, f"VNIR gain {gains} (band off or unknown setting): NDVI is NaN"
    gain, offset, source = calibration(meta, VNIR_BANDS, "VNIR", tuple(VNIR_UCC[b][g] for b, g in gains.items()))
    reflectance = reflectance_factors(solar_zenith, when)
    note += f" ({factor} x {factor} VNIR pixels per TIR pixel), calibration: {source}"
    return VnirGrid(bands, gain, offset, source, factor, origin, reflectance), note


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
        vshape = vnir.bands[0].shape
        lines = (vnir.origin[0] + f * r0, vnir.origin[0] + f * r1)
        pixels = (vnir.origin[1] + f * c0, vnir.origin[1] + f * c1)
        inside = [(max(0, lo), min(n, hi)) for (lo, hi), n in zip((lines, pixels), vshape)]
        dn = np.full((2, lines[1] - lines[0], pixels[1] - pixels[0]), VNIR_FILL, np.uint8)
        if all(lo < hi for lo, hi in inside):
            windows = self._read(tuple(slice(lo, hi) for lo, hi in inside))
            target = (slice(inside[0][0] - lines[0], inside[0][1] - lines[0]),
                      slice(inside[1][0] - pixels[0], inside[1][1] - pixels[0]))
            for i, window in enumerate(windows):
                dn[i][target] = window
        valid = (dn != VNIR_FILL) & (dn != VNIR_SATURATED)
        shape = (r1 - r0, f, c1 - c0, f)
        # reflectance is linear in DN: average the DN over the f x f pixels first (no full-size float copy)
        red, nir = ((vnir.gain[i] * dn[i].reshape(shape).mean(axis=(1, 3)) + vnir.offset[i])
                    * vnir.reflectance_factor[i] for i in range(2))
        complete = valid.all(axis=0).reshape(shape).all(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
        return np.where(complete, ndvi, np.nan).astype(np.float32)

    def _read(self, window: tuple[slice, slice]) -> list[np.ndarray]:
        """DN of bands 2 and 3N in a (line, pixel) ``window`` of the VNIR image."""
        return read_windows(self.path, list(self.vnir.bands), window)
