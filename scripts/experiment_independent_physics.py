"""Independent-physics test of a bundle: its own test design, with radiative-transfer terms it never saw.

    python scripts/experiment_independent_physics.py --bundle akkd_scale/data/default_bundle \\
        --work build/default_bundle_work --amplitudes 1,2 --out build/independent_physics

The bundle's training set is simulated again with the same seed, profiles, spectra and priors (so the test split
holds the same atmospheres and spectra, never trained on), but with the terms perturbed by the radiative-transfer
error model (:func:`akkd_scale.physics.rt_error.perturb_terms`; amplitude 1 = the measured LOWTRAN7 → line-by-line
difference in the continuum and trace gases, 2 = twice that). The default bundle is trained without that
perturbation, so every amplitude is outside its training range. Writes ``conditions_<amplitude>.csv/.md`` with the
conditional tables of ``training.evaluate.condition_metrics`` (with and without atmosphere inputs) and prints the
overall rows.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from akkd_scale.models.bundle import load_bundle
from akkd_scale.simulate.trainingset import DEFAULT_PROFILE_SETS, simulate_training_set
from akkd_scale.training.evaluate import condition_metrics, format_conditions_markdown, select_test_split


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="akkd_scale/data/default_bundle")
    parser.add_argument("--work", default="build/default_bundle_work", help="where the bundle's terms.nc is cached")
    parser.add_argument("--samples", type=int, default=300_000, help="as the bundle's training set (same splits)")
    parser.add_argument("--seed", type=int, default=2025, help="the bundle's training-set seed")
    parser.add_argument("--amplitudes", default="1,2", help="RT-error amplitudes (each used as (a, a))")
    parser.add_argument("--out", default="build/independent_physics")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(args.bundle)
    summary = {}
    for amplitude in (float(a) for a in args.amplitudes.split(",")):
        ds = simulate_training_set(
            args.samples,
            seed=args.seed,
            profile_sets=list(DEFAULT_PROFILE_SETS),
            terms_path=str(Path(args.work) / "terms.nc"),
            rt_perturbation=(amplitude, amplitude),
        )
        table = condition_metrics(select_test_split(ds), bundle)
        table.to_csv(out / f"conditions_{amplitude:g}.csv", index=False)
        (out / f"conditions_{amplitude:g}.md").write_text(
            f"# Independent physics: RT-error amplitude {amplitude:g}\n\n" + format_conditions_markdown(table)
        )
        overall = table[(table["group"] == "all") & table["head"].isin(["teacher", "fusion"])]
        summary[f"{amplitude:g}"] = overall[["condition", "head", "lst_mae", "lst_bias", "coverage"]].to_dict("records")
        print(f"amplitude {amplitude:g}")
        print(overall[["condition", "head", "n", "lst_mae", "lst_bias", "coverage"]].to_string(index=False))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
