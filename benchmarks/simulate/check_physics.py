"""Checks of the simulation inputs against published physics.

1. Column water vapour (g cm⁻²) of each profile set (count, min, median, mean, max).
2. TES calibration curve ε_min = a − b·MMD^c fitted to the library's ASTER band emissivities, compared with
   ASTER's (0.994, 0.687, 0.737) (Gillespie et al. 1998): for all library spectra and for the weighted
   natural-surface set used for training.
Run: AKKD_DATA_DIR=../shared/data .venv/bin/python benchmarks/simulate/check_physics.py
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit

from akkd_scale.simulate import emissivity, profiles

ASTER = (0.994, 0.687, 0.737)


def calibration(mmd, a, b, c):
    return a - b * np.power(mmd, c)


def fit(band_eps: np.ndarray, weights=None):
    """MMD and ε_min of (n, 5) band emissivities; fit of a − b·MMD^c; RMSE of the fit and of ASTER's curve."""
    beta = band_eps / band_eps.mean(axis=1, keepdims=True)
    mmd, eps_min = beta.max(1) - beta.min(1), band_eps.min(1)
    sigma = None if weights is None else 1 / np.sqrt(np.clip(weights, 1e-6, None))
    params, _ = curve_fit(calibration, mmd, eps_min, p0=ASTER, sigma=sigma, maxfev=20000)
    w = np.ones_like(mmd) if weights is None else weights
    rms = lambda r: float(np.sqrt(np.sum(w * r**2) / np.sum(w)))  # noqa: E731
    return params, rms(eps_min - calibration(mmd, *params)), rms(eps_min - calibration(mmd, *ASTER)), mmd.size


def main() -> None:
    print("Column water vapour (g cm-2) per profile set")
    print(f"{'set':10s} {'n':>4s} {'min':>7s} {'median':>7s} {'mean':>7s} {'max':>7s}")
    for name in profiles.SETS:
        cwv = profiles.load_profiles([name])["column_water_vapour"].values
        print(f"{name:10s} {cwv.size:4d} {cwv.min():7.3f} {np.median(cwv):7.3f} {cwv.mean():7.3f} {cwv.max():7.3f}")

    print("\nTES calibration eps_min = a - b*MMD^c (ASTER: a=0.994 b=0.687 c=0.737)")
    library = emissivity.load_library()
    bands = emissivity.band_emissivity(library, on_error="drop")
    surfaces = emissivity.natural_surfaces(library, view_zenith=[0.0])
    rows = [("library, all spectra", bands["emissivity"].values, None)]
    for cls in ("rock", "mineral"):
        keep = bands["material_class"].values == cls
        rows.append((f"library, {cls}", bands["emissivity"].values[keep], None))
    rows.append(
        ("natural surfaces, weighted", surfaces["emissivity"].isel(view_zenith=0).values, surfaces["weight"].values)
    )
    print(f"{'spectra':28s} {'n':>5s} {'a':>7s} {'b':>7s} {'c':>7s} {'rmse fit':>9s} {'rmse ASTER':>10s}")
    for label, values, weights in rows:
        (a, b, c), rmse_fit, rmse_aster, n = fit(values, weights)
        print(f"{label:28s} {n:5d} {a:7.3f} {b:7.3f} {c:7.3f} {rmse_fit:9.4f} {rmse_aster:10.4f}")


if __name__ == "__main__":
    main()
