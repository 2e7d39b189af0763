"""Fixtures for the training tests: keep TensorFlow's C++ logging quiet when a test trains."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
