"""Retrieval throughput with the cloud mask against ``--cloud-mask none``, as a ratio measured in one run.

    python benchmarks/pipeline/bench_cloud_mask.py [--shape 700x830] [--repeats 3] [--bundle PATH] [--chunks auto]

One simulated cloudy day scene of the demo (``workflows.cloud_demo``: snow, bright desert, lake, ≈ 30 % cloud)
and one clear demo scene (``workflows.demo``: the cost of the mask where it finds nothing, so the networks run
on every pixel either way), written as L1B, then ``run_scenes`` (threaded executor, the whole pipeline: HDF
read → kernel → Zarr) with ``cloud_mask="auto"`` and ``"none"``, interleaved ``--repeats`` times after one
warm-up run of each; the median wall time of each gives Mpx/s and the ratio (target: the mask within 10 %).
On the cloudy scene the networks skip the masked pixels, so the mask can be faster than none. Also: the mask alone on one chunk
(``clouds.mask.cloud_mask``), the client-side scene reference, and the chunk-edge effect (pixels whose cloud or
buffer flag differs between the chunked run and the whole scene as one block: no halo).
Environment: set before NumPy loads, every process uses one BLAS/OpenMP thread.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="700x830")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--chunks", default="auto")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.lower().split("x"))
    chunks = args.chunks if args.chunks == "auto" else int(args.chunks)

    from akkd_scale.clouds.mask import cloud_mask
    from akkd_scale.conventions import QC_CLOUD, QC_CLOUD_BUFFER
    from akkd_scale.pipeline import run_scenes
    from akkd_scale.pipeline.cloud_plan import plan_clouds
    from akkd_scale.pipeline.runner import auto_chunks
    from akkd_scale.pipeline.store import open_scene, scene_group
    from akkd_scale.workflows.cloud_demo import CLOUD_SCENES, write_cloudy_scenes
    from akkd_scale.workflows.demo import (ACQUISITION_TIME, DEMO_SCENES, LANDSCAPE_SEED, SOLAR_DIRECTION,
                                           no_data_margins, write_demo_scenes)

    root = Path(tempfile.mkdtemp(prefix="bench_clouds_"))
    started = time.perf_counter()
    (path,) = write_cloudy_scenes(root / "scenes", shape=shape, scenes=CLOUD_SCENES[:1], acquisition_time=ACQUISITION_TIME,
                                  solar_direction=SOLAR_DIRECTION, landscape_seed=LANDSCAPE_SEED,
                                  fill_mask=no_data_margins(shape))
    (clear,) = write_demo_scenes(root / "clear", shape=shape, scenes=DEMO_SCENES[:1])
    print(f"scenes {path.name}, {clear.name} {shape[0]} x {shape[1]} simulated in "
          f"{time.perf_counter() - started:.1f} s")
    pixels = shape[0] * shape[1]

    def run(scene: Path, mask: str, index: int) -> float:
        out = root / f"{scene.stem}_{mask}_{index}.zarr"
        t0 = time.perf_counter()
        table = run_scenes([scene], out, bundle=args.bundle, chunks=chunks, executor="threads", cloud_mask=mask)
        seconds = time.perf_counter() - t0
        assert list(table["status"]) == ["complete"], table["error"].tolist()
        return seconds

    for scene, label in ((path, "cloudy"), (clear, "clear")):
        for mask in ("auto", "none"):  # warm-up: bundle loaded, Planck tables read, files cached
            run(scene, mask, -1)
        times = {"auto": [], "none": []}
        for i in range(args.repeats):
            for mask in ("auto", "none") if i % 2 == 0 else ("none", "auto"):
                times[mask].append(run(scene, mask, i))
        median = {mask: statistics.median(values) for mask, values in times.items()}
        for mask, values in times.items():
            print(f"{label} scene, cloud_mask={mask}: {', '.join(f'{v:.2f}' for v in values)} s; median "
                  f"{median[mask]:.2f} s = {pixels / median[mask] / 1e6:.3f} Mpx/s")
        print(f"{label} scene: throughput ratio mask / none {median['none'] / median['auto']:.3f} (target >= 0.90)")

    ds = xr.open_dataset(path, engine="aster_l1b")
    t0 = time.perf_counter()
    plan = plan_clouds(ds)
    print(f"client: cloud plan with the scene reference {plan.reference.bt13:.2f} K in "
          f"{time.perf_counter() - t0:.2f} s")
    size = auto_chunks(*shape) if chunks == "auto" else {"y": chunks, "x": chunks}
    block = ds.isel(y=slice(0, size["y"]), x=slice(0, size["x"])).load()
    bt, rho = block["brightness_temperature"].values, block["vnir_reflectance"].values
    t0 = time.perf_counter()
    for _ in range(3):
        cloud_mask(bt, plan.reference, rho)
    per_block = (time.perf_counter() - t0) / 3
    print(f"mask alone on one {bt.shape[1]} x {bt.shape[2]} chunk: {per_block:.3f} s "
          f"({bt.shape[1] * bt.shape[2] / per_block / 1e6:.1f} Mpx/s)")

    chunked = open_scene(root / f"{path.stem}_auto_0.zarr", scene_group(path))["qc"].values
    whole = cloud_mask(ds["brightness_temperature"].values, plan.reference, ds["vnir_reflectance"].values)
    flags = QC_CLOUD | QC_CLOUD_BUFFER
    expected = np.where(whole.cloud, QC_CLOUD, 0) | np.where(whole.buffer, QC_CLOUD_BUFFER, 0)
    differ = (chunked & flags) != expected
    rows, cols = np.nonzero(differ)
    edges_y, edges_x = np.arange(size["y"], shape[0], size["y"]), np.arange(size["x"], shape[1], size["x"])
    distance = np.full(rows.size, np.inf)
    for edges, where in ((edges_y, rows), (edges_x, cols)):
        if edges.size and where.size:
            distance = np.minimum(distance, np.abs(where[:, None] + 0.5 - edges).min(axis=1) - 0.5)
    print(f"chunk edges ({size}): {int(differ.sum())} of {pixels} pixels ({differ.mean():.3%}) differ from the "
          f"whole-scene mask (of them cloud in the whole scene: {int((differ & whole.cloud).sum())}); farthest "
          f"{distance.max() if rows.size else 0:.0f} px from an inner chunk edge")


if __name__ == "__main__":
    main()
