"""Wall time of the LOWTRAN terms table for the default profile sets (CRTM + TIGR-2000, ≈2 400 profiles,
unscreened) on the default altitude × view-zenith grid, cold cache (target ≤ 20 min on 2 processes),
then the cached read. Writes the table to ``--out`` for reuse (``akkd-scale simulate --terms``).

Run: AKKD_DATA_DIR=../shared/data AKKD_CACHE_DIR=$(mktemp -d) PYTHONPATH=. .venv/bin/python \
    benchmarks/simulate/bench_terms.py --out /tmp/terms_default.nc
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from akkd_scale.physics.atmosphere import terms_table  # noqa: E402
from akkd_scale.simulate import profiles, trainingset  # noqa: E402

TARGET_S = 20 * 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    prof = profiles.load_profiles(trainingset.DEFAULT_PROFILE_SETS)
    grid = dict(view_zenith=trainingset.DEFAULT_VIEW_ZENITH_GRID, surface_altitude=trainingset.DEFAULT_ALTITUDES)
    t0 = time.perf_counter()
    table = terms_table(prof, processes=args.processes, **grid)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    terms_table(prof, processes=args.processes, **grid)
    cached = time.perf_counter() - t0
    table.to_netcdf(args.out, engine="h5netcdf")
    n = prof.sizes["profile"]
    print(
        f"terms table: {n} profiles x {len(grid['surface_altitude'])} altitudes x {len(grid['view_zenith'])} angles, "
        f"{args.processes} processes: cold {cold:.0f} s ({cold / 60:.1f} min; target {TARGET_S / 60:.0f} min, "
        f"ratio {cold / TARGET_S:.2f}), cached {cached:.1f} s"
    )


if __name__ == "__main__":
    main()
