"""The baseline a user would write by hand for the product ``akkd-scale run`` writes by default: pyhdf reads of
the TIR and VNIR DN (handbook coefficients), brightness temperature, top-of-atmosphere NDVI of bands 3N and 2
averaged over the 6 × 6 VNIR pixels of each TIR pixel, land-cover classes from the published NDVI/BT rules, the
shipped ONNX teacher, class students and fusion over the whole scene in one process and one thread, the QC
bits, Zarr out. No Dask, no framework (view zenith, solar zenith and date come from the package's metadata
parser; the rules, coefficients and the Earth–Sun distance formula are the package's published ones).

    python benchmarks/pipeline/plain_script.py OUT_DIR SCENE.hdf [SCENE.hdf …]
"""

from __future__ import annotations

import math
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from pyhdf.SD import SD, SDC

from akkd_scale.conventions import BANDS, QC_LAND_COVER_RULES
from akkd_scale.io.aster.vnir import VNIR_ESUN, earth_sun_distance_au
from akkd_scale.landcover.rules import classes_from_rules
from akkd_scale.models.bundle import default_bundle_path, load_bundle
from akkd_scale.pipeline.kernel import SLAB_ROWS
from akkd_scale.sensors import ASTER_TIR, UCC, brightness_temperature
from akkd_scale.sensors.aster import VNIR_UCC

#: VNIR pixels per TIR pixel of an L1B (15 m vs 90 m).
VNIR_PER_TIR = 6


def ndvi(sd: SD, meta: xr.Dataset, shape: tuple[int, int]) -> np.ndarray:
    """TOA NDVI per TIR pixel: DN averaged over 6 × 6 VNIR pixels, radiance (DN − 1) × UCC, reflectance
    π L d² / (ESUN cos θs); NaN where any VNIR pixel is fill (0) or saturated (255)."""
    day = datetime.fromisoformat(meta.attrs["acquisition_time"].replace("Z", "+00:00")).timetuple().tm_yday
    cos_sun = math.cos(math.radians(float(meta["solar_zenith"])))
    ny, nx = shape
    bands = []
    for band, esun in zip(("2", "3N"), VNIR_ESUN, strict=True):
        dn = sd.select(f"ImageData{band}")[:]
        factor = math.pi * earth_sun_distance_au(day) ** 2 / (esun * cos_sun)
        blocks = dn.reshape(ny, VNIR_PER_TIR, nx, VNIR_PER_TIR)
        valid = ((blocks != 0) & (blocks != 255)).all(axis=(1, 3))
        ucc = VNIR_UCC[band]["NOR"]
        bands.append(((ucc * blocks.mean(axis=(1, 3)) - ucc) * factor, valid))
    (red, red_ok), (nir, nir_ok) = bands
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(red_ok & nir_ok, (nir - red) / (nir + red), np.nan).astype(np.float32)


def retrieve_file(path: Path, out: Path, bundle) -> None:
    meta = xr.open_dataset(path, engine="aster_l1b")  # metadata only: view/solar zenith, acquisition time
    sd = SD(str(path), SDC.READ)
    dn = np.stack([sd.select(f"ImageData{b[1:]}")[:] for b in BANDS]).astype(np.float64)
    ucc = np.array([UCC[b] for b in BANDS])[:, None, None]
    radiance = np.where((dn == 0) | (dn == 4095), np.nan, (dn - 1.0) * ucc)
    bt = brightness_temperature(radiance, ASTER_TIR, band_axis=0).astype(np.float32)
    ny, nx = bt.shape[1:]
    scene_ndvi = ndvi(sd, meta, (ny, nx))
    sd.end()
    cover = classes_from_rules(scene_ndvi, bt[0], bt[3], bt[4])
    rows = bt.reshape(5, -1).T
    vza = np.float32(meta["view_zenith"].values)
    result, qc = bundle.predict_with_quality(
        rows, vza, ("fusion",), {"ndvi": scene_ndvi.reshape(-1)}, cover.reshape(-1), cover.reshape(-1) >= 0
    )
    qc = qc.reshape(ny, nx) | np.where(cover >= 0, np.uint8(QC_LAND_COVER_RULES), np.uint8(0))
    group = zarr.open_group(str(out / f"{path.stem}.zarr"), mode="w")
    group.create_array("lst", data=result["fusion"]["lst"].reshape(ny, nx))
    group.create_array("emissivity", data=result["fusion"]["emissivity"].T.reshape(5, ny, nx))
    group.create_array("lst_uncertainty", data=result["fusion"]["lst_uncertainty"].reshape(ny, nx))
    group.create_array("qc", data=qc)
    group.create_array("land_cover", data=cover)


def main() -> None:
    out, paths = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(default_bundle_path(), threads=1, slab_rows=SLAB_ROWS)
    for path in paths:
        retrieve_file(path, out, bundle)


if __name__ == "__main__":
    main()
