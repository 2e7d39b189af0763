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
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import keras
import numpy as np

from ..conventions import BANDS, NEDT_K
from ..errors import InputError, ParameterError
from ..metrics import metrics
from ..models import fusion as fusion_mod
from ..models.strata import assign_strata, fit_strata, n_strata, stratum_names
from ..utils import json_safe
from .bundle_writer import input_domain, save_bundle
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
    """``n`` perturbed copies of random rows of x (N, 6): BT noise (NEΔT + common offset), view zenith redrawn."""
    x = np.asarray(x, np.float32)
    if n <= 0 or x.shape[0] == 0:
        return np.empty((0, x.shape[1]), np.float32)
    rows = x[rng.integers(0, x.shape[0], n)]
    n_bands = len(BANDS)
    bt = rows[:, :n_bands] + rng.normal(0, NEDT_K, (n, n_bands)) + rng.normal(0, COMMON_OFFSET_K, (n, 1))
    vza = rng.uniform(x[:, n_bands].min(), x[:, n_bands].max(), n)
    return np.concatenate([bt, vza[:, None]], axis=1).astype(np.float32)


def dataset_arrays(ds, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 6) = BT10..14, view zenith; y (N, 6) = LST, ε10..14) float32 for one split of a training set."""
    source = ds.attrs.get("source", "training set")
    for name in ("brightness_temperature", "view_zenith", "lst", "emissivity", "split"):
        if name not in ds:
            raise InputError(source, "variable missing", variable=name, expected="the training-set contract")
    for name in ("brightness_temperature", "emissivity"):
        bands = [str(b) for b in ds[name]["band"].values]
        if bands != list(BANDS):
            raise InputError(source, f"bands {bands}", variable=name, expected=f"bands {list(BANDS)}")
    sub = ds.isel(sample=np.flatnonzero(np.asarray(ds["split"].values).astype(str) == split))
    if sub.sizes["sample"] == 0:
        raise InputError(source, f"no samples in split {split!r}", variable="split",
                         expected="train, validation and test samples")
    bt = sub["brightness_temperature"].transpose("sample", "band").values
    vza = np.broadcast_to(sub["view_zenith"].values, (sub.sizes["sample"],))
    eps = sub["emissivity"].transpose("sample", "band").values
    x = np.concatenate([bt, vza[:, None]], axis=1).astype(np.float32)
    y = np.concatenate([sub["lst"].values[:, None], eps], axis=1).astype(np.float32)
    keep = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(y), axis=1)
    if not keep.all():
        log.warning("%s: dropping %d %s rows with non-finite values", source, int((~keep).sum()), split)
    return x[keep], y[keep]


@dataclass(frozen=True)
class SuiteConfig:
    """Everything ``train_suite`` needs: output path, budgets, strata, α, augmentation, seed."""

    out: str
    search_directory: str | None = None   # default: "<out>.search" next to the bundle
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: FitConfig = field(default_factory=FitConfig)
    student_hidden: tuple[int, ...] = STUDENT_HIDDEN
    alpha: float = ALPHA
    augment_factor: float = 1.0
    n_moisture: int = 3
    n_contrast: int = 2
    n_view: int = 1
    min_stratum_samples: int = 500
    seed: int = 0
    overwrite: bool = True


def _metrics(y, pred) -> dict:
    """LST MAE/RMSE/bias (K) and emissivity MAE/RMSE (all bands) of (N, 6) predictions."""
    lst, eps = metrics(y[:, 0], pred[:, 0]), metrics(y[:, 1:], pred[:, 1:])
    return {"n": int(y.shape[0]), "lst_mae": lst["mae"], "lst_rmse": lst["rmse"], "lst_bias": lst["bias"],
            "emissivity_mae": eps["mae"], "emissivity_rmse": eps["rmse"]}


def _train_pair(name, x, z, z_teacher, x_aug, z_teacher_aug, validation, normalisation, config) -> dict:
    """Baseline (truth only) and distilled students of one stratum (or the global one)."""
    x_val, z_val, zt_val = validation
    models = {}
    keras.utils.set_random_seed(config.seed)
    train, models["baseline"] = build_network(config.student_hidden, normalisation, name=f"{name}_baseline")
    fit_network(train, x, z, loss="mse", validation=(x_val, z_val), config=config.student)
    keras.utils.set_random_seed(config.seed)
    train, models["kd"] = build_network(config.student_hidden, normalisation, name=name)
    x_kd = np.concatenate([x, x_aug])
    truth = np.concatenate([z, np.full((x_aug.shape[0], z.shape[1]), np.nan, np.float32)])
    targets = np.concatenate([truth, np.concatenate([z_teacher, z_teacher_aug])], axis=1)
    fit_network(train, x_kd, targets, loss=distillation_loss(config.alpha),
                validation=(x_val, np.concatenate([z_val, zt_val], axis=1)), config=config.student)
    return models


def train_suite(train_ds, config: SuiteConfig) -> Path:
    """Train the whole AK-KD suite on a training set (train/validation splits) and write a bundle.

    Returns the bundle directory ``config.out``. The test split is not touched.
    """
    out = Path(config.out)
    rng = np.random.default_rng(config.seed)
    x, y = dataset_arrays(train_ds, "train")
    x_val, y_val = dataset_arrays(train_ds, "validation")
    normalisation = target_normalisation(x, y)
    z, z_val = scale_targets(y, normalisation), scale_targets(y_val, normalisation)
    log.info("training suite on %d train / %d validation rows", len(x), len(x_val))

    search_dir = Path(config.search_directory or out.parent / f"{out.name}.search")
    teacher, teacher_info = search_teacher(x, z, x_val, z_val, normalisation, directory=search_dir,
                                           config=config.teacher, seed=config.seed)
    to_z = lambda model, inputs: scale_targets(predict(model, inputs), normalisation)  # noqa: E731

    spec = fit_strata(x[:, :5], x[:, 5], n_moisture=config.n_moisture, n_contrast=config.n_contrast,
                      n_view=config.n_view)
    x_aug = augment_inputs(x, int(round(config.augment_factor * len(x))), rng)
    zt, zt_aug, zt_val = to_z(teacher, x), to_z(teacher, x_aug), to_z(teacher, x_val)
    s_train, s_aug = assign_strata(x[:, :5], x[:, 5], spec), assign_strata(x_aug[:, :5], x_aug[:, 5], spec)
    s_val = assign_strata(x_val[:, :5], x_val[:, 5], spec)

    global_models = _train_pair("global", x, z, zt, x_aug, zt_aug, (x_val, z_val, zt_val), normalisation, config)
    local_models = []
    for s, name in enumerate(stratum_names(spec)):
        rows, aug_rows, val_rows = s_train == s, s_aug == s, s_val == s
        if rows.sum() < config.min_stratum_samples or val_rows.sum() == 0:
            log.info("stratum %s: %d training rows, using the global students", name, int(rows.sum()))
            local_models.append(None)
            continue
        local_models.append(_train_pair(name, x[rows], z[rows], zt[rows], x_aug[aug_rows], zt_aug[aug_rows],
                                        (x_val[val_rows], z_val[val_rows], zt_val[val_rows]),
                                        normalisation, config))

    def stratum_predictions(kind):
        pred = predict(global_models[kind], x_val)
        for s, models in enumerate(local_models):
            if models is not None and (s_val == s).any():
                pred[s_val == s] = predict(models[kind], x_val[s_val == s])
        return pred

    preds = {"teacher": predict(teacher, x_val), "student": stratum_predictions("kd"),
             "student_baseline": stratum_predictions("baseline"),
             "student_global": predict(global_models["kd"], x_val),
             "student_global_baseline": predict(global_models["baseline"], x_val)}
    fusion = fusion_mod.fit_fusion(y_val, preds, s_val, n_strata(spec))
    preds["fusion"] = fusion_mod.fuse(preds["teacher"], preds["student"], s_val, fusion)
    metrics = {"validation": {head: _metrics(y_val, p) for head, p in preds.items()},
               "validation_by_stratum": {
                   name: {head: _metrics(y_val[s_val == s], p[s_val == s]) for head, p in preds.items()}
                   for s, name in enumerate(stratum_names(spec)) if (s_val == s).any()}}
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()
    provenance = {"training_set_attrs": {k: str(v) for k, v in train_ds.attrs.items()},
                  "n_train": int(len(x)), "n_validation": int(len(x_val)), "n_augmented": int(len(x_aug)),
                  "train_arrays_sha256": digest, "config": json_safe(asdict(config)),
                  "versions": {p: version(p) for p in ("tensorflow", "keras", "autokeras", "onnx", "numpy")}}
    distillation = {"alpha": config.alpha, "loss": "alpha*MSE(z, z_s) + (1-alpha)*MSE(z_teacher, z_s) on "
                    "scaled targets; augmented rows: teacher term only",
                    "augment_factor": config.augment_factor,
                    "augmentation": f"BT + N(0,{NEDT_K} K) per band + N(0,{COMMON_OFFSET_K} K) common; "
                                    "view zenith uniform over training range",
                    "student_hidden": list(config.student_hidden)}
    students = {"global": global_models, "strata": local_models}
    domain = input_domain(x, view_zenith_range=train_ds.attrs.get("view_zenith_range"))
    return save_bundle(out, teacher=teacher, students=students, strata=spec, normalisation=normalisation,
                       domain=domain, fusion=fusion, distillation=distillation, provenance=provenance,
                       metrics=metrics, teacher_info=teacher_info, overwrite=config.overwrite)
