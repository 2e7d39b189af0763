"""A model bundle with fixed random weights, written without Keras or TensorFlow: the runtime tests' bundle.

:func:`write_random_bundle` writes a valid format-2 bundle with the structure of the trained tiny bundle
(``training.tiny_bundle``): inputs BT10–14, view zenith and NDVI; two moisture strata; a teacher, global
students, students for both strata and for the land-cover classes of the synthetic training set (distilled and
baseline each); fusion rows, calibration factors and a water-vapour estimate for every local model and every
class's rules entry (``models.fusion``); the input
domain of the synthetic set's train split (NDVI missing in 30 % of its rows, as the recipe trains). Networks
are the students' layout — input standardisation, Dense/ReLU (32, 32), Dense, output de-normalisation — with
random weights from ``seed``, written through ``onnx_export`` as ONNX only (no ``.keras`` files: the bundle
cannot be fine-tuned). Outputs stay near the training means (LST within a few K, emissivity within about
0.01) and mean nothing: tests of trained accuracy use the tiny bundle. Nothing here imports Keras.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..conventions import (
    ATMOSPHERE_INPUTS,
    BANDS,
    INPUT_NAMES,
    LAND_COVER_CLASSES,
    N_TARGETS,
    NETWORK_HEADS,
    OPTIONAL_INPUTS,
)
from ..models.fusion import RULES_OFFSET_KEY, cwv_features
from ..models.strata import fit_strata, n_strata, stratum_names
from ..simulate.synthetic import synthetic_training_set
from .bundle_writer import input_domain, save_bundle
from .onnx_export import onnx_from_layers

HIDDEN = (32, 32)
INPUTS = INPUT_NAMES + ("ndvi",)
N_SAMPLES = 1500
NDVI_MISSING_FRACTION = 0.3
#: Number of water-vapour bins of the calibration (equal-population bins of the estimate on the train split).
N_CWV_BINS = 7


def _network(rng: np.random.Generator, normalisation: dict, name: str) -> onnx.ModelProto:
    """A random network in the students' layout; the last layer is scaled so that z stays within about ±0.3."""
    divisor = np.sqrt(np.asarray(normalisation["input_variance"]))
    ops = [("norm", np.asarray(normalisation["input_mean"], np.float32), divisor.astype(np.float32), False)]
    width = len(divisor)
    for units in HIDDEN:
        ops += [
            (
                "dense",
                rng.normal(0.0, np.sqrt(2.0 / width), (width, units)).astype(np.float32),
                rng.normal(0.0, 0.1, units).astype(np.float32),
            ),
            ("relu",),
        ]
        width = units
    ops += [
        (
            "dense",
            rng.normal(0.0, 0.15 / np.sqrt(width), (width, N_TARGETS)).astype(np.float32),
            np.zeros(N_TARGETS, np.float32),
        ),
        (
            "norm",
            np.asarray(normalisation["output_mean"], np.float32),
            np.asarray(normalisation["output_scale"], np.float32),
            True,
        ),
    ]
    return onnx_from_layers(ops, len(divisor), name=name)


def _fusion(rng: np.random.Generator, bt: np.ndarray, column_water_vapour: np.ndarray, n_local: int) -> dict:
    """Random fusion weights, LST RMSE, disagreement and calibration factors for ``n_local`` local models, with a
    water-vapour estimate fitted (least squares) to the synthetic rows so that the calibration bins are used."""
    features = cwv_features(bt)
    coefficients, *_ = np.linalg.lstsq(features, column_water_vapour.astype(np.float64), rcond=None)
    edges = np.quantile(features @ coefficients, np.arange(1, N_CWV_BINS) / N_CWV_BINS)
    return {
        "method": "random weights (test bundle)",
        "teacher_weight": rng.uniform(0.0, 1.0, (n_local, N_TARGETS)).tolist(),
        "validation_rows": [0] * n_local,
        "lst_rmse": {head: rng.uniform(1.0, 3.0, n_local).tolist() for head in NETWORK_HEADS},
        "lst_disagreement_ms": rng.uniform(0.5, 2.0, n_local).tolist(),
        "calibration": {
            "method": "random factors (test bundle)",
            "moisture": "column water vapour (g cm-2) estimated from BT10-14 (fusion.cwv_features), "
            "least squares on the synthetic train split",
            "cwv_coefficients": coefficients.tolist(),
            "edges": edges.tolist(),
            "factor": {head: rng.uniform(0.8, 1.5, (n_local, N_CWV_BINS)).tolist() for head in NETWORK_HEADS},
        },
    }


def _with_rules_entries(fusion: dict, rng: np.random.Generator, n_local: int) -> dict:
    """``fusion`` with random rules entries (one more row per class, ``models.fusion``), drawn from their own
    generator so the local models' rows are those of bundles written before them."""
    n = len(LAND_COVER_CLASSES)
    calibration = fusion["calibration"]
    n_bins = len(calibration["factor"]["teacher"][0])
    return {
        **fusion,
        RULES_OFFSET_KEY: n_local,
        "teacher_weight": fusion["teacher_weight"] + rng.uniform(0.0, 1.0, (n, N_TARGETS)).tolist(),
        "validation_rows": fusion["validation_rows"] + [0] * n,
        "lst_rmse": {h: v + rng.uniform(1.0, 3.0, n).tolist() for h, v in fusion["lst_rmse"].items()},
        "lst_disagreement_ms": fusion["lst_disagreement_ms"] + rng.uniform(0.5, 2.0, n).tolist(),
        "calibration": {
            **calibration,
            "factor": {h: v + rng.uniform(0.8, 1.5, (n, n_bins)).tolist() for h, v in calibration["factor"].items()},
        },
    }


def write_random_bundle(path, seed: int = 0, *, overwrite: bool = False, atmosphere: bool = False) -> Path:
    """Write the random-weight bundle of ``seed`` at ``path`` (see the module docstring); returns the directory.

    ``atmosphere``: the networks also take the atmospheric inputs (column water vapour, air temperature; missing
    together in the same fraction of the rows as NDVI), as a bundle trained with reanalysis inputs.

    The same ``seed`` gives the same networks, strata, domain and fusion (only the manifest's ``created`` time
    differs); a different one gives other weights.
    """
    rng = np.random.default_rng(seed)
    ds = synthetic_training_set(N_SAMPLES, seed=seed)
    ds = ds.isel(sample=np.flatnonzero(ds["split"].values.astype(str) == "train"))
    n = ds.sizes["sample"]
    bt = ds["brightness_temperature"].transpose("sample", "band").values.astype(np.float64)
    ndvi = np.where(rng.random(n) < NDVI_MISSING_FRACTION, OPTIONAL_INPUTS["ndvi"][2], ds["ndvi"].values)
    columns = [bt, ds["view_zenith"].values, ndvi]
    if atmosphere:
        gone = rng.random(n) < NDVI_MISSING_FRACTION
        columns += [
            np.where(gone, OPTIONAL_INPUTS["column_water_vapour"][2], ds["column_water_vapour"].values),
            np.where(gone, OPTIONAL_INPUTS["air_temperature"][2], ds["surface_air_temperature"].values),
        ]
    x = np.column_stack(columns)
    y = np.column_stack([ds["lst"].values, ds["emissivity"].transpose("sample", "band").values])
    normalisation = {
        "input_mean": x.mean(axis=0).tolist(),
        "input_variance": np.maximum(x.var(axis=0), 1e-6).tolist(),
        "output_mean": y.mean(axis=0).tolist(),
        "output_scale": y.std(axis=0).tolist(),
        "target_scaling": "random weights: y = output_mean + output_scale * z",
    }
    spec = fit_strata(bt, x[:, len(BANDS)], n_moisture=2, n_contrast=1, n_view=1)
    present = set(np.unique(ds["land_cover"].values).tolist())

    def pair(name: str) -> dict:
        return {"kd": _network(rng, normalisation, name), "baseline": _network(rng, normalisation, f"{name}_baseline")}

    teacher = _network(rng, normalisation, "teacher")
    students = {
        "global": pair("global"),
        "strata": [pair(name) for name in stratum_names(spec)],
        "land_cover": [pair(name) if code in present else None for code, name in enumerate(LAND_COVER_CLASSES)],
    }
    n_local = len(LAND_COVER_CLASSES) + n_strata(spec)
    fusion = _with_rules_entries(
        _fusion(rng, bt, ds["column_water_vapour"].values, n_local), np.random.default_rng([seed, 1]), n_local
    )
    return save_bundle(
        path,
        teacher=teacher,
        students=students,
        strata=spec,
        normalisation=normalisation,
        domain=input_domain(x, view_zenith_range=ds.attrs.get("view_zenith_range")),
        fusion=fusion,
        distillation={"random_weights": True, "ndvi_missing_fraction": NDVI_MISSING_FRACTION},
        provenance={
            "random_weights": {"seed": seed, "writer": __name__},
            "n_train": int(n),
            "training_set_attrs": {k: str(v) for k, v in ds.attrs.items()},
        },
        metrics={},
        teacher_info={"hidden_units": list(HIDDEN), "weights": f"random (seed {seed})"},
        inputs=INPUTS + (ATMOSPHERE_INPUTS if atmosphere else ()),
        overwrite=overwrite,
    )
