"""Reader speed on a full-size (700 × 830) synthetic AST_L1B scene; prints times and ratios.

Baseline: reading the five DN bands with pyhdf and converting them with NumPy in one go (what a
hand-written eager script does). The lazy reader adds the per-chunk reopen, locking and Dask overhead.
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/io/bench_reader.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dask  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from pyhdf.SD import SD, SDC  # noqa: E402

from akkd_scale.sensors import ASTER_TIR, brightness_temperature  # noqa: E402
from akkd_scale.simulate.l1b_writer import write_aster_l1b  # noqa: E402


def best_of(n, func):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def eager_baseline(path: Path) -> np.ndarray:
    sd = SD(str(path), SDC.READ)
    try:
        names = {sd.select(i).info()[0]: i for i in range(sd.info()[0])}
        dn = np.stack([np.asarray(sd.select(names[f"ImageData{b}"])[:]) for b in range(10, 15)]).astype(float)
    finally:
        sd.end()
    ucc = np.array([b.ucc for b in ASTER_TIR.bands])[:, None, None]
    radiance = np.where(dn == 0, np.nan, (dn - 1) * ucc)
    return brightness_temperature(radiance, ASTER_TIR, band_axis=0).astype(np.float32)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_aster_l1b(Path(tmp) / "AST_L1B_bench.hdf", shape=(700, 830))
        pixels = 700 * 830
        t_open = best_of(5, lambda: xr.open_dataset(path, engine="aster_l1b", chunks={}))
        t_eager = best_of(3, lambda: eager_baseline(path))
        with dask.config.set(scheduler="threads", num_workers=2):
            for chunks in ({}, "auto", {"y": 350}):
                t_lazy = best_of(
                    3, lambda: xr.open_dataset(path, engine="aster_l1b", chunks=chunks).brightness_temperature.compute()
                )
                print(
                    f"lazy open+BT compute chunks={chunks!r}: {t_lazy * 1e3:7.1f} ms "
                    f"({pixels / t_lazy / 1e6:.2f} Mpx/s, ratio to eager baseline {t_lazy / t_eager:.2f})"
                )
        print(f"open (metadata, lattice, fill check): {t_open * 1e3:7.1f} ms")
        print(f"eager pyhdf+NumPy baseline:            {t_eager * 1e3:7.1f} ms ({pixels / t_eager / 1e6:.2f} Mpx/s)")
        temps = np.random.default_rng(0).uniform(200, 340, (pixels, 5))
        t_bt = best_of(3, lambda: brightness_temperature(temps, ASTER_TIR))
        print(f"brightness_temperature on {pixels} px x 5 bands: {t_bt * 1e3:.1f} ms ({pixels / t_bt / 1e6:.2f} Mpx/s)")


if __name__ == "__main__":
    main()
