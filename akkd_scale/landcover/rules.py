"""Land-cover classes from NDVI and brightness temperatures, for pixels without a map (documented rules).

Classes are ``conventions.LAND_COVER_CLASSES``; the reasons for each threshold are in docs/pipeline.md
("Land cover").

Rules (:func:`classes_from_rules`), first match wins; ``contrast`` = BT14 − BT10 (K):

1. ``snow_ice``: NDVI < 0.1 and BT13 < 275 K (snow and ice are at most 273.15 K; BT13 of ε ≈ 0.99 snow
   under a cold, dry atmosphere is within ~1 K of it; snow NDVI is about −0.1…0.1);
2. ``water``: NDVI < 0 and |contrast| < 6.5 K (water is a grey body, ε10 ≈ 0.985, ε14 ≈ 0.99; what
   remains is the atmosphere's: 3–4.7 K under a mid-latitude summer and 3.6–5.6 K under a tropical
   atmosphere for the demo's lake, p5–p99; a 3 K limit left 96 % of that lake unclassed as water);
3. ``tree_cover``: NDVI > 0.6; 4. ``grassland_shrubland``: NDVI > 0.3 (scaled NDVI of Carlson & Ripley
   1997, f = N*² with end-members NDVI 0.15 (soil) and 0.8 (canopy): NDVI 0.3 ↔ f ≈ 5 %, 0.6 ↔ f ≈ 50 %);
   cropland cannot be told from grassland without a map, so mid NDVI is grassland_shrubland;
5. ``bare_rock_desert``: contrast > 4 K (quartz reststrahlen: ε10 ≈ 0.80 against ε14 ≈ 0.96 makes BT10
   6–9 K colder than BT14 at 300–320 K, soils and grey bodies ≲ 3 K); 6. else ``sparse_vegetation_bare_soil``.

``built_up`` never comes from the rules: urban materials have no NDVI/BT signature of their own.
Pixels with a non-finite NDVI, BT10, BT13 or BT14 get -1.
"""

from __future__ import annotations

import numpy as np

from ..conventions import LAND_COVER_CLASSES, LAND_COVER_UNKNOWN

SNOW_MAX_NDVI, SNOW_MAX_BT13_K = 0.1, 275.0
WATER_MAX_NDVI, WATER_MAX_CONTRAST_K = 0.0, 6.5
TREE_MIN_NDVI, GRASS_MIN_NDVI = 0.6, 0.3
BARE_MIN_CONTRAST_K = 4.0


def classes_from_rules(ndvi, bt10, bt13, bt14) -> np.ndarray:
    """int8 classes from NDVI and brightness temperatures (K) by the module's rules; -1 where any is non-finite."""
    ndvi, bt10, bt13, bt14 = (np.asarray(v, np.float32) for v in (ndvi, bt10, bt13, bt14))
    contrast = bt14 - bt10
    code = LAND_COVER_CLASSES.index
    rules = [
        (~(np.isfinite(ndvi) & np.isfinite(bt10) & np.isfinite(bt13) & np.isfinite(bt14)), LAND_COVER_UNKNOWN),
        ((ndvi < SNOW_MAX_NDVI) & (bt13 < SNOW_MAX_BT13_K), code("snow_ice")),
        ((ndvi < WATER_MAX_NDVI) & (np.abs(contrast) < WATER_MAX_CONTRAST_K), code("water")),
        (ndvi > TREE_MIN_NDVI, code("tree_cover")),
        (ndvi > GRASS_MIN_NDVI, code("grassland_shrubland")),
        (contrast > BARE_MIN_CONTRAST_K, code("bare_rock_desert")),
    ]
    return np.select([c for c, _ in rules], [v for _, v in rules], code("sparse_vegetation_bare_soil")).astype(np.int8)
