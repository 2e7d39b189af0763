"""Reader fixtures: the test servers (moto S3, range-capable HTTP) and the L1T HDF / COG + STAC pair; and the
Hypothesis profiles of the reader's property-based (``fuzz``) tests: a fixed, derandomised budget in every run
(``make test``), about 20 times more, freshly random, when they are selected with ``pytest -m fuzz``."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from servers import closed_endpoint, http_server, l1t_pair, s3_server, stalled_endpoint  # noqa: F401

#: Examples per unit of a test's weight (tests/io/test_fuzz_metadata.py ``budget``): default run and ``-m fuzz``.
EXAMPLES = {"akkd-default": 10, "akkd-fuzz": 200}

for _name, _examples in EXAMPLES.items():
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        database=None,
        print_blob=True,
        derandomize=_name == "akkd-default",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


def pytest_configure(config):
    """``-m fuzz`` (a marker expression that selects fuzz tests) loads the large profile."""
    expression = config.getoption("markexpr", "") or ""
    wanted = "fuzz" in expression and "not fuzz" not in expression
    settings.load_profile("akkd-fuzz" if wanted else "akkd-default")
