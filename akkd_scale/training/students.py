"""Plain Keras regression networks (students, and the rebuilt teacher) with normalisation inside.

Every network maps the 6 inputs (BT10..BT14 in K, view zenith in deg) to 6 outputs (LST in K,
ε10..ε14). Inside the model: a Normalization layer standardises the inputs with training
mean/variance; the hidden Dense layers use ReLU; a linear Dense layer gives scaled targets z; an
inverted Normalization layer returns physical units, y = mean + scale·z. Training works on z (the
``train`` model shares every layer with the exported one), so the loss weighs LST and emissivity by
the target scales (see ``akkd_scale.training.data.target_normalisation``).

Only built-in Keras layers are used: files load with ``keras.models.load_model(..., safe_mode=True)``
and export to ONNX with ``akkd_scale.training.onnx_export``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np

from ..errors import ParameterError

log = logging.getLogger(__name__)

STUDENT_HIDDEN = (32, 32)


@dataclass(frozen=True)
class FitConfig:
    """Training budget of one network: epochs, batch size, Adam learning rate, early-stopping patience."""

    epochs: int = 300
    batch_size: int = 256
    learning_rate: float = 2e-3
    patience: int = 25


def build_network(hidden, normalisation: dict, *, name: str) -> tuple[keras.Model, keras.Model]:
    """(train model → scaled z, export model → physical outputs) sharing the same layers."""
    if any(int(u) < 1 for u in hidden):
        raise ParameterError(name, f"hidden layer sizes {list(hidden)}", variable="hidden", expected="positive ints")
    n_in = len(normalisation["input_mean"])
    n_out = len(normalisation["output_mean"])
    inputs = keras.Input(shape=(n_in,), name="features")
    h = keras.layers.Normalization(
        mean=normalisation["input_mean"], variance=normalisation["input_variance"], name="input_normalisation"
    )(inputs)
    for index, units in enumerate(hidden):
        h = keras.layers.Dense(int(units), activation="relu", name=f"hidden{index}")(h)
    z = keras.layers.Dense(n_out, name="scaled_targets")(h)
    scale = np.asarray(normalisation["output_scale"], dtype=np.float64)
    y = keras.layers.Normalization(
        mean=normalisation["output_mean"], variance=(scale**2).tolist(), invert=True, name="output_denormalisation"
    )(z)
    return keras.Model(inputs, z, name=f"{name}_train"), keras.Model(inputs, y, name=name)


def fit_network(
    train_model: keras.Model, x, targets, *, loss, validation: tuple, config: FitConfig, callbacks=()
) -> dict:
    """Train ``train_model`` on (x, targets) with Adam and early stopping on the validation loss.

    Restores the best weights; returns the Keras history dict.
    """
    train_model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=max(2, config.patience // 3), min_lr=1e-5
    )
    history = train_model.fit(
        np.asarray(x, np.float32),
        np.asarray(targets, np.float32),
        validation_data=tuple(np.asarray(v, np.float32) for v in validation),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[stop, plateau, *callbacks],
    )
    log.debug(
        "%s: %d epochs, best val_loss %.4g",
        train_model.name,
        len(history.history["loss"]),
        min(history.history["val_loss"]),
    )
    return history.history


def predict(model: keras.Model, x) -> np.ndarray:
    """Model outputs for (N, 6) inputs in large batches (float32)."""
    x = np.asarray(x, np.float32)
    parts = [keras.ops.convert_to_numpy(model(x[i : i + 65536], training=False)) for i in range(0, len(x), 65536)]
    return np.concatenate(parts).astype(np.float32) if parts else np.empty((0, model.outputs[0].shape[-1]), np.float32)
