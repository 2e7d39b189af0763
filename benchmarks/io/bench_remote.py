"""End-to-end throughput of ``run_scenes`` on the same scenes from local HDF files, from an S3 API server (HDF
objects staged) and as STAC items of COGs over HTTP range requests; ratios from one run.

    python benchmarks/io/bench_remote.py [--scenes 4] [--size 825x933] [--repeat 3] [--bundle PATH]
        [--modes local,s3,cog,s3out]

Writes ``--scenes`` synthetic AST_L1T scenes (the real L1T TIR size by default, day scenes with VNIR, COG
tiles of 256 as stactools writes them), starts moto's S3 server and the range-capable HTTP server of the tests
(``tests/servers.py``) on 127.0.0.1, and times, in turn, ``run_scenes`` over the local files, over ``s3://``
URLs (each object streamed into the staging cache, hashed, removed after use) and over the items' URLs (no
staging: every chunk range-reads its COG windows), and the local files into a result store on the S3 server
(``--out s3://…``: chunk PUTs, the lock object, completion checked by listing); each mode ``--repeat`` times
into a fresh store, the best time kept, after one warm-up run (bundle loaded, GDAL started). The stores are
checked bit-identical. Last, the cost of the S3 store's own requests: taking and releasing the lock, checking
it, and listing a scene group's chunks. Servers and client share the machine, so the figures include the
servers' own CPU time. Every process uses one BLAS/OpenMP thread; the threaded executor runs every mode.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "pipeline")]  # the test servers and store checks


def write_scenes(root: Path, count: int, shape: tuple[int, int]) -> list[tuple[Path, Path]]:
    """``count`` day-time L1T scenes (HDF, and COG + STAC item in a folder of their own). The VNIR DN carry
    noise (band 1 uniform, bands 2/3N a few DN), so the writer's deflate cannot shrink them: the files then
    have about a real AST_L1T's size (≈ 60 MB at 825 × 933, real ones ≈ 100 MB with SWIR)."""
    from akkd_scale.simulate.l1b_writer import vnir_dn_for_ndvi, write_aster_l1t
    from akkd_scale.simulate.stac_writer import write_aster_l1t_stac

    ny, nx = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    when, sun = "2004-07-15T18:30:05.250Z", (135.0, 62.0)
    scenes = []
    for k in range(count):
        rng = np.random.default_rng(k)
        base = 295.0 + 15.0 * np.sin(2 * np.pi * (xx + k / 5)) * np.cos(np.pi * yy) + rng.normal(0, 1.0, shape)
        bt = base[None] + np.array([-4.0, -3.2, -2.5, 0.0, -0.6])[:, None, None]
        ndvi = np.clip(0.6 * np.sin(3 * xx + k) * yy, -0.3, 0.8)
        vnir = vnir_dn_for_ndvi(ndvi, acquisition_time=when, solar_direction=sun)
        vnir = {
            band: np.clip(dn.astype(int) + rng.integers(0, 8, dn.shape), 1, 254).astype(np.uint8)
            for band, dn in vnir.items()
        }
        vnir["1"] = rng.integers(1, 255, vnir["2"].shape, dtype=np.uint8)
        name = f"AST_L1T_0030715200418300{k}_bench"
        hdf = write_aster_l1t(
            root / f"{name}.hdf",
            shape=shape,
            brightness_temperature=bt,
            acquisition_time=when,
            solar_direction=sun,
            pointing_angle=1.0 + k,
            vnir_dn=vnir,
        )
        scenes.append((hdf, write_aster_l1t_stac(hdf, root / name, blocksize=256)))
    return scenes


STAGE_MB = 128


def _time_staging() -> list[float]:
    """Make the runner's ``stage`` add its seconds to the returned one-element list."""
    from akkd_scale.pipeline import runner

    spent = [0.0]
    original = runner.stage

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    runner.stage = timed
    return spent


def staging_rate(fs, options: dict, root: Path) -> float:
    """MB/s of :func:`akkd_scale.io.remote.stage` for one incompressible object on the S3 server."""
    from servers import BUCKET

    from akkd_scale.io.remote import Remote, release, stage

    source = root / "big.bin"
    source.write_bytes(np.random.default_rng(0).bytes(STAGE_MB << 20))
    fs.put_file(str(source), f"{BUCKET}/big.bin")
    remote = Remote.of(options, root / "rate")
    started = time.perf_counter()
    staged = stage(f"s3://{BUCKET}/big.bin", remote, "a test object")
    seconds = time.perf_counter() - started
    release(staged, keep=False)
    return STAGE_MB * (1 << 20) / 1e6 / seconds


S3_OUT = "local HDF, S3 store"


def store_costs(location, group: str, store_lock, check_lock, missing_chunks, count: int = 20) -> None:
    """Mean time of the S3 store's own requests: lock taken and released, lock checked, a group's chunks listed."""
    timings = {}
    with store_lock(location, "bench"):
        started = time.perf_counter()
        for _ in range(count):
            check_lock(location)
        timings["lock check (1 HEAD, before each completion record)"] = (time.perf_counter() - started) / count
    started = time.perf_counter()
    for _ in range(count):
        with store_lock(location, "bench"):
            pass
    timings["lock taken and released (PUT If-None-Match, GET, DELETE If-Match)"] = (
        time.perf_counter() - started
    ) / count
    started = time.perf_counter()
    for _ in range(count):
        assert not missing_chunks(location, group)
    timings["chunks of one scene group listed (every array)"] = (time.perf_counter() - started) / count
    print("\n| S3 store request | mean (ms) |\n|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds * 1e3:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--size", default="825x933", help="LINESxPIXELS of each scene")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bundle", default=None, help="model bundle (default: the shipped bundle)")
    parser.add_argument("--modes", default="local,s3,cog,s3out", help="comma-separated subset of local,s3,cog,s3out")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.size.lower().split("x"))

    import s3fs
    from moto.server import ThreadedMotoServer
    from pipeline_checks import assert_same, stored
    from servers import AWS_ENVIRONMENT, BUCKET, S3_KEY, S3_SECRET, start_http_server

    from akkd_scale.pipeline.kernel import bundle_ref
    from akkd_scale.pipeline.runner import run_scenes
    from akkd_scale.pipeline.store import check_lock, locate_store, missing_chunks, scene_group, store_lock

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(AWS_ENVIRONMENT)
    root = Path(tempfile.mkdtemp(prefix="bench_remote_"))
    try:
        started = time.perf_counter()
        scenes = write_scenes(root / "scenes", args.scenes, shape)
        size = np.mean([hdf.stat().st_size for hdf, _ in scenes]) / 1e6
        print(
            f"{args.scenes} scenes of {shape[0]} x {shape[1]} ({size:.0f} MB HDF files) written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        endpoint = "http://{}:{}".format(*moto.get_host_and_port())
        options = {"endpoint_url": endpoint, "key": S3_KEY, "secret": S3_SECRET}
        fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
        fs.mkdir(BUCKET)
        http, served = start_http_server(root / "http")
        inputs = {"local HDF": [str(hdf) for hdf, _ in scenes], "S3 HDF (staged)": [], "HTTP COG (STAC)": []}
        for hdf, item in scenes:
            fs.put_file(str(hdf), f"{BUCKET}/bench/{hdf.name}")
            inputs["S3 HDF (staged)"].append(f"s3://{BUCKET}/bench/{hdf.name}")
            served.root.joinpath(item.parent.name).mkdir(parents=True)
            for part in item.parent.iterdir():
                shutil.copy2(part, served.root / item.parent.name / part.name)
            inputs["HTTP COG (STAC)"].append(f"{served.url}/{item.parent.name}/{item.name}")
        inputs[S3_OUT] = inputs["local HDF"]
        wanted = {"local": "local HDF", "s3": "S3 HDF (staged)", "cog": "HTTP COG (STAC)", "s3out": S3_OUT}
        inputs = {wanted[m]: inputs[wanted[m]] for m in args.modes.split(",")}
        ref = bundle_ref(args.bundle)
        # cloud_mask="none": the cloud buffer depends on the chunking (no halo), and COG scenes are chunked in row
        # halves of whole tiles, HDF scenes in column halves: every other output is the same either way
        common = {
            "bundle": ref,
            "executor": "threads",
            "storage_options": options,
            "staging_dir": root / "staging",
            "cloud_mask": "none",
        }
        for k, urls in enumerate(inputs.values()):
            run_scenes(urls[:1], root / f"warm{k}.zarr", **common)
        staging = _time_staging()
        best = {}
        for repeat in range(args.repeat):
            order = list(inputs.items())
            for mode, urls in order[repeat % len(order) :] + order[: repeat % len(order)]:  # every position in turn
                out = (
                    locate_store(f"s3://{BUCKET}/results/{repeat}.zarr", options)
                    if mode == S3_OUT
                    else root / f"{mode.split()[0]}_{repeat}.zarr"
                )
                served.log.clear()
                started = time.perf_counter()
                table = run_scenes(urls, out, **common)
                seconds = time.perf_counter() - started
                if not (table["status"] == "complete").all():
                    raise SystemExit(f"{mode}: {table.to_string()}")
                sent = sum(r[3] for r in served.log.requests)
                staged, staging[0] = staging[0], 0.0
                best[mode] = min(best.get(mode, (np.inf, 0, out, 0.0)), (seconds, sent, out, staged))
        pixels = args.scenes * shape[0] * shape[1]
        first = next(iter(best))
        local = best[first][0]
        names = ("lst", "emissivity", "lst_uncertainty", "qc", "land_cover")
        for hdf, _ in scenes:
            group = scene_group(hdf)
            reference = stored(best[first][2], group, names)
            for mode in list(best)[1:]:
                assert_same(stored(best[mode][2], group, names), reference)
        print(f"the stores of {', '.join(best)} are bit-identical")
        cog_bytes = sum(
            (item.parent / f"{item.stem}-{kind}.tif").stat().st_size for _, item in scenes for kind in ("TIR", "VNIR")
        )
        print(
            f"\n| input | best of {args.repeat} (s) | Mpx/s | time / {first} | of which staging (s) | "
            "HTTP bytes served |"
        )
        print("|---|---|---|---|---|---|")
        for mode, (seconds, sent, _, staged) in best.items():
            extra = f"{sent / 1e6:.1f} MB ({sent / cog_bytes:.2f} x the COGs)" if mode.startswith("HTTP") else "-"
            print(
                f"| {mode} | {seconds:.2f} | {pixels / seconds / 1e6:.3f} | {seconds / local:.3f} | "
                f"{staged:.2f} | {extra} |"
            )
        print(
            f"\nstaging rate from the S3 server: {staging_rate(fs, options, root):.0f} MB/s "
            f"(a {STAGE_MB} MB object, streamed, hashed and verified; a real AST_L1T HDF is about 100 MB)"
        )
        if S3_OUT in best:
            store_costs(best[S3_OUT][2], scene_group(scenes[0][0]), store_lock, check_lock, missing_chunks)
        http.shutdown()
        moto.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
