"""The bundle manifest: format name and versions, the bundle's own file names, and the check of every field the
runtime reads (:func:`check_manifest`).

Every error names the manifest, the dotted field (list items by index, e.g. ``fusion.teacher_weight.1``) and
what was expected, so a malformed manifest never surfaces as an ``AttributeError`` or ``KeyError``.
"""

from __future__ import annotations

import json
import math

from ..conventions import (
    BANDS,
    INPUT_NAMES,
    INPUT_UNITS,
    LAND_COVER_CLASSES,
    N_TARGETS,
    NDVI,
    NETWORK_HEADS,
    OPTIONAL_INPUTS,
    OUTPUT_NAMES,
    OUTPUT_UNITS,
)
from ..errors import BundleError
from .fusion import GIVEN_CWV_KEY, N_CWV_FEATURES, NIGHT_INPUT_KEY, RULES_OFFSET_KEY, n_calibration_bins
from .strata import FEATURES as STRATA_FEATURES
from .strata import STRATA_VERSION, stratum_names

FORMAT = "akkd_scale.bundle"
FORMAT_VERSION = 2
#: Format 1: inputs BT10–14 + view zenith, students per BT stratum. Format 2 adds named optional inputs
#: (``inputs.names`` beyond the six, with ``inputs.missing_values``), land-cover class students
#: (``land_cover.classes``, ``models.students.land_cover``) and a calibrated uncertainty (``fusion.calibration``).
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
DIGEST = "bundle.sha256"  # sha256 of manifest.json, in sha256sum format
#: A network's files: ONNX (what retrieval runs) and, optionally, Keras (fine-tuning, ``training.keras_io``).
NETWORK_FILES = ("onnx", "keras")
MODEL_ENTRY = 'an object {"onnx": path} or {"onnx": path, "keras": path}'


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


def model_files(manifest: dict) -> list[str]:
    """Relative paths of every network file (ONNX, and Keras where listed) a checked manifest names."""
    models = manifest["models"]
    students = models["students"]
    entries = [models["teacher"]] + [students["global"][k] for k in ("kd", "baseline")]
    entries += [e[k] for e in local_models(manifest) for k in ("kd", "baseline") if e[k]]
    return [entry[suffix] for entry in entries for suffix in NETWORK_FILES if suffix in entry]


def is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_relative_path(value: str, suffix: str = "") -> bool:
    """A POSIX path relative to the bundle directory that cannot leave it (no absolute, '..', '.', '')."""
    parts = value.split("/")
    return (
        value.endswith(suffix)
        and "\\" not in value
        and ":" not in value
        and value not in (MANIFEST, DIGEST)
        and not any(p in ("", ".", "..") for p in parts)
    )


def _path_expected(suffix: str = "") -> str:
    return "a relative path inside the bundle" + (f" ending in {suffix!r}" if suffix else "")


def _describe(value) -> str:
    """Short JSON text of a manifest value for error messages."""
    text = "an object" if isinstance(value, dict) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bounds(lo: float, hi: float) -> str:
    return (f" in [{lo:g}, {hi:g}]" if math.isfinite(hi) else f" >= {lo:g}") if math.isfinite(lo) else ""


class _Checker:
    """Field access that raises a BundleError naming the manifest, the field and what was expected."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, value, expected: str):
        raise BundleError(f"{self.where}: field {field}: {_describe(value)} (expected {expected})")

    def get(self, node: dict, field: str, key: str, kind: type = dict, expected: str = "an object"):
        """``node[key]`` of JSON type ``kind`` (dict, list, str, int, float for any finite number)."""
        name = f"{field}.{key}" if field else key
        if key not in node:
            raise BundleError(f"{self.where}: field {name}: missing (expected {expected})")
        value = node[key]
        if not (_is_number(value) if kind is float else type(value) is kind):
            self.fail(name, value, expected)
        return value

    def equal(self, node: dict, field: str, key: str, expected_value):
        value = self.get(node, field, key, type(expected_value), json.dumps(expected_value))
        if value != expected_value:
            self.fail(f"{field}.{key}" if field else key, value, json.dumps(expected_value))

    def numbers(self, node: dict, field: str, key: str, length: int, lo=-math.inf, hi=math.inf) -> list:
        expected = f"a list of {length} finite numbers{_bounds(lo, hi)}"
        values = self.get(node, field, key, list, expected)
        if len(values) != length or not all(_is_number(v) and lo <= v <= hi for v in values):
            self.fail(f"{field}.{key}", values, expected)
        return values

    def ascending(self, node: dict, field: str, key: str, expected: str) -> list:
        values = self.get(node, field, key, list, expected)
        self.numbers(node, field, key, len(values))
        if values != sorted(values):
            self.fail(f"{field}.{key}", values, expected)
        return values

    def rows(
        self, node: dict, field: str, key: str, n_rows: int, length: int, expected: str, lo=-math.inf, hi=math.inf
    ) -> None:
        """``node[key]``: ``n_rows`` lists of ``length`` numbers in [lo, hi]; row errors name the row index."""
        table = self.get(node, field, key, list, expected)
        if len(table) != n_rows or any(type(row) is not list for row in table):
            self.fail(f"{field}.{key}", table, expected)
        for i, row in enumerate(table):
            self.numbers({str(i): row}, f"{field}.{key}", str(i), length, lo, hi)

    def model(self, node: dict, field: str, key: str) -> None:
        """``node[key]`` = {"onnx": path} with an optional "keras": path, each a safe relative path."""
        entry = self.get(node, field, key, dict, MODEL_ENTRY)
        for suffix in NETWORK_FILES:
            if suffix == "onnx" or suffix in entry:
                self.path(entry, f"{field}.{key}", suffix, f".{suffix}")

    def path(self, node: dict, field: str, key: str, suffix: str) -> None:
        value = self.get(node, field, key, str, _path_expected(suffix))
        if not _is_relative_path(value, suffix):
            self.fail(f"{field}.{key}", value, _path_expected(suffix))


def check_manifest(manifest, where: str) -> None:
    """Raise a BundleError (naming ``where``, the field and what was expected) unless ``manifest`` has every field
    the runtime reads, in this code's format."""
    c = _Checker(where)
    if type(manifest) is not dict:
        c.fail("(top level)", manifest, "a JSON object")
    c.equal(manifest, "", "format", FORMAT)
    versions = f"one of {list(READABLE_VERSIONS)}"
    version = c.get(manifest, "", "format_version", int, versions)
    if version not in READABLE_VERSIONS:
        c.fail("format_version", version, versions)
    _inputs(c, c.get(manifest, "", "inputs"), version)
    outputs = c.get(manifest, "", "outputs")
    c.equal(outputs, "outputs", "names", list(OUTPUT_NAMES))
    c.equal(outputs, "outputs", "units", list(OUTPUT_UNITS))
    names = _strata(c, c.get(manifest, "", "strata"))
    classes = []
    if version >= 2 and "land_cover" in manifest:
        c.equal(
            c.get(manifest, "", "land_cover", dict, "an object {classes}"),
            "land_cover",
            "classes",
            list(LAND_COVER_CLASSES),
        )
        classes = list(LAND_COVER_CLASSES)
    _models(c, c.get(manifest, "", "models"), names, classes)
    _fusion(c, c.get(manifest, "", "fusion"), len(classes) + len(names), manifest["inputs"]["names"], len(classes))
    files = c.get(manifest, "", "files", dict, "an object {relative path: sha256}")
    for relative, digest in files.items():
        if not _is_relative_path(relative):
            c.fail(f"files.{relative}", relative, _path_expected())
        if not is_sha256(digest):
            c.fail(f"files.{relative}", digest, "a sha256 (64 lowercase hex digits)")


def _inputs(c: _Checker, inputs: dict, version: int) -> None:
    names = c.get(inputs, "inputs", "names", list, "a list of input names")
    extra = names[len(INPUT_NAMES) :]
    expected = (
        f"{list(INPUT_NAMES)} followed by optional inputs from {sorted(OPTIONAL_INPUTS)}, each once"
        if version >= 2
        else json.dumps(list(INPUT_NAMES))
    )
    if (
        names[: len(INPUT_NAMES)] != list(INPUT_NAMES)
        or (extra and version < 2)
        or any(name not in OPTIONAL_INPUTS for name in extra)
        or len(set(extra)) != len(extra)
    ):
        c.fail("inputs.names", names, expected)
    c.equal(inputs, "inputs", "bands", list(BANDS))
    c.equal(inputs, "inputs", "units", list(INPUT_UNITS) + [OPTIONAL_INPUTS[name][1] for name in extra])
    if extra:
        missing = c.get(inputs, "inputs", "missing_values", dict, f"an object with a number for {extra}")
        for name in extra:
            c.get(missing, "inputs.missing_values", name, float, "a finite number")
    n = len(names)
    low = c.numbers(inputs, "inputs", "range_min", n)
    high = c.numbers(inputs, "inputs", "range_max", n)
    if any(lo > hi for lo, hi in zip(low, high)):
        c.fail("inputs.range_max", high, "range_max >= range_min for every input")
    maha = c.get(inputs, "inputs", "mahalanobis")
    c.numbers(maha, "inputs.mahalanobis", "mean", n)
    c.rows(maha, "inputs.mahalanobis", "inverse_covariance", n, n, f"a {n} x {n} list of lists")
    threshold = c.get(maha, "inputs.mahalanobis", "threshold", float, "a finite number > 0")
    if threshold <= 0:
        c.fail("inputs.mahalanobis.threshold", threshold, "a finite number > 0")


def _strata(c: _Checker, strata: dict) -> list[str]:
    """Checks the strata spec; returns the stratum names."""
    c.equal(strata, "strata", "version", STRATA_VERSION)
    classes = c.get(strata, "strata", "classes", list, "a non-empty list of classifications")
    known = f"one of {sorted(STRATA_FEATURES)}, each once"
    seen = []
    for i, cls in enumerate(classes):
        field = f"strata.classes.{i}"
        if type(cls) is not dict:
            c.fail(field, cls, "an object {name, edges}")
        name = c.get(cls, field, "name", str, known)
        if name not in STRATA_FEATURES or name in seen:
            c.fail(f"{field}.name", name, known)
        seen.append(name)
        c.ascending(cls, field, "edges", "a list of ascending finite numbers")
    if not classes:
        c.fail("strata.classes", classes, "a non-empty list of classifications")
    return stratum_names(strata)


def _models(c: _Checker, models: dict, names: list[str], classes: list[str]) -> None:
    """Teacher, global students and one {name, kd, baseline} entry per stratum and per land-cover class."""
    c.model(models, "models", "teacher")
    students = c.get(models, "models", "students", dict, 'an object {"global", "strata"}')
    global_ = c.get(students, "models.students", "global", dict, 'an object {"kd", "baseline"}')
    for kind in ("kd", "baseline"):
        c.model(global_, "models.students.global", kind)
    _local(c, students, "strata", names)
    if classes:
        _local(c, students, "land_cover", classes)


def _local(c: _Checker, students: dict, key: str, names: list[str]) -> None:
    """One {name, kd, baseline} entry per stratum or class, in order."""
    entries = c.get(students, "models.students", key, list, f"a list of {len(names)} entries")
    if len(entries) != len(names):
        c.fail(f"models.students.{key}", entries, f"a list of {len(names)} entries (one per {key} entry)")
    for i, (entry, name) in enumerate(zip(entries, names)):
        field = f"models.students.{key}.{i}"
        if type(entry) is not dict:
            c.fail(field, entry, "an object {name, kd, baseline}")
        c.equal(entry, field, "name", name)
        own = [entry.get(kind) is not None for kind in ("kd", "baseline")]
        if own[0] != own[1] or "kd" not in entry or "baseline" not in entry:
            c.fail(field, entry, "kd and baseline both null (global students) or both model entries")
        if own[0]:
            for kind in ("kd", "baseline"):
                c.model(entry, field, kind)


def _fusion(c: _Checker, fusion: dict, n: int, input_names=(), n_classes: int = 0) -> None:
    """Fusion weights, per-head LST RMSE and disagreement, one row per local model (and, with ``rules_offset``,
    one more per land-cover class: the rules entries); optional calibration."""
    if RULES_OFFSET_KEY in fusion:
        if not n_classes or fusion[RULES_OFFSET_KEY] != n or type(fusion[RULES_OFFSET_KEY]) is not int:
            c.fail(
                f"fusion.{RULES_OFFSET_KEY}",
                fusion[RULES_OFFSET_KEY],
                f"{n} (the number of local models), in a bundle with land-cover classes",
            )
        n += n_classes
    c.rows(
        fusion,
        "fusion",
        "teacher_weight",
        n,
        N_TARGETS,
        f"{n} x {N_TARGETS} weights in [0, 1] (one row per stratum)",
        0.0,
        1.0,
    )
    rmse = c.get(fusion, "fusion", "lst_rmse", dict, f"an object with the heads {list(NETWORK_HEADS)}")
    for head in NETWORK_HEADS:
        c.numbers(rmse, "fusion.lst_rmse", head, n, 0.0)
    c.numbers(fusion, "fusion", "lst_disagreement_ms", n, 0.0)
    if "calibration" not in fusion:
        return
    calibration = c.get(fusion, "fusion", "calibration", dict, "an object {cwv_coefficients, edges, factor}")
    c.numbers(calibration, "fusion.calibration", "cwv_coefficients", N_CWV_FEATURES)
    c.ascending(calibration, "fusion.calibration", "edges", "ascending finite numbers")
    if NIGHT_INPUT_KEY in calibration:
        if calibration[NIGHT_INPUT_KEY] != NDVI or NDVI not in input_names:
            c.fail(
                f"fusion.calibration.{NIGHT_INPUT_KEY}",
                calibration[NIGHT_INPUT_KEY],
                f'"{NDVI}", an input of the bundle',
            )
    n_bins = n_calibration_bins(calibration)  # water-vapour bins, by day then at night with night_input
    factor = c.get(calibration, "fusion.calibration", "factor", dict, f"an object with {list(NETWORK_HEADS)}")
    for head in NETWORK_HEADS:
        c.rows(factor, "fusion.calibration.factor", head, n, n_bins, f"{n} rows of {n_bins} factors > 0", 0.0)
    if GIVEN_CWV_KEY in calibration and calibration[GIVEN_CWV_KEY] not in (
        [name for name in input_names if name == "column_water_vapour"]
    ):
        c.fail(
            f"fusion.calibration.{GIVEN_CWV_KEY}",
            calibration[GIVEN_CWV_KEY],
            '"column_water_vapour", an input of the bundle',
        )
