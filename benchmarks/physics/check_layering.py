"""Near-surface layering: band τ, L↑, L↓ (ASTER TIR, nadir, sea level) of the six AFGL atmospheres on the
``standard`` LOWTRAN grid (1 km layers from the surface) and on the ``near_surface`` grid (extra levels at
0.1/0.25/0.5/0.75 km, stratosphere thinned), plus the effect of the stratospheric thinning alone.

Run: AKKD_DATA_DIR=../shared/data .venv/bin/python benchmarks/physics/check_layering.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from akkd_scale.physics.atmosphere import band_terms  # noqa: E402
from akkd_scale.physics.lowtran import engine  # noqa: E402
from akkd_scale.simulate.profiles import AFGL_TABLES, read_afgl  # noqa: E402

TERMS = ("transmittance", "path_radiance", "sky_radiance")


def terms(profile, layering):
    t = band_terms(profile, 0.0, 0.0, layering=layering)
    return np.stack([t[name].values for name in TERMS])


def main() -> None:
    standard_grid = engine.STANDARD_GRID_KM
    thinned_only = tuple(z for z in standard_grid if z >= 1.0 and z in engine.NEAR_SURFACE_GRID_KM or z < 1.0)
    print("Δ = near_surface − standard, per band B10..B14 (τ; L in W m-2 sr-1 um-1)")
    print(f"{'atmosphere':20s} {'PW':>5s} | {'Δτ':^34s} | {'ΔL↑':^34s} | {'ΔL↓':^34s} | max|Δ| strat. thinning τ/L↑/L↓")
    for name in AFGL_TABLES:
        profile = read_afgl(name)
        std, fine = terms(profile, "standard"), terms(profile, "near_surface")
        engine.STANDARD_GRID_KM = thinned_only  # standard near-surface layers, near_surface stratosphere
        try:
            strat = terms(profile, "standard")
        finally:
            engine.STANDARD_GRID_KM = standard_grid
        d, s = fine - std, np.abs(strat - std).max(axis=1)
        fmt = lambda v: " ".join(f"{x:+6.3f}" for x in v)  # noqa: E731
        print(
            f"{name:20s} {float(profile.column_water_vapour[0]):5.2f} | {fmt(d[0])} | {fmt(d[1])} | {fmt(d[2])} | "
            f"{s[0]:.4f}/{s[1]:.4f}/{s[2]:.4f}"
        )


if __name__ == "__main__":
    main()
