"""Experiment: does a larger fixed MLP, or an ensemble of them, beat the 4×256 baseline by the ≥ 5 % the teacher
must reach (issue 20)?

Trains plain MLPs of several widths and depths with the baseline's schedule (``training.teacher.train_baseline``)
on exactly the default bundle's training rows (``make bundle``'s work directory, the recipe's configuration) and
evaluates them beside the shipped teacher on the held-out test split, in every retrieval condition
(``training.evaluate.condition_metrics``; a network's LST MAE depends only on its inputs, so the map/rules
conditions repeat the no-map numbers). With ``--seeds N`` (N > 1) each architecture is trained N times (seeds
``seed … seed + N − 1``) and the mean of the N networks' outputs is evaluated too (``ensemble_<arch>x<N>``),
beside the mean MAE of the N single networks (``members_<arch>``).

    AKKD_DATA_DIR=../shared/data .venv/bin/python scripts/experiment_teacher_capacity.py \\
        [--work build/default_bundle_work] [--hidden 256x4,512x4,256x6] [--seeds 1] [--epochs 60] \\
        [--out build/capacity]

The work directory must hold ``trainingset.zarr`` (``make bundle`` or its first step writes it). Prints a
table of LST MAE per condition and the gain over the 4×256 network; writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_default_bundle as recipe_cli  # noqa: E402

from akkd_scale.models.bundle import load_bundle  # noqa: E402
from akkd_scale.simulate.trainingset import open_training_set  # noqa: E402
from akkd_scale.training.evaluate import condition_metrics, select_test_split  # noqa: E402
from akkd_scale.training.recipe import prepare_rows  # noqa: E402
from akkd_scale.training.students import FitConfig, predict  # noqa: E402
from akkd_scale.training.teacher import train_baseline  # noqa: E402


def _hidden(text: str) -> tuple[int, ...]:
    width, depth = (int(v) for v in text.lower().split("x"))
    return (width,) * depth


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="build/default_bundle_work")
    parser.add_argument("--bundle", default="akkd_scale/data/default_bundle")
    parser.add_argument("--hidden", default="256x4,512x4,256x6", help="width x depth of each network")
    parser.add_argument("--seeds", type=int, default=1, help="networks per architecture (> 1: also their ensemble)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", default="build/capacity")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    training_set = open_training_set(work / "trainingset.zarr").load()
    config = recipe_cli.suite_config(recipe_cli.parse_args(["--work", str(work)]), work)
    rows = prepare_rows(training_set, config)
    fit = FitConfig(epochs=args.epochs, batch_size=512, learning_rate=1e-3, patience=15)
    references, info, members = {}, {}, {}
    for text in args.hidden.split(","):
        models = []
        for k in range(args.seeds):
            start = time.perf_counter()
            model, record = train_baseline(
                rows.train.x,
                rows.z,
                rows.validation.x,
                rows.z_validation,
                rows.normalisation,
                config=fit,
                hidden=_hidden(text),
                seed=config.seed + k,
            )
            record["wall_s"] = round(time.perf_counter() - start, 1)
            info[text if k == 0 else f"{text}_seed{config.seed + k}"] = record
            models.append(model)
            name = f"mlp_{text}" if k == 0 else f"mlp_{text}_seed{config.seed + k}"
            references[name] = lambda x, m=model: predict(m, x)
            members.setdefault(text, []).append(name)
        if len(models) > 1:
            references[f"ensemble_{text}x{len(models)}"] = lambda x, ms=tuple(models): np.mean(
                [predict(m, x) for m in ms], axis=0
            )
    table = condition_metrics(
        select_test_split(training_set), load_bundle(args.bundle), heads=("teacher",), references=references
    )
    overall = table[table["group"] == "all"].copy()
    for text, names_k in members.items():  # the mean MAE of the single networks, beside their ensemble
        if len(names_k) > 1:
            mean = overall[overall["head"].isin(names_k)].groupby("condition", sort=False)["lst_mae"].mean()
            extra = overall[overall["head"] == names_k[0]].copy()
            extra["head"] = f"members_{text}"
            extra["lst_mae"] = extra["condition"].map(mean).to_numpy()
            overall = pd.concat([overall, extra])
    names = ["teacher"] + [n for n in references if "_seed" not in n]
    names += [f"members_{t}" for t, k in members.items() if len(k) > 1]
    lines = ["| condition | " + " | ".join(names) + " | gain of each over mlp_256x4 |", "|" + "---|" * (len(names) + 2)]
    for condition, part in overall.groupby("condition", sort=False):
        mae = {head: float(part.loc[part["head"] == head, "lst_mae"].iloc[0]) for head in names}
        base = mae["mlp_256x4"] if "mlp_256x4" in mae else mae[names[1]]
        gains = ", ".join(f"{h}: {100 * (1 - mae[h] / base):+.1f} %" for h in names if h != "mlp_256x4")
        lines.append(f"| {condition} | " + " | ".join(f"{mae[h]:.3f}" for h in names) + f" | {gains} |")
    text = "\n".join(lines)
    print(text)
    (out / "capacity.md").write_text(text + "\n")
    (out / "capacity.json").write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
