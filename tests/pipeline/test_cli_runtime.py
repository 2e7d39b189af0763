"""`akkd-scale run` as users start it: argument errors before any cluster, quiet logs, and a retrieval
runtime that never imports the training stack or the LOWTRAN build (checked in fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from akkd_scale.cli import main

TRAINING_MODULES = (
    "tensorflow",
    "keras",
    "autokeras",
    "keras_tuner",
    "akkd_lowtran7",
    "akkd_scale.training",
    "akkd_scale.physics.lowtran",
    "akkd_scale.physics.atmosphere",
    "akkd_scale.simulate",
)


@pytest.fixture
def no_cluster(monkeypatch):
    """Any attempt to start or connect to a cluster fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr("akkd_scale.pipeline.cluster.get_client", refuse)
    monkeypatch.setattr("akkd_scale.pipeline.get_client", refuse, raising=False)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--heads", "nonsense"], "Invalid value for '--heads': unknown heads ['nonsense'] (expected one or more of"),
        (["--heads", "fusion,fusion"], "Invalid value for '--heads': repeated heads in fusion,fusion"),
        (
            ["--heads", "tes,fusion", "--atmosphere", "tropical"],
            "Invalid value for '--heads': 'tes' cannot be the first",
        ),
        (["--heads", "fusion,tes"], "Invalid value for '--atmosphere': the 'tes' head needs atmospheric terms"),
        (
            ["--atmosphere", "tropical"],
            "Invalid value for '--atmosphere': atmosphere 'tropical' given but no 'tes' head",
        ),
        (
            ["--heads", "fusion,tes", "--atmosphere", "mars"],
            "Invalid value for '--atmosphere': unknown atmosphere 'mars'",
        ),
        (
            ["--scheduler", "http://host:8786/status"],
            "Invalid value for '--scheduler': 'http://host:8786/status' (expected tcp://host:port or host:port)",
        ),
        (
            ["--scheduler", "tcp://host:8786", "--workers", "2"],
            "Invalid value for '--workers': applies only to the local",
        ),
        (
            ["--executor", "threads", "--workers", "2"],
            "Invalid value for '--executor': 'threads' runs without a cluster",
        ),
        (["--chunks", "0"], "Invalid value for '--chunks': '0' (expected 'auto' or a whole number of pixels >= 1)"),
        (["--workers", "0"], "Invalid value for '--workers': 0 is not in the range x>=1"),
    ],
)
def test_argument_errors_exit_2_before_any_cluster(options, message, scenes, tmp_path, no_cluster):
    result = CliRunner().invoke(main, ["run", str(scenes["good_a"]), "--out", str(tmp_path / "o.zarr"), *options])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "o.zarr").exists()


def _run_script(body: str) -> dict:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_full_run_with_every_head_imports_no_training_stack(scenes, bundle_path, tmp_path):
    """Client process and workers after a complete `akkd-scale run --heads fusion,teacher,student,tes`."""
    report = _run_script(f"""
        import json, sys
        from distributed import Client, LocalCluster
        from akkd_scale.cli import main
        from akkd_scale.pipeline import group_status, scene_group

        TRAINING = {TRAINING_MODULES!r}
        def heavy():
            return sorted(m for m in sys.modules if m.startswith(TRAINING))

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                try:
                    main(["run", {str(scenes["good_a"])!r}, "--out", {str(tmp_path / "r.zarr")!r}, "--bundle",
                          {str(bundle_path)!r}, "--heads", "fusion,teacher,student,tes", "--atmosphere",
                          "midlatitude_summer", "--scheduler", cluster.scheduler_address, "--chunks", "24"])
                except SystemExit as exc:
                    assert not exc.code, exc.code
                workers = client.run(heavy)
        status = group_status({str(tmp_path / "r.zarr")!r}, scene_group({str(scenes["good_a"])!r}))
        print(json.dumps({{"status": status, "client": heavy(), "workers": sorted(workers.values())}}))
    """)
    assert report["status"] == "complete"
    assert report["client"] == [] and report["workers"] == [[]], report


@pytest.mark.slow
def test_default_output_has_no_dependency_info_logs(scenes, bundle_path, tmp_path):
    command = [
        sys.executable,
        "-m",
        "akkd_scale.cli",
        "run",
        str(scenes["good_a"]),
        "--out",
        str(tmp_path / "q.zarr"),
        "--bundle",
        str(bundle_path),
        "--workers",
        "1",
        "--dashboard-address",
        "",
    ]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "1 complete" in quiet.stdout
    noisy = [line for line in quiet.stderr.splitlines() if "INFO" in line and "akkd_scale" not in line]
    assert not noisy, noisy
    verbose = subprocess.run(
        command[:3] + ["-v"] + command[3:] + ["--overwrite"], capture_output=True, text=True, timeout=300
    )
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert any("INFO" in line and "distributed" in line for line in verbose.stderr.splitlines()), verbose.stderr


def test_cuda_without_a_gpu_provider_is_a_clear_error_before_any_cluster(scenes, tmp_path, no_cluster):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has onnxruntime's CUDA provider")
    result = CliRunner().invoke(
        main, ["run", str(scenes["good_a"]), "--out", str(tmp_path / "g.zarr"), "--device", "cuda"]
    )
    assert result.exit_code == 1
    assert "device: CUDA requested but this onnxruntime offers only" in result.output
    assert "onnxruntime-gpu with a visible NVIDIA GPU" in result.output and not (tmp_path / "g.zarr").exists()
