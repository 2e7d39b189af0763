"""The demo job: simulate ASTER L1B scenes with known truth, retrieve them, and report the accuracy.

What ``akkd-scale demo`` (and so ``make demo``) runs: the whole product on scenes whose truth is known.
The scenes show one landscape (same place, same ground) under two atmospheres; its true land cover is
also written as an ESA WorldCover GeoTIFF, and the scenes are retrieved twice, without a land-cover map
(the default) and with that map (``run_scenes(..., landcover=MAP)``), so the report shows per-class
accuracy both ways and how well the map, sampled at the pixels, matches the truth. Each scene also gets an
ERA5-layout NetCDF made from its own atmosphere (0.25° cells, reanalysis-like errors:
:func:`~akkd_scale.simulate.reanalysis_writer.era5_from_pixels`); bundles trained with the atmospheric inputs
retrieve the scenes a third time with the map and that file (``--atmosphere-data``), and the report compares
the two per class and per column-water-vapour bin. A separate cloud part (:mod:`.cloud_demo`) retrieves cloudy
copies of the ground and a night scene with and without the cloud mask.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import xarray as xr
from numpy.polynomial import polynomial

from ..conventions import ATMOSPHERE_GIVEN, ATMOSPHERE_INPUTS, LAND_COVER_CLASSES
from ..io.aster import open_aster_l1b, view_zenith_from_pointing
from ..io.summary import brightness_temperature_summary
from ..landcover.legends import WORLDCOVER
from ..metrics import metrics
from ..pipeline.kernel import bundle_ref, cached_bundle
from ..pipeline.quicklook import quicklook_scene
from ..pipeline.runner import run_scenes
from ..pipeline.store import open_scene, scene_group
from ..simulate.l1b_writer import vnir_dn_for_ndvi, write_aster_l1b
from ..simulate.reanalysis_writer import era5_from_pixels, write_era5
from ..simulate.scenes import demo_surfaces, make_demo_scene
from ..utils import json_safe, markdown_table
from .cloud_demo import RUNS, cloud_scores, cloud_shape, format_cloud_section, write_cloudy_scenes

log = logging.getLogger(__name__)

#: Name of the demo's retrieval without a land-cover map (classes from the NDVI/BT rules).
NO_MAP_RUN = "no map (NDVI rules)"
#: Demo scenes: (name, atmosphere, TIR pointing angle in degrees, seed).
DEMO_SCENES = (
    ("AST_L1B_demo_midlatitude_summer", "midlatitude_summer", 5.7, 1),
    ("AST_L1B_demo_tropical", "tropical", -2.0, 2),
)
#: Cloud mask of the clear scenes' retrievals: none. They are cloud-free by construction, and their VNIR only
#: carries the true NDVI (ρ2 + ρ3N = 0.4 everywhere, band 1 constant), so the lake is as bright as thin cloud
#: (ρ2 ≈ 0.2) and the mask would call it cloud; the cloud part (:mod:`.cloud_demo`) has realistic reflectance.
CLEAR_SCENES_MASK = "none"
#: Seed of the ground (land cover, surfaces, NDVI) all demo scenes share.
LANDSCAPE_SEED = 1
#: Acquisition time and sun (azimuth, elevation) of the demo scenes: a late-morning July overpass.
ACQUISITION_TIME, SOLAR_DIRECTION = "2004-07-15T18:30:05.250Z", (135.0, 62.0)
#: Class → ESA WorldCover code the map is written with: the legend's first code read as that class
#: (sparse_vegetation_bare_soil → 100 "moss and lichen", the only WorldCover code read as it).
WORLDCOVER_CODES = {name: min(code for code, cls in WORLDCOVER.items() if cls == name) for name in LAND_COVER_CLASSES}
WORLDCOVER_NODATA = 0
#: Land-cover map cells per image pixel along each axis (45 m cells for 90 m pixels): a pixel centre
#: then always falls in a cell whose centre is nearest to that pixel, so sampling gives the pixel's class.
MAP_CELLS_PER_PIXEL = 2
#: Every FIT_STRIDE-th line and pixel enter the fit of image position against latitude/longitude.
FIT_STRIDE = 4
#: The network head the per-class tables compare (the land-cover students will enter through fusion).
CLASS_HEAD = "fusion"
METERS_PER_DEGREE = 111_320.0
#: Name of the demo's retrieval with the land-cover map and the scene's ERA5-layout atmosphere file.
ATMOSPHERE_RUN = "map + ERA5-layout atmosphere"
#: Column-water-vapour bins (g cm⁻², last open) of the demo's table with and without the atmosphere file.
CWV_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, np.inf)


def atmosphere_file_path(scenes_dir, name: str) -> Path:
    """Where :func:`write_demo_scenes` puts a scene's ERA5-layout atmosphere file."""
    return Path(scenes_dir) / "era5" / f"{name}.nc"


def no_data_margins(shape) -> np.ndarray:
    """Slanted fill edges as in real L1B granules (the swath is skewed against the image grid)."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    edge = max(2, nx // 20)
    return (xx < edge + yy * edge // (2 * ny)) | (xx > nx - edge - (ny - yy) * edge // (2 * ny))


def land_cover_map_path(scenes_dir) -> Path:
    """Where :func:`write_demo_scenes` puts the scenes' land-cover map (the name tells the legend)."""
    return Path(scenes_dir) / "demo_worldcover.tif"


def _map_grid(latitude, longitude, shape, cells_per_pixel: int):
    """A north-up EPSG:4326 grid of square cells, 1/``cells_per_pixel`` of the pixel spacing, over the pixels'
    latitude/longitude plus one pixel: (row, col, inside) of the image pixel nearest to each cell centre — image
    (line, pixel) as a bicubic polynomial of (longitude, latitude), fitted to the pixel centres, rounded and
    clipped to the image; cells more than half a pixel outside the image are not ``inside`` — and the cells'
    (y, x) coordinates."""
    latitude, longitude = np.asarray(latitude), np.asarray(longitude)
    lat0, lon0 = float(latitude.mean()), float(longitude.mean())
    cos0 = np.cos(np.radians(lat0))
    east, north = (longitude - lon0) * cos0 * METERS_PER_DEGREE, (latitude - lat0) * METERS_PER_DEGREE
    spacing = float(np.median(np.hypot(np.diff(east, axis=1), np.diff(north, axis=1))))
    scale = max(np.ptp(east), np.ptp(north)) / 2
    lines, pixels = np.mgrid[0 : shape[0], 0 : shape[1]]
    every = (slice(None, None, FIT_STRIDE), slice(None, None, FIT_STRIDE))
    design = polynomial.polyvander2d(east[every].ravel() / scale, north[every].ravel() / scale, [3, 3])
    position = np.column_stack([lines[every].ravel(), pixels[every].ravel()]).astype(float)
    coef, *_ = np.linalg.lstsq(design, position, rcond=None)
    log.debug("demo map grid: image position fit within %.3g pixels", np.abs(design @ coef - position).max())
    cell = spacing / cells_per_pixel
    x_edges = np.arange(east.min() - spacing, east.max() + spacing + cell, cell)
    y_edges = np.arange(north.max() + spacing, north.min() - spacing - cell, -cell)
    x_centres, y_centres = x_edges[:-1] + cell / 2, y_edges[:-1] - cell / 2
    line, pixel = (
        polynomial.polygrid2d(x_centres / scale, y_centres / scale, coef[:, k].reshape(4, 4)).T for k in range(2)
    )
    row, col = np.rint(line).astype(np.int64), np.rint(pixel).astype(np.int64)
    inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
    coords = {"y": lat0 + y_centres / METERS_PER_DEGREE, "x": lon0 + x_centres / (METERS_PER_DEGREE * cos0)}
    return np.clip(row, 0, shape[0] - 1), np.clip(col, 0, shape[1] - 1), inside, coords


def write_worldcover_map(path, land_cover, latitude, longitude, *, cells_per_pixel: int = MAP_CELLS_PER_PIXEL) -> Path:
    """Write a scene's land cover (class codes on the image grid) as an ESA WorldCover GeoTIFF: each cell of
    :func:`_map_grid` takes the class of the image pixel nearest to its centre; cells outside are no-data (0)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    land_cover = np.asarray(land_cover)
    row, col, inside, coords = _map_grid(latitude, longitude, land_cover.shape, cells_per_pixel)
    lut = np.array([WORLDCOVER_CODES[name] for name in LAND_COVER_CLASSES], np.uint8)
    codes = np.where(inside, lut[land_cover[row, col]], WORLDCOVER_NODATA).astype(np.uint8)
    raster = xr.DataArray(
        codes,
        dims=("y", "x"),
        coords=coords,
        attrs={"legend": "ESA WorldCover", "source": "akkd_scale demo: true land cover"},
    )
    raster = raster.rio.write_crs("EPSG:4326").rio.write_nodata(WORLDCOVER_NODATA)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    raster.rio.to_raster(path, compress="deflate")
    return Path(path)


def dem_path(scenes_dir) -> Path:
    """Where :func:`write_demo_scenes` puts the scenes' elevation model (the ground all demo scenes share)."""
    return Path(scenes_dir) / "demo_dem.tif"


def write_dem(path, altitude_m, latitude, longitude) -> Path:
    """Write the scenes' surface elevation (m, on the image grid) as a float32 GeoTIFF on the :func:`_map_grid`
    grid (one cell per pixel), cells outside the image taking the nearest edge pixel's height, as a real DEM
    covers the ground around a scene: the DEM the atmosphere run height-corrects the reanalysis to."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    altitude_m = np.asarray(altitude_m, np.float32)
    row, col, _, coords = _map_grid(latitude, longitude, altitude_m.shape, 1)
    values = altitude_m[row, col]
    raster = xr.DataArray(values, dims=("y", "x"), coords=coords, attrs={"units": "m", "source": "akkd_scale demo"})
    raster = raster.rio.write_crs("EPSG:4326").rio.write_nodata(np.nan)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    raster.rio.to_raster(path, compress="deflate")
    return Path(path)


def simulated_scenes(scenes, shape, processes: int = 2):
    """(name, pointing, seed, simulated scene) for each demo scene (:data:`DEMO_SCENES` layout), on the shared
    ground (:data:`LANDSCAPE_SEED`) with the surfaces of their view angles."""
    view_zeniths = {name: view_zenith_from_pointing(pointing) for name, _, pointing, _ in scenes}
    surfaces = demo_surfaces(tuple(sorted(set(view_zeniths.values()))))
    for name, atmosphere, pointing, seed in scenes:
        scene = make_demo_scene(
            shape,
            seed=seed,
            view_zenith=view_zeniths[name],
            atmosphere=atmosphere,
            surfaces=surfaces,
            landscape_seed=LANDSCAPE_SEED,
            processes=processes,
        )
        yield name, pointing, seed, scene


def write_demo_scenes(out_dir, *, shape=(700, 830), scenes=DEMO_SCENES, processes: int = 2) -> list[Path]:
    """Write demo L1B files (``<name>.hdf``, VNIR carrying the true NDVI), their truth (``truth/<name>.nc``),
    their ERA5-layout atmosphere files (:func:`atmosphere_file_path`) and the land-cover map of their shared
    ground (:func:`land_cover_map_path`, from the first scene's geolocation: all demo scenes have the same);
    returns the HDF paths."""
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    paths = []
    for name, pointing, seed, scene in simulated_scenes(scenes, shape, processes):
        vnir = vnir_dn_for_ndvi(
            scene["ndvi"].values, acquisition_time=ACQUISITION_TIME, solar_direction=SOLAR_DIRECTION
        )
        path = write_aster_l1b(
            out_dir / f"{name}.hdf",
            radiance=scene["radiance"].values,
            shape=shape,
            pointing_angle=pointing,
            fill_mask=no_data_margins(shape),
            vnir_dn=vnir,
            acquisition_time=ACQUISITION_TIME,
            solar_direction=SOLAR_DIRECTION,
        )
        scene.drop_vars(["radiance"]).to_netcdf(out_dir / "truth" / f"{name}.nc", engine="h5netcdf")
        geolocation = open_aster_l1b(path)
        era5 = era5_from_pixels(
            geolocation["latitude"].values,
            geolocation["longitude"].values,
            scene["column_water_vapour"].values,
            scene["surface_air_temperature"].values,
            ACQUISITION_TIME,
            seed=seed,
            height=scene["surface_altitude"].values * 1000.0,
        )
        write_era5(era5, atmosphere_file_path(out_dir, name))
        if not paths:
            write_dem(
                dem_path(out_dir),
                scene["surface_altitude"].values * 1000.0,
                geolocation["latitude"].values,
                geolocation["longitude"].values,
            )
            write_worldcover_map(
                land_cover_map_path(out_dir),
                scene["land_cover"].values,
                geolocation["latitude"].values,
                geolocation["longitude"].values,
            )
        paths.append(path)
    return paths


def _head_values(result: xr.Dataset, truth: xr.Dataset, head: str):
    """(LST, true LST, ε (band, y, x), true ε) of one head."""
    suffix = f"_{head}" if f"lst_{head}" in result else ""
    eps = result[f"emissivity{suffix}"].transpose("band", "y", "x").values
    eps_true = truth["emissivity"].sel(band=result["band"].values).transpose("band", "y", "x").values
    return result[f"lst{suffix}"].values, truth["lst"].values, eps, eps_true


def _scene_classes(truth: xr.Dataset) -> dict[str, np.ndarray]:
    """Class name → mask of its pixels, for the classes present in the truth."""
    cover = truth["land_cover"].values
    return {LAND_COVER_CLASSES[code]: cover == code for code in np.unique(cover)}


def accuracy(result: xr.Dataset, truth: xr.Dataset, head: str) -> dict:
    """LST and emissivity metrics of one head against the truth, overall and per true land-cover class."""
    lst, lst_true, eps, eps_true = _head_values(result, truth, head)
    return {
        "lst": metrics(lst_true, lst),
        "emissivity": {str(b): metrics(eps_true[i], eps[i]) for i, b in enumerate(result["band"].values)},
        "lst_by_land_cover": {name: metrics(lst_true[own], lst[own]) for name, own in _scene_classes(truth).items()},
    }


def class_accuracy(result: xr.Dataset, truth: xr.Dataset, head: str = CLASS_HEAD) -> dict:
    """Per true land-cover class: LST metrics and ε MAE (mean of the bands) of one head."""
    lst, lst_true, eps, eps_true = _head_values(result, truth, head)
    return {
        name: {
            "lst": metrics(lst_true[own], lst[own]),
            "emissivity_mae": float(np.nanmean(np.abs(eps[:, own] - eps_true[:, own])))
            if np.isfinite(lst[own]).any()
            else float("nan"),
        }
        for name, own in _scene_classes(truth).items()
    }


def cwv_accuracy(result: xr.Dataset, truth: xr.Dataset, head: str = CLASS_HEAD) -> dict:
    """Per bin of the true column water vapour (:data:`CWV_EDGES`): LST metrics of one head."""
    lst, lst_true, _, _ = _head_values(result, truth, head)
    cwv = truth["column_water_vapour"].values
    out = {}
    for a, b in zip(CWV_EDGES[:-1], CWV_EDGES[1:]):
        own = (cwv >= a) & (cwv < b)
        if own.any():
            out[f"{a:g}–{b:g} g cm-2" if np.isfinite(b) else f"> {a:g} g cm-2"] = metrics(lst_true[own], lst[own])
    return out


def _atmosphere_table(scene: dict) -> list[str]:
    """Markdown lines: the map run without and with the atmosphere file, per class and per CWV bin."""
    part = scene.get("atmosphere")
    if part is None:
        return []
    runs = part["runs"]
    lines = [
        f"### With the ERA5-layout atmosphere file ({part['head']})",
        "",
        f"File: `{part['file']}` (the scene's own atmosphere in 0.25° cells with reanalysis-like errors); "
        f"{part['pixels_with_atmosphere']:.1%} of the pixels had it.",
        "",
    ]
    for kind in ("by_land_cover", "by_column_water_vapour"):
        first = next(iter(runs.values()))[kind]
        header = ["land cover" if kind == "by_land_cover" else "column water vapour", "pixels"]
        header += [f"{run}: LST MAE / bias (K)" for run in runs]
        body = [
            [label, m["n"]] + [f"{runs[r][kind][label]['mae']:.3f} / {runs[r][kind][label]['bias']:+.3f}" for r in runs]
            for label, m in first.items()
            if m["n"]
        ]
        lines += markdown_table(header, body) + [""]
    return lines


def map_agreement(result: xr.Dataset, truth: xr.Dataset) -> dict:
    """How often the retrieval's ``land_cover`` (sampled from the map) equals the truth, over retrieved
    pixels: overall and per true class."""
    valid = np.isfinite(result["lst"].values)
    same = result["land_cover"].values == truth["land_cover"].values
    return {
        "n": int(valid.sum()),
        "fraction": float(same[valid].mean()),
        "by_class": {
            name: float(same[valid & own].mean()) for name, own in _scene_classes(truth).items() if (valid & own).any()
        },
    }


def _land_cover_table(scene: dict) -> list[str]:
    """Markdown lines: per-class accuracy of :data:`CLASS_HEAD` without and with the land-cover map."""
    cover = scene["land_cover"]
    runs, agreement = cover["runs"], cover["map_agreement"]
    header = ["land cover", "pixels", "map class = truth"]
    for run in runs:
        header += [f"{run}: LST MAE (K)", f"{run}: LST bias (K)", f"{run}: ε MAE"]
    rows = []
    for name, first in next(iter(runs.values())).items():
        row = [name, first["lst"]["n"], f"{agreement['by_class'].get(name, float('nan')):.1%}"]
        for classes in runs.values():
            m = classes[name]
            row += [f"{m['lst']['mae']:.3f}", f"{m['lst']['bias']:+.3f}", f"{m['emissivity_mae']:.4f}"]
        rows.append(row)
    lake = ", ".join(
        f"{run} {classes['water']['lst']['bias']:+.2f} K" for run, classes in runs.items() if "water" in classes
    )
    return (
        [
            f"### Per land-cover class ({cover['head']}), without (NDVI rules) and with the land-cover map",
            "",
            f"Map: `{cover['map']}` (ESA WorldCover codes); sampled at the pixels it gives the true class for "
            f"{agreement['fraction']:.2%} of {agreement['n']} pixels.",
            "",
        ]
        + markdown_table(header, rows)
        + ["", f"Lake (water) LST bias: {lake} (target ±0.5 K).", ""]
    )


def format_report(report: dict) -> str:
    """Markdown accuracy report of a demo run: one row per method, LST MAE per land cover, then per-class
    accuracy without and with the land-cover map."""
    lines = [
        "# akkd_scale demo: accuracy against the simulated truth",
        "",
        f"Runtime: scene simulation {report['seconds_simulation']:.1f} s, retrieval "
        f"{report['seconds_retrieval']:.1f} s, retrieval with the land-cover map "
        f"{report['seconds_retrieval_landcover']:.1f} s ({report['megapixels']:.2f} Mpx).",
        "TES corrects the atmosphere with the scene's standard AFGL atmosphere (sea level, no moisture "
        "gradient, no mountain); the networks see brightness temperatures, the view angle and the NDVI (VNIR). "
        f"Without a map ('{NO_MAP_RUN}') the pixels' classes come from the NDVI/BT rules and choose the class "
        "students; with the map, from the map.",
        "",
        "## Input scenes (lazy ASTER L1B reader)",
        "",
        "```",
        "\n\n".join(report["brightness_temperature_summaries"]),
        "```",
        "",
    ]
    for name, scene in report["scenes"].items():
        methods = scene["methods"]
        bands = list(next(iter(methods.values()))["emissivity"])
        lines += [f"## {name}", "", f"TES atmosphere: {scene['tes_atmosphere'] or 'not run'}", ""]
        lines += markdown_table(
            ["method", "pixels", "LST MAE (K)", "LST bias (K)", "LST RMSE (K)"] + [f"ε {b} MAE" for b in bands],
            [
                [method, m["lst"]["n"], f"{m['lst']['mae']:.3f}", f"{m['lst']['bias']:+.3f}", f"{m['lst']['rmse']:.3f}"]
                + [f"{m['emissivity'][b]['mae']:.4f}" for b in bands]
                for method, m in methods.items()
            ],
        )
        first = next(iter(methods.values()))["lst_by_land_cover"]
        lines += [""] + markdown_table(
            ["land cover", "pixels"] + [f"{m} LST MAE (K)" for m in methods],
            [
                [cls, s0["n"]] + [f"{m['lst_by_land_cover'][cls]['mae']:.3f}" for m in methods.values()]
                for cls, s0 in first.items()
                if s0["n"]
            ],
        )
        lines += [""] + _land_cover_table(scene)
        lines += _atmosphere_table(scene)
    if "clouds" in report:
        lines += format_cloud_section(report["clouds"])
    return "\n".join(lines)


def run_cloud_demo(out_dir, *, shape, bundle=None, client=None, chunks="auto") -> dict:
    """The cloud part of the demo: cloudy scenes (``scenes_clouds/``) retrieved with :data:`CLASS_HEAD` with and
    without the mask (``results_clouds.zarr``, ``results_clouds_nomask.zarr``), scored, quicklooks of the masked
    run (``quicklooks_clouds/``); returns the report's "clouds" entry."""
    out_dir = Path(out_dir)
    started = time.perf_counter()
    paths = write_cloudy_scenes(
        out_dir / "scenes_clouds",
        shape=shape,
        acquisition_time=ACQUISITION_TIME,
        solar_direction=SOLAR_DIRECTION,
        landscape_seed=LANDSCAPE_SEED,
        fill_mask=no_data_margins(shape),
    )
    simulated = time.perf_counter()
    stores = {
        run: out_dir / ("results_clouds.zarr" if mask == "auto" else "results_clouds_nomask.zarr")
        for run, mask in RUNS.items()
    }
    for run, mask in RUNS.items():  # without a client in this process's threads, as the clear scenes
        table = run_scenes(
            paths,
            stores[run],
            bundle=bundle,
            chunks=chunks,
            client=client,
            overwrite=True,
            heads=(CLASS_HEAD,),
            cloud_mask=mask,
            executor="cluster" if client else "threads",
        )
        for row in table[table["status"] == "failed"].itertuples():
            log.error("cloudy demo scene failed: %s: %s", row.scene, row.error)
    retrieved = time.perf_counter()
    scores = {}
    for path in paths:
        group = scene_group(path)
        truth = xr.open_dataset(out_dir / "scenes_clouds" / "truth" / f"{path.stem}.nc", engine="h5netcdf").load()
        result = open_scene(stores["mask"], group).load()
        scores[group] = cloud_scores(result, truth, open_scene(stores["no mask"], group).load())
        quicklook_scene(result, out_dir / "quicklooks_clouds", group)  # the cloud mask among them; no error maps
    return {
        "shape": list(shape),
        "seconds_simulation": simulated - started,
        "seconds_retrieval": retrieved - simulated,
        "scenes": scores,
    }


def run_demo(
    out_dir,
    *,
    bundle=None,
    shape=(700, 830),
    scenes=DEMO_SCENES,
    client=None,
    chunks="auto",
    heads=("fusion", "tes"),
    clouds: bool = True,
) -> dict:
    """Simulate, retrieve, render and report; returns the report dict (also written as JSON + Markdown).

    A ``tes`` head runs TES with each scene's standard AFGL atmosphere beside the networks. Every scene is
    retrieved again with :data:`CLASS_HEAD` and its land-cover map into ``results_landcover.zarr``. With
    ``clouds``, the cloud part (:func:`run_cloud_demo`) adds the report's "Clouds" section.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    paths = write_demo_scenes(out_dir / "scenes", shape=shape, scenes=scenes)
    summaries = [brightness_temperature_summary(open_aster_l1b(path)) for path in paths]
    simulated = time.perf_counter()
    store, store_map = out_dir / "results.zarr", out_dir / "results_landcover.zarr"
    atmospheres = {path: atmosphere if "tes" in heads else None for path, (_, atmosphere, *_) in zip(paths, scenes)}
    land_cover_map = land_cover_map_path(out_dir / "scenes")

    def retrieve(scene_paths, out, **options):
        table = run_scenes(scene_paths, out, bundle=bundle, chunks=chunks, client=client, overwrite=True, **options)
        for row in table[table["status"] == "failed"].itertuples():
            log.error("demo scene failed: %s: %s", row.scene, row.error)

    for path, atmosphere in atmospheres.items():  # clear by construction: no cloud mask (see CLEAR_SCENES_MASK)
        retrieve([path], store, heads=heads, atmosphere=atmosphere, cloud_mask=CLEAR_SCENES_MASK)
    retrieved = time.perf_counter()
    retrieve(paths, store_map, heads=(CLASS_HEAD,), landcover=land_cover_map, cloud_mask=CLEAR_SCENES_MASK)
    retrieved_map = time.perf_counter()
    store_atmosphere = out_dir / "results_atmosphere.zarr"
    takes_atmosphere = all(name in cached_bundle(bundle_ref(bundle)).input_names for name in ATMOSPHERE_INPUTS)
    if takes_atmosphere:
        for path in paths:
            retrieve(
                [path],
                store_atmosphere,
                heads=(CLASS_HEAD,),
                landcover=land_cover_map,
                cloud_mask=CLEAR_SCENES_MASK,
                atmosphere_data=[atmosphere_file_path(out_dir / "scenes", path.stem)],
                elevation=dem_path(out_dir / "scenes"),
            )
    else:
        log.info("the bundle takes no atmospheric inputs: the demo runs without its ERA5-layout files")
    report = {
        "seconds_simulation": simulated - started,
        "seconds_retrieval": retrieved - simulated,
        "seconds_retrieval_landcover": retrieved_map - retrieved,
        "megapixels": len(paths) * shape[0] * shape[1] / 1e6,
        "scenes": {},
        "brightness_temperature_summaries": summaries,
    }
    for path, atmosphere in atmospheres.items():
        group = scene_group(path)
        truth = xr.open_dataset(out_dir / "scenes" / "truth" / f"{path.stem}.nc", engine="h5netcdf")
        result = open_scene(store, group).load()
        with_map = open_scene(store_map, group).load()
        report["scenes"][group] = {
            "tes_atmosphere": atmosphere,
            "methods": {head: accuracy(result, truth, head) for head in heads},
            "land_cover": {
                "map": land_cover_map,
                "head": CLASS_HEAD,
                "map_agreement": map_agreement(with_map, truth),
                "runs": {NO_MAP_RUN: class_accuracy(result, truth), "map": class_accuracy(with_map, truth)},
            },
        }
        if takes_atmosphere:
            with_atmosphere = open_scene(store_atmosphere, group).load()
            report["scenes"][group]["atmosphere"] = {
                "head": CLASS_HEAD,
                "file": str(atmosphere_file_path(out_dir / "scenes", path.stem)),
                "pixels_with_atmosphere": float(with_atmosphere[ATMOSPHERE_GIVEN].values.mean()),
                "runs": {
                    run: {
                        "by_land_cover": {k: v["lst"] for k, v in class_accuracy(r, truth).items()},
                        "by_column_water_vapour": cwv_accuracy(r, truth),
                    }
                    for run, r in (("map", with_map), (ATMOSPHERE_RUN, with_atmosphere))
                },
            }
        quicklook_scene(result, out_dir / "quicklooks", group, truth=truth)
    if clouds:
        report["clouds"] = run_cloud_demo(
            out_dir, shape=cloud_shape(shape), bundle=bundle, client=client, chunks=chunks
        )
    (out_dir / "report.json").write_text(json.dumps(json_safe(report), indent=2))
    (out_dir / "report.md").write_text(format_report(report))
    return report
