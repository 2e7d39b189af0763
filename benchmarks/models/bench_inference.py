"""Inference speed of the model suite: onnxruntime (bundle path) vs Keras, for teacher- and student-sized nets.

Prints throughput (Mpx/s) and ratios; nothing is asserted. Run:

    OMP_NUM_THREADS=2 AKKD_DATA_DIR=../shared/data .venv/bin/python benchmarks/models/bench_inference.py [rows]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402


def _best_of(fn, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(rows: int = 200_000, threads: int = 2) -> None:
    from akkd_scale.models.bundle import load_bundle
    from akkd_scale.pipeline.kernel import predict_block
    from akkd_scale.training.onnx_export import INPUT_NAME, keras_to_onnx
    from akkd_scale.training.students import build_network
    from akkd_scale.training.tiny_bundle import make_test_bundle

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(260, 330, (rows, 5)), rng.uniform(0, 10, rows)]).astype(np.float32)
    norm = {
        "input_mean": x.mean(0).tolist(),
        "input_variance": x.var(0).tolist(),
        "output_mean": [300.0] + [0.95] * 5,
        "output_scale": [10.0] + [0.15] * 5,
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    print(f"rows={rows} onnxruntime threads={threads}")
    for label, hidden in (
        ("teacher 6-512x4-6", (512,) * 4),
        ("teacher 6-256x3-6", (256,) * 3),
        ("student 6-32-32-6", (32, 32)),
    ):
        _, model = build_network(hidden, norm, name="bench")
        session = ort.InferenceSession(
            keras_to_onnx(model).SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        t_onnx = _best_of(lambda: [session.run(None, {INPUT_NAME: x[i : i + 65536]}) for i in range(0, rows, 65536)])
        t_keras = _best_of(lambda: model.predict(x, batch_size=65536, verbose=0))
        print(
            f"{label:22s} onnxruntime {rows / t_onnx / 1e6:6.2f} Mpx/s  keras {rows / t_keras / 1e6:6.2f} Mpx/s  "
            f"onnx/keras speed ratio {t_keras / t_onnx:5.2f}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = make_test_bundle(Path(tmp) / "bundle")
        bundle = load_bundle(bundle_dir, threads=threads)
        bt = x[:, :5].T.reshape(5, -1, 1000) if rows % 1000 == 0 else x[:, :5].T[:, :, None]
        for heads in (("student",), ("fusion",), ("fusion", "teacher", "student", "student_baseline")):
            t = _best_of(lambda: predict_block(bt, 5.0, bundle, heads))
            print(f"tiny bundle predict_block heads={','.join(heads):40s} {rows / t / 1e6:6.2f} Mpx/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
