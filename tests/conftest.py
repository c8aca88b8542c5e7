"""Shared fixtures and markers.

Markers (pyproject.toml): `ray` (starts a local Ray instance), `slow` (a sweep beyond the quick
loop's, 10 s or more on 2 cores, or a long check's cases beyond the quick loop's sample), `cluster`
(starts a multi-node Ray cluster), `faults` (the fault suite: real `sksearch` drivers under injected
crashes). `pytest -m "not slow"` is the quick loop, `-m "not faults"` everything but the fault
suite; the README's command (CI's) runs everything.

The suite runs on pytest-xdist workers, one per core (pyproject's addopts; `-n 0` runs it in one
process), a whole module to a worker (`--dist loadfile`), so a module's fixtures (a finished sweep)
are made once; a worker's in-process sweeps share one Ray instance. The fault suite is three
modules by kind of fault for that reason.
Each worker computes on one OpenMP thread, so that two workers do not run four threads on two cores.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is first imported; a caller's own value wins

import pytest
import ray


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance for the test session (on xdist, for the worker's session): 2 CPUs,
    no dashboard; shut down at its end. Every in-process sweep shares it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def pytest_collection_modifyitems(items):
    """Every test that uses the local Ray instance, directly or through a fixture, is a `ray` test."""
    for item in items:
        if "local_ray" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
