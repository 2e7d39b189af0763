"""Teacher: a (tiny-budget) real AutoKeras search, rebuilt as plain Keras that loads without AutoKeras."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from akkd_scale.simulate.synthetic import synthetic_training_set


@pytest.mark.slow
def test_search_rebuild_and_safe_load(tmp_path):
    from akkd_scale.training.data import dataset_rows, scale_targets, target_normalisation
    from akkd_scale.training.teacher import TeacherConfig, search_teacher

    ds = synthetic_training_set(800, seed=3)
    train, val = dataset_rows(ds, "train"), dataset_rows(ds, "validation")
    x, y, x_val, y_val = train.x, train.y, val.x, val.y
    norm = target_normalisation(x, y)
    config = TeacherConfig(max_trials=1, epochs=3, num_layers=(2, 3), num_units=(16, 24), batch_size=128)
    search_dir = tmp_path / "search"
    (search_dir / "teacher").mkdir(parents=True)
    (search_dir / "teacher" / "stale_marker").write_text("old project")
    teacher, info = search_teacher(x, scale_targets(y, norm), x_val, scale_targets(y_val, norm), norm,
                                   directory=search_dir, config=config, seed=0)
    assert not (search_dir / "teacher" / "stale_marker").exists()  # overwrite=True: never resumed
    assert 2 <= len(info["hidden_units"]) <= 3 and set(info["hidden_units"]) <= {16, 24}
    assert info["rebuild_max_abs_error_z"] < 1e-3
    kinds = {type(layer).__name__ for layer in teacher.layers}
    assert kinds <= {"InputLayer", "Normalization", "Dense"}
    pred = teacher.predict(x_val, verbose=0)
    assert pred.shape == (len(x_val), 6) and abs(np.mean(pred[:, 0]) - np.mean(y_val[:, 0])) < 10.0

    path = tmp_path / "teacher.keras"
    teacher.save(path)
    np.save(tmp_path / "x.npy", x_val)
    np.save(tmp_path / "expected.npy", pred)
    script = textwrap.dedent(f"""
        import sys, numpy as np, keras
        model = keras.models.load_model({str(path)!r}, safe_mode=True, compile=False)
        out = model.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)
        np.testing.assert_allclose(out, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-5, atol=1e-4)
        assert "autokeras" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
