"""Bad bundles, one reproducer each: edited or unsealed manifests, schema violations, paths leaving the
bundle, unreadable ONNX/Keras files with matching sha256. Every one must give a BundleError naming the
file and what was expected, never a Python or protobuf traceback."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from akkd_scale.errors import BundleError, BundleIntegrityError
from akkd_scale.models.bundle import default_bundle_path, load_bundle, load_bundle_cached
from akkd_scale.training.bundle_writer import write_manifest
from akkd_scale.training.keras_io import load_keras_model


@pytest.fixture
def bundle_copy(tiny_bundle_path, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_bundle_path, target)
    return target


@pytest.fixture(scope="module")
def manifest(tiny_bundle_path) -> dict:
    return json.loads((tiny_bundle_path / "manifest.json").read_text())


def _node(tree, parts):
    for part in parts:
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    return tree


def _with(field, value):
    """Mutation setting a dotted manifest field (list indices as numbers)."""
    *parents, key = field.split(".")

    def mutate(m):
        parent = _node(m, parents)
        parent[int(key) if isinstance(parent, list) else key] = value
        return m

    return mutate


def _without(field):
    *parents, key = field.split(".")

    def mutate(m):
        del _node(m, parents)[key]
        return m

    return mutate


def _add_file(name, digest="0" * 64):
    def mutate(m):
        m["files"][name] = digest
        return m

    return mutate


def _drop_last_stratum(m):
    m["models"]["students"]["strata"].pop()
    return m


def _seal(directory, raw: bytes) -> None:
    """Write manifest bytes and a matching bundle.sha256, as a writer (or a determined editor) would."""
    (directory / "manifest.json").write_bytes(raw)
    (directory / "bundle.sha256").write_text(f"{hashlib.sha256(raw).hexdigest()}  manifest.json\n")


def _replace_file(bundle, relative: str, data: bytes) -> None:
    """Replace a bundle file and record its new sha256 (manifest resealed): only the content is bad."""
    (bundle / relative).write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][relative] = hashlib.sha256(data).hexdigest()
    write_manifest(bundle, manifest)


REVERSED_BANDS = ["B14", "B13", "B12", "B11", "B10"]
SCHEMA_CASES = {
    # Why 7: a malformed manifest gave AttributeError/KeyError tracebacks
    "top-level list": (lambda m: [], r"field \(top level\): \[\] \(expected a JSON object\)"),
    "empty object": (lambda m: {}, r"field format: missing \(expected \"akkd_scale\.bundle\"\)"),
    "format_version true": (_with("format_version", True), r"field format_version: true \(expected one of \[1, 2\]\)"),
    "no inputs": (_without("inputs"), r"field inputs: missing \(expected an object\)"),
    "inputs a list": (_with("inputs", [1, 2]), r"field inputs: \[1, 2\] \(expected an object\)"),
    "bands reordered": (_with("inputs.bands", REVERSED_BANDS), r"field inputs\.bands: \[\"B14\".*\(expected \[\"B10\""),
    "units": (_with("inputs.units", ["K"] * 7), r"field inputs\.units: .*\(expected \[.*\"deg\", \"1\"\]\)"),
    "unknown input": (
        _with("inputs.names.6", "soil_moisture"),
        r"field inputs\.names: .*\"soil_moisture\"\] \(expected \[.*\] followed by optional inputs "
        r"from \['air_temperature', 'column_water_vapour', 'ndvi'\], each once\)",
    ),
    "no missing value": (_without("inputs.missing_values.ndvi"), r"field inputs\.missing_values\.ndvi: missing"),
    "range_min short": (
        _with("inputs.range_min", [0.0] * 5),
        r"field inputs\.range_min: .*\(expected a list of 7 finite numbers\)",
    ),
    "range_max text": (_with("inputs.range_max.5", "60"), r"field inputs\.range_max: .*\(expected a list of 7 finite"),
    "range_max below range_min": (
        _with("inputs.range_max", [0.0] * 7),
        r"field inputs\.range_max: .*\(expected range_max >= range_min",
    ),
    "no mahalanobis": (_without("inputs.mahalanobis"), r"field inputs\.mahalanobis: missing"),
    "mahalanobis 5x6": (
        lambda m: _with("inputs.mahalanobis.inverse_covariance", m["inputs"]["mahalanobis"]["inverse_covariance"][:5])(
            m
        ),
        r"field inputs\.mahalanobis\.inverse_covariance: .*\(expected a 7 x 7 list of lists\)",
    ),
    "threshold text": (
        _with("inputs.mahalanobis.threshold", "big"),
        r"field inputs\.mahalanobis\.threshold: \"big\" \(expected a finite number > 0\)",
    ),
    "outputs names": (_with("outputs.names", ["lst"]), r"field outputs\.names: \[\"lst\"\] \(expected \["),
    "no strata": (_without("strata"), r"field strata: missing"),
    "unknown strata class": (
        _with("strata.classes.0.name", "colour"),
        r"field strata\.classes\.0\.name: \"colour\" \(expected one of",
    ),
    "strata edges descending": (
        _with("strata.classes.0.edges", [2.0, 1.0]),
        r"field strata\.classes\.0\.edges: \[2\.0, 1\.0\] \(expected a list of ascending",
    ),
    "no models": (_without("models"), r"field models: missing \(expected an object\)"),
    "no teacher onnx": (_without("models.teacher.onnx"), r"field models\.teacher\.onnx: missing"),
    "students per stratum": (
        _drop_last_stratum,
        r"field models\.students\.strata: .*\(expected a list of 2 entries \(one per strata "
        r"entry\)\)",
    ),
    "class names": (
        _with("land_cover.classes", ["water"]),
        r"field land_cover\.classes: \[\"water\"\] \(expected \[\"water\", \"snow_ice\"",
    ),
    "class student name": (
        _with("models.students.land_cover.2.name", "forest"),
        r"field models\.students\.land_cover\.2\.name: \"forest\" \(expected \"tree_cover\"\)",
    ),
    # the random bundle's fusion tables: 8 classes + 2 strata + 8 rules entries = 18 rows
    "calibration rows": (
        _with("fusion.calibration.factor.fusion", [[1.0]]),
        r"field fusion\.calibration\.factor\.fusion: .*\(expected 18 rows of 7 factors > 0\)",
    ),
    "calibration coefficients": (
        _with("fusion.calibration.cwv_coefficients", [1.0]),
        r"field fusion\.calibration\.cwv_coefficients: \[1\.0\] \(expected a list of 36 "
        r"finite numbers\)",
    ),
    "stratum name": (
        _with("models.students.strata.0.name", "elsewhere"),
        r"field models\.students\.strata\.0\.name: \"elsewhere\" \(expected \"moisture0",
    ),
    "kd without baseline": (
        _with("models.students.strata.0.baseline", None),
        r"field models\.students\.strata\.0: .*\(expected kd and baseline both null",
    ),
    "no fusion": (_without("fusion"), r"field fusion: missing \(expected an object\)"),
    "fusion rows": (
        _with("fusion.teacher_weight", [[0.5] * 6]),
        r"field fusion\.teacher_weight: .*\(expected 18 x 6 weights in \[0, 1\] \(one row per stratum\)\)",
    ),
    "fusion weight 1.5": (
        _with("fusion.teacher_weight.1.2", 1.5),
        r"field fusion\.teacher_weight\.1: .*\(expected a list of 6 finite numbers in \[0, 1\]\)",
    ),
    "lst_rmse head": (_without("fusion.lst_rmse.student"), r"field fusion\.lst_rmse\.student: missing"),
    "disagreement negative": (
        _with("fusion.lst_disagreement_ms", [-1.0] + [0.5] * 17),
        r"field fusion\.lst_disagreement_ms: \[-1\.0, 0\.5, .*\.\.\. "
        r"\(expected a list of 18 finite numbers >= 0\)",
    ),
    "no files": (_without("files"), r"field files: missing"),
    "file sha256": (_add_file("notes.txt", "abc"), r"field files\.notes\.txt: \"abc\" \(expected a sha256"),
    # Why 7: a manifest path such as ../../etc/hostname was followed outside the bundle
    "model path ../../etc/hostname": (
        _with("models.teacher.onnx", "../../etc/hostname"),
        r"field models\.teacher\.onnx: \"\.\./\.\./etc/hostname\" "
        r"\(expected a relative path inside the bundle ending in '\.onnx'\)",
    ),
    "student path ..": (
        _with("models.students.global.kd.keras", "students/../../x.keras"),
        r"field models\.students\.global\.kd\.keras: \"students/\.\./\.\./x\.keras\"",
    ),
    "absolute file path": (
        _add_file("/etc/hostname"),
        r"field files\./etc/hostname: \"/etc/hostname\" "
        r"\(expected a relative path inside the bundle\)",
    ),
}


@pytest.mark.parametrize("case", list(SCHEMA_CASES))
def test_schema_violations_name_field_and_expectation(manifest, tmp_path, case):
    mutate, message = SCHEMA_CASES[case]
    _seal(tmp_path, json.dumps(mutate(copy.deepcopy(manifest))).encode())
    with pytest.raises(BundleError, match=r"manifest\.json: " + message):
        load_bundle(tmp_path)


@pytest.mark.parametrize("field, value", [("fusion.teacher_weight.0.0", 0.123), ("inputs.range_max.0", 400.0)])
def test_manifest_edited_after_writing_refused(bundle_copy, field, value):
    """Why 7: edited fusion weights or a widened training range were accepted."""
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    (bundle_copy / "manifest.json").write_text(json.dumps(_with(field, value)(manifest), indent=1))
    with pytest.raises(
        BundleIntegrityError,
        match=r"manifest\.json: sha256 [0-9a-f]{64} does not match "
        r"bundle\.sha256 \([0-9a-f]{64}\); manifest edited",
    ):
        load_bundle(bundle_copy)


def test_resealed_edit_changes_the_bundle_identity(bundle_copy):
    """Rewriting the digest is possible (no signing key), but the bundle's sha256 changes with it."""
    original = load_bundle(bundle_copy).sha256
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    write_manifest(bundle_copy, _with("fusion.teacher_weight.0.0", 0.123)(manifest))
    assert load_bundle(bundle_copy).sha256 != original
    with pytest.raises(BundleIntegrityError, match=f"differs from the expected {original}"):
        load_bundle_cached(str(bundle_copy), original)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"bundle\.sha256: missing"),
        ("deadbeef  manifest.json\n", r"bundle\.sha256: malformed"),
        (f"{'0' * 64}  other.json\n", r"bundle\.sha256: malformed"),
    ],
)
def test_missing_or_malformed_digest_refused(bundle_copy, content, message):
    digest = bundle_copy / "bundle.sha256"
    digest.unlink() if content is None else digest.write_text(content)
    with pytest.raises(BundleIntegrityError, match=message):
        load_bundle(bundle_copy)


def test_symlink_leaving_the_bundle_refused(bundle_copy, tmp_path):
    """A listed file that is a symlink to a file outside the bundle (even with the right bytes) is refused."""
    outside = tmp_path / "outside.onnx"
    shutil.copy(bundle_copy / "students" / "global.onnx", outside)
    (bundle_copy / "students" / "global.onnx").unlink()
    (bundle_copy / "students" / "global.onnx").symlink_to(outside)
    with pytest.raises(
        BundleIntegrityError,
        match=r"'students/global\.onnx' resolves to .*outside\.onnx, "
        r"outside the bundle directory",
    ):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("data", [b"\x08\x07garbage that is not a protobuf \xff\xfe", b""], ids=["garbage", "empty"])
def test_unreadable_onnx_with_matching_sha256(bundle_copy, data):
    """Why 7: an ONNX file of garbage with a matching hash gave a protobuf DecodeError traceback."""
    _replace_file(bundle_copy, "students/global.onnx", data)
    with pytest.raises(
        BundleError,
        match=r"students/global\.onnx: not a readable ONNX model \((DecodeError|"
        r"ValidationError)",
    ):
        load_bundle(bundle_copy)


def test_onnx_that_onnxruntime_cannot_run(bundle_copy):
    node = helper.make_node("Mystery", ["features"], ["targets"], domain="ai.example")
    graph = helper.make_graph(
        [node],
        "mystery",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 7])],
        [helper.make_tensor_value_info("targets", TensorProto.FLOAT, ["N", 6])],
    )
    model = helper.make_model(
        graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.example", 1)]
    )
    _replace_file(bundle_copy, "teacher.onnx", model.SerializeToString())
    bundle = load_bundle(bundle_copy)  # valid ONNX with the right shapes: only onnxruntime can tell
    with pytest.raises(BundleError, match=r"teacher\.onnx: onnxruntime cannot load the model \(Fail"):
        bundle.predict(np.full((2, 5), 295.0), 0.0, heads=("teacher",))


def test_onnx_with_wrong_shapes(bundle_copy):
    model = onnx.load(str(bundle_copy / "teacher.onnx"))
    model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value = 5
    _replace_file(bundle_copy, "teacher.onnx", model.SerializeToString())
    with pytest.raises(
        BundleError,
        match=r"teacher\.onnx: ONNX input/output shapes .* \(expected one input "
        r"\(N, 7\) and one output \(N, 6\)\)",
    ):
        load_bundle(bundle_copy)


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_unreadable_keras_with_matching_sha256(bundle_copy):
    _replace_file(bundle_copy, "teacher.keras", b"PK\x03\x04 truncated zip")
    bundle = load_bundle(bundle_copy)  # Keras files are read only on request
    with pytest.raises(BundleError, match=r"teacher\.keras: not a readable Keras model \(ValueError"):
        load_keras_model(bundle, "teacher.keras")


def test_load_bundle_on_a_file_says_it_is_a_file(tmp_path):
    path = tmp_path / "teacher.onnx"
    path.write_bytes(b"not a directory")
    with pytest.raises(
        BundleError,
        match=r"teacher\.onnx: is a file, not a bundle directory \(expected the "
        r"directory holding manifest\.json",
    ):
        load_bundle(path)


def test_keras_network_of_an_onnx_only_bundle_or_a_wheel_install_is_a_clear_error(bundle_path, tmp_path):
    """The random bundle has ONNX files only; a listed .keras file that is absent (wheel) is named."""
    bundle = load_bundle(bundle_path)
    with pytest.raises(BundleError, match=r"the bundle has ONNX files only \(no \.keras network to fine-tune\)"):
        load_keras_model(bundle, bundle.manifest["models"]["teacher"].get("keras"))
    default = load_bundle(default_bundle_path())
    shadow = tmp_path / "default"
    shutil.copytree(default.path, shadow, ignore=shutil.ignore_patterns("*.keras"))
    with pytest.raises(
        BundleError,
        match=r"teacher\.keras: missing \(the \.keras files are not installed with "
        r"the runtime wheel",
    ):
        load_keras_model(load_bundle(shadow), "teacher.keras")
