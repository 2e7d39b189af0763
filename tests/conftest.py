"""Shared fixtures: the data directory (../shared/data unless AKKD_DATA_DIR says otherwise), the test bundles
(random weights for the runtime, a trained tiny one for accuracy), a Dask compute counter."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import dask
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("AKKD_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))


QUICK_LOOP_GUARD = REPO / "tests" / "quick_loop_guard"


def pytest_configure(config):
    """``-m "not slow"`` (the quick loop) runs without TensorFlow, in this process and in every process it starts:
    the guard's ``sitecustomize`` refuses those imports wherever PYTHONPATH reaches."""
    if " ".join(config.option.markexpr.split()) != "not slow":
        return
    os.environ["AKKD_QUICK_LOOP_NO_TENSORFLOW"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(QUICK_LOOP_GUARD), os.environ.get("PYTHONPATH")]))
    import importlib.util  # the same guard in this process

    spec = importlib.util.spec_from_file_location("akkd_quick_loop_guard", QUICK_LOOP_GUARD / "sitecustomize.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {"tensorflow", "keras", "autokeras"})
    if loaded:
        raise pytest.UsageError(f"TensorFlow already imported before the quick loop started: {loaded[:3]}")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["AKKD_DATA_DIR"])
    if not path.is_dir():
        pytest.fail(f"AKKD_DATA_DIR={path} does not exist: tests need the shared data directory")
    return path


class ComputeCounter(dask.callbacks.Callback):
    """Counts Dask graph executions on local schedulers: proves what stays lazy."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


@pytest.fixture
def compute_counter() -> ComputeCounter:
    """A fresh compute counter; use as ``with compute_counter as counter:``."""
    return ComputeCounter()


def _bundle_source_key() -> str:
    """Hash of the code that trains the tiny bundle: the cached bundle is rebuilt when it changes."""
    digest = hashlib.sha256((REPO / "akkd_scale" / "conventions.py").read_bytes())
    for package in ("models", "training", "simulate", "sensors"):
        for path in sorted((REPO / "akkd_scale" / package).glob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory) -> Path:
    """A valid format-2 bundle with fixed random weights (``write_random_bundle``: the trained tiny bundle's
    structure, ONNX only), written in-process without Keras or TensorFlow: for every test that needs a bundle
    but not a trained one (retrieval, pipeline, export, reliability, bundle checks)."""
    from akkd_scale.training.random_bundle import write_random_bundle

    return write_random_bundle(tmp_path_factory.mktemp("bundle") / "random", seed=0)


@pytest.fixture(scope="session")
def tiny_bundle_path(bundle_path):
    """The session's random-weight bundle (alias used by the model tests)."""
    return bundle_path


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_path):
    from akkd_scale.models.bundle import load_bundle

    return load_bundle(tiny_bundle_path)


@pytest.fixture(scope="session")
def trained_bundle_path() -> Path:
    """A tiny trained bundle from ``make_test_bundle`` (train_suite on a synthetic set, with its ``.keras``
    files), built once per code version in a subprocess, so TensorFlow never enters the test process or the Dask
    workers. Only for tests of trained accuracy or of the Keras files: they are ``slow`` (SLOW_FIXTURES)."""
    from akkd_scale.config import cache_dir

    path = cache_dir() / "test-bundles" / f"tiny-{_bundle_source_key()}"
    if not (path / "manifest.json").is_file():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
               "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", "import sys; from akkd_scale.training.tiny_bundle import "
                        "make_test_bundle; make_test_bundle(sys.argv[1])", str(path)],
                       check=True, env=env, cwd=REPO, capture_output=True, timeout=300)
    return path


@pytest.fixture(scope="session")
def trained_bundle(trained_bundle_path):
    from akkd_scale.models.bundle import load_bundle

    return load_bundle(trained_bundle_path)


@pytest.fixture(scope="session")
def synthetic_set():
    from akkd_scale.simulate.synthetic import synthetic_training_set

    return synthetic_training_set(600, seed=11)


#: Fixtures that make a test long: a LocalCluster, the whole demo, or the trained bundle (training, once per code
#: version).
SLOW_FIXTURES = {"client", "demo_run", "trained_bundle_path"}


def pytest_collection_modifyitems(items):
    """Tests on a real cluster, the demo or the trained bundle are ``slow``; ``pytest -m "not slow"`` is the
    quick loop."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
