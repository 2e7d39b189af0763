"""Strata ("local" model domains) defined only from quantities known at retrieval time.

Three classifications are crossed:

* moisture: the split-window difference BT13 − BT14 (K). Water vapour absorbs more at 12 µm than at
  11 µm, so the difference grows with column water vapour (and is near zero in dry air);
* spectral contrast: max − min of BT10…BT14 (K), large for quartz-rich rock and sand, small for
  vegetation, water and other near-greybodies;
* view: view zenith angle (deg), the path-length effect.

Class edges are quantiles of the training inputs (equal-population classes), so every stratum has
training data. The spec is a plain JSON-serialisable dict stored in the bundle manifest.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..conventions import BANDS
from ..errors import InputError, ParameterError

STRATA_VERSION = 1
FEATURES = {
    "moisture": "BT13 - BT14 (K), split-window difference",
    "contrast": "max - min of BT10..BT14 (K), spectral contrast",
    "view": "view zenith angle (deg)",
}


def stratum_features(bt: np.ndarray, vza: np.ndarray) -> dict[str, np.ndarray]:
    """The three classification features for rows of ``bt`` (N, bands in BANDS order, K) and ``vza`` (N,)."""
    bt = np.asarray(bt)
    if bt.ndim != 2 or bt.shape[1] != len(BANDS):
        raise InputError(
            "brightness temperature array",
            f"shape {bt.shape}",
            variable="bt",
            expected=f"(N, {len(BANDS)}) with bands {', '.join(BANDS)}",
        )
    vza = np.broadcast_to(np.asarray(vza), bt.shape[:1])
    return {
        "moisture": bt[:, BANDS.index("B13")] - bt[:, BANDS.index("B14")],
        "contrast": bt.max(axis=1) - bt.min(axis=1),
        "view": vza,
    }


def fit_strata(bt, vza, *, n_moisture: int = 3, n_contrast: int = 2, n_view: int = 1) -> dict:
    """Strata spec with equal-population class edges fitted from training inputs.

    ``n_*`` is the number of classes per feature (1 disables that split). Rows with non-finite
    inputs are ignored when fitting.
    """
    counts = {"moisture": n_moisture, "contrast": n_contrast, "view": n_view}
    for name, n in counts.items():
        if int(n) < 1:
            raise ParameterError("fit_strata", f"n_{name}={n}", variable=f"n_{name}", expected="an integer >= 1")
    features = stratum_features(bt, vza)
    finite = np.all([np.isfinite(v) for v in features.values()], axis=0)
    if not finite.any():
        raise InputError(
            "training inputs",
            "no finite rows to fit strata",
            variable="bt",
            expected="finite brightness temperatures and view zenith",
        )
    classes = []
    for name, n in counts.items():
        quantiles = np.arange(1, int(n)) / int(n)
        edges = np.quantile(features[name][finite], quantiles) if n > 1 else np.array([])
        classes.append({"name": name, "definition": FEATURES[name], "edges": [float(e) for e in edges]})
    return {"version": STRATA_VERSION, "classes": classes}


def class_counts(spec: dict) -> list[int]:
    """Number of classes of each classification in ``spec``."""
    return [len(c["edges"]) + 1 for c in spec["classes"]]


def n_strata(spec: dict) -> int:
    """Total number of strata (product of the class counts)."""
    return int(np.prod(class_counts(spec)))


def stratum_names(spec: dict) -> list[str]:
    """Stratum names such as ``moisture1_contrast0_view0`` in stratum-index order."""
    names = [c["name"] for c in spec["classes"]]
    return [
        "_".join(f"{n}{i}" for n, i in zip(names, combo))
        for combo in itertools.product(*(range(k) for k in class_counts(spec)))
    ]


def assign_strata(bt, vza, spec: dict) -> np.ndarray:
    """Stratum index (int32, N) of each row; −1 where any input is not finite."""
    if spec.get("version") != STRATA_VERSION:
        raise ParameterError(
            "strata spec", f"version {spec.get('version')!r}", variable="version", expected=str(STRATA_VERSION)
        )
    features = stratum_features(bt, vza)
    index = np.zeros(features["moisture"].shape, dtype=np.int64)
    finite = np.ones(index.shape, dtype=bool)
    for cls, count in zip(spec["classes"], class_counts(spec)):
        value = features[cls["name"]]
        finite &= np.isfinite(value)
        label = np.searchsorted(np.asarray(cls["edges"], dtype=np.float64), value, side="right")
        index = index * count + label
    return np.where(finite, index, -1).astype(np.int32)
