"""Sweeps under faults, each driver a real `sksearch` process: a trial's worker killed, the driver
killed and resumed, and a two-node local cluster."""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sksearch.search import load_space
from sksearch.table import read_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]
SPACES = Path(__file__).parents[1] / "spaces"
RAY = str(Path(sys.executable).parent / "ray")


def sksearch_process(*args, **popen):
    command = [sys.executable, "-m", "sksearch.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def wait_for(condition, timeout=300, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def results(run_dir):
    """{trial dir: [reported results]} from Ray's per-trial result.json logs."""
    logs = {}
    for path in Path(run_dir).glob("run_trial_*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        logs[path.parent.name] = lines
    return logs


def test_a_killed_trial_worker_is_retried_from_its_checkpoint(tmp_path):
    space = tmp_path / "one.yaml"
    space.write_text("base: sknet26\nknobs:\n  branches: K3+K5\nrecipe: smoke\n")
    driver = sksearch_process(
        "sweep",
        str(space),
        "--storage",
        str(tmp_path),
        "--num-cpus",
        "2",
        "--quiet",
        "--max-failures",
        "2",
        "--set",
        "epochs=6",
        "--set",
        "train_samples=1024",
        "--set",
        "val_samples=128",
    )
    run_dir = tmp_path / "one"

    def worker_after_two_epochs():
        for lines in results(run_dir).values():
            if any(line.get("epoch", 0) >= 2 for line in lines):
                return lines[-1]["pid"]
        return None

    pid = wait_for(worker_after_two_epochs, what="two reported epochs")
    os.kill(pid, signal.SIGKILL)
    finish(driver)
    table = read_trials(str(run_dir))
    row = table.iloc[0]
    assert len(table) == 1 and row["status"] == "completed" and row["epochs"] == 6
    assert row["resumed_at_epoch"] >= 2  # the retry started from a checkpoint, not from scratch
    (lines,) = results(run_dir).values()
    assert len({line["pid"] for line in lines}) == 2  # two worker processes served the trial
    assert [line["epoch"] for line in lines][-1] == 6


def test_a_killed_driver_resumes_without_running_a_finished_trial_again(tmp_path):
    args = [
        "--storage",
        str(tmp_path),
        "--num-cpus",
        "2",
        "--quiet",
        "--max-concurrent",
        "1",
        "--set",
        "epochs=3",
        "--set",
        "train_samples=512",
        "--set",
        "val_samples=128",
    ]
    driver = sksearch_process("sweep", str(SPACES / "smoke.yaml"), *args, start_new_session=True)
    run_dir = tmp_path / "smoke"
    wait_for(lambda: len(read_trials(str(run_dir))) >= 2, what="two finished trials")
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait()
    finished_before = read_trials(str(run_dir))
    logs_before = {
        name: lines
        for name, lines in results(run_dir).items()
        if any(line.get("status") == "completed" for line in lines)
    }
    assert len(finished_before) >= 2 and len(logs_before) >= 2

    output = finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2"))
    assert "results table" in output
    table = read_trials(str(run_dir))
    assert len(table) == 4 and set(table["status"]) == {"completed"}
    assert set(table["archid"]) == {c.archid for c in load_space(SPACES / "smoke.yaml").enumerate()}
    logs_after = results(run_dir)
    for name, lines in logs_before.items():  # finished trials were not run again
        assert logs_after[name] == lines
    for lines in logs_after.values():
        assert [line["epoch"] for line in lines].count(3) == 1


def alive_nodes(address, env):
    probe = "import ray; ray.init(address=%r, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    done = subprocess.run([sys.executable, "-c", probe % address], capture_output=True, text=True, env=env)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


def descendants(pid):
    """Every process below `pid`, from /proc: the Ray daemons a `ray start --block` started."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def stop_processes(pids, grace=15):
    """SIGTERM, then SIGKILL what is left: only these processes (never `ray stop`, which stops
    every Ray instance on the host)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def two_node_cluster():
    """A head and a worker node of this test's own (`ray start --block`), stopped by their PIDs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    # Ray >= 2.59 authenticates clusters by token: this cluster's own, shared by its nodes and the driver
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    common = ["--num-cpus", "1", "--disable-usage-stats", "--block"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    nodes = [
        subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], **quiet)
    ]
    try:
        wait_for(lambda: alive_nodes(address, env) == 1, timeout=120, what="the head node")
        nodes.append(subprocess.Popen([RAY, "start", f"--address={address}", *common], **quiet))
        wait_for(lambda: alive_nodes(address, env) == 2, timeout=120, what="the worker node")
        yield address, env
    finally:
        stop_processes([pid for node in nodes for pid in (node.pid, *descendants(node.pid))])


@pytest.mark.cluster
def test_a_sweep_on_a_two_node_cluster_spreads_its_trials(tmp_path, two_node_cluster):
    address, env = two_node_cluster
    output = finish(
        sksearch_process(
            "sweep",
            str(SPACES / "smoke.yaml"),
            "--address",
            address,
            "--storage",
            str(tmp_path),
            "--quiet",
            "--set",
            "epochs=3",
            "--set",
            "train_samples=512",
            "--set",
            "val_samples=64",
            env=env,
        )
    )
    assert "results table" in output
    table = read_trials(str(tmp_path / "smoke"))
    assert len(table) == 4 and set(table["status"]) == {"completed"}
    assert table["node_id"].nunique() == 2  # both nodes ran trials
