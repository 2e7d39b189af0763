"""Throughput of the scale pipeline with the shipped bundle, printed as ratios measured in one run.

    python benchmarks/pipeline/bench_throughput.py [--size 2048] [--scenes 4] [--chunks 1024]
                                                  [--many 50] [--bundle PATH] [--naive-pixels 32768]

Measures, on one machine and in one run (every Dask worker is warmed — bundle loaded, Planck tables
read — before any figure that involves workers, and LocalCluster start-up is left out of the rates;
`bench_end_to_end.py` measures what users wait for, start-up included):
  * end-to-end ``run_scenes`` (HDF read → map_blocks kernel → Zarr) on a large synthetic scene
    (``--size``², default 2048² for a 2-core machine; 4096² is the issue's size), one worker × one thread,
  * (a) the kernel alone on in-memory arrays (``predict_block`` per chunk, same thread count),
  * (b) an I/O-only run of the same graph (kernel replaced by one that returns the template's arrays),
  * (c) a naive per-chunk ``keras.Model.predict`` of the teacher (default batch size),
  * (d) the machine's single-thread sgemm rate applied to the teacher's FLOPs per pixel,
  * peak worker memory (fresh worker per measurement) against scene size and scene count,
  * 2 workers vs 1 on ``--scenes`` independent standard-size (700×830) scenes,
  * ``--many`` copies of a standard scene on 2 workers: throughput and scheduler overhead per task
    (wall × threads − busy task time, over the number of tasks).

Without ``--bundle`` the shipped default bundle is used (a 4 × 256 teacher).
Environment: set before NumPy loads, every process uses one BLAS/OpenMP thread.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

STANDARD = (700, 830)


def teacher_flops_per_pixel(bundle_path: Path) -> float:
    """2·m·n summed over the teacher's matrix weights (MatMul/Gemm initialisers)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(bundle_path / "teacher.onnx"))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    flops = 0.0
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            for name in node.input:
                if name in weights and weights[name].ndim == 2:
                    flops += 2.0 * weights[name].size
    return flops


def sgemm_gflops(width: int = 256, repeats: int = 5) -> float:
    """Best single-thread float32 GEMM rate (GFLOP/s) of NumPy's BLAS for rows × width @ width × width,
    over cache-resident and large row counts (the machine's rate, not one shape's)."""
    rng = np.random.default_rng(0)
    b = rng.standard_normal((width, width), dtype=np.float32)
    rates = []
    for rows in (4096, 8192, 65536):
        a = rng.standard_normal((rows, width), dtype=np.float32)
        a @ b
        rates.append(2.0 * rows * width * width / min(_timed(lambda: a @ b) for _ in range(repeats)) / 1e9)
    return max(rates)


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def teacher_pixels_per_s(bundle_path: Path, rows: int, pixels: int = 262144) -> float:
    """onnxruntime teacher alone, one intra-op thread, in slabs of ``rows`` (as the pipeline runs it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(bundle_path / "teacher.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(250, 320, (pixels, 6)).astype(np.float32)
    x[:, 5] = 5.0
    session.run(None, {name: x[:rows]})
    return pixels / _timed(lambda: [session.run(None, {name: x[i : i + rows]}) for i in range(0, pixels, rows)])


def kernel_alone_pixels_per_s(scene: Path, bundle_path: Path, chunks: int, heads) -> float:
    """``predict_block`` over in-memory chunks of the scene, one thread, bundle loaded as workers load it."""
    from akkd_scale.models.bundle import load_bundle
    from akkd_scale.pipeline.kernel import SLAB_ROWS, predict_block

    bundle = load_bundle(bundle_path, threads=1, slab_rows=SLAB_ROWS)
    ds = xr.open_dataset(scene, engine="aster_l1b").load()
    bt = ds["brightness_temperature"].transpose("band", "y", "x").values
    vza = np.float32(ds["view_zenith"].values)
    predict_block(bt[:, :64, :64], vza, bundle, heads)
    ny, nx = bt.shape[1:]
    start = time.perf_counter()
    for y in range(0, ny, chunks):
        for x in range(0, nx, chunks):
            predict_block(bt[:, y : y + chunks, x : x + chunks], vza, bundle, heads)
    return ny * nx / (time.perf_counter() - start)


def _io_only_block(block, spec):
    """Stand-in kernel for the I/O-only run: touches the inputs, returns the template's arrays."""
    block["brightness_temperature"].values  # noqa: B018  (the read this run measures)
    data = {
        name: (dims, np.zeros(tuple(block.sizes[d] for d in dims), dtype=dtype)) for name, (dims, dtype) in spec.items()
    }
    return xr.Dataset(data, coords=block.coords)


def io_only_pixels_per_s(scene: Path, out: Path, chunks: int, heads, client) -> float:
    """The same graph (reader → map_blocks → Zarr) with the model replaced by ``_io_only_block``."""
    from akkd_scale.pipeline.graph import GEO, model_inputs, output_spec, template_for
    from akkd_scale.pipeline.store import output_dataset, write_scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = xr.open_dataset(scene, engine="aster_l1b", chunks={"y": chunks, "x": chunks})
    inputs = model_inputs(ds, heads)
    spec = output_spec(tuple(d for d in inputs["brightness_temperature"].dims if d != "band"), heads)
    result = xr.map_blocks(_io_only_block, inputs, args=(spec,), template=template_for(inputs, spec))
    result = result.assign_coords({n: ds[n] for n in GEO})
    delayed = write_scene(output_dataset(result, ds.attrs, {}), out, "io_only")
    seconds = _timed(lambda: client.compute(delayed).result())
    return ds.sizes["y"] * ds.sizes["x"] / seconds


def naive_keras_pixels_per_s(scene: Path, bundle_path: Path, chunks: int, pixels: int) -> float:
    """Teacher via ``keras.Model.predict`` per chunk at its default batch size (the naive way)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    model = keras.models.load_model(str(bundle_path / "teacher.keras"), compile=False, safe_mode=True)
    ds = xr.open_dataset(scene, engine="aster_l1b").isel(y=slice(0, chunks), x=slice(0, chunks)).load()
    bt = ds["brightness_temperature"].transpose("band", "y", "x").values.reshape(5, -1).T
    x = np.concatenate([bt, np.full((bt.shape[0], 1), float(ds["view_zenith"]), np.float32)], axis=1)[:pixels]
    model.predict(x[:64], verbose=0)
    return len(x) / _timed(lambda: model.predict(x, verbose=0))


def warm_workers(client, bundle_path: Path) -> None:
    """Every worker loads the bundle and the Planck tables before anything is timed."""
    from akkd_scale.pipeline.kernel import bundle_ref, cached_bundle
    from akkd_scale.sensors import ASTER_TIR

    ref = bundle_ref(bundle_path)
    client.run(lambda: (cached_bundle(ref), [band.lut for band in ASTER_TIR.bands]) and None)


def e2e_pixels_per_s(paths, out: Path, bundle_path: Path, chunks: int, heads, client) -> tuple[float, object]:
    """``run_scenes`` wall time over the given scenes (overwrite, so every scene is computed)."""
    from akkd_scale.pipeline import run_scenes

    start = time.perf_counter()
    table = run_scenes(
        paths, out, bundle=bundle_path, heads=heads, chunks=chunks, client=client, overwrite=True, executor="cluster"
    )
    seconds = time.perf_counter() - start
    if (table["status"] != "complete").any():
        raise RuntimeError(f"benchmark run failed:\n{table}")
    return float(table["pixels"].sum()) / seconds, table


def _peak_rss_kib() -> int:
    """VmHWM of this process: peak resident set since exec (ru_maxrss would inherit the parent's peak)."""
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))


def worker_peak_mib(client) -> float:
    """Peak resident memory (MiB) of the worker process(es) since they started."""
    return max(client.run(_peak_rss_kib).values()) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="large synthetic scene edge (pixels)")
    parser.add_argument("--scenes", type=int, default=4, help="standard scenes for the worker scaling runs")
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--many", type=int, default=50, help="copies of a standard scene for the many-scenes run")
    parser.add_argument("--heads", default="fusion")
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--naive-pixels", type=int, default=32768, help="pixels for the keras predict baseline")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory series")
    args = parser.parse_args()
    heads = tuple(args.heads.split(","))

    from akkd_scale.models.bundle import default_bundle_path
    from akkd_scale.pipeline import close_client, get_client
    from akkd_scale.pipeline.kernel import SLAB_ROWS
    from akkd_scale.simulate.l1b_writer import write_aster_l1b

    bundle_path = args.bundle or default_bundle_path()
    work = Path(tempfile.mkdtemp(prefix="akkd-bench-"))
    results = {}
    try:
        big = write_aster_l1b(work / "big.hdf", shape=(args.size, args.size))
        standard = [
            write_aster_l1b(work / f"std_{i}.hdf", shape=STANDARD, pointing_angle=2.0 + i)
            for i in range(max(args.scenes, 4))
        ]
        print(
            f"scenes: large {args.size}x{args.size}, {len(standard)} x {STANDARD}; chunks {args.chunks}; "
            f"heads {heads}; bundle {bundle_path}",
            flush=True,
        )

        flops = teacher_flops_per_pixel(bundle_path)
        gflops = sgemm_gflops()
        teacher_rate = teacher_pixels_per_s(bundle_path, SLAB_ROWS)
        teacher_rate_65536 = teacher_pixels_per_s(bundle_path, 65536)
        kernel_rate = kernel_alone_pixels_per_s(big, bundle_path, args.chunks, heads)

        client = get_client(workers=1, threads_per_worker=1, dashboard_address=None)
        try:
            warm_workers(client, bundle_path)
            e2e_rate, _ = e2e_pixels_per_s([big], work / "e2e.zarr", bundle_path, args.chunks, heads, client)
            io_rate = io_only_pixels_per_s(big, work / "io.zarr", args.chunks, heads, client)
            one_worker, _ = e2e_pixels_per_s(
                standard[: args.scenes], work / "w1.zarr", bundle_path, args.chunks, heads, client
            )
        finally:
            close_client(client)
        memory = []
        if not args.skip_memory:
            series = [
                ("size", f"{s}x{s}", [p])
                for s, p in (
                    (512, write_aster_l1b(work / "m512.hdf", shape=(512, 512))),
                    (1024, write_aster_l1b(work / "m1024.hdf", shape=(1024, 1024))),
                    (args.size, big),
                )
            ]
            series += [("count", f"{n} x {STANDARD[0]}x{STANDARD[1]}", standard[:n]) for n in (1, 2, 4)]
            for kind, label, paths in series:  # a fresh worker process per row: ru_maxrss is per process
                client = get_client(workers=1, threads_per_worker=1, dashboard_address=None)
                try:
                    warm_workers(client, bundle_path)
                    e2e_pixels_per_s(paths, work / "mem.zarr", bundle_path, args.chunks, heads, client)
                    memory.append((kind, label, worker_peak_mib(client)))
                finally:
                    close_client(client)
        client = get_client(workers=2, threads_per_worker=1, dashboard_address=None)
        try:
            warm_workers(client, bundle_path)
            two_workers, _ = e2e_pixels_per_s(
                standard[: args.scenes], work / "w2.zarr", bundle_path, args.chunks, heads, client
            )
            many = [work / f"many_{i}.hdf" for i in range(args.many)]
            for path in many:
                shutil.copyfile(standard[0], path)
            from distributed import get_task_stream

            with get_task_stream(client=client) as stream:
                many_rate, _ = e2e_pixels_per_s(many, work / "many.zarr", bundle_path, args.chunks, heads, client)
            busy = sum(
                end - start
                for task in stream.data
                for start, end in [(t["start"], t["stop"]) for t in task["startstops"] if t["action"] == "compute"]
            )
            wall = args.many * STANDARD[0] * STANDARD[1] / many_rate
            overhead_ms = (wall * 2 - busy) / max(len(stream.data), 1) * 1e3
        finally:
            close_client(client)
        naive_rate = naive_keras_pixels_per_s(big, bundle_path, args.chunks, args.naive_pixels)

        results = {
            "end-to-end (1 worker x 1 thread)": e2e_rate,
            "kernel alone, in memory (1 thread)": kernel_rate,
            "I/O-only run of the same graph": io_rate,
            "naive keras predict per chunk (teacher)": naive_rate,
            f"teacher alone (onnxruntime, 1 thread, {SLAB_ROWS} rows)": teacher_rate,
            "teacher alone (onnxruntime, 1 thread, 65536 rows)": teacher_rate_65536,
            "1 worker, standard scenes": one_worker,
            "2 workers, standard scenes": two_workers,
            f"2 workers, {args.many} standard scenes": many_rate,
        }
        print("\nthroughput (pixels/s)")
        for name, value in results.items():
            print(f"  {name:<52s} {value / 1e6:8.3f} Mpx/s")
        print(
            f"\nteacher: {flops / 1e6:.3f} MFLOP/pixel; sgemm (1 thread): {gflops:.1f} GFLOP/s "
            f"→ sgemm-bound teacher rate {gflops * 1e9 / flops / 1e6:.3f} Mpx/s"
        )
        print(
            f"\nmany scenes: {args.many} x {STANDARD}, 2 workers: {many_rate / 1e6:.3f} Mpx/s; idle worker time "
            f"per task (scheduler and transfer overhead) {overhead_ms:.1f} ms"
        )
        print("\nratios")
        print(f"  end-to-end / kernel alone              {e2e_rate / kernel_rate:6.2f}   (target ≥ 0.90)")
        print(f"  end-to-end / I/O-only                  {e2e_rate / io_rate:6.2f}   (I/O share of the run)")
        print(f"  end-to-end / naive keras predict       {e2e_rate / naive_rate:6.1f}   (target ≥ 5)")
        print(
            f"  teacher kernel FLOP rate / sgemm rate  {teacher_rate * flops / (gflops * 1e9):6.2f}   (target ≥ 0.80)"
        )
        print(
            f"  2 workers / 1 worker (independent)     {two_workers / one_worker:6.2f}   (target ≥ 1.8; "
            f"this machine has {os.cpu_count()} cores, shared)"
        )
        if memory:
            print("\npeak worker memory (fresh worker per row; target: flat)")
            for kind, label, mib in memory:
                print(f"  {kind:<6s} {label:<22s} {mib:8.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
