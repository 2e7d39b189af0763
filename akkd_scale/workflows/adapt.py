"""Regional adaptation: distil a bundle's land-cover class students for the region of a set of scenes.

``akkd-scale adapt scenes/*.hdf --bundle B --out LOCAL`` (:func:`adapt_bundle`):

1. **Scene pixels** — every scene is read whole; its pixels get their land-cover class as in retrieval (a
   map, else the NDVI/BT rules; night scenes without a map give no class) and up to ``pixels_per_class``
   valid pixels per class are drawn over all scenes. They carry the teacher's labels only (the distillation
   term), so the students learn the teacher's answer on the region's own inputs.
2. **A small local simulation** — atmospheres near the scenes: the user's profiles (a TIGR-format file,
   ``profiles``) or the TIGR-2000 air-mass classes of the scenes' latitude band and season (tropical
   |lat| < 30°; mid-latitude 30–60°; polar > 60°; summer = April–September in the north, October–March in
   the south), at most ``n_profiles`` of them, clear-sky screened; the simulator's land-cover surfaces and
   ASTER geometry. Its train split gives the labelled rows, its validation split (halved by atmosphere)
   early stopping/α and the fusion/calibration rows.
3. **Students** — per class with at least ``min_class_samples`` labelled rows and some scene pixels, the
   input bundle's baseline and distilled students are fine-tuned (Adam at ``learning_rate`` 5e-4, early
   stopping on the local validation rows; α chosen on validation, ``training.distill.train_class_students``);
   classes the input bundle has no student for start afresh. α = 1 (in the grid) is the student on the local
   truth alone.
4. **Keep the better one** — per class, the adapted distilled student and the input bundle's (its class
   student, or the global student for a class it has none for) are scored on the **held-out rows**: the
   local simulation's test split, whose atmospheres and surface spectra the fitting, early stopping and α
   choice never saw (splits are disjoint by profile and spectrum). The scene pixels are not held out: they
   have no truth, only the teacher's labels. The adapted students are kept only where their held-out LST
   MAE is lower; otherwise the class keeps the input bundle's students (both kd and baseline). Classes
   with fewer than ``min_held_out`` held-out rows are not adapted. The other classes, the BT-strata and
   global students and the teacher are the input bundle's. The fusion weights and calibration factors of
   the kept adapted classes are refitted on the local calibration rows (with the input bundle's
   water-vapour estimate); every other row keeps the input bundle's.

The output is a normal bundle whose manifest records the input bundle's sha256, the scenes (path, sha256),
the atmospheres, the number of pixels per class and, per class, which students were kept and why
(``distillation.adaptation.by_class``; :func:`adaptation_table` formats it). This module trains
(TensorFlow): it is a training entry point beside the retrieval pipeline, never imported by retrieval.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr

from ..config import data_dir
from ..conventions import BANDS, BT, LAND_COVER_CLASSES, NDVI, VZA
from ..errors import InputError, ParameterError
from ..models.fusion import NIGHT_INPUT_KEY, RULES_OFFSET_KEY
from ..pipeline.landcover_plan import classify_block, plan_land_cover
from ..utils import json_safe, markdown_table, sha256_file

log = logging.getLogger(__name__)

#: TIGR-2000 air-mass classes by profile id (data/README.md).
TIGR_AIRMASS_IDS = {
    "tropical": (1, 872),
    "midlatitude_summer": (873, 1260),
    "midlatitude_winter": (1261, 1614),
    "polar_summer": (1615, 1718),
    "polar_winter": (1719, 2311),
}


def air_mass(latitude: float, month: int) -> str:
    """TIGR air-mass class of a place and month: latitude band, and season by hemisphere."""
    band = abs(latitude)
    if band < 30.0:
        return "tropical"
    summer = (4 <= month <= 9) == (latitude >= 0)
    return ("midlatitude" if band < 60.0 else "polar") + ("_summer" if summer else "_winter")


@dataclass(frozen=True)
class AdaptConfig:
    """Sizes of an adaptation: scene pixels per class, local simulation, student training budget."""

    pixels_per_class: int = 20_000
    n_samples: int = 40_000
    n_profiles: int = 150
    altitudes: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0)
    min_class_samples: int = 300
    epochs: int = 60
    learning_rate: float = 5e-4
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    min_held_out: int = 50
    processes: int = 2
    seed: int = 0


def scene_pixels(path, bundle, *, landcover=None, landcover_legend=None) -> dict:
    """Network inputs (N, inputs) and land-cover classes (N,) of a scene's valid, classed pixels, with the
    scene's centre latitude and month."""
    ds = xr.open_dataset(path, engine="aster_l1b").load()
    plan = plan_land_cover(ds, landcover, landcover_legend)
    bt = ds[BT].transpose("band", *[d for d in ds[BT].dims if d != "band"]).values.astype(np.float32)
    shape = bt.shape[1:]
    inputs = {name: np.broadcast_to(ds[name].values, shape) for name in plan.inputs}
    classes, _ = classify_block(plan, bt, **inputs)
    vza = np.broadcast_to(np.asarray(ds[VZA].values, np.float32), shape).reshape(-1)
    extra = {name: ds[name].values.reshape(-1) for name in bundle.extra_inputs if name in ds}
    x, finite = bundle.features(bt.reshape(len(BANDS), -1).T, vza, extra)
    keep = finite & (classes.reshape(-1) >= 0)
    latitude = float(np.nanmean(ds["latitude"].values))
    when = datetime.fromisoformat(str(ds.attrs["acquisition_time"]).replace("Z", "+00:00"))
    log.info("%s: %d classed pixels (%s); %s", path, int(keep.sum()), plan.source, air_mass(latitude, when.month))
    return {
        "x": x[keep],
        "land_cover": classes.reshape(-1)[keep].astype(np.int32),
        "latitude": latitude,
        "month": when.month,
        "has_ndvi": NDVI in ds,
    }


def local_profiles(scenes: list[dict], profiles, n_profiles: int, seed: int) -> tuple[xr.Dataset, str]:
    """Atmospheres for the local simulation (module docstring) and a description of the choice."""
    from ..simulate.profiles import TIGR_FILE, read_tigr

    if profiles is not None:
        chosen, what = read_tigr(profiles), f"user profiles {profiles}"
    else:
        tigr = read_tigr(data_dir() / "profiles" / TIGR_FILE)
        classes = sorted({air_mass(s["latitude"], s["month"]) for s in scenes})
        ids = np.array([int(p.split(":")[1]) for p in tigr["profile_id"].values])
        own = np.zeros(ids.shape, bool)
        for name in classes:
            lo, hi = TIGR_AIRMASS_IDS[name]
            own |= (ids >= lo) & (ids <= hi)
        chosen, what = tigr.isel(profile=np.flatnonzero(own)), f"TIGR-2000 air masses {', '.join(classes)}"
    if chosen.sizes["profile"] > n_profiles:
        pick = np.sort(np.random.default_rng(seed).choice(chosen.sizes["profile"], n_profiles, replace=False))
        chosen = chosen.isel(profile=pick)
    return chosen, f"{what} ({chosen.sizes['profile']} profiles before clear-sky screening)"


def adapt_bundle(
    scenes, bundle, out, *, landcover=None, landcover_legend=None, profiles=None, config: AdaptConfig = AdaptConfig()
) -> Path:
    """Write a bundle at ``out`` whose class students are distilled for the scenes' region; returns ``out``."""
    from ..models.bundle import load_bundle
    from ..simulate.trainingset import simulate_training_set
    from ..training.bundle_writer import save_bundle
    from ..training.data import dataset_rows, scale_targets, split_validation
    from ..training.distill import train_class_students
    from ..training.keras_io import load_keras_model
    from ..training.recipe import SuiteConfig, fit_fusion_and_calibration
    from ..training.students import FitConfig, predict

    scenes = [Path(s) for s in scenes]
    if not scenes:
        raise ParameterError("adapt", "no scenes", variable="scenes", expected="one or more ASTER L1B/L1T files")
    source = load_bundle(bundle)
    if not source.classes:
        raise InputError(
            source.path,
            "the bundle has no land-cover class students",
            variable="land_cover",
            expected="a format-2 bundle trained with land-cover classes",
        )
    pixels = [scene_pixels(path, source, landcover=landcover, landcover_legend=landcover_legend) for path in scenes]
    rng = np.random.default_rng(config.seed)
    x_scene = np.concatenate([p["x"] for p in pixels])
    c_scene = np.concatenate([p["land_cover"] for p in pixels])
    if not len(x_scene):
        raise InputError(
            ", ".join(map(str, scenes)),
            "no pixel has a land-cover class",
            variable="land_cover",
            expected="day scenes with VNIR (NDVI) or a land-cover map (--landcover MAP.tif)",
        )

    atmospheres, atmospheres_text = local_profiles(pixels, profiles, config.n_profiles, config.seed)
    sim = simulate_training_set(
        config.n_samples,
        seed=config.seed,
        profile_sets=(),
        profiles=atmospheres,
        altitudes=config.altitudes,
        processes=config.processes,
    )
    inputs = source.input_names
    # night scenes among them: train with NDVI missing as the input bundle was
    ndvi_missing = (
        0.0 if all(p["has_ndvi"] for p in pixels) else source.manifest["distillation"].get("ndvi_missing_fraction", 0.0)
    )
    # the atmospheric inputs (when the bundle takes them) missing in the same share of rows as in its training
    missing = {
        "missing_fraction": ndvi_missing,
        "atmosphere_missing_fraction": source.manifest["distillation"].get("atmosphere_missing_fraction", 0.0),
    }
    train = dataset_rows(sim, "train", inputs, seed=config.seed, **missing)
    held = dataset_rows(sim, "validation", inputs, seed=config.seed + 1, **missing)
    val, cal = split_validation(held, "local simulation")
    # the held-out rows that decide, per class, between the input bundle's students and the adapted ones
    test = dataset_rows(sim, "test", inputs, seed=config.seed + 2, **missing)

    manifest = source.manifest
    keras_of = lambda entry: load_keras_model(source, entry.get("keras"))  # noqa: E731
    teacher = keras_of(manifest["models"]["teacher"])
    students = manifest["models"]["students"]
    global_models = {kind: keras_of(students["global"][kind]) for kind in ("kd", "baseline")}
    strata_models = [
        None if e["kd"] is None else {k: keras_of(e[k]) for k in ("kd", "baseline")} for e in students["strata"]
    ]
    class_models = [
        None if e["kd"] is None else {k: keras_of(e[k]) for k in ("kd", "baseline")} for e in students["land_cover"]
    ]
    normalisation = manifest["normalisation"]
    suite = SuiteConfig(
        out=str(out),
        student=FitConfig(epochs=config.epochs, learning_rate=config.learning_rate),
        alphas=config.alphas,
        seed=config.seed,
    )

    adapted, scene_counts, by_class, trained = {}, {}, {}, 0
    for code, name in enumerate(LAND_COVER_CLASSES):
        mine = np.flatnonzero(c_scene == code)
        scene_counts[name] = int(mine.size)
        rows, val_rows, test_rows = train.land_cover == code, val.land_cover == code, test.land_cover == code
        record: dict = {
            "kept": "input",
            "input_students": "class" if class_models[code] is not None else "global",
            "scene_pixels": int(mine.size),
            "n_fit": int(rows.sum()),
            "n_held_out": int(test_rows.sum()),
            "held_out_mae_input": None,
            "held_out_mae_adapted": None,
        }
        by_class[name] = record
        short = [
            what
            for what, bad in (
                ("no scene pixels", mine.size == 0),
                (
                    f"{int(rows.sum())} < {config.min_class_samples} simulated rows",
                    rows.sum() < config.min_class_samples,
                ),
                ("no validation rows", val_rows.sum() == 0),
                (
                    f"{int(test_rows.sum())} < {config.min_held_out} held-out rows",
                    test_rows.sum() < config.min_held_out,
                ),
            )
            if bad
        ]
        if short:
            record["reason"] = "not adapted: " + ", ".join(short)
            log.info("class %s: %s: keeping the input bundle's students", name, record["reason"])
            continue
        mine = rng.permutation(mine)[: config.pixels_per_class]
        models = train_class_students(
            name,
            (train.x[rows], train.y[rows]),
            x_scene[mine],
            (val.x[val_rows], val.y[val_rows]),
            normalisation,
            suite,
            lambda x: scale_targets(predict(teacher, x), normalisation),
            initial=class_models[code],
        )
        trained += 1
        x_test, y_test = test.x[test_rows], test.y[test_rows]
        before = (class_models[code] or global_models)["kd"]
        mae_input = _lst_mae(y_test, predict(before, x_test))["lst_mae"]
        mae_adapted = _lst_mae(y_test, predict(models["kd"], x_test))["lst_mae"]
        record.update(held_out_mae_input=mae_input, held_out_mae_adapted=mae_adapted, alpha=models["alpha"])
        if keep_adapted(mae_input, mae_adapted):
            record.update(kept="adapted", reason="lower held-out LST MAE")
            class_models[code] = models
            adapted[name] = {k: v for k, v in models.items() if k not in ("kd", "baseline")}
        else:
            record["reason"] = "adapted student not better on the held-out rows"
        log.info(
            "class %s: held-out LST MAE %.3f K (input bundle's %s student) vs %.3f K (adapted), %d rows: kept %s",
            name,
            mae_input,
            record["input_students"],
            mae_adapted,
            record["n_held_out"],
            record["kept"],
        )
    if not trained:
        raise InputError(
            ", ".join(map(str, scenes)),
            f"no class with scene pixels, {config.min_class_samples} simulated and {config.min_held_out} "
            f"held-out rows (scene pixels per class: {scene_counts})",
            variable="land_cover",
            expected="more simulated samples (n_samples) or scenes with classed pixels",
        )
    for line in adaptation_table(by_class).splitlines():
        log.info("%s", line)
    if not adapted:
        log.warning(
            "no adapted class student was better than the input bundle's on the held-out rows: "
            "the written bundle keeps all of the input bundle's students"
        )

    previous = manifest["fusion"]
    refitted, preds, doubled, local = fit_fusion_and_calibration(
        teacher,
        global_models,
        class_models + strata_models,
        cal,
        manifest["strata"],
        len(LAND_COVER_CLASSES),
        cwv_coefficients=previous.get("calibration", {}).get("cwv_coefficients"),
        inputs=inputs,  # binned by the given water vapour as the input bundle is, when it takes it
    )
    fusion = merge_fusion(previous, refitted, [LAND_COVER_CLASSES.index(name) for name in adapted])
    domain = {
        k: v
        for k, v in manifest["inputs"].items()
        if k in ("range_min", "range_max", "range_definition", "mahalanobis")
    }
    distillation = {
        **manifest["distillation"],
        "adaptation": {
            "classes": adapted,
            "by_class": by_class,
            "held_out": "the local simulation's test split (atmospheres and spectra not used to fit, stop or "
            "choose alpha); adapted students kept only where their held-out LST MAE is lower",
            "scene_pixels_per_class": scene_counts,
            "teacher_only_rows": "the scenes' own pixels of the class",
        },
    }
    provenance = {
        "adapted_from": {"bundle": str(source.path), "sha256": source.sha256},
        "scenes": [{"path": str(p.resolve()), "sha256": sha256_file(p)} for p in scenes],
        "land_cover": str(landcover) if landcover is not None else "NDVI/BT rules",
        "atmospheres": atmospheres_text,
        "config": json_safe(asdict(config)),
        "n_simulated": {
            "train": int(len(train.x)),
            "validation": int(len(val.x)),
            "calibration": int(len(cal.x)),
            "held_out": int(len(test.x)),
        },
    }
    metrics = {"calibration": {head: _lst_mae(doubled.y, p) for head, p in preds.items()}}
    teacher_info = {k: v for k, v in manifest["models"]["teacher"].items() if k not in ("onnx", "keras")}
    return save_bundle(
        out,
        teacher=teacher,
        students={"global": global_models, "strata": strata_models, "land_cover": class_models},
        strata=manifest["strata"],
        normalisation=normalisation,
        domain=domain,
        fusion=fusion,
        distillation=distillation,
        provenance=provenance,
        metrics=metrics,
        teacher_info=teacher_info,
        inputs=inputs,
        overwrite=False,
    )


def keep_adapted(mae_input: float, mae_adapted: float) -> bool:
    """Whether a class takes its adapted students: only when their held-out LST MAE is strictly lower."""
    return bool(mae_adapted < mae_input)


def adaptation_table(by_class: dict) -> str:
    """Markdown table of ``distillation.adaptation.by_class``: per class, scene pixels, fit and held-out rows,
    the held-out LST MAE of the input bundle's and of the adapted student, and which was kept."""

    def kelvin(value):
        return "–" if value is None else f"{value:.3f}"

    rows = []
    for name, r in by_class.items():
        change = ""
        if r["held_out_mae_input"] is not None and r["held_out_mae_input"] > 0:
            change = f"{100 * (r['held_out_mae_adapted'] / r['held_out_mae_input'] - 1):+.0f} %"
        rows.append(
            [
                name,
                str(r["scene_pixels"]),
                str(r["n_fit"]),
                str(r["n_held_out"]),
                f"{kelvin(r['held_out_mae_input'])} ({r['input_students']})",
                kelvin(r["held_out_mae_adapted"]),
                change,
                r["kept"] if r["kept"] == "adapted" else f"input ({r.get('reason', '')})",
            ]
        )
    header = [
        "class",
        "scene pixels",
        "fit rows",
        "held-out rows",
        "held-out LST MAE input (K)",
        "adapted (K)",
        "change",
        "kept",
    ]
    return "\n".join(markdown_table(header, rows))


def written_adaptation_table(bundle) -> str:
    """:func:`adaptation_table` of an adapted bundle directory (its manifest's ``distillation.adaptation``)."""
    from ..models.schema import MANIFEST

    manifest = json.loads((Path(bundle) / MANIFEST).read_text())
    return adaptation_table(manifest["distillation"]["adaptation"]["by_class"])


def merge_fusion(previous: dict, refitted: dict, rows: list[int]) -> dict:
    """The input bundle's fusion with only the ``rows`` (local models that were adapted) taken from ``refitted``:
    classes (and their rules entries) and strata whose students were kept keep their weights and calibration."""
    merged = json.loads(json.dumps(previous))
    kept, new = merged.get("calibration"), refitted.get("calibration")
    if kept and new and new.get(NIGHT_INPUT_KEY) and not kept.get(NIGHT_INPUT_KEY):
        # an input bundle calibrated without day/night bins: its factors hold for both halves
        kept[NIGHT_INPUT_KEY] = new[NIGHT_INPUT_KEY]
        kept["factor"] = {head: [row + row for row in table] for head, table in kept["factor"].items()}
    offset = previous.get(RULES_OFFSET_KEY)
    if offset is not None and refitted.get(RULES_OFFSET_KEY) == offset:
        rows = list(rows) + [offset + s for s in rows]  # the adapted classes' rules entries too
    for s in rows:
        merged["teacher_weight"][s] = refitted["teacher_weight"][s]
        merged["lst_disagreement_ms"][s] = refitted["lst_disagreement_ms"][s]
        for head in merged["lst_rmse"]:
            merged["lst_rmse"][head][s] = refitted["lst_rmse"][head][s]
        if "calibration" in merged:
            for head in merged["calibration"]["factor"]:
                merged["calibration"]["factor"][head][s] = refitted["calibration"]["factor"][head][s]
    merged["adapted_rows"] = list(rows)
    return merged


def _lst_mae(y, pred) -> dict:
    return {"n": int(len(y)), "lst_mae": float(np.mean(np.abs(pred[:, 0] - y[:, 0])))}
