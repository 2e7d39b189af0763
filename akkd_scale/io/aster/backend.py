"""Lazy xarray backend (``engine="aster_l1b"``) for the TIR subsystem of ASTER AST_L1B and AST_L1T files.

What it returns is described in ``docs/reader.md``. In short: ``radiance`` and
``brightness_temperature`` (band, y, x) float32, NaN at fill (DN 0) and saturation (DN 4095);
``latitude``/``longitude`` (y, x) — L1B: bilinear from the 11 × 11 lattice (geocentric latitude made
geodetic), L1T: from the UTM grid; ``ndvi`` (y, x) from VNIR bands 2 and 3N aggregated to the TIR pixels
(NaN without VNIR) and ``vnir_reflectance`` (vnir_band, y, x) of bands 1, 2, 3N aggregated the same way
(float64, NaN at fill, +inf at saturation; the cloud mask's day input, the numbers NDVI is computed from); scalar
``view_zenith`` and ``solar_zenith``; a ``spatial_ref`` coordinate written
with rioxarray (L1T: UTM CRS + transform, ``x``/``y`` in metres; L1B: EPSG:4326 and the lattice as
ground control points). Opening reads only metadata, the small lattice and (to reject all-fill scenes)
one band; pixel reads happen per Dask chunk, each reopening the file by path under the HDF4 lock, so the
dataset computes on multi-process Dask clusters.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from ...conventions import BANDS, BT, NDVI_FROM_REFLECTANCE, OUTPUT_ATTRS, VNIR_BAND, VNIR_REFLECTANCE, VZA
from ...errors import SceneFileError
from ...sensors import ASTER_TIR
from ..hdf4 import check_hdf4
from ..remote import StagedSource
from .geolocation import (
    LatticeArray,
    ProjectedLatLonArray,
    georeference,
    lattice_gcps,
    lattice_positions,
    view_zenith_from_pointing,
)
from .scene import DN_FILL, DN_SATURATED, TirScene, inspect_scene
from .vnir import REFLECTANCE_BANDS, NdviArray, VnirReflectanceArray
from .windows import read_windows, window_shape

log = logging.getLogger(__name__)


class TirArray(BackendArray):
    """(band, y, x) radiance or brightness temperature, read and converted per requested window."""

    def __init__(self, scene: TirScene, quantity: str, reads=None):
        self.path = reads or scene.path  # what read_windows opens: the path, or where a staged copy comes from
        self.bands = scene.bands
        self.gain, self.offset = scene.gain, scene.offset
        self.quantity = quantity
        self.shape = (len(scene.bands),) + tuple(scene.shape)
        self.dtype = np.dtype("float32")

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._raw_indexing_method
        )

    def _raw_indexing_method(self, key: tuple) -> np.ndarray:
        band_key, spatial = key[0], key[1:]
        if isinstance(band_key, (int, np.integer)):
            return self._convert(int(band_key), self._read([int(band_key)], spatial)[0])
        selected = list(range(len(self.bands))[band_key])
        if not selected:
            return np.empty((0,) + window_shape(spatial, self.shape[1:]), np.float32)
        windows = self._read(selected, spatial)
        return np.stack([self._convert(i, dn) for i, dn in zip(selected, windows)])

    def _read(self, selected: list[int], spatial: tuple) -> list[np.ndarray]:
        """DN windows (basic ``spatial`` key) of the ``selected`` bands (indices into ``bands``)."""
        return read_windows(self.path, [self.bands[i] for i in selected], spatial)

    def _convert(self, i: int, dn: np.ndarray) -> np.ndarray:
        """DN → radiance (NaN at fill/saturation) → optionally brightness temperature, float32."""
        valid = (dn != DN_FILL) & (dn != DN_SATURATED)
        radiance = np.where(valid, self.gain[i] * dn.astype(np.float64) + self.offset[i], np.nan)
        if self.quantity == "radiance":
            return radiance.astype(np.float32)
        return ASTER_TIR.bands[i].brightness_temperature(radiance).astype(np.float32)


def _preferred_chunks(scene: TirScene) -> dict[str, int]:
    """Whole rows (the HDF4 storage order) in blocks of one lattice row spacing; all bands together."""
    rows = int(min(scene.shape[0], max(1, round(scene.line_map[1]))))
    return {"band": len(scene.bands), "y": rows, "x": scene.shape[1]}


def _tir_variables(scene: TirScene, preferred: dict[str, int], tir_array=TirArray) -> dict[str, xr.Variable]:
    """``radiance`` and ``brightness_temperature`` (band, y, x), read per window by ``tir_array(scene, quantity)``."""
    return {
        "radiance": xr.Variable(
            ("band", "y", "x"),
            indexing.LazilyIndexedArray(tir_array(scene, "radiance")),
            {
                "long_name": "at-sensor spectral radiance",
                "units": "W m-2 sr-1 um-1",
                "standard_name": "toa_outgoing_radiance_per_unit_wavelength",
                "calibration": scene.calibration_source,
                "comment": "NaN where DN is 0 (fill) or 4095 (saturated)",
            },
            {"preferred_chunks": preferred},
        ),
        BT: xr.Variable(
            ("band", "y", "x"),
            indexing.LazilyIndexedArray(tir_array(scene, "brightness_temperature")),
            {
                "long_name": "at-sensor brightness temperature",
                "units": "K",
                "standard_name": "toa_brightness_temperature",
                "comment": "inverse band-effective Planck function of the SRF; NaN at fill and saturation",
            },
            {"preferred_chunks": preferred},
        ),
    }


def _latlon_variables(scene: TirScene, spatial: dict[str, int]) -> dict[str, xr.Variable]:
    """``latitude`` and ``longitude`` (y, x): L1T from the UTM grid, L1B from the lattice."""
    projected = scene.projection is not None
    if projected:
        latitude, longitude = (
            ProjectedLatLonArray(scene.projection, scene.shape, which) for which in ("latitude", "longitude")
        )
        comment = f"pixel centres of the UTM grid (EPSG:{scene.projection.epsg}) converted with pyproj"
    else:
        latitude = LatticeArray(scene.latitude_lattice, scene.line_map, scene.pixel_map, scene.shape)
        longitude = LatticeArray(scene.longitude_lattice, scene.line_map, scene.pixel_map, scene.shape, wrap=True)
        comment = "bilinear from the 11x11 geolocation lattice"
    converted = " after geocentric-to-geodetic conversion" if scene.level == "1B" else ""  # the L1T lattice is geodetic
    return {
        "latitude": xr.Variable(
            ("y", "x"),
            indexing.LazilyIndexedArray(latitude),
            {**OUTPUT_ATTRS["latitude"], "comment": comment + converted},
            {"preferred_chunks": spatial},
        ),
        "longitude": xr.Variable(
            ("y", "x"),
            indexing.LazilyIndexedArray(longitude),
            {**OUTPUT_ATTRS["longitude"], "comment": comment},
            {"preferred_chunks": spatial},
        ),
    }


def _ndvi_variable(scene: TirScene, spatial: dict[str, int], ndvi_array=NdviArray) -> xr.Variable:
    """``ndvi`` (y, x) from VNIR bands 2 and 3N, read per window by ``ndvi_array(path, vnir, shape)`` (NaN
    without VNIR)."""
    array = ndvi_array(scene.path, scene.vnir, scene.shape)
    return xr.Variable(
        ("y", "x"),
        indexing.LazilyIndexedArray(array),
        {
            "long_name": "normalized difference vegetation index (top of atmosphere, VNIR bands 3N and 2)",
            "units": "1",
            "comment": scene.vnir_note,
            "vnir_available": int(scene.vnir is not None),
            NDVI_FROM_REFLECTANCE: 1,
        },
        {"preferred_chunks": spatial},
    )


def _reflectance_variable(
    scene: TirScene, spatial: dict[str, int], reflectance_array=VnirReflectanceArray
) -> xr.Variable:
    """``vnir_reflectance`` (vnir_band, y, x) of VNIR bands 1, 2, 3N, read per window by
    ``reflectance_array(path, vnir, shape)`` (NaN without VNIR)."""
    vnir = scene.vnir
    note = scene.vnir_note if vnir is None else f"{scene.vnir_note}; {vnir.band1_note}"
    return xr.Variable(
        (VNIR_BAND, "y", "x"),
        indexing.LazilyIndexedArray(reflectance_array(scene.path, vnir, scene.shape)),
        {
            "long_name": "top-of-atmosphere reflectance of VNIR bands 1, 2, 3N averaged over each TIR pixel",
            "units": "1",
            "comment": f"{note}; NaN: fill, outside the VNIR image or no VNIR; +inf: saturated (DN 255)",
            "vnir_available": int(vnir is not None),
        },
        {"preferred_chunks": {VNIR_BAND: len(REFLECTANCE_BANDS), **spatial}},
    )


def _angle_variables(scene: TirScene) -> dict[str, xr.Variable]:
    """Scalar ``view_zenith`` (from the pointing angle) and ``solar_zenith`` at the scene centre."""
    vza = view_zenith_from_pointing(scene.pointing_angle)
    return {
        VZA: xr.Variable(
            (),
            np.float64(vza),
            {
                "long_name": "view zenith angle at the scene centre",
                "units": "degree",
                "standard_name": "sensor_zenith_angle",
                "comment": f"from the TIR pointing angle ({scene.pointing_source}) with Earth curvature: "
                "sin(vza) = (R+H)/R sin(|pointing|); across-scene variation ignored"
                + ("" if np.isfinite(vza) else "; NaN because the pointing angle is unavailable"),
                "pointing_angle": scene.pointing_angle,
            },
        ),
        "solar_zenith": xr.Variable(
            (),
            np.float64(scene.solar_zenith),
            {
                "long_name": "solar zenith angle at the scene centre",
                "units": "degree",
                "standard_name": "solar_zenith_angle",
                "comment": "90 - SOLARDIRECTION elevation"
                + ("" if np.isfinite(scene.solar_zenith) else "; NaN because SOLARDIRECTION is missing"),
            },
        ),
    }


def _georeference(ds: xr.Dataset, scene: TirScene) -> xr.Dataset:
    """``spatial_ref`` of the scene: the L1T grid, or the L1B lattice as ground control points."""
    if scene.projection is not None:
        return georeference(ds, scene.shape, scene.projection)
    lines, pixels = lattice_positions(scene.line_map, scene.pixel_map, scene.latitude_lattice.shape)
    gcps = lattice_gcps(scene.latitude_lattice, scene.longitude_lattice, lines, pixels)
    return georeference(ds, scene.shape, gcps=gcps)


def build_dataset(
    scene: TirScene,
    drop_variables=(),
    *,
    tir_array=TirArray,
    ndvi_array=NdviArray,
    reflectance_array=VnirReflectanceArray,
    preferred: dict[str, int] | None = None,
) -> xr.Dataset:
    """The lazy Dataset for a validated scene (variables wrap BackendArrays; no pixel read here).

    ``tir_array``/``ndvi_array``/``reflectance_array`` make the arrays that read pixels (default: from the HDF
    file by path; the STAC reader passes ones reading COG windows) and ``preferred`` the preferred chunks
    (default: whole rows in lattice-row blocks), so every reader builds the same variables, attributes and
    georeference."""
    preferred = preferred or _preferred_chunks(scene)
    spatial = {k: preferred[k] for k in ("y", "x")}
    variables = {
        **_tir_variables(scene, preferred, tir_array),
        **_latlon_variables(scene, spatial),
        "ndvi": _ndvi_variable(scene, spatial, ndvi_array),
        VNIR_REFLECTANCE: _reflectance_variable(scene, spatial, reflectance_array),
        **_angle_variables(scene),
    }
    coords = {
        "band": xr.Variable(("band",), np.array(BANDS), {"long_name": "ASTER TIR band"}),
        "wavelength": xr.Variable(
            ("band",), ASTER_TIR.centers_um, {"long_name": "band centre wavelength (SRF centroid)", "units": "um"}
        ),
        VNIR_BAND: xr.Variable((VNIR_BAND,), np.array(REFLECTANCE_BANDS), {"long_name": "ASTER VNIR band"}),
    }
    drop = set(drop_variables or ())
    data_vars = {k: v for k, v in variables.items() if k not in drop}
    attrs = {
        "title": "ASTER TIR at-sensor radiance and brightness temperature",
        "Conventions": "CF-1.8",
        "platform": "Terra",
        "sensor": "ASTER_TIR",
        "source_file": scene.path,
        "acquisition_time": scene.acquisition_time,
        "pointing_angle": scene.pointing_angle,
        **scene.attrs,
    }
    ds = xr.Dataset(data_vars, coords={k: v for k, v in coords.items() if k not in drop}, attrs=attrs)
    return _georeference(ds, scene)


class AsterL1BBackendEntrypoint(BackendEntrypoint):
    """xarray backend ``aster_l1b``: ``xr.open_dataset(path, engine="aster_l1b", chunks={})``."""

    description = "ASTER AST_L1B/AST_L1T thermal-infrared radiance and brightness temperature (HDF-EOS2/HDF4)"
    url = "https://lpdaac.usgs.gov/products/ast_l1bv003/"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "check_fill", "staged_from")

    def open_dataset(
        self, filename_or_obj, *, drop_variables=None, check_fill: bool = True, staged_from: StagedSource | None = None
    ) -> xr.Dataset:
        """``staged_from``: the object ``filename_or_obj`` is a staged copy of; the pixel reads of a task on
        another host then stage their own copy of it (:func:`akkd_scale.io.remote.local_copy`)."""
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            raise SceneFileError(
                repr(filename_or_obj),
                "not a path",
                variable="filename_or_obj",
                expected="a file path (the reader reopens files by path)",
            )
        scene = inspect_scene(filename_or_obj, check_fill=check_fill)
        log.debug("opened %s: %s, %d x %d", scene.path, scene.attrs.get("product"), *scene.shape)
        if staged_from is None:
            return build_dataset(scene, drop_variables)
        return build_dataset(
            scene,
            drop_variables,
            tir_array=partial(TirArray, reads=staged_from),
            ndvi_array=lambda _path, vnir, shape: NdviArray(staged_from, vnir, shape),
            reflectance_array=lambda _path, vnir, shape: VnirReflectanceArray(staged_from, vnir, shape),
        )

    def guess_can_open(self, filename_or_obj) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        path = Path(filename_or_obj)
        if path.suffix.lower() != ".hdf" or not path.name.upper().startswith("AST_L1"):
            return False
        try:
            check_hdf4(path)
        except SceneFileError:
            return False
        return True


def open_aster_l1b(path, chunks=None, **kwargs) -> xr.Dataset:
    """Open an ASTER L1B/L1T file lazily with Dask; ``chunks`` as in xarray (default: the reader's
    preferred chunks). The band dimension is always one chunk."""
    if chunks is None:
        chunks = {}
    if isinstance(chunks, dict):
        chunks = {**chunks, "band": -1, VNIR_BAND: -1}
    return xr.open_dataset(path, engine="aster_l1b", chunks=chunks, **kwargs)
