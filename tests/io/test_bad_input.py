"""Every kind of unreadable scene raises SceneFileError naming the file, the variable and the expectation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from akkd_scale.errors import SceneFileError
from akkd_scale.simulate.l1b_writer import write_ast08, write_aster_l1b

SHAPE = (30, 40)


def open_scene(path):
    return xr.open_dataset(path, engine="aster_l1b", chunks={})


def test_non_hdf_file(tmp_path):
    path = tmp_path / "AST_L1B_text.hdf"
    path.write_text("this is not an HDF file\n")
    with pytest.raises(SceneFileError, match="AST_L1B_text.hdf.*not HDF.*expected an HDF4") as info:
        open_scene(path)
    assert info.value.source.endswith("AST_L1B_text.hdf")


def test_hdf5_file_is_named_as_such(tmp_path):
    path = tmp_path / "AST_L1T_file.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(SceneFileError, match="HDF5"):
        open_scene(path)


def test_missing_file(tmp_path):
    with pytest.raises(SceneFileError, match="does not exist"):
        open_scene(tmp_path / "AST_L1B_nothing.hdf")


def test_vnir_only_file(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_vnir.hdf", shape=SHAPE, include_tir=False)
    with pytest.raises(SceneFileError, match="AST_L1B_vnir.hdf: TIR_Swath: no TIR_Swath.*VNIR_Swath") as info:
        open_scene(path)
    assert info.value.variable == "TIR_Swath"


def test_level2_product(tmp_path):
    path = write_ast08(tmp_path / "AST_08_kinetic.hdf", shape=SHAPE)
    with pytest.raises(SceneFileError, match="product AST_08.*SurfaceKineticTemperature"):
        open_scene(path)


def test_missing_band(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_four.hdf", shape=SHAPE, bands=("B10", "B11", "B13", "B14"))
    with pytest.raises(SceneFileError, match="ImageData12: band B12 is missing") as info:
        open_scene(path)
    assert info.value.variable == "ImageData12" and "ImageData10" in info.value.expected


def test_wrong_dimensions(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_dims.hdf", shape=SHAPE, band_shapes={"B12": (20, 40)})
    with pytest.raises(SceneFileError, match=r"bands differ in shape.*ImageData12 \(20, 40\)"):
        open_scene(path)


def test_all_fill_scene(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_fill.hdf", shape=SHAPE, fill_mask=np.ones(SHAPE, bool))
    with pytest.raises(SceneFileError, match="every pixel is fill") as info:
        open_scene(path)
    assert info.value.variable == "ImageData13"


def test_single_valid_pixel_is_not_all_fill(tmp_path):
    fill = np.ones(SHAPE, bool)
    fill[17, 33] = False  # off the strided sample used for the quick check
    path = write_aster_l1b(tmp_path / "AST_L1B_onepixel.hdf", shape=SHAPE, fill_mask=fill)
    bt = open_scene(path).brightness_temperature.values
    assert np.isfinite(bt).sum() == 5 and np.isfinite(bt[:, 17, 33]).all()


@pytest.mark.parametrize("fraction", [0.3, 0.97])
def test_truncated_file(tmp_path, fraction):
    good = write_aster_l1b(tmp_path / "AST_L1B_good.hdf", shape=SHAPE)
    data = good.read_bytes()
    path = tmp_path / "AST_L1B_truncated.hdf"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(SceneFileError, match="AST_L1B_truncated.hdf.*(truncated|corrupt)"):
        open_scene(path).compute()


def test_file_object_is_rejected(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_obj.hdf", shape=SHAPE)
    with open(path, "rb") as handle, pytest.raises(SceneFileError, match="not a path"):
        xr.open_dataset(handle, engine="aster_l1b")


def _set_lattice(path, name: str, values: float) -> None:
    """Overwrite every ``name`` lattice SDS of a written file (TIR and VNIR) with ``values``."""
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.WRITE)
    try:
        for index in range(sd.info()[0]):
            sds = sd.select(index)
            if sds.info()[0] == name:
                sds[:] = np.full(sds.info()[2], values, dtype=float)
            sds.endaccess()
    finally:
        sd.end()


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "Latitude",
            -999.0,
            r"Latitude: geolocation lattice has 121 invalid point\(s\), e.g. -999.0 \(expected finite "
            r"degrees within ±90",
        ),
        ("Latitude", 95.0, r"Latitude: geolocation lattice has 121 invalid point\(s\), e.g. 95.0"),
        ("Latitude", np.nan, r"Latitude: geolocation lattice has 121 invalid point\(s\), e.g. nan"),
        (
            "Longitude",
            200.0,
            r"Longitude: geolocation lattice has 121 invalid point\(s\), e.g. 200.0 \(expected finite "
            r"degrees within ±180",
        ),
    ],
)
def test_impossible_geolocation_lattice_is_refused(tmp_path, name, value, message):
    path = write_aster_l1b(tmp_path / "AST_L1B_lattice.hdf", shape=SHAPE)
    _set_lattice(path, name, value)
    with pytest.raises(SceneFileError, match=r"AST_L1B_lattice.hdf: " + message):
        open_scene(path)


def test_pointing_angle_beyond_aster_range_is_refused(tmp_path):
    path = write_aster_l1b(tmp_path / "AST_L1B_pointing.hdf", shape=SHAPE, pointing_angle=25.0)
    with pytest.raises(
        SceneFileError,
        match=r"POINTINGANGLE: TIR pointing angle 25.0° .*\(expected a finite angle "
        r"within ±9.0°",
    ):
        open_scene(path)


def test_non_positive_calibration_is_refused(tmp_path):
    dn = np.full((5,) + SHAPE, 2000, dtype=np.uint16)
    path = write_aster_l1b(tmp_path / "AST_L1B_gain.hdf", dn=dn, shape=SHAPE, unit_conversion={"B12": -0.00659})
    with pytest.raises(
        SceneFileError,
        match=r"INCL: unit conversion coefficients B12 -0.00659 .*\(expected finite "
        r"positive radiance per DN",
    ):
        open_scene(path)
