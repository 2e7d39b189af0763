"""Distillation loss math, target scaling and input augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from akkd_scale.errors import ParameterError


def _keras_loss(alpha, z, zt, zs):
    import keras
    from akkd_scale.training.distill import distillation_loss

    y_true = np.concatenate([z, zt], axis=1).astype(np.float32)
    per_row = keras.ops.convert_to_numpy(distillation_loss(alpha)(y_true, zs.astype(np.float32)))
    return per_row


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_keras_loss_matches_formula(alpha):
    from akkd_scale.training.distill import distillation_loss_numpy

    rng = np.random.default_rng(1)
    z, zt, zs = (rng.normal(size=(50, 6)) for _ in range(3))
    per_row = _keras_loss(alpha, z, zt, zs)
    expected = alpha * np.mean((z - zs) ** 2, axis=1) + (1 - alpha) * np.mean((zt - zs) ** 2, axis=1)
    np.testing.assert_allclose(per_row, expected, rtol=1e-5)
    assert distillation_loss_numpy(z, zt, zs, alpha) == pytest.approx(expected.mean(), rel=1e-12)


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_loss_extremes_and_mixture_identity():
    from akkd_scale.training.distill import distillation_loss_numpy

    rng = np.random.default_rng(2)
    z, zt, zs = (rng.normal(size=(40, 6)) for _ in range(3))
    assert distillation_loss_numpy(z, zt, zs, 1.0) == pytest.approx(np.mean((z - zs) ** 2))
    assert distillation_loss_numpy(z, zt, zs, 0.0) == pytest.approx(np.mean((zt - zs) ** 2))
    # α·MSE(z, s) + (1−α)·MSE(t, s) = MSE(αz + (1−α)t, s) + α(1−α)·MSE(z, t): same gradient as a mixed target
    alpha = 0.5
    mixed = alpha * z + (1 - alpha) * zt
    identity = np.mean((mixed - zs) ** 2) + alpha * (1 - alpha) * np.mean((z - zt) ** 2)
    assert distillation_loss_numpy(z, zt, zs, alpha) == pytest.approx(identity)


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_unlabelled_rows_keep_only_teacher_term():
    from akkd_scale.training.distill import distillation_loss_numpy

    rng = np.random.default_rng(3)
    z, zt, zs = (rng.normal(size=(10, 6)) for _ in range(3))
    z[5:] = np.nan
    per_row = _keras_loss(0.5, z, zt, zs)
    assert np.all(np.isfinite(per_row))
    np.testing.assert_allclose(per_row[5:], 0.5 * np.mean((zt[5:] - zs[5:]) ** 2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(per_row[:5], 0.5 * np.mean((z[:5] - zs[:5]) ** 2, axis=1)
                               + 0.5 * np.mean((zt[:5] - zs[:5]) ** 2, axis=1), rtol=1e-5)
    assert distillation_loss_numpy(z, zt, zs, 0.5) == pytest.approx(per_row.mean(), rel=1e-5)


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_alpha_out_of_range_refused():
    from akkd_scale.training.distill import distillation_loss

    with pytest.raises(ParameterError, match=r"alpha: alpha=1\.5 \(expected 0 <= alpha <= 1\)"):
        distillation_loss(1.5)


def test_target_scaling_weighs_emissivity_like_lst():
    from akkd_scale.training.data import EMISSIVITY_SCALE, LST_SCALE_K, scale_targets, target_normalisation

    rng = np.random.default_rng(4)
    x = rng.normal(300, 5, (100, 6))
    y = np.column_stack([rng.normal(300, 10, 100), rng.uniform(0.9, 1.0, (100, 5))])
    norm = target_normalisation(x, y)
    z = scale_targets(y, norm)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    shifted = y.copy()
    shifted[:, 0] += 1.0          # 1 K of LST ...
    shifted[:, 1] += 0.015        # ... and 0.015 of emissivity change z by the same amount
    dz = scale_targets(shifted, norm) - z
    assert dz[0, 0] == pytest.approx(1.0 / LST_SCALE_K, rel=1e-4)
    assert dz[0, 1] == pytest.approx(dz[0, 0], rel=1e-3)
    assert EMISSIVITY_SCALE / LST_SCALE_K == pytest.approx(0.015)


@pytest.mark.slow  # imports Keras (the quick loop runs without TensorFlow)
def test_augmentation_perturbs_bt_and_keeps_view_range():
    from akkd_scale.training.distill import augment_inputs

    rng = np.random.default_rng(5)
    x = np.column_stack([rng.uniform(280, 320, (200, 5)), rng.uniform(0, 8, 200)]).astype(np.float32)
    aug = augment_inputs(x, 500, np.random.default_rng(0))
    assert aug.shape == (500, 6) and aug.dtype == np.float32
    assert aug[:, 5].min() >= x[:, 5].min() and aug[:, 5].max() <= x[:, 5].max()
    assert not np.isin(aug[:, 0], x[:, 0]).any()
    np.testing.assert_array_equal(aug, augment_inputs(x, 500, np.random.default_rng(0)))
    assert augment_inputs(x, 0, rng).shape == (0, 6)
