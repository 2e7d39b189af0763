"""Band τ, L↑, L↓ (ASTER TIR, nadir, sea level) for the six AFGL-1986 atmospheres from patched LOWTRAN7.

Reference orders of magnitude (ASTER_FACTS): mid-latitude summer B13 τ ≈ 0.71, L↑ ≈ 2.2,
L↓ ≈ 3.4 W m⁻² sr⁻¹ µm⁻¹. Also the user-profile vs built-in round trip for every atmosphere.
Run: AKKD_DATA_DIR=../shared/data .venv/bin/python benchmarks/physics/check_afgl_terms.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from akkd_scale.physics.atmosphere import band_terms, profile_levels  # noqa: E402
from akkd_scale.physics.lowtran import run_builtin_model, run_lowtran  # noqa: E402
from akkd_scale.simulate.profiles import AFGL_TABLES, read_afgl  # noqa: E402

BUILTIN = {
    "tropical": 1,
    "midlatitude_summer": 2,
    "midlatitude_winter": 3,
    "subarctic_summer": 4,
    "subarctic_winter": 5,
    "us_standard": 6,
}
GRID = (700.0, 1350.0, 5.0)


def main() -> None:
    print(
        f"{'atmosphere':20s} {'PW':>5s} | {'tau B10..B14':^34s} | {'L_up B10..B14':^29s} | "
        f"{'L_down B10..B14':^29s} | max|dtau| user-builtin"
    )
    for name in AFGL_TABLES:
        profile = read_afgl(name)
        terms = band_terms(profile, 0.0, 0.0)
        levels, _ = profile_levels(profile, 0)
        user = run_lowtran(levels, mode="transmittance", wavenumber=GRID)
        builtin = run_builtin_model(BUILTIN[name], mode="transmittance", wavenumber=GRID)
        fmt = lambda values, w: " ".join(f"{v:{w}.3f}" if w == 6 else f"{v:{w}.2f}" for v in values)  # noqa: E731
        print(
            f"{name:20s} {float(terms.column_water_vapour):5.2f} | {fmt(terms.transmittance.values, 6)} | "
            f"{fmt(terms.path_radiance.values, 5)} | {fmt(terms.sky_radiance.values, 5)} | "
            f"{np.max(np.abs(user.transmittance - builtin.transmittance)):.4f}"
        )
    b13 = band_terms(read_afgl("midlatitude_summer"), 0.0, 0.0).sel(band="B13")
    print(
        f"\nMLS B13: tau {float(b13.transmittance):.3f} (ref 0.71), L_up {float(b13.path_radiance):.2f} "
        f"(ref 2.2), L_down {float(b13.sky_radiance):.2f} (ref 3.4) W m-2 sr-1 um-1"
    )


if __name__ == "__main__":
    main()
