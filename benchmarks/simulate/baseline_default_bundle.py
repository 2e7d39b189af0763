"""Baseline for the next issue: the shipped default bundle on a test set from the new simulator (TIGR + CRTM
atmospheres, clear-sky screened; land-cover surfaces; ASTER geometry), per land-cover class, plus each split's
column-water-vapour histogram and each class's band-emissivity spread. Prints Markdown.

Run (reuse the terms table written by bench_terms.py):
    AKKD_DATA_DIR=../shared/data PYTHONPATH=. .venv/bin/python benchmarks/simulate/baseline_default_bundle.py \
        --terms /tmp/terms_default.nc --samples 300000
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from akkd_scale.models.bundle import load_bundle  # noqa: E402
from akkd_scale.physics.tes import tes  # noqa: E402
from akkd_scale.simulate.surfaces import CLASSES  # noqa: E402
from akkd_scale.simulate.trainingset import SPLITS, simulate_training_set  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[2] / "akkd_scale" / "data" / "default_bundle"
CWV_BINS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0)
HEADS = ("teacher", "fusion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--terms", required=True, help="terms table NetCDF (reused, or written if missing)")
    parser.add_argument("--samples", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--bundle", default=str(BUNDLE))
    args = parser.parse_args()
    t0 = time.perf_counter()
    ds = simulate_training_set(args.samples, seed=args.seed, terms_path=args.terms)
    print(
        f"simulated {args.samples} samples in {time.perf_counter() - t0:.1f} s "
        f"({len([d for d in ds.attrs['dropped_profiles'].split('; ') if d])} profiles dropped)\n"
    )

    print("## Column water vapour per split (samples per bin, g cm-2; distinct profiles)\n")
    edges = " | ".join(f"{a:g}–{b:g}" for a, b in zip(CWV_BINS[:-1], CWV_BINS[1:]))
    print(f"| split | profiles | {edges} | median |\n|---|---|{'---|' * (len(CWV_BINS) - 1)}---|")
    for split in SPLITS:
        own = ds["split"].values == split
        cwv = ds["column_water_vapour"].values[own]
        counts = np.histogram(cwv, CWV_BINS)[0]
        print(
            f"| {split} | {len(set(ds['profile_id'].values[own]))} | {' | '.join(str(c) for c in counts)} | "
            f"{np.median(cwv):.2f} |"
        )

    test = ds.isel(sample=np.flatnonzero(ds["split"].values == "test"))
    bundle = load_bundle(args.bundle)
    bt = test["brightness_temperature"].values.astype(np.float32)
    t0 = time.perf_counter()
    pred = bundle.predict(bt, test["view_zenith"].values.astype(np.float32), heads=HEADS)
    print(f"\nbundle prediction: {bt.shape[0]} test samples in {time.perf_counter() - t0:.1f} s\n")
    terms = [test[name].values for name in ("transmittance", "path_radiance", "sky_radiance")]
    pred["tes (exact terms)"] = {
        "lst": tes(test["brightness_temperature"].values, *terms, quantity="brightness_temperature").lst
    }
    heads = HEADS + ("tes (exact terms)",)
    lst, eps = test["lst"].values, test["emissivity"].values
    print("## Per land-cover class (test split): band-emissivity spread and default-bundle LST error\n")
    print(
        "| class | n | ε B10 p5–p95 | ε B12 p5–p95 | ε B13 p5–p95 | ε B14 p5–p95 | "
        + " | ".join(f"{h} LST MAE / bias (K)" for h in heads)
        + " | teacher ε13 MAE |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(heads) + "---|")
    rows = [(name, test["land_cover"].values == code) for code, name in enumerate(CLASSES)]
    for name, own in rows + [("all", np.ones(lst.size, bool))]:
        spread = " | ".join(
            f"{np.quantile(eps[own, b], 0.05):.3f}–{np.quantile(eps[own, b], 0.95):.3f}" for b in (0, 2, 3, 4)
        )
        errors = " | ".join(
            f"{np.nanmean(np.abs(pred[h]['lst'][own] - lst[own])):.2f} / "
            f"{np.nanmean(pred[h]['lst'][own] - lst[own]):+.2f}"
            for h in heads
        )
        e13 = np.mean(np.abs(pred["teacher"]["emissivity"][own, 3] - eps[own, 3]))
        print(f"| {name} | {own.sum()} | {spread} | {errors} | {e13:.4f} |")
    grey = eps.min(axis=1) > 0.975
    print(
        f"\ngreybody test samples (min ε > 0.975): {grey.sum()}, teacher LST bias "
        f"{np.mean(pred['teacher']['lst'][grey] - lst[grey]):+.2f} K, MAE "
        f"{np.mean(np.abs(pred['teacher']['lst'][grey] - lst[grey])):.2f} K"
    )


if __name__ == "__main__":
    main()
