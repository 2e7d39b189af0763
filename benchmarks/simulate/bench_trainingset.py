"""Seconds per 1 M training samples once the atmospheric terms are cached (target ≤ 10 s).

Terms: patched LOWTRAN7 for the six AFGL atmospheres on the default altitude × view-angle grid, computed
once and cached by physics.atmosphere; surfaces: the default land-cover classes (with NDVI and per-class
LST); also with the RT-error perturbation on. Prints the build time per 1 M samples and its ratio to the target.
Run: AKKD_DATA_DIR=../shared/data PYTHONPATH=. .venv/bin/python benchmarks/simulate/bench_trainingset.py
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from akkd_scale.physics.atmosphere import terms_table  # noqa: E402
from akkd_scale.simulate import profiles, trainingset  # noqa: E402
from akkd_scale.simulate.surfaces import land_cover_surfaces  # noqa: E402

TARGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    prof = profiles.load_profiles(["afgl"])
    t0 = time.perf_counter()
    grid = dict(view_zenith=trainingset.DEFAULT_VIEW_ZENITH_GRID, surface_altitude=trainingset.DEFAULT_ALTITUDES)
    terms = terms_table(prof, processes=2, **grid)
    print(f"terms table (6 profiles, default grid): {time.perf_counter() - t0:.1f} s (cached after)")
    surfaces = land_cover_surfaces(seed=0, view_zenith=grid["view_zenith"])
    for perturbation in (None, (-0.5, 1.5)):
        times = []
        for seed in range(args.repeat):
            t0 = time.perf_counter()
            ds = trainingset.build_training_set(prof, surfaces, terms, args.samples, seed, rt_perturbation=perturbation)
            times.append(time.perf_counter() - t0)
        per_million = min(times) / args.samples * 1e6
        print(
            f"build_training_set (rt_perturbation={perturbation}): {args.samples} samples, best of {args.repeat}: "
            f"{min(times):.2f} s -> {per_million:.2f} s per 1 M samples; target {TARGET_S:.0f} s, "
            f"ratio {per_million / TARGET_S:.2f}"
        )
    t0 = time.perf_counter()
    trainingset.write_training_set(ds, "/tmp/akkd_bench_trainingset.zarr", overwrite=True)
    print(f"write_training_set (Zarr): {time.perf_counter() - t0:.2f} s for {args.samples} samples")


if __name__ == "__main__":
    main()
