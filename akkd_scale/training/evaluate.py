"""The paper-style evaluation table: PCC, MAE, RMSE and bias of LST and each band emissivity for
the teacher, the student before and after distillation, the fusion and the TES physics baseline,
overall and per stratum, written as Markdown, JSON and PNG plots.

The pieces take plain arrays (``metrics``, ``evaluation_table``) or an :class:`Evaluation`
(``write_report``) so they are testable without a trained bundle; ``evaluate`` glues them to a
test Dataset (training-set contract) and a loaded bundle. Definitions: docs/evaluation.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import BANDS, CWV, LAND_COVER_CLASSES, TAIR, TES_HEAD, TES_TERMS
from ..errors import InputError, ParameterError
from ..metrics import metrics
from ..models.strata import stratum_names
from ..physics.tes import TESParameters, tes_dataset
from ..utils import json_safe, markdown_table
from .data import reanalysis_like, require_variables, sample_arrays

logger = logging.getLogger(__name__)

#: Table rows in paper order: head name → label.
METHODS = {
    "teacher": "Teacher (AutoKeras)",
    "student_baseline": "Student, no KD",
    "student": "Student, KD",
    "fusion": "Fusion",
    "tes": "TES (physics)",
    "baseline_mlp": "Fixed 4×256 MLP (reference)",
}
#: The reference network the teacher must beat (``training.teacher.train_baseline``).
BASELINE_HEAD = "baseline_mlp"
METRICS = ("pcc", "mae", "rmse", "bias")
ALL_STRATA = "all"


@dataclass(frozen=True)
class Evaluation:
    """Evaluation of several methods on one test set.

    ``table``: one row per (method, stratum, variable) with ``n`` and :data:`METRICS`;
    ``truth``: ``lst`` (N,), ``emissivity`` (N, band) and, when known, ``column_water_vapour`` and
    ``view_zenith`` (N,); ``predictions``: method → {``lst``, ``emissivity``}; ``strata``: label per
    sample or None; ``metadata``: provenance written with the report.
    """

    table: pd.DataFrame
    truth: Mapping[str, np.ndarray]
    predictions: Mapping[str, Mapping[str, np.ndarray]]
    strata: np.ndarray | None = None
    bands: tuple[str, ...] = BANDS
    metadata: Mapping = field(default_factory=dict)


def evaluation_table(
    truth_lst, truth_emissivity, predictions: Mapping[str, Mapping[str, np.ndarray]], *, strata=None, bands=BANDS
) -> pd.DataFrame:
    """Metrics table: rows (method, stratum, variable) → n, pcc, mae, rmse, bias.

    ``truth_lst`` (N,), ``truth_emissivity`` (N, band); ``predictions`` maps a method name to
    ``{"lst": (N,), "emissivity": (N, band)}``. ``strata`` (N,) labels add per-stratum rows next to
    the ``"all"`` rows. Variables are ``lst`` and ``emissivity_<band>``.
    """
    truth_lst = np.asarray(truth_lst, dtype=np.float64)
    truth_emissivity = np.asarray(truth_emissivity, dtype=np.float64)
    n = truth_lst.shape[0]
    if truth_lst.ndim != 1 or truth_emissivity.shape != (n, len(bands)):
        raise ParameterError(
            "evaluation_table",
            f"truth shapes {truth_lst.shape} and {truth_emissivity.shape}",
            variable="truth_emissivity",
            expected=f"(N,) and (N, {len(bands)})",
        )
    groups = [(ALL_STRATA, np.ones(n, dtype=bool))]
    if strata is not None:
        labels = np.asarray(strata)
        if labels.shape != (n,):
            raise ParameterError(
                "evaluation_table",
                f"strata shape {labels.shape}",
                variable="strata",
                expected=f"one label per sample ({n},)",
            )
        groups += [(str(label), labels == label) for label in _ordered_unique(labels)]
    rows = []
    for method, pred in predictions.items():
        lst = np.asarray(pred["lst"], dtype=np.float64)
        emissivity = np.asarray(pred["emissivity"], dtype=np.float64)
        if lst.shape != (n,) or emissivity.shape != (n, len(bands)):
            raise ParameterError(
                "evaluation_table",
                f"{method} predictions have shapes {lst.shape} and {emissivity.shape}",
                variable=method,
                expected=f"({n},) and ({n}, {len(bands)})",
            )
        for stratum, rows_in in groups:
            rows.append(
                {"method": method, "stratum": stratum, "variable": "lst", **metrics(truth_lst[rows_in], lst[rows_in])}
            )
            for b, band in enumerate(bands):
                rows.append(
                    {
                        "method": method,
                        "stratum": stratum,
                        "variable": f"emissivity_{band}",
                        **metrics(truth_emissivity[rows_in, b], emissivity[rows_in, b]),
                    }
                )
    return pd.DataFrame(rows, columns=["method", "stratum", "variable", "n", *METRICS])


def open_test_set(path) -> xr.Dataset:
    """Open a training-set store (Zarr directory, or a netCDF file) lazily, recording its path."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "test data not found", variable="data", expected="a Zarr store or netCDF file")
    try:
        ds = xr.open_zarr(path, consolidated=False) if path.is_dir() else xr.open_dataset(path)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            path,
            f"cannot open as a dataset ({exc})",
            variable="data",
            expected="a Zarr store or netCDF file in the training-set format",
        ) from exc
    return ds.assign_attrs(source_file=str(path))


def select_test_split(ds: xr.Dataset) -> xr.Dataset:
    """The ``split == "test"`` samples of a training-set Dataset, or all samples without ``split``."""
    if "split" not in ds:
        return ds
    keep = np.asarray(ds["split"].values).astype(str) == "test"
    if not keep.any():
        raise InputError(
            ds.attrs.get("source_file", "test dataset"),
            "no samples with split == 'test'",
            variable="split",
            expected="at least one 'test' sample",
        )
    return ds.isel(sample=np.flatnonzero(keep))


def evaluate(
    test_ds: xr.Dataset,
    bundle,
    *,
    strata="bundle",
    heads=tuple(METHODS),
    tes_parameters: TESParameters = TESParameters(),
    ndvi: bool = True,
    land_cover: bool = True,
) -> Evaluation:
    """Evaluate ``bundle`` heads and TES on every sample of ``test_ds`` (training-set contract).

    ``strata``: ``"bundle"`` (the bundle's retrieval-time strata), ``None``, the name of a
    per-sample variable of ``test_ds`` (e.g. ``"material_class"``) or an array of labels. Heads the
    bundle lacks are skipped with a warning; ``"tes"`` needs ``transmittance``, ``path_radiance``
    and ``sky_radiance`` in ``test_ds``. ``ndvi``/``land_cover``: give the bundle the test set's NDVI and
    true land-cover class (as a perfect land-cover map would) when the set has them.
    """
    source = test_ds.attrs.get("source_file", "test dataset")
    require_variables(
        test_ds,
        ("brightness_temperature", "view_zenith", "lst", "emissivity"),
        source,
        "a training-set Dataset (docs/architecture.md, simulate.trainingset)",
    )
    ds = test_ds.load()
    bands = tuple(str(b) for b in getattr(bundle, "bands", BANDS))
    arrays = sample_arrays(ds, bands)
    bt, vza = arrays.brightness_temperature, arrays.view_zenith
    truth = {
        "lst": arrays.lst.astype(np.float64),
        "emissivity": arrays.emissivity,
        "view_zenith": np.asarray(vza, dtype=np.float64),
    }
    if "column_water_vapour" in ds:
        truth["column_water_vapour"] = ds["column_water_vapour"].values.astype(np.float64)

    networks = [h for h in heads if h != TES_HEAD and h in bundle.heads]
    for head in heads:
        if head != TES_HEAD and head not in bundle.heads:
            logger.warning("bundle %s has no head %r: left out of the evaluation", bundle, head)
    predictions = {}
    if networks:
        extra = {"ndvi": ds["ndvi"].values} if ndvi and "ndvi" in ds else None
        classes = ds["land_cover"].values if land_cover and "land_cover" in ds else None
        predicted = bundle.predict(
            bt.astype(np.float32), vza.astype(np.float32), heads=networks, extra=extra, land_cover=classes
        )
        predictions = {h: {"lst": predicted[h]["lst"], "emissivity": predicted[h]["emissivity"]} for h in networks}
    if TES_HEAD in heads:
        if all(name in ds for name in TES_TERMS):
            result = tes_dataset(ds.sel(band=list(bands)), parameters=tes_parameters)
            predictions[TES_HEAD] = {
                "lst": result["lst"].values,
                "emissivity": result["emissivity"].transpose("sample", "band").values,
            }
        else:
            logger.warning("%s has no atmospheric terms: TES left out of the evaluation", source)
    predictions = {h: predictions[h] for h in heads if h in predictions}  # paper order

    labels = _strata_labels(strata, ds, bundle, bt, vza, source)
    table = evaluation_table(truth["lst"], truth["emissivity"], predictions, strata=labels, bands=bands)
    metadata = {
        "samples": int(bt.shape[0]),
        "source": str(source),
        "bands": list(bands),
        "bundle": str(getattr(bundle, "path", bundle)),
        "bundle_sha256": getattr(bundle, "sha256", None),
        "strata": strata if isinstance(strata, str) or strata is None else "labels",
        "ndvi": bool(ndvi and "ndvi" in ds),
        "land_cover": bool(land_cover and "land_cover" in ds),
        "tes_parameters": asdict(tes_parameters),
    }
    return Evaluation(table=table, truth=truth, predictions=predictions, strata=labels, bands=bands, metadata=metadata)


def _strata_labels(strata, ds, bundle, bt, vza, source):
    """Per-sample stratum labels from the ``strata`` choice of :func:`evaluate`."""
    if strata is None:
        return None
    if isinstance(strata, str) and strata == "bundle":
        index = bundle.strata(bt, vza)
        names = np.array(stratum_names(bundle.manifest["strata"]) + ["invalid_input"])
        return names[np.where(index < 0, len(names) - 1, index)]
    if isinstance(strata, str):
        if strata not in ds or ds[strata].dims != ("sample",):
            raise InputError(
                source,
                "strata variable missing or not per sample",
                variable=strata,
                expected="a (sample,) variable, 'bundle' or None",
            )
        return np.asarray(ds[strata].values).astype(str)
    labels = np.asarray(strata)
    if labels.shape != bt.shape[:1]:
        raise ParameterError(
            "evaluate",
            f"strata shape {labels.shape}",
            variable="strata",
            expected=f"one label per sample ({bt.shape[0]},)",
        )
    return labels.astype(str)


def _ordered_unique(labels: np.ndarray) -> list:
    """Unique labels in sorted order (numbers numerically, text alphabetically)."""
    return sorted(set(labels.tolist()))


# ------------------------------------------------------------------- retrieval conditions and groups

#: What the bundle is given, as at retrieval time: name → (NDVI, land cover: None, "rules" from NDVI/BT,
#: "map" = the true class, as a perfect land-cover map). Bundles that take the atmospheric inputs are also
#: evaluated with them (:data:`ATMOSPHERE_CONDITION`, reanalysis-like errors).
CONDITIONS = {
    "night, no map": (False, None),
    "day, no map": (True, "rules"),
    "night, map": (False, "map"),
    "day, map": (True, "map"),
}
#: Suffix of the conditions in which the bundle gets column water vapour and air temperature with the
#: reanalysis error model (``data.reanalysis_like``, seed :data:`ATMOSPHERE_SEED`).
ATMOSPHERE_CONDITION = " + atmosphere"
ATMOSPHERE_SEED = 20250
#: Bin edges of the conditional tables, bins [a, b); an infinite edge makes an open bin ("> 5 g cm-2").
CWV_BINS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, np.inf)  # g cm-2
CONTRAST_BINS = (-np.inf, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, np.inf)  # LST − air temperature, K
VIEW_BINS = (0.0, 3.0, 6.0, 9.0, 12.0, 90.0)  # deg
CONDITION_HEADS = ("teacher", "student_baseline", "student", "fusion")
#: Groups of :func:`condition_metrics` after ``"all"``, in report order.
CONDITION_GROUPS = ("LST − air temperature", "column water vapour", "land cover", "view zenith")
MISSING_LABEL = "missing"


def _bin_label(a: float, b: float, unit: str) -> str:
    if not np.isfinite(a):
        return f"< {b:g} {unit}"
    if not np.isfinite(b):
        return f"> {a:g} {unit}"
    return f"{a:g} to {b:g} {unit}" if min(a, b) < 0 else f"{a:g}–{b:g} {unit}"


def _bins(values, edges, unit: str) -> tuple[np.ndarray, list[str]]:
    """Per-sample bin labels of ``values`` (bins [a, b); values beyond the edges in the end bins, NaN
    :data:`MISSING_LABEL`) and the labels that occur, in bin order."""
    values = np.asarray(values, dtype=np.float64)
    names = [_bin_label(a, b, unit) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(names) - 1)
    labels = np.where(np.isfinite(values), np.array(names, dtype=object)[index], MISSING_LABEL)
    return labels, [n for n in names + [MISSING_LABEL] if np.any(labels == n)]


def condition_metrics(
    test_ds: xr.Dataset, bundle, *, heads=CONDITION_HEADS, conditions=None, references=None, atmosphere=None
) -> pd.DataFrame:
    """LST MAE/RMSE/bias, emissivity MAE and σ coverage (share of |error| < lst_uncertainty) per retrieval
    condition (:data:`CONDITIONS`; with atmosphere inputs each also with them), head and group: all,
    LST − air-temperature bin (:data:`CONTRAST_BINS`), column-water-vapour bin (:data:`CWV_BINS`), land-cover
    class and view-zenith bin (:data:`VIEW_BINS`); rows in that order, bins in bin order. ``test_ds`` follows
    the training-set contract with ``land_cover``, ``ndvi``, ``column_water_vapour`` and
    ``surface_air_temperature``. ``references``: name → function of the bundle's network inputs (N, inputs)
    → (N, 6) predictions (e.g. the fixed-MLP baseline), evaluated on the same inputs (coverage NaN).
    ``atmosphere``: evaluate with atmosphere inputs too (None: when the bundle takes them)."""
    from ..landcover.rules import classes_from_rules

    source = test_ds.attrs.get("source_file", "test dataset")
    require_variables(
        test_ds,
        (
            "brightness_temperature",
            "view_zenith",
            "lst",
            "emissivity",
            "land_cover",
            "ndvi",
            CWV,
            "surface_air_temperature",
        ),
        source,
        "a land-cover training set (simulate_training_set(surfaces='land_cover'))",
    )
    ds = test_ds.load()
    arrays = sample_arrays(ds)
    bt, vza = arrays.brightness_temperature.astype(np.float32), arrays.view_zenith.astype(np.float32)
    lst, eps = arrays.lst.astype(np.float64), arrays.emissivity
    ndvi, truth_class = ds["ndvi"].values, ds["land_cover"].values.astype(int)
    classes = np.array(list(LAND_COVER_CLASSES) + ["unknown"], dtype=object)
    cover = classes[truth_class]
    groups = {
        "all": (np.full(lst.shape, "all", dtype=object), ["all"]),
        "LST − air temperature": _bins(lst - ds["surface_air_temperature"].values, CONTRAST_BINS, "K"),
        "column water vapour": _bins(ds[CWV].values, CWV_BINS, "g cm-2"),
        "land cover": (cover, [c for c in classes if np.any(cover == c)]),
        "view zenith": _bins(vza, VIEW_BINS, "deg"),
    }
    rows = []
    takes = getattr(bundle, "extra_inputs", {})
    takes_atmosphere = CWV in takes and TAIR in takes
    atmosphere = takes_atmosphere if atmosphere is None else atmosphere
    cwv_given, tair_given = reanalysis_like(
        ds[CWV].values, ds["surface_air_temperature"].values, np.random.default_rng(ATMOSPHERE_SEED)
    )
    base = conditions or CONDITIONS
    chosen = [(name, spec, False) for name, spec in base.items()]
    if atmosphere:
        chosen += [(name + ATMOSPHERE_CONDITION, spec, True) for name, spec in base.items()]
    for condition, (with_ndvi, given_cover), with_atmosphere in chosen:
        given = (
            truth_class
            if given_cover == "map"
            else classes_from_rules(ndvi, bt[:, 0], bt[:, 3], bt[:, 4])
            if given_cover == "rules"
            else None
        )
        extra = ({"ndvi": ndvi} if with_ndvi else {}) | ({CWV: cwv_given, TAIR: tair_given} if with_atmosphere else {})
        pred = bundle.predict(
            bt, vza, heads=heads, extra=extra or None, land_cover=given, from_rules=given_cover == "rules"
        )
        if references:
            x, _ = bundle.features(bt, vza, extra)
            for name, function in references.items():
                out = np.asarray(function(x), np.float64)
                pred[name] = {"lst": out[:, 0], "emissivity": out[:, 1:], "lst_uncertainty": np.full(len(x), np.nan)}
        for head in list(heads) + list(references or ()):
            error = pred[head]["lst"] - lst
            covered = np.where(
                np.isfinite(pred[head]["lst_uncertainty"]), np.abs(error) < pred[head]["lst_uncertainty"], np.nan
            )
            eps_error = np.abs(pred[head]["emissivity"] - eps).mean(axis=1)
            for kind, (labels, order) in groups.items():
                for label in order:
                    own = labels == label
                    rows.append(
                        {
                            "condition": condition,
                            "head": head,
                            "group": kind,
                            "label": label,
                            "n": int(own.sum()),
                            "lst_mae": float(np.nanmean(np.abs(error[own]))),
                            "lst_rmse": float(np.sqrt(np.nanmean(error[own] ** 2))),
                            "lst_bias": float(np.nanmean(error[own])),
                            "emissivity_mae": float(np.nanmean(eps_error[own])),
                            "coverage": float(np.mean(covered[own])) if own.any() else float("nan"),
                        }
                    )
    return pd.DataFrame(rows)


def format_conditions_markdown(table: pd.DataFrame) -> str:
    """Markdown: overall per condition and head; per LST − air-temperature bin, water-vapour bin, class and view
    bin the teacher and fusion in two conditions (MAE, bias, ε, coverage), then their LST bias and MAE in every
    condition (the conditional-bias tables)."""
    lines = [
        "## LST (K) and emissivity per retrieval condition",
        "",
        "Conditions: NDVI given (day) or missing (night); land cover from a perfect map (the true class), "
        "from the NDVI/BT rules, or none (brightness-temperature strata). Coverage: share of test samples "
        "with |LST error| < lst_uncertainty (target 68 ± 5 %).",
        "",
    ]
    overall = table[table["group"] == "all"]
    lines += markdown_table(
        ["condition", "head", "n", "LST MAE", "LST RMSE", "LST bias", "ε MAE", "coverage"],
        [
            [
                r.condition,
                METHODS.get(r.head, r.head),
                r.n,
                _fmt(r.lst_mae, 3),
                _fmt(r.lst_rmse, 3),
                _fmt(r.lst_bias, 3),
                _fmt(r.emissivity_mae, 4),
                _percent(r.coverage),
            ]
            for r in overall.itertuples()
        ],
    )
    if BASELINE_HEAD in set(overall["head"]):
        lines += [
            "",
            "## Teacher against the fixed-MLP baseline (same training rows, same inputs)",
            "",
            "Gain = 1 − teacher MAE / baseline MAE; target ≥ 5 % in every condition.",
            "",
        ]
        body = []
        for condition in dict.fromkeys(overall["condition"]):
            own = overall[overall["condition"] == condition].set_index("head")
            teacher, base = own.loc["teacher", "lst_mae"], own.loc[BASELINE_HEAD, "lst_mae"]
            body.append([condition, _fmt(teacher, 3), _fmt(base, 3), f"{100 * (1 - teacher / base):+.1f} %"])
        lines += markdown_table(["condition", "teacher LST MAE", "baseline LST MAE", "gain"], body)
    for kind in CONDITION_GROUPS:
        sub = table[(table["group"] == kind) & table["head"].isin(["teacher", "fusion"])]
        wanted = (
            "night, no map",
            "day, map",
            "night, no map" + ATMOSPHERE_CONDITION,
            "day, map" + ATMOSPHERE_CONDITION,
        )
        conditions = [c for c in wanted if c in set(sub["condition"])]
        lines += [
            "",
            f"## Per {kind}: teacher and fusion, {' / '.join(conditions)}",
            "",
            "Each cell: LST MAE / bias (K), ε MAE, σ coverage.",
            "",
        ]
        header = [kind, "n"] + [f"{METHODS.get(h, h)}, {c}" for c in conditions for h in ("teacher", "fusion")]
        body = []
        for label in sub["label"].unique():
            cells = []
            n = 0
            for condition in conditions:
                for head in ("teacher", "fusion"):
                    r = sub[(sub["label"] == label) & (sub["condition"] == condition) & (sub["head"] == head)].iloc[0]
                    n = r.n
                    cells.append(
                        f"{_fmt(r.lst_mae, 2)} / {r.lst_bias:+.2f}, {_fmt(r.emissivity_mae, 4)}, "
                        f"{_percent(r.coverage, 0)}"
                    )
            body.append([label, n] + cells)
        lines += markdown_table(header, body)
    lines += [
        "",
        "## Conditional LST bias, every retrieval condition",
        "",
        "Each cell: LST bias / MAE (K) of the teacher and the fusion (bias = retrieved − true). Targets: "
        "|bias| ≤ 0.5 K in every bin without atmosphere inputs, ≤ 0.3 K with them.",
    ]
    heads = [h for h in ("teacher", "fusion") if h in set(table["head"])]
    conditions = list(dict.fromkeys(table["condition"]))
    for kind in CONDITION_GROUPS:
        sub = table[(table["group"] == kind) & table["head"].isin(heads)]
        if sub.empty:
            continue
        cells = sub.set_index(["label", "condition", "head"])
        body = []
        for label in sub["label"].unique():
            row = [label, int(sub[sub["label"] == label]["n"].iloc[0])]
            for condition in conditions:
                for head in heads:
                    r = cells.loc[(label, condition, head)]
                    row.append(f"{r.lst_bias:+.2f} / {_fmt(r.lst_mae, 2)}")
            body.append(row)
        lines += ["", f"### By {kind}", ""]
        lines += markdown_table([kind, "n"] + [f"{METHODS.get(h, h)}, {c}" for c in conditions for h in heads], body)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------- report


def format_markdown(evaluation: Evaluation) -> str:
    """Markdown report: overall LST and emissivity tables, then per-stratum LST and mean-ε tables."""
    table = evaluation.table
    label = {m: METHODS.get(m, m) for m in table["method"].unique()}
    meta = evaluation.metadata
    lines = ["# AK-KD evaluation", ""]
    lines += [
        f"- test samples: {meta.get('samples', len(evaluation.truth['lst']))}",
        f"- data: `{meta.get('source', '?')}`",
        f"- bundle: `{meta.get('bundle', '?')}` (sha256 {meta.get('bundle_sha256') or 'n/a'})",
        f"- strata: {meta.get('strata', 'none')}",
        "- PCC: Pearson correlation; MAE, RMSE, bias (retrieved − truth) in K for LST, unitless for ε",
        "",
    ]
    overall = table[table["stratum"] == ALL_STRATA]
    lines += ["## LST (K), all test samples", ""]
    lines += markdown_table(
        ["method", "n", "PCC", "MAE", "RMSE", "bias"],
        [
            [label[row.method], row.n, _fmt(row.pcc, 4), _fmt(row.mae, 3), _fmt(row.rmse, 3), _fmt(row.bias, 3)]
            for _, row in overall[overall["variable"] == "lst"].iterrows()
        ],
    )
    lines += ["", "## Emissivity, all test samples", ""]
    lines += markdown_table(
        ["method", "band", "PCC", "MAE", "RMSE", "bias"],
        [
            [
                label[row.method],
                row.variable.removeprefix("emissivity_"),
                _fmt(row.pcc, 4),
                _fmt(row.mae, 4),
                _fmt(row.rmse, 4),
                _fmt(row.bias, 4),
            ]
            for _, row in overall[overall["variable"] != "lst"].iterrows()
        ],
    )
    strata = table[table["stratum"] != ALL_STRATA]
    if not strata.empty:
        lines += ["", "## Per stratum", "", "LST metrics and the emissivity MAE/RMSE averaged over the bands.", ""]
        rows = []
        for stratum in strata["stratum"].unique():
            for method in strata["method"].unique():
                group = strata[(strata["stratum"] == stratum) & (strata["method"] == method)]
                lst = group[group["variable"] == "lst"].iloc[0]
                eps = group[group["variable"] != "lst"]
                rows.append(
                    [
                        stratum,
                        label[method],
                        lst.n,
                        _fmt(lst.pcc, 4),
                        _fmt(lst.mae, 3),
                        _fmt(lst.rmse, 3),
                        _fmt(lst.bias, 3),
                        _fmt(eps["mae"].mean(), 4),
                        _fmt(eps["rmse"].mean(), 4),
                    ]
                )
        lines += markdown_table(
            ["stratum", "method", "n", "LST PCC", "LST MAE", "LST RMSE", "LST bias", "ε MAE", "ε RMSE"], rows
        )
    return "\n".join(lines) + "\n"


def write_report(evaluation: Evaluation, out_dir, *, emissivity_band: str = "B10") -> dict[str, Path]:
    """Write ``evaluation.md``, ``evaluation.json`` and the PNG plots into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if emissivity_band not in evaluation.bands:
        raise ParameterError(
            "write_report",
            f"unknown band {emissivity_band!r}",
            variable="emissivity_band",
            expected=" or ".join(evaluation.bands),
        )
    paths = {"markdown": out / "evaluation.md", "json": out / "evaluation.json"}
    paths["markdown"].write_text(format_markdown(evaluation), encoding="utf-8")
    records = [{k: json_safe(v) for k, v in row.items()} for row in evaluation.table.to_dict("records")]
    document = {
        "metadata": json_safe(dict(evaluation.metadata)),
        "methods": {m: METHODS.get(m, m) for m in evaluation.predictions},
        "metrics": list(METRICS),
        "rows": records,
    }
    paths["json"].write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
    b = evaluation.bands.index(emissivity_band)
    paths["lst_scatter"] = _density_scatter(
        evaluation.truth["lst"],
        {m: p["lst"] for m, p in evaluation.predictions.items()},
        "LST (K)",
        out / "scatter_lst.png",
    )
    paths["emissivity_scatter"] = _density_scatter(
        evaluation.truth["emissivity"][:, b],
        {m: p["emissivity"][:, b] for m, p in evaluation.predictions.items()},
        f"emissivity {emissivity_band}",
        out / f"scatter_emissivity_{emissivity_band}.png",
    )
    for key, name, unit in (
        ("column_water_vapour", "column water vapour", "g cm⁻²"),
        ("view_zenith", "view zenith", "deg"),
    ):
        if key in evaluation.truth:
            paths[f"error_vs_{key}"] = _error_versus(
                evaluation, key, f"{name} ({unit})", out / f"lst_error_vs_{key}.png"
            )
    logger.info("evaluation report written to %s", out)
    return paths


def _density_scatter(truth, predictions: Mapping[str, np.ndarray], quantity: str, path: Path) -> Path:
    """One 2-D histogram (log colour) of retrieved vs truth per method, with the 1:1 line."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    methods = list(predictions)
    fig = Figure(figsize=(3.4 * max(len(methods), 1), 3.4), layout="constrained")
    axes = fig.subplots(1, max(len(methods), 1), squeeze=False)[0]
    finite_truth = truth[np.isfinite(truth)]
    lo, hi = (float(finite_truth.min()), float(finite_truth.max())) if finite_truth.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    lims = (lo - pad, hi + pad)
    for ax, method in zip(axes, methods):
        pred = np.asarray(predictions[method], dtype=np.float64)
        keep = np.isfinite(truth) & np.isfinite(pred)
        if keep.any():
            ax.hist2d(truth[keep], pred[keep], bins=60, range=[lims, lims], norm=LogNorm(), cmap="viridis")
        ax.plot(lims, lims, color="0.3", linewidth=0.8)
        ax.set(xlim=lims, ylim=lims, title=METHODS.get(method, method), xlabel=f"true {quantity}")
    axes[0].set_ylabel(f"retrieved {quantity}")
    fig.savefig(path, dpi=110)
    return path


def _error_versus(evaluation: Evaluation, key: str, xlabel: str, path: Path, bins: int = 8) -> Path:
    """LST bias and RMSE per method in quantile bins of ``key`` (water vapour or view angle)."""
    from matplotlib.figure import Figure

    x = evaluation.truth[key]
    finite = x[np.isfinite(x)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))) if finite.size else np.array([0.0, 1.0])
    if edges.size < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    centres = 0.5 * (edges[:-1] + edges[1:])
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_bias, ax_rmse = fig.subplots(1, 2)
    for method, pred in evaluation.predictions.items():
        error = np.asarray(pred["lst"], dtype=np.float64) - evaluation.truth["lst"]
        stats = [
            metrics(np.zeros(np.sum(m)), error[m]) for m in (np.isfinite(x) & (which == i) for i in range(centres.size))
        ]
        label = METHODS.get(method, method)
        ax_bias.plot(centres, [s["bias"] for s in stats], marker="o", label=label)
        ax_rmse.plot(centres, [s["rmse"] for s in stats], marker="o", label=label)
    ax_bias.axhline(0.0, color="0.5", linewidth=0.8)
    ax_bias.set(xlabel=xlabel, ylabel="LST bias (K)")
    ax_rmse.set(xlabel=xlabel, ylabel="LST RMSE (K)")
    ax_rmse.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    return path


def _percent(value, digits: int = 1) -> str:
    return "–" if not np.isfinite(value) else f"{100 * value:.{digits}f} %"


def _fmt(value, digits: int) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"
