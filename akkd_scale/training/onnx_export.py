"""ONNX graphs built directly from the weights of plain Keras regression networks.

The teacher and the students are chains of Normalization, Dense (linear or ReLU), ReLU and Dropout
layers. Writing the ONNX graph from their weights with ``onnx.helper`` needs no tf2onnx, no
TensorFlow at inference time and gives a graph onnxruntime runs fast. This module never imports
Keras itself: it reads layer class names, configs and weights from the model it is given.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import ParameterError

log = logging.getLogger(__name__)

OPSET = 17
IR_VERSION = 9
INPUT_NAME = "features"
OUTPUT_NAME = "targets"
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): Normalization divides by max(sqrt(variance), epsilon)


def _normalization_arrays(layer) -> tuple[np.ndarray, np.ndarray, bool]:
    """Mean, divisor (max(sqrt(variance), eps)) and the ``invert`` flag of a Keras Normalization layer."""
    mean = np.asarray(layer.mean, dtype=np.float64).reshape(-1)
    variance = np.asarray(layer.variance, dtype=np.float64).reshape(-1)
    divisor = np.maximum(np.sqrt(variance), KERAS_EPSILON)
    return mean.astype(np.float32), divisor.astype(np.float32), bool(layer.get_config().get("invert", False))


def network_layers(model) -> list[tuple]:
    """The model as a list of operations: ("norm", mean, divisor, invert), ("dense", W, b), ("relu",).

    Raises ParameterError for any layer that is not part of a plain Dense/ReLU/Normalization chain, so
    an unexpected architecture fails at export instead of producing a wrong graph.
    """
    ops = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind == "Normalization":
            ops.append(("norm",) + _normalization_arrays(layer))
        elif kind == "Dense":
            kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
            ops.append(("dense", kernel, bias))
            activation = layer.get_config().get("activation", "linear")
            if activation == "relu":
                ops.append(("relu",))
            elif activation != "linear":
                raise ParameterError(
                    model.name,
                    f"Dense layer {layer.name} has activation {activation!r}",
                    variable="activation",
                    expected="'linear' or 'relu'",
                )
        elif kind == "ReLU":
            config = layer.get_config()
            if config.get("max_value") is not None or config.get("negative_slope", 0.0) or config.get("threshold", 0.0):
                raise ParameterError(
                    model.name,
                    f"ReLU layer {layer.name} is not a plain ReLU",
                    variable="layers",
                    expected="max_value=None, negative_slope=0, threshold=0",
                )
            ops.append(("relu",))
        elif kind == "Activation" and layer.get_config().get("activation") == "relu":
            ops.append(("relu",))
        else:
            raise ParameterError(
                model.name,
                f"layer {layer.name} of type {kind} cannot be exported",
                variable="layers",
                expected="InputLayer, Normalization, Dense, ReLU, Dropout",
            )
    return ops


def onnx_from_layers(ops: list[tuple], n_inputs: int, *, name: str = "akkd_network") -> onnx.ModelProto:
    """ONNX model (input ``features`` (N, n_inputs) float32 → output ``targets``) for a list from network_layers."""
    nodes, initializers = [], []
    current = INPUT_NAME
    width = n_inputs
    for index, op in enumerate(ops):
        out = OUTPUT_NAME if index == len(ops) - 1 else f"h{index}"
        if op[0] == "norm":
            _, mean, divisor, invert = op
            m_name, d_name = f"norm{index}_mean", f"norm{index}_scale"
            initializers += [numpy_helper.from_array(mean, m_name), numpy_helper.from_array(divisor, d_name)]
            if invert:
                nodes += [
                    helper.make_node("Mul", [current, d_name], [f"{out}_scaled"]),
                    helper.make_node("Add", [f"{out}_scaled", m_name], [out]),
                ]
            else:
                nodes += [
                    helper.make_node("Sub", [current, m_name], [f"{out}_centred"]),
                    helper.make_node("Div", [f"{out}_centred", d_name], [out]),
                ]
        elif op[0] == "dense":
            _, kernel, bias = op
            if kernel.shape[0] != width:
                raise ParameterError(
                    name,
                    f"Dense layer {index} expects {kernel.shape[0]} inputs, got {width}",
                    variable="kernel",
                    expected=f"{width} rows",
                )
            w_name, b_name = f"dense{index}_kernel", f"dense{index}_bias"
            initializers += [numpy_helper.from_array(kernel, w_name), numpy_helper.from_array(bias, b_name)]
            nodes.append(helper.make_node("Gemm", [current, w_name, b_name], [out]))
            width = kernel.shape[1]
        else:
            nodes.append(helper.make_node("Relu", [current], [out]))
        current = out
    if not ops:
        raise ParameterError(name, "network has no layers", variable="layers", expected="at least one Dense layer")
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_inputs])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", width])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="akkd_scale")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def keras_to_onnx(model) -> onnx.ModelProto:
    """ONNX model equivalent to a plain Keras Dense/ReLU/Normalization network (see network_layers)."""
    n_inputs = int(model.inputs[0].shape[-1])
    return onnx_from_layers(network_layers(model), n_inputs, name=model.name)


def save_onnx(model_proto: onnx.ModelProto, path) -> None:
    """Write an ONNX model to ``path`` (one file, weights embedded)."""
    onnx.save_model(model_proto, str(path))
    log.debug("wrote ONNX model %s", path)
