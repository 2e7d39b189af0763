"""Knowledge distillation and the training recipe: teacher search → strata → students → fusion → bundle.

Targets. Networks learn scaled targets z = (y − mean) / scale with scale = 10 K for LST and 0.15 for
each emissivity: 0.015 of emissivity changes band radiance about as much as 1 K of LST near 300 K
and 10 µm (ΔB/B ≈ Δε/ε and ΔB/B ≈ c₂/(λT²)·ΔT ≈ 0.015 K⁻¹·ΔT), so an MSE on z weighs an ε error of
0.015 like a 1 K LST error — the same ratio as the accuracy goals (0.006 vs 0.35 K).

Distillation loss (per row, on z):

    L = α·MSE(z, ẑ_s) + (1 − α)·MSE(ẑ_t, ẑ_s)

with α = 0.5 by default, MSE the mean over the 6 outputs, teacher predictions ẑ_t precomputed.
Extra, unlabelled inputs are made by perturbing training inputs (each BT by N(0, 0.3 K) independent
noise — the ASTER NEΔT — plus a common N(0, 0.5 K) offset, view zenith redrawn uniformly over the
training range); they carry only the teacher term (1 − α)·MSE(ẑ_t, ẑ_s). Their number is
``augment_factor`` × the training rows of the stratum. Each student is also trained on ground truth
alone (``baseline``) with the same architecture and budget, for the before/after comparison.

Land-cover class students (the "local" models): per class, the labelled rows (all, or ``class_labelled``
of them), teacher-only rows (the class's other training inputs and perturbed copies; in regional
adaptation, the scenes' own pixels), α chosen from a grid by the class's validation LST MAE.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import keras
import numpy as np

from ..conventions import BANDS, INPUT_NAMES, LAND_COVER_CLASSES, LAND_COVER_UNKNOWN, NEDT_K, OPTIONAL_INPUTS
from ..errors import InputError, ParameterError
from ..metrics import metrics
from ..models import fusion as fusion_mod
from ..models.strata import assign_strata, fit_strata, n_strata, stratum_names
from ..utils import json_safe
from .bundle_writer import input_domain, optional_inputs, save_bundle
from .students import STUDENT_HIDDEN, FitConfig, build_network, fit_network, predict
from .teacher import TeacherConfig, search_teacher

log = logging.getLogger(__name__)

ALPHA = 0.5
LST_SCALE_K = 10.0
EMISSIVITY_SCALE = 0.15
COMMON_OFFSET_K = 0.5


def distillation_loss_numpy(z_true, z_teacher, z_student, alpha: float = ALPHA) -> float:
    """Mean over rows of α·MSE(z, ẑ_s) + (1 − α)·MSE(ẑ_t, ẑ_s); rows with NaN truth keep the teacher term."""
    z_true, z_teacher, z_student = (np.asarray(a, np.float64) for a in (z_true, z_teacher, z_student))
    labelled = np.all(np.isfinite(z_true), axis=1)
    truth_term = np.where(labelled, np.mean((np.nan_to_num(z_true) - z_student) ** 2, axis=1), 0.0)
    teacher_term = np.mean((z_teacher - z_student) ** 2, axis=1)
    return float(np.mean(alpha * truth_term + (1 - alpha) * teacher_term))


def distillation_loss(alpha: float = ALPHA):
    """Keras loss for y_true = [z (NaN for unlabelled rows), ẑ_teacher] (N, 12) and y_pred = ẑ_s (N, 6)."""
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError("distillation_loss", f"alpha={alpha}", variable="alpha", expected="0 <= alpha <= 1")
    ops = keras.ops

    def loss(y_true, y_pred):
        n = ops.shape(y_pred)[-1]
        truth, teacher = y_true[:, :n], y_true[:, n:]
        labelled = ops.cast(ops.all(ops.logical_not(ops.isnan(truth)), axis=-1), y_pred.dtype)
        truth = ops.where(ops.isnan(truth), ops.zeros_like(truth), truth)
        truth_term = ops.mean(ops.square(truth - y_pred), axis=-1) * labelled
        teacher_term = ops.mean(ops.square(teacher - y_pred), axis=-1)
        return alpha * truth_term + (1.0 - alpha) * teacher_term

    return loss


def target_normalisation(x_train, y_train) -> dict:
    """Input standardisation and target scaling (module docstring) from training arrays."""
    x = np.asarray(x_train, np.float64)
    y = np.asarray(y_train, np.float64)
    return {"input_mean": x.mean(axis=0).tolist(), "input_variance": np.maximum(x.var(axis=0), 1e-6).tolist(),
            "output_mean": y.mean(axis=0).tolist(),
            "output_scale": [LST_SCALE_K] + [EMISSIVITY_SCALE] * (y.shape[1] - 1),
            "target_scaling": "z = (y - output_mean) / output_scale; 10 K for LST, 0.15 per emissivity "
                              "(0.015 emissivity ~ 1 K in band radiance at 300 K, 10 um)"}


def scale_targets(y, normalisation: dict) -> np.ndarray:
    """z = (y − output_mean) / output_scale (float32)."""
    return ((np.asarray(y, np.float64) - normalisation["output_mean"]) /
            np.asarray(normalisation["output_scale"])).astype(np.float32)


def augment_inputs(x, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` perturbed copies of random rows of x (N, inputs): BT noise (NEΔT + common offset), view zenith
    redrawn, further inputs (NDVI) kept."""
    x = np.asarray(x, np.float32)
    if n <= 0 or x.shape[0] == 0:
        return np.empty((0, x.shape[1]), np.float32)
    rows = x[rng.integers(0, x.shape[0], n)]
    n_bands = len(BANDS)
    bt = rows[:, :n_bands] + rng.normal(0, NEDT_K, (n, n_bands)) + rng.normal(0, COMMON_OFFSET_K, (n, 1))
    vza = rng.uniform(x[:, n_bands].min(), x[:, n_bands].max(), n)
    return np.concatenate([bt, vza[:, None], rows[:, n_bands + 1:]], axis=1).astype(np.float32)


@dataclass(frozen=True)
class Rows:
    """One split of a training set as arrays: inputs x (N, inputs), targets y (N, 6) = LST, ε10..14, the
    land-cover class (N,) (-1 unknown), the profile id and the column water vapour (N,)."""

    x: np.ndarray
    y: np.ndarray
    land_cover: np.ndarray
    profile_id: np.ndarray
    column_water_vapour: np.ndarray

    def take(self, rows) -> "Rows":
        return Rows(*(getattr(self, f)[rows] for f in ("x", "y", "land_cover", "profile_id", "column_water_vapour")))


def dataset_rows(ds, split: str, inputs=INPUT_NAMES, *, missing_fraction: float = 0.0, seed: int = 0) -> Rows:
    """Rows of one split; ``inputs`` as in a bundle's input specification (BT10..14, view zenith, then
    optional inputs such as ``ndvi``). A ``missing_fraction`` of the rows (drawn with ``seed``) and any NaN get
    each optional input's missing value, as a night scene would. Rows with non-finite bands, view zenith or
    targets are dropped (logged)."""
    source = ds.attrs.get("source", "training set")
    extra = optional_inputs(inputs, source)
    for name in ("brightness_temperature", "view_zenith", "lst", "emissivity", "split",
                 *(OPTIONAL_INPUTS[n][0] for n in extra)):
        if name not in ds:
            raise InputError(source, "variable missing", variable=name, expected="the training-set contract")
    for name in ("brightness_temperature", "emissivity"):
        bands = [str(b) for b in ds[name]["band"].values]
        if bands != list(BANDS):
            raise InputError(source, f"bands {bands}", variable=name, expected=f"bands {list(BANDS)}")
    sub = ds.isel(sample=np.flatnonzero(np.asarray(ds["split"].values).astype(str) == split))
    n = sub.sizes["sample"]
    if n == 0:
        raise InputError(source, f"no samples in split {split!r}", variable="split",
                         expected="train, validation and test samples")
    bt = sub["brightness_temperature"].transpose("sample", "band").values
    vza = np.broadcast_to(sub["view_zenith"].values, (n,))
    eps = sub["emissivity"].transpose("sample", "band").values
    columns = [bt, vza[:, None]]
    masked = np.random.default_rng(seed).random(n) < missing_fraction
    for name in extra:
        variable, _, missing = OPTIONAL_INPUTS[name]
        value = np.asarray(sub[variable].values, np.float64)
        columns.append(np.where(masked | ~np.isfinite(value), missing, value)[:, None])
    x = np.concatenate(columns, axis=1).astype(np.float32)
    y = np.concatenate([sub["lst"].values[:, None], eps], axis=1).astype(np.float32)
    keep = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(y), axis=1)
    if not keep.all():
        log.warning("%s: dropping %d %s rows with non-finite values", source, int((~keep).sum()), split)
    land_cover = (sub["land_cover"].values.astype(np.int32) if "land_cover" in sub
                  else np.full(n, LAND_COVER_UNKNOWN, np.int32))
    profile = (sub["profile_id"].values.astype(str) if "profile_id" in sub else np.full(n, "", dtype=object))
    cwv = (sub["column_water_vapour"].values.astype(np.float32) if "column_water_vapour" in sub
           else np.full(n, np.nan, np.float32))
    return Rows(x, y, land_cover, profile, cwv).take(keep)


def split_validation(held: Rows, source) -> tuple[Rows, Rows]:
    """(early-stopping/α rows, calibration rows): the validation atmospheres (profile base ids, before any '+'
    augmentation suffix) in sorted order, alternately to each half, so the halves are disjoint by atmosphere."""
    base = np.array([str(p).split("+")[0] for p in held.profile_id])
    names = np.unique(base)
    if names.size < 2:
        raise InputError(source, f"{names.size} validation atmosphere(s)", variable="profile_id",
                         expected="at least 2 validation profiles (one half for early stopping, one for calibration)")
    in_calibration = np.isin(base, names[1::2])
    return held.take(~in_calibration), held.take(in_calibration)


@dataclass(frozen=True)
class SuiteConfig:
    """Everything ``train_suite`` needs: output path, budgets, strata, land-cover classes, α, augmentation, seed.

    ``use_ndvi``/``land_cover_students``: None = when the training set has ``ndvi``/``land_cover``.
    ``class_labelled``: labelled rows per class student (None = all of the class); the class's other
    training inputs still carry the teacher term. ``alphas``: α grid chosen per class on validation.
    """

    out: str
    search_directory: str | None = None   # default: "<out>.search" next to the bundle
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: FitConfig = field(default_factory=FitConfig)
    student_hidden: tuple[int, ...] = STUDENT_HIDDEN
    alpha: float = ALPHA
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75)
    augment_factor: float = 1.0
    n_moisture: int = 3
    n_contrast: int = 2
    n_view: int = 1
    min_stratum_samples: int = 500
    use_ndvi: bool | None = None
    ndvi_missing_fraction: float = 0.3
    land_cover_students: bool | None = None
    class_labelled: int | None = None
    min_class_samples: int = 500
    seed: int = 0
    overwrite: bool = True


def _metrics(y, pred) -> dict:
    """LST MAE/RMSE/bias (K) and emissivity MAE/RMSE (all bands) of (N, 6) predictions."""
    lst, eps = metrics(y[:, 0], pred[:, 0]), metrics(y[:, 1:], pred[:, 1:])
    return {"n": int(y.shape[0]), "lst_mae": lst["mae"], "lst_rmse": lst["rmse"], "lst_bias": lst["bias"],
            "emissivity_mae": eps["mae"], "emissivity_rmse": eps["rmse"]}


def _fit_student(name, x, targets, loss, validation, normalisation, config, initial=None):
    """A student fitted from scratch, or fine-tuned from the weights of ``initial`` (same architecture)."""
    keras.utils.set_random_seed(config.seed)
    train, model = build_network(config.student_hidden, normalisation, name=name)
    if initial is not None:
        model.set_weights(initial.get_weights())
    fit_network(train, x, targets, loss=loss, validation=validation, config=config.student)
    return model


def _fit_kd(name, x, z, z_teacher, x_unlabelled, z_teacher_unlabelled, validation, normalisation, config, alpha,
            initial=None):
    """Student trained with the distillation loss: labelled rows (x, z) and teacher-only rows."""
    x_val, z_val, zt_val = validation
    x_kd = np.concatenate([x, x_unlabelled])
    truth = np.concatenate([z, np.full((x_unlabelled.shape[0], z.shape[1]), np.nan, np.float32)])
    targets = np.concatenate([truth, np.concatenate([z_teacher, z_teacher_unlabelled])], axis=1)
    return _fit_student(name, x_kd, targets, distillation_loss(alpha),
                        (x_val, np.concatenate([z_val, zt_val], axis=1)), normalisation, config, initial)


def _train_pair(name, x, z, z_teacher, x_aug, z_teacher_aug, validation, normalisation, config) -> dict:
    """Baseline (truth only) and distilled (α = ``config.alpha``) students of one stratum (or the global one)."""
    x_val, z_val, _ = validation
    return {"baseline": _fit_student(f"{name}_baseline", x, z, "mse", (x_val, z_val), normalisation, config),
            "kd": _fit_kd(name, x, z, z_teacher, x_aug, z_teacher_aug, validation, normalisation, config,
                          config.alpha)}


def train_class_students(name, labelled, unlabelled, validation, normalisation, config, teacher_z,
                         initial: dict | None = None) -> dict:
    """Students of one land-cover class: a baseline on the labelled rows alone and a distilled one whose
    α (``config.alphas``) gives the lowest validation LST MAE.

    ``labelled`` (x, y), ``unlabelled`` x (teacher term only; class inputs, perturbed copies, scene pixels),
    ``validation`` (x, y) of the class; ``teacher_z(x)`` the teacher's scaled predictions. ``initial``
    {"kd", "baseline"}: existing students to fine-tune (regional adaptation) instead of starting afresh.
    """
    x, y = labelled
    x_val, y_val = validation
    z, z_val = scale_targets(y, normalisation), scale_targets(y_val, normalisation)
    zt, zt_unl, zt_val = teacher_z(x), teacher_z(unlabelled), teacher_z(x_val)
    initial = initial or {}
    baseline = _fit_student(f"{name}_baseline", x, z, "mse", (x_val, z_val), normalisation, config,
                            initial.get("baseline"))
    candidates = {}
    for alpha in config.alphas:
        model = _fit_kd(name, x, z, zt, unlabelled, zt_unl, (x_val, z_val, zt_val), normalisation, config, alpha,
                        initial.get("kd"))
        candidates[alpha] = (float(np.mean(np.abs(predict(model, x_val)[:, 0] - y_val[:, 0]))), model)
    alpha = min(candidates, key=lambda a: candidates[a][0])
    log.info("class %s: %d labelled, %d teacher-only rows; alpha %.2f (validation LST MAE %s K)", name, len(x),
             len(unlabelled), alpha, ", ".join(f"{a:g}: {m:.3f}" for a, (m, _) in candidates.items()))
    return {"baseline": baseline, "kd": candidates[alpha][1], "alpha": alpha,
            "validation_lst_mae_by_alpha": {str(a): m for a, (m, _) in candidates.items()},
            "n_labelled": int(len(x)), "n_unlabelled": int(len(unlabelled))}


def local_predictions(local_models, global_models, kind: str, x, local) -> np.ndarray:
    """Predictions of each row's local student (class or stratum; the global one where it has none)."""
    pred = predict(global_models[kind], x)
    for s, models in enumerate(local_models):
        rows = local == s
        if models is not None and rows.any():
            pred[rows] = predict(models[kind], x[rows])
    return pred


def fit_fusion_and_calibration(teacher, global_models, local_models, cal: Rows, strata_spec: dict, n_classes: int,
                               cwv_coefficients=None) -> tuple[dict, dict, Rows, np.ndarray]:
    """Fusion weights and calibrated uncertainty per local model, fitted on calibration rows.

    With class students (``n_classes`` > 0) every classed calibration row counts twice: as its land-cover
    class and as its brightness-temperature stratum, so both the class entries and the fallback strata get
    weights and calibration. ``cwv_coefficients`` keeps an existing water-vapour estimate. Returns (fusion
    dict, predictions by head, the rows used, their local indices).
    """
    n_bands = len(BANDS)
    strata = assign_strata(cal.x[:, :n_bands], cal.x[:, n_bands], strata_spec)
    if n_classes:
        classed = np.flatnonzero(cal.land_cover >= 0)
        rows = cal.take(np.concatenate([classed, np.arange(len(cal.x))]))
        local = np.concatenate([cal.land_cover[classed], n_classes + strata])
    else:
        rows, local = cal, strata
    n_local = n_classes + n_strata(strata_spec)
    x, y = rows.x, rows.y
    preds = {"teacher": predict(teacher, x),
             "student": local_predictions(local_models, global_models, "kd", x, local),
             "student_baseline": local_predictions(local_models, global_models, "baseline", x, local),
             "student_global": predict(global_models["kd"], x),
             "student_global_baseline": predict(global_models["baseline"], x)}
    fusion = fusion_mod.fit_fusion(y, preds, local, n_local)
    preds["fusion"] = fusion_mod.fuse(preds["teacher"], preds["student"], local, fusion)
    sigma = {head: fusion_mod.lst_uncertainty(head, local, fusion, preds["teacher"][:, 0], preds["student"][:, 0])
             for head in preds}
    fusion["calibration"] = fusion_mod.fit_calibration(y[:, 0], {h: p[:, 0] for h, p in preds.items()}, sigma,
                                                       local, n_local, x[:, :n_bands], rows.column_water_vapour,
                                                       coefficients=cwv_coefficients)
    return fusion, preds, rows, local


def train_suite(train_ds, config: SuiteConfig) -> Path:
    """Train the whole AK-KD suite on a training set (train/validation splits) and write a bundle.

    The validation split is halved by atmosphere (:func:`split_validation`): one half stops training early
    and chooses α, the other fits the fusion weights and calibrates the uncertainty. Students: a global
    pair, one pair per brightness-temperature stratum (the fallback for pixels without land cover) and,
    when the set has ``land_cover``, one pair per land-cover class. Returns ``config.out``; the test split
    is not touched.
    """
    out = Path(config.out)
    rng = np.random.default_rng(config.seed)
    use_ndvi = ("ndvi" in train_ds) if config.use_ndvi is None else config.use_ndvi
    inputs = INPUT_NAMES + (("ndvi",) if use_ndvi else ())
    fraction = config.ndvi_missing_fraction if use_ndvi else 0.0
    train = dataset_rows(train_ds, "train", inputs, missing_fraction=fraction, seed=config.seed)
    held = dataset_rows(train_ds, "validation", inputs, missing_fraction=fraction, seed=config.seed + 1)
    val, cal = split_validation(held, train_ds.attrs.get("source", "training set"))
    x, y, x_val, y_val = train.x, train.y, val.x, val.y
    normalisation = target_normalisation(x, y)
    z, z_val = scale_targets(y, normalisation), scale_targets(y_val, normalisation)
    log.info("training suite on %d train / %d validation / %d calibration rows; inputs %s", len(x), len(x_val),
             len(cal.x), ", ".join(inputs))

    search_dir = Path(config.search_directory or out.parent / f"{out.name}.search")
    teacher, teacher_info = search_teacher(x, z, x_val, z_val, normalisation, directory=search_dir,
                                           config=config.teacher, seed=config.seed)
    to_z = lambda inputs_: scale_targets(predict(teacher, inputs_), normalisation)  # noqa: E731

    n_bands = len(BANDS)
    spec = fit_strata(x[:, :n_bands], x[:, n_bands], n_moisture=config.n_moisture, n_contrast=config.n_contrast,
                      n_view=config.n_view)
    x_aug = augment_inputs(x, int(round(config.augment_factor * len(x))), rng)
    zt, zt_aug, zt_val = to_z(x), to_z(x_aug), to_z(x_val)
    s_train, s_aug = assign_strata(x[:, :n_bands], x[:, n_bands], spec), assign_strata(x_aug[:, :n_bands],
                                                                                       x_aug[:, n_bands], spec)
    s_val = assign_strata(x_val[:, :n_bands], x_val[:, n_bands], spec)

    global_models = _train_pair("global", x, z, zt, x_aug, zt_aug, (x_val, z_val, zt_val), normalisation, config)
    strata_models = []
    for s, name in enumerate(stratum_names(spec)):
        rows, aug_rows, val_rows = s_train == s, s_aug == s, s_val == s
        if rows.sum() < config.min_stratum_samples or val_rows.sum() == 0:
            log.info("stratum %s: %d training rows, using the global students", name, int(rows.sum()))
            strata_models.append(None)
            continue
        strata_models.append(_train_pair(name, x[rows], z[rows], zt[rows], x_aug[aug_rows], zt_aug[aug_rows],
                                         (x_val[val_rows], z_val[val_rows], zt_val[val_rows]), normalisation, config))

    with_classes = (bool((train.land_cover >= 0).any()) if config.land_cover_students is None
                    else config.land_cover_students)
    classes = LAND_COVER_CLASSES if with_classes else ()
    class_models, class_info = [], {}
    for code, name in enumerate(classes):
        rows, val_rows = np.flatnonzero(train.land_cover == code), val.land_cover == code
        if rows.size < config.min_class_samples or val_rows.sum() == 0:
            log.info("class %s: %d training rows, using the global students", name, rows.size)
            class_models.append(None)
            continue
        order = rng.permutation(rows)
        labelled, rest = (order[:config.class_labelled], order[config.class_labelled:]) if config.class_labelled \
            else (order, order[:0])
        unlabelled = np.concatenate([x[rest], augment_inputs(x[rows], int(round(config.augment_factor * rows.size)),
                                                             rng)])
        models = train_class_students(name, (x[labelled], y[labelled]), unlabelled,
                                      (x_val[val_rows], y_val[val_rows]), normalisation, config, to_z)
        class_models.append(models)
        class_info[name] = {k: v for k, v in models.items() if k not in ("kd", "baseline")}

    n_classes = len(classes)
    fusion, preds, doubled, local = fit_fusion_and_calibration(teacher, global_models, class_models + strata_models,
                                                               cal, spec, n_classes)
    names = list(classes) + stratum_names(spec)
    metrics = {"calibration": {head: _metrics(doubled.y, p) for head, p in preds.items()},
               "calibration_by_local_model": {
                   name: {head: _metrics(doubled.y[local == s], p[local == s]) for head, p in preds.items()}
                   for s, name in enumerate(names) if (local == s).any()}}
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()
    provenance = {"training_set_attrs": {k: str(v) for k, v in train_ds.attrs.items()},
                  "n_train": int(len(x)), "n_validation": int(len(x_val)), "n_calibration": int(len(cal.x)),
                  "n_augmented": int(len(x_aug)), "train_arrays_sha256": digest, "config": json_safe(asdict(config)),
                  "versions": {p: version(p) for p in ("tensorflow", "keras", "autokeras", "onnx", "numpy")}}
    distillation = {"alpha": config.alpha, "loss": "alpha*MSE(z, z_s) + (1-alpha)*MSE(z_teacher, z_s) on "
                    "scaled targets; teacher-only rows: teacher term only",
                    "augment_factor": config.augment_factor,
                    "augmentation": f"BT + N(0,{NEDT_K} K) per band + N(0,{COMMON_OFFSET_K} K) common; "
                                    "view zenith uniform over training range",
                    "class_students": {"alphas_tried": list(config.alphas), "class_labelled": config.class_labelled,
                                       "teacher_only_rows": "the class's training inputs and perturbed copies",
                                       "by_class": class_info},
                    "ndvi_missing_fraction": fraction,
                    "student_hidden": list(config.student_hidden)}
    students = {"global": global_models, "strata": strata_models,
                "land_cover": class_models if n_classes else None}
    domain = input_domain(x, view_zenith_range=train_ds.attrs.get("view_zenith_range"))
    return save_bundle(out, teacher=teacher, students=students, strata=spec, normalisation=normalisation,
                       domain=domain, fusion=fusion, distillation=distillation, provenance=provenance,
                       metrics=metrics, teacher_info=teacher_info, inputs=inputs, overwrite=config.overwrite)
