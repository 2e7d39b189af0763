"""Inference with a loaded model bundle through onnxruntime only (this module never imports TensorFlow/Keras).

``Bundle`` is created by ``akkd_scale.models.bundle.load_bundle`` after every file has been checked
against its sha256. Dask graphs never carry a Bundle: they carry a reference (path + sha256, see
``akkd_scale.pipeline.kernel.BundleRef``) and each worker loads the bundle once.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..conventions import (BANDS, DEVICES, INPUT_NAMES, N_TARGETS, NETWORK_HEADS, OPTIONAL_INPUTS, QC_EXTRAPOLATION,
                           QC_GLOBAL_STUDENT, QC_INVALID_INPUT, QC_NO_LAND_COVER, QC_OUT_OF_RANGE)
from ..errors import BundleError, ParameterError, describe_path
from . import fusion as fusion_mod
from .strata import assign_strata

log = logging.getLogger(__name__)

STUDENT_HEADS = {  # head -> (which student, kind)
    "student": ("local", "kd"),
    "student_baseline": ("local", "baseline"),
    "student_global": ("global", "kd"),
    "student_global_baseline": ("global", "baseline"),
}
N_BANDS = len(BANDS)


def execution_providers(device: str) -> list[str]:
    """onnxruntime providers for ``device``; a clear error when CUDA is asked for but not available."""
    if device not in DEVICES:
        raise ParameterError(None, f"unknown device {device!r}", variable="device", expected=" or ".join(DEVICES))
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise ParameterError(None, f"CUDA requested but this onnxruntime offers only {', '.join(available)}",
                             variable="device", expected="onnxruntime-gpu with a visible NVIDIA GPU (pip install "
                             "'akkd-scale[gpu]' in place of onnxruntime), or device 'cpu'")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def local_models(manifest: dict) -> list[dict]:
    """Student entries in local-index order: land-cover classes first (bundle format 2), then BT strata.

    A pixel's local index is its land-cover class code when it has one and the bundle has class students,
    else the number of classes + its brightness-temperature stratum.
    """
    students = manifest["models"]["students"]
    return list(students.get("land_cover", [])) + list(students["strata"])


def land_cover_classes(manifest: dict) -> tuple[str, ...]:
    """Land-cover classes the bundle has students for (empty for format-1 bundles)."""
    return tuple(manifest.get("land_cover", {}).get("classes", ()))


class Bundle:
    """A verified model bundle: teacher, students (per land-cover class and BT stratum), fusion, run through
    onnxruntime."""

    def __init__(self, path, manifest: dict, manifest_sha256: str, *, threads: int = 1, slab_rows: int = 65536,
                 device: str = "cpu"):
        """``manifest`` as validated by ``verify_bundle``; ``manifest_sha256`` is the bundle's identity;
        ``device``: ``cpu`` or ``cuda`` (onnxruntime's CUDA provider, checked here)."""
        self.path = Path(path)
        self.manifest = manifest
        self.sha256 = manifest_sha256
        self.providers = execution_providers(device)
        self.threads = int(threads)
        self.slab_rows = int(slab_rows)
        if self.slab_rows < 1:
            raise ParameterError(self.path, f"slab_rows={slab_rows}", variable="slab_rows", expected=">= 1")
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()
        inputs = manifest["inputs"]
        self.bands = tuple(inputs["bands"])
        self.input_names = tuple(inputs["names"])
        #: Dataset variables beyond brightness temperature and view zenith the networks read, with the value
        #: they see where a variable is missing or NaN.
        self.extra_inputs = {OPTIONAL_INPUTS[name][0]: float(inputs["missing_values"][name])
                             for name in self.input_names[len(INPUT_NAMES):]}
        self.classes = land_cover_classes(manifest)
        self._range = (np.asarray(inputs["range_min"], np.float32), np.asarray(inputs["range_max"], np.float32))
        maha = inputs["mahalanobis"]
        self._maha = (np.asarray(maha["mean"], np.float64), np.asarray(maha["inverse_covariance"], np.float64),
                      float(maha["threshold"]))
        students = manifest["models"]["students"]
        self._student_files = {
            ("global", kind): students["global"][kind]["onnx"] for kind in ("kd", "baseline")}
        local = local_models(manifest)
        self._has_own_student = np.array([entry.get("kd") is not None for entry in local])
        for s, entry in enumerate(local):
            for kind in ("kd", "baseline"):
                own = entry.get(kind)
                self._student_files[(s, kind)] = own["onnx"] if own else students["global"][kind]["onnx"]

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, sha256={self.sha256[:12]}…, inputs={','.join(self.input_names)}, "
                f"classes={len(self.classes)}, local students={len(self._has_own_student)})")

    @property
    def heads(self) -> tuple[str, ...]:
        """Heads this bundle can predict."""
        return NETWORK_HEADS

    def _session(self, relative: str) -> ort.InferenceSession:
        """onnxruntime session for a bundle file, created once per Bundle."""
        with self._lock:
            session = self._sessions.get(relative)
            if session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                try:
                    session = ort.InferenceSession(str(self.path / relative), sess_options=options,
                                                   providers=self.providers)
                except Exception as exc:  # onnxruntime's errors share no base class below Exception
                    raise BundleError(f"{describe_path(self.path / relative)}: onnxruntime cannot load the "
                                      f"model ({type(exc).__name__}: {str(exc)[:200]})") from exc
                self._sessions[relative] = session
        return session

    def _run(self, relative: str, x: np.ndarray) -> np.ndarray:
        session = self._session(relative)
        return session.run(None, {session.get_inputs()[0].name: x})[0]

    def _students(self, x: np.ndarray, strata: np.ndarray, which: str, kind: str) -> np.ndarray:
        """Student predictions (n, 6): the local (class or stratum) student per row, or the global one."""
        if which == "global":
            return self._run(self._student_files[("global", kind)], x)
        order = np.argsort(strata, kind="stable")
        values, starts = np.unique(strata[order], return_index=True)
        bounds = list(starts) + [len(order)]
        sorted_x = x[order]
        out = np.empty((x.shape[0], N_TARGETS), dtype=np.float32)
        out[order] = np.concatenate(
            [self._run(self._student_files[(int(s), kind)], sorted_x[bounds[i]:bounds[i + 1]])
             for i, s in enumerate(values)]) if len(values) else out
        return out

    def features(self, bt, vza, extra=None) -> tuple[np.ndarray, np.ndarray]:
        """(N, inputs) float32 network inputs and the finite mask.

        ``bt`` (N, bands), ``vza`` (N,) or scalar; ``extra`` maps the bundle's further input variables
        (``extra_inputs``, e.g. ``ndvi``) to (N,) arrays; a variable not given, or NaN, takes the bundle's
        missing value (NDVI at night).
        """
        bt = np.asarray(bt, dtype=np.float32)
        if bt.ndim != 2 or bt.shape[1] != len(self.bands):
            raise ParameterError("Bundle.predict", f"brightness temperature shape {bt.shape}", variable="bt",
                                 expected=f"(N, {len(self.bands)}) with bands {', '.join(self.bands)}")
        vza = np.broadcast_to(np.asarray(vza, dtype=np.float32), bt.shape[:1])
        columns = [bt, vza[:, None]]
        extra = extra or {}
        for name, missing in self.extra_inputs.items():
            value = extra.get(name)
            value = (np.full(bt.shape[0], missing, np.float32) if value is None else
                     np.broadcast_to(np.asarray(value, np.float32), bt.shape[:1]))
            columns.append(np.where(np.isfinite(value), value, np.float32(missing))[:, None])
        x = np.concatenate(columns, axis=1)
        return x, np.all(np.isfinite(x), axis=1)

    def strata(self, bt, vza) -> np.ndarray:
        """Brightness-temperature stratum index (N,) of each row, −1 for non-finite inputs."""
        return assign_strata(bt, vza, self.manifest["strata"])

    def local_index(self, bt, vza, land_cover=None) -> np.ndarray:
        """Local-student index (N,) of each row (see :func:`local_models`); −1 for non-finite inputs."""
        strata = self.strata(bt, vza)
        local = np.where(strata >= 0, len(self.classes) + strata, -1)
        if self.classes and land_cover is not None:
            land_cover = np.broadcast_to(np.asarray(land_cover), strata.shape)
            local = np.where((strata >= 0) & (land_cover >= 0) & (land_cover < len(self.classes)), land_cover, local)
        return local.astype(np.int32)

    def quality(self, bt, vza, extra=None, land_cover=None) -> np.ndarray:
        """QC bit flags (uint8, N): see QC_BITS."""
        x, _ = self.features(bt, vza, extra)
        return self._quality(x, self.local_index(x[:, :N_BANDS], x[:, N_BANDS], land_cover))

    def _quality(self, x: np.ndarray, strata: np.ndarray) -> np.ndarray:
        finite = np.all(np.isfinite(x), axis=1)
        qc = np.where(finite, 0, QC_INVALID_INPUT).astype(np.uint8)
        lo, hi = self._range
        with np.errstate(invalid="ignore"):
            outside = np.any((x < lo) | (x > hi), axis=1) & finite
        qc |= np.where(outside, QC_OUT_OF_RANGE, 0).astype(np.uint8)
        mean, inv_cov, threshold = self._maha
        centred = np.where(finite[:, None], x - mean, 0.0)
        distance2 = np.einsum("ij,jk,ik->i", centred, inv_cov, centred)
        qc |= np.where(finite & (distance2 > threshold), QC_EXTRAPOLATION, 0).astype(np.uint8)
        fallback = finite & ~self._has_own_student[np.where(strata >= 0, strata, 0)]
        qc |= np.where(fallback, QC_GLOBAL_STUDENT, 0).astype(np.uint8)
        if self.classes:
            qc |= np.where(finite & (strata >= len(self.classes)), QC_NO_LAND_COVER, 0).astype(np.uint8)
        return qc

    def _predict_slab(self, x: np.ndarray, heads: tuple[str, ...], land_cover) -> tuple[dict, np.ndarray]:
        strata = self.local_index(x[:, :N_BANDS], x[:, N_BANDS], land_cover)
        valid = strata >= 0
        xv, sv = x[valid], strata[valid]
        need_teacher = any(h in ("teacher", "fusion") for h in heads)
        preds = {}
        if need_teacher:
            preds["teacher"] = self._run(self.manifest["models"]["teacher"]["onnx"], xv)
        if need_teacher or "student" in heads:
            preds["student"] = self._students(xv, sv, "stratum", "kd")
        for head in heads:
            if head in STUDENT_HEADS and head not in preds:
                preds[head] = self._students(xv, sv, *STUDENT_HEADS[head])
        fusion = self.manifest["fusion"]
        if "fusion" in heads:
            preds["fusion"] = fusion_mod.fuse(preds["teacher"], preds["student"], sv, fusion)
        lst_t = preds["teacher"][:, 0] if need_teacher else None
        lst_s = preds["student"][:, 0] if need_teacher else None
        moisture = (fusion_mod.moisture_bin(xv[:, :N_BANDS], fusion["calibration"]) if "calibration" in fusion
                    else None)
        result = {}
        for head in heads:
            full = np.full((x.shape[0], N_TARGETS), np.nan, dtype=np.float32)
            full[valid] = preds[head]
            unc = np.full(x.shape[0], np.nan, dtype=np.float32)
            unc[valid] = fusion_mod.lst_uncertainty(head, sv, fusion, lst_t, lst_s, moisture)
            result[head] = {"lst": full[:, 0], "emissivity": full[:, 1:], "lst_uncertainty": unc}
        return result, self._quality(x, strata)

    def predict_with_quality(self, bt, vza, heads=("fusion",), extra=None, land_cover=None
                             ) -> tuple[dict, np.ndarray]:
        """``predict`` and ``quality`` together (local students assigned once per slab)."""
        heads = tuple(heads)
        unknown = [h for h in heads if h not in NETWORK_HEADS]
        if unknown or not heads:
            raise ParameterError("Bundle.predict", f"unknown heads {unknown}", variable="heads",
                                 expected=f"a non-empty subset of {', '.join(NETWORK_HEADS)}")
        x, _ = self.features(bt, vza, extra)
        if land_cover is not None:
            land_cover = np.broadcast_to(np.asarray(land_cover), x.shape[:1])
        parts = [self._predict_slab(x[i:i + self.slab_rows], heads,
                                    None if land_cover is None else land_cover[i:i + self.slab_rows])
                 for i in range(0, max(x.shape[0], 1), self.slab_rows)]
        result = {head: {key: np.concatenate([p[0][head][key] for p in parts]) for key in parts[0][0][head]}
                  for head in heads}
        return result, np.concatenate([p[1] for p in parts])

    def predict(self, bt, vza, heads=("fusion",), extra=None, land_cover=None) -> dict[str, dict[str, np.ndarray]]:
        """Predict ``{head: {"lst" (N,), "emissivity" (N, 5), "lst_uncertainty" (N,)}}`` in slabs.

        ``bt`` (N, 5) brightness temperatures (K) in band order B10..B14, ``vza`` (N,) or scalar view
        zenith (deg), ``extra`` further inputs by variable (``{"ndvi": (N,)}``; missing → the bundle's
        missing value), ``land_cover`` (N,) class codes (-1 unknown) choosing the class students. Rows
        with a non-finite band or view zenith give NaN outputs (see ``quality`` for flags).
        """
        return self.predict_with_quality(bt, vza, heads, extra, land_cover)[0]
