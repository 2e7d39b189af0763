"""Land-cover legends and NDVI/BT rules, against hand-written expectations."""

from __future__ import annotations

import re

import numpy as np
import pytest

from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.errors import InputError
from akkd_scale.landcover.legends import IGBP, WORLDCOVER, classes_from_codes
from akkd_scale.landcover.rules import classes_from_rules

CODE = {name: i for i, name in enumerate(LAND_COVER_CLASSES)}


def test_classes_are_the_simulator_order():
    assert LAND_COVER_CLASSES == (
        "water",
        "snow_ice",
        "tree_cover",
        "cropland",
        "grassland_shrubland",
        "sparse_vegetation_bare_soil",
        "bare_rock_desert",
        "built_up",
    )


def test_worldcover_legend():
    codes = np.array([[10, 20, 30, 40, 50, 60], [70, 80, 90, 95, 100, 0]], np.uint8)
    expected = [[2, 4, 4, 3, 7, 6], [1, 0, 4, 2, 5, -1]]
    got = classes_from_codes(codes, "worldcover", source="wc.tif")
    assert got.dtype == np.int8 and got.tolist() == expected


def test_igbp_legend_with_fill_and_nodata():
    codes = np.arange(1, 18)
    expected = [2, 2, 2, 2, 2, 4, 5, 2, 4, 4, 4, 3, 7, 3, 1, 6, 0]
    assert classes_from_codes(codes, "igbp", source="igbp.tif").tolist() == expected
    assert classes_from_codes(np.array([255, 254]), "igbp", source="igbp.tif", nodata=254).tolist() == [-1, -1]
    assert set(IGBP) == set(range(1, 18)) and len(WORLDCOVER) == 11


@pytest.mark.parametrize("legend, codes, bad", [("worldcover", [10, 33, 20, 7], "[7, 33]"), ("igbp", [1, 18], "[18]")])
def test_unknown_codes_are_an_error_naming_them(legend, codes, bad):
    message = rf"map\.tif: land cover: codes {re.escape(bad)} are not in the {legend} legend"
    with pytest.raises(InputError, match=message):
        classes_from_codes(np.array(codes), legend, source="map.tif")


def test_rules_on_synthetic_values():
    #            ndvi   bt10   bt13   bt14   expected
    cases = [
        (-0.05, 268.0, 270.0, 269.5, "snow_ice"),  # cold, low NDVI
        (0.05, 271.0, 272.0, 272.0, "snow_ice"),
        (-0.20, 290.0, 291.5, 291.0, "water"),  # negative NDVI, flat spectrum
        (-0.20, 290.0, 296.0, 295.0, "water"),  # humid air: 5 K of atmospheric contrast
        (-0.20, 288.0, 297.0, 296.0, "bare_rock_desert"),  # negative NDVI but quartz-like contrast
        (0.75, 296.0, 298.0, 297.5, "tree_cover"),
        (0.45, 300.0, 302.0, 301.0, "grassland_shrubland"),
        (0.15, 305.0, 313.0, 312.0, "bare_rock_desert"),
        (0.15, 308.0, 311.0, 310.5, "sparse_vegetation_bare_soil"),
        (0.30, 300.0, 301.0, 301.0, "sparse_vegetation_bare_soil"),
        (0.60, 300.0, 301.0, 301.0, "grassland_shrubland"),
        (np.nan, 300.0, 301.0, 301.0, None),
        (0.5, np.nan, 301.0, 301.0, None),
    ]
    ndvi, bt10, bt13, bt14 = (np.array([c[i] for c in cases]) for i in range(4))
    got = classes_from_rules(ndvi, bt10, bt13, bt14)
    assert got.dtype == np.int8
    assert got.tolist() == [CODE[c[4]] if c[4] else -1 for c in cases]
    assert CODE["built_up"] not in got and CODE["cropland"] not in got
