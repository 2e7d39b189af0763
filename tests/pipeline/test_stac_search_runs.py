"""Runs over STAC searches: the items a STAC API or a static catalog finds give the LST of the same item JSONs run
directly, bit for bit; ``akkd-scale run --stac`` end to end and its bad input (one line, no traceback, nothing
written); ``akkd-scale demo --stac`` at a small size."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from stac_catalog import BBOX_AB, SEARCH_SCENES, search_catalog  # noqa: F401

from akkd_scale.cli import main
from akkd_scale.io.aster.stac_search import StacSearch
from akkd_scale.pipeline import run_scenes
from akkd_scale.pipeline.store import open_scene

A, B, C = SEARCH_SCENES


def _same_results(store_a, store_b, group):
    a, b = open_scene(store_a, group).load(), open_scene(store_b, group).load()
    assert set(a.data_vars) == set(b.data_vars) and {"lst", "emissivity", "qc"} <= set(a.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{group}/{name}")
    assert np.isfinite(a["lst"].values).mean() > 0.9


def test_found_items_give_the_lst_of_the_item_jsons_run_directly(search_catalog, bundle_path, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", f"/vsicurl/{search_catalog.server.url}")  # each run reads again
    options = {"bundle": bundle_path, "executor": "threads", "chunks": 32}
    direct = run_scenes([search_catalog.item_url(A), search_catalog.item_url(B)], tmp_path / "direct.zarr", **options)
    assert list(direct["status"]) == ["complete"] * 2
    served = search_catalog.server.served
    for name, url in (("api", search_catalog.api_url), ("static", search_catalog.catalog_url)):
        tif_before = sum(1 for r in served.requests if r[1].endswith("-TIR.tif") and r[2])
        table = run_scenes([], tmp_path / f"{name}.zarr", stac=StacSearch.of(url, "aster-l1t", BBOX_AB), **options)
        assert list(table["status"]) == ["complete"] * 2, table
        assert list(table["group"]) == [A, B]
        for group in (A, B):
            _same_results(tmp_path / "direct.zarr", tmp_path / f"{name}.zarr", group)
        assert sum(1 for r in served.requests if r[1].endswith("-TIR.tif") and r[2]) > tif_before  # range reads
    source = open_scene(tmp_path / "api.zarr", A).attrs["source_file"]
    assert source == f"{search_catalog.api_url}/collections/aster-l1t/items/{A}"


def test_cli_runs_and_verifies_what_the_search_finds(search_catalog, bundle_path, tmp_path):  # noqa: F811
    out = tmp_path / "cli.zarr"
    args = [
        "run",
        "--stac",
        search_catalog.api_url,
        "--collection",
        "aster-l1t",
        "--bbox",
        "-117.5",
        "36",
        "-116",
        "37",
    ]
    args += ["--datetime", "2004-07-01/2004-07-31", "--out", str(out), "--bundle", str(bundle_path), "--chunks", "32"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "): 1 item" in result.output and "1 complete" in result.output
    assert [g for g in (A, B, C) if (out / g).is_dir()] == [A]
    verified = CliRunner().invoke(main, args + ["--verify"])
    assert verified.exit_code == 0 and " ok" in verified.output, verified.output
    both = CliRunner().invoke(main, ["run", str(search_catalog.items[B])] + args[1:])  # SCENES and --stac together
    assert both.exit_code == 0 and "1 skipped" in both.output and "1 complete" in both.output, both.output


@pytest.mark.parametrize(
    "extra, status, message",
    [
        (["--bbox", "-117", "36", "-116", "x"], 2, "'x' is not a valid float"),
        (["--bbox", "-117", "38", "-116", "37"], 2, "Invalid value for '--bbox': bbox [-117.0, 38.0, -116.0, 37.0]"),
        (["--bbox", "1", "2", "3"], 2, "requires 4 arguments"),
        (["--datetime", "2004-07-32"], 2, "Invalid value for '--datetime': datetime '2004-07-32'"),
        (["--datetime", "2005/2004"], 2, "starts after it ends"),
        (["--max-items", "0"], 2, "Invalid value for '--max-items'"),
        (["--collection", "aster-l2"], 1, "no collection 'aster-l2' (expected one of its collections: aster-l1t)"),
        (["--bbox", "0", "0", "1", "1"], 1, "no STAC item found"),
        (["--datetime", "1999"], 1, "no STAC item found"),
    ],
)
def test_cli_bad_searches_are_one_line_and_write_nothing(search_catalog, bundle_path, tmp_path, extra, status, message):  # noqa: F811
    out = tmp_path / "never.zarr"
    args = ["run", "--stac", search_catalog.api_url, "--out", str(out), "--bundle", str(bundle_path)] + extra
    result = CliRunner().invoke(main, args)
    assert result.exit_code == status, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "Error" in result.output.strip().splitlines()[-1]
    assert not out.exists()


def test_cli_unreachable_api_and_search_options_without_stac(closed_endpoint, bundle_path, tmp_path):
    out = tmp_path / "never.zarr"
    base = ["run", "--out", str(out), "--bundle", str(bundle_path)]
    result = CliRunner().invoke(main, base + ["--stac", f"{closed_endpoint}/api", "--remote-timeout", "3"])
    assert result.exit_code == 1 and "endpoint unreachable" in result.output and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {closed_endpoint}/api")
    result = CliRunner().invoke(main, base + ["--collection", "aster-l1t"])
    assert result.exit_code == 2 and "Invalid value for '--collection': needs --stac URL" in result.output
    result = CliRunner().invoke(main, base)
    assert result.exit_code == 2 and "give SCENES, --stac URL, or both" in result.output
    assert not out.exists()


def test_demo_stac_serves_the_demo_scenes_and_checks_them_against_the_hdf_path(bundle_path, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "--stac", "--size", "48x60", "--out", str(out), "--bundle", str(bundle_path)]
    )
    assert result.exit_code == 0, result.output
    assert "every run identical to the HDF path, bit for bit" in result.output
    report = json.loads((out / "stac" / "report_stac.json").read_text())
    assert report["identical"] and len(report["runs"]) == 4
    runs = report["runs"]
    for run in ("STAC items by URL (COG range reads)", "static catalog search", "STAC API search"):
        assert runs[run]["cog_bytes_read"] > 0 and runs[run]["http_requests"] > 0, run  # over HTTP every time
        assert all(all(v.values()) for v in runs[run]["identical_to_hdf"].values())
    assert all("/api/collections/aster-l1t/items/" in s for s in runs["STAC API search"]["scenes"])
    assert (out / "stac" / "stac" / "catalog.json").is_file() and (out / "stac" / "report_stac.md").is_file()
