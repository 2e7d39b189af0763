"""Experiment: how much of the accuracy gap to the paper is the evaluation protocol, how much the noise?

The default bundle is evaluated on atmospheres and materials never seen in training, with NEΔT noise on
every band. This recipe takes the same simulated samples and changes one thing at a time, trains the
same suite with the same budget and prints the same table:

* ``--protocol random``: train/validation/test relabelled at random per sample, so test samples share
  profiles and spectra with training (a protocol the paper may have used);
* ``--noise-free``: networks see the noise-free brightness temperatures the builder keeps.

Run after ``train_default_bundle.py`` (it reuses its training set)::

    python scripts/experiment_split_protocol.py --protocol random --out build/random_split_bundle
    python scripts/experiment_split_protocol.py --protocol held-out --noise-free --out build/noise_free_bundle
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from akkd_scale.models.bundle import load_bundle
from akkd_scale.simulate.trainingset import open_training_set
from akkd_scale.training.evaluate import evaluate, format_markdown, select_test_split, write_report
from akkd_scale.training.recipe import SuiteConfig, train_suite
from akkd_scale.training.students import FitConfig
from akkd_scale.training.teacher import TeacherConfig


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="build/default_bundle_work", help="work directory of the default recipe")
    parser.add_argument("--out", default="build/random_split_bundle")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--protocol", choices=("random", "held-out"), default="random")
    parser.add_argument("--noise-free", action="store_true", help="use the noise-free brightness temperatures")
    parser.add_argument("--max-trials", type=int, default=3)
    parser.add_argument("--teacher-epochs", type=int, default=60)
    parser.add_argument("--student-epochs", type=int, default=60)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    ds = open_training_set(Path(args.work) / "trainingset.zarr").load()
    if args.protocol == "random":
        rng = np.random.default_rng(args.seed)
        labels = np.array(["train", "validation", "test"])[rng.choice(3, ds.sizes["sample"], p=[0.7, 0.15, 0.15])]
        ds = ds.assign(split=("sample", labels))
        ds.attrs["split_protocol"] = "random per sample (profiles and spectra shared across splits)"
    if args.noise_free:
        ds = ds.assign(brightness_temperature=ds["brightness_temperature_noise_free"])
        ds.attrs["noise"] = 0
    config = SuiteConfig(
        out=args.out,
        search_directory=str(Path(args.out).with_suffix(".search")),
        seed=args.seed,
        teacher=TeacherConfig(
            max_trials=args.max_trials, epochs=args.teacher_epochs, num_layers=(3, 4), num_units=(256, 384)
        ),
        student=FitConfig(epochs=args.student_epochs),
    )
    bundle_dir = train_suite(ds, config)
    evaluation = evaluate(select_test_split(ds), load_bundle(bundle_dir))
    write_report(evaluation, Path(bundle_dir).with_name(Path(bundle_dir).name + "_evaluation"))
    print(format_markdown(evaluation))


if __name__ == "__main__":
    main()
