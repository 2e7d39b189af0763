"""Put on PYTHONPATH by tests/conftest.py for ``pytest -m "not slow"``: every process the quick loop starts
(pytest itself, CLI subprocesses, Dask workers) refuses to import TensorFlow, Keras or AutoKeras."""
import os
import sys

BLOCKED = {"tensorflow", "keras", "autokeras", "keras_tuner", "tf_keras"}


class _NoTensorFlow:
    """Meta-path finder that fails any import of the training stack."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"import of {name} refused: the quick test loop (pytest -m 'not slow') runs "
                                      "without TensorFlow/Keras; mark the test slow or use the random bundle")
        return None


if os.environ.get("AKKD_QUICK_LOOP_NO_TENSORFLOW") == "1":
    sys.meta_path.insert(0, _NoTensorFlow())
