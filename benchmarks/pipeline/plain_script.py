"""The baseline a user would write by hand: pyhdf read (handbook UCC), the shipped ONNX teacher/students/
fusion over the whole scene in one process and one thread, Zarr out. No Dask, no framework (the view
zenith comes from the package's metadata parser).

    python benchmarks/pipeline/plain_script.py OUT_DIR SCENE.hdf [SCENE.hdf …]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from pyhdf.SD import SD, SDC

from akkd_scale.conventions import BANDS
from akkd_scale.models.bundle import default_bundle_path, load_bundle
from akkd_scale.pipeline.kernel import SLAB_ROWS
from akkd_scale.sensors import ASTER_TIR, UCC, brightness_temperature


def retrieve_file(path: Path, out: Path, bundle) -> None:
    sd = SD(str(path), SDC.READ)
    dn = np.stack([sd.select(f"ImageData{b[1:]}")[:] for b in BANDS]).astype(np.float64)
    sd.end()
    ucc = np.array([UCC[b] for b in BANDS])[:, None, None]
    radiance = np.where((dn == 0) | (dn == 4095), np.nan, (dn - 1.0) * ucc)
    bt = brightness_temperature(radiance, ASTER_TIR, band_axis=0).astype(np.float32)
    ny, nx = bt.shape[1:]
    rows = bt.reshape(5, -1).T
    vza = np.float32(xr.open_dataset(path, engine="aster_l1b")["view_zenith"].values)  # metadata only
    result, qc = bundle.predict_with_quality(rows, vza, ("fusion",))
    group = zarr.open_group(str(out / f"{path.stem}.zarr"), mode="w")
    group.create_array("lst", data=result["fusion"]["lst"].reshape(ny, nx))
    group.create_array("emissivity", data=result["fusion"]["emissivity"].T.reshape(5, ny, nx))
    group.create_array("lst_uncertainty", data=result["fusion"]["lst_uncertainty"].reshape(ny, nx))
    group.create_array("qc", data=qc.reshape(ny, nx))


def main() -> None:
    out, paths = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(default_bundle_path(), threads=1, slab_rows=SLAB_ROWS)
    for path in paths:
        retrieve_file(path, out, bundle)


if __name__ == "__main__":
    main()
