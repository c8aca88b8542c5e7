"""The launch files in deploy/: each parses, the cloud file passes Ray's own schema, every sksearch
command line in them is one the CLI accepts, and the Slurm start-up logic works against a local
two-node Ray cluster."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import ray
import yaml

from sksearch.cli import build_parser
from tests.clusters import local_cluster

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SHELL = sorted(DEPLOY.glob("slurm/*.s*"))  # .sbatch and .sh
YAML = sorted(DEPLOY.glob("*/*.yaml"))
# what the scripts' variables stand for when their command lines are parsed
EXAMPLES = {"SPACE": "spaces/table7.yaml", "RUN_DIR": "s3://bucket/sksearch/table7", "STORAGE": "s3://bucket/sksearch",
            "STORE": "s3://bucket/sksearch/store", "CPUS_PER_TRIAL": "8", "HEAD": "10.0.0.1:6379"}  # fmt: skip
VERBS = ("sweep", "resume", "extend", "status", "results", "pareto", "store")


def test_there_is_a_launch_file_for_slurm_kubernetes_and_a_cloud():
    names = {path.relative_to(DEPLOY).as_posix() for path in [*SHELL, *YAML]}
    assert {"slurm/sweep.sbatch", "slurm/sweep-shared.sbatch", "slurm/ray-on-slurm.sh", "kubernetes/rayjob.yaml",
            "cloud/aws.yaml"} <= names  # fmt: skip


@pytest.mark.parametrize("path", SHELL, ids=lambda path: path.name)
def test_the_shell_scripts_parse(path):
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_sbatch_scripts_ask_slurm_for_one_task_per_node_and_tell_ray_what_slurm_gave():
    for path in DEPLOY.glob("slurm/*.sbatch"):
        text = path.read_text()
        assert "#SBATCH --tasks-per-node=1" in text and "#SBATCH --gpus-per-node=" in text, path.name
        assert '--num-cpus "$SLURM_CPUS_PER_TASK" --num-gpus "$SLURM_GPUS_ON_NODE"' in text, path.name
    assert "ray symmetric-run" in (DEPLOY / "slurm/sweep.sbatch").read_text()
    assert "#SBATCH --exclusive" in (DEPLOY / "slurm/sweep.sbatch").read_text()


def test_the_rayjob_asks_for_gpus_and_runs_a_sweep_on_shared_storage():
    job = yaml.safe_load((DEPLOY / "kubernetes/rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    (workers,) = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    (container,) = workers["template"]["spec"]["containers"]
    gpus = container["resources"]["limits"]["nvidia.com/gpu"]
    assert gpus == 8 and workers["rayStartParams"]["num-gpus"] == str(gpus)
    assert "--address auto" in job["spec"]["entrypoint"] and "--storage s3://" in job["spec"]["entrypoint"]


def test_the_cloud_file_passes_the_cluster_launchers_schema():
    import jsonschema

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((DEPLOY / "cloud/aws.yaml").read_text())
    jsonschema.validate(config, schema)
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["resources"]["GPU"] == 8 and workers["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert any("pip install" in command for command in config["setup_commands"])


def command_lines(path):
    """Every `sksearch VERB ...` command line in a file, comments included (the commands a reader
    copies), with shell line continuations joined and the scripts' variables given example values."""
    text = path.read_text().replace("\\\n", " ")
    texts = [line.lstrip("# ") for line in text.splitlines()]
    if path.suffix == ".yaml":  # and the YAML's own strings (a folded entrypoint spans lines)
        texts += [value for value in _strings(yaml.safe_load(text))]
    commands = []
    for line in texts:
        found = re.search(rf"(?:^|(\")|--\s+)sksearch ({'|'.join(VERBS)})\b", line.strip())  # not prose about one
        if not found:
            continue
        line = line.strip()[found.start(1) if found.group(1) else found.start(2) - len("sksearch ") :]
        line = line.replace('"$@"', "").replace("${", "$")
        line = re.sub(r"\$(\w+)(:-[^}]*\})?", lambda match: EXAMPLES[match.group(1)], line)  # a new variable: add it
        words = shlex.split(line)
        if words[0].startswith("sksearch "):  # a whole quoted command (ray exec "...")
            commands.append(shlex.split(words[0])[1:])
        else:
            commands.append(words[1:])
    return commands


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("path", [*SHELL, *YAML], ids=lambda path: path.name)
def test_every_sksearch_command_line_is_one_the_cli_accepts(path, capsys):
    commands = command_lines(path)
    if path.name != "ray-on-slurm.sh":
        assert commands, f"{path.name} runs no sksearch command"
    parser = build_parser()
    for argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{path.name}: `sksearch {' '.join(argv)}`: {capsys.readouterr().err.strip()}")
        if argv[0] in ("sweep", "resume"):
            assert args.address == "auto" or ":" in args.address, argv  # on a cluster, never a local Ray


def run_helper(command, env, timeout=240):
    """A function of deploy/slurm/ray-on-slurm.sh, run by bash as the sbatch scripts run it."""
    script = f"source {DEPLOY / 'slurm' / 'ray-on-slurm.sh'}\n{command}"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.slow
@pytest.mark.cluster
def test_the_slurm_start_up_waits_for_every_node_and_a_trial_larger_than_a_node_is_refused(tmp_path):
    """Two local nodes of one logical GPU each (the test's own, stopped by PID): the scripts' wait
    returns once both have joined, and fails in one line when a node never comes; a sweep asking 2
    GPUs per trial is refused before launch, though the cluster has 2 GPUs in all."""
    import os
    import sys

    with local_cluster(nodes=2, gpus_per_node=1) as (address, env):
        env = {**env, "PYTHON": sys.executable}
        done = run_helper(f"wait_for_ray_nodes {address} 2 120", env)
        assert done.returncode == 0 and done.stdout.strip() == f"ray cluster at {address}: 2 of 2 nodes up", done
        done = run_helper(f"wait_for_ray_nodes {address} 3 4", env)
        assert (
            done.returncode == 1 and done.stderr.strip() == f"ray cluster at {address}: 2 of 3 nodes joined within 4s"
        )
        space = tmp_path / "one.yaml"
        space.write_text("base: sknet26\nknobs:\n  branches: K3+K5\nrecipe: smoke\n")
        sweep = [sys.executable, "-m", "sksearch.cli", "sweep", str(space), "--address", address, "--storage",
                 str(tmp_path), "--gpus-per-trial", "2", "--quiet"]  # fmt: skip
        done = subprocess.run(sweep, capture_output=True, text=True, env={**env, "PATH": os.environ["PATH"]})
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "--gpus-per-trial: a trial asks for 2 GPUs on one node; the largest node has 1 (2 nodes)" in done.stderr
        assert not (tmp_path / "one").exists() or not list((tmp_path / "one").glob("run_trial_*"))
