"""Measure the built-in cloud mask on simulated cloudy scenes: hit and false-alarm rates, day and night.

The thresholds of ``akkd_scale.clouds.tests`` were set on mid-latitude-summer scenes with seeds 1–6; this
measures on seeds 11–20 (other landscapes, clouds, noise) under mid-latitude summer and, held out entirely,
the tropical atmosphere. Each scene: 120 × 140 pixels, snow above 2 km, a bright warm desert, the lake,
the default cloud layers (water tops 1–5 km, cirrus 8–12 km). Night variants: scene reference only; with a
surface-temperature prior (true near-surface air temperature + N(0, 1.5 K), a reanalysis-like error); with
the prior and a snow map (the true snow/ice class, as a land-cover map would give); with the prior and the
snow test switched off (snow nowhere possible).

    PYTHONPATH=. AKKD_DATA_DIR=../shared/data python benchmarks/clouds/measure_mask.py [--seeds 11-20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from akkd_scale.clouds.mask import CloudMaskConfig, cloud_mask, scene_reference
from akkd_scale.conventions import LAND_COVER_CLASSES
from akkd_scale.simulate.clouds import HARD_CASES, HEIGHT_BANDS_KM, add_clouds, add_snow, mask_rates, night_scene
from akkd_scale.simulate.scenes import demo_surfaces, make_demo_scene

SHAPE = (120, 140)
PRIOR_ERROR_K = 1.5


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _accumulate(total: dict, rates) -> None:
    for key, value in (("opaque", rates.opaque), ("opaque_over_snow", rates.opaque_over_snow),
                       ("cirrus", rates.cirrus), ("false_alarm", rates.false_alarm),
                       ("faint", rates.faint), *rates.false_alarm_by_class.items(), *rates.opaque_by_height.items()):
        group = {"false_alarm": "clear"}.get(key, key)  # opaque hit rates per height band: counts share the name
        n = rates.counts[group]
        if n:
            hits, count = total.get(key, (0.0, 0))
            total[key] = (hits + value * n, count + n)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="11-20")
    parser.add_argument("--atmospheres", default="midlatitude_summer,tropical")
    parser.add_argument("--buffer", type=int, default=None, help="buffer radius (px); default: the mask's")
    args = parser.parse_args(argv)
    config = CloudMaskConfig() if args.buffer is None else CloudMaskConfig(buffer_px=args.buffer)
    surfaces = demo_surfaces((6.3,))
    start = time.perf_counter()
    for atmosphere in args.atmospheres.split(","):
        totals: dict[str, dict] = {}
        buffer_cost = []
        for seed in _seeds(args.seeds):
            clear = add_snow(make_demo_scene(SHAPE, seed=seed, surfaces=surfaces, atmosphere=atmosphere), 2.0,
                             seed=seed)
            day = add_clouds(clear, seed=seed + 100, bright_desert=True)
            night = add_clouds(add_snow(night_scene(clear, seed=seed), 2.0, seed=seed, night=True), seed=seed + 100,
                               day=False)
            prior = (night["surface_air_temperature"].values
                     + np.random.default_rng(seed).normal(0.0, PRIOR_ERROR_K, SHAPE))
            snow_map = night["land_cover"].values == LAND_COVER_CLASSES.index("snow_ice")
            bt_day, bt_night = day["brightness_temperature"].values, night["brightness_temperature"].values
            runs = {"day": cloud_mask(bt_day, scene_reference(bt_day[3], day=True), day["reflectance"].values,
                                      config=config),
                    "night": cloud_mask(bt_night, scene_reference(bt_night[3], day=False), config=config),
                    "night+prior": cloud_mask(bt_night, scene_reference(bt_night[3], day=False), prior=prior,
                                              config=config),
                    "night+prior+snow map": cloud_mask(bt_night, scene_reference(bt_night[3], day=False),
                                                       prior=prior, snow_possible=snow_map, config=config),
                    "night+prior, no snow": cloud_mask(bt_night, scene_reference(bt_night[3], day=False),
                                                       prior=prior, snow_possible=np.zeros(SHAPE, bool),
                                                       config=config)}
            for name, mask in runs.items():
                scene = day if name == "day" else night
                _accumulate(totals.setdefault(name, {}), mask_rates(scene, mask.cloud))
                if name == "day":
                    tau = scene["cloud_optical_depth_water"].values + scene["cloud_optical_depth_ice"].values
                    clear_px = tau == 0
                    buffer_cost.append(float(mask.buffer[clear_px].mean()))
                    _accumulate(totals.setdefault("day cloud|buffer", {}), mask_rates(scene, mask.cloud | mask.buffer))
        print(f"\n{atmosphere}, seeds {args.seeds}, buffer {config.buffer_px} px")
        for header in (["opaque", "opaque_over_snow", "cirrus", "false_alarm", *HARD_CASES, "faint"],
                       ["opaque"] + [f"{lo:g}-{hi:g} km" for lo, hi in HEIGHT_BANDS_KM]):
            print(f"{'':22s}" + "".join(f"{h:>18s}" for h in header))
            for name, total in totals.items():
                cells = [f"{total[h][0] / total[h][1]:.4f} ({total[h][1]})" if h in total else "-" for h in header]
                print(f"{name:22s}" + "".join(f"{c:>18s}" for c in cells))
            print()
        print(f"buffer flags {np.mean(buffer_cost):.4f} of clear pixels by day")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
