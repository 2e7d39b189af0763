"""Fixtures for simulate tests: small profile sets and terms tables made from simple physics."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from akkd_scale.sensors import ASTER_TIR, band_radiance
from akkd_scale.simulate import profiles as P
from akkd_scale.simulate.trainingset import profile_columns

BAND_K = np.array([0.12, 0.10, 0.09, 0.06, 0.08])  # g⁻¹ cm² water-vapour absorption per band


def simple_terms(profiles, altitudes=(0.0, 1.0, 2.0, 4.0), angles=(0.0, 30.0, 60.0)):
    """Terms from grey-absorber physics: τ = exp(−(0.05 + k·W)·sec θ), L↑ = (1−τ)·0.9·B(T_air)."""
    z, vz = np.asarray(altitudes, float), np.asarray(angles, float)
    cwv, tair = profile_columns(profiles, z)
    sec = 1 / np.cos(np.deg2rad(vz))
    depth = 0.05 + BAND_K * cwv[..., None]  # (profile, z, band)
    tau = np.exp(-depth[:, :, None, :] * sec[None, None, :, None])
    planck = band_radiance(tair[..., None], ASTER_TIR)[:, :, None, :]
    lup = (1 - tau) * 0.9 * planck
    ldn = np.broadcast_to((1 - np.exp(-depth * 1.66))[:, :, None, :] * 0.95 * planck, tau.shape).copy()
    dims = ("profile", "surface_altitude", "view_zenith", "band")
    return xr.Dataset(
        {"transmittance": (dims, tau), "path_radiance": (dims, lup), "sky_radiance": (dims, ldn)},
        coords={
            "profile_id": ("profile", profiles["profile_id"].values),
            "surface_altitude": z,
            "view_zenith": vz,
            "band": list(ASTER_TIR.band_names),
        },
    )


@pytest.fixture(scope="session")
def umbc(data_dir):
    return P.read_crtm_umbc48(data_dir / "profiles" / "crtm_umbc48")


@pytest.fixture(scope="session")
def umbc_terms(umbc):
    return simple_terms(umbc)
