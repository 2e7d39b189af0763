"""The demo's cloud part: cloudy copies of the demo scenes and a night scene, retrieved with and without the mask.

The demo ground (:func:`akkd_scale.simulate.scenes.make_demo_scene`, the same landscape seed as the clear demo
scenes) gets the hard cases — snow on the mountain above :data:`SNOWLINE_KM`, a bright warm desert, the lake —
and cloud layers of :func:`akkd_scale.simulate.clouds.add_clouds` (≈ 30 % cover: water clouds 1–5 km, cirrus
8–12 km); the night scene is the same ground at night (no VNIR). Each is written as an L1B file, retrieved
twice with the default pipeline (``cloud_mask="auto"`` and ``"none"``), and scored against the true cloud
mask: hit and false-alarm rates per surface, day and night, and the LST accuracy on clear pixels with and
without the mask (the mask must not disturb clear pixels: target within 0.02 K).
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import xarray as xr

from ..conventions import LAND_COVER_CLASSES, QC_CLOUD, QC_INVALID_INPUT
from ..io.aster import view_zenith_from_pointing
from ..metrics import metrics
from ..simulate.clouds import HARD_CASES, add_clouds, add_snow, mask_rates, night_scene
from ..simulate.l1b_writer import vnir_dn_for_reflectance, write_aster_l1b
from ..simulate.scenes import demo_surfaces, make_demo_scene
from ..utils import markdown_table

log = logging.getLogger(__name__)

#: Cloudy demo scenes: (name, atmosphere, TIR pointing angle in degrees, scene seed, cloud seed, day).
CLOUD_SCENES = (
    ("AST_L1B_demo_cloudy_midlatitude_summer", "midlatitude_summer", 5.7, 1, 101, True),
    ("AST_L1B_demo_cloudy_tropical", "tropical", -2.0, 2, 102, True),
    ("AST_L1B_demo_cloudy_night_midlatitude_summer", "midlatitude_summer", 5.7, 1, 103, False),
)
#: Snow above this altitude (km) on the demo mountain (it peaks at 2.6 km).
SNOWLINE_KM = 2.0
#: Night acquisition: the demo's date, the sun 40° below the horizon (no VNIR is recorded at night).
NIGHT_SOLAR_DIRECTION = (300.0, -40.0)
#: Smallest cloudy scene: the mask's scene reference and rates need a landscape (the clear demo's size halved
#: for ``make demo``: 350 × 415).
MIN_CLOUD_SHAPE = (120, 140)
#: Truth layers kept for scoring (the rest of the simulated scene is not written).
TRUTH = ("lst", "emissivity", "land_cover", "surface_altitude", "cloud_mask", "opaque_cloud",
         "cloud_optical_depth_water", "cloud_optical_depth_ice", "cloud_top_altitude", "cloud_type")
#: Runs of the cloudy scenes: name → ``cloud_mask``.
RUNS = {"mask": "auto", "no mask": "none"}


def cloud_shape(shape) -> tuple[int, int]:
    """Size of the cloudy scenes for a demo of ``shape``: half of it, at least :data:`MIN_CLOUD_SHAPE`."""
    return tuple(max(int(n) // 2, m) for n, m in zip(shape, MIN_CLOUD_SHAPE))


def write_cloudy_scenes(out_dir, *, shape=(350, 415), scenes=CLOUD_SCENES, acquisition_time: str,
                        solar_direction, landscape_seed: int, fill_mask=None, processes: int = 2) -> list[Path]:
    """Write the cloudy L1B files (``<name>.hdf``; by day VNIR bands 1, 2, 3N carrying the cloudy reflectance)
    and their truth (``truth/<name>.nc``); returns the HDF paths."""
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    view_zeniths = {name: view_zenith_from_pointing(pointing) for name, _, pointing, *_ in scenes}
    surfaces = demo_surfaces(tuple(sorted(set(view_zeniths.values()))))
    paths = []
    for name, atmosphere, pointing, seed, cloud_seed, day in scenes:
        ground = make_demo_scene(shape, seed=seed, view_zenith=view_zeniths[name], atmosphere=atmosphere,
                                 surfaces=surfaces, landscape_seed=landscape_seed, processes=processes)
        ground = add_snow(ground, SNOWLINE_KM, seed=seed)
        if not day:
            ground = add_snow(night_scene(ground, seed=seed), SNOWLINE_KM, seed=seed, night=True)
        scene = add_clouds(ground, seed=cloud_seed, day=day, bright_desert=day, processes=processes)
        sun = solar_direction if day else NIGHT_SOLAR_DIRECTION
        vnir = (vnir_dn_for_reflectance(scene["reflectance"].values, acquisition_time=acquisition_time,
                                        solar_direction=sun) if day else None)
        path = write_aster_l1b(out_dir / f"{name}.hdf", radiance=scene["radiance"].values, shape=shape,
                               pointing_angle=pointing, fill_mask=fill_mask, vnir_dn=vnir, include_vnir=day,
                               acquisition_time=acquisition_time, solar_direction=sun)
        truth = scene[list(TRUTH)]
        truth.attrs = {"cloud_fraction": scene.attrs["cloud_fraction"], "day": int(day), "atmosphere": atmosphere}
        truth.to_netcdf(out_dir / "truth" / f"{name}.nc", engine="h5netcdf")
        log.info("cloudy demo scene %s: %.1f %% true cloud", name, 100 * scene.attrs["cloud_fraction"])
        paths.append(path)
    return paths


def _rate(flag, group) -> float:
    return float(flag[group].mean()) if group.any() else float("nan")


def cloud_scores(result: xr.Dataset, truth: xr.Dataset, without: xr.Dataset) -> dict:
    """Mask rates of a retrieval (``result``, QC bit ``cloud``) against the truth, per surface class too, and
    the LST accuracy on truly clear pixels of ``result`` (masked) and ``without`` (no mask)."""
    qc = result["qc"].values
    valid = (qc & QC_INVALID_INPUT) == 0
    flag = (qc & QC_CLOUD) > 0
    rates = mask_rates(truth, flag, valid)
    tau = truth["cloud_optical_depth_water"].values + truth["cloud_optical_depth_ice"].values
    clear = (tau == 0) & valid
    opaque = truth["opaque_cloud"].values & valid
    cover = truth["land_cover"].values
    by_class = {}
    for code in np.unique(cover):
        own = cover == code
        by_class[LAND_COVER_CLASSES[code]] = {"opaque_hit": _rate(flag, opaque & own), "n_opaque": int((opaque & own).sum()),
                                              "false_alarm": _rate(flag, clear & own), "n_clear": int((clear & own).sum())}
    lst_true = truth["lst"].values
    masked = metrics(lst_true[clear], result["lst"].values[clear])
    unmasked = metrics(lst_true[clear], without["lst"].values[clear])
    return {"day": bool(truth.attrs.get("day", 1)), "true_cloud_fraction": float(truth["cloud_mask"].values[valid].mean()),
            "flagged_fraction": float(flag[valid].mean()), "rates": asdict(rates), "by_class": by_class,
            "clear_lst": {"mask": masked, "no mask": unmasked, "mae_difference": masked["mae"] - unmasked["mae"]},
            "cloud_mask_source": result.attrs.get("cloud_mask_source", "")}


def _pct(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.1%}"


def format_cloud_section(clouds: dict) -> list[str]:
    """Markdown lines of the report's cloud section."""
    lines = ["## Clouds", "",
             f"Cloudy copies of the demo ground ({clouds['shape'][0]} × {clouds['shape'][1]}; snow above "
             f"{SNOWLINE_KM:g} km, a bright warm desert, the lake) and a night scene, retrieved with the built-in mask "
             f"(`--cloud-mask auto`) and without it (`--cloud-mask none`) in {clouds['seconds_retrieval']:.1f} s. "
             "Hits: opaque clouds (B13 transmissivity < 0.1) and visible cirrus (τ ≥ 0.5) flagged; false alarms: "
             "cloud-free pixels flagged. Targets: day opaque ≥ 97 %, cirrus ≥ 85 %, false alarms ≤ 1 % (≤ 3 % over "
             "snow, bright desert, water); night opaque ≥ 90 %, false alarms ≤ 3 %; clear-pixel LST MAE within "
             "0.02 K of the unmasked run.", ""]
    rows = []
    for name, s in clouds["scenes"].items():
        r = s["rates"]
        fa = r["false_alarm_by_class"]
        lst = s["clear_lst"]
        rows.append([name.replace("AST_L1B_demo_", ""), "day" if s["day"] else "night", _pct(s["true_cloud_fraction"]),
                     _pct(s["flagged_fraction"]), _pct(r["opaque"]), _pct(r["cirrus"]), _pct(r["false_alarm"])]
                    + [_pct(fa[c]) for c in HARD_CASES]
                    + [f"{lst['mask']['mae']:.3f}", f"{lst['no mask']['mae']:.3f}", f"{lst['mae_difference']:+.4f}"])
    lines += markdown_table(["scene", "", "true cloud", "flagged", "opaque hit", "cirrus hit", "false alarms"]
                            + [f"false alarms {c}" for c in HARD_CASES]
                            + ["clear LST MAE mask (K)", "no mask (K)", "difference (K)"], rows)
    for name, s in clouds["scenes"].items():
        lines += ["", f"### {name}: per surface", "", f"Mask: {s['cloud_mask_source']}", ""]
        lines += markdown_table(["surface", "opaque pixels", "opaque hit", "clear pixels", "false alarms"],
                                [[c, v["n_opaque"], _pct(v["opaque_hit"]), v["n_clear"], _pct(v["false_alarm"])]
                                 for c, v in s["by_class"].items()])
    return lines + [""]
