"""Running a bundle's networks through onnxruntime (this module never imports TensorFlow/Keras).

:class:`Networks` holds one onnxruntime session per ONNX file of a verified bundle (created on first use) and
predicts every network head — teacher, local and global students, fusion — with its LST uncertainty.
``akkd_scale.models.bundle.Bundle`` owns one and feeds it the rows' inputs and local-model indices.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..conventions import BANDS, DEVICES, N_TARGETS
from ..errors import BundleError, ParameterError, describe_path
from . import fusion as fusion_mod
from .schema import local_models

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
        raise ParameterError(
            None,
            f"CUDA requested but this onnxruntime offers only {', '.join(available)}",
            variable="device",
            expected="onnxruntime-gpu with a visible NVIDIA GPU (pip install "
            "'akkd-scale[gpu]' in place of onnxruntime), or device 'cpu'",
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _input_column(manifest: dict, name: str | None) -> tuple[int, float] | None:
    """(column, missing value) of the bundle input ``name`` in the network inputs; None for no name."""
    if not name:
        return None
    return list(manifest["inputs"]["names"]).index(name), float(manifest["inputs"]["missing_values"][name])


def _given(x: np.ndarray, column: tuple[int, float]) -> np.ndarray:
    """That input's values in rows ``x``, NaN where it takes its missing value."""
    index, missing = column
    return np.where(x[:, index] == np.float32(missing), np.nan, x[:, index])


class Networks:
    """The ONNX networks of a verified bundle and its fusion, run through onnxruntime on ``device``."""

    def __init__(self, path, manifest: dict, *, threads: int = 1, device: str = "cpu"):
        """``manifest`` as checked by ``verify_bundle``; ``threads`` intra-op threads per session;
        ``device``: ``cpu`` or ``cuda`` (onnxruntime's CUDA provider, checked here)."""
        self.path = Path(path)
        self.providers = execution_providers(device)
        self.threads = int(threads)
        self.fusion = manifest["fusion"]
        #: Column of the given column water vapour in the inputs and its missing value, when the calibration
        #: bins by it (``fusion.calibration.given_cwv_input``).
        self._given_cwv = _input_column(manifest, self.fusion.get("calibration", {}).get(fusion_mod.GIVEN_CWV_KEY))
        #: Column and missing value of the input whose absence makes a row a night row (day/night σ bins).
        self._night = _input_column(manifest, self.fusion.get("calibration", {}).get(fusion_mod.NIGHT_INPUT_KEY))
        self._teacher = manifest["models"]["teacher"]["onnx"]
        students = manifest["models"]["students"]
        #: (local model index or "global", "kd" | "baseline") → ONNX file.
        self._student_files: dict[tuple[int | str, str], str] = {
            ("global", kind): students["global"][kind]["onnx"] for kind in ("kd", "baseline")
        }
        local = local_models(manifest)
        #: Per local model: whether it has its own students (else the global ones answer, QC bit 8).
        self.has_own_student = np.array([entry.get("kd") is not None for entry in local])
        for s, entry in enumerate(local):
            for kind in ("kd", "baseline"):
                own = entry.get(kind)
                self._student_files[(s, kind)] = own["onnx"] if own else students["global"][kind]["onnx"]
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def _session(self, relative: str) -> ort.InferenceSession:
        """onnxruntime session for a bundle file, created once."""
        with self._lock:
            session = self._sessions.get(relative)
            if session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                try:
                    session = ort.InferenceSession(
                        str(self.path / relative), sess_options=options, providers=self.providers
                    )
                except Exception as exc:  # onnxruntime's errors share no base class below Exception
                    raise BundleError(
                        f"{describe_path(self.path / relative)}: onnxruntime cannot load the "
                        f"model ({type(exc).__name__}: {str(exc)[:200]})"
                    ) from exc
                self._sessions[relative] = session
        return session

    def _run(self, relative: str, x: np.ndarray) -> np.ndarray:
        session = self._session(relative)
        return session.run(None, {session.get_inputs()[0].name: x})[0]

    def _students(self, x: np.ndarray, local_index: np.ndarray, which: str, kind: str) -> np.ndarray:
        """Student predictions (n, 6): each row's local (class or stratum) student, or the global one."""
        if which == "global":
            return self._run(self._student_files[("global", kind)], x)
        order = np.argsort(local_index, kind="stable")
        values, starts = np.unique(local_index[order], return_index=True)
        bounds = list(starts) + [len(order)]
        sorted_x = x[order]
        out = np.empty((x.shape[0], N_TARGETS), dtype=np.float32)
        out[order] = (
            np.concatenate(
                [
                    self._run(self._student_files[(int(s), kind)], sorted_x[bounds[i] : bounds[i + 1]])
                    for i, s in enumerate(values)
                ]
            )
            if len(values)
            else out
        )
        return out

    def predict(self, x: np.ndarray, local_index: np.ndarray, heads: tuple[str, ...], from_rules=None) -> dict:
        """``{head: {"lst", "emissivity", "lst_uncertainty"}}`` for network inputs ``x`` (N, inputs) and their
        local-model indices (N,); rows with index −1 (non-finite input) are NaN. ``from_rules`` (N,) bool:
        rows whose class the NDVI/BT rules assigned, fused and given σ by the class's rules entry
        (``models.fusion.fusion_entries``) when the bundle has them."""
        valid = local_index >= 0
        xv, lv = x[valid], local_index[valid]
        entries = fusion_mod.fusion_entries(
            lv, None if from_rules is None else np.broadcast_to(from_rules, valid.shape)[valid], self.fusion
        )
        need_teacher = any(h in ("teacher", "fusion") for h in heads)
        preds = {}
        if need_teacher:
            preds["teacher"] = self._run(self._teacher, xv)
        if need_teacher or "student" in heads:
            preds["student"] = self._students(xv, lv, "local", "kd")
        for head in heads:
            if head in STUDENT_HEADS and head not in preds:
                preds[head] = self._students(xv, lv, *STUDENT_HEADS[head])
        fusion = self.fusion
        if "fusion" in heads:
            preds["fusion"] = fusion_mod.fuse(preds["teacher"], preds["student"], entries, fusion)
        lst_t = preds["teacher"][:, 0] if need_teacher else None
        lst_s = preds["student"][:, 0] if need_teacher else None
        given = None if self._given_cwv is None else _given(xv, self._given_cwv)
        night = None if self._night is None else np.isnan(_given(xv, self._night))
        moisture = (
            fusion_mod.moisture_bin(xv[:, :N_BANDS], fusion["calibration"], given, night)
            if "calibration" in fusion
            else None
        )
        result = {}
        for head in heads:
            full = np.full((x.shape[0], N_TARGETS), np.nan, dtype=np.float32)
            full[valid] = preds[head]
            unc = np.full(x.shape[0], np.nan, dtype=np.float32)
            unc[valid] = fusion_mod.lst_uncertainty(head, entries, fusion, lst_t, lst_s, moisture)
            result[head] = {"lst": full[:, 0], "emissivity": full[:, 1:], "lst_uncertainty": unc}
        return result
