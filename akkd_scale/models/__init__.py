"""AK-KD models: teacher search, distilled local students, fusion, bundles and retrieval.

Importing this package (and ``bundle``, ``inference``, ``retrieve``) never imports TensorFlow; the
training modules (``teacher``, ``students``, ``distill``) do, and are imported explicitly.
"""
from __future__ import annotations

from .bundle import default_bundle_path, load_bundle, save_bundle, verify_bundle
from .inference import HEADS, QC_BITS, Bundle
from .retrieve import predict_block, retrieve
from .strata import assign_strata, fit_strata

__all__ = ["Bundle", "HEADS", "QC_BITS", "assign_strata", "default_bundle_path", "fit_strata", "load_bundle",
           "predict_block", "retrieve", "save_bundle", "verify_bundle"]
