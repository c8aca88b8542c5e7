"""Running and resuming sweeps on Ray Tune (Tuner / TuneConfig / RunConfig as Ray documents them)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable

import pandas as pd
import ray
from ray import tune
from ray.tune.error import TuneError

from sksearch.files import check_writable_folder, is_uri, join
from sksearch.runfiles import (
    DRIVER_LOG,
    damaged_tables,
    ray_trial_states,
    ray_trials,
    read_trials,
    write_history,
    write_trials,
)
from sksearch.search.callbacks import LiveTable, TableCallback, TrialNotes, rebuild_tables
from sksearch.search.extend import (
    mark_merged,
    merge_extension,
    plan_extension,
    record_own_trials,
    unfinished_extensions,
)
from sksearch.search.plan import SweepPlan, load_plan_here, restore_plan, write_plan
from sksearch.search.ray_records import stand_in_for_lost_checkpoint, storage_fault
from sksearch.search.reuse import answer_from_store, grid_cases
from sksearch.search.schedulers import scheduler
from sksearch.search.searchers import search_setup
from sksearch.search.status import mark_driver, unmark_driver
from sksearch.search.trial import run_trial
from sksearch.search.watch import ClusterWatch, cluster_grace
from sksearch.validation import ConfigError

# Ray's health checks of a local instance, sized for a busy laptop: Ray's defaults (every 3 s, dead
# after 5 missed checks of 10 s) declared the only node dead at load 4.6 on 2 cores. These allow
# stalls of about two minutes (an environment variable of the same name still wins).
_PATIENT_HEALTH_CHECKS = {"health_check_period_ms": "5000", "health_check_timeout_ms": "30000",
                          "health_check_failure_threshold": "20"}  # fmt: skip


def connect(address: str | None = None, num_cpus: int | None = None, quiet: bool = False) -> None:
    """Join a cluster (`ray://...` or `auto`) or start a local Ray with num_cpus and no dashboard.
    Ray's own lines stay off the terminal (its logs stay in its session folder): warnings only, none
    when `quiet`."""
    # checkpointing every epoch is intended; Tune's warning about it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # the live table replaces Tune's banner, its TensorBoard hint and its progress output
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    level = logging.ERROR if quiet else logging.WARNING
    cluster_grace()  # a bad setting is refused before anything is written
    if address and num_cpus:
        raise ConfigError("--num-cpus", "sizes a local Ray instance; with --address the cluster's own CPUs are used")
    if address and address != "auto":
        _check_reachable(address)
    for name, value in _PATIENT_HEALTH_CHECKS.items():
        os.environ.setdefault(f"RAY_{name}", value)
    if not ray.is_initialized():
        if address:
            try:
                ray.init(address=address, log_to_driver=False, logging_level=level)
            except ConnectionError as error:  # `auto` with no cluster on this machine
                raise ConfigError("--address", str(error).split(". ")[0]) from None
        else:
            # "local": a new instance even when `ray start` left a cluster running on this machine
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False, logging_level=level)  # fmt: skip
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(level)


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Refuse in one line, within seconds, a cluster address nothing answers at: Ray itself retries
    an unreachable head for minutes before it gives up."""
    host_port = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("--address", f"must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError("--address", f"nothing answers at {host_port} ({reason}); is the Ray head running?") from None


def _check_fits_a_node(cpus: float, gpus: float, workers: int) -> None:
    """A trial (or each data-parallel worker of one) runs on one node: a request larger than the
    largest node would wait forever even where the cluster's total covers it."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    for flag, name, wanted in (("--gpus-per-trial", "GPU", gpus), ("--cpus-per-trial", "CPU", cpus)):
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            what = "each worker of a trial" if workers > 1 else "a trial"
            raise ConfigError(flag, f"{what} asks for {wanted:g} {name}s on one node; the largest node has "
                              f"{largest:g} ({len(nodes)} nodes): ask for fewer, or spread a trial over "
                              "nodes with --workers-per-trial")  # fmt: skip


def _trainable(plan: SweepPlan, trial_fn: Callable):
    resources, cluster = plan.resources, ray.cluster_resources()
    gpus = resources.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if cluster.get("GPU", 0) > 0 else 0.0
    # a request the cluster can never meet would wait forever: refuse it now
    if gpus > cluster.get("GPU", 0):
        raise ConfigError("--gpus-per-trial", f"asks for {gpus:g} GPUs; the cluster has {cluster.get('GPU', 0):g}")
    if plan.timed and plan.space.recipe.device == "cuda" and not gpus:
        raise ConfigError("--gpus-per-trial", "latency is measured on the trial's device, the recipe's cuda, and "
                          "this sweep's trials get no GPU")  # fmt: skip
    needed = resources.cpus_per_trial * resources.workers_per_trial
    if needed > cluster.get("CPU", 0):
        have = cluster.get("CPU", 0)
        raise ConfigError("--cpus-per-trial", f"a trial needs {needed:g} CPUs; the cluster has {have:g}")
    _check_fits_a_node(resources.cpus_per_trial, gpus, resources.workers_per_trial)
    concurrent = resources.max_concurrent
    if resources.workers_per_trial > 1:
        # the trial only drives a TorchTrainer and holds no CPU (Tune needs a non-empty request: a
        # token byte of memory); its workers hold the CPUs and GPUs, which bound the concurrency
        request = {"memory": 1}
        concurrent = concurrent or max(1, int(cluster.get("CPU", 0) // needed))
    else:
        request = {"CPU": resources.cpus_per_trial, **({"GPU": gpus} if gpus else {})}
    plan = dataclasses.replace(
        plan, resources=dataclasses.replace(resources, gpus_per_trial=gpus, max_concurrent=concurrent)
    )
    return tune.with_resources(tune.with_parameters(trial_fn, plan=plan), request), plan


@contextlib.contextmanager
def _driving(run_dir: str):
    """While the sweep runs: this process is marked as its driver (for `status`), watches its Ray
    cluster (sksearch.search.watch: all nodes dead, it exits 4 with the resume command), and Tune's and
    Train's log lines (tracebacks of crashed trials among them) go to the run's driver.log rather
    than the terminal; TrialNotes says in one line what happened. A run at a URI keeps them in a
    local temporary file named after it."""
    name = os.path.basename(run_dir.rstrip("/"))
    log = (
        os.path.join(tempfile.gettempdir(), f"sksearch-{name}-driver.log")
        if is_uri(run_dir)
        else join(run_dir, DRIVER_LOG)
    )
    os.makedirs(os.path.dirname(log), exist_ok=True)
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    mark_driver(run_dir)
    try:
        with ClusterWatch(run_dir):
            yield
    finally:
        unmark_driver(run_dir)
        for logger in loggers:
            logger.removeHandler(handler)
            logger.propagate = True
        handler.close()


def _run_config(plan: SweepPlan, progress: bool):
    callbacks = [TableCallback(plan), TrialNotes(plan)]
    callbacks += [LiveTable(plan)] if progress else []
    return tune.RunConfig(
        name=plan.name,
        storage_path=plan.storage,
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=callbacks,
        verbose=0,
    )


def run_sweep(
    plan: SweepPlan,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    trial_fn: Callable = run_trial,
):
    """Run a planned sweep to the end; returns the results table (a DataFrame). A grid or random
    sweep first answers what it can from the trial store (sksearch.search.reuse) and trains the rest;
    with nothing left to train, Ray is not started at all."""
    grid = plan.space.search.algorithm in ("grid", "random")
    answered = answer_from_store(plan, grid_cases(plan) if grid else [])
    if answered.unreadable:
        print(answered.unreadable, file=sys.stderr)
    if grid and not answered.to_run:
        return _write_start(plan, answered)
    connect(address, num_cpus, quiet=not progress)
    trainable, plan = _trainable(plan, trial_fn)  # refuses resources the cluster cannot give
    param_space, search_alg, num_samples = search_setup(plan, answered.to_run)
    _write_start(plan, answered)
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler(plan),
            num_samples=num_samples,
            max_concurrent_trials=plan.resources.max_concurrent or None,
            reuse_actors=True,
        ),
        run_config=_run_config(plan, progress),
    )
    _fit(tuner, plan.run_dir)
    return read_trials(plan.run_dir)


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was interrupted (Ctrl-C): Ray saved its state, and `sksearch resume` continues it."""


def _fit(tuner: tune.Tuner, run_dir: str) -> None:
    """Run the tuner under the driver's watch. Tune answers Ctrl-C by saving its state and
    returning, leaving trials without a row; that return is raised as SweepInterrupted rather than
    passed off as a finished sweep."""
    with _driving(run_dir):
        try:
            tuner.fit()
        except TuneError as error:  # Tune wraps a callback's error in a traceback's text
            fault = storage_fault(str(error))
            if fault is None:
                raise
            raise fault from None
    recorded = set(read_trials(run_dir).get("trial_id", []))
    if any(trial not in recorded for trial in ray_trial_states(run_dir)):  # cut short: no row (TableCallback)
        raise SweepInterrupted(f"interrupted before the sweep finished; `sksearch resume {run_dir}` continues it")


def extend_sweep(
    run_dir: str,
    *,
    space_file: str | None = None,
    num_samples: int | None = None,
    seeds: list[int] | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """More samples, new knob values or more seeds for a finished sweep: only networks not yet run
    are trained (sksearch.search.extend); returns the sweep's table, now the union."""
    plan, extension = plan_extension(run_dir, space_file=space_file, num_samples=num_samples, seeds=seeds)
    record_own_trials(plan)
    for unfinished in unfinished_extensions(plan):  # a killed extend: finish it, never train it again
        print(f"continuing the unfinished extension {unfinished.run_dir} first")
        if tune.Tuner.can_restore(unfinished.run_dir):
            added = resume_sweep(unfinished.run_dir, address=address, num_cpus=num_cpus, quiet=not progress)
        else:  # killed before Ray started: nothing of it trained
            added = run_sweep(unfinished, address=address, num_cpus=num_cpus, progress=progress)
        merge_extension(plan, unfinished, added)
        mark_merged(unfinished)
    added = run_sweep(extension, address=address, num_cpus=num_cpus, progress=progress)
    union = merge_extension(plan, extension, added)
    mark_merged(extension)
    return union


def _write_start(plan: SweepPlan, answered) -> pd.DataFrame:
    """sweep.json, and the rows (and history) the store answered: the run folder as a sweep starts."""
    if answered.rows:
        write_trials(plan.run_dir, answered.rows)
        write_history(plan.run_dir, answered.history)
    write_plan(plan)
    return read_trials(plan.run_dir)


def repair_sweep(run_dir: str) -> pd.DataFrame:
    """Rebuild a sweep's trials.parquet and history.parquet from Ray's records (its experiment
    state and each trial's result log), and a damaged sweep.json from its copy; no Ray process is
    started."""
    restore_plan(run_dir)
    plan = load_plan_here(run_dir)
    run_dir = plan.run_dir
    if not tune.Tuner.can_restore(run_dir):
        raise ConfigError(str(run_dir), "holds no Ray Tune experiment state to rebuild the table from")
    return rebuild_tables(plan, ray_trials(run_dir))


def _stand_in_for_lost_checkpoints(run_dir: str) -> None:
    """Every unfinished trial's lost checkpoint gets its stand-in (ray_records.stand_in_for_lost_checkpoint)."""
    for trial in ray_trials(run_dir):
        if trial.status != "TERMINATED":
            stand_in_for_lost_checkpoint(trial)


def resume_sweep(
    run_dir: str,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    quiet: bool = False,
    trial_fn: Callable = run_trial,
):
    """Continue a sweep whose driver stopped: finished trials are kept, unfinished and errored
    ones continue from their checkpoints, the searcher's state (Optuna's study too) is restored.
    Ray restores the run's callbacks too, so the live table shows as the original sweep chose."""
    plan = load_plan_here(run_dir)
    run_dir = plan.run_dir
    if not is_uri(run_dir):
        check_writable_folder(run_dir, run_dir)
    if not tune.Tuner.can_restore(run_dir):
        raise ConfigError(str(run_dir), "holds no Ray Tune experiment state to resume (did the sweep start?)")
    if damaged_tables(run_dir):  # the table callback goes on from the table: rebuild it first
        repair_sweep(run_dir)
    if not is_uri(run_dir):
        _stand_in_for_lost_checkpoints(run_dir)
    connect(address, num_cpus, quiet)
    trainable, _ = _trainable(plan, trial_fn)
    tuner = tune.Tuner.restore(run_dir, trainable=trainable, resume_unfinished=True, resume_errored=True)
    _fit(tuner, run_dir)
    return read_trials(run_dir)
