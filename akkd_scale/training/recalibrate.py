"""Refit the σ calibration of a written bundle on its own calibration rows, with the runtime networks (ONNX).

What ``train_suite`` does last (``fit_fusion_and_calibration``: the calibration factors per local model and
water-vapour bin), redone for a bundle already on disk: the calibration rows are rebuilt from the training set
with the recipe's configuration (same seeds, so the same rows), every head is run through the bundle's own
ONNX networks with the fusion weights it ships, and the factors are refitted — binning rows that carry a given
column water vapour by it (``models.fusion.GIVEN_CWV_KEY``). The fusion weights, networks and everything else
are kept; the manifest and its sha256 are rewritten. The networks run in onnxruntime (the recipe module it
reuses for the rows imports Keras).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..conventions import BANDS, CWV, NETWORK_HEADS
from ..models.bundle import load_bundle
from ..models.fusion import lst_uncertainty
from .bundle_writer import write_manifest
from .fusion_fit import fit_calibration
from .recipe import SuiteConfig, doubled_rows, given_cwv, prepare_rows

log = logging.getLogger(__name__)


def recalibrate_bundle(bundle_dir, train_ds, config: SuiteConfig) -> str:
    """Refit ``fusion.calibration`` of the bundle at ``bundle_dir`` (module docstring); returns the new sha256."""
    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    rows = prepare_rows(train_ds, config)
    if list(rows.inputs) != list(bundle.input_names):
        raise ValueError(f"{bundle_dir}: inputs {bundle.input_names} differ from the recipe's {rows.inputs}")
    cal = rows.calibration
    n_bands = len(BANDS)
    strata = bundle.strata(cal.x[:, :n_bands], cal.x[:, n_bands])
    doubled, local = doubled_rows(cal, strata, len(bundle.classes))
    networks = bundle.networks
    fusion = networks.fusion
    uncalibrated = {k: v for k, v in fusion.items() if k != "calibration"}
    networks.fusion = uncalibrated
    try:
        pred = networks.predict(doubled.x, local, NETWORK_HEADS)
    finally:
        networks.fusion = fusion
    teacher, student = pred["teacher"]["lst"], pred["student"]["lst"]
    sigma = {
        head: lst_uncertainty(head, local, uncalibrated, teacher, student).astype(np.float64) for head in NETWORK_HEADS
    }
    old = fusion["calibration"]
    calibration = fit_calibration(
        doubled.y[:, 0].astype(np.float64),
        {head: pred[head]["lst"] for head in NETWORK_HEADS},
        sigma,
        local,
        len(np.asarray(fusion["teacher_weight"])),
        doubled.x[:, :n_bands],
        doubled.column_water_vapour,
        coefficients=old["cwv_coefficients"],
        given_cwv=given_cwv(doubled.x, rows.inputs),
        given_input=CWV if CWV in rows.inputs else None,
    )
    manifest = dict(bundle.manifest)
    manifest["fusion"] = {**fusion, "calibration": calibration}
    digest = write_manifest(bundle_dir, manifest)
    log.info("recalibrated %s on %d calibration rows: sha256 %s", bundle_dir, len(doubled.x), digest[:12])
    return digest
