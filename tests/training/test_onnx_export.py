"""ONNX graphs written from Keras weights reproduce the Keras networks (onnxruntime vs Keras)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from akkd_scale.errors import ParameterError
from akkd_scale.training.onnx_export import INPUT_NAME, keras_to_onnx


def _randomised(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "Dense":
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 1 / np.sqrt(kernel.shape[0]), kernel.shape).astype(np.float32),
                               rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    return model


def _norm():
    return {"input_mean": [290, 291, 292, 293, 294, 4.0], "input_variance": [100, 90, 80, 120, 110, 9.0],
            "output_mean": [300.0, 0.95, 0.95, 0.95, 0.97, 0.97], "output_scale": [10.0] + [0.15] * 5}


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
@pytest.mark.parametrize("hidden", [(32, 32), (64, 48, 40)])
def test_onnx_matches_keras(hidden):
    from akkd_scale.training.students import build_network, predict

    _, model = build_network(hidden, _norm(), name="net")
    model = _randomised(model, len(hidden))
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(260, 330, (4000, 5)), rng.uniform(0, 10, 4000)]).astype(np.float32)
    session = ort.InferenceSession(keras_to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {INPUT_NAME: x})[0]
    keras_out = predict(model, x)
    assert onnx_out.shape == (4000, 6)
    assert np.std(keras_out[:, 0]) > 1.0  # a non-trivial function
    np.testing.assert_allclose(onnx_out[:, 0], keras_out[:, 0], atol=1e-3)         # K
    np.testing.assert_allclose(onnx_out[:, 1:], keras_out[:, 1:], atol=1e-4)        # emissivity
    np.testing.assert_allclose((onnx_out - keras_out) / np.asarray(_norm()["output_scale"]), 0, atol=1e-4)


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_relu_layers_and_unsupported_layers():
    import keras
    from akkd_scale.training.students import predict

    inputs = keras.Input((6,))
    h = keras.layers.Dense(8)(inputs)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Dropout(0.3)(h)
    model = _randomised(keras.Model(inputs, keras.layers.Dense(6)(h)), 1)
    x = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    session = ort.InferenceSession(keras_to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {INPUT_NAME: x})[0], predict(model, x), atol=1e-5)

    bad = keras.Model(inputs, keras.layers.Dense(6, activation="tanh")(inputs))
    with pytest.raises(ParameterError, match="activation: Dense layer .* has activation 'tanh'"):
        keras_to_onnx(bad)
    bn = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Dense(6)(inputs)))
    with pytest.raises(ParameterError, match="layer batch_normalization of type BatchNormalization cannot be exported"):
        keras_to_onnx(bn)
