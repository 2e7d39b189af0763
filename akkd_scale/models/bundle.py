"""Model bundle: one directory with every network, the strata, fusion weights and a checked manifest.

Layout::

    manifest.json            format/version, input/output spec, training domain, normalisation, strata,
                             fusion, distillation settings, provenance, metrics, sha256 of every other file
    bundle.sha256            sha256 of manifest.json (``sha256sum`` format): the bundle's identity
    teacher.onnx, teacher.keras
    students/global.{onnx,keras}, students/global_baseline.{onnx,keras}
    students/<stratum>.{onnx,keras}, students/<stratum>_baseline.{onnx,keras}
    students/<land-cover class>.{onnx,keras}, students/<class>_baseline.{onnx,keras}   (format 2)

Retrieval runs the ONNX files only. The ``.keras`` files serve fine-tuning (``training.keras_io``) and are
optional in two explicit ways: a manifest model entry may list only ``onnx`` (a bundle written from ONNX
networks, e.g. ``training.random_bundle``), and a bundle whose listed ``.keras`` files are *all* absent loads
(the runtime wheel ships the default bundle without them); one absent while others are present is refused.

``load_bundle`` checks, before anything runs: the manifest against ``bundle.sha256``, every manifest
field the runtime reads against the schema (``models.schema``), every path in the manifest resolving inside
the bundle directory, every listed file present against its sha256, unlisted model files (refused; other
unlisted files, e.g. an evaluation report written next to the models, are never read and only
logged) and every ONNX file (parses, passes the ONNX checker, has the expected shapes). Loading needs
only onnxruntime and never imports Keras. Bundles are written by ``akkd_scale.training.bundle_writer``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from ..conventions import (
    ATMOSPHERE_INPUTS,
    INPUT_NAMES,
    N_TARGETS,
    NETWORK_HEADS,
    OPTIONAL_INPUTS,
    QC_EXTRAPOLATION,
    QC_GLOBAL_STUDENT,
    QC_INVALID_INPUT,
    QC_NO_LAND_COVER,
    QC_OUT_OF_RANGE,
)
from ..errors import BundleError, BundleIntegrityError, ParameterError, describe_path
from ..utils import sha256_file
from .inference import N_BANDS, Networks
from .schema import DIGEST, MANIFEST, check_manifest, is_sha256, land_cover_classes, model_files
from .strata import assign_strata

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".onnx", ".keras")  # unlisted files with these suffixes are refused
DEFAULT_BUNDLE_ENV = "AKKD_BUNDLE"


def default_bundle_path() -> Path:
    """The bundle used when none is given: ``$AKKD_BUNDLE`` or ``akkd_scale/data/default_bundle``."""
    value = os.environ.get(DEFAULT_BUNDLE_ENV)
    return Path(value).expanduser() if value else Path(__file__).resolve().parents[1] / "data" / "default_bundle"


def _read_manifest(path: Path) -> tuple[dict, str]:
    """Manifest and its sha256 after checking the sha256 against ``bundle.sha256`` and the schema."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{describe_path(manifest_path)}: missing (not a model bundle directory)")
    raw = manifest_path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    recorded = read_digest(path)
    if digest != recorded:
        raise BundleIntegrityError(
            f"{describe_path(manifest_path)}: sha256 {digest} does not match {DIGEST} "
            f"({recorded}); manifest edited or corrupted after the bundle was written"
        )
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{describe_path(manifest_path)}: not valid JSON ({exc})") from exc
    check_manifest(manifest, describe_path(manifest_path))
    return manifest, digest


def read_digest(path: Path) -> str:
    """The manifest sha256 recorded in a bundle's ``bundle.sha256`` (``sha256sum`` format)."""
    digest_path = Path(path) / DIGEST
    if not digest_path.is_file():
        raise BundleIntegrityError(
            f"{describe_path(digest_path)}: missing (every bundle carries the sha256 of "
            f"its {MANIFEST}; rewrite the bundle with save_bundle)"
        )
    parts = digest_path.read_bytes().decode("ascii", errors="replace").split()
    if len(parts) != 2 or parts[1] != MANIFEST or not is_sha256(parts[0]):
        raise BundleIntegrityError(
            f"{describe_path(digest_path)}: malformed (expected one line '<sha256 hex>  {MANIFEST}')"
        )
    return parts[0]


def digest_line(digest: str) -> str:
    """Content of ``bundle.sha256`` for a manifest sha256 (readable by ``sha256sum -c``)."""
    return f"{digest}  {MANIFEST}\n"


def _check_inside(path: Path, relative: str) -> None:
    """``path / relative`` must resolve (symlinks followed) inside the bundle directory."""
    root = path.resolve()
    target = (path / relative).resolve()
    if not target.is_relative_to(root):
        raise BundleIntegrityError(
            f"{describe_path(path / MANIFEST)}: {relative!r} resolves to {target}, outside the bundle directory {root}"
        )


def _check_onnx(path: Path, relative: str, n_inputs: int) -> None:
    """An ONNX file must parse, pass the ONNX checker and map (N, n_inputs) inputs to (N, N_TARGETS)."""
    try:
        model = onnx.load(str(path / relative))
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, OSError) as exc:
        raise BundleError(
            f"{describe_path(path / relative)}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    graph = model.graph
    dims = [
        [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in values]
        for values in (graph.input, graph.output)
    ]
    if len(dims[0]) != 1 or len(dims[1]) != 1 or dims[0][0][-1:] != [n_inputs] or dims[1][0][-1:] != [N_TARGETS]:
        raise BundleError(
            f"{describe_path(path / relative)}: ONNX input/output shapes {dims} "
            f"(expected one input (N, {n_inputs}) and one output (N, {N_TARGETS}))"
        )


def verify_bundle(path) -> tuple[dict, str]:
    """Manifest and its sha256 after checking every file; raises BundleError/BundleIntegrityError."""
    path = Path(path)
    if path.is_file():
        raise BundleError(
            f"{describe_path(path)}: is a file, not a bundle directory (expected the directory "
            "holding manifest.json, bundle.sha256 and the ONNX models)"
        )
    if not path.is_dir():
        raise BundleError(f"{describe_path(path)}: bundle directory does not exist")
    manifest, digest = _read_manifest(path)
    recorded = manifest["files"]
    for relative in list(recorded) + model_files(manifest):
        _check_inside(path, relative)
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST, DIGEST}
    missing = set(recorded) - present
    keras = {relative for relative in recorded if relative.endswith(".keras")}
    if keras and keras <= missing:
        log.debug(
            "%s: no .keras files (a runtime install); retrieval runs the ONNX files, fine-tuning needs the "
            "bundle with its Keras files",
            path,
        )
        missing -= keras
    for relative in sorted(missing):
        raise BundleIntegrityError(f"{describe_path(path / relative)}: listed in the manifest but missing")
    for relative in sorted(present - set(recorded)):
        if Path(relative).suffix in MODEL_SUFFIXES:
            raise BundleIntegrityError(
                f"{describe_path(path / relative)}: not listed in the manifest (unexpected model file in bundle)"
            )
        log.warning("%s: not listed in the bundle manifest; ignored", path / relative)
    for relative, expected in recorded.items():
        if relative not in present:
            continue  # an absent .keras file of a bundle without any (above)
        actual = sha256_file(path / relative)
        if actual != expected:
            raise BundleIntegrityError(
                f"{describe_path(path / relative)}: sha256 {actual} does not match "
                f"the manifest ({expected}); file altered or corrupted"
            )
    for relative in model_files(manifest):
        if relative not in recorded:
            raise BundleIntegrityError(f"{describe_path(path / relative)}: model not covered by a sha256")
        if relative.endswith(".onnx"):
            _check_onnx(path, relative, len(manifest["inputs"]["names"]))
    return manifest, digest


@dataclass(eq=False)
class Bundle:
    """A verified model bundle (made by :func:`load_bundle`): its manifest and sha256 (the bundle's identity), the
    inputs and training domain the runtime reads from it, and its networks (teacher, students per land-cover
    class and BT stratum, fusion) run through onnxruntime on ``device``.

    Dask graphs never carry a Bundle: they carry a reference (path + sha256, see
    ``akkd_scale.pipeline.kernel.BundleRef``) and each worker loads the bundle once.
    """

    path: Path
    manifest: dict
    sha256: str
    threads: int = 1
    slab_rows: int = 65536
    device: str = "cpu"
    networks: Networks = field(init=False)
    bands: tuple[str, ...] = field(init=False)
    input_names: tuple[str, ...] = field(init=False)
    #: Dataset variables beyond brightness temperature and view zenith the networks read, with the value
    #: they see where a variable is missing or NaN.
    extra_inputs: dict[str, float] = field(init=False)
    #: Land-cover classes the bundle has students for (empty for format-1 bundles).
    classes: tuple[str, ...] = field(init=False)
    _range: tuple[np.ndarray, np.ndarray] = field(init=False)
    _maha: tuple[np.ndarray, np.ndarray, float] = field(init=False)

    def __post_init__(self):
        self.path = Path(self.path)
        self.networks = Networks(self.path, self.manifest, threads=self.threads, device=self.device)
        self.threads, self.slab_rows = int(self.threads), int(self.slab_rows)
        if self.slab_rows < 1:
            raise ParameterError(self.path, f"slab_rows={self.slab_rows}", variable="slab_rows", expected=">= 1")
        inputs = self.manifest["inputs"]
        self.bands = tuple(inputs["bands"])
        self.input_names = tuple(inputs["names"])
        self.extra_inputs = {
            OPTIONAL_INPUTS[name][0]: float(inputs["missing_values"][name])
            for name in self.input_names[len(INPUT_NAMES) :]
        }
        self.classes = land_cover_classes(self.manifest)
        self._range = (np.asarray(inputs["range_min"], np.float32), np.asarray(inputs["range_max"], np.float32))
        maha = inputs["mahalanobis"]
        self._maha = (
            np.asarray(maha["mean"], np.float64),
            np.asarray(maha["inverse_covariance"], np.float64),
            float(maha["threshold"]),
        )

    def __repr__(self) -> str:
        return (
            f"Bundle({str(self.path)!r}, sha256={self.sha256[:12]}…, inputs={','.join(self.input_names)}, "
            f"classes={len(self.classes)}, local students={len(self.networks.has_own_student)})"
        )

    @property
    def heads(self) -> tuple[str, ...]:
        """Heads this bundle can predict."""
        return NETWORK_HEADS

    def features(self, bt, vza, extra=None) -> tuple[np.ndarray, np.ndarray]:
        """(N, inputs) float32 network inputs and the finite mask.

        ``bt`` (N, bands), ``vza`` (N,) or scalar; ``extra`` maps the bundle's further input variables
        (``extra_inputs``, e.g. ``ndvi``) to (N,) arrays; a variable not given, or NaN, takes the bundle's
        missing value (NDVI at night).
        """
        bt = np.asarray(bt, dtype=np.float32)
        if bt.ndim != 2 or bt.shape[1] != len(self.bands):
            raise ParameterError(
                "Bundle.predict",
                f"brightness temperature shape {bt.shape}",
                variable="bt",
                expected=f"(N, {len(self.bands)}) with bands {', '.join(self.bands)}",
            )
        vza = np.broadcast_to(np.asarray(vza, dtype=np.float32), bt.shape[:1])
        columns = [bt, vza[:, None]]
        extra = extra or {}
        values = {}
        for name in self.extra_inputs:
            value = extra.get(name)
            value = (
                np.full(bt.shape[0], np.nan, np.float32)
                if value is None
                else np.broadcast_to(np.asarray(value, np.float32), bt.shape[:1])
            )
            values[name] = value
        # the atmospheric inputs are given or missing together (as trained): one missing, both missing
        atmosphere = [OPTIONAL_INPUTS[n][0] for n in ATMOSPHERE_INPUTS if OPTIONAL_INPUTS[n][0] in values]
        incomplete = ~np.all([np.isfinite(values[v]) for v in atmosphere], axis=0) if atmosphere else False
        for name, missing in self.extra_inputs.items():
            absent = ~np.isfinite(values[name]) | (incomplete if name in atmosphere else False)
            columns.append(np.where(absent, np.float32(missing), values[name])[:, None])
        x = np.concatenate(columns, axis=1)
        return x, np.all(np.isfinite(x), axis=1)

    def strata(self, bt, vza) -> np.ndarray:
        """Brightness-temperature stratum index (N,) of each row, −1 for non-finite inputs."""
        return assign_strata(bt, vza, self.manifest["strata"])

    def local_index(self, bt, vza, land_cover=None) -> np.ndarray:
        """Local-student index (N,) of each row (see ``schema.local_models``); −1 for non-finite inputs."""
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

    def _quality(self, x: np.ndarray, local_index: np.ndarray) -> np.ndarray:
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
        fallback = finite & ~self.networks.has_own_student[np.where(local_index >= 0, local_index, 0)]
        qc |= np.where(fallback, QC_GLOBAL_STUDENT, 0).astype(np.uint8)
        if self.classes:
            qc |= np.where(finite & (local_index >= len(self.classes)), QC_NO_LAND_COVER, 0).astype(np.uint8)
        return qc

    def _predict_slab(self, x: np.ndarray, heads: tuple[str, ...], land_cover, from_rules) -> tuple[dict, np.ndarray]:
        local_index = self.local_index(x[:, :N_BANDS], x[:, N_BANDS], land_cover)
        return self.networks.predict(x, local_index, heads, from_rules), self._quality(x, local_index)

    def predict_with_quality(
        self, bt, vza, heads=("fusion",), extra=None, land_cover=None, from_rules=None
    ) -> tuple[dict, np.ndarray]:
        """``predict`` and ``quality`` together (local students assigned once per slab)."""
        heads = tuple(heads)
        unknown = [h for h in heads if h not in NETWORK_HEADS]
        if unknown or not heads:
            raise ParameterError(
                "Bundle.predict",
                f"unknown heads {unknown}",
                variable="heads",
                expected=f"a non-empty subset of {', '.join(NETWORK_HEADS)}",
            )
        x, _ = self.features(bt, vza, extra)
        if land_cover is not None:
            land_cover = np.broadcast_to(np.asarray(land_cover), x.shape[:1])
        if from_rules is not None:
            from_rules = np.broadcast_to(np.asarray(from_rules, bool), x.shape[:1])
        parts = [
            self._predict_slab(
                x[i : i + self.slab_rows],
                heads,
                None if land_cover is None else land_cover[i : i + self.slab_rows],
                None if from_rules is None else from_rules[i : i + self.slab_rows],
            )
            for i in range(0, max(x.shape[0], 1), self.slab_rows)
        ]
        result = {
            head: {key: np.concatenate([p[0][head][key] for p in parts]) for key in parts[0][0][head]} for head in heads
        }
        return result, np.concatenate([p[1] for p in parts])

    def predict(
        self, bt, vza, heads=("fusion",), extra=None, land_cover=None, from_rules=None
    ) -> dict[str, dict[str, np.ndarray]]:
        """Predict ``{head: {"lst" (N,), "emissivity" (N, 5), "lst_uncertainty" (N,)}}`` in slabs.

        ``bt`` (N, 5) brightness temperatures (K) in band order B10..B14, ``vza`` (N,) or scalar view
        zenith (deg), ``extra`` further inputs by variable (``{"ndvi": (N,)}``; missing → the bundle's
        missing value), ``land_cover`` (N,) class codes (-1 unknown) choosing the class students, ``from_rules``
        (N,) or scalar bool: which of those classes the NDVI/BT rules assigned (not a map), fused by the class's
        rules entry where the bundle has them (``models.fusion``). Rows with a non-finite band or view zenith
        give NaN outputs (see ``quality`` for flags).
        """
        return self.predict_with_quality(bt, vza, heads, extra, land_cover, from_rules)[0]


def load_bundle(path, *, threads: int = 1, slab_rows: int = 65536, device: str = "cpu") -> Bundle:
    """Verified ``Bundle`` for inference (onnxruntime with ``threads`` intra-op threads on ``device``)."""
    manifest, digest = verify_bundle(path)
    log.debug("loaded bundle %s sha256=%s", path, digest)
    return Bundle(Path(path).resolve(), manifest, digest, threads=threads, slab_rows=slab_rows, device=device)


@functools.lru_cache(maxsize=8)
def load_bundle_cached(path: str, sha256: str, threads: int = 1, slab_rows: int = 65536, device: str = "cpu") -> Bundle:
    """``load_bundle`` once per process for a (path, manifest sha256); refuses a bundle that changed."""
    bundle = load_bundle(path, threads=threads, slab_rows=slab_rows, device=device)
    if bundle.sha256 != sha256:
        raise BundleIntegrityError(
            f"{describe_path(Path(path) / MANIFEST)}: sha256 {bundle.sha256} differs "
            f"from the expected {sha256} (bundle replaced since the task was built)"
        )
    return bundle
