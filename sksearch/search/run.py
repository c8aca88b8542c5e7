"""Running and resuming sweeps on Ray Tune (Tuner / TuneConfig / RunConfig as Ray documents them)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

import ray
from ray import tune

from sksearch.files import is_uri, join, write_bytes
from sksearch.search.callbacks import LiveTable, TableCallback
from sksearch.search.plan import SweepPlan, load_plan
from sksearch.search.schedulers import scheduler
from sksearch.search.searchers import search_setup
from sksearch.search.trial import run_trial
from sksearch.table import PLAN, read_trials
from sksearch.validation import ConfigError


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join a cluster (`ray://...` or `auto`) or start a local Ray with num_cpus and no dashboard."""
    # checkpointing every epoch is intended; Tune's warning about it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": a new instance even when `ray start` left a cluster running on this machine
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _trainable(plan: SweepPlan, trial_fn: Callable):
    resources, cluster = plan.resources, ray.cluster_resources()
    gpus = resources.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if cluster.get("GPU", 0) > 0 else 0.0
    # a request the cluster can never meet would wait forever: refuse it now
    if gpus > cluster.get("GPU", 0):
        raise ConfigError("--gpus-per-trial", f"asks for {gpus:g} GPUs; the cluster has {cluster.get('GPU', 0):g}")
    needed = resources.cpus_per_trial * resources.workers_per_trial
    if needed > cluster.get("CPU", 0):
        have = cluster.get("CPU", 0)
        raise ConfigError("--cpus-per-trial", f"a trial needs {needed:g} CPUs; the cluster has {have:g}")
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


def _run_config(plan: SweepPlan, progress: bool):
    callbacks = [TableCallback(plan)] + ([LiveTable(plan)] if progress else [])
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
    """Run a planned sweep to the end; returns the results table (a DataFrame)."""
    connect(address, num_cpus)
    trainable, plan = _trainable(plan, trial_fn)  # refuses resources the cluster cannot give
    param_space, search_alg, num_samples = search_setup(plan)
    write_bytes(join(plan.run_dir, PLAN), plan.to_json().encode())
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
    tuner.fit()
    return read_trials(plan.run_dir)


def resume_sweep(
    run_dir: str,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    trial_fn: Callable = run_trial,
):
    """Continue a sweep whose driver stopped: finished trials are kept, unfinished and errored
    ones continue from their checkpoints, the searcher's state (Optuna's study too) is restored.
    Ray restores the run's callbacks too, so the live table shows as the original sweep chose."""
    run_dir = run_dir if is_uri(run_dir) else os.path.abspath(run_dir)
    plan = load_plan(run_dir)
    if not tune.Tuner.can_restore(run_dir):
        raise ConfigError(str(run_dir), "holds no Ray Tune experiment state to resume (did the sweep start?)")
    plan = dataclasses.replace(
        plan, storage=os.path.dirname(run_dir.rstrip("/")), name=os.path.basename(run_dir.rstrip("/"))
    )
    connect(address, num_cpus)
    trainable, _ = _trainable(plan, trial_fn)
    tuner = tune.Tuner.restore(run_dir, trainable=trainable, resume_unfinished=True, resume_errored=True)
    tuner.fit()
    return read_trials(run_dir)
