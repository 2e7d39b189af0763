"""Knowledge distillation of students: the loss, teacher-only inputs, and the student pairs the recipe trains.

Distillation loss (per row, on the scaled targets z of ``data.target_normalisation``):

    L = α·MSE(z, ẑ_s) + (1 − α)·MSE(ẑ_t, ẑ_s)

with α = 0.5 by default, MSE the mean over the 6 outputs, teacher predictions ẑ_t precomputed.
Extra, unlabelled inputs are made by perturbing training inputs (each BT by N(0, 0.3 K) independent
noise — the ASTER NEΔT — plus a common N(0, 0.5 K) offset, view zenith redrawn uniformly over the
training range); they carry only the teacher term (1 − α)·MSE(ẑ_t, ẑ_s). Their number is
``augment_factor`` × the training rows of the stratum. Each student is also trained on ground truth
alone (``baseline``) with the same architecture and budget, for the before/after comparison.

Land-cover class students (the "local" models): per class, the labelled rows (all, or ``class_labelled``
of them), teacher-only rows (the class's other training inputs and perturbed copies; in regional
adaptation, the scenes' own pixels), α chosen from a grid by the class's validation LST MAE; α = 1 (in the
default grid) is the student alone, for classes where the teacher is weak (snow/ice).

``config`` below is a ``recipe.SuiteConfig`` (seed, student architecture and budget, α and its grid).
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from ..conventions import BANDS, NEDT_K
from ..errors import ParameterError
from .data import scale_targets
from .students import build_network, fit_network, predict

log = logging.getLogger(__name__)

ALPHA = 0.5
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
    return np.concatenate([bt, vza[:, None], rows[:, n_bands + 1 :]], axis=1).astype(np.float32)


def _fit_student(name, x, targets, loss, validation, normalisation, config, initial=None):
    """A student fitted from scratch, or fine-tuned from the weights of ``initial`` (same architecture)."""
    keras.utils.set_random_seed(config.seed)
    train, model = build_network(config.student_hidden, normalisation, name=name)
    if initial is not None:
        model.set_weights(initial.get_weights())
    fit_network(train, x, targets, loss=loss, validation=validation, config=config.student)
    return model


def _fit_kd(
    name, x, z, z_teacher, x_unlabelled, z_teacher_unlabelled, validation, normalisation, config, alpha, initial=None
):
    """Student trained with the distillation loss: labelled rows (x, z) and teacher-only rows."""
    x_val, z_val, zt_val = validation
    x_kd = np.concatenate([x, x_unlabelled])
    truth = np.concatenate([z, np.full((x_unlabelled.shape[0], z.shape[1]), np.nan, np.float32)])
    targets = np.concatenate([truth, np.concatenate([z_teacher, z_teacher_unlabelled])], axis=1)
    return _fit_student(
        name,
        x_kd,
        targets,
        distillation_loss(alpha),
        (x_val, np.concatenate([z_val, zt_val], axis=1)),
        normalisation,
        config,
        initial,
    )


def train_pair(name, x, z, z_teacher, x_aug, z_teacher_aug, validation, normalisation, config) -> dict:
    """Baseline (truth only) and distilled (α = ``config.alpha``) students of one stratum (or the global one):
    {"baseline", "kd"}. ``validation`` is (x, z, ẑ_teacher) of the stratum's validation rows."""
    x_val, z_val, _ = validation
    return {
        "baseline": _fit_student(f"{name}_baseline", x, z, "mse", (x_val, z_val), normalisation, config),
        "kd": _fit_kd(name, x, z, z_teacher, x_aug, z_teacher_aug, validation, normalisation, config, config.alpha),
    }


def train_class_students(
    name, labelled, unlabelled, validation, normalisation, config, teacher_z, initial: dict | None = None
) -> dict:
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
    baseline = _fit_student(
        f"{name}_baseline", x, z, "mse", (x_val, z_val), normalisation, config, initial.get("baseline")
    )
    candidates = {}
    for alpha in config.alphas:
        # α = 1 is the student alone: the truth-only objective the baseline was just trained with
        model = (
            baseline
            if alpha == 1.0
            else _fit_kd(
                name,
                x,
                z,
                zt,
                unlabelled,
                zt_unl,
                (x_val, z_val, zt_val),
                normalisation,
                config,
                alpha,
                initial.get("kd"),
            )
        )
        candidates[alpha] = (float(np.mean(np.abs(predict(model, x_val)[:, 0] - y_val[:, 0]))), model)
    alpha = min(candidates, key=lambda a: candidates[a][0])
    log.info(
        "class %s: %d labelled, %d teacher-only rows; alpha %.2f (validation LST MAE %s K)",
        name,
        len(x),
        len(unlabelled),
        alpha,
        ", ".join(f"{a:g}: {m:.3f}" for a, (m, _) in candidates.items()),
    )
    return {
        "baseline": baseline,
        "kd": candidates[alpha][1],
        "alpha": alpha,
        "validation_lst_mae_by_alpha": {str(a): m for a, (m, _) in candidates.items()},
        "n_labelled": int(len(x)),
        "n_unlabelled": int(len(unlabelled)),
    }


def local_predictions(local_models, global_models, kind: str, x, local) -> np.ndarray:
    """Predictions of each row's local student (class or stratum; the global one where it has none)."""
    pred = predict(global_models[kind], x)
    for s, models in enumerate(local_models):
        rows = local == s
        if models is not None and rows.any():
            pred[rows] = predict(models[kind], x[rows])
    return pred
