"""A tiny but real model bundle for tests: trained through ``train_suite`` on a synthetic set.

One-trial AutoKeras search of a small Dense space, NDVI input, 2 moisture strata, three land-cover class
students (the synthetic set's classes), short student training: the
same code path as the production recipe, in well under a minute on two cores. Its accuracy is
meaningless; its structure (manifest, sha256, ONNX, strata, fusion) is the real thing. Tests that need only a
valid bundle use ``training.random_bundle`` (the same structure from random weights, no TensorFlow).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..simulate.synthetic import synthetic_training_set


def tiny_suite_config(path, seed: int = 0):
    """The SuiteConfig used by ``make_test_bundle`` (small budgets, 2 strata)."""
    from ..training.recipe import SuiteConfig
    from ..training.students import FitConfig
    from ..training.teacher import TeacherConfig

    return SuiteConfig(
        out=str(path),
        teacher=TeacherConfig(
            max_trials=1,
            epochs=15,
            time_limit_s=40.0,
            num_layers=(2,),
            num_units=(32,),
            batch_size=128,
            patience=5,
            refine_epochs=5,
        ),
        student=FitConfig(epochs=15, batch_size=128, learning_rate=5e-3, patience=5),
        augment_factor=0.5,
        n_moisture=2,
        n_contrast=1,
        n_view=1,
        min_stratum_samples=200,
        alphas=(0.25, 0.75),
        min_class_samples=100,
        seed=seed,
    )


def make_test_bundle(path, seed: int = 0, n_samples: int = 1500) -> Path:
    """Train and write a tiny bundle at ``path`` (replaced if present); returns the bundle directory.

    Imports TensorFlow (training); call it from a fixture, not from code that must stay TF-free.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..training.recipe import train_suite

    path = Path(path)
    config = tiny_suite_config(path, seed)
    train_suite(synthetic_training_set(n_samples, seed=seed), config)
    return path
