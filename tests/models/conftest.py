"""Fixtures for the model tests: one tiny real bundle per test session and small synthetic data."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_bundle_path(bundle_path):
    """The session's tiny real bundle (``tests/conftest.py``: train_suite on a synthetic set)."""
    return bundle_path


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_path):
    from akkd_scale.models.bundle import load_bundle

    return load_bundle(tiny_bundle_path)


@pytest.fixture(scope="session")
def synthetic_set():
    from akkd_scale.testing.trainingsets import synthetic_training_set

    return synthetic_training_set(600, seed=11)
