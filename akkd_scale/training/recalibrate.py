"""Refit the fusion weights and σ calibration of a written bundle on its own calibration rows, with the runtime
networks (ONNX).

What ``train_suite`` does last (``fit_fusion_and_calibration``: weights and calibration factors per fusion-table
row — classes, their rules entries, brightness-temperature strata — and water-vapour bin), redone for a bundle
already on disk: the calibration rows are rebuilt from the training set with the recipe's configuration (same
seeds, so the same rows), every student head is run through the bundle's own ONNX networks, and the fusion is
refitted (``recipe.fit_fusion_on``), so a bundle written before the rules entries (``models.fusion``) gets them.
The networks, the water-vapour estimate and everything else are kept; the manifest and its sha256 are rewritten.
The networks run in onnxruntime (the recipe module it reuses for the rows imports Keras).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..conventions import BANDS, NETWORK_HEADS
from ..models.bundle import load_bundle
from ..models.schema import local_models
from .bundle_writer import write_manifest
from .recipe import SuiteConfig, calibration_metrics, fit_fusion_on, fusion_entry_names, fusion_rows, prepare_rows

log = logging.getLogger(__name__)


def recalibrate_bundle(bundle_dir, train_ds, config: SuiteConfig) -> str:
    """Refit ``fusion`` of the bundle at ``bundle_dir`` (module docstring); returns the new sha256."""
    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    rows = prepare_rows(train_ds, config)
    if list(rows.inputs) != list(bundle.input_names):
        raise ValueError(f"{bundle_dir}: inputs {bundle.input_names} differ from the recipe's {rows.inputs}")
    cal = rows.calibration
    n_bands, n_classes = len(BANDS), len(bundle.classes)
    strata = bundle.strata(cal.x[:, :n_bands], cal.x[:, n_bands])
    local_names = [entry["name"] for entry in local_models(bundle.manifest)]
    fit = fusion_rows(cal, strata, n_classes, len(local_names), rows.inputs)
    heads = tuple(h for h in NETWORK_HEADS if h != "fusion")
    out = bundle.networks.predict(fit.rows.x, fit.students.astype(np.int32), heads)
    preds = {h: np.column_stack([out[h]["lst"], out[h]["emissivity"]]).astype(np.float64) for h in heads}
    old = bundle.manifest["fusion"]
    fusion = fit_fusion_on(fit, preds, old["calibration"]["cwv_coefficients"], rows.inputs)
    fusion = {**{k: v for k, v in old.items() if k not in fusion}, **fusion}
    manifest = dict(bundle.manifest)
    manifest["fusion"] = fusion
    names = fusion_entry_names(local_names, n_classes, fusion)
    manifest["metrics"] = {**manifest.get("metrics", {}), **calibration_metrics(fit.rows.y, preds, fit.entries, names)}
    digest = write_manifest(bundle_dir, manifest)
    log.info(
        "refitted the fusion of %s on %d calibration rows (table rows: %s): sha256 %s",
        bundle_dir,
        len(fit.rows.x),
        ", ".join(names),
        digest[:12],
    )
    return digest
