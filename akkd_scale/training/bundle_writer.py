"""Writing model bundles (the layout that ``akkd_scale.models.bundle`` loads and verifies).

Imports the ONNX exporter and, through the Keras models it is given (if any), Keras: training-side only.
"""
from __future__ import annotations

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

from ..conventions import (BANDS, INPUT_NAMES, INPUT_UNITS, LAND_COVER_CLASSES, NEDT_K, OPTIONAL_INPUTS, OUTPUT_NAMES,
                           OUTPUT_UNITS, QC_BITS)
from ..errors import BundleError, ParameterError, describe_path
from ..models.bundle import digest_line
from ..models.schema import DIGEST, FORMAT, FORMAT_VERSION, MANIFEST
from ..models.strata import stratum_names
from ..utils import sha256_file
from .onnx_export import keras_to_onnx, save_onnx

log = logging.getLogger(__name__)

#: Margin (K) added to the training brightness-temperature extremes for QC bit 2: three times the ASTER
#: NEΔT, the spread sensor noise gives a pixel at the edge of the simulated domain.
BT_MARGIN_K = 3 * NEDT_K


def input_domain(x_train: np.ndarray, *, view_zenith_range=None, bt_margin_k: float = BT_MARGIN_K,
                 quantile: float = 0.999) -> dict:
    """Training domain for QC: per-input bounds of the simulated domain (bit 2) and a Mahalanobis threshold (bit 4).

    View zenith spans ``view_zenith_range``, the simulation's range (deg); by default the sample
    extremes widened to whole degrees, the grid simulation ranges are given on, so nadir is inside.
    Brightness temperatures, which the simulation does not bound directly, span the sample extremes
    widened by ``bt_margin_k``. The threshold is the ``quantile`` of the training inputs' squared
    Mahalanobis distance (all inputs): about 0.1 % of training-like pixels get bit 4.
    """
    x = np.asarray(x_train, dtype=np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    vza = x[:, len(BANDS)]
    if view_zenith_range is None:
        view_zenith_range = (float(np.floor(vza.min())), float(np.ceil(vza.max())))
    lo, hi = (float(v) for v in view_zenith_range)
    if not 0.0 <= lo <= hi <= 90.0 or vza.min() < lo or vza.max() > hi:
        raise ParameterError("input_domain", f"view_zenith_range=({lo}, {hi}) with samples in "
                             f"[{vza.min()}, {vza.max()}]", variable="view_zenith_range",
                             expected="0 <= min <= max <= 90 deg covering every training sample")
    bt, extra = x[:, :len(BANDS)], x[:, len(BANDS) + 1:]
    mean = x.mean(axis=0)
    inv_cov = np.linalg.pinv(np.cov(x, rowvar=False))
    centred = x - mean
    distance2 = np.einsum("ij,jk,ik->i", centred, inv_cov, centred)
    return {"range_min": (bt.min(axis=0) - bt_margin_k).tolist() + [lo] + extra.min(axis=0).tolist(),
            "range_max": (bt.max(axis=0) + bt_margin_k).tolist() + [hi] + extra.max(axis=0).tolist(),
            "range_definition": f"brightness temperatures: training extremes -/+ {bt_margin_k:g} K; "
                                f"view zenith: simulated range [{lo:g}, {hi:g}] deg; further inputs: training "
                                "extremes (missing values included)",
            "mahalanobis": {"mean": mean.tolist(), "inverse_covariance": inv_cov.tolist(),
                            "threshold": float(np.quantile(distance2, quantile)), "quantile": quantile}}


def write_manifest(path, manifest: dict) -> str:
    """Write ``manifest.json`` and its ``bundle.sha256`` into the bundle directory; returns the sha256."""
    raw = json.dumps(manifest, indent=1, allow_nan=False).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (Path(path) / MANIFEST).write_bytes(raw)
    (Path(path) / DIGEST).write_text(digest_line(digest))
    return digest


def _write_network(model, directory: Path, stem: str) -> dict:
    """Save a network under ``directory``: a Keras model as ``stem.keras`` and ``stem.onnx``, an ONNX model
    (``onnx.ModelProto``) as ``stem.onnx`` only (its manifest entry lists no Keras file); relative names."""
    target = directory / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(model, onnx.ModelProto):
        save_onnx(model, target.with_suffix(".onnx"))
        return {"onnx": f"{stem}.onnx"}
    model.save(str(target.with_suffix(".keras")))
    save_onnx(keras_to_onnx(model), target.with_suffix(".onnx"))
    return {"onnx": f"{stem}.onnx", "keras": f"{stem}.keras"}


def optional_inputs(inputs, where) -> list[str]:
    """The optional inputs (after BT10..14 and view zenith) of an input specification; a ParameterError
    naming ``where`` unless it is the six inputs followed by known optional inputs."""
    extra = list(inputs[len(INPUT_NAMES):])
    if list(inputs[:len(INPUT_NAMES)]) != list(INPUT_NAMES) or any(n not in OPTIONAL_INPUTS for n in extra):
        raise ParameterError(where, f"inputs {list(inputs)}", variable="inputs",
                             expected=f"{list(INPUT_NAMES)} then optional inputs from {sorted(OPTIONAL_INPUTS)}")
    return extra


def _local_entries(work: Path, names, models) -> list[dict]:
    """Manifest entries {name, kd, baseline} of local students (None: the global students are used)."""
    entries = []
    for name, local in zip(names, models):
        entry = {"name": name, "kd": None, "baseline": None}
        if local is not None:
            entry["kd"] = _write_network(local["kd"], work, f"students/{name}")
            entry["baseline"] = _write_network(local["baseline"], work, f"students/{name}_baseline")
        entries.append(entry)
    return entries


def save_bundle(path, *, teacher, students: dict, strata: dict, normalisation: dict, domain: dict,
                fusion: dict, distillation: dict, provenance: dict, metrics: dict, teacher_info: dict,
                inputs=INPUT_NAMES, overwrite: bool = False) -> Path:
    """Write a bundle directory at ``path`` and return it.

    ``students`` = {"global": {"kd": model, "baseline": model}, "strata": [{"kd": m, "baseline": m}
    or None per stratum], "land_cover": same per land-cover class, or None (no class students)} (None
    entries use the global students). Each model is a Keras network (written as ``.keras`` and ``.onnx``) or an
    ``onnx.ModelProto`` (``.onnx`` only: such a bundle serves retrieval but cannot be fine-tuned). ``inputs``:
    the networks' input names (BT10..14, view zenith, then optional inputs such as ``ndvi``). Written to a
    temporary directory next to ``path`` and renamed, so a bundle is never half-written.
    """
    path = Path(path)
    extra = optional_inputs(inputs, "save_bundle")
    if path.exists() and not overwrite:
        raise BundleError(f"{describe_path(path)}: bundle already exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        teacher_files = _write_network(teacher, work, "teacher")
        student_entries = {"global": {"kd": _write_network(students["global"]["kd"], work, "students/global"),
                                      "baseline": _write_network(students["global"]["baseline"], work,
                                                                 "students/global_baseline")},
                           "strata": _local_entries(work, stratum_names(strata), students["strata"])}
        class_students = students.get("land_cover")
        if class_students is not None:
            student_entries["land_cover"] = _local_entries(work, LAND_COVER_CLASSES, class_students)
        files = {p.relative_to(work).as_posix(): sha256_file(p) for p in sorted(work.rglob("*")) if p.is_file()}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": {"names": list(inputs), "bands": list(BANDS),
                       "units": list(INPUT_UNITS) + [OPTIONAL_INPUTS[n][1] for n in extra],
                       "missing_values": {n: OPTIONAL_INPUTS[n][2] for n in extra}, **domain},
            "outputs": {"names": list(OUTPUT_NAMES), "units": list(OUTPUT_UNITS)},
            "normalisation": normalisation,
            "strata": strata,
            **({"land_cover": {"classes": list(LAND_COVER_CLASSES),
                               "assignment": "a land-cover map, else NDVI/brightness-temperature rules; pixels "
                                             "without a class use their brightness-temperature stratum"}}
               if class_students is not None else {}),
            "models": {"teacher": {**teacher_files, **teacher_info}, "students": student_entries},
            "distillation": distillation,
            "fusion": fusion,
            "qc_bits": QC_BITS,
            "provenance": provenance,
            "metrics": metrics,
            "files": files,
        }
        write_manifest(work, manifest)
        if path.exists():
            shutil.rmtree(path)
        os.replace(work, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("wrote bundle %s (%d files)", path, len(files) + 2)
    return path
