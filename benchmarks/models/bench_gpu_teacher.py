"""The teacher on a GPU against that GPU's GEMM rate, and against onnxruntime on every CPU core of the
same machine. Needs only numpy, onnx, onnxruntime and torch (no akkd_scale install), so it runs on a
bare GPU machine; the teacher's weights are read from the bundle's ONNX file.

    python benchmarks/models/bench_gpu_teacher.py [akkd_scale/data/default_bundle/teacher.onnx] [--pixels 16777216]

This measures what the CUDA path can reach (fp32, as onnxruntime's CUDA provider runs the model): the
product's `--device cuda` runs the same graph through onnxruntime-gpu, which this script does not need.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnx
from onnx import numpy_helper


def layers(path: str) -> list[tuple]:
    """The teacher as (op, arrays…) in graph order: Sub/Div (normalisation), Gemm, Relu, Mul/Add."""
    model = onnx.load(path)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [(node.op_type, [weights.get(name) for name in node.input]) for node in model.graph.node]


def torch_forward(ops, x):
    import torch

    for op, args in ops:
        if op == "Gemm":
            x = torch.addmm(args[2], x, args[1])
        elif op == "Relu":
            x = torch.relu(x)
        elif op in ("Sub", "Div", "Mul", "Add"):
            x = {"Sub": torch.sub, "Div": torch.div, "Mul": torch.mul, "Add": torch.add}[op](x, args[1])
    return x


def main() -> None:
    import onnxruntime as ort
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("onnx", nargs="?", default="akkd_scale/data/default_bundle/teacher.onnx")
    parser.add_argument("--pixels", type=int, default=4096 * 4096)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as onnxruntime runs the model
    device = torch.device("cuda")
    ops = layers(args.onnx)
    flops = sum(2.0 * a[1].size for op, a in ops if op == "Gemm")
    gpu_ops = [(op, [torch.as_tensor(a, device=device) if a is not None else None for a in arr]) for op, arr in ops]
    rng = np.random.default_rng(0)
    x = rng.uniform(250, 320, (args.pixels, 6)).astype(np.float32)
    x[:, 5] = 5.0
    xg = torch.as_tensor(x, device=device)

    def timed(fn, repeat=5):
        fn()
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return best

    width = max(a[1].shape[1] for op, a in ops if op == "Gemm")
    a = torch.randn(args.pixels, width, device=device)
    b = torch.randn(width, width, device=device)
    gemm = 2.0 * args.pixels * width * width / timed(lambda: a @ b) / 1e12
    big = torch.randn(8192, 8192, device=device)
    gemm_big = 2.0 * 8192**3 / timed(lambda: big @ big) / 1e12
    gpu_seconds = timed(lambda: torch_forward(gpu_ops, xg))
    transfer = timed(lambda: torch_forward(gpu_ops, torch.as_tensor(x).to(device)).cpu())
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    session = ort.InferenceSession(args.onnx, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    cpu_pixels = min(args.pixels, 2**21)
    session.run(None, {name: x[:8192]})
    t0 = time.perf_counter()
    for i in range(0, cpu_pixels, 65536):
        session.run(None, {name: x[i : i + 65536]})
    cpu_rate = cpu_pixels / (time.perf_counter() - t0)
    ref = session.run(None, {name: x[:65536]})[0]
    got = torch_forward(gpu_ops, xg[:65536]).cpu().numpy()
    print(f"GPU {torch.cuda.get_device_name()}; teacher {flops / 1e6:.3f} MFLOP/pixel, {args.pixels} pixels")
    print(
        f"fp32 GEMM rate: {gemm:.1f} TFLOP/s at the teacher's shape ({args.pixels} x {width} x {width}), "
        f"{gemm_big:.1f} TFLOP/s at 8192^3"
    )
    print(
        f"teacher on GPU (data resident): {args.pixels / gpu_seconds / 1e6:.1f} Mpx/s = "
        f"{args.pixels * flops / gpu_seconds / 1e12:.1f} TFLOP/s = "
        f"{args.pixels * flops / gpu_seconds / 1e12 / gemm:.2f} of the GEMM rate at its shape"
    )
    print(f"teacher on GPU with host<->device copies: {args.pixels / transfer / 1e6:.1f} Mpx/s")
    print(
        f"teacher on CPU, onnxruntime, {os.cpu_count()} threads: {cpu_rate / 1e6:.2f} Mpx/s; "
        f"GPU / CPU = {args.pixels / transfer / cpu_rate:.1f} (with copies)"
    )
    print(
        f"max |GPU - onnxruntime CPU| over 65536 pixels: LST {np.abs(got[:, 0] - ref[:, 0]).max():.2e} K, "
        f"emissivity {np.abs(got[:, 1:] - ref[:, 1:]).max():.2e}"
    )


if __name__ == "__main__":
    main()
