"""Names shared by every layer: bands, variables, model inputs and outputs, heads, QC bits, units.

Anything that two modules must agree on is defined here once; the docs (docs/architecture.md) refer
to these names.
"""

from __future__ import annotations

#: ASTER TIR bands in the order every array with a band axis uses.
BANDS = ("B10", "B11", "B12", "B13", "B14")

#: Input variables of a scene or sample dataset.
BT = "brightness_temperature"
VZA = "view_zenith"
NDVI = "ndvi"
#: TOA reflectance of VNIR bands 1, 2, 3N on the TIR grid (the reader's; the cloud mask's day input) and its band axis.
VNIR_REFLECTANCE = "vnir_reflectance"
VNIR_BAND = "vnir_band"
#: Attribute of ``ndvi`` (value 1) saying it is exactly the NDVI of ``vnir_reflectance`` bands 2 and 3N (the
#: reader's): the pipeline then computes it from the reflectance it reads anyway (VNIR read once per chunk).
NDVI_FROM_REFLECTANCE = "from_vnir_reflectance"
#: Output bit field of the cloud tests (``clouds.mask.CLOUD_TEST_BITS``).
CLOUD_TESTS = "cloud_tests"
#: Atmospheric inputs (e.g. from reanalysis, io.reanalysis): column water vapour (g cm⁻²) and near-surface air
#: temperature (K) at each pixel.
CWV = "column_water_vapour"
TAIR = "air_temperature"

#: Output variable (uint8) with ``--atmosphere-data``: 1 where the networks had the reanalysis column water vapour
#: and air temperature, 0 where they ran without them (outside the files with ``--atmosphere-data-optional``).
ATMOSPHERE_GIVEN = "atmosphere_input"
#: ``retrieve(atmosphere_data=...)`` value that takes ``column_water_vapour``/``air_temperature`` from the dataset.
ATMOSPHERE_FROM_DATASET = "dataset"

#: Network inputs and outputs (the bundle's input/output specification).
INPUT_NAMES = tuple(f"BT{b[1:]}" for b in BANDS) + ("view_zenith",)
INPUT_UNITS = ("K",) * len(BANDS) + ("deg",)
OUTPUT_NAMES = ("lst",) + tuple(f"emissivity_{b}" for b in BANDS)
OUTPUT_UNITS = ("K",) + ("1",) * len(BANDS)
N_FEATURES = len(INPUT_NAMES)
N_TARGETS = len(OUTPUT_NAMES)
#: Inputs a bundle may name beyond the bands and view zenith: input name → (dataset variable, unit, the
#: value the networks see where the variable is missing or NaN; None: a missing value invalidates the pixel).
#: NDVI is missing at night and without VNIR; -2 lies outside NDVI's physical range [-1, 1]. The atmospheric
#: inputs (reanalysis column water vapour and near-surface air temperature, ``--atmosphere-data``) are missing
#: together where no atmosphere file is given: -1 g cm⁻² and 200 K lie outside what a clear land pixel has.
OPTIONAL_INPUTS = {
    "ndvi": (NDVI, "1", -2.0),
    "column_water_vapour": (CWV, "g cm-2", -1.0),
    "air_temperature": (TAIR, "K", 200.0),
}
#: The optional inputs that come from an atmosphere (reanalysis) file, given or missing together.
ATMOSPHERE_INPUTS = ("column_water_vapour", "air_temperature")

#: Noise-equivalent temperature difference of ASTER TIR at 300 K (K), used for simulated noise.
NEDT_K = 0.3

#: Heads a bundle predicts; ``tes`` is the physics baseline run beside them.
NETWORK_HEADS = ("teacher", "fusion", "student", "student_baseline", "student_global", "student_global_baseline")
TES_HEAD = "tes"
HEADS = NETWORK_HEADS + (TES_HEAD,)
#: Where the networks run: onnxruntime's CPU provider, or its CUDA provider (package onnxruntime-gpu).
DEVICES = ("cpu", "cuda")
#: Atmospheric terms (band-effective, with a ``band`` dimension) that TES needs.
TES_TERMS = ("transmittance", "path_radiance", "sky_radiance")

#: Retrieval quality flags (bits of the uint8 ``qc`` variable) and what each means.
QC_INVALID_INPUT = 1
QC_OUT_OF_RANGE = 2
QC_EXTRAPOLATION = 4
QC_GLOBAL_STUDENT = 8
QC_LAND_COVER_RULES = 16
QC_NO_LAND_COVER = 32
QC_CLOUD = 64
QC_CLOUD_BUFFER = 128
QC_BITS = {
    "invalid_input": QC_INVALID_INPUT,
    "out_of_training_range": QC_OUT_OF_RANGE,
    "extrapolation": QC_EXTRAPOLATION,
    "global_student_fallback": QC_GLOBAL_STUDENT,
    "land_cover_from_rules": QC_LAND_COVER_RULES,
    "brightness_temperature_strata": QC_NO_LAND_COVER,
    "cloud": QC_CLOUD,
    "cloud_buffer": QC_CLOUD_BUFFER,
}
QC_MEANINGS = {
    "invalid_input": "a brightness temperature or the view zenith is NaN/inf (fill)",
    "out_of_training_range": "an input lies outside the bundle's training domain",
    "extrapolation": "the joint input is far from the training distribution (Mahalanobis distance)",
    "global_student_fallback": "the pixel's class or stratum had too little training data: global student used",
    "land_cover_from_rules": "the pixel's land-cover class comes from NDVI/brightness-temperature rules, not a map",
    "brightness_temperature_strata": "no land-cover class (no map, no NDVI) or no class students: the student "
    "of the pixel's brightness-temperature stratum was used",
    "cloud": "the cloud mask (built-in tests or an external mask) calls the pixel cloudy",
    "cloud_buffer": "the pixel lies within the cloud-edge buffer (a few pixels around cloud), not itself cloudy",
}

#: Land-cover classes, in the order of the ``land_cover`` codes 0…7 (the simulator's classes too);
#: ``LAND_COVER_UNKNOWN`` (-1) marks pixels without a class.
LAND_COVER_CLASSES = (
    "water",
    "snow_ice",
    "tree_cover",
    "cropland",
    "grassland_shrubland",
    "sparse_vegetation_bare_soil",
    "bare_rock_desert",
    "built_up",
)
LAND_COVER_UNKNOWN = -1

#: CF attributes of the retrieval outputs; per-head variables (``lst_<head>`` …) add the head name.
OUTPUT_ATTRS = {
    "lst": {"units": "K", "long_name": "land surface temperature", "standard_name": "surface_temperature"},
    "emissivity": {"units": "1", "long_name": "surface emissivity per ASTER TIR band"},
    "lst_uncertainty": {"units": "K", "long_name": "land surface temperature uncertainty (1 sigma)"},
    "band": {"long_name": "ASTER TIR band"},
    "latitude": {"units": "degrees_north", "long_name": "geodetic latitude", "standard_name": "latitude"},
    "longitude": {"units": "degrees_east", "long_name": "longitude", "standard_name": "longitude"},
    ATMOSPHERE_GIVEN: {
        "long_name": "networks had reanalysis column water vapour and air temperature",
        "units": "1",
        "flag_values": [0, 1],
        "flag_meanings": "bands_only with_atmosphere",
    },
    "land_cover": {
        "long_name": "land-cover class",
        "units": "1",
        "flag_values": list(range(LAND_COVER_UNKNOWN, len(LAND_COVER_CLASSES))),
        "flag_meanings": " ".join(("unknown",) + LAND_COVER_CLASSES),
    },
}
