"""Quicklook PNGs of retrieval results: LST, one band's emissivity, uncertainty, QC, the cloud mask (when one
ran) and, with truth, errors.

Rendering reads each scene group of a result store (decimated for big scenes) and writes one PNG per
layer, so results are looked at rather than read.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from ..conventions import CLOUD_TESTS, QC_CLOUD, QC_CLOUD_BUFFER, QC_INVALID_INPUT
from ..errors import InputError
from ..io.remote import TIMEOUT_S, Remote, is_url, publish
from .store import COMPLETE, group_status, locate_store, open_scene, scene_groups

log = logging.getLogger(__name__)

#: Longest image side rendered; bigger scenes are decimated by striding.
MAX_PIXELS = 1200


def _decimated(da: xr.DataArray) -> np.ndarray:
    step = max(1, int(np.ceil(max(da.sizes["y"], da.sizes["x"]) / MAX_PIXELS)))
    return np.asarray(da.isel(y=slice(None, None, step), x=slice(None, None, step)).values, dtype=float)


def _render(
    values: np.ndarray, path: Path, title: str, label: str, *, cmap: str, vmin=None, vmax=None, note: str | None = None
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = values[np.isfinite(values)]
    if vmin is None and finite.size:
        vmin, vmax = np.percentile(finite, [1, 99])
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(label)
    ax.set_title(title)
    if note:
        fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=8, wrap=True)
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (line)")
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def _cloud_classes(qc: np.ndarray) -> np.ndarray:
    """0 clear, 1 cloud-edge buffer, 2 cloud, NaN without valid input (from the QC bits)."""
    qc = qc.astype(np.uint8)
    out = np.where(qc & QC_CLOUD, 2.0, np.where(qc & QC_CLOUD_BUFFER, 1.0, 0.0))
    return np.where(qc & QC_INVALID_INPUT, np.nan, out)


def quicklook_scene(
    result: xr.Dataset, out_dir, name: str, *, band: str = "B13", truth: xr.Dataset | None = None
) -> list[Path]:
    """PNGs of one scene's result (and its errors against ``truth`` with ``lst``/``emissivity`` on y, x)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        _render(_decimated(result["lst"]), out_dir / f"{name}_lst.png", f"{name}: LST", "K", cmap="inferno"),
        _render(
            _decimated(result["emissivity"].sel(band=band)),
            out_dir / f"{name}_emissivity_{band}.png",
            f"{name}: emissivity {band}",
            "1",
            cmap="viridis",
        ),
        _render(
            _decimated(result["lst_uncertainty"]),
            out_dir / f"{name}_lst_uncertainty.png",
            f"{name}: LST uncertainty (1σ)",
            "K",
            cmap="magma",
        ),
    ]
    qc = _decimated(result["qc"])
    meanings = result["qc"].attrs.get("flag_meanings", "").split()
    masks = list(np.atleast_1d(result["qc"].attrs.get("flag_masks", [])))
    legend = "QC bits: " + ", ".join(f"{m} {n}" for m, n in zip(masks, meanings)) if meanings else None
    written.append(
        _render(
            qc,
            out_dir / f"{name}_qc.png",
            f"{name}: QC",
            "QC value (sum of bits)",
            cmap="tab20",
            vmin=-0.5,
            vmax=15.5,
            note=legend,
        )
    )
    if CLOUD_TESTS in result:  # a cloud mask ran
        flagged = _cloud_classes(qc)
        share = float(np.nanmean(flagged == 2)) if np.isfinite(flagged).any() else 0.0
        written.append(
            _render(
                flagged,
                out_dir / f"{name}_cloud.png",
                f"{name}: cloud mask ({share:.1%} cloud)",
                "0 clear, 1 buffer, 2 cloud",
                cmap="Blues_r",
                vmin=-0.5,
                vmax=2.5,
                note=str(result.attrs.get("cloud_mask_source", ""))[:300],
            )
        )
    if truth is not None:
        error = _decimated(result["lst"] - truth["lst"])
        limit = float(np.nanpercentile(np.abs(error), 99)) if np.isfinite(error).any() else 1.0
        written.append(
            _render(
                error,
                out_dir / f"{name}_lst_error.png",
                f"{name}: retrieved − true LST",
                "K",
                cmap="RdBu_r",
                vmin=-limit,
                vmax=limit,
            )
        )
        eps_error = _decimated(result["emissivity"].sel(band=band) - truth["emissivity"].sel(band=band))
        limit = float(np.nanpercentile(np.abs(eps_error), 99)) if np.isfinite(eps_error).any() else 0.01
        written.append(
            _render(
                eps_error,
                out_dir / f"{name}_emissivity_{band}_error.png",
                f"{name}: retrieved − true emissivity {band}",
                "1",
                cmap="RdBu_r",
                vmin=-limit,
                vmax=limit,
            )
        )
    log.info("quicklooks of %s: %d PNGs in %s", name, len(written), out_dir)
    return written


def quicklook_store(
    store, out_dir, *, band: str = "B13", truth_dir=None, storage_options=None, timeout: float = TIMEOUT_S
) -> list:
    """PNGs for every complete scene group of a result store; truth NetCDFs named ``<group>.nc`` if given. The
    store and ``out_dir`` may be URLs (``s3://…``, reached with ``storage_options``): PNGs for a URL are
    rendered locally and uploaded when all are done (their URLs returned)."""
    store = locate_store(store, storage_options, timeout)
    if is_url(out_dir):
        with tempfile.TemporaryDirectory(prefix="akkd-quicklook-") as local:
            files = quicklook_store(store, local, band=band, truth_dir=truth_dir)
            return publish(files, str(out_dir), Remote.of(storage_options, timeout=timeout))
    written = []
    groups = scene_groups(store)
    complete = [g for g in groups if group_status(store, g) == COMPLETE]
    if not complete:
        raise InputError(
            store,
            f"no complete scene group (of {len(groups)} groups)",
            variable="akkd_status",
            expected="a result store written by `akkd-scale run` with at least one complete scene",
        )
    for group in groups:
        if group not in complete:
            log.warning("skipping %s: scene group is not complete", group)
            continue
        truth_path = Path(truth_dir) / f"{group}.nc" if truth_dir else None
        truth = (
            xr.open_dataset(truth_path, engine="h5netcdf") if truth_path is not None and truth_path.is_file() else None
        )
        written += quicklook_scene(open_scene(store, group), out_dir, group, band=band, truth=truth)
    return written
