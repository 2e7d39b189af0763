"""Radiative-transfer error perturbation of band terms, and its switch in the training-set builder."""

from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.errors import ParameterError
from akkd_scale.physics.rt_error import perturb_terms
from akkd_scale.sensors import ASTER_TIR, band_radiance

TAU = np.array([0.60, 0.65, 0.70, 0.72, 0.66])
LUP = np.array([2.5, 2.4, 2.3, 2.2, 2.3])
LDN = np.array([3.8, 3.6, 3.5, 3.4, 3.6])


def test_zero_amplitude_is_identity():
    out = perturb_terms(TAU, LUP, LDN, 2.9, 295.0, 10.0, 0.0, 0.0)
    for got, ref in zip(out, (TAU, LUP, LDN)):
        np.testing.assert_allclose(got, ref, atol=1e-12)


def test_unit_amplitude_reproduces_the_measured_lowtran_to_lbl_shift():
    """ASTER_FACTS: per g cm-2 B13 τ -0.009 and L↓ +0.25; B10 τ +0.039 (trace gases) at nadir."""
    w, t_air = 2.0, 295.0
    tau, lup, ldn = perturb_terms(TAU, LUP, LDN, w, t_air, 0.0, 1.0, 0.0)
    assert tau[3] - TAU[3] == pytest.approx(-0.009 * w, abs=1e-9)
    assert ldn[3] - LDN[3] == pytest.approx(0.25 * w, abs=1e-9)
    b13 = band_radiance(np.array([t_air]), ASTER_TIR)[3]
    assert lup[3] - LUP[3] == pytest.approx(0.009 * w * b13, rel=1e-9)  # extra absorber emits at T_air
    tau_t, lup_t, ldn_t = perturb_terms(TAU, LUP, LDN, w, t_air, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(tau_t - TAU, [0.039, 0.021, 0.016, 0.0, 0.0], atol=1e-12)
    assert np.all(lup_t[:3] < LUP[:3]) and np.all(ldn_t[:3] < LDN[:3]) and np.allclose(lup_t[3:], LUP[3:])
    slant = perturb_terms(TAU, LUP, LDN, w, t_air, 60.0, 0.0, 1.0)[0]
    np.testing.assert_allclose(slant - TAU, 2 * (tau_t - TAU), atol=1e-12)  # sec 60° = 2


def test_switch_in_training_set(umbc_surfaces):
    from akkd_scale.simulate import trainingset as T

    umbc, surfaces, terms = umbc_surfaces
    off = T.build_training_set(umbc, surfaces, terms, 3000, seed=5)
    assert "rt_continuum" not in off and off.attrs["rt_perturbation"] == "off"
    shifted = T.build_training_set(umbc, surfaces, terms, 3000, seed=5, rt_perturbation=(1.0, 1.0))
    np.testing.assert_array_equal(shifted["lst"].values, off["lst"].values)
    noise = lambda ds: (ds["brightness_temperature"] - ds["brightness_temperature_noise_free"]).values  # noqa: E731
    assert np.corrcoef(noise(shifted).ravel(), noise(off).ravel())[0, 1] > 0.99  # same radiance noise draws
    d13 = (shifted["transmittance"] - off["transmittance"]).sel(band="B13").values
    sec = 1 / np.cos(np.deg2rad(off["view_zenith"].values.astype(float)))
    np.testing.assert_allclose(d13, -0.009 * off["column_water_vapour"].values * sec, atol=2e-6)
    assert np.all(
        shifted["brightness_temperature_noise_free"].sel(band="B10").values
        != off["brightness_temperature_noise_free"].sel(band="B10").values
    )
    spread = T.build_training_set(umbc, surfaces, terms, 3000, seed=5, rt_perturbation=(-0.5, 1.5))
    a = spread["rt_continuum"].values
    assert -0.5 <= a.min() < -0.3 and 1.3 < a.max() <= 1.5 and spread.attrs["rt_perturbation"] == [-0.5, 1.5]
    with pytest.raises(ParameterError, match=r"rt_perturbation: range \(2\.0, 1\.0\)"):
        T.build_training_set(umbc, surfaces, terms, 10, rt_perturbation=(2.0, 1.0))
