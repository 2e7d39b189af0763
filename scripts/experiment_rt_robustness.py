"""Experiment: what does training with radiative-transfer error perturbations cost and buy?

Trains the same network twice on the same simulated samples — once on plain LOWTRAN7 terms, once with the
terms perturbed per sample (``rt_perturbation``: water-vapour continuum and trace-gas errors with amplitudes
~ U(lo, hi), 1 = the LOWTRAN7 → line-by-line difference of ASTER_FACTS.md) — and tests both on the test split
simulated (a) with plain terms and (b) with deliberately shifted terms (amplitude 1: LBL-like atmosphere).
Each of ``--seeds`` repetitions trains both networks from the same initialisation; prints LST MAE / bias per
network and test set (mean and range over the repetitions), overall and for humid atmospheres (> 3 g cm⁻²).

    python scripts/experiment_rt_robustness.py --terms build/terms_default.nc --samples 300000 --seeds 3
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from akkd_scale.conventions import BT, VZA
from akkd_scale.models.students import FitConfig, build_network, fit_network, predict
from akkd_scale.simulate.trainingset import simulate_training_set

log = logging.getLogger("experiment_rt_robustness")


def arrays(ds, split):
    """Network inputs (BT, view zenith) and targets (LST, ε) of one split."""
    own = ds.isel(sample=np.flatnonzero(ds["split"].values == split))
    x = np.column_stack([own[BT].values, own[VZA].values]).astype(np.float32)
    y = np.column_stack([own["lst"].values, own["emissivity"].values]).astype(np.float32)
    return x, y, own["column_water_vapour"].values


def train(ds, hidden, config, seed):
    """The same network (architecture, budget, seed) trained on the train split of ``ds``; (model, epochs)."""
    import keras

    keras.utils.set_random_seed(seed)
    x, y, _ = arrays(ds, "train")
    xv, yv, _ = arrays(ds, "validation")
    norm = {
        "input_mean": x.mean(0).tolist(),
        "input_variance": x.var(0).tolist(),
        "output_mean": y.mean(0).tolist(),
        "output_scale": y.std(0).tolist(),
    }
    scale, mean = np.asarray(norm["output_scale"]), np.asarray(norm["output_mean"])
    train_model, model = build_network(hidden, norm, name="net")
    history = fit_network(
        train_model, x, (y - mean) / scale, loss="mse", validation=(xv, (yv - mean) / scale), config=config
    )
    return model, len(history["loss"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terms", default=None, help="terms table NetCDF to reuse (written if missing)")
    parser.add_argument("--samples", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--amplitude", default="-0.5,1.5", help="training perturbation amplitude range lo,hi")
    parser.add_argument("--shift", type=float, default=1.0, help="amplitude of the shifted test terms")
    parser.add_argument("--hidden", default="256,256,256,256")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="repetitions (network initialisations)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lo, hi = (float(v) for v in args.amplitude.split(","))
    common = dict(seed=args.seed, terms_path=args.terms)
    sets = {
        "plain": simulate_training_set(args.samples, **common),
        "perturbed": simulate_training_set(args.samples, rt_perturbation=(lo, hi), **common),
        "shifted": simulate_training_set(args.samples, rt_perturbation=(args.shift, args.shift), **common),
    }
    config = FitConfig(epochs=args.epochs, batch_size=1024, patience=args.patience)
    hidden = tuple(int(v) for v in args.hidden.split(","))
    scores, epochs = {}, {"plain": [], "perturbed": []}  # (net, test) -> rows of (MAE, bias, MAE humid, bias humid)
    for repetition in range(args.seeds):
        for net_name in ("plain", "perturbed"):
            net, n_epochs = train(sets[net_name], hidden, config, args.seed + repetition)
            epochs[net_name].append(n_epochs)
            for test_name in ("plain", "shifted"):
                x, y, cwv = arrays(sets[test_name], "test")
                error = predict(net, x)[:, 0] - y[:, 0]
                humid = cwv > 3
                scores.setdefault((net_name, test_name), []).append(
                    (np.mean(np.abs(error)), np.mean(error), np.mean(np.abs(error[humid])), np.mean(error[humid]))
                )
    print(
        f"\nLST error (K) of a {hidden} network, {args.seeds} initialisations (mean [min–max]); training "
        f"perturbation U({lo:g}, {hi:g}); shifted test: amplitude {args.shift:g}; epochs {epochs}\n"
    )
    print("| trained on | tested on | MAE | bias | MAE CWV > 3 | bias CWV > 3 |\n|---|---|---|---|---|---|")
    for (net_name, test_name), rows in scores.items():
        rows = np.array(rows)
        cells = " | ".join(
            f"{m:+.3f} [{a:+.2f}…{b:+.2f}]" if k % 2 else f"{m:.3f} [{a:.2f}–{b:.2f}]"
            for k, (m, a, b) in enumerate(zip(rows.mean(0), rows.min(0), rows.max(0)))
        )
        print(f"| {net_name} | {test_name} | {cells} |")


if __name__ == "__main__":
    main()
