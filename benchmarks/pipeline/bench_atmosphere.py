"""Throughput with the atmospheric inputs against without them, as a ratio measured in one run.

    python benchmarks/pipeline/bench_atmosphere.py [--size 1400x1660] [--repeats 3] [--bundle PATH]

One synthetic L1B scene (``--size``) and an ERA5-layout NetCDF covering it (0.25° cells); ``run_scenes`` with the
threaded executor writes the scene to a fresh Zarr store ``--repeats`` times each way, alternating, the same
bundle both ways (default: the shipped bundle, which must take the atmospheric inputs). Reports the best wall
time of each and the ratio (target: with / without ≤ 1.10, issue 20).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1400x1660")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    ny, nx = (int(v) for v in args.size.split("x"))

    from akkd_scale.io.aster import open_aster_l1b
    from akkd_scale.pipeline.runner import run_scenes
    from akkd_scale.simulate.l1b_writer import write_aster_l1b
    from akkd_scale.simulate.reanalysis_writer import era5_from_pixels, write_era5

    work = Path(tempfile.mkdtemp(prefix="bench_atmosphere_"))
    try:
        rng = np.random.default_rng(0)
        yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
        base = 292.0 + 12.0 * np.sin(6 * xx) * np.cos(4 * yy) + rng.normal(0, 1.0, (ny, nx))
        bt = base[None] + np.array([-4.0, -3.2, -2.5, 0.0, -0.6])[:, None, None]
        scene = write_aster_l1b(work / "AST_L1B_bench.hdf", brightness_temperature=bt, shape=(ny, nx))
        geo = open_aster_l1b(scene)
        lat, lon = geo["latitude"].values, geo["longitude"].values
        era5 = write_era5(
            era5_from_pixels(lat, lon, 1.0 + 3.0 * xx, 288.0 + 6.0 * yy, geo.attrs["acquisition_time"]),
            work / "era5.nc",
        )
        times: dict[str, list[float]] = {"without": [], "with": []}
        for repeat in range(args.repeats + 1):  # the first pair warms caches and is not counted
            for case in ("without", "with"):
                out = work / f"{case}.zarr"
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                table = run_scenes(
                    [scene],
                    out,
                    bundle=args.bundle,
                    executor="threads",
                    cloud_mask="none",
                    atmosphere_data=[era5] if case == "with" else None,
                )
                elapsed = time.perf_counter() - start
                assert (table["status"] == "complete").all(), table.to_string()
                if repeat:
                    times[case].append(elapsed)
        given = xr.open_zarr(work / "with.zarr", group="AST_L1B_bench", consolidated=False)["atmosphere_input"]
        assert int(given.sum()) == ny * nx
        best = {case: min(values) for case, values in times.items()}
        result = {
            "size": f"{ny}x{nx}",
            "seconds_without": round(best["without"], 2),
            "seconds_with": round(best["with"], 2),
            "ratio_with_over_without": round(best["with"] / best["without"], 3),
            "megapixels_per_s_with": round(ny * nx / best["with"] / 1e6, 3),
        }
        print(result)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
