"""ASTER thermal-infrared bands 10–14 (Terra): SRFs from the ``pyrsr`` package, UCC and NEΔT.

The SRFs are read from ``pyrsr/data/Terra/ASTER/band_1x`` (two columns: wavelength in nm at 1 nm
steps, relative response; ``#`` header). Band centres are the SRF centroids (≈ 8.281, 8.633, 9.079,
10.662, 11.293 µm). UCC (W m⁻² sr⁻¹ µm⁻¹ per DN) are the TIR values of the ASTER user handbook
(one gain): radiance L = (DN − 1) × UCC.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np

from ..conventions import NEDT_K
from ..errors import SpectrumError
from .base import Band, Sensor

#: TIR unit-conversion coefficients, W m⁻² sr⁻¹ µm⁻¹ per DN (B10 is 6.822e-3; 6.882e-3 seen online is a typo).
UCC = {"B10": 6.822e-3, "B11": 6.780e-3, "B12": 6.590e-3, "B13": 5.693e-3, "B14": 5.225e-3}
#: VNIR unit-conversion coefficients by gain (HGH high, NOR normal, LO1 low; Abrams 1999, as in LP DAAC's
#: ASTERL1T_DN2REF), W m⁻² sr⁻¹ µm⁻¹ per DN, L = (DN − 1) × UCC. Real files carry their own INCL/OFFSET
#: in ``productmetadata.v``; these are the fallback.
VNIR_UCC = {
    "1": {"HGH": 0.676, "NOR": 1.688, "LO1": 2.25},
    "2": {"HGH": 0.708, "NOR": 1.415, "LO1": 1.89},
    "3N": {"HGH": 0.423, "NOR": 0.862, "LO1": 1.15},
}


def read_pyrsr_srf(relative_path: str) -> tuple[np.ndarray, np.ndarray]:
    """SRF (wavelength µm, response) of one ``pyrsr`` data file, e.g. ``"Terra/ASTER/band_10"``."""
    resource = files("pyrsr") / "data" / relative_path
    try:
        table = np.loadtxt(resource.open("r"), comments="#", ndmin=2)
    except (OSError, ValueError) as exc:
        raise SpectrumError(
            f"pyrsr:{relative_path}",
            f"cannot read spectral response ({exc})",
            variable="srf",
            expected="two columns: wavelength (nm), response",
        ) from exc
    if table.shape[1] < 2:
        raise SpectrumError(
            f"pyrsr:{relative_path}",
            f"has {table.shape[1]} column(s)",
            variable="srf",
            expected="two columns: wavelength (nm), response",
        )
    return table[:, 0] / 1000.0, table[:, 1]


def _aster_tir() -> Sensor:
    bands = []
    for number in range(10, 15):
        name = f"B{number}"
        wavelength, response = read_pyrsr_srf(f"Terra/ASTER/band_{number}")
        bands.append(Band.from_srf(name, wavelength, response, ucc=UCC[name], nedt=NEDT_K))
    return Sensor("ASTER_TIR", tuple(bands))


#: The ASTER TIR sensor: bands B10…B14 in this order.
ASTER_TIR = _aster_tir()
