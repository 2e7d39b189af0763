"""Throughput with land-cover class students against a baseline bundle, as ratios measured in one run.

    python benchmarks/pipeline/bench_class_students.py --baseline OLD_BUNDLE [--bundle NEW_BUNDLE] [--repeat 3]

On the two demo scenes (700 × 830, day, VNIR): (a) the kernel alone (``predict_block`` on in-memory arrays,
one thread) and (b) ``run_scenes`` end to end (HDF → Zarr, threaded executor) — the baseline bundle as
today's pipeline runs it (no land cover: ``landcover="none"``) against the new bundle with NDVI input and
land cover from the NDVI rules (the default). Best of ``--repeat``. The issue's target: new / baseline
throughput ≥ 0.90.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from akkd_scale.landcover.rules import classes_from_rules  # noqa: E402
from akkd_scale.models.bundle import default_bundle_path, load_bundle  # noqa: E402
from akkd_scale.pipeline.kernel import SLAB_ROWS, predict_block  # noqa: E402
from akkd_scale.pipeline.runner import run_scenes  # noqa: E402
from akkd_scale.workflows.demo import write_demo_scenes  # noqa: E402


def best(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="today's bundle (format 1)")
    parser.add_argument("--bundle", type=Path, default=None, help="bundle with class students [default: shipped]")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    new_path = args.bundle or default_bundle_path()
    with tempfile.TemporaryDirectory(prefix="akkd-class-bench-") as tmp:
        tmp = Path(tmp)
        scenes = write_demo_scenes(tmp / "scenes")
        pixels = 0
        kernel = {}
        for name, path in (("baseline", args.baseline), ("class students", new_path)):
            bundle = load_bundle(path, slab_rows=SLAB_ROWS)
            arrays = []
            for scene in scenes:
                ds = xr.open_dataset(scene, engine="aster_l1b").load()
                bt = ds["brightness_temperature"].transpose("band", "y", "x").values.astype(np.float32)
                ndvi = ds["ndvi"].values.astype(np.float32)
                cover = classes_from_rules(ndvi, bt[0], bt[3], bt[4]) if bundle.classes else None
                extra = {"ndvi": ndvi} if bundle.extra_inputs else None
                arrays.append((bt, np.float32(ds["view_zenith"].values), extra, cover))
            pixels = sum(a[0][0].size for a in arrays)
            kernel[name] = best(
                args.repeat,
                lambda: [predict_block(bt, vza, bundle, ("fusion",), extra, cover) for bt, vza, extra, cover in arrays],
            )
        end_to_end = {}
        for name, path, cover in (("baseline", args.baseline, "none"), ("class students", new_path, None)):
            end_to_end[name] = best(
                args.repeat,
                lambda: run_scenes(
                    scenes, tmp / f"{name}.zarr", bundle=path, landcover=cover, overwrite=True, executor="threads"
                ),
            )
    print(f"{len(scenes)} demo scenes, {pixels / 1e6:.2f} Mpx; best of {args.repeat}\n")
    print("| measurement | baseline (s) | class students (s) | throughput ratio new/baseline |")
    print("|---|---|---|---|")
    for label, numbers in (("kernel alone, 1 thread", kernel), ("run_scenes end to end", end_to_end)):
        print(
            f"| {label} | {numbers['baseline']:.2f} | {numbers['class students']:.2f} | "
            f"{numbers['baseline'] / numbers['class students']:.2f} |"
        )


if __name__ == "__main__":
    main()
