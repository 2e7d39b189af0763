"""Fixtures for the model tests: one tiny real bundle per test session and small synthetic data."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_bundle_path(tmp_path_factory):
    """A bundle trained through train_suite on a synthetic set (about 30 s on two cores)."""
    from akkd_scale.testing.bundles import make_test_bundle

    return make_test_bundle(tmp_path_factory.mktemp("bundle") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_path):
    from akkd_scale.models.bundle import load_bundle

    return load_bundle(tiny_bundle_path)


@pytest.fixture(scope="session")
def synthetic_set():
    from akkd_scale.testing.trainingsets import synthetic_training_set

    return synthetic_training_set(600, seed=11)
