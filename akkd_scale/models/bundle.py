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
``load_keras_model`` (``safe_mode=True``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx

from ..errors import BundleError, BundleIntegrityError, describe_path
from .inference import QC_BITS, Bundle
from .onnx_export import keras_to_onnx, save_onnx

log = logging.getLogger(__name__)

FORMAT = "akkd_scale.bundle"
FORMAT_VERSION = 1
BANDS = ("B10", "B11", "B12", "B13", "B14")
INPUT_NAMES = ("BT10", "BT11", "BT12", "BT13", "BT14", "view_zenith")
INPUT_UNITS = ("K",) * 5 + ("deg",)
OUTPUT_NAMES = ("lst", "emissivity_B10", "emissivity_B11", "emissivity_B12", "emissivity_B13", "emissivity_B14")
OUTPUT_UNITS = ("K",) + ("1",) * 5
MANIFEST = "manifest.json"
MODEL_SUFFIXES = (".onnx", ".keras")   # unlisted files with these suffixes are refused
DEFAULT_BUNDLE_ENV = "AKKD_BUNDLE"


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_domain(x_train: np.ndarray, quantile: float = 0.999) -> dict:
    """Training-input domain for QC: per-feature range and a Mahalanobis-distance threshold.

    The threshold is the ``quantile`` of the squared Mahalanobis distance of the training inputs
    (6 features), so about 0.1 % of training-like pixels are flagged as extrapolation.
    """
    x = np.asarray(x_train, dtype=np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    mean = x.mean(axis=0)
    inv_cov = np.linalg.pinv(np.cov(x, rowvar=False))
    centred = x - mean
    distance2 = np.einsum("ij,jk,ik->i", centred, inv_cov, centred)
    return {"range_min": x.min(axis=0).tolist(), "range_max": x.max(axis=0).tolist(),
            "mahalanobis": {"mean": mean.tolist(), "inverse_covariance": inv_cov.tolist(),
                            "threshold": float(np.quantile(distance2, quantile)), "quantile": quantile}}


def _write_network(model, directory: Path, stem: str) -> dict:
    """Save a Keras network as ``stem.keras`` and ``stem.onnx`` under ``directory``; relative names."""
    target = directory / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(target.with_suffix(".keras")))
    save_onnx(keras_to_onnx(model), target.with_suffix(".onnx"))
    return {"onnx": f"{stem}.onnx", "keras": f"{stem}.keras"}


def save_bundle(path, *, teacher, students: dict, strata: dict, normalisation: dict, domain: dict,
                fusion: dict, distillation: dict, provenance: dict, metrics: dict, teacher_info: dict,
                overwrite: bool = False) -> Path:
    """Write a bundle directory at ``path`` and return it.

    ``students`` = {"global": {"kd": model, "baseline": model}, "strata": [{"kd": m, "baseline": m}
    or None per stratum]} (None: the stratum uses the global students). Written to a temporary
    directory next to ``path`` and renamed, so a bundle is never half-written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise BundleError(f"{describe_path(path)}: bundle already exists (pass overwrite=True to replace it)")
    from .strata import stratum_names

    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        teacher_files = _write_network(teacher, work, "teacher")
        student_entries = {"global": {"kd": _write_network(students["global"]["kd"], work, "students/global"),
                                      "baseline": _write_network(students["global"]["baseline"], work,
                                                                 "students/global_baseline")},
                           "strata": []}
        for name, local in zip(stratum_names(strata), students["strata"]):
            entry = {"name": name, "kd": None, "baseline": None}
            if local is not None:
                entry["kd"] = _write_network(local["kd"], work, f"students/{name}")
                entry["baseline"] = _write_network(local["baseline"], work, f"students/{name}_baseline")
            student_entries["strata"].append(entry)
        files = {p.relative_to(work).as_posix(): sha256_file(p) for p in sorted(work.rglob("*")) if p.is_file()}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": {"names": list(INPUT_NAMES), "bands": list(BANDS), "units": list(INPUT_UNITS), **domain},
            "outputs": {"names": list(OUTPUT_NAMES), "units": list(OUTPUT_UNITS)},
            "normalisation": normalisation,
            "strata": strata,
            "models": {"teacher": {**teacher_files, **teacher_info}, "students": student_entries},
            "distillation": distillation,
            "fusion": fusion,
            "qc_bits": QC_BITS,
            "provenance": provenance,
            "metrics": metrics,
            "files": files,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=False))
        if path.exists():
            shutil.rmtree(path)
        os.replace(work, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("wrote bundle %s (%d files)", path, len(files) + 1)
    return path


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
    """An ONNX file must map (N, 6) inputs to (N, 6) outputs."""
    model = onnx.load(str(path / relative))
    dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    if len(model.graph.input) != 1 or dims[0][-1:] != [6] or dims[1][-1:] != [6]:
        raise BundleError(f"{describe_path(path / relative)}: ONNX input/output shapes {dims} "
                          "(expected one input (N, 6) and output (N, 6))")


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
