"""akkd_scale: LST and emissivity from thermal-infrared scenes with distilled neural networks (AK-KD)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("akkd-scale")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
