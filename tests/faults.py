"""What the fault suite's modules share: a real `sksearch` process, its Ray logs, and small sweeps
to break."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.clusters import wait_for

SPACES = Path(__file__).parents[1] / "spaces"


def sksearch_process(*args, **popen):
    command = [sys.executable, "-m", "sksearch.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def results(run_dir):
    """{trial dir: [reported results]} from Ray's per-trial result.json logs."""
    logs = {}
    for path in Path(run_dir).glob("run_trial_*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        logs[path.parent.name] = lines
    return logs


def one_trial_space(tmp_path):
    space = tmp_path / "one.yaml"
    space.write_text("base: sknet26\nknobs:\n  branches: K3+K5\nrecipe: smoke\n")
    return space


def kill_worker_after_two_epochs(run_dir):
    """SIGKILL the process training the trial once it has reported two epochs."""

    def worker_after_two_epochs():
        for lines in results(run_dir).values():
            if any(line.get("epoch", 0) >= 2 for line in lines):
                return lines[-1]["pid"]
        return None

    os.kill(wait_for(worker_after_two_epochs, what="two reported epochs"), signal.SIGKILL)


ONE_TRIAL = [
    "--num-cpus",
    "2",
    "--quiet",
    "--set",
    "epochs=6",
    "--set",
    "train_samples=1024",
    "--set",
    "val_samples=128",
]


def run_dir_bytes(run_dir, name):
    return (run_dir / name).read_bytes()


TWO_TRIALS = "base: sknet26\nknobs:\n  branches: {grid: [K3+K5, K3+K7]}\nrecipe: smoke\n"


SMALL = ["--num-cpus", "2", "--quiet", "--max-concurrent", "1", "--set", "epochs=3", "--set", "train_samples=256",
         "--set", "val_samples=64"]  # fmt: skip
