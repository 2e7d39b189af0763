"""TES throughput (pixels/s) on synthetic ASTER pixels: NumPy in one block, and Dask over chunks.

Prints pixels/s, the time for one ASTER L1B TIR scene (700 × 830 pixels) and the Dask/NumPy speed
ratio. Pixels carry a realistic atmosphere with sky radiance, so NEM iterates as on real data.

    OMP_NUM_THREADS=1 python benchmarks/physics/bench_tes.py --pixels 1000000
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402

from akkd_scale.physics.tes import tes  # noqa: E402
from akkd_scale.sensors.aster import ASTER_TIR  # noqa: E402
from akkd_scale.sensors.planck import band_radiance  # noqa: E402

SCENE_PIXELS = 700 * 830


def synthetic_pixels(n: int, seed: int = 0):
    """At-sensor radiance (n, 5) and per-pixel τ, L↑, L↓ from a water-vapour-driven atmosphere."""
    rng = np.random.default_rng(seed)
    lst = rng.uniform(270.0, 330.0, n)
    contrast = rng.uniform(0.0, 0.2, n)[:, None]
    emissivity = 0.98 - contrast * np.array([1.0, 0.9, 0.8, 0.15, 0.1]) - rng.uniform(0, 0.02, (n, 1))
    water = rng.uniform(0.2, 5.0, n)[:, None]
    tau = np.exp(-(np.array([0.12, 0.10, 0.09, 0.03, 0.04]) + np.array([0.07, 0.06, 0.05, 0.07, 0.11]) * water))
    air = band_radiance((lst - rng.uniform(0, 10, n))[:, None], ASTER_TIR)
    path, sky = (1 - tau) * air * 0.9, (1 - tau**1.66) * air * 0.95
    radiance = tau * (emissivity * band_radiance(lst[:, None], ASTER_TIR) + (1 - emissivity) * sky) + path
    return radiance, tau, path, sky


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=500_000)
    parser.add_argument("--chunk", type=int, default=65_536, help="Dask chunk (pixels)")
    parser.add_argument("--workers", type=int, default=2, help="Dask threads")
    args = parser.parse_args()
    radiance, tau, path, sky = synthetic_pixels(args.pixels)

    start = time.perf_counter()
    result = tes(radiance, tau, path, sky)
    numpy_s = time.perf_counter() - start
    iterations = np.bincount(result.nem_iterations.ravel())

    lazy = [da.from_array(a, chunks=(args.chunk, 5)) for a in (radiance, tau, path, sky)]
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        start = time.perf_counter()
        lazy_result = tes(*lazy)
        lst = lazy_result.lst.compute()
        dask_s = time.perf_counter() - start
    assert np.array_equal(lst, result.lst, equal_nan=True)

    numpy_rate, dask_rate = args.pixels / numpy_s, args.pixels / dask_s
    print(
        f"pixels: {args.pixels}, NEM iterations histogram: {iterations.tolist()}, "
        f"qc != 0: {int(np.count_nonzero(result.qc))}"
    )
    print(f"numpy (1 block):          {numpy_rate / 1e6:.3f} Mpx/s, {SCENE_PIXELS / numpy_rate:.2f} s per ASTER scene")
    print(
        f"dask ({args.workers} threads, {args.chunk} px chunks): {dask_rate / 1e6:.3f} Mpx/s, "
        f"{SCENE_PIXELS / dask_rate:.2f} s per ASTER scene"
    )
    print(f"ratio dask/numpy: {dask_rate / numpy_rate:.2f}")


if __name__ == "__main__":
    main()
