"""akkd_scale: LST and emissivity from thermal-infrared scenes with distilled neural networks (AK-KD).

Top-level API (loaded on first use, so ``import akkd_scale`` stays light and never imports TensorFlow):
``open_aster_l1b``, ``load_bundle``, ``retrieve``, ``run_scenes``. Importing the package registers the
``Dataset.akkd`` accessor and the ``aster_l1b`` xarray engine is registered by the installed entry point.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("akkd-scale")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from .pipeline import accessor as _accessor  # noqa: E402,F401  (registers Dataset.akkd)

_EXPORTS = {
    "open_aster_l1b": "io",
    "load_bundle": "models.bundle",
    "retrieve": "pipeline.graph",
    "run_scenes": "pipeline.runner",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    """Lazy exports (PEP 562)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
