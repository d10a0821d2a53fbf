"""Test configuration: make the builders importable; hypothesis profiles.

Profiles (``HYPOTHESIS_PROFILE`` picks one; ``CI`` set picks ``ci``):

- ``ci``: derandomized (the same examples on every run, so a submission never fails by
  chance) and fewer examples, so that the whole suite stays within its time budget;
- ``dev`` (the default on a workstation): random examples, the counts the tests ask for;
- ``thorough``: many more examples, for a hunt before a release.

A test's own ``max_examples`` goes through ``strategies.examples(n)``, which scales it by
the profile's factor, so a profile changes every property at once; a property that bills
several times per example is marked ``slow`` and runs fewer still in CI (``-m "not slow"``
leaves them out).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "print_blob": True,
}
settings.register_profile("ci", derandomize=True, max_examples=20, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("dev", max_examples=100, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=500, **_COMMON)  # type: ignore[arg-type]
from strategies import PROFILE  # noqa: E402  (importable once the folder is on the path)

settings.load_profile(PROFILE)


def pytest_configure(config: pytest.Config) -> None:
    """The ``slow`` marker: properties that run fewer examples under the ``ci`` profile."""
    config.addinivalue_line(
        "markers", "slow: a slow property or end-to-end test (fewer examples in CI)"
    )


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local Spark session (``local[2]``) for a module's tests; skipped without pyspark
    or Java 17."""
    pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (rftcost[spark])")
    from rftcost.engines.spark import java_found, spark_session

    if not java_found():
        pytest.skip("the Spark engine needs Java 17: no java on PATH and no JAVA_HOME")

    session = spark_session("local[2]")
    yield session
    session.stop()
