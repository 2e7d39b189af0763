"""Evaluation table: metrics on hand-computable cases, table structure, report files, a real bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from akkd_scale.errors import InputError, ParameterError
from akkd_scale.training.evaluate import (
    ALL_STRATA,
    METRICS,
    Evaluation,
    evaluate,
    evaluation_table,
    format_markdown,
    metrics,
    open_test_set,
    select_test_split,
    write_report,
)

BANDS = ("B10", "B11", "B12", "B13", "B14")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_metrics_constant_bias():
    truth = np.array([290.0, 300.0, 310.0, 320.0])
    m = metrics(truth, truth + 0.5)
    assert m["n"] == 4
    assert m["bias"] == pytest.approx(0.5) and m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(0.5)
    assert m["pcc"] == pytest.approx(1.0)


def test_metrics_affine_and_anticorrelated():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    m = metrics(truth, 2 * truth + 3)  # error = truth + 3 = 4, 5, 6, 7
    assert m["pcc"] == pytest.approx(1.0)
    assert m["bias"] == pytest.approx(5.5) and m["mae"] == pytest.approx(5.5)
    assert m["rmse"] == pytest.approx(np.sqrt((16 + 25 + 36 + 49) / 4))
    assert metrics(truth, -truth)["pcc"] == pytest.approx(-1.0)


def test_metrics_symmetric_errors_and_nan_pairs():
    truth = np.array([0.0, 1.0, 2.0, 3.0, np.nan, 5.0])
    pred = np.array([1.0, 0.0, 3.0, 2.0, 4.0, np.nan])
    m = metrics(truth, pred)
    assert m["n"] == 4
    assert m["bias"] == pytest.approx(0.0) and m["mae"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(1.0)
    assert m["pcc"] == pytest.approx(0.6)  # cov 0.75 / var 1.25


def test_metrics_degenerate_cases():
    assert np.isnan(metrics([1.0, 2.0], [3.0, 3.0])["pcc"])
    empty = metrics([np.nan], [1.0])
    assert empty["n"] == 0 and all(np.isnan(empty[k]) for k in METRICS)
    with pytest.raises(ParameterError, match="pred: truth has 2 values, prediction 1"):
        metrics([1.0, 2.0], [1.0])


@pytest.fixture
def synthetic():
    """Truth and three 'methods' with known, different error sizes; two strata."""
    rng = np.random.default_rng(3)
    n = 400
    lst = rng.uniform(260.0, 330.0, n)
    emissivity = rng.uniform(0.8, 0.99, (n, 5))
    strata = np.where(np.arange(n) < 150, "dry", "humid")
    predictions = {
        "teacher": {"lst": lst + rng.normal(0, 0.3, n), "emissivity": emissivity + rng.normal(0, 0.004, (n, 5))},
        "student": {"lst": lst + rng.normal(0.2, 0.8, n), "emissivity": emissivity + rng.normal(0, 0.01, (n, 5))},
        "tes": {"lst": lst + rng.normal(-0.5, 1.5, n), "emissivity": emissivity + rng.normal(0, 0.02, (n, 5))},
    }
    predictions["tes"]["lst"][:5] = np.nan  # TES failures: left out of its metrics only
    truth = {
        "lst": lst,
        "emissivity": emissivity,
        "view_zenith": rng.uniform(0, 8.6, n),
        "column_water_vapour": rng.uniform(0.2, 5.0, n),
    }
    return truth, predictions, strata


def test_table_structure_and_values(synthetic):
    truth, predictions, strata = synthetic
    table = evaluation_table(truth["lst"], truth["emissivity"], predictions, strata=strata)
    assert list(table.columns) == ["method", "stratum", "variable", "n", *METRICS]
    assert len(table) == 3 * 3 * 6  # methods × (all + 2 strata) × (LST + 5 bands)
    assert set(table["variable"]) == {"lst", *(f"emissivity_{b}" for b in BANDS)}
    assert set(table["stratum"]) == {ALL_STRATA, "dry", "humid"}
    humid = strata == "humid"
    row = table.query("method == 'student' and stratum == 'humid' and variable == 'emissivity_B12'").iloc[0]
    expected = metrics(truth["emissivity"][humid, 2], predictions["student"]["emissivity"][humid, 2])
    assert row["n"] == humid.sum() and row["rmse"] == pytest.approx(expected["rmse"])
    overall = table[(table["stratum"] == ALL_STRATA) & (table["variable"] == "lst")].set_index("method")
    assert overall.loc["tes", "n"] == len(truth["lst"]) - 5
    assert overall.loc["teacher", "mae"] < overall.loc["student", "mae"] < overall.loc["tes", "mae"]
    assert overall.loc["tes", "bias"] < 0 < overall.loc["student", "bias"]


def test_table_rejects_mismatched_shapes(synthetic):
    truth, predictions, strata = synthetic
    with pytest.raises(ParameterError, match=r"teacher: teacher predictions have shapes \(399,\) and \(400, 5\)"):
        evaluation_table(
            truth["lst"],
            truth["emissivity"],
            {"teacher": {"lst": truth["lst"][:-1], "emissivity": truth["emissivity"]}},
        )
    with pytest.raises(ParameterError, match=r"strata: strata shape \(10,\)"):
        evaluation_table(truth["lst"], truth["emissivity"], predictions, strata=strata[:10])


def test_report_files(synthetic, tmp_path):
    truth, predictions, strata = synthetic
    table = evaluation_table(truth["lst"], truth["emissivity"], predictions, strata=strata)
    evaluation = Evaluation(
        table=table,
        truth=truth,
        predictions=predictions,
        strata=strata,
        metadata={"samples": len(strata), "source": "synthetic"},
    )
    paths = write_report(evaluation, tmp_path / "report", emissivity_band="B12")
    markdown = paths["markdown"].read_text()
    assert "## LST (K), all test samples" in markdown and "## Per stratum" in markdown
    assert "TES (physics)" in markdown and "| humid |" in markdown
    assert markdown == format_markdown(evaluation)
    document = json.loads(paths["json"].read_text())
    assert len(document["rows"]) == len(table)
    assert document["metadata"]["source"] == "synthetic"
    assert all(r["pcc"] is None or -1 <= r["pcc"] <= 1 for r in document["rows"])
    pngs = [
        paths[k] for k in ("lst_scatter", "emissivity_scatter", "error_vs_column_water_vapour", "error_vs_view_zenith")
    ]
    assert paths["emissivity_scatter"].name == "scatter_emissivity_B12.png"
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    import matplotlib.image

    image = matplotlib.image.imread(paths["lst_scatter"])
    assert image.shape[1] > image.shape[0] > 100  # one panel per method side by side
    assert np.ptp(image[..., :3]) > 0.5  # not a blank canvas
    with pytest.raises(ParameterError, match="emissivity_band: unknown band 'B9'"):
        write_report(evaluation, tmp_path / "other", emissivity_band="B9")


ZARR_STRINGS = "ignore:The data type .* does not have a Zarr V3 specification"


@pytest.mark.filterwarnings(ZARR_STRINGS)
def test_test_split_selection_from_zarr(tmp_path):
    n = 12
    ds = xr.Dataset(
        {
            "lst": ("sample", np.linspace(280, 300, n)),
            "split": ("sample", np.array(["train", "validation", "test"] * 4)),
        }
    )
    store = tmp_path / "set.zarr"
    ds.to_zarr(store, consolidated=False)
    opened = open_test_set(store)
    assert opened.attrs["source_file"] == str(store)
    test = select_test_split(opened)
    assert test.sizes["sample"] == 4 and set(test["split"].values.astype(str)) == {"test"}
    with pytest.raises(InputError, match="split: no samples with split == 'test'"):
        select_test_split(ds.isel(sample=[0, 1]))
    with pytest.raises(InputError, match=r"missing\.zarr: data: test data not found"):
        open_test_set(tmp_path / "missing.zarr")


@pytest.mark.filterwarnings(ZARR_STRINGS)
def test_cli_reports_bad_test_set_without_traceback(tmp_path):
    from click.testing import CliRunner

    from akkd_scale.cli import main

    store = tmp_path / "train_only.zarr"
    xr.Dataset({"lst": ("sample", [290.0, 300.0]), "split": ("sample", ["train", "validation"])}).to_zarr(
        store, consolidated=False
    )
    result = CliRunner().invoke(
        main, ["evaluate", "--data", str(store), "--bundle", str(tmp_path), "--out", str(tmp_path / "report")]
    )
    assert result.exit_code == 1
    assert "split" in result.output and "train_only.zarr" in result.output
    assert not (tmp_path / "report").exists()


@pytest.mark.filterwarnings(ZARR_STRINGS)
def test_evaluate_real_bundle_and_cli(tiny_bundle_path, tiny_bundle, synthetic_set, tmp_path):
    """A real tiny bundle (tests/models/conftest.py, make_test_bundle) on held-out synthetic samples."""
    from click.testing import CliRunner

    from akkd_scale.cli import main

    test_ds = select_test_split(synthetic_set)
    bundle_dir, bundle = tiny_bundle_path, tiny_bundle
    evaluation = evaluate(test_ds, bundle)
    methods = ["teacher", "student_baseline", "student", "fusion", "tes"]
    assert list(evaluation.predictions) == methods
    overall = evaluation.table.query("stratum == 'all' and variable == 'lst'").set_index("method")
    assert (overall["n"] > 0).all() and np.isfinite(overall.loc[methods, "mae"]).all()
    assert len(set(evaluation.table["stratum"])) > 1  # the bundle's strata
    by_class = evaluate(test_ds, bundle, strata="material_class", heads=("student", "tes"))
    assert set(by_class.table["stratum"]) == {"all", *np.unique(test_ds["material_class"].values.astype(str))}
    store = tmp_path / "test.zarr"
    test_ds.to_zarr(store, consolidated=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["evaluate", "--data", str(store), "--bundle", str(bundle_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Fusion" in result.output and (out / "evaluation.json").is_file()
    document = json.loads((out / "evaluation.json").read_text())
    cli_mae = {r["method"]: r["mae"] for r in document["rows"] if r["stratum"] == "all" and r["variable"] == "lst"}
    assert cli_mae == pytest.approx(overall["mae"].to_dict(), rel=1e-6)
