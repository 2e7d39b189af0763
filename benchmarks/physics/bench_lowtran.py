"""Speed of the LOWTRAN7 engine: ms per call, and seconds per 1000 atmospheric-term entries.

An entry is one (profile, surface altitude, view zenith) with band τ, L↑ and L↓; a table computes
the 4 sky angles once per (profile, altitude) and one down-looking run per view zenith.
Run: AKKD_DATA_DIR=../shared/data .venv/bin/python benchmarks/physics/bench_lowtran.py
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from akkd_scale.physics.atmosphere import band_terms, profile_levels, terms_table  # noqa: E402
from akkd_scale.physics.lowtran import SPECIES, load_extension, prepare_levels, run_lowtran  # noqa: E402
from akkd_scale.simulate.profiles import read_afgl, read_crtm_ecmwf83  # noqa: E402


def per_call_ms(levels, repeats: int = 200) -> dict[str, float]:
    """Mean time of ``run_lowtran`` per mode (validation, thinning and unit conversion included)."""
    out = {}
    for label, kwargs in {
        "transmittance": dict(mode="transmittance"),
        "radiance (down, albedo 1)": dict(surface_albedo=1.0),
        "radiance (up, 60 deg)": dict(direction="up", view_zenith=60.0),
    }.items():
        run_lowtran(levels, **kwargs)
        start = time.perf_counter()
        for _ in range(repeats):
            run_lowtran(levels, **kwargs)
        out[label] = (time.perf_counter() - start) / repeats * 1e3
    return out


def raw_call_ms(levels, repeats: int = 200) -> float:
    """The Fortran entry alone (thinned levels prepared once): LOWTRAN's own cost per call."""
    prepared = prepare_levels(levels, 0.0)
    module = load_extension()
    z, p, t = (np.asarray(a, np.float32) for a in (prepared.altitude, prepared.pressure, prepared.temperature))
    wmol = np.zeros((12, z.size), np.float32, order="F")
    units = np.full(12, 6, np.int32)
    for i, name in enumerate(SPECIES):
        if name in prepared.gases:
            wmol[i], units[i] = prepared.gases[name], 10
    args = (141, 700.0, 1400.0, 5.0, 7, 1, 2, z, p, t, wmol, units, 0.0, 1.0, float(z[-1]), float(z[0]), 180.0)
    module.akkdrt(*args)
    start = time.perf_counter()
    for _ in range(repeats):
        module.akkdrt(*args)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    t0 = time.perf_counter()
    load_extension()
    print(f"extension ready (build or cache hit) in {time.perf_counter() - t0:.2f} s")
    mls = read_afgl("midlatitude_summer")
    levels, _ = profile_levels(mls, 0)
    for label, ms in per_call_ms(levels).items():
        print(f"LOWTRAN call, {label:28s}: {ms:6.2f} ms (141 wavenumbers, 700-1400 cm-1 by 5)")
    print(f"LOWTRAN Fortran entry alone, radiance (down)     : {raw_call_ms(levels):6.2f} ms")
    start = time.perf_counter()
    for _ in range(20):
        band_terms(mls, 0.0, 0.0)
    print(f"band_terms (1 entry = 5 calls + SRF averaging): {(time.perf_counter() - start) / 20 * 1e3:.1f} ms")

    ecmwf = read_crtm_ecmwf83()
    lowest = np.argsort(ecmwf.surface_altitude.values)[:50]
    profiles = ecmwf.isel(profile=np.sort(lowest))
    base = float(np.ceil(profiles.surface_altitude.max() * 100) / 100)  # every pair inside its profile
    view_zenith = [0.0, 15.0, 30.0, 45.0, 60.0]
    altitudes = [base, base + 0.5, base + 1.5, base + 2.5]
    entries = profiles.sizes["profile"] * len(view_zenith) * len(altitudes)
    for processes in (1, 2):
        start = time.perf_counter()
        table = terms_table(
            profiles, view_zenith=view_zenith, surface_altitude=altitudes, processes=processes, cache=False
        )
        elapsed = time.perf_counter() - start
        valid = int(np.isfinite(table.transmittance.isel(band=0)).sum())
        print(
            f"terms_table {entries} entries (50 ECMWF-83 profiles x {len(altitudes)} altitudes x "
            f"{len(view_zenith)} view zeniths; {valid} valid), {processes} process(es): "
            f"{elapsed:.1f} s -> {elapsed / entries * 1000:.1f} s per 1000 entries"
        )
        if processes == 1:
            serial = elapsed
    print(f"speed-up 2 processes vs 1: {serial / elapsed:.2f}x")
    start = time.perf_counter()
    terms_table(profiles, view_zenith=view_zenith, surface_altitude=altitudes, processes=2)
    first = time.perf_counter() - start
    start = time.perf_counter()
    terms_table(profiles, view_zenith=view_zenith, surface_altitude=altitudes, processes=2)
    print(f"cached table: first call (compute + write) {first:.1f} s, reuse {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
