"""A bundle's Keras networks (the ``.keras`` files beside each ONNX file), for fine-tuning and experiments.

Retrieval never needs them: it runs the ONNX files. Imports Keras inside :func:`load_keras_model` only.
"""
from __future__ import annotations

from ..errors import BundleError, BundleIntegrityError, describe_path
from ..models.bundle import Bundle
from ..utils import sha256_file


def load_keras_model(bundle: Bundle, relative: str | None):
    """A bundle's Keras network (e.g. ``teacher.keras``), loaded with ``safe_mode=True`` (imports Keras).

    ``relative`` is the manifest entry's ``"keras"`` path; None (an ONNX-only network) or a listed file that is
    absent (a wheel install: the ``.keras`` files are not in the runtime wheel) is a BundleError."""
    if relative is None:
        raise BundleError(f"{describe_path(bundle.path)}: the bundle has ONNX files only (no .keras network to "
                          "fine-tune); use a bundle written by the training recipe, with its .keras files")
    if relative not in bundle.manifest["files"]:
        raise BundleError(f"{describe_path(bundle.path / relative)}: not a file of this bundle")
    if not (bundle.path / relative).is_file():
        raise BundleError(f"{describe_path(bundle.path / relative)}: missing (the .keras files are not installed "
                          "with the runtime wheel; use the bundle from a source checkout or from make bundle)")
    actual = sha256_file(bundle.path / relative)
    if actual != bundle.manifest["files"][relative]:
        raise BundleIntegrityError(f"{describe_path(bundle.path / relative)}: sha256 {actual} does not match "
                                   "the manifest; file altered since loading")
    import keras

    try:
        return keras.models.load_model(str(bundle.path / relative), compile=False, safe_mode=True)
    except Exception as exc:  # the sha256 matched: whatever Keras raises, the file itself is unreadable
        raise BundleError(f"{describe_path(bundle.path / relative)}: not a readable Keras model "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from exc
