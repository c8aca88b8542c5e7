"""Shared fixtures and markers.

Markers (pyproject.toml): `ray` (starts a local Ray instance), `slow` (a sweep beyond the quick
loop's, or 10 s or more on 2 cores), `cluster` (starts a multi-node Ray cluster). `pytest -m "not
slow"` is the quick loop; the README's command runs everything.
"""

import pytest
import ray


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance of this test module's own: 2 CPUs, no dashboard; shut down after."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def pytest_collection_modifyitems(items):
    """Every test that uses the local Ray instance, directly or through a fixture, is a `ray` test."""
    for item in items:
        if "local_ray" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
