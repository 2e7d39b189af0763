"""The demo's cloud-native part (``akkd-scale demo --stac``): the demo scenes as cloud-optimised GeoTIFFs and STAC
items, served over HTTP on 127.0.0.1, retrieved by range reads and by STAC search, checked against the HDF path.

The demo ground (:func:`akkd_scale.simulate.scenes.make_demo_scene`, the clear demo's scenes and seeds) is
written as AST_L1T HDF files (north-up UTM grid, as LP DAAC's L1T), then each as COGs + a STAC item in
stactools' ``aster-l1t`` layout (:func:`~akkd_scale.simulate.stac_writer.write_aster_l1t_stac`) under one static
catalog (:func:`~akkd_scale.simulate.stac_writer.write_stac_catalog`). A local server
(:func:`~akkd_scale.simulate.stac_server.serve`) serves the folder with byte ranges and a minimal STAC API over
the catalog. The scenes are retrieved four ways with the same options and chunks — the HDF files; the items by
URL (GDAL range reads of the COG tiles); a search of the static catalog; a search of the API (pystac-client)
— and every result variable of every scene must be identical, bit for bit, to the HDF path's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..io.aster.stac_search import StacSearch
from ..pipeline.runner import run_scenes
from ..pipeline.store import open_scene
from ..simulate.l1b_writer import vnir_dn_for_ndvi, write_aster_l1t
from ..simulate.stac_server import serve
from ..simulate.stac_writer import COLLECTION_ID, write_aster_l1t_stac, write_stac_catalog
from ..utils import json_safe, markdown_table
from .demo import (
    ACQUISITION_TIME,
    CLASS_HEAD,
    CLEAR_SCENES_MASK,
    DEMO_SCENES,
    SOLAR_DIRECTION,
    no_data_margins,
    simulated_scenes,
)

log = logging.getLogger(__name__)

#: COG tile size of the demo items, and the chunks of all four runs (whole tiles, the same for the HDF run).
TILE = 256
CHUNKS = {"y": 512, "x": 512}
#: The four retrievals: name → store name.
RUNS = {
    "HDF files": "results_hdf.zarr",
    "STAC items by URL (COG range reads)": "results_cog.zarr",
    "static catalog search": "results_catalog.zarr",
    "STAC API search": "results_api.zarr",
}


def l1t_name(name: str) -> str:
    """The L1T scene name of a demo scene (``AST_L1B_demo_x`` → ``AST_L1T_demo_x``)."""
    return name.replace("AST_L1B_", "AST_L1T_", 1)


def write_demo_l1t_scenes(out_dir, *, shape=(700, 830), scenes=DEMO_SCENES, processes: int = 2) -> list[Path]:
    """The demo scenes as AST_L1T HDF files (``out_dir/hdf/<name>.hdf``) and COG + STAC items
    (``out_dir/stac/<name>/``) under ``out_dir/stac/catalog.json``; returns the HDF paths."""
    out_dir = Path(out_dir)
    paths, items = [], []
    for name, pointing, _seed, scene in simulated_scenes(scenes, shape, processes):
        path = write_aster_l1t(
            out_dir / "hdf" / f"{l1t_name(name)}.hdf",
            radiance=scene["radiance"].values,
            shape=shape,
            pointing_angle=pointing,
            fill_mask=no_data_margins(shape),
            vnir_dn=vnir_dn_for_ndvi(
                scene["ndvi"].values, acquisition_time=ACQUISITION_TIME, solar_direction=SOLAR_DIRECTION
            ),
            acquisition_time=ACQUISITION_TIME,
            solar_direction=SOLAR_DIRECTION,
        )
        items.append(write_aster_l1t_stac(path, out_dir / "stac" / path.stem, blocksize=TILE))
        paths.append(path)
    write_stac_catalog(out_dir / "stac", items)
    return paths


@contextlib.contextmanager
def _uncached(url: str):
    """GDAL without its in-process cache of ``url``'s objects (``CPL_VSIL_CURL_NON_CACHED``), so each run reads
    the COGs over HTTP again rather than from what the previous run left in memory."""
    key = "CPL_VSIL_CURL_NON_CACHED"
    saved = os.environ.get(key)
    os.environ[key] = f"/vsicurl/{url}"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def _variables_identical(a, b) -> dict[str, bool]:
    """Per result variable: identical values (NaN where NaN) and the same dims."""
    return {
        name: bool(
            name in b
            and a[name].dims == b[name].dims
            and np.array_equal(a[name].values, b[name].values, equal_nan=a[name].dtype.kind == "f")
        )
        for name in a.data_vars
    }


def run_stac_demo(out_dir, *, shape=(700, 830), bundle=None, client=None, scenes=DEMO_SCENES) -> dict:
    """Write, serve, retrieve four ways and compare; returns the report (also ``out_dir/report_stac.json`` and
    ``report_stac.md``). ``report["identical"]`` is True when every run gave the HDF path's numbers."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    hdf_paths = write_demo_l1t_scenes(out_dir, shape=shape, scenes=scenes)
    written = time.perf_counter()
    catalog = out_dir / "stac" / "catalog.json"
    items = [json.loads((out_dir / "stac" / p.stem / f"{p.stem}.json").read_text()) for p in hdf_paths]
    west = min(i["bbox"][0] for i in items)
    south = min(i["bbox"][1] for i in items)
    bbox = (west - 0.1, south - 0.1, west + 0.1, south + 0.1)  # touches every scene's corner
    day = ACQUISITION_TIME[:10]
    options = {
        "bundle": bundle,
        "heads": (CLASS_HEAD,),
        "chunks": CHUNKS,
        "client": client,
        "overwrite": True,
        "cloud_mask": CLEAR_SCENES_MASK,
        "executor": "cluster" if client else "threads",
    }
    report: dict = {"shape": list(shape), "seconds_simulation": written - started, "runs": {}}
    with serve(out_dir / "stac", catalog=catalog) as server, _uncached(server.url):
        catalog_url = server.file_url(catalog)
        inputs = {
            "HDF files": (hdf_paths, None),
            "STAC items by URL (COG range reads)": (
                [server.file_url(out_dir / "stac" / p.stem / f"{p.stem}.json") for p in hdf_paths],
                None,
            ),
            "static catalog search": ([], StacSearch.of(catalog_url, COLLECTION_ID, bbox, day)),
            "STAC API search": ([], StacSearch.of(server.api_url, COLLECTION_ID, bbox, day)),
        }
        cog_bytes = sum(p.stat().st_size for p in (out_dir / "stac").rglob("*.tif"))
        for run, (paths, search) in inputs.items():
            before, requests = server.served.bytes_sent(".tif"), len(server.served.requests)
            begun = time.perf_counter()
            table = run_scenes(paths, out_dir / RUNS[run], stac=search, **options)
            failed = table[table["status"] == "failed"]
            for row in failed.itertuples():
                log.error("STAC demo scene failed (%s): %s: %s", run, row.scene, row.error)
            report["runs"][run] = {
                "store": str(out_dir / RUNS[run]),
                "scenes": [str(s) for s in table["scene"]],
                "failed": int(len(failed)),
                "seconds": time.perf_counter() - begun,
                "cog_bytes_read": server.served.bytes_sent(".tif") - before,
                "http_requests": len(server.served.requests) - requests,
            }
        report["catalog_url"], report["api_url"], report["cog_bytes"] = catalog_url, server.api_url, cog_bytes
    reference = RUNS["HDF files"]
    identical = True
    for run, store in RUNS.items():
        per_scene = {}
        for path in hdf_paths:
            ours = open_scene(out_dir / store, path.stem).load()
            same = _variables_identical(open_scene(out_dir / reference, path.stem).load(), ours)
            per_scene[path.stem] = same
            identical &= all(same.values())
        report["runs"][run]["identical_to_hdf"] = per_scene
        identical &= report["runs"][run]["failed"] == 0
    report["identical"] = bool(identical)
    (out_dir / "report_stac.json").write_text(json.dumps(json_safe(report), indent=2))
    (out_dir / "report_stac.md").write_text(format_stac_report(report))
    return report


def format_stac_report(report: dict) -> str:
    """The report as Markdown: one row per run, and the verdict."""
    rows = []
    for run, r in report["runs"].items():
        same = all(all(v.values()) for v in r.get("identical_to_hdf", {}).values())
        rows.append(
            [
                run,
                len(r["scenes"]),
                r["failed"],
                f"{r['seconds']:.1f}",
                r["http_requests"],
                f"{r['cog_bytes_read'] / max(report['cog_bytes'], 1):.2f}" if r["http_requests"] else "–",
                "yes" if same else "**no**",
            ]
        )
    lines = [
        "# Cloud-native demo: COG + STAC over HTTP",
        "",
        f"{len(report['runs']['HDF files']['scenes'])} demo scenes ({report['shape'][0]} × {report['shape'][1]}) as "
        f"AST_L1T HDF and as COG + STAC items (`aster-l1t` layout, {TILE} × {TILE} tiles), served on 127.0.0.1: "
        f"static catalog {report['catalog_url']}, STAC API {report['api_url']}. Chunks {CHUNKS['y']} × "
        f"{CHUNKS['x']} in every run; COG bytes read as a share of the COG files ({report['cog_bytes']} bytes).",
        "",
    ]
    lines += markdown_table(
        ["run", "scenes", "failed", "seconds", "HTTP requests", "COG bytes read / COG size", "identical to HDF"], rows
    )
    verdict = "identical to the HDF path, bit for bit" if report["identical"] else "NOT identical to the HDF path"
    return "\n".join(
        lines + ["", f"Result: every run {verdict}." if report["identical"] else f"Result: {verdict}.", ""]
    )
