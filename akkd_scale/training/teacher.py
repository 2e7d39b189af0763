"""Teacher: an AutoKeras 3 architecture search over a constrained, genuinely large Dense space.

The search runs ``ak.AutoModel(ak.Input() → ak.DenseBlock → ak.RegressionHead)`` on standardised
inputs and scaled targets z (see ``data.target_normalisation``) with MSE, so an ε error of
0.015 counts like a 1 K LST error. The DenseBlock space is constrained (default 3–5 layers of 256 or
512 units, no batch normalisation, no dropout) because few trials of the unconstrained space return
tiny nets. Budget: ``max_trials``, ``epochs`` per trial, a wall-clock ``time_limit_s`` (a callback stops
training in every trial once it is exceeded) and early stopping. The search directory is explicit and
overwritten, never silently resumed.

The search trains every trial at one learning rate; the best architecture is then refined from its searched
weights with the schedule the students get (Adam, learning rate halved on plateaus, early stopping;
``refine_epochs``), kept only if the validation loss improves — the same model family as the
fixed-architecture baseline (:func:`train_baseline`, 4×256, trained with that schedule), which a search that
stops at one learning rate lost to (issue: 0.674 K against 0.618 K).

The best model is rebuilt as a plain Keras model (``students.build_network``: normalisation layers
inside, no AutoKeras layers such as CastToFloat32), so it loads with ``safe_mode=True`` without
importing autokeras and exports to ONNX.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from ..errors import BuildError, ParameterError
from .students import FitConfig, build_network, fit_network

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherConfig:
    """AutoKeras search space and budget."""

    max_trials: int = 10
    epochs: int = 200
    time_limit_s: float = 3 * 3600.0
    num_layers: tuple[int, ...] = (3, 4, 5)
    num_units: tuple[int, ...] = (256, 512)
    batch_size: int = 512
    patience: int = 15
    tuner: str = "greedy"
    refine_epochs: int = 60
    refine_learning_rate: float = 1e-3


#: The fixed-architecture reference every teacher must beat (evaluation table, ``baseline_mlp``).
BASELINE_HIDDEN = (256, 256, 256, 256)


class _Deadline(keras.callbacks.Callback):
    """Stops training (this and every later trial) once the search's wall-clock budget is spent."""

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() > self.deadline:
            self.model.stop_training = True


def _dense_stack(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) of the Dense layers of an AutoKeras DenseBlock + RegressionHead model, in order.

    Refuses layers that would change the function between Dense layers (batch normalisation,
    other activations), so the rebuilt model computes what the searched one computes.
    """
    stack = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            if layer.get_config().get("activation", "linear") != "linear":
                raise ParameterError(
                    model.name,
                    f"Dense layer {layer.name} has a built-in activation",
                    variable="activation",
                    expected="linear Dense followed by ReLU",
                )
            stack.append(tuple(np.asarray(w, np.float32) for w in layer.get_weights()))
        elif kind not in ("InputLayer", "CastToFloat32", "ReLU", "Dropout", "Flatten"):
            raise ParameterError(
                model.name,
                f"searched model has a {kind} layer ({layer.name})",
                variable="layers",
                expected="Dense/ReLU/Dropout only",
            )
    return stack


def _rebuild_error(searched, rebuilt, x_standardised, normalisation: dict) -> float:
    """Largest |z| difference between the AutoKeras model and the rebuilt plain model; BuildError if > 1e-3."""
    z_searched = keras.ops.convert_to_numpy(searched(x_standardised, training=False))
    mean = np.asarray(normalisation["input_mean"], np.float32)
    std = np.sqrt(np.asarray(normalisation["input_variance"], np.float32))
    y = keras.ops.convert_to_numpy(rebuilt(x_standardised * std + mean, training=False))
    z_rebuilt = (y - np.asarray(normalisation["output_mean"])) / np.asarray(normalisation["output_scale"])
    error = float(np.max(np.abs(z_rebuilt - z_searched))) if len(x_standardised) else 0.0
    if not error <= 1e-3:
        raise BuildError(f"teacher rebuild differs from the searched AutoKeras model by {error:.3g} (scaled units)")
    return error


def search_teacher(
    x_train,
    z_train,
    x_val,
    z_val,
    normalisation: dict,
    *,
    directory,
    config: TeacherConfig,
    seed: int = 0,
    name: str = "teacher",
) -> tuple[keras.Model, dict]:
    """AutoKeras search on (x → z); returns (plain Keras teacher with physical outputs, search info).

    ``x_*`` are raw inputs (N, 6); ``z_*`` scaled targets (N, 6); ``normalisation`` as in
    ``data.target_normalisation``. ``directory`` holds the search project (overwritten).
    """
    import autokeras as ak
    from keras_tuner.engine.hyperparameters import Choice

    if config.max_trials < 1 or config.epochs < 1:
        raise ParameterError(
            "TeacherConfig",
            f"max_trials={config.max_trials}, epochs={config.epochs}",
            variable="max_trials/epochs",
            expected=">= 1",
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mean = np.asarray(normalisation["input_mean"], np.float32)
    std = np.sqrt(np.asarray(normalisation["input_variance"], np.float32))

    def standardise(x):
        return (np.asarray(x, np.float32) - mean) / std

    keras.utils.set_random_seed(seed)
    inputs = ak.Input()
    block = ak.DenseBlock(
        num_layers=Choice("num_layers", [int(n) for n in config.num_layers]),
        num_units=Choice("num_units", [int(u) for u in config.num_units]),
        use_batchnorm=False,
        dropout=0.0,
    )
    head = ak.RegressionHead(output_dim=z_train.shape[1], loss="mean_squared_error", metrics=["mae"])
    auto = ak.AutoModel(
        inputs=inputs,
        outputs=head(block(inputs)),
        project_name=name,
        directory=str(directory),
        max_trials=config.max_trials,
        overwrite=True,
        seed=seed,
        tuner=config.tuner,
    )
    start = time.monotonic()
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        _Deadline(start + config.time_limit_s),
    ]
    auto.fit(
        standardise(x_train),
        np.asarray(z_train, np.float32),
        validation_data=(standardise(x_val), np.asarray(z_val, np.float32)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    searched = auto.export_model()
    stack = _dense_stack(searched)
    hidden = [kernel.shape[1] for kernel, _ in stack[:-1]]
    train_model, teacher = build_network(hidden, normalisation, name=name)
    dense = [layer for layer in teacher.layers if type(layer).__name__ == "Dense"]
    for layer, weights in zip(dense, stack):
        layer.set_weights(list(weights))
    rebuild_error = _rebuild_error(searched, teacher, standardise(x_val[:2048]), normalisation)
    searched_seconds = time.monotonic() - start
    refined = _refine(train_model, x_train, z_train, x_val, z_val, config) if config.refine_epochs > 0 else None
    info = {
        "search": "autokeras.AutoModel(DenseBlock, RegressionHead)",
        "hidden_units": hidden,
        "parameters": int(teacher.count_params()),
        "max_trials": config.max_trials,
        "epochs_per_trial": config.epochs,
        "time_limit_s": config.time_limit_s,
        "search_space": {"num_layers": list(config.num_layers), "num_units": list(config.num_units)},
        "search_seconds": round(searched_seconds, 1),
        "rebuild_max_abs_error_z": rebuild_error,
        "refinement": refined,
    }
    log.info(
        "teacher search done: hidden %s (%d parameters) in %.0f s", hidden, info["parameters"], info["search_seconds"]
    )
    return teacher, info


def _val_loss(model: keras.Model, x, z) -> float:
    pred = keras.ops.convert_to_numpy(model.predict(np.asarray(x, np.float32), batch_size=65536, verbose=0))
    return float(np.mean((pred - np.asarray(z, np.float32)) ** 2))


def _refine(train_model: keras.Model, x_train, z_train, x_val, z_val, config: TeacherConfig) -> dict:
    """Continue training the searched teacher with the students' schedule; keep the result only if its
    validation MSE (scaled targets) is lower than the searched weights'."""
    before_weights = train_model.get_weights()
    before = _val_loss(train_model, x_val, z_val)
    start = time.monotonic()
    fit = FitConfig(
        epochs=config.refine_epochs,
        batch_size=config.batch_size,
        learning_rate=config.refine_learning_rate,
        patience=config.patience,
    )
    history = fit_network(
        train_model, x_train, z_train, loss="mean_squared_error", validation=(x_val, z_val), config=fit
    )
    after = _val_loss(train_model, x_val, z_val)
    kept = after < before
    if not kept:
        train_model.set_weights(before_weights)
    log.info("teacher refinement: validation MSE %.4g → %.4g (%s)", before, after, "kept" if kept else "discarded")
    return {
        "epochs": len(history["loss"]),
        "learning_rate": config.refine_learning_rate,
        "val_mse_searched": before,
        "val_mse_refined": after,
        "kept": bool(kept),
        "seconds": round(time.monotonic() - start, 1),
    }


def train_baseline(
    x_train, z_train, x_val, z_val, normalisation: dict, *, config: FitConfig, hidden=BASELINE_HIDDEN, seed: int = 0
) -> tuple[keras.Model, dict]:
    """The fixed-architecture reference (default 4×256 ReLU MLP) trained on the teacher's rows with the
    students' schedule; (export model with physical outputs, info)."""
    keras.utils.set_random_seed(seed)
    start = time.monotonic()
    train_model, model = build_network(hidden, normalisation, name="baseline_mlp")
    history = fit_network(
        train_model, x_train, z_train, loss="mean_squared_error", validation=(x_val, z_val), config=config
    )
    info = {
        "hidden_units": list(hidden),
        "parameters": int(model.count_params()),
        "epochs": len(history["loss"]),
        "val_mse": _val_loss(train_model, x_val, z_val),
        "seconds": round(time.monotonic() - start, 1),
    }
    log.info("baseline MLP %s: validation MSE %.4g in %.0f s", list(hidden), info["val_mse"], info["seconds"])
    return model, info
