"""Property-based tests (hypothesis) of the ODL parser, the metadata extraction and the reader's entry checks.

Every outcome must be either a valid result (a parse tree; metadata values of the documented kinds; an opened
dataset whose values can be read) or one of the package's own errors naming the file — never another
exception. Inputs: random text and real metadata text (the fixtures' and a real granule's) with random edits;
random ODL trees (which must parse back unchanged); files from ``akkd_scale.simulate.l1b_writer`` with edited
metadata attributes, random attribute sets, random writer parameters (lattice, pointing, calibration, time,
sun) and random lattice values. Budgets: tests/io/conftest.py (``pytest -m fuzz`` for ~20 times more).
"""
from __future__ import annotations

import math
import re
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from pyhdf.SD import SD, SDC

from akkd_scale.errors import AkkdError, SceneFileError, describe_path
from akkd_scale.io.aster import metadata as md
from akkd_scale.io.odl import OdlNode, parse_odl
from akkd_scale.simulate.l1b_writer import write_aster_l1b, write_aster_l1t

pytestmark = pytest.mark.fuzz

DATA = Path(__file__).parent / "data"
SHAPE = (12, 14)
METADATA_ATTRIBUTES = ("StructMetadata.0", "coremetadata.0", "productmetadata.0", "productmetadata.t",
                       "productmetadata.v")
SOURCE = "/fuzz/AST_L1B_fuzz.hdf"


def budget(weight: int):
    """Hypothesis settings with ``weight`` units of the loaded profile's examples (tests/io/conftest.py)."""
    return settings(max_examples=max(1, weight * settings.default.max_examples))


# strategies ---------------------------------------------------------------------------------------------------------

#: Replacement values that are valid ODL but odd for the reader: zero, negative, huge, non-finite, wrong kind.
ODD_VALUES = ("0", "-0", "1", "-1", "61", "99", "-61", "1e309", "-1e309", "nan", "NaN", "inf", "-inf", "1e-320",
              "9" * 30, "0.0", "-999", "4294967296", '"text"', '""', "()", "(1, 2)", "(1, 2, 3)", '("a", "b")',
              "((1, 2), (3, 4))", "abc", '"2004-02-30"', '"25:61:61Z"', "T", '"0001-01-01T00:00:00"', '"²³"',
              '"20040715"', '"183005²Z"', "(nan, inf)", "(-91.0, 400.0)", "(0, 0)", '("01", "OFF")', '("3N")')
ODL_CHARS = st.sampled_from(list("=()\",/*\n\t _-.:+eE0123456789AZaz") + ["GROUP", "OBJECT", "END", "END_GROUP",
                                                                           "END_OBJECT", "VALUE", "\x00", "é"])
LATIN1 = st.characters(min_codepoint=1, max_codepoint=255)


def _real_texts() -> dict[str, str]:
    """Metadata texts of a fixture L1B and L1T (every attribute the writer makes) and of a real L1T granule."""
    import tempfile

    texts = {}
    with tempfile.TemporaryDirectory() as folder:
        for level, writer in (("1B", write_aster_l1b), ("1T", write_aster_l1t)):
            path = writer(Path(folder) / f"AST_L1{level[-1]}_text.hdf", shape=SHAPE)
            sd = SD(str(path), SDC.READ)
            try:
                texts.update({f"{level} {k}": v for k, v in sd.attributes().items() if isinstance(v, str)})
            finally:
                sd.end()
    for path in sorted(DATA.glob("*.txt")):
        texts[f"real {path.stem}"] = path.read_text()
    return texts


REAL_TEXTS = _real_texts()
NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")
VALUE_LINE = re.compile(r"(VALUE\s*=\s*)([^\n]*)")
#: Metadata objects the reader reads (their VALUE is edited) and StructMetadata statements (their value is).
ECS_KEYS = ("PROCESSINGLEVELID", "SHORTNAME", "MAPPROJECTIONNAME", "CALENDARDATE", "TIMEOFDAY", "SETTINGTIMEOFPOINTING",
            "SENSORNAME", "POINTINGANGLE", "GAIN", "SCENECENTER", "SOLARDIRECTION", "SCENEORIENTATIONANGLE",
            "UTMZONENUMBER", "UPPERLEFTM", "LOWERRIGHTM", "NORTHBOUNDINGCOORDINATE",
            *(f"{k}{b}" for k in ("INCL", "OFFSET", "CONUNIT") for b in ("10", "11", "12", "13", "14", "2", "3N")))
STRUCT_KEYS = ("Size", "Offset", "Increment", "DimensionName", "GeoDimension", "DataDimension", "SwathName",
               "DataFieldName", "GeoFieldName", "DimList")
ODD_OR_NUMBER = st.one_of(st.sampled_from(ODD_VALUES), st.floats().map(repr), st.integers(-10 ** 20, 10 ** 20).map(str))


def _key_spans(text: str, key: str) -> list[tuple[int, int]]:
    """Spans of the values of ``key`` in ``text`` (an ECS object's VALUE, or a StructMetadata statement)."""
    if key not in ECS_KEYS:
        return [m.span(1) for m in re.finditer(rf"\b{key}\s*=\s*([^\n]*)", text)]
    spans = []
    for start in re.finditer(rf"(?<![A-Z_])OBJECT\s*=\s*{key}\b", text):
        end = text.find("END_OBJECT", start.end())
        value = VALUE_LINE.search(text, start.end(), len(text) if end < 0 else end)
        if value:
            spans.append(value.span(2))
    return spans


EDITS = ("delete", "duplicate", "insert", "number", "value", "truncate", "key", "key", "key")
#: Edits that keep the ODL well formed (mostly): only values change, so the reader's own checks are reached.
VALUE_EDITS = ("number", "value", "key", "key")


@st.composite
def edited(draw, text: str, alphabet=ODL_CHARS, kinds=EDITS) -> str:
    """``text`` with 1–4 random edits: a span deleted, duplicated or replaced by random characters, a number, a
    VALUE or the value of a key the reader reads replaced by an odd value, or the text cut short."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 200)))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + "".join(draw(st.lists(alphabet, max_size=8))) + text[i:]
        elif kind == "truncate":
            text = text[:i]
        elif kind == "key":
            spans = [span for key in ECS_KEYS + STRUCT_KEYS for span in _key_spans(text, key)]
            if spans:
                start, end = draw(st.sampled_from(spans))
                text = text[:start] + draw(ODD_OR_NUMBER) + text[end:]
        else:
            matches = list((NUMBER if kind == "number" else VALUE_LINE).finditer(text))
            if matches:
                match = draw(st.sampled_from(matches))
                span = match.span() if kind == "number" else match.span(2)
                text = text[:span[0]] + draw(st.sampled_from(ODD_VALUES)) + text[span[1]:]
    return text


def real_text_edited(alphabet=ODL_CHARS):
    return st.sampled_from(sorted(REAL_TEXTS)).flatmap(lambda key: edited(REAL_TEXTS[key], alphabet))


FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
NAMES = st.builds(str.__add__, st.sampled_from(FIRST), st.text(FIRST + "0123456789", max_size=12)).filter(
    lambda s: s.upper() not in ("END", "GROUP", "OBJECT", "END_GROUP", "END_OBJECT"))
WORDS = st.builds(str.__add__, st.sampled_from(FIRST), st.text(FIRST + "0123456789.:", max_size=10))
SCALARS = st.one_of(st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(exclude_characters='"', min_codepoint=32, max_codepoint=0x2FF), max_size=12),
                    WORDS)
VALUES = st.one_of(SCALARS, st.lists(st.one_of(SCALARS, st.lists(SCALARS, max_size=3).map(tuple)), max_size=4)
                   .map(tuple))


def odl_value(value, bare: bool = False) -> str:
    """ODL text of a value: strings quoted (bare words when ``bare``), tuples in parentheses, floats by repr."""
    if isinstance(value, tuple):
        return "(" + ", ".join(odl_value(v) for v in value) + ")"
    if isinstance(value, str):
        return value if bare else f'"{value}"'
    return repr(value) if isinstance(value, float) else str(value)


@st.composite
def odl_trees(draw, depth: int = 0) -> dict:
    """A random GROUP/OBJECT tree: {"name", "kind", "attrs": {KEY: (value, bare)}, "children": [...]}."""
    keys = draw(st.lists(NAMES, max_size=4, unique_by=str.upper))
    attrs = {}
    for key in keys:
        bare = draw(st.booleans())
        value = draw(WORDS if bare else VALUES)
        attrs[key.upper()] = (value, bare)
    children = draw(st.lists(odl_trees(depth + 1), max_size=0 if depth >= 3 else 3))
    return {"name": draw(NAMES), "kind": draw(st.sampled_from(["GROUP", "OBJECT"])), "attrs": attrs,
            "children": children}


def odl_text(tree: dict, indent: str = "") -> str:
    lines = [f"{indent}{tree['kind']} = {tree['name']}"]
    lines += [f"{indent}  {key} = {odl_value(value, bare)}" for key, (value, bare) in tree["attrs"].items()]
    lines += [odl_text(child, indent + "  ") for child in tree["children"]]
    lines.append(f"{indent}END_{tree['kind']} = {tree['name']}")
    return "\n".join(lines)


def assert_same_tree(node: OdlNode, tree: dict) -> None:
    assert (node.name, node.kind) == (tree["name"], tree["kind"])
    assert set(node.attrs) == set(tree["attrs"])
    for key, (value, _) in tree["attrs"].items():
        assert node.attrs[key] == value and type(node.attrs[key]) is type(value), (key, node.attrs[key], value)
    assert len(node.children) == len(tree["children"])
    for child, expected in zip(node.children, tree["children"]):
        assert_same_tree(child, expected)


def assert_own_error(exc: BaseException, source: str) -> None:
    """One of the package's errors, one line, naming ``source`` first."""
    assert isinstance(exc, AkkdError), repr(exc)
    assert str(exc).startswith(source) and "\n" not in str(exc), str(exc)


# the ODL parser -----------------------------------------------------------------------------------------------------

@budget(20)
@given(st.one_of(st.text(max_size=300), st.lists(ODL_CHARS, max_size=60).map("".join), real_text_edited()))
def test_parse_odl_gives_a_tree_or_a_scene_file_error(text):
    try:
        root = parse_odl(text, source=SOURCE)
    except SceneFileError as exc:
        assert_own_error(exc, SOURCE)
        return
    assert root.name == "ROOT" and all(isinstance(n, OdlNode) for n in root.walk())


@budget(5)
@given(st.lists(odl_trees(), min_size=1, max_size=3), st.booleans())
def test_odl_trees_parse_back_unchanged(trees, end):
    text = "\n".join(odl_text(tree) for tree in trees) + ("\nEND\n" if end else "\n")
    root = parse_odl(text, source=SOURCE)
    assert len(root.children) == len(trees)
    for node, tree in zip(root.children, trees):
        assert_same_tree(node, tree)


# metadata extraction ------------------------------------------------------------------------------------------------

def _metadata_outcomes(meta: md.Metadata) -> None:
    """Every extractor gives a value of its documented kind or a SceneFileError naming the file."""
    assert md.processing_level(meta) in ("1B", "1T")
    assert md.short_name(meta) is None or isinstance(md.short_name(meta), str)
    for sensor, bands in (("TIR", ("10", "11", "12", "13", "14")), ("VNIR", ("2", "3N"))):
        handbook = (1.0,) * len(bands)
        gains, offsets, source = md.calibration(meta, bands, sensor, handbook)
        assert len(gains) == len(offsets) == len(bands) and isinstance(source, str)
        assert all(isinstance(v, float) for v in gains + offsets)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in md.band_gains(meta).items())
    angle, how = md.pointing_angle(meta, "TIR")
    assert isinstance(angle, float) and isinstance(how, str)
    attrs = md.scene_attributes(meta)
    assert all(isinstance(v, float) and math.isfinite(v) for v in attrs.values()), attrs
    try:
        when = md.acquisition_time(meta)
        assert when.endswith("Z") and datetime.fromisoformat(when.replace("Z", "+00:00")).tzinfo == timezone.utc
    except SceneFileError as exc:
        assert_own_error(exc, SOURCE)
    for sensor in ("TIR", "VNIR"):
        assert set(md.missing_projection_keys(meta, sensor)) <= set(md.PROJECTION_KEYS)
        try:
            projection = md.map_projection(meta, sensor)
        except SceneFileError as exc:
            assert_own_error(exc, SOURCE)
            continue
        assert 32601 <= projection.epsg <= 32660 or 32701 <= projection.epsg <= 32760
        assert all(math.isfinite(v) for v in projection.upper_left + projection.lower_right)


@st.composite
def attribute_sets(draw) -> dict[str, str]:
    """A random set of metadata attributes: some of a fixture's (L1B or L1T), edited or not, some left out,
    some added under other names (``coremetadata.1``, ``productmetadata.s``, random text)."""
    level = draw(st.sampled_from(["1B", "1T"]))
    attrs = {}
    for name in METADATA_ATTRIBUTES:
        key = f"{level} {name}"
        if key in REAL_TEXTS and draw(st.integers(0, 4)):
            attrs[name] = draw(edited(REAL_TEXTS[key])) if draw(st.booleans()) else REAL_TEXTS[key]
    for name in draw(st.lists(st.sampled_from(["coremetadata.1", "productmetadata.s", "productmetadata.1",
                                               "COREMETADATA.0", "productmetadata.t"]), max_size=2)):
        attrs[name] = draw(st.one_of(real_text_edited(), st.lists(ODL_CHARS, max_size=40).map("".join)))
    return attrs


@budget(20)
@given(attribute_sets())
def test_metadata_values_or_a_scene_file_error(attrs):
    try:
        meta = md.Metadata.from_attributes(attrs, SOURCE)
    except SceneFileError as exc:
        assert_own_error(exc, SOURCE)
        return
    _metadata_outcomes(meta)


# the reader on files ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz_base")
    return {"1B": write_aster_l1b(root / "AST_L1B_base.hdf", shape=SHAPE),
            "1T": write_aster_l1t(root / "AST_L1T_base.hdf", shape=SHAPE),
            "work": root}


def _scratch(base_files, level: str) -> Path:
    path = base_files["work"] / f"AST_L1{level[-1]}_{uuid.uuid4().hex[:8]}.hdf"
    shutil.copyfile(base_files[level], path)
    return path


def _set_attributes(path: Path, attrs: dict[str, str]) -> None:
    """Set text attributes (an empty text stands for a removed attribute: HDF4 cannot delete one)."""
    sd = SD(str(path), SDC.WRITE)
    try:
        for name, text in attrs.items():
            sd.attr(name).set(SDC.CHAR8, text or " ")
    finally:
        sd.end()


def open_outcome(path: Path) -> xr.Dataset | None:
    """Open ``path`` and read a strided sample of every variable; None after a SceneFileError naming the file."""
    where = describe_path(path)
    try:
        ds = xr.open_dataset(path, engine="aster_l1b", chunks={})
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        sample = ds.isel(y=slice(None, None, max(1, ny // 3)), x=slice(None, None, max(1, nx // 3))).load()
    except SceneFileError as exc:
        assert_own_error(exc, where)
        event(f"refused ({exc.variable})")  # outcome statistics: pytest --hypothesis-show-statistics
        return None
    event("opened")
    assert ds.attrs["source_file"] == where and ds.attrs["processing_level"] in ("1B", "1T")
    vza, sza = float(sample["view_zenith"]), float(sample["solar_zenith"])
    assert math.isnan(vza) or 0.0 <= vza < 90.0, vza
    assert math.isnan(sza) or 0.0 <= sza <= 180.0, sza
    assert np.isfinite(sample["latitude"].values).all() and np.isfinite(sample["longitude"].values).all()
    assert (np.abs(sample["longitude"].values) <= 180.0).all()
    assert not np.isinf(sample["radiance"].values).any() and not np.isinf(sample["ndvi"].values).any()
    assert ds.rio.crs is not None
    return sample


@budget(6)
@given(st.sampled_from(["1B", "1T"]), st.data())
def test_reader_on_edited_metadata_attributes(base_files, level, data):
    names = data.draw(st.lists(st.sampled_from(METADATA_ATTRIBUTES), min_size=1, max_size=3, unique=True))
    texts = {name: REAL_TEXTS[f"{level} {name}"] for name in names if f"{level} {name}" in REAL_TEXTS}
    kinds = data.draw(st.sampled_from([EDITS, VALUE_EDITS]))
    latin1 = ODL_CHARS.filter(lambda c: all(ord(x) < 256 for x in c))
    edits = {name: data.draw(edited(text, latin1, kinds))[:60_000] for name, text in texts.items()}
    path = _scratch(base_files, level)
    try:
        _set_attributes(path, edits)
        open_outcome(path)
    finally:
        path.unlink()


@budget(3)
@given(st.sampled_from(["1B", "1T"]), st.dictionaries(
    st.sampled_from(METADATA_ATTRIBUTES + ("coremetadata.1", "productmetadata.s", "productmetadata.1")),
    st.one_of(st.just(""), st.text(LATIN1, max_size=50), real_text_edited(LATIN1).map(lambda t: t[:60_000])),
    min_size=1, max_size=4))
def test_reader_on_random_attribute_sets(base_files, level, attrs):
    path = _scratch(base_files, level)
    try:
        _set_attributes(path, attrs)
        open_outcome(path)
    finally:
        path.unlink()


ANGLES = st.one_of(st.floats(-20, 20), st.sampled_from([math.nan, math.inf, -math.inf, 8.55, -8.55, 9.0, 1e300]))
COEFFICIENT = st.one_of(st.floats(-0.1, 0.1), st.sampled_from([0.0, -0.0, math.nan, math.inf, 1e-300, 1e300]))


@budget(5)
@given(level=st.sampled_from(["1B", "1T"]),
       shape=st.tuples(st.integers(2, 16), st.integers(2, 16)),
       pointing=st.one_of(st.none(), ANGLES),
       center=st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 180.0)),
       orientation=st.floats(-180.0, 180.0),
       pixel=st.sampled_from([15.0, 30.0, 90.0, 1000.0, 0.5]),
       coefficients=st.one_of(st.booleans(), st.dictionaries(st.sampled_from(["B10", "B11", "B12", "B13", "B14"]),
                                                             COEFFICIENT, min_size=1)),
       sun=st.one_of(st.none(), st.tuples(st.floats(-400.0, 400.0), st.one_of(st.floats(-100.0, 100.0),
                                                                                st.sampled_from([math.nan, 90.0])))),
       when=st.datetimes(datetime(1999, 12, 18), datetime(2040, 1, 1)),
       vnir=st.booleans(), sensor_names=st.booleans(),
       gain=st.sampled_from(["NOR", "HGH", "LO1", "OFF", "XYZ"]))
def test_reader_on_random_writer_parameters(base_files, level, shape, pointing, center, orientation, pixel,
                                            coefficients, sun, when, vnir, sensor_names, gain):
    path = base_files["work"] / f"AST_L1{level[-1]}_{uuid.uuid4().hex[:8]}.hdf"
    try:
        try:
            write_aster_l1b(path, shape=shape, processing_level=level, pointing_angle=pointing, center_lat=center[0],
                            center_lon=center[1], orientation_deg=orientation, pixel_size_m=pixel,
                            unit_conversion=coefficients, solar_direction=sun,
                            acquisition_time=when.replace(tzinfo=timezone.utc), include_vnir=vnir,
                            sensor_names=sensor_names, vnir_gain=gain if gain in ("NOR", "HGH", "LO1") else "NOR",
                            dn=np.full((5,) + shape, 1500, np.uint16))
        except (AkkdError, ValueError, KeyError, OverflowError):  # parameters the writer itself cannot write
            assume(False)
        if gain not in ("NOR", "HGH", "LO1"):  # a VNIR gain the writer cannot set: edit it into the file
            sd = SD(str(path), SDC.READ)
            text = sd.attributes()["productmetadata.0"]
            sd.end()
            _set_attributes(path, {"productmetadata.0": text.replace('("02", "NOR")', f'("02", "{gain}")')})
        open_outcome(path)
    finally:
        path.unlink(missing_ok=True)


LATTICE_VALUES = st.one_of(st.floats(-200.0, 200.0), st.sampled_from([math.nan, math.inf, -999.0, 90.0, -180.0]))


@budget(4)
@given(st.sampled_from(["1B", "1T"]), st.sampled_from(["Latitude", "Longitude"]), st.data())
def test_reader_on_random_lattice_values(base_files, level, name, data):
    path = _scratch(base_files, level)
    try:
        sd = SD(str(path), SDC.WRITE)
        try:
            for index in range(sd.info()[0]):
                sds = sd.select(index)
                if sds.info()[0] == name and sds.dim(0).info()[0].endswith("TIR_Swath"):
                    values = np.asarray(sds[:], float)
                    how = data.draw(st.sampled_from(["points", "shift", "scale", "constant"]))
                    if how == "points":
                        for _ in range(data.draw(st.integers(1, 5))):
                            k, m = data.draw(st.integers(0, 10)), data.draw(st.integers(0, 10))
                            values[k, m] = data.draw(LATTICE_VALUES)
                    elif how == "shift":
                        values = values + data.draw(st.floats(-400.0, 400.0))
                    elif how == "scale":
                        values = values * data.draw(st.floats(-3.0, 3.0))
                    else:
                        values[:] = data.draw(LATTICE_VALUES)
                    sds[:] = values
                sds.endaccess()
        finally:
            sd.end()
        open_outcome(path)
    finally:
        path.unlink()
