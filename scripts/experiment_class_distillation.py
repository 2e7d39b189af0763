"""Distillation with little labelled data: per land-cover class, a student trained on ``--labelled`` simulated
samples alone against the same student distilled from the bundle's teacher (the class's other training inputs
as teacher-only rows, α chosen on validation), both scored on the class's held-out test samples.

This is the paper's setting for its student gain (a small local data set plus a teacher). Run after
``make bundle`` (it reuses the bundle's teacher and training set)::

    python scripts/experiment_class_distillation.py --bundle build/default_bundle_v2 \
        --data build/default_bundle_work/trainingset.zarr --labelled 5000
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.models.bundle import load_bundle
from akkd_scale.simulate.trainingset import open_training_set
from akkd_scale.training.data import dataset_rows, scale_targets, split_validation
from akkd_scale.training.distill import train_class_students
from akkd_scale.training.keras_io import load_keras_model
from akkd_scale.training.recipe import SuiteConfig
from akkd_scale.training.students import FitConfig, predict
from akkd_scale.utils import markdown_table


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="the bundle's training set (Zarr)")
    parser.add_argument("--labelled", type=int, default=5000, help="labelled samples per class")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--alphas", default="0.25,0.5,0.75")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    bundle = load_bundle(args.bundle)
    teacher = load_keras_model(bundle, bundle.manifest["models"]["teacher"]["keras"])
    normalisation = bundle.manifest["normalisation"]
    ds = open_training_set(args.data).load()
    inputs = bundle.input_names
    missing = bundle.manifest["distillation"].get("ndvi_missing_fraction", 0.0)  # as the bundle was trained
    train = dataset_rows(ds, "train", inputs, missing_fraction=missing, seed=args.seed)
    val, _ = split_validation(
        dataset_rows(ds, "validation", inputs, missing_fraction=missing, seed=args.seed + 1), args.data
    )
    test = dataset_rows(ds, "test", inputs)
    config = SuiteConfig(
        out="unused",
        student=FitConfig(epochs=args.epochs),
        alphas=tuple(float(a) for a in args.alphas.split(",")),
        seed=args.seed,
    )
    rng = np.random.default_rng(args.seed)
    teacher_z = lambda x: scale_targets(predict(teacher, x), normalisation)  # noqa: E731
    results = {}
    for code, name in enumerate(LAND_COVER_CLASSES):
        rows = rng.permutation(np.flatnonzero(train.land_cover == code))
        own_val, own_test = val.land_cover == code, test.land_cover == code
        if rows.size <= args.labelled or not own_val.any() or not own_test.any():
            logging.info("class %s: %d training rows, skipped", name, rows.size)
            continue
        labelled, rest = rows[: args.labelled], rows[args.labelled :]
        models = train_class_students(
            name,
            (train.x[labelled], train.y[labelled]),
            train.x[rest],
            (val.x[own_val], val.y[own_val]),
            normalisation,
            config,
            teacher_z,
        )
        x, y = test.x[own_test], test.y[own_test]
        mae = {kind: float(np.mean(np.abs(predict(models[kind], x)[:, 0] - y[:, 0]))) for kind in ("baseline", "kd")}
        mae["teacher"] = float(np.mean(np.abs(predict(teacher, x)[:, 0] - y[:, 0])))
        results[name] = {
            **mae,
            "alpha": models["alpha"],
            "n_labelled": int(labelled.size),
            "n_teacher_only": int(rest.size),
            "n_test": int(own_test.sum()),
            "gain": 1.0 - mae["kd"] / mae["baseline"],
        }
    print(f"\n## Class students with {args.labelled} labelled samples: LST MAE (K) on the test split\n")
    print(
        "\n".join(
            markdown_table(
                ["class", "labelled", "teacher-only rows", "alone", "distilled", "gain", "α", "teacher", "test n"],
                [
                    [
                        name,
                        r["n_labelled"],
                        r["n_teacher_only"],
                        f"{r['baseline']:.3f}",
                        f"{r['kd']:.3f}",
                        f"{100 * r['gain']:.0f} %",
                        r["alpha"],
                        f"{r['teacher']:.3f}",
                        r["n_test"],
                    ]
                    for name, r in results.items()
                ],
            )
        )
    )
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
