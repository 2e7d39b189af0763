"""Land-cover map legends: ESA WorldCover and MODIS MCD12Q1 IGBP codes → the project's classes.

Classes are ``conventions.LAND_COVER_CLASSES`` (codes 0…7, -1 unknown); the tables and the reasons for
each mapping are documented in docs/pipeline.md ("Land cover"). One place checks a legend name
(:func:`check_legend`).
"""

from __future__ import annotations

import re

import numpy as np

from ..conventions import LAND_COVER_CLASSES, LAND_COVER_UNKNOWN
from ..errors import InputError

#: ESA WorldCover 2020/2021 (v100/v200) map codes → classes; 0 is the product's no-data value.
WORLDCOVER = {
    10: "tree_cover",
    20: "grassland_shrubland",
    30: "grassland_shrubland",
    40: "cropland",
    50: "built_up",
    60: "bare_rock_desert",
    70: "snow_ice",
    80: "water",
    90: "grassland_shrubland",  # herbaceous wetland: a grass canopy over wet soil
    95: "tree_cover",  # mangroves
    100: "sparse_vegetation_bare_soil",
}  # moss and lichen: thin partial cover over soil/rock
#: MODIS MCD12Q1 LC_Type1 (IGBP) codes → classes; 255 is the product's fill.
IGBP = {
    1: "tree_cover",
    2: "tree_cover",
    3: "tree_cover",
    4: "tree_cover",
    5: "tree_cover",
    6: "grassland_shrubland",  # closed shrublands (>60 % woody cover)
    7: "sparse_vegetation_bare_soil",  # open shrublands: 10–60 % woody cover, mostly arid, soil between
    8: "tree_cover",  # woody savannas: 30–60 % tree cover over grass
    9: "grassland_shrubland",  # savannas: 10–30 % tree cover, herbaceous canopy dominates
    10: "grassland_shrubland",
    11: "grassland_shrubland",  # permanent wetlands: as WorldCover's herbaceous wetland
    12: "cropland",
    13: "built_up",
    14: "cropland",  # cropland/natural vegetation mosaics: 40–60 % cropland
    15: "snow_ice",
    16: "bare_rock_desert",
    17: "water",
}
#: Legend name → (code → class, the product's no-data/fill code).
LEGENDS = {"worldcover": (WORLDCOVER, 0), "igbp": (IGBP, 255)}


def legend_codes(legend: str) -> set[int]:
    """Codes a legend knows: its classes and its no-data/fill code."""
    table, fill = LEGENDS[legend]
    return set(table) | {fill}


def classes_from_codes(codes, legend: str, *, source, nodata=None) -> np.ndarray:
    """int8 classes of map ``codes`` in ``legend``; fill and ``nodata`` give -1, any other code an InputError."""
    table, fill = LEGENDS[legend]
    codes = np.asarray(codes)
    out = np.full(codes.shape, LAND_COVER_UNKNOWN, np.int8)
    known = (codes == fill) | (codes == nodata) if nodata is not None else codes == fill
    for code, name in table.items():
        hit = codes == code
        out[hit] = LAND_COVER_CLASSES.index(name)
        known |= hit
    if not known.all():
        unknown = sorted(int(c) for c in np.unique(codes[~known]))
        raise InputError(
            source,
            f"codes {unknown} are not in the {legend} legend",
            variable="land cover",
            expected=f"{legend} codes {sorted(legend_codes(legend))}",
        )
    return out


#: Words in a map's file name or tags that name its legend.
LEGEND_HINTS = {"worldcover": re.compile(r"worldcover", re.I), "igbp": re.compile(r"igbp|mcd12q1|lc_type1", re.I)}


def check_legend(legend: str | None, source=None) -> str | None:
    """``legend`` if it is None or a known legend name, else an InputError naming ``source``."""
    if legend is not None and legend not in LEGENDS:
        raise InputError(
            source, f"unknown legend {legend!r}", variable="land cover legend", expected=" or ".join(LEGENDS)
        )
    return legend


def hinted_legend(text: str) -> str | None:
    """The legend named by a map's file name or tags (``text``), if exactly one is."""
    named = [legend for legend, pattern in LEGEND_HINTS.items() if pattern.search(text)]
    return named[0] if len(named) == 1 else None


def legend_from_codes(source: str, codes: set[int]) -> str:
    """The one legend whose codes include all ``codes`` (the map's codes under the scene, no-data removed)."""
    if not codes:
        raise InputError(
            source,
            "only no-data cells under the scene",
            variable="land cover map",
            expected="land-cover codes over the scene, or --landcover-legend to accept an empty map",
        )
    fitting = [legend for legend in LEGENDS if codes <= legend_codes(legend)]
    if len(fitting) == 1:
        return fitting[0]
    if fitting:
        raise InputError(
            source,
            f"codes {sorted(codes)} under the scene fit both the worldcover and the igbp legend",
            variable="land cover legend",
            expected="--landcover-legend worldcover|igbp (landcover_legend=) to say which",
        )
    raise InputError(
        source,
        f"codes {sorted(codes)} under the scene fit no known legend",
        variable="land cover",
        expected=", ".join(f"{name} codes {sorted(legend_codes(name))}" for name in LEGENDS),
    )
