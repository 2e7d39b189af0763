"""A bundle's Keras networks (the ``.keras`` files beside each ONNX file), for fine-tuning and experiments.

Retrieval never needs them: it runs the ONNX files. Imports Keras inside :func:`load_keras_model` only.
"""
from __future__ import annotations

from ..errors import BundleError, BundleIntegrityError, describe_path
from ..models.bundle import Bundle
from ..utils import sha256_file


def load_keras_model(bundle: Bundle, relative: str):
    """A bundle's Keras network (e.g. ``teacher.keras``), loaded with ``safe_mode=True`` (imports Keras)."""
    import keras

    if relative not in bundle.manifest["files"]:
        raise BundleError(f"{describe_path(bundle.path / relative)}: not a file of this bundle")
    actual = sha256_file(bundle.path / relative)
    if actual != bundle.manifest["files"][relative]:
        raise BundleIntegrityError(f"{describe_path(bundle.path / relative)}: sha256 {actual} does not match "
                                   "the manifest; file altered since loading")
    try:
        return keras.models.load_model(str(bundle.path / relative), compile=False, safe_mode=True)
    except Exception as exc:  # the sha256 matched: whatever Keras raises, the file itself is unreadable
        raise BundleError(f"{describe_path(bundle.path / relative)}: not a readable Keras model "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from exc
