"""Whole-process wall time of `akkd-scale run` on N standard scenes against the plain script
(benchmarks/pipeline/plain_script.py): once for all scenes, and one script per scene in parallel.
Same shipped bundle, same default product (NDVI, land cover from the rules, class students, fusion, QC); the
benchmark fails (exit 1) unless both write identical arrays. Ratios measured in one run.

    AKKD_DATA_DIR=../shared/data .venv/bin/python benchmarks/pipeline/bench_end_to_end.py [--scenes 2] [--repeat 5]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from akkd_scale.workflows.demo import DEMO_SCENES, write_demo_scenes

PLAIN = Path(__file__).with_name("plain_script.py")


def timed(commands: list[list[str]]) -> float:
    """Wall seconds for commands started together, until the last one ends."""
    started = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            sys.exit(f"failed: {err.decode()[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--executor", default="auto")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="akkd-e2e-"))
    scenes = (DEMO_SCENES * args.scenes)[: args.scenes]
    scenes = tuple((f"{name}_{i}", atm, pointing, seed) for i, (name, atm, pointing, seed) in enumerate(scenes))
    paths = [str(p) for p in write_demo_scenes(work / "scenes", scenes=scenes)]
    cli = [sys.executable, "-m", "akkd_scale.cli", "run", *paths, "--dashboard-address", "",
           "--executor", args.executor]
    plain = [sys.executable, str(PLAIN)]
    times = {"akkd-scale run": [], "plain script, all scenes": [], "plain scripts, one per scene in parallel": []}
    for i in range(args.repeat):
        for k, key in enumerate(times):  # interleaved, so drift in machine load hits every variant alike
            target = work / f"{i}-{k}"
            if key == "akkd-scale run":
                times[key].append(timed([cli + ["--out", str(target / "run.zarr")]]))
            elif key == "plain script, all scenes":
                times[key].append(timed([plain + [str(target), *paths]]))
            else:
                times[key].append(timed([plain + [str(target / f"p{j}"), p] for j, p in enumerate(paths)]))
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.scenes} scenes of 700 x 830, median of {args.repeat} (s): " +
          ", ".join(f"{k} {v:.2f}" for k, v in median.items()))
    print(f"akkd-scale run / plain script = {median['akkd-scale run'] / median['plain script, all scenes']:.2f} "
          f"(target <= 1.1); / parallel plain scripts = "
          f"{median['akkd-scale run'] / median['plain scripts, one per scene in parallel']:.2f} (target <= 1.2)")
    run, plain_dir = work / "0-0" / "run.zarr", work / "0-1"
    identical = True
    for path in map(Path, paths):
        ours = xr.open_zarr(str(run), group=path.stem, consolidated=False)
        theirs = zarr.open_group(str(plain_dir / f"{path.stem}.zarr"), mode="r")
        for name in ("lst", "emissivity", "lst_uncertainty", "qc", "land_cover"):
            a = ours[name].transpose(*(("band",) if name == "emissivity" else ()), "y", "x").values
            same = np.array_equal(a, theirs[name][:], equal_nan=True)
            if not same:
                print(f"{path.stem}: {name} differs from the plain script", file=sys.stderr)
            identical &= same
    print(f"outputs identical to the plain script: {identical}")
    shutil.rmtree(work, ignore_errors=True)
    if not identical:
        sys.exit("the benchmark compares different products: fix the plain script or the pipeline")


if __name__ == "__main__":
    main()
