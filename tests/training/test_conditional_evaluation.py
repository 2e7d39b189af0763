"""Conditional evaluation: the bias/MAE tables by LST − air temperature, water vapour, class and view angle of
``condition_metrics``, checked against an independent pandas groupby written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.errors import InputError
from akkd_scale.training.evaluate import CONDITIONS, condition_metrics, format_conditions_markdown

BANDS = ("B10", "B11", "B12", "B13", "B14")
HEADS = ("teacher", "fusion")
#: The bins as the issue states them, spelled out here rather than taken from the module.
CONTRAST_EDGES = [-np.inf, -10, -5, 0, 5, 10, 15, 20, 25, np.inf]
CONTRAST_NAMES = ["< -10 K", "-10 to -5 K", "-5 to 0 K", "0–5 K", "5–10 K", "10–15 K", "15–20 K", "20–25 K", "> 25 K"]
CWV_EDGES = [0, 1, 2, 3, 4, 5, np.inf]
CWV_NAMES = ["0–1 g cm-2", "1–2 g cm-2", "2–3 g cm-2", "3–4 g cm-2", "4–5 g cm-2", "> 5 g cm-2"]
VIEW_EDGES = [0, 3, 6, 9, 12, 90]
VIEW_NAMES = ["0–3 deg", "3–6 deg", "6–9 deg", "9–12 deg", "12–90 deg"]


@pytest.fixture(scope="module")
def samples():
    """A land-cover test set whose every bin is populated (contrast −15…30 K, CWV 0–7 g cm-2, views to 20°)."""
    rng = np.random.default_rng(42)
    n = 4000
    tair = rng.uniform(260.0, 310.0, n)
    lst = tair + rng.uniform(-15.0, 30.0, n)
    eps = rng.uniform(0.9, 0.99, (n, 5))
    bt = lst[:, None] - rng.uniform(0.5, 6.0, (n, 5))
    cover = rng.integers(0, len(LAND_COVER_CLASSES), n)
    return xr.Dataset(
        {
            "brightness_temperature": (("sample", "band"), bt.astype(np.float32)),
            "view_zenith": ("sample", np.where(np.arange(n) % 10 == 0, 20.0, rng.uniform(0, 12, n)).astype(np.float32)),
            "lst": ("sample", lst.astype(np.float32)),
            "emissivity": (("sample", "band"), eps.astype(np.float32)),
            "land_cover": ("sample", cover.astype(np.int8)),
            "ndvi": ("sample", rng.uniform(-0.1, 0.9, n)),
            "column_water_vapour": ("sample", rng.uniform(0.0, 7.0, n).astype(np.float32)),
            "surface_air_temperature": ("sample", tair.astype(np.float32)),
        },
        coords={"band": list(BANDS)},
    )


class ConditionalBundle:
    """A stand-in bundle whose LST error depends on the surface–air contrast, the water vapour and what it is
    given (NDVI, a class), so every bin and condition has its own bias."""

    bands = BANDS

    def __init__(self, ds):
        self.lst = ds["lst"].values.astype(np.float64)
        self.contrast = self.lst - ds["surface_air_temperature"].values
        self.cwv = ds["column_water_vapour"].values.astype(np.float64)
        self.eps = ds["emissivity"].values.astype(np.float64)
        self.noise = np.random.default_rng(1).normal(0.0, 0.4, (len(HEADS), self.lst.size))

    def predict(self, bt, vza, *, heads, extra=None, land_cover=None, from_rules=None):
        out = {}
        for h, head in enumerate(heads):
            shift = -0.06 * self.contrast - 0.2 * self.cwv + 0.01 * vza + 0.3 * h
            shift = shift + (0.15 if extra is not None else 0.0) + (0.07 if from_rules is True else 0.0)
            if land_cover is not None:
                shift = shift + 0.05 * np.asarray(land_cover, dtype=np.float64)
            out[head] = {
                "lst": (self.lst + shift + self.noise[h]).astype(np.float32),
                "emissivity": (self.eps + 0.002 * (h + 1)).astype(np.float32),
                "lst_uncertainty": np.full(self.lst.size, 0.8, np.float32),
            }
        return out


def independent_table(ds, bundle) -> pd.DataFrame:
    """The conditional table by pandas: one row per sample and condition, pd.cut bins, groupby."""
    from akkd_scale.landcover.rules import classes_from_rules

    bt = ds["brightness_temperature"].values
    frames = []
    for condition, (with_ndvi, cover) in CONDITIONS.items():
        given = {
            "map": ds["land_cover"].values.astype(int),
            None: None,
            "rules": classes_from_rules(ds["ndvi"].values, bt[:, 0], bt[:, 3], bt[:, 4]) if cover == "rules" else None,
        }[cover]
        pred = bundle.predict(
            bt,
            ds["view_zenith"].values,
            heads=HEADS,
            extra={"ndvi": ds["ndvi"].values} if with_ndvi else None,
            land_cover=given,
            from_rules=cover == "rules",  # the rules' classes are fused by their rules entries
        )
        for head in HEADS:
            error = pred[head]["lst"].astype(np.float64) - ds["lst"].values
            frames.append(
                pd.DataFrame(
                    {
                        "condition": condition,
                        "head": head,
                        "error": error,
                        "covered": np.abs(error) < pred[head]["lst_uncertainty"],
                        "eps_error": np.abs(pred[head]["emissivity"] - ds["emissivity"].values).mean(axis=1),
                        "LST − air temperature": pd.cut(
                            ds["lst"].values.astype(np.float64) - ds["surface_air_temperature"].values,
                            CONTRAST_EDGES,
                            right=False,
                            labels=CONTRAST_NAMES,
                        ),
                        "column water vapour": pd.cut(
                            ds["column_water_vapour"].values, CWV_EDGES, right=False, labels=CWV_NAMES
                        ),
                        "land cover": pd.Categorical(
                            [LAND_COVER_CLASSES[c] for c in ds["land_cover"].values], categories=LAND_COVER_CLASSES
                        ),
                        "view zenith": pd.cut(ds["view_zenith"].values, VIEW_EDGES, right=False, labels=VIEW_NAMES),
                    }
                )
            )
    df = pd.concat(frames, ignore_index=True)
    df["abs_error"] = df["error"].abs()
    df["sq_error"] = df["error"] ** 2
    parts = []
    for kind in ("LST − air temperature", "column water vapour", "land cover", "view zenith"):
        grouped = (
            df.groupby(["condition", "head", kind], observed=True)
            .agg(
                n=("error", "size"),
                lst_bias=("error", "mean"),
                lst_mae=("abs_error", "mean"),
                lst_rmse=("sq_error", lambda s: np.sqrt(s.mean())),
                emissivity_mae=("eps_error", "mean"),
                coverage=("covered", "mean"),
            )
            .reset_index()
            .rename(columns={kind: "label"})
        )
        grouped["group"] = kind
        grouped["label"] = grouped["label"].astype(str)
        parts.append(grouped)
    return pd.concat(parts, ignore_index=True)


def test_conditional_tables_match_an_independent_groupby(samples):
    bundle = ConditionalBundle(samples)
    table = condition_metrics(samples, bundle, heads=HEADS)
    expected = independent_table(samples, bundle)
    keys = ["condition", "head", "group", "label"]
    grouped = table[table["group"] != "all"]
    merged = expected.merge(grouped, on=keys, how="outer", suffixes=("_expected", ""), indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == len(expected) == len(grouped)
    assert (table[table["group"] == "all"]["n"] == samples.sizes["sample"]).all()
    for column in ("n", "lst_bias", "lst_mae", "lst_rmse", "emissivity_mae", "coverage"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_expected"], rtol=1e-5, atol=1e-6, err_msg=column)
    # every bin populated, reported in bin order; the bias follows the contrast the stand-in was given
    contrast = table[
        (table["group"] == "LST − air temperature") & (table["condition"] == "day, map") & (table["head"] == "fusion")
    ]
    assert list(contrast["label"]) == CONTRAST_NAMES
    assert np.all(np.diff(contrast["lst_bias"].values) < 0)
    cwv = table[
        (table["group"] == "column water vapour") & (table["condition"] == "night, map") & (table["head"] == "teacher")
    ]
    assert list(cwv["label"]) == CWV_NAMES
    view = table[
        (table["group"] == "view zenith") & (table["condition"] == "night, map") & (table["head"] == "teacher")
    ]
    assert list(view["label"]) == VIEW_NAMES
    assert set(table["condition"]) == set(CONDITIONS)


def test_conditional_bias_in_the_markdown(samples):
    table = condition_metrics(samples, ConditionalBundle(samples), heads=HEADS)
    text = format_conditions_markdown(table)
    assert "## Conditional LST bias, every retrieval condition" in text
    for kind in ("LST − air temperature", "column water vapour", "land cover", "view zenith"):
        assert f"### By {kind}" in text and f"## Per {kind}: teacher and fusion" in text
    row = table[(table["group"] == "LST − air temperature") & (table["label"] == "-10 to -5 K")]
    cells = [
        f"{r.lst_bias:+.2f} / {r.lst_mae:.2f}"
        for condition in CONDITIONS
        for head in HEADS
        for r in row[(row["condition"] == condition) & (row["head"] == head)].itertuples()
    ]
    assert f"| -10 to -5 K | {row['n'].iloc[0]} | " + " | ".join(cells) + " |" in text


def test_needs_air_temperature_per_sample(samples):
    with pytest.raises(
        InputError,
        match=r"surface_air_temperature: variable missing \(expected a land-cover "
        r"training set",
    ):
        condition_metrics(samples.drop_vars("surface_air_temperature"), ConditionalBundle(samples), heads=HEADS)


def test_real_bundle_on_synthetic_samples(tiny_bundle, synthetic_set):
    """The tiny real bundle: the contrast and water-vapour tables of its fusion, by day with the true class,
    against the same groupby on its own predictions."""
    ds = synthetic_set
    table = condition_metrics(ds, tiny_bundle, heads=("teacher", "fusion"))
    pred = tiny_bundle.predict(
        ds["brightness_temperature"].values.astype(np.float32),
        ds["view_zenith"].values.astype(np.float32),
        heads=("fusion",),
        extra={"ndvi": ds["ndvi"].values},
        land_cover=ds["land_cover"].values.astype(int),
    )
    df = pd.DataFrame(
        {
            "error": pred["fusion"]["lst"].astype(np.float64) - ds["lst"].values,
            "contrast": pd.cut(
                ds["lst"].values - ds["surface_air_temperature"].values,
                CONTRAST_EDGES,
                right=False,
                labels=CONTRAST_NAMES,
            ),
            "cwv": pd.cut(ds["column_water_vapour"].values, CWV_EDGES, right=False, labels=CWV_NAMES),
        }
    )
    df["abs_error"] = df["error"].abs()
    for column, kind in (("contrast", "LST − air temperature"), ("cwv", "column water vapour")):
        expected = df.groupby(column, observed=True).agg(
            n=("error", "size"), bias=("error", "mean"), mae=("abs_error", "mean")
        )
        got = table[(table["group"] == kind) & (table["condition"] == "day, map") & (table["head"] == "fusion")]
        assert list(got["label"]) == [str(label) for label in expected.index]
        np.testing.assert_array_equal(got["n"].values, expected["n"].values)
        np.testing.assert_allclose(got["lst_bias"].values, expected["bias"].values, atol=1e-4)
        np.testing.assert_allclose(got["lst_mae"].values, expected["mae"].values, atol=1e-4)
    for kind in ("all", "LST − air temperature", "column water vapour", "land cover", "view zenith"):
        rows = table[(table["group"] == kind) & (table["condition"] == "night, no map") & (table["head"] == "teacher")]
        assert rows["n"].sum() == ds.sizes["sample"], kind
