"""The training recipe (:func:`train_suite`): training set → teacher search → strata → students → fusion → bundle.

Each step is one function below, in the order ``train_suite`` runs them: :func:`prepare_rows` (splits as
arrays, validation halved by atmosphere, normalisation), :func:`train_teacher` (AutoKeras search),
:func:`fit_strata_spec` (brightness-temperature strata), :func:`teacher_targets` (perturbed inputs and the
teacher's scaled predictions), :func:`train_strata_students` (global and per-stratum pairs),
:func:`train_land_cover_students` (class students), :func:`fit_fusion_and_calibration` (on the calibration
half), then the manifest records (:func:`calibration_metrics`, :func:`provenance_record`,
:func:`distillation_record`) and ``save_bundle``. One random generator seeded with ``config.seed`` draws the
perturbed inputs and then the class rows, in that order, so a seed gives the same bundle.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..constants import REANALYSIS_CWV_LOG_SIGMA, REANALYSIS_TAIR_SIGMA_K
from ..conventions import (
    ATMOSPHERE_INPUTS,
    BANDS,
    CWV,
    INPUT_NAMES,
    LAND_COVER_CLASSES,
    LAND_COVER_UNKNOWN,
    NDVI,
    NEDT_K,
    OPTIONAL_INPUTS,
    TAIR,
)
from ..landcover.rules import classes_from_rules
from ..metrics import metrics
from ..models import fusion as fusion_mod
from ..models.strata import assign_strata, fit_strata, n_strata, stratum_names
from ..utils import json_safe
from . import fusion_fit
from .bundle_writer import input_domain, save_bundle
from .data import Rows, dataset_rows, scale_targets, split_validation, target_normalisation, training_variable
from .distill import ALPHA, COMMON_OFFSET_K, augment_inputs, local_predictions, train_class_students, train_pair
from .students import STUDENT_HIDDEN, FitConfig, predict
from .teacher import TeacherConfig, search_teacher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteConfig:
    """Everything ``train_suite`` needs: output path, budgets, strata, land-cover classes, α, augmentation, seed.

    ``use_ndvi``/``land_cover_students``: None = when the training set has ``ndvi``/``land_cover``;
    ``use_atmosphere``: None = when it has column water vapour and air temperature (the reanalysis inputs,
    given with the reanalysis error model and missing together in ``atmosphere_missing_fraction`` of the rows).
    ``class_labelled``: labelled rows per class student (None = all of the class); the class's other
    training inputs still carry the teacher term. ``alphas``: α grid chosen per class on validation.
    """

    out: str
    search_directory: str | None = None  # default: "<out>.search" next to the bundle
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: FitConfig = field(default_factory=FitConfig)
    student_hidden: tuple[int, ...] = STUDENT_HIDDEN
    alpha: float = ALPHA
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    augment_factor: float = 1.0
    n_moisture: int = 3
    n_contrast: int = 2
    n_view: int = 1
    min_stratum_samples: int = 500
    use_ndvi: bool | None = None
    ndvi_missing_fraction: float = 0.3
    use_atmosphere: bool | None = None
    atmosphere_missing_fraction: float = 0.3
    land_cover_students: bool | None = None
    class_labelled: int | None = None
    min_class_samples: int = 500
    seed: int = 0
    overwrite: bool = True


@dataclass(frozen=True)
class SuiteRows:
    """The training set as the recipe uses it: network inputs, the NDVI-missing fraction trained with, the
    train rows, the validation halves (early stopping/α and calibration), normalisation and scaled targets."""

    inputs: tuple[str, ...]
    ndvi_missing_fraction: float
    atmosphere_missing_fraction: float
    train: Rows
    validation: Rows
    calibration: Rows
    normalisation: dict
    z: np.ndarray
    z_validation: np.ndarray


@dataclass(frozen=True)
class TeacherTargets:
    """Perturbed copies of the training inputs (teacher-only rows) and the teacher's scaled predictions on the
    training, perturbed and validation inputs."""

    x_augmented: np.ndarray
    z_train: np.ndarray
    z_augmented: np.ndarray
    z_validation: np.ndarray


@dataclass(frozen=True)
class ClassStudents:
    """Land-cover class students: the classes (empty without class students), one {"kd", "baseline", …} or
    None (too few rows: the global students) per class, and per trained class its α choice and row counts."""

    classes: tuple[str, ...]
    models: list
    info: dict


def prepare_rows(train_ds, config: SuiteConfig) -> SuiteRows:
    """The train split and the validation split halved by atmosphere (:func:`~.data.split_validation`) as rows
    with the network inputs (NDVI when the set has it, missing in ``ndvi_missing_fraction`` of the rows)."""
    use_ndvi = ("ndvi" in train_ds) if config.use_ndvi is None else config.use_ndvi
    has_atmosphere = CWV in train_ds and training_variable(train_ds, TAIR) in train_ds
    use_atmosphere = has_atmosphere if config.use_atmosphere is None else config.use_atmosphere
    inputs = INPUT_NAMES + (("ndvi",) if use_ndvi else ()) + (ATMOSPHERE_INPUTS if use_atmosphere else ())
    fraction = config.ndvi_missing_fraction if use_ndvi else 0.0
    atmosphere = config.atmosphere_missing_fraction if use_atmosphere else 0.0
    kwargs = {"missing_fraction": fraction, "atmosphere_missing_fraction": atmosphere}
    train = dataset_rows(train_ds, "train", inputs, seed=config.seed, **kwargs)
    held = dataset_rows(train_ds, "validation", inputs, seed=config.seed + 1, **kwargs)
    val, cal = split_validation(held, train_ds.attrs.get("source", "training set"))
    normalisation = target_normalisation(train.x, train.y, inputs)
    log.info(
        "training suite on %d train / %d validation / %d calibration rows; inputs %s",
        len(train.x),
        len(val.x),
        len(cal.x),
        ", ".join(inputs),
    )
    return SuiteRows(
        inputs,
        fraction,
        atmosphere,
        train,
        val,
        cal,
        normalisation,
        scale_targets(train.y, normalisation),
        scale_targets(val.y, normalisation),
    )


def train_teacher(rows: SuiteRows, config: SuiteConfig):
    """The AutoKeras teacher (search in ``config.search_directory``, default ``<out>.search``) and its search
    info."""
    out = Path(config.out)
    search_dir = Path(config.search_directory or out.parent / f"{out.name}.search")
    return search_teacher(
        rows.train.x,
        rows.z,
        rows.validation.x,
        rows.z_validation,
        rows.normalisation,
        directory=search_dir,
        config=config.teacher,
        seed=config.seed,
    )


def teacher_z_of(teacher, normalisation: dict) -> Callable[[np.ndarray], np.ndarray]:
    """x → the teacher's scaled predictions z."""
    return lambda x: scale_targets(predict(teacher, x), normalisation)


def teacher_targets(rows: SuiteRows, teacher_z, config: SuiteConfig, rng: np.random.Generator) -> TeacherTargets:
    """``augment_factor`` × the training rows of perturbed inputs and the teacher's z on every input set."""
    x = rows.train.x
    x_aug = augment_inputs(x, int(round(config.augment_factor * len(x))), rng)
    return TeacherTargets(x_aug, teacher_z(x), teacher_z(x_aug), teacher_z(rows.validation.x))


def fit_strata_spec(x: np.ndarray, config: SuiteConfig) -> dict:
    """The brightness-temperature strata (moisture × contrast × view) fitted on the training inputs."""
    n_bands = len(BANDS)
    return fit_strata(
        x[:, :n_bands], x[:, n_bands], n_moisture=config.n_moisture, n_contrast=config.n_contrast, n_view=config.n_view
    )


def _strata_of(x: np.ndarray, spec: dict) -> np.ndarray:
    n_bands = len(BANDS)
    return assign_strata(x[:, :n_bands], x[:, n_bands], spec)


def train_strata_students(
    rows: SuiteRows, targets: TeacherTargets, spec: dict, config: SuiteConfig
) -> tuple[dict, list]:
    """The global pair and one pair per stratum (None: fewer than ``min_stratum_samples`` training rows or no
    validation rows, the global students are used)."""
    x, z, x_val, z_val = rows.train.x, rows.z, rows.validation.x, rows.z_validation
    zt, x_aug, zt_aug, zt_val = targets.z_train, targets.x_augmented, targets.z_augmented, targets.z_validation
    s_train, s_aug, s_val = _strata_of(x, spec), _strata_of(x_aug, spec), _strata_of(x_val, spec)
    global_models = train_pair("global", x, z, zt, x_aug, zt_aug, (x_val, z_val, zt_val), rows.normalisation, config)
    strata_models = []
    for s, name in enumerate(stratum_names(spec)):
        train, aug, val = s_train == s, s_aug == s, s_val == s
        if train.sum() < config.min_stratum_samples or val.sum() == 0:
            log.info("stratum %s: %d training rows, using the global students", name, int(train.sum()))
            strata_models.append(None)
            continue
        strata_models.append(
            train_pair(
                name,
                x[train],
                z[train],
                zt[train],
                x_aug[aug],
                zt_aug[aug],
                (x_val[val], z_val[val], zt_val[val]),
                rows.normalisation,
                config,
            )
        )
    return global_models, strata_models


def train_land_cover_students(
    rows: SuiteRows, teacher_z, config: SuiteConfig, rng: np.random.Generator
) -> ClassStudents:
    """Class students (when the set has land cover, or ``config.land_cover_students``) for every class with at
    least ``min_class_samples`` training rows and some validation rows; teacher-only rows: the class's other
    training inputs and ``augment_factor`` × its rows of perturbed copies."""
    train, val = rows.train, rows.validation
    x, y = train.x, train.y
    with_classes = (
        bool((train.land_cover >= 0).any()) if config.land_cover_students is None else config.land_cover_students
    )
    classes = LAND_COVER_CLASSES if with_classes else ()
    class_models, class_info = [], {}
    for code, name in enumerate(classes):
        own, val_rows = np.flatnonzero(train.land_cover == code), val.land_cover == code
        if own.size < config.min_class_samples or val_rows.sum() == 0:
            log.info("class %s: %d training rows, using the global students", name, own.size)
            class_models.append(None)
            continue
        order = rng.permutation(own)
        labelled, rest = (
            (order[: config.class_labelled], order[config.class_labelled :])
            if config.class_labelled
            else (order, order[:0])
        )
        unlabelled = np.concatenate(
            [x[rest], augment_inputs(x[own], int(round(config.augment_factor * own.size)), rng)]
        )
        models = train_class_students(
            name,
            (x[labelled], y[labelled]),
            unlabelled,
            (val.x[val_rows], val.y[val_rows]),
            rows.normalisation,
            config,
            teacher_z,
        )
        class_models.append(models)
        class_info[name] = {k: v for k, v in models.items() if k not in ("kd", "baseline")}
    return ClassStudents(tuple(classes), class_models, class_info)


def optional_input(x: np.ndarray, inputs, name: str) -> np.ndarray | None:
    """The optional input ``name`` (``conventions.OPTIONAL_INPUTS``) the networks are given in rows ``x``, NaN
    where it takes its missing value, or None when ``inputs`` has no such input."""
    if name not in inputs:
        return None
    column = x[:, list(inputs).index(name)]
    return np.where(column == np.float32(OPTIONAL_INPUTS[name][2]), np.nan, column).astype(np.float64)


@dataclass(frozen=True)
class FusionRows:
    """Calibration rows as the fusion is fitted on them: each row's fusion-table row (``entries``) and local model
    (``students``), the number of table rows and the first rules row (None: no rules entries)."""

    rows: Rows
    entries: np.ndarray
    students: np.ndarray
    n_entries: int
    rules_offset: int | None


def rule_classes(x: np.ndarray, inputs) -> np.ndarray:
    """The class the NDVI/BT rules (``landcover.rules``) assign each row of inputs ``x``, −1 where its NDVI is
    missing or ``inputs`` has no NDVI — what retrieval without a land-cover map gives the pixel."""
    ndvi = optional_input(x, inputs, NDVI)
    if ndvi is None:
        return np.full(len(x), LAND_COVER_UNKNOWN, np.int8)
    return classes_from_rules(ndvi, *(x[:, BANDS.index(b)] for b in ("B10", "B13", "B14")))


def fusion_rows(cal: Rows, strata: np.ndarray, n_classes: int, n_local: int, inputs=()) -> FusionRows:
    """Calibration rows with their fusion-table rows and students. With class students every classed row counts
    as its class; every row with NDVI also as the class the rules assign it (rules entry ``n_local`` + that
    class, student that class's: a pixel classed without a map; :data:`models.fusion.RULES_OFFSET_KEY`); and
    every row as its brightness-temperature stratum (``n_classes`` + stratum). So all get weights and σ."""
    if not n_classes:
        return FusionRows(cal, strata, strata, n_local, None)
    classed = np.flatnonzero(cal.land_cover >= 0)
    ruled = rule_classes(cal.x, inputs).astype(np.int64)
    by_rules = np.flatnonzero(ruled >= 0)
    offset = n_local if NDVI in inputs else None
    rows = cal.take(np.concatenate([classed, by_rules, np.arange(len(cal.x))]))
    students = np.concatenate([cal.land_cover[classed], ruled[by_rules], n_classes + strata])
    entries = np.concatenate([cal.land_cover[classed], n_local + ruled[by_rules], n_classes + strata])
    return FusionRows(rows, entries, students, n_local + (n_classes if offset is not None else 0), offset)


def fit_fusion_on(fit: FusionRows, preds: dict, cwv_coefficients=None, inputs=()) -> dict:
    """Fusion weights and calibrated σ per fusion-table row from the heads' predictions ``preds`` ((N, 6) each,
    ``teacher`` and ``student`` among them) on ``fit.rows``; adds ``preds["fusion"]``. Shared by training and
    :func:`~.recalibrate.recalibrate_bundle`, whose predictions come from the bundle's ONNX networks."""
    x, y = fit.rows.x, fit.rows.y
    fusion = fusion_fit.fit_fusion(y, preds, fit.entries, fit.n_entries)
    if fit.rules_offset is not None:
        fusion[fusion_mod.RULES_OFFSET_KEY] = int(fit.rules_offset)
    preds["fusion"] = fusion_mod.fuse(preds["teacher"], preds["student"], fit.entries, fusion)
    sigma = {
        head: fusion_mod.lst_uncertainty(head, fit.entries, fusion, preds["teacher"][:, 0], preds["student"][:, 0])
        for head in preds
    }
    fusion["calibration"] = fusion_fit.fit_calibration(
        y[:, 0],
        {h: p[:, 0] for h, p in preds.items()},
        sigma,
        fit.entries,
        fit.n_entries,
        x[:, : len(BANDS)],
        fit.rows.column_water_vapour,
        coefficients=cwv_coefficients,
        given_cwv=optional_input(x, inputs, CWV),
        given_input=CWV if CWV in inputs else None,
        night=None if NDVI not in inputs else np.isnan(optional_input(x, inputs, NDVI)),
        night_input=NDVI if NDVI in inputs else None,
    )
    return fusion


def fusion_entry_names(local_names: list[str], n_classes: int, fusion: dict) -> list[str]:
    """Names of the fusion-table rows: the local models', then ``<class> (rules)`` for the rules entries."""
    if fusion.get(fusion_mod.RULES_OFFSET_KEY) is None:
        return list(local_names)
    return list(local_names) + [f"{name} (rules)" for name in local_names[:n_classes]]


def fit_fusion_and_calibration(
    teacher,
    global_models,
    local_models,
    cal: Rows,
    strata_spec: dict,
    n_classes: int,
    cwv_coefficients=None,
    inputs=(),
) -> tuple[dict, dict, Rows, np.ndarray]:
    """Fusion weights and calibrated uncertainty per fusion-table row, fitted on calibration rows
    (:func:`fusion_rows`: classes, their rules entries, brightness-temperature strata). ``cwv_coefficients``
    keeps an existing water-vapour estimate. Returns (fusion dict, predictions by head, the rows used, their
    fusion-table rows).
    """
    fit = fusion_rows(cal, _strata_of(cal.x, strata_spec), n_classes, n_classes + n_strata(strata_spec), inputs)
    x = fit.rows.x
    preds = {
        "teacher": predict(teacher, x),
        "student": local_predictions(local_models, global_models, "kd", x, fit.students),
        "student_baseline": local_predictions(local_models, global_models, "baseline", x, fit.students),
        "student_global": predict(global_models["kd"], x),
        "student_global_baseline": predict(global_models["baseline"], x),
    }
    fusion = fit_fusion_on(fit, preds, cwv_coefficients, inputs)
    return fusion, preds, fit.rows, fit.entries


def _metrics(y, pred) -> dict:
    """LST MAE/RMSE/bias (K) and emissivity MAE/RMSE (all bands) of (N, 6) predictions."""
    lst, eps = metrics(y[:, 0], pred[:, 0]), metrics(y[:, 1:], pred[:, 1:])
    return {
        "n": int(y.shape[0]),
        "lst_mae": lst["mae"],
        "lst_rmse": lst["rmse"],
        "lst_bias": lst["bias"],
        "emissivity_mae": eps["mae"],
        "emissivity_rmse": eps["rmse"],
    }


def calibration_metrics(y, preds: dict, local: np.ndarray, names: list[str]) -> dict:
    """The manifest's metrics: every head on the calibration rows, overall and per local model (``names``)."""
    return {
        "calibration": {head: _metrics(y, p) for head, p in preds.items()},
        "calibration_by_local_model": {
            name: {head: _metrics(y[local == s], p[local == s]) for head, p in preds.items()}
            for s, name in enumerate(names)
            if (local == s).any()
        },
    }


def provenance_record(train_ds, rows: SuiteRows, n_augmented: int, config: SuiteConfig) -> dict:
    """The manifest's provenance: training-set attributes, row counts, sha256 of the training arrays, the
    configuration and the package versions."""
    x, y = rows.train.x, rows.train.y
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()
    return {
        "training_set_attrs": {k: str(v) for k, v in train_ds.attrs.items()},
        "n_train": int(len(x)),
        "n_validation": int(len(rows.validation.x)),
        "n_calibration": int(len(rows.calibration.x)),
        "n_augmented": int(n_augmented),
        "train_arrays_sha256": digest,
        "config": json_safe(asdict(config)),
        "versions": {p: version(p) for p in ("tensorflow", "keras", "autokeras", "onnx", "numpy")},
    }


def distillation_record(config: SuiteConfig, rows: SuiteRows, class_info: dict) -> dict:
    """The manifest's distillation settings: α, loss, augmentation, class-student choices, NDVI, architecture."""
    return {
        "alpha": config.alpha,
        "loss": "alpha*MSE(z, z_s) + (1-alpha)*MSE(z_teacher, z_s) on "
        "scaled targets; teacher-only rows: teacher term only",
        "augment_factor": config.augment_factor,
        "augmentation": f"BT + N(0,{NEDT_K} K) per band + N(0,{COMMON_OFFSET_K} K) common; "
        "view zenith uniform over training range",
        "class_students": {
            "alphas_tried": list(config.alphas),
            "class_labelled": config.class_labelled,
            "teacher_only_rows": "the class's training inputs and perturbed copies",
            "by_class": class_info,
        },
        "ndvi_missing_fraction": rows.ndvi_missing_fraction,
        "atmosphere_missing_fraction": rows.atmosphere_missing_fraction,
        "atmosphere_error_model": (
            f"column water vapour x lognormal(0, {REANALYSIS_CWV_LOG_SIGMA}); "
            f"air temperature + N(0, {REANALYSIS_TAIR_SIGMA_K} K)"
        ),
        "student_hidden": list(config.student_hidden),
    }


def train_suite(train_ds, config: SuiteConfig) -> Path:
    """Train the whole AK-KD suite on a training set (train/validation splits) and write a bundle.

    The validation split is halved by atmosphere (:func:`~.data.split_validation`): one half stops training
    early and chooses α, the other fits the fusion weights and calibrates the uncertainty. Students: a global
    pair, one pair per brightness-temperature stratum (the fallback for pixels without land cover) and,
    when the set has ``land_cover``, one pair per land-cover class. Returns ``config.out``; the test split
    is not touched.
    """
    rng = np.random.default_rng(config.seed)
    rows = prepare_rows(train_ds, config)
    teacher, teacher_info = train_teacher(rows, config)
    teacher_z = teacher_z_of(teacher, rows.normalisation)
    spec = fit_strata_spec(rows.train.x, config)
    targets = teacher_targets(rows, teacher_z, config, rng)
    global_models, strata_models = train_strata_students(rows, targets, spec, config)
    classes = train_land_cover_students(rows, teacher_z, config, rng)
    fusion, preds, doubled, local = fit_fusion_and_calibration(
        teacher,
        global_models,
        classes.models + strata_models,
        rows.calibration,
        spec,
        len(classes.classes),
        inputs=rows.inputs,
    )
    students = {
        "global": global_models,
        "strata": strata_models,
        "land_cover": classes.models if classes.classes else None,
    }
    domain = input_domain(rows.train.x, view_zenith_range=train_ds.attrs.get("view_zenith_range"))
    return save_bundle(
        Path(config.out),
        teacher=teacher,
        students=students,
        strata=spec,
        normalisation=rows.normalisation,
        domain=domain,
        fusion=fusion,
        distillation=distillation_record(config, rows, classes.info),
        provenance=provenance_record(train_ds, rows, len(targets.x_augmented), config),
        metrics=calibration_metrics(
            doubled.y,
            preds,
            local,
            fusion_entry_names(list(classes.classes) + stratum_names(spec), len(classes.classes), fusion),
        ),
        teacher_info=teacher_info,
        inputs=rows.inputs,
        overwrite=config.overwrite,
    )
