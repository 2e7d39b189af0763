"""Training sets as arrays: the per-sample arrays of a training-set Dataset, the network rows of one split, the
validation halves, and the input standardisation and target scaling every network is trained with.

Targets. Networks learn scaled targets z = (y − mean) / scale with scale = 10 K for LST and 0.15 for
each emissivity: 0.015 of emissivity changes band radiance about as much as 1 K of LST near 300 K
and 10 µm (ΔB/B ≈ Δε/ε and ΔB/B ≈ c₂/(λT²)·ΔT ≈ 0.015 K⁻¹·ΔT), so an MSE on z weighs an ε error of
0.015 like a 1 K LST error — the same ratio as the accuracy goals (0.006 vs 0.35 K).

No TensorFlow here: evaluation and the teacher search share these without the training stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..constants import REANALYSIS_CWV_LOG_SIGMA, REANALYSIS_TAIR_SIGMA_K
from ..conventions import ATMOSPHERE_INPUTS, BANDS, CWV, INPUT_NAMES, LAND_COVER_UNKNOWN, OPTIONAL_INPUTS, TAIR
from ..errors import InputError
from .bundle_writer import optional_inputs

log = logging.getLogger(__name__)

LST_SCALE_K = 10.0
EMISSIVITY_SCALE = 0.15
#: Training-set variables that hold an optional input under another name (the simulator's near-surface air
#: temperature is ``surface_air_temperature``; a scene's reanalysis input is ``air_temperature``).
TRAINING_VARIABLES = {TAIR: "surface_air_temperature"}


def training_variable(ds, variable: str) -> str:
    """The name under which ``ds`` holds the optional-input ``variable`` (itself, or its training-set name)."""
    return variable if variable in ds or variable not in TRAINING_VARIABLES else TRAINING_VARIABLES[variable]


def reanalysis_like(cwv, tair, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True column water vapour (g cm⁻²) and air temperature (K) with the documented reanalysis error model
    (:data:`~akkd_scale.constants.REANALYSIS_CWV_LOG_SIGMA`, :data:`~akkd_scale.constants.REANALYSIS_TAIR_SIGMA_K`):
    what a network is trained with and evaluated on when it is given an atmosphere."""
    cwv, tair = np.asarray(cwv, np.float64), np.asarray(tair, np.float64)
    factor = np.exp(rng.normal(0.0, REANALYSIS_CWV_LOG_SIGMA, cwv.shape))
    return cwv * factor, tair + rng.normal(0.0, REANALYSIS_TAIR_SIGMA_K, tair.shape)


def require_variables(ds, names, source, expected: str) -> None:
    """An InputError naming ``source`` and the first of ``names`` that ``ds`` lacks, with what was ``expected``."""
    for name in names:
        if name not in ds:
            raise InputError(source, "variable missing", variable=name, expected=expected)


@dataclass(frozen=True)
class SampleArrays:
    """Per-sample arrays of a training-set Dataset, as stored: brightness temperatures (N, band), view zenith
    (N,), LST (N,) and emissivity (N, band)."""

    brightness_temperature: np.ndarray
    view_zenith: np.ndarray
    lst: np.ndarray
    emissivity: np.ndarray


def sample_arrays(ds, bands=BANDS) -> SampleArrays:
    """The :class:`SampleArrays` of every sample of ``ds`` (training-set contract), bands in the order given."""
    bt = ds["brightness_temperature"].sel(band=list(bands)).transpose("sample", "band").values
    vza = np.broadcast_to(ds["view_zenith"].values, bt.shape[:1])
    emissivity = ds["emissivity"].sel(band=list(bands)).transpose("sample", "band").values
    return SampleArrays(bt, vza, ds["lst"].values, emissivity)


@dataclass(frozen=True)
class Rows:
    """One split of a training set as arrays: inputs x (N, inputs), targets y (N, 6) = LST, ε10..14, the
    land-cover class (N,) (-1 unknown), the profile id and the column water vapour (N,)."""

    x: np.ndarray
    y: np.ndarray
    land_cover: np.ndarray
    profile_id: np.ndarray
    column_water_vapour: np.ndarray

    def take(self, rows) -> Rows:
        return Rows(*(getattr(self, f)[rows] for f in ("x", "y", "land_cover", "profile_id", "column_water_vapour")))


def dataset_rows(
    ds,
    split: str,
    inputs=INPUT_NAMES,
    *,
    missing_fraction: float = 0.0,
    atmosphere_missing_fraction: float = 0.0,
    atmosphere_errors: bool = True,
    seed: int = 0,
) -> Rows:
    """Rows of one split; ``inputs`` as in a bundle's input specification (BT10..14, view zenith, then
    optional inputs such as ``ndvi``, ``column_water_vapour``, ``air_temperature``).

    NDVI is set to its missing value in a ``missing_fraction`` of the rows (as a night scene), the atmospheric
    inputs together in an independent ``atmosphere_missing_fraction`` (a run without ``--atmosphere-data``);
    present atmospheric inputs carry the reanalysis error model (:func:`reanalysis_like`) unless
    ``atmosphere_errors`` is False. Draws use ``seed``; NaN inputs take the missing value. Rows with non-finite
    bands, view zenith or targets are dropped (logged)."""
    source = ds.attrs.get("source", "training set")
    extra = optional_inputs(inputs, source)
    require_variables(
        ds,
        (
            "brightness_temperature",
            "view_zenith",
            "lst",
            "emissivity",
            "split",
            *(training_variable(ds, OPTIONAL_INPUTS[n][0]) for n in extra),
        ),
        source,
        "the training-set contract",
    )
    for name in ("brightness_temperature", "emissivity"):
        bands = [str(b) for b in ds[name]["band"].values]
        if bands != list(BANDS):
            raise InputError(source, f"bands {bands}", variable=name, expected=f"bands {list(BANDS)}")
    sub = ds.isel(sample=np.flatnonzero(np.asarray(ds["split"].values).astype(str) == split))
    n = sub.sizes["sample"]
    if n == 0:
        raise InputError(
            source, f"no samples in split {split!r}", variable="split", expected="train, validation and test samples"
        )
    arrays = sample_arrays(sub)
    columns = [arrays.brightness_temperature, arrays.view_zenith[:, None]]
    rng = np.random.default_rng(seed)
    masked = rng.random(n) < missing_fraction
    values = {
        name: np.asarray(sub[training_variable(sub, OPTIONAL_INPUTS[name][0])].values, np.float64) for name in extra
    }
    no_atmosphere = np.zeros(n, bool)
    if any(name in ATMOSPHERE_INPUTS for name in extra):
        no_atmosphere = rng.random(n) < atmosphere_missing_fraction
        if atmosphere_errors:
            cwv = values.get(CWV, np.zeros(n))
            tair = values.get(TAIR, np.zeros(n))
            cwv, tair = reanalysis_like(cwv, tair, rng)
            values.update({k: v for k, v in ((CWV, cwv), (TAIR, tair)) if k in values})
    for name in extra:
        variable, _, missing = OPTIONAL_INPUTS[name]
        gone = no_atmosphere if name in ATMOSPHERE_INPUTS else masked
        value = values[name]
        columns.append(np.where(gone | ~np.isfinite(value), missing, value)[:, None])
    x = np.concatenate(columns, axis=1).astype(np.float32)
    y = np.concatenate([arrays.lst[:, None], arrays.emissivity], axis=1).astype(np.float32)
    keep = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(y), axis=1)
    if not keep.all():
        log.warning("%s: dropping %d %s rows with non-finite values", source, int((~keep).sum()), split)
    land_cover = (
        sub["land_cover"].values.astype(np.int32) if "land_cover" in sub else np.full(n, LAND_COVER_UNKNOWN, np.int32)
    )
    profile = sub["profile_id"].values.astype(str) if "profile_id" in sub else np.full(n, "", dtype=object)
    cwv_true = (
        sub["column_water_vapour"].values.astype(np.float32)
        if "column_water_vapour" in sub
        else np.full(n, np.nan, np.float32)
    )
    return Rows(x, y, land_cover, profile, cwv_true).take(keep)


def split_validation(held: Rows, source) -> tuple[Rows, Rows]:
    """(early-stopping/α rows, calibration rows): the validation atmospheres (profile base ids, before any '+'
    augmentation suffix) in sorted order, alternately to each half, so the halves are disjoint by atmosphere."""
    base = np.array([str(p).split("+")[0] for p in held.profile_id])
    names = np.unique(base)
    if names.size < 2:
        raise InputError(
            source,
            f"{names.size} validation atmosphere(s)",
            variable="profile_id",
            expected="at least 2 validation profiles (one half for early stopping, one for calibration)",
        )
    in_calibration = np.isin(base, names[1::2])
    return held.take(~in_calibration), held.take(in_calibration)


def target_normalisation(x_train, y_train, inputs=None) -> dict:
    """Input standardisation and target scaling (module docstring) from training arrays. With ``inputs`` (the
    input names), an optional input's mean and variance come from its present values only, so rows at the
    missing value do not squeeze the present ones into a sliver of the standardised range."""
    x = np.asarray(x_train, np.float64)
    y = np.asarray(y_train, np.float64)
    mean, var = x.mean(axis=0), x.var(axis=0)
    for column, name in enumerate(inputs or ()):
        if name in OPTIONAL_INPUTS:
            present = x[:, column][x[:, column] != np.float32(OPTIONAL_INPUTS[name][2])]
            if present.size > 1:
                mean[column], var[column] = present.mean(), present.var()
    return {
        "input_mean": mean.tolist(),
        "input_variance": np.maximum(var, 1e-6).tolist(),
        "output_mean": y.mean(axis=0).tolist(),
        "output_scale": [LST_SCALE_K] + [EMISSIVITY_SCALE] * (y.shape[1] - 1),
        "target_scaling": "z = (y - output_mean) / output_scale; 10 K for LST, 0.15 per emissivity "
        "(0.015 emissivity ~ 1 K in band radiance at 300 K, 10 um)",
    }


def scale_targets(y, normalisation: dict) -> np.ndarray:
    """z = (y − output_mean) / output_scale (float32)."""
    return (
        (np.asarray(y, np.float64) - normalisation["output_mean"]) / np.asarray(normalisation["output_scale"])
    ).astype(np.float32)
