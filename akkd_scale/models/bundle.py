"""Model bundle: one directory with every network, the strata, fusion weights and a checked manifest.

Layout::

    manifest.json            format/version, input/output spec, training domain, normalisation, strata,
                             fusion, distillation settings, provenance, metrics, sha256 of every other file
    bundle.sha256            sha256 of manifest.json (``sha256sum`` format): the bundle's identity
    teacher.onnx, teacher.keras
    students/global.{onnx,keras}, students/global_baseline.{onnx,keras}
    students/<stratum>.{onnx,keras}, students/<stratum>_baseline.{onnx,keras}
    students/<land-cover class>.{onnx,keras}, students/<class>_baseline.{onnx,keras}   (format 2)

``load_bundle`` checks, before anything runs: the manifest against ``bundle.sha256``, every manifest
field the runtime reads against the schema (``_Schema``), every path in the manifest resolving inside
the bundle directory, every listed file against its sha256, unlisted model files (refused; other
unlisted files, e.g. an evaluation report written next to the models, are never read and only
logged) and every ONNX file (parses, passes the ONNX checker, has the expected shapes). Loading needs
only onnxruntime and never imports Keras (the ``.keras`` files are read by ``training.keras_io``).
Bundles are written by ``akkd_scale.training.bundle_writer``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ..conventions import (BANDS, INPUT_NAMES, INPUT_UNITS, LAND_COVER_CLASSES, N_TARGETS, NETWORK_HEADS,
                           OPTIONAL_INPUTS, OUTPUT_NAMES, OUTPUT_UNITS)
from ..errors import BundleError, BundleIntegrityError, describe_path
from ..utils import sha256_file
from .fusion import N_CWV_FEATURES
from .inference import Bundle, local_models
from .strata import FEATURES as STRATA_FEATURES
from .strata import STRATA_VERSION, stratum_names

log = logging.getLogger(__name__)

FORMAT = "akkd_scale.bundle"
FORMAT_VERSION = 2
#: Format 1: inputs BT10–14 + view zenith, students per BT stratum. Format 2 adds named optional inputs
#: (``inputs.names`` beyond the six, with ``inputs.missing_values``), land-cover class students
#: (``land_cover.classes``, ``models.students.land_cover``) and a calibrated uncertainty (``fusion.calibration``).
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
DIGEST = "bundle.sha256"                # sha256 of manifest.json, in sha256sum format
MODEL_SUFFIXES = (".onnx", ".keras")   # unlisted files with these suffixes are refused
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
        raise BundleIntegrityError(f"{describe_path(manifest_path)}: sha256 {digest} does not match {DIGEST} "
                                   f"({recorded}); manifest edited or corrupted after the bundle was written")
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{describe_path(manifest_path)}: not valid JSON ({exc})") from exc
    _Schema(describe_path(manifest_path)).check(manifest)
    return manifest, digest


def read_digest(path: Path) -> str:
    """The manifest sha256 recorded in a bundle's ``bundle.sha256`` (``sha256sum`` format)."""
    digest_path = Path(path) / DIGEST
    if not digest_path.is_file():
        raise BundleIntegrityError(f"{describe_path(digest_path)}: missing (every bundle carries the sha256 of "
                                   f"its {MANIFEST}; rewrite the bundle with save_bundle)")
    parts = digest_path.read_bytes().decode("ascii", errors="replace").split()
    if len(parts) != 2 or parts[1] != MANIFEST or not _is_sha256(parts[0]):
        raise BundleIntegrityError(f"{describe_path(digest_path)}: malformed (expected one line "
                                   f"'<sha256 hex>  {MANIFEST}')")
    return parts[0]


def digest_line(digest: str) -> str:
    """Content of ``bundle.sha256`` for a manifest sha256 (readable by ``sha256sum -c``)."""
    return f"{digest}  {MANIFEST}\n"


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_relative_path(value: str, suffix: str = "") -> bool:
    """A POSIX path relative to the bundle directory that cannot leave it (no absolute, '..', '.', '')."""
    parts = value.split("/")
    return (value.endswith(suffix) and "\\" not in value and ":" not in value and value not in (MANIFEST, DIGEST)
            and not any(p in ("", ".", "..") for p in parts))


def _path_expected(suffix: str = "") -> str:
    return "a relative path inside the bundle" + (f" ending in {suffix!r}" if suffix else "")


def _describe(value) -> str:
    """Short JSON text of a manifest value for error messages."""
    text = "an object" if isinstance(value, dict) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Schema:
    """Checks every manifest field the runtime reads; errors name the manifest, the field and what was expected."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, value, expected: str):
        raise BundleError(f"{self.where}: field {field}: {_describe(value)} (expected {expected})")

    def get(self, node: dict, field: str, key: str, kind: type, expected: str):
        """``node[key]`` of JSON type ``kind`` (dict, list, str, int, float for any number)."""
        name = f"{field}.{key}" if field else key
        if key not in node:
            raise BundleError(f"{self.where}: field {name}: missing (expected {expected})")
        value = node[key]
        if not (_is_number(value) if kind is float else type(value) is kind):
            self.fail(name, value, expected)
        return value

    def equal(self, node: dict, field: str, key: str, expected_value):
        name = f"{field}.{key}" if field else key
        value = self.get(node, field, key, type(expected_value), json.dumps(expected_value))
        if value != expected_value:
            self.fail(name, value, json.dumps(expected_value))

    def numbers(self, node: dict, field: str, key: str, length: int, lo=-math.inf, hi=math.inf) -> list:
        name = f"{field}.{key}"
        bounds = (f" in [{lo:g}, {hi:g}]" if math.isfinite(hi) else f" >= {lo:g}") if math.isfinite(lo) else ""
        expected = f"a list of {length} finite numbers{bounds}"
        values = self.get(node, field, key, list, expected)
        if len(values) != length or not all(_is_number(v) and lo <= v <= hi for v in values):
            self.fail(name, values, expected)
        return values

    def model_paths(self, node: dict, field: str, key: str) -> None:
        """``node[key]`` = {"onnx": path, "keras": path}, both safe relative paths."""
        entry = self.get(node, field, key, dict, 'an object {"onnx": path, "keras": path}')
        for suffix in ("onnx", "keras"):
            self.path(entry, f"{field}.{key}", suffix, f".{suffix}")

    def path(self, node: dict, field: str, key: str, suffix: str) -> None:
        value = self.get(node, field, key, str, _path_expected(suffix))
        if not _is_relative_path(value, suffix):
            self.fail(f"{field}.{key}", value, _path_expected(suffix))

    def check(self, manifest) -> None:
        if type(manifest) is not dict:
            self.fail("(top level)", manifest, "a JSON object")
        self.equal(manifest, "", "format", FORMAT)
        version = self.get(manifest, "", "format_version", int, f"one of {list(READABLE_VERSIONS)}")
        if version not in READABLE_VERSIONS:
            self.fail("format_version", version, f"one of {list(READABLE_VERSIONS)}")
        self._inputs(self.get(manifest, "", "inputs", dict, "an object"), version)
        outputs = self.get(manifest, "", "outputs", dict, "an object")
        self.equal(outputs, "outputs", "names", list(OUTPUT_NAMES))
        self.equal(outputs, "outputs", "units", list(OUTPUT_UNITS))
        names = self._strata(self.get(manifest, "", "strata", dict, "an object"))
        classes = []
        if version >= 2 and "land_cover" in manifest:
            land_cover = self.get(manifest, "", "land_cover", dict, "an object {classes}")
            self.equal(land_cover, "land_cover", "classes", list(LAND_COVER_CLASSES))
            classes = list(LAND_COVER_CLASSES)
        self._models(self.get(manifest, "", "models", dict, "an object"), names, classes)
        self._fusion(self.get(manifest, "", "fusion", dict, "an object"), len(classes) + len(names))
        files = self.get(manifest, "", "files", dict, "an object {relative path: sha256}")
        for relative, digest in files.items():
            if not _is_relative_path(relative):
                self.fail(f"files.{relative}", relative, _path_expected())
            if not _is_sha256(digest):
                self.fail(f"files.{relative}", digest, "a sha256 (64 lowercase hex digits)")

    def _inputs(self, inputs: dict, version: int) -> None:
        names = self.get(inputs, "inputs", "names", list, "a list of input names")
        extra = names[len(INPUT_NAMES):]
        expected = (f"{list(INPUT_NAMES)} followed by optional inputs from {sorted(OPTIONAL_INPUTS)}, each once"
                    if version >= 2 else json.dumps(list(INPUT_NAMES)))
        if (names[:len(INPUT_NAMES)] != list(INPUT_NAMES) or (extra and version < 2)
                or any(name not in OPTIONAL_INPUTS for name in extra) or len(set(extra)) != len(extra)):
            self.fail("inputs.names", names, expected)
        self.equal(inputs, "inputs", "bands", list(BANDS))
        self.equal(inputs, "inputs", "units", list(INPUT_UNITS) + [OPTIONAL_INPUTS[name][1] for name in extra])
        if extra:
            missing = self.get(inputs, "inputs", "missing_values", dict, f"an object with a number for {extra}")
            for name in extra:
                self.get(missing, "inputs.missing_values", name, float, "a finite number")
        n_inputs = len(names)
        low = self.numbers(inputs, "inputs", "range_min", n_inputs)
        high = self.numbers(inputs, "inputs", "range_max", n_inputs)
        if any(lo > hi for lo, hi in zip(low, high)):
            self.fail("inputs.range_max", high, "range_max >= range_min for every input")
        maha = self.get(inputs, "inputs", "mahalanobis", dict, "an object")
        self.numbers(maha, "inputs.mahalanobis", "mean", n_inputs)
        matrix = self.get(maha, "inputs.mahalanobis", "inverse_covariance", list,
                          f"a {n_inputs} x {n_inputs} list of lists")
        if len(matrix) != n_inputs or any(type(row) is not list for row in matrix):
            self.fail("inputs.mahalanobis.inverse_covariance", matrix, f"a {n_inputs} x {n_inputs} list of lists")
        for i in range(n_inputs):
            self.numbers({str(i): matrix[i]}, "inputs.mahalanobis.inverse_covariance", str(i), n_inputs)
        self.get(maha, "inputs.mahalanobis", "threshold", float, "a finite number > 0")
        if maha["threshold"] <= 0:
            self.fail("inputs.mahalanobis.threshold", maha["threshold"], "a finite number > 0")

    def _strata(self, strata: dict) -> list[str]:
        """Validated strata spec; returns the stratum names."""
        self.equal(strata, "strata", "version", STRATA_VERSION)
        classes = self.get(strata, "strata", "classes", list, "a non-empty list of classifications")
        seen = []
        for i, cls in enumerate(classes):
            field = f"strata.classes.{i}"
            if type(cls) is not dict:
                self.fail(field, cls, "an object {name, edges}")
            name = self.get(cls, field, "name", str, f"one of {sorted(STRATA_FEATURES)}, each once")
            if name not in STRATA_FEATURES or name in seen:
                self.fail(f"{field}.name", name, f"one of {sorted(STRATA_FEATURES)}, each once")
            seen.append(name)
            edges = self.get(cls, field, "edges", list, "a list of ascending finite numbers")
            self.numbers(cls, field, "edges", len(edges))
            if edges != sorted(edges):
                self.fail(f"{field}.edges", edges, "a list of ascending finite numbers")
        if not classes:
            self.fail("strata.classes", classes, "a non-empty list of classifications")
        return stratum_names(strata)

    def _models(self, models: dict, names: list[str], classes: list[str]) -> None:
        self.model_paths(models, "models", "teacher")
        students = self.get(models, "models", "students", dict, 'an object {"global", "strata"}')
        global_ = self.get(students, "models.students", "global", dict, 'an object {"kd", "baseline"}')
        for kind in ("kd", "baseline"):
            self.model_paths(global_, "models.students.global", kind)
        self._local(students, "strata", names)
        if classes:
            self._local(students, "land_cover", classes)

    def _local(self, students: dict, key: str, names: list[str]) -> None:
        """One {name, kd, baseline} entry per stratum or class, in order."""
        entries = self.get(students, "models.students", key, list, f"a list of {len(names)} entries")
        if len(entries) != len(names):
            self.fail(f"models.students.{key}", entries, f"a list of {len(names)} entries (one per {key} entry)")
        for i, (entry, name) in enumerate(zip(entries, names)):
            field = f"models.students.{key}.{i}"
            if type(entry) is not dict:
                self.fail(field, entry, "an object {name, kd, baseline}")
            self.equal(entry, field, "name", name)
            own = [entry.get(kind) is not None for kind in ("kd", "baseline")]
            if own[0] != own[1] or "kd" not in entry or "baseline" not in entry:
                self.fail(field, entry, "kd and baseline both null (global students) or both model entries")
            if own[0]:
                for kind in ("kd", "baseline"):
                    self.model_paths(entry, field, kind)

    def _fusion(self, fusion: dict, n: int) -> None:
        weights = self.get(fusion, "fusion", "teacher_weight", list, f"{n} x {N_TARGETS} weights in [0, 1]")
        if len(weights) != n:
            self.fail("fusion.teacher_weight", weights, f"{n} x {N_TARGETS} weights in [0, 1] (one row per stratum)")
        for s in range(n):
            self.numbers({str(s): weights[s]}, "fusion.teacher_weight", str(s), N_TARGETS, 0.0, 1.0)
        rmse = self.get(fusion, "fusion", "lst_rmse", dict, f"an object with the heads {list(NETWORK_HEADS)}")
        for head in NETWORK_HEADS:
            self.numbers(rmse, "fusion.lst_rmse", head, n, 0.0)
        self.numbers(fusion, "fusion", "lst_disagreement_ms", n, 0.0)
        if "calibration" in fusion:
            calibration = self.get(fusion, "fusion", "calibration", dict, "an object {cwv_coefficients, edges, factor}")
            self.numbers(calibration, "fusion.calibration", "cwv_coefficients", N_CWV_FEATURES)
            edges = self.get(calibration, "fusion.calibration", "edges", list, "ascending finite numbers")
            self.numbers(calibration, "fusion.calibration", "edges", len(edges))
            if edges != sorted(edges):
                self.fail("fusion.calibration.edges", edges, "ascending finite numbers")
            factor = self.get(calibration, "fusion.calibration", "factor", dict, f"an object with {list(NETWORK_HEADS)}")
            for head in NETWORK_HEADS:
                table = self.get(factor, "fusion.calibration.factor", head, list, f"{n} rows")
                if len(table) != n or any(type(row) is not list for row in table):
                    self.fail(f"fusion.calibration.factor.{head}", table, f"{n} rows of {len(edges) + 1} factors > 0")
                for s in range(n):
                    self.numbers({str(s): table[s]}, f"fusion.calibration.factor.{head}", str(s), len(edges) + 1,
                                 0.0)


def _check_inside(path: Path, relative: str) -> None:
    """``path / relative`` must resolve (symlinks followed) inside the bundle directory."""
    root = path.resolve()
    target = (path / relative).resolve()
    if not target.is_relative_to(root):
        raise BundleIntegrityError(f"{describe_path(path / MANIFEST)}: {relative!r} resolves to {target}, "
                                   f"outside the bundle directory {root}")


def _check_onnx(path: Path, relative: str, n_inputs: int) -> None:
    """An ONNX file must parse, pass the ONNX checker and map (N, n_inputs) inputs to (N, N_TARGETS)."""
    try:
        model = onnx.load(str(path / relative))
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, OSError) as exc:
        raise BundleError(f"{describe_path(path / relative)}: not a readable ONNX model "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    graph = model.graph
    dims = [[[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in values]
            for values in (graph.input, graph.output)]
    if len(dims[0]) != 1 or len(dims[1]) != 1 or dims[0][0][-1:] != [n_inputs] or dims[1][0][-1:] != [N_TARGETS]:
        raise BundleError(f"{describe_path(path / relative)}: ONNX input/output shapes {dims} "
                          f"(expected one input (N, {n_inputs}) and one output (N, {N_TARGETS}))")


def _model_files(manifest: dict) -> list[str]:
    """Relative paths of every network file (ONNX and Keras) a validated manifest names."""
    models = manifest["models"]
    students = models["students"]
    entries = [models["teacher"]] + [students["global"][k] for k in ("kd", "baseline")]
    entries += [e[k] for e in local_models(manifest) for k in ("kd", "baseline") if e[k]]
    return [entry[suffix] for entry in entries for suffix in ("onnx", "keras")]


def verify_bundle(path) -> tuple[dict, str]:
    """Manifest and its sha256 after checking every file; raises BundleError/BundleIntegrityError."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{describe_path(path)}: bundle directory does not exist")
    manifest, digest = _read_manifest(path)
    recorded = manifest["files"]
    for relative in list(recorded) + _model_files(manifest):
        _check_inside(path, relative)
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST, DIGEST}
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
    for relative in _model_files(manifest):
        if relative not in recorded:
            raise BundleIntegrityError(f"{describe_path(path / relative)}: model not covered by a sha256")
        if relative.endswith(".onnx"):
            _check_onnx(path, relative, len(manifest["inputs"]["names"]))
    return manifest, digest


def load_bundle(path, *, threads: int = 1, slab_rows: int = 65536, device: str = "cpu") -> Bundle:
    """Verified ``Bundle`` for inference (onnxruntime with ``threads`` intra-op threads on ``device``)."""
    manifest, digest = verify_bundle(path)
    log.debug("loaded bundle %s sha256=%s", path, digest)
    return Bundle(Path(path).resolve(), manifest, digest, threads=threads, slab_rows=slab_rows, device=device)


@functools.lru_cache(maxsize=8)
def load_bundle_cached(path: str, sha256: str, threads: int = 1, slab_rows: int = 65536,
                       device: str = "cpu") -> Bundle:
    """``load_bundle`` once per process for a (path, manifest sha256); refuses a bundle that changed."""
    bundle = load_bundle(path, threads=threads, slab_rows=slab_rows, device=device)
    if bundle.sha256 != sha256:
        raise BundleIntegrityError(f"{describe_path(Path(path) / MANIFEST)}: sha256 {bundle.sha256} differs "
                                   f"from the expected {sha256} (bundle replaced since the task was built)")
    return bundle
