"""Seconds per 1 M training samples once the atmospheric terms are cached (target ≤ 10 s).

Terms: patched LOWTRAN7 for the six AFGL atmospheres on a 5 × 5 (altitude × view-angle) grid, computed once
and cached by physics.atmosphere. Prints the build time per 1 M samples and its ratio to the target.
Run: AKKD_DATA_DIR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simulate/bench_trainingset.py
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from akkd_scale.physics.atmosphere import terms_table  # noqa: E402
from akkd_scale.simulate import emissivity, profiles, trainingset  # noqa: E402

TARGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    prof = profiles.load_profiles(["afgl"])
    t0 = time.perf_counter()
    terms = terms_table(prof, view_zenith=[0, 15, 30, 45, 60], surface_altitude=[0, 1, 2, 3, 4], processes=2)
    print(f"terms table (6 profiles x 5 altitudes x 5 angles): {time.perf_counter() - t0:.1f} s (cached after)")
    surfaces = emissivity.natural_surfaces(n_mixtures=400, seed=0, view_zenith=[0, 15, 30, 45, 60])
    times = []
    for seed in range(args.repeat):
        t0 = time.perf_counter()
        ds = trainingset.build_training_set(prof, surfaces, terms, args.samples, seed)
        times.append(time.perf_counter() - t0)
    per_million = min(times) / args.samples * 1e6
    print(f"build_training_set: {args.samples} samples, best of {args.repeat}: {min(times):.2f} s "
          f"-> {per_million:.2f} s per 1 M samples; target {TARGET_S:.0f} s, ratio {per_million / TARGET_S:.2f}")
    t0 = time.perf_counter()
    trainingset.write_training_set(ds, "/tmp/akkd_bench_trainingset.zarr", overwrite=True)
    print(f"write_training_set (Zarr): {time.perf_counter() - t0:.2f} s for {args.samples} samples")


if __name__ == "__main__":
    main()
