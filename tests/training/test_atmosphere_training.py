"""Training with the atmospheric inputs: the reanalysis error model and missing rows of ``dataset_rows``, the
normalisation of present values, the hypsometric altitude prior and the humidity mix, and the conditions with
atmosphere and a reference network in ``condition_metrics`` (checked against a computation written here)."""

from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.constants import REANALYSIS_CWV_LOG_SIGMA, REANALYSIS_TAIR_SIGMA_K
from akkd_scale.conventions import INPUT_NAMES, OPTIONAL_INPUTS
from akkd_scale.simulate import trainingset as ts
from akkd_scale.simulate.synthetic import synthetic_training_set
from akkd_scale.training.data import dataset_rows, target_normalisation
from akkd_scale.training.evaluate import (
    ATMOSPHERE_CONDITION,
    ATMOSPHERE_SEED,
    CONDITIONS,
    condition_metrics,
    format_conditions_markdown,
)

ATMOSPHERE = INPUT_NAMES + ("ndvi", "column_water_vapour", "air_temperature")
CWV_MISSING = OPTIONAL_INPUTS["column_water_vapour"][2]
TAIR_MISSING = OPTIONAL_INPUTS["air_temperature"][2]


@pytest.fixture(scope="module")
def big_set():
    return synthetic_training_set(20000, seed=5)


def test_atmosphere_rows_carry_the_error_model_and_go_missing_together(big_set):
    rows = dataset_rows(big_set, "train", ATMOSPHERE, missing_fraction=0.3, atmosphere_missing_fraction=0.4, seed=7)
    train = big_set.isel(sample=np.flatnonzero(big_set["split"].values.astype(str) == "train"))
    cwv, tair, ndvi = rows.x[:, 7], rows.x[:, 8], rows.x[:, 6]
    gone = cwv == CWV_MISSING
    np.testing.assert_array_equal(gone, tair == TAIR_MISSING)  # together
    assert abs(gone.mean() - 0.4) < 0.02
    ndvi_gone = ndvi == OPTIONAL_INPUTS["ndvi"][2]
    assert abs(ndvi_gone.mean() - 0.3) < 0.02
    assert abs((ndvi_gone & gone).mean() - 0.12) < 0.02  # drawn independently
    true_cwv = train["column_water_vapour"].values[~gone]
    true_tair = train["surface_air_temperature"].values[~gone]
    log_ratio = np.log(cwv[~gone] / true_cwv)
    assert abs(log_ratio.std() - REANALYSIS_CWV_LOG_SIGMA) < 0.01 and abs(log_ratio.mean()) < 0.01
    difference = tair[~gone] - true_tair
    assert abs(difference.std() - REANALYSIS_TAIR_SIGMA_K) < 0.05 and abs(difference.mean()) < 0.05
    exact = dataset_rows(big_set, "train", ATMOSPHERE, atmosphere_errors=False)
    np.testing.assert_allclose(exact.x[:, 7], train["column_water_vapour"].values, rtol=1e-6)
    np.testing.assert_allclose(exact.x[:, 8], train["surface_air_temperature"].values, rtol=1e-6)


def test_normalisation_of_optional_inputs_uses_present_values():
    x = np.array([[300, 1, 2, 3, 4, 5, 0.5, 2.0, 290.0], [300, 1, 2, 3, 4, 5, -2.0, -1.0, 200.0]] * 50, np.float32)
    x[::4, 7] = 4.0
    norm = target_normalisation(x, np.ones((len(x), 6)), ATMOSPHERE)
    present = x[x[:, 7] != CWV_MISSING, 7]
    assert norm["input_mean"][7] == pytest.approx(present.mean())
    assert norm["input_variance"][7] == pytest.approx(present.var())
    assert norm["input_mean"][8] == pytest.approx(290.0)
    assert norm["input_mean"][0] == pytest.approx(300.0)  # bands as before


def test_hypsometric_altitudes_follow_the_land_hypsometry():
    u = np.random.default_rng(0).uniform(size=200_000)
    edges, shares = ts.LAND_HYPSOMETRY
    z = ts._sample_altitudes(np.zeros(u.size), np.full(u.size, 4.0), u, "hypsometric")
    counts, _ = np.histogram(z, edges)
    np.testing.assert_allclose(counts / u.size, np.asarray(shares) / sum(shares), atol=0.005)
    # truncated to a profile's valid 1–3 km: the two bins in the hypsometry's ratio
    z = ts._sample_altitudes(np.ones(u.size), np.full(u.size, 3.0), u, "hypsometric")
    assert z.min() >= 1.0 and z.max() <= 3.0
    assert (z < 2.0).mean() == pytest.approx(0.19 / (0.19 + 0.08), abs=0.005)
    np.testing.assert_allclose(
        ts._sample_altitudes(np.zeros(3), np.full(3, 4.0), np.array([0, 0.5, 1]), "uniform"), [0, 2, 4]
    )


def test_humidity_weights_follow_the_mix():
    rng = np.random.default_rng(1)
    cwv = np.concatenate([rng.uniform(0, 1, 300), rng.uniform(1, 3, 50), rng.uniform(5, 6, 5)])
    table = np.stack([cwv, cwv * 0.5], axis=1)  # two altitudes; the lowest valid one counts
    members = np.arange(cwv.size)
    mix = ((0.0, 1.0, 3.0, 5.0, np.inf), (0.5, 0.3, 0.1, 0.1))
    weight = ts._humidity_weights(table, np.array([0.0, 1.0]), np.zeros(cwv.size), members, mix)
    by_bin = [weight[(cwv >= a) & (cwv < b)].sum() for a, b in zip(mix[0][:-1], mix[0][1:])]
    # no profile in 3–5: its share is left out, the others keep their ratios
    np.testing.assert_allclose(by_bin, [0.5 / 0.9, 0.3 / 0.9, 0.0, 0.1 / 0.9], atol=1e-9)


class AtmosphereBundle:
    """A stand-in bundle taking the atmosphere: LST off by the CWV it is given minus the truth, so the
    conditions with atmosphere must hand it exactly ``reanalysis_like`` of the truth with ATMOSPHERE_SEED."""

    bands = ("B10", "B11", "B12", "B13", "B14")
    extra_inputs = {"ndvi": -2.0, "column_water_vapour": CWV_MISSING, "air_temperature": TAIR_MISSING}

    def __init__(self, ds):
        self.ds = ds

    def features(self, bt, vza, extra=None):
        extra = extra or {}
        n = len(bt)
        columns = [bt, np.broadcast_to(vza, n)[:, None]]
        columns += [np.asarray(extra.get(k, np.full(n, v)), np.float32)[:, None] for k, v in self.extra_inputs.items()]
        return np.concatenate(columns, axis=1), np.ones(n, bool)

    def predict(self, bt, vza, *, heads, extra=None, land_cover=None, from_rules=None):
        extra = extra or {}
        lst = self.ds["lst"].values.astype(np.float64)
        if "column_water_vapour" in extra:
            lst = lst + (np.asarray(extra["column_water_vapour"]) - self.ds["column_water_vapour"].values)
        return {
            h: {"lst": lst, "emissivity": self.ds["emissivity"].values, "lst_uncertainty": np.full(lst.size, 1.0)}
            for h in heads
        }


def test_conditions_with_atmosphere_and_a_reference(big_set):
    test = big_set.isel(sample=slice(0, 3000))
    bundle = AtmosphereBundle(test)
    seen = {}

    def reference(x):
        seen["x"] = x
        return np.column_stack([x[:, 3] + 1.0, np.full((len(x), 5), 0.97)])

    table = condition_metrics(test, bundle, heads=("teacher", "fusion"), references={"baseline_mlp": reference})
    assert set(table["condition"]) == set(CONDITIONS) | {c + ATMOSPHERE_CONDITION for c in CONDITIONS}
    rng = np.random.default_rng(ATMOSPHERE_SEED)
    given = test["column_water_vapour"].values * np.exp(rng.normal(0, REANALYSIS_CWV_LOG_SIGMA, test.sizes["sample"]))
    expected_mae = np.mean(np.abs(given - test["column_water_vapour"].values))
    overall = table[(table["group"] == "all") & (table["head"] == "fusion")].set_index("condition")
    assert overall.loc["day, map" + ATMOSPHERE_CONDITION, "lst_mae"] == pytest.approx(expected_mae, rel=1e-5)
    assert overall.loc["day, map", "lst_mae"] == pytest.approx(0.0, abs=1e-6)
    ref = table[(table["group"] == "all") & (table["head"] == "baseline_mlp")].set_index("condition")
    bt13 = test["brightness_temperature"].sel(band="B13").values
    assert ref.loc["night, map", "lst_mae"] == pytest.approx(np.mean(np.abs(bt13 + 1.0 - test["lst"].values)), rel=1e-5)
    assert np.isnan(ref["coverage"]).all()
    assert seen["x"].shape[1] == 9
    text = format_conditions_markdown(table)
    teacher = table[(table["group"] == "all") & (table["head"] == "teacher")].set_index("condition")
    t, b = teacher.loc["night, map", "lst_mae"], ref.loc["night, map", "lst_mae"]
    assert "## Teacher against the fixed-MLP baseline" in text
    assert f"| night, map | {t:.3f} | {b:.3f} | {100 * (1 - t / b):+.1f} % |" in text
