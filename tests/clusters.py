"""Processes of a test's own: waiting for a condition, a local multi-node Ray cluster started with
`ray start --block` and stopped by the PIDs it started (never `ray stop`, which stops every Ray
instance on the host)."""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


def wait_for(condition, timeout=300, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


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


def stop_processes(pids, grace=3):
    """SIGTERM, then SIGKILL what is left after `grace` seconds: only these processes (a test's
    cluster holds nothing worth a longer wait)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def local_cluster(nodes=2, gpus_per_node=0):
    """(address, env) of a head and `nodes - 1` workers on 127.0.0.1, 1 CPU each (and
    `gpus_per_node` logical GPUs: Ray counts what it is told), with a token of its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    # Ray >= 2.59 authenticates clusters by token: this cluster's own, shared by its nodes and the driver
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    common = ["--num-cpus", "1", "--num-gpus", str(gpus_per_node), "--disable-usage-stats", "--block"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    started = [
        subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], **quiet)
    ]
    try:
        wait_for(lambda: alive_nodes(address, env) == 1, timeout=120, what="the head node")
        for count in range(2, nodes + 1):
            started.append(subprocess.Popen([RAY, "start", f"--address={address}", *common], **quiet))
            wait_for(lambda count=count: alive_nodes(address, env) == count, timeout=120, what=f"node {count}")
        yield address, env
    finally:
        stop_processes([pid for process in started for pid in (process.pid, *descendants(process.pid))])
