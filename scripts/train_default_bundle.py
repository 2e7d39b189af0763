"""End-to-end AK-KD recipe: simulate → search teacher → distil students → fuse → evaluate → bundle.

Reproduces the default bundle shipped in ``akkd_scale/data/default_bundle`` and its evaluation report in
``akkd_scale/data/default_bundle_evaluation`` (``make bundle``)::

    python scripts/train_default_bundle.py --out akkd_scale/data/default_bundle

The simulator's defaults (CRTM sets + TIGR-2000, clear-sky screened; eight land-cover classes in the global
FAO GLC-SHARE mixture with NDVI; ASTER views 0–12°; surfaces at 0–4 km) give the training set; the teacher
takes BT10–14, view zenith, NDVI (missing in 30 % of the rows) and the reanalysis column water vapour and
air temperature (with the reanalysis error model; missing together in 30 % of the rows); students per
land-cover class and per brightness-temperature stratum. Every step calls the library; budgets are
command-line options and are recorded in the bundle manifest.
The training set is kept next to the bundle's work directory so the evaluation can be rerun with
``akkd-scale evaluate --data WORK/trainingset.zarr --bundle OUT``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

from akkd_scale.models.bundle import load_bundle
from akkd_scale.simulate.trainingset import (
    DEFAULT_PROFILE_SETS,
    EARTH_LIKE_HUMIDITY,
    humidity_histogram,
    open_training_set,
    simulate_training_set,
    write_training_set,
)
from akkd_scale.training.evaluate import (
    BASELINE_HEAD,
    condition_metrics,
    evaluate,
    format_conditions_markdown,
    format_markdown,
    select_test_split,
    write_report,
)
from akkd_scale.training.recalibrate import recalibrate_bundle
from akkd_scale.training.recipe import SuiteConfig, prepare_rows, train_suite
from akkd_scale.training.students import FitConfig, predict
from akkd_scale.training.teacher import TeacherConfig, train_baseline

log = logging.getLogger("train_default_bundle")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="akkd_scale/data/default_bundle", help="bundle directory to write")
    parser.add_argument(
        "--work", default="build/default_bundle_work", help="work directory: training set, AutoKeras search, logs"
    )
    parser.add_argument("--samples", type=int, default=300_000, help="simulated samples (all splits)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--profiles",
        default=",".join(DEFAULT_PROFILE_SETS),
        help="profile sets (CRTM sets and TIGR-2000, clear-sky screened)",
    )
    parser.add_argument("--max-trials", type=int, default=3, help="AutoKeras trials")
    parser.add_argument("--teacher-epochs", type=int, default=80)
    parser.add_argument("--teacher-layers", default="3,4", help="AutoKeras DenseBlock layer choices")
    parser.add_argument("--teacher-units", default="256", help="AutoKeras DenseBlock unit choices")
    parser.add_argument("--teacher-time-limit", type=float, default=1500.0, help="search wall-clock budget (s)")
    parser.add_argument("--student-epochs", type=int, default=60)
    parser.add_argument("--alpha", type=float, default=0.5, help="distillation weight on ground truth (strata)")
    parser.add_argument("--alphas", default="0.25,0.5,0.75,1", help="alpha grid of the class students")
    parser.add_argument(
        "--ndvi-missing-fraction",
        type=float,
        default=0.3,
        help="training rows whose NDVI is set missing (night scenes)",
    )
    parser.add_argument(
        "--atmosphere-missing-fraction",
        type=float,
        default=0.3,
        help="training rows without the reanalysis inputs (column water vapour, air temperature)",
    )
    parser.add_argument("--refine-epochs", type=int, default=40, help="epochs refining the searched teacher")
    parser.add_argument(
        "--baseline-epochs", type=int, default=60, help="epochs of the fixed 4x256 MLP reference (0: none)"
    )
    parser.add_argument(
        "--class-labelled", type=int, default=None, help="labelled rows per class student (default: all)"
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--resimulate", action="store_true", help="rebuild the training set even if present")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="only (re)write the evaluation report of the bundle at --out"
    )
    parser.add_argument(
        "--recalibrate-only",
        action="store_true",
        help="refit the fusion weights and sigma calibration of the bundle at --out on its calibration rows "
        "(its ONNX networks; adds the rules entries), then re-evaluate",
    )
    return parser.parse_args(argv)


def suite_config(args, work: Path) -> SuiteConfig:
    """The recipe's configuration from the command line (also what ``--recalibrate-only`` rebuilds rows with)."""
    return SuiteConfig(
        out=str(args.out),
        search_directory=str(work / "autokeras_search"),
        seed=args.seed,
        alpha=args.alpha,
        alphas=tuple(numbers(args.alphas)),
        ndvi_missing_fraction=args.ndvi_missing_fraction,
        atmosphere_missing_fraction=args.atmosphere_missing_fraction,
        class_labelled=args.class_labelled,
        teacher=TeacherConfig(
            max_trials=args.max_trials,
            epochs=args.teacher_epochs,
            time_limit_s=args.teacher_time_limit,
            num_layers=tuple(int(v) for v in numbers(args.teacher_layers)),
            num_units=tuple(int(v) for v in numbers(args.teacher_units)),
            refine_epochs=args.refine_epochs,
        ),
        student=FitConfig(epochs=args.student_epochs),
    )


def numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv=None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    timings = {}

    start = time.perf_counter()
    store = work / "trainingset.zarr"
    if args.resimulate or not store.exists():
        ds = simulate_training_set(
            args.samples,
            seed=args.seed,
            profile_sets=args.profiles.split(","),
            terms_path=str(work / "terms.nc"),
            processes=args.processes,
        )
        write_training_set(ds, store, overwrite=True)
    training_set = open_training_set(store).load()
    timings["simulate_s"] = time.perf_counter() - start

    start = time.perf_counter()
    config = suite_config(args, work)
    if args.recalibrate_only:
        recalibrate_bundle(args.out, training_set, config)
        args.evaluate_only = True
    if args.evaluate_only:
        baseline = work / "baseline_mlp.keras"
        return write_evaluation(training_set, Path(args.out), baseline if baseline.exists() else None)
    bundle_dir = train_suite(training_set, config)
    timings["train_s"] = time.perf_counter() - start

    baseline = work / "baseline_mlp.keras"
    if args.baseline_epochs > 0:
        start = time.perf_counter()
        rows = prepare_rows(training_set, config)
        fit = FitConfig(epochs=args.baseline_epochs, batch_size=512, learning_rate=1e-3, patience=15)
        model, info = train_baseline(
            rows.train.x, rows.z, rows.validation.x, rows.z_validation, rows.normalisation, config=fit, seed=args.seed
        )
        model.save(str(baseline))
        (work / "baseline_mlp.json").write_text(json.dumps(info, indent=2))
        timings["baseline_s"] = time.perf_counter() - start

    start = time.perf_counter()
    write_evaluation(training_set, Path(bundle_dir), baseline if baseline.exists() else None)
    timings["evaluate_s"] = time.perf_counter() - start
    (work / "timings.json").write_text(json.dumps(timings, indent=2))
    print(json.dumps(timings, indent=2))
    return Path(bundle_dir)


def write_evaluation(training_set, bundle_dir: Path, baseline: Path | None = None) -> Path:
    """The evaluation report next to the bundle (``<bundle>_evaluation``): the paper-style table with NDVI and
    the true land-cover class, and the tables per retrieval condition (with and without atmosphere inputs),
    class, water-vapour bin, LST − air temperature and view angle, with the fixed-MLP ``baseline`` (a Keras
    file) beside the teacher when given; the training set's humidity histogram per split."""
    test = select_test_split(training_set)
    bundle = load_bundle(bundle_dir)
    evaluation = evaluate(test, bundle)
    report_dir = bundle_dir.with_name(bundle_dir.name + "_evaluation")
    if report_dir.exists():
        shutil.rmtree(report_dir)
    write_report(evaluation, report_dir)
    references = None
    if baseline is not None:
        import keras

        model = keras.models.load_model(str(baseline), safe_mode=True)
        references = {BASELINE_HEAD: lambda x: predict(model, x)}
    conditions = condition_metrics(test, bundle, references=references)
    (report_dir / "humidity.json").write_text(
        json.dumps(
            {
                "bins_g_cm2": [str(v) for v in EARTH_LIKE_HUMIDITY[0]],
                "target": list(EARTH_LIKE_HUMIDITY[1]),
                "by_split": humidity_histogram(training_set),
            },
            indent=2,
        )
    )
    conditions.to_csv(report_dir / "conditions.csv", index=False)
    (report_dir / "conditions.md").write_text(format_conditions_markdown(conditions))
    print(format_markdown(evaluation))
    print(format_conditions_markdown(conditions))
    return bundle_dir


if __name__ == "__main__":
    main()
