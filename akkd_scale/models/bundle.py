"""Model bundle: one directory with every network, the strata, fusion weights and a checked manifest.

Layout::

    manifest.json            format/version, input/output spec, normalisation, strata, fusion,
                             distillation settings, provenance, metrics, sha256 of every other file
    teacher.onnx, teacher.keras
    students/global.{onnx,keras}, students/global_baseline.{onnx,keras}
    students/<stratum>.{onnx,keras}, students/<stratum>_baseline.{onnx,keras}

``load_bundle`` verifies every file against its sha256 before anything runs and refuses missing or
altered files and unlisted model files (other unlisted files, e.g. an evaluation report written
next to the models, are never read and only logged). Loading needs only onnxruntime: this module imports Keras solely inside
``load_keras_model`` (``safe_mode=True``). Bundles are written by ``akkd_scale.training.bundle_writer``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path

import onnx

from ..conventions import BANDS, INPUT_NAMES, N_FEATURES, N_TARGETS, OUTPUT_NAMES
from ..errors import BundleError, BundleIntegrityError, describe_path
from ..utils import sha256_file
from .inference import Bundle

log = logging.getLogger(__name__)

FORMAT = "akkd_scale.bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_SUFFIXES = (".onnx", ".keras")   # unlisted files with these suffixes are refused
DEFAULT_BUNDLE_ENV = "AKKD_BUNDLE"


def default_bundle_path() -> Path:
    """The bundle used when none is given: ``$AKKD_BUNDLE`` or ``akkd_scale/data/default_bundle``."""
    value = os.environ.get(DEFAULT_BUNDLE_ENV)
    return Path(value).expanduser() if value else Path(__file__).resolve().parents[1] / "data" / "default_bundle"


def _read_manifest(path: Path) -> tuple[dict, str]:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{describe_path(manifest_path)}: missing (not a model bundle directory)")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{describe_path(manifest_path)}: not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{describe_path(manifest_path)}: format {manifest.get('format')!r} version "
                          f"{manifest.get('format_version')!r} (expected {FORMAT!r} version {FORMAT_VERSION})")
    return manifest, hashlib.sha256(raw).hexdigest()


def _check_spec(path: Path, manifest: dict) -> None:
    """Refuse bundles whose input/output spec differs from what this code feeds and reads."""
    inputs, outputs = manifest.get("inputs", {}), manifest.get("outputs", {})
    if tuple(inputs.get("bands", ())) != BANDS or tuple(inputs.get("names", ())) != INPUT_NAMES:
        raise BundleError(f"{describe_path(path / MANIFEST)}: inputs {inputs.get('names')} "
                          f"(expected {list(INPUT_NAMES)} with bands {list(BANDS)})")
    if tuple(outputs.get("names", ())) != OUTPUT_NAMES:
        raise BundleError(f"{describe_path(path / MANIFEST)}: outputs {outputs.get('names')} "
                          f"(expected {list(OUTPUT_NAMES)})")


def _check_onnx_shapes(path: Path, relative: str) -> None:
    """An ONNX file must map (N, N_FEATURES) inputs to (N, N_TARGETS) outputs."""
    model = onnx.load(str(path / relative))
    dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    if len(model.graph.input) != 1 or dims[0][-1:] != [N_FEATURES] or dims[1][-1:] != [N_TARGETS]:
        raise BundleError(f"{describe_path(path / relative)}: ONNX input/output shapes {dims} "
                          f"(expected one input (N, {N_FEATURES}) and output (N, {N_TARGETS}))")


def _onnx_files(manifest: dict) -> list[str]:
    models = manifest["models"]
    names = [models["teacher"]["onnx"]]
    students = models["students"]
    names += [students["global"][k]["onnx"] for k in ("kd", "baseline")]
    names += [e[k]["onnx"] for e in students["strata"] for k in ("kd", "baseline") if e.get(k)]
    return names


def verify_bundle(path) -> tuple[dict, str]:
    """Manifest and its sha256 after checking every file; raises BundleError/BundleIntegrityError."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{describe_path(path)}: bundle directory does not exist")
    manifest, digest = _read_manifest(path)
    _check_spec(path, manifest)
    recorded = manifest.get("files", {})
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST}
    for relative in sorted(set(recorded) - present):
        raise BundleIntegrityError(f"{describe_path(path / relative)}: listed in the manifest but missing")
    for relative in sorted(present - set(recorded)):
        if Path(relative).suffix in MODEL_SUFFIXES:
            raise BundleIntegrityError(f"{describe_path(path / relative)}: not listed in the manifest "
                                       "(unexpected model file in bundle)")
        log.warning("%s: not listed in the bundle manifest; ignored", path / relative)
    for relative, expected in recorded.items():
        actual = sha256_file(path / relative)
        if actual != expected:
            raise BundleIntegrityError(f"{describe_path(path / relative)}: sha256 {actual} does not match "
                                       f"the manifest ({expected}); file altered or corrupted")
    for relative in _onnx_files(manifest):
        if relative not in recorded:
            raise BundleIntegrityError(f"{describe_path(path / relative)}: model not covered by a sha256")
        _check_onnx_shapes(path, relative)
    return manifest, digest


def load_bundle(path, *, threads: int = 1, slab_rows: int = 65536) -> Bundle:
    """Verified ``Bundle`` for inference (onnxruntime with ``threads`` intra-op threads)."""
    manifest, digest = verify_bundle(path)
    log.debug("loaded bundle %s sha256=%s", path, digest)
    return Bundle(Path(path).resolve(), manifest, digest, threads=threads, slab_rows=slab_rows)


@functools.lru_cache(maxsize=8)
def load_bundle_cached(path: str, sha256: str, threads: int = 1, slab_rows: int = 65536) -> Bundle:
    """``load_bundle`` once per process for a (path, manifest sha256); refuses a bundle that changed."""
    bundle = load_bundle(path, threads=threads, slab_rows=slab_rows)
    if bundle.sha256 != sha256:
        raise BundleIntegrityError(f"{describe_path(Path(path) / MANIFEST)}: sha256 {bundle.sha256} differs "
                                   f"from the expected {sha256} (bundle replaced since the task was built)")
    return bundle


def load_keras_model(bundle: Bundle, relative: str):
    """A bundle's Keras network (e.g. ``teacher.keras``), loaded with ``safe_mode=True`` (imports Keras)."""
    import keras

    if relative not in bundle.manifest["files"]:
        raise BundleError(f"{describe_path(bundle.path / relative)}: not a file of this bundle")
    actual = sha256_file(bundle.path / relative)
    if actual != bundle.manifest["files"][relative]:
        raise BundleIntegrityError(f"{describe_path(bundle.path / relative)}: sha256 {actual} does not match "
                                   "the manifest; file altered since loading")
    return keras.models.load_model(str(bundle.path / relative), compile=False, safe_mode=True)
