"""What the fault suite's modules share: a real `sksearch` process, its Ray logs, and small sweeps
to break."""

import json
import subprocess
import sys
from pathlib import Path

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
