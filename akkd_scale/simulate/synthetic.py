"""Small synthetic training sets with the training-set contract, for tests and quick experiments.

Physics kept simple but consistent: per "profile" a column water vapour w (g cm⁻²) and near-surface
air temperature T_a; per band b an optical depth δ_b = a_b + k_b·w (dry gases + water vapour, larger
at 12 µm than at 11 µm so the split-window difference grows with w), transmittance
τ = exp(−δ·sec θ), path radiance L↑ = (1 − τ)·B(T_a − 8 K) and hemispheric sky radiance
L↓ = (1 − τ_53°)·B(T_a − 12 K) (diffusivity angle 53°). At-sensor radiance
L = τ(εB(LST) + (1 − ε)L↓) + L↑ through the ASTER band-effective Planck function. Emissivity spectra
mix a greybody level with a quartz-like reststrahlen shape (low at 8–9.5 µm); each spectrum has a
land-cover class (rock, tree cover, sparse vegetation) and each sample an NDVI in its class's range.
Splits are disjoint by profile and by spectrum, as in the real builder.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..conventions import LAND_COVER_CLASSES
from ..errors import ParameterError
from ..sensors.aster import ASTER_TIR
from ..sensors.planck import band_radiance, brightness_temperature

DRY_DEPTH = np.array([0.12, 0.10, 0.09, 0.03, 0.04])
WATER_DEPTH = np.array([0.07, 0.06, 0.05, 0.07, 0.11])  # per g cm⁻²
QUARTZ_SHAPE = np.array([1.0, 0.85, 0.95, 0.15, 0.10])  # relative emissivity dip per band
SPLITS = ("train", "validation", "test")


def _split_labels(n: int, fractions, rng) -> np.ndarray:
    """Random split label for each of n items, with at least one item per split when n >= 3."""
    labels = np.repeat(np.array(SPLITS), np.maximum(1, np.round(np.asarray(fractions) * n)).astype(int))[:n]
    labels = np.concatenate([labels, np.full(max(0, n - labels.size), SPLITS[0])])
    return rng.permutation(labels)


def synthetic_training_set(
    n_samples: int = 3000,
    *,
    seed: int = 0,
    n_profiles: int = 60,
    n_spectra: int = 90,
    fractions=(0.6, 0.2, 0.2),
    view_zenith_max: float = 10.0,
) -> xr.Dataset:
    """Dataset with dim ``sample`` (and ``band``) following the ``build_training_set`` contract."""
    if n_samples < 3 or n_profiles < 3 or n_spectra < 3:
        raise ParameterError(
            "synthetic_training_set",
            f"n_samples={n_samples}, n_profiles={n_profiles}, n_spectra={n_spectra}",
            variable="n_samples",
            expected="each >= 3",
        )
    rng = np.random.default_rng(seed)
    water = rng.uniform(0.2, 5.0, n_profiles)
    air_t = rng.uniform(265.0, 305.0, n_profiles) + 2.0 * water
    profile_split = _split_labels(n_profiles, fractions, rng)
    greybody = rng.uniform(0.93, 0.99, n_spectra)
    dip = rng.choice([0.0, 0.0, 1.0], n_spectra) * rng.uniform(0.02, 0.2, n_spectra)
    spectra = np.clip(
        greybody[:, None] - dip[:, None] * QUARTZ_SHAPE - rng.normal(0, 0.004, (n_spectra, 5)), 0.6, 0.995
    )
    spectrum_class = np.where(dip > 0, "rock", "vegetation")
    # Land-cover class per spectrum: quartz-like → bare rock, dark greybodies → tree cover, others → sparse
    # vegetation/bare soil; NDVI per sample from class ranges.
    cover = np.where(
        dip > 0,
        LAND_COVER_CLASSES.index("bare_rock_desert"),
        np.where(
            greybody > 0.97,
            LAND_COVER_CLASSES.index("tree_cover"),
            LAND_COVER_CLASSES.index("sparse_vegetation_bare_soil"),
        ),
    )
    spectrum_split = _split_labels(n_spectra, fractions, rng)

    split = rng.choice(SPLITS, n_samples, p=np.asarray(fractions) / np.sum(fractions))
    profile = np.array([rng.choice(np.flatnonzero(profile_split == s)) for s in split])
    spectrum = np.array([rng.choice(np.flatnonzero(spectrum_split == s)) for s in split])
    vza = rng.uniform(0.0, view_zenith_max, n_samples)
    lst = air_t[profile] + rng.uniform(-5.0, 20.0, n_samples)
    eps = spectra[spectrum]
    ndvi_range = {
        LAND_COVER_CLASSES.index("bare_rock_desert"): (0.0, 0.15),
        LAND_COVER_CLASSES.index("tree_cover"): (0.6, 0.9),
        LAND_COVER_CLASSES.index("sparse_vegetation_bare_soil"): (0.15, 0.4),
    }
    lo, hi = (np.array([ndvi_range[c][i] for c in cover[spectrum]]) for i in (0, 1))
    ndvi = rng.uniform(lo, hi)

    depth = DRY_DEPTH + WATER_DEPTH * water[profile][:, None]
    tau = np.exp(-depth / np.cos(np.radians(vza))[:, None])
    tau_hemi = np.exp(-depth / np.cos(np.radians(53.0)))
    up = (1 - tau) * band_radiance(air_t[profile][:, None] - 8.0, ASTER_TIR)
    down = (1 - tau_hemi) * band_radiance(air_t[profile][:, None] - 12.0, ASTER_TIR)
    radiance = tau * (eps * band_radiance(lst[:, None], ASTER_TIR) + (1 - eps) * down) + up
    bt = brightness_temperature(radiance, ASTER_TIR)

    band = list(ASTER_TIR.band_names)
    sb = ("sample", "band")
    return xr.Dataset(
        {
            "brightness_temperature": (sb, bt.astype(np.float32), {"units": "K"}),
            "view_zenith": ("sample", vza.astype(np.float32), {"units": "deg"}),
            "column_water_vapour": ("sample", water[profile].astype(np.float32), {"units": "g cm-2"}),
            "surface_altitude": ("sample", np.zeros(n_samples, np.float32), {"units": "km"}),
            "lst": ("sample", lst.astype(np.float32), {"units": "K"}),
            "emissivity": (sb, eps.astype(np.float32), {"units": "1"}),
            "transmittance": (sb, tau.astype(np.float32), {"units": "1"}),
            "path_radiance": (sb, up.astype(np.float32), {"units": "W m-2 sr-1 um-1"}),
            "sky_radiance": (sb, down.astype(np.float32), {"units": "W m-2 sr-1 um-1"}),
            "surface_air_temperature": ("sample", air_t[profile].astype(np.float32), {"units": "K"}),
            "split": ("sample", split.astype(str)),
            "profile_id": ("sample", np.array([f"synthetic:{p:03d}" for p in profile])),
            "spectrum_id": ("sample", np.array([f"synthetic:{s:03d}" for s in spectrum])),
            "material_class": ("sample", spectrum_class[spectrum]),
            "land_cover": ("sample", cover[spectrum].astype(np.int8)),
            "ndvi": ("sample", ndvi.astype(np.float32), {"units": "1"}),
        },
        coords={"band": band, "wavelength": ("band", np.asarray(ASTER_TIR.centers_um, np.float64))},
        attrs={
            "source": "akkd_scale.simulate.synthetic.synthetic_training_set",
            "seed": seed,
            "version": "synthetic-1",
        },
    )
