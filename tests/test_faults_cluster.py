"""The fault suite (`-m faults`), the cluster: a sweep spread over a two-node local cluster, and a
stalled node that stops the driver. Each driver is a real `sksearch` process."""

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from sksearch.runfiles import read_trials
from sksearch.search.store import Store
from tests.clusters import descendants, local_cluster, wait_for
from tests.faults import SPACES, finish, one_trial_space, results, sksearch_process

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.faults]


def command_line(pid):
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


@pytest.fixture
def two_node_cluster():
    with local_cluster(nodes=2) as cluster:
        yield cluster


@pytest.mark.cluster
def test_a_sweep_on_a_two_node_cluster_spreads_its_trials(tmp_path, two_node_cluster):
    address, env = two_node_cluster
    sweep = ["sweep", str(SPACES / "smoke.yaml"), "--address", address, "--storage", str(tmp_path), "--quiet",
             "--set", "epochs=3", "--set", "train_samples=512", "--set", "val_samples=64"]  # fmt: skip
    output = finish(sksearch_process(*sweep, env=env))
    assert "results table" in output
    table = read_trials(str(tmp_path / "smoke"))
    assert len(table) == 4 and set(table["status"]) == {"completed"}
    assert table["node_id"].nunique() == 2  # both nodes ran trials
    # the trials of both nodes are in the one store: the same sweep again trains nothing
    stored = Store(str(tmp_path / "store"))
    assert len({record.row["node_id"] for record in stored}) == 2
    finish(sksearch_process(*sweep, "--name", "again", env=env))
    rerun = read_trials(str(tmp_path / "again"))
    assert set(rerun["status"]) == {"reused"} and set(rerun["reused_from"]) == {f"smoke/{t}" for t in table["trial_id"]}


def test_a_stalled_node_stops_the_driver_with_the_resume_command_and_resume_finishes(tmp_path):
    """The raylet stopped (SIGSTOP) until Ray declares its node dead (health checks, and the
    driver's grace without a live node, made short for the test): the driver says so in one line
    with the resume command and exits 4, instead of waiting forever; the resumed sweep ends with
    every trial completed."""
    space = one_trial_space(tmp_path)
    quick_checks = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3", "SKSEARCH_CLUSTER_GRACE_S": "10"}  # fmt: skip
    args = ["--storage", str(tmp_path), "--num-cpus", "2", "--quiet", "--set", "epochs=12", "--set", "val_samples=64"]
    driver = sksearch_process("sweep", str(space), *args, start_new_session=True, env={**os.environ, **quick_checks})
    run_dir = tmp_path / "one"
    wait_for(lambda: any(lines for lines in results(run_dir).values()), what="a first reported epoch")
    (raylet,) = [pid for pid in descendants(driver.pid) if "/raylet " in command_line(pid)]
    os.kill(raylet, signal.SIGSTOP)
    stalled = time.monotonic()
    try:
        output, _ = driver.communicate(timeout=240)
    finally:
        os.kill(raylet, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # what is left of the local Ray it started
    assert driver.returncode == 4, output
    assert time.monotonic() - stalled < 120
    last = output.strip().splitlines()[-1]
    assert last.startswith("the Ray cluster is lost") and last.endswith(
        f"`sksearch resume {run_dir}` continues the sweep"
    )
    output = finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2", "--quiet"))
    table = read_trials(str(run_dir))
    assert list(table["status"]) == ["completed"] and table["epochs"].iloc[0] == 12, output
