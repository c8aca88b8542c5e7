"""Sweeps on Ray Tune: search a space with one trial per network, survive failures, resume.

Tuner / TuneConfig / RunConfig / ResultGrid are used as Ray documents them. sksearch adds:
- a plan (`SweepPlan`), validated before anything starts and stored as sweep.json, so that
  `resume` rebuilds the same trainable and search;
- the trial function (`run_trial`): space point -> network -> `train.train`, with Tune checkpoints,
  and data-parallel trials through Ray Train's TorchTrainer;
- grid and random search over pre-drawn distinct feasible candidates, and Optuna TPE / NSGA-II
  behind `FeasibleSearcher`, so a constraint-violating network is never launched;
- `TableCallback`, which writes the results table (table.py) as trials end and reconciles it
  with every trial at the end of a run (a resumed run ends with the same table).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.search import Searcher

from sksearch.complexity import count
from sksearch.files import exists, is_uri, join, read_bytes, write_bytes
from sksearch.presets import preset
from sksearch.recipes import Recipe
from sksearch.space import Rejected, Space, parse_space
from sksearch.spec import ConfigError
from sksearch.table import (
    HISTORY_COLUMNS,
    PLAN,
    read_trials,
    trial_row,
    write_history,
    write_trials,
)
from sksearch.train import CHECKPOINT, TrialResult, train

DEFAULT_STORAGE = "results"


@dataclass(frozen=True)
class Resources:
    """What each trial gets. `gpus_per_trial` None: 1 if the cluster has GPUs, else 0."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    workers_per_trial: int = 1  # > 1: a data-parallel trial (Ray Train TorchTrainer)
    max_concurrent: int = 0  # 0: as many as resources allow

    def __post_init__(self) -> None:
        if not self.cpus_per_trial > 0:
            raise ConfigError("--cpus-per-trial", f"must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise ConfigError("--gpus-per-trial", f"must be >= 0, got {self.gpus_per_trial}")
        if self.workers_per_trial < 1:
            raise ConfigError("--workers-per-trial", f"must be >= 1, got {self.workers_per_trial}")
        if self.max_concurrent < 0:
            raise ConfigError("--max-concurrent", f"must be >= 0, got {self.max_concurrent}")


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs, as plain data (stored as sweep.json in the run folder)."""

    name: str
    space_data: Mapping[str, Any]  # the space file's data, recipe and search already overridden
    space_file: str
    storage: str  # absolute path or URI
    resources: Resources = Resources()
    max_failures: int = 2
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @cached_property
    def space(self) -> Space:
        return parse_space(dict(self.space_data), default_name=self.name, source=self.space_file)

    @cached_property
    def candidates(self):
        """The distinct feasible networks a grid or random search runs (drawn once)."""
        space, search = self.space, self.space.search
        if search.algorithm == "grid":
            return space.enumerate()
        return space.sample(search.num_samples, seed=search.seeds[0])

    @property
    def run_dir(self) -> str:
        return join(self.storage, self.name)

    @property
    def objectives(self) -> tuple[tuple[str, str], ...]:
        return self.space.search.objectives

    def point_and_seed(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Grid/random configs carry {"point", "seed"}; Optuna configs carry the knobs themselves."""
        point = config.get("point", config)
        seed = config.get("seed", self.space.search.seeds[0])
        return self.space.point_of(point), int(seed)

    def to_json(self) -> str:
        data = {
            "version": 1,
            "name": self.name,
            "space_file": self.space_file,
            "space": self.space_data,
            "storage": self.storage,
            "resources": dataclasses.asdict(self.resources),
            "max_failures": self.max_failures,
            "created": self.created,
        }
        return json.dumps(data, indent=2, default=list)

    @classmethod
    def from_json(cls, text: str) -> SweepPlan:
        data = json.loads(text)
        return cls(
            name=data["name"],
            space_data=data["space"],
            space_file=data["space_file"],
            storage=data["storage"],
            resources=Resources(**data["resources"]),
            max_failures=data["max_failures"],
            created=data["created"],
        )


# -- planning: every check happens here, before Ray starts ----------------------------------------


def plan_sweep(
    space_file: str | Path,
    *,
    recipe: str | None = None,
    settings: Mapping[str, Any] | None = None,
    algorithm: str | None = None,
    num_samples: int | None = None,
    objectives: str | None = None,
    early_stopping: str | None = None,
    seeds: list[int] | None = None,
    name: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    resources: Resources | None = None,
    max_failures: int = 2,
) -> SweepPlan:
    """Load the space, apply command-line overrides, and refuse anything that cannot run."""
    from sksearch.spec import read_yaml_file

    space_file = Path(space_file)
    data = dict(read_yaml_file(space_file, _mapping))
    parse_space(data, default_name=space_file.stem, source=str(space_file))  # the file alone is valid
    if recipe is not None or settings:
        base = recipe if recipe is not None else data.get("recipe", "smoke")
        preset_part = {"preset": base} if isinstance(base, str) else dict(base)
        data["recipe"] = {**preset_part, **(settings or {})}
    search = dict(data.get("search", {}))
    overrides = {
        "algorithm": algorithm,
        "num_samples": num_samples,
        "early_stopping": early_stopping,
        "seeds": seeds,
    }
    search.update({key: value for key, value in overrides.items() if value is not None})
    if objectives is not None:
        search["objectives"] = [item.strip() for item in objectives.split(",")]
    data["search"] = search
    try:
        space = parse_space(data, default_name=space_file.stem, source=str(space_file))
    except ConfigError as error:  # an override is wrong: name the flag, not the file
        raise _as_flag_error(error) from None
    data["recipe"] = space.recipe.to_dict()  # resolved: a resume must not depend on preset defaults
    sweep_name = name or space.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", sweep_name):
        raise ConfigError("--name", f"must be letters, digits, '_', '-' or '.', got {sweep_name!r}")
    plan = SweepPlan(
        name=sweep_name,
        space_data=data,
        space_file=str(space_file),
        storage=resolve_storage(storage, address),
        resources=resources or Resources(),
        max_failures=max_failures,
    )
    if max_failures < 0:
        raise ConfigError("--max-failures", f"must be >= 0, got {max_failures}")
    _check_search(plan)
    if exists(join(plan.run_dir, PLAN)):
        raise ConfigError(
            "--name",
            f"{plan.run_dir} already holds a sweep; `sksearch resume {plan.run_dir}` continues it, "
            "--name starts another",
        )
    return plan


def _mapping(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError("", f"a space file must be a mapping, got {type(data).__name__}")
    return data


def _as_flag_error(error: ConfigError) -> ConfigError:
    flags = {"search.algorithm": "--algorithm", "search.num_samples": "--num-samples",
             "search.objectives": "--objectives", "search.early_stopping": "--early-stopping",
             "search.seeds": "--seeds"}  # fmt: skip
    for prefix, flag in flags.items():
        if error.path.startswith(prefix):
            return ConfigError(flag, error.reason)
    return error


def resolve_storage(storage: str | None, address: str | None) -> str:
    """An absolute path or URI. With a cluster address a relative path is refused: workers on
    other nodes could not see it."""
    location = storage or DEFAULT_STORAGE
    if is_uri(location):
        return location
    if address and not os.path.isabs(location):
        raise ConfigError(
            "--storage",
            f"{location!r} is a relative path that workers on other nodes cannot see; with --address give "
            "an absolute path on shared storage or a URI (s3://, gs://, ...)",
        )
    return os.path.abspath(location)


def _check_search(plan: SweepPlan) -> None:
    space, search = plan.space, plan.space.search
    if search.algorithm == "grid" and not space.finite:
        raise ConfigError("--algorithm", "grid needs a finite space (it has a float range): use random, tpe or nsga2")
    if search.algorithm in ("grid", "random") and not len(plan.candidates):
        raise ConfigError("knobs", f"no feasible network in space {space.name}: {plan.candidates.summary()}")
    for index, name in enumerate(search.seed_presets):
        if space.point_for(preset(name)) is None:
            raise ConfigError(f"search.seed_presets[{index}]", f"{name} is not a network of space {space.name}")


# -- the trial ----------------------------------------------------------------------------------


def run_trial(config: dict[str, Any], plan: SweepPlan) -> None:
    """One Tune trial: the config's network trained under the plan's recipe, every epoch reported
    with a checkpoint; a retried trial continues from its last checkpoint."""
    point, seed = plan.point_and_seed(config)
    candidate = plan.space.candidate(point)
    recipe = _trial_recipe(plan, point, seed)
    complexity = candidate.complexity  # of the network as declared: the objectives' gmacs / params_m
    static = {
        "status": "running",
        "params": complexity.params,
        "macs": complexity.macs,
        "params_m": complexity.params_m,
        "gmacs": complexity.gmacs,
        "fvcore_flops": _fvcore_flops(candidate.spec),
        "node_id": _node_id(),
    }
    if plan.resources.workers_per_trial > 1:
        _run_data_parallel(plan, candidate.spec, recipe, static)
        return
    workdir = Path(tempfile.mkdtemp(prefix="sksearch-trial-"))
    try:
        restored = tune.get_checkpoint()
        if restored is not None:
            with restored.as_directory() as folder:
                shutil.copy(Path(folder) / CHECKPOINT, workdir / CHECKPOINT)
        reporter = _Reporter(static, recipe.epochs, _tune_report)
        result = train(candidate.spec, recipe, workdir, report=reporter)
        reporter.finish(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _trial_recipe(plan: SweepPlan, point: Mapping[str, Any], seed: int) -> Recipe:
    recipe = plan.space.recipe_for(point).replace(seed=seed)
    if recipe.threads is None:  # use the CPUs Ray gave the trial
        recipe = recipe.replace(threads=max(1, int(plan.resources.cpus_per_trial)))
    return recipe


class _Reporter:
    """Turns `train` reports into Tune/Train reports: declared-network complexity under the
    objective names, the trained network's as `trained_*`, the epoch this process started at, a status."""

    def __init__(self, static: dict[str, Any], epochs: int, send: Callable[[dict, Path | None], None]):
        self.static, self.epochs, self.send = static, epochs, send
        self.resumed_at: int | None = None

    def __call__(self, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        if self.resumed_at is None:
            self.resumed_at = metrics["epoch"] - 1
        payload = {
            **{k: v for k, v in metrics.items() if k not in ("archid", "params", "macs", "params_m", "gmacs")},
            "trained_archid": metrics["archid"],
            "trained_params": metrics["params"],
            "trained_macs": metrics["macs"],
            "trained_gmacs": metrics["gmacs"],
            "resumed_at_epoch": self.resumed_at,
            **self.static,
        }
        if metrics["epoch"] == self.epochs:
            payload["status"] = "completed"
        self.send(payload, checkpoint)

    def finish(self, result: TrialResult) -> None:
        """A failed trial's last report: its reason, and NaN errors (Optuna records a failed trial)."""
        if result.status == "failed":
            errors = {name: float("nan") for name in ("top1_err", "top5_err", "train_loss")}
            payload = {**self.static, **errors, "epoch": result.epochs_run, "status": "failed", "reason": result.reason}
            self.send(payload, None)


def _tune_report(payload: dict[str, Any], checkpoint: Path | None) -> None:
    _report_with_checkpoint(tune.report, tune.Checkpoint, payload, checkpoint)


def _report_with_checkpoint(report, checkpoint_class, payload: dict[str, Any], checkpoint: Path | None) -> None:
    """Report, handing Ray a folder that holds only the checkpoint (Ray copies it to storage)."""
    if checkpoint is None:
        report(payload)
        return
    folder = Path(tempfile.mkdtemp(prefix="sksearch-ckpt-"))
    try:
        shutil.copy(checkpoint, folder / CHECKPOINT)
        report(payload, checkpoint=checkpoint_class.from_directory(str(folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fvcore_flops(spec) -> int | None:
    try:
        return count(spec, "fvcore").fvcore_flops
    except ImportError:  # a worker without fvcore still trains
        return None


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def _run_data_parallel(plan: SweepPlan, spec, recipe: Recipe, static: dict[str, Any]) -> None:
    """A data-parallel trial: Ray Train's TorchTrainer runs `_data_parallel_worker` on N workers
    (DDP over gloo on CPUs, NCCL on GPUs); rank 0's reports reach Tune."""
    from ray.train import RunConfig as TrainRunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    resources = plan.resources
    gpus = resources.gpus_per_trial or 0
    per_worker = {"CPU": resources.cpus_per_trial, **({"GPU": gpus} if gpus else {})}
    trainer = TorchTrainer(
        _data_parallel_worker,
        train_loop_config={"spec": spec.to_dict(), "recipe": recipe.to_dict(), "static": static},
        scaling_config=ScalingConfig(
            num_workers=resources.workers_per_trial, use_gpu=gpus > 0, resources_per_worker=per_worker
        ),
        run_config=TrainRunConfig(
            name=f"{tune.get_context().get_trial_id()}-workers",
            storage_path=plan.run_dir,
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()


def _data_parallel_worker(config: dict[str, Any]) -> None:
    import ray.train

    from sksearch.recipes import recipe_from
    from sksearch.spec import NetSpec

    spec, recipe = NetSpec.from_dict(config["spec"]), recipe_from(config["recipe"])
    workdir = Path(tempfile.mkdtemp(prefix="sksearch-worker-"))
    try:
        restored = ray.train.get_checkpoint()
        if restored is not None:
            with restored.as_directory() as folder:
                shutil.copy(Path(folder) / CHECKPOINT, workdir / CHECKPOINT)

        def send(payload: dict[str, Any], checkpoint: Path | None) -> None:
            _report_with_checkpoint(ray.train.report, ray.train.Checkpoint, payload, checkpoint)

        reporter = _Reporter(config["static"], recipe.epochs, send)
        reporter.finish(train(spec, recipe, workdir, report=reporter))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- search -------------------------------------------------------------------------------------


def _search_setup(plan: SweepPlan) -> tuple[dict[str, Any], Any, int]:
    """(param_space, search_alg, num_samples) for the plan's algorithm."""
    search = plan.space.search
    if search.algorithm in ("grid", "random"):
        points = [candidate.knobs for candidate in plan.candidates]
        seeds = list(search.seeds)
        param_space = {
            "point": tune.grid_search(points),
            "seed": tune.grid_search(seeds) if len(seeds) > 1 else seeds[0],
        }
        return param_space, None, 1
    return {}, FeasibleSearcher(_optuna_searcher(plan), plan.space), search.num_samples


def _optuna_searcher(plan: SweepPlan):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = plan.space.search
    seed = search.seeds[0]
    if search.algorithm == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, search.num_samples // 3)))
    else:
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, min(50, search.num_samples // 2)))
    points = [plan.space.point_for(preset(name)) for name in search.seed_presets]
    metrics = [metric for metric, _ in search.objectives]
    modes = [mode for _, mode in search.objectives]
    return OptunaSearch(
        space=plan.space.suggest,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=sampler,
        points_to_evaluate=points or None,
    )


class FeasibleSearcher(Searcher):
    """Wraps a searcher so that a suggestion the space rejects (a violated constraint) is never
    launched: the inner searcher is told it failed and is asked again."""

    def __init__(self, searcher, space: Space, max_tries: int = 500):
        self.searcher, self.space, self.max_tries = searcher, space, max_tries
        self.inner_ids: dict[str, str] = {}
        self.rejected = 0
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str):
        for attempt in range(self.max_tries):
            inner_id = trial_id if attempt == 0 else f"{trial_id}-rejected-{attempt}"
            config = self.searcher.suggest(inner_id)
            if config is None or config == self.FINISHED:
                return config
            try:
                self.space.candidate(config)
            except Rejected:
                self.rejected += 1
                self.searcher.on_trial_complete(inner_id, result=None, error=True)
                continue
            self.inner_ids[trial_id] = inner_id
            return config
        raise RuntimeError(f"no feasible network in {self.max_tries} suggestions of the searcher")

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.inner_ids:
            self.searcher.on_trial_result(self.inner_ids[trial_id], result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.inner_ids:
            self.searcher.on_trial_complete(self.inner_ids.pop(trial_id), result=result, error=error)

    # Tune saves a wrapper's own state with get_state and the inner searcher (Optuna's study
    # included) on its own, as for its ConcurrencyLimiter.
    def get_state(self) -> dict:
        return {"inner_ids": dict(self.inner_ids), "rejected": self.rejected}

    def set_state(self, state: dict) -> None:
        self.inner_ids, self.rejected = dict(state["inner_ids"]), state["rejected"]

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def _scheduler(plan: SweepPlan):
    search = plan.space.search
    if search.early_stopping == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

    metric, mode = search.objectives[0]
    max_t = plan.space.recipe.epochs
    for knob in plan.space.knobs:
        if knob.name == "epochs":
            max_t = int(max(knob.options()) if knob.finite else knob.high)
    if search.early_stopping == "asha":
        return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t, grace_period=1)
    return HyperBandScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t)


# -- the table and the live view ----------------------------------------------------------------


class TableCallback(Callback):
    """Writes trials.parquet as trials end, and all rows plus history.parquet when a run ends."""

    def __init__(self, plan: SweepPlan):
        self.plan = plan
        self.rows: dict[str, dict[str, Any]] = {}

    def _load(self) -> None:
        if not self.rows:
            table = read_trials(self.plan.run_dir)
            self.rows = {row["trial_id"]: row for row in table.to_dict("records")} if len(table) else {}

    def _row(self, trial) -> dict[str, Any]:
        point, seed = self.plan.point_and_seed(trial.config)
        candidate = self.plan.space.candidate(point)
        last = dict(trial.last_result or {})
        status, reason = _status_of(trial, last)
        # a data-parallel trial's checkpoints are Ray Train's, reported as checkpoint_path
        checkpoint = trial.checkpoint.path if trial.checkpoint is not None else last.get("checkpoint_path")
        recipe = _trial_recipe(self.plan, point, seed)
        return trial_row(
            sweep=self.plan.name,
            trial_id=trial.trial_id,
            point=point,
            seed=seed,
            spec=candidate.spec,
            params=candidate.complexity.params,
            macs=candidate.complexity.macs,
            recipe=recipe.to_dict(),
            last=last,
            status=status,
            reason=reason,
            checkpoint=checkpoint,
        )

    def _record(self, trial) -> None:
        self._load()
        self.rows[trial.trial_id] = self._row(trial)
        write_trials(self.plan.run_dir, self.rows.values())

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._record(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._record(trial)

    def on_experiment_end(self, trials, **info):
        self._load()
        history = []
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                self.rows[trial.trial_id] = self._row(trial)
            history.extend(_trial_history(trial))
        write_trials(self.plan.run_dir, self.rows.values())
        write_history(self.plan.run_dir, history)


def _status_of(trial, last: Mapping[str, Any]) -> tuple[str, str]:
    if trial.status == "ERROR":
        error = trial.get_error()
        text = str(error).strip().splitlines() if error else []
        return "error", (text[-1] if text else "the trial crashed")
    status = last.get("status")
    if status in ("completed", "failed"):
        return status, last.get("reason") or ""
    return "stopped", f"early stopping after epoch {last.get('epoch', 0)}"


def _trial_history(trial) -> list[dict[str, Any]]:
    """Per-epoch metrics from the trial's own result log (persisted by Ray, so a resumed run has
    them all)."""
    try:
        text = read_bytes(join(trial.path, "result.json")).decode()
    except (OSError, FileNotFoundError):
        return []
    rows = []
    for line in text.splitlines():
        record = json.loads(line)
        if "top1_err" in record:
            rows.append({"trial_id": trial.trial_id, **{k: record.get(k) for k in HISTORY_COLUMNS}})
    return rows


class LiveTable(Callback):
    """A compact live table of trials on the terminal (status, epoch, error, GMACs), at most every
    `interval` seconds."""

    def __init__(self, plan: SweepPlan, interval: float = 10.0, stream=sys.stdout):
        self.plan, self.interval, self.stream = plan, interval, stream
        self.started = time.monotonic()
        self.shown = 0.0

    def on_step_end(self, iteration, trials, **info):
        if time.monotonic() - self.shown >= self.interval:
            self.show(trials)

    def on_experiment_end(self, trials, **info):
        self.show(trials)

    def show(self, trials) -> None:
        self.shown = time.monotonic()
        states: dict[str, int] = {}
        for trial in trials:
            states[trial.status] = states.get(trial.status, 0) + 1
        summary = ", ".join(f"{state.lower()} {n}" for state, n in sorted(states.items()))
        lines = [f"[{self.plan.name}] {time.monotonic() - self.started:6.0f}s  {summary}"]
        epochs = self.plan.space.recipe.epochs
        for trial in trials[-20:]:
            last = trial.last_result or {}
            point, _ = self.plan.point_and_seed(trial.config)
            gmacs = self.plan.space.candidate(point).complexity.gmacs
            error = last.get("top1_err")
            knobs = " ".join(f"{k}={v}" for k, v in point.items())
            lines.append(
                f"  {trial.trial_id:12s} {trial.status:10s} epoch {last.get('epoch', 0):>3}/{epochs:<3} "
                f"top1_err {'-' if error is None else f'{error:6.2f}':>6}  GMACs {gmacs:7.4f}  {knobs}"
            )
        print("\n".join(lines), file=self.stream, flush=True)


# -- running, resuming, status ------------------------------------------------------------------


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
    param_space, search_alg, num_samples = _search_setup(plan)
    write_bytes(join(plan.run_dir, PLAN), plan.to_json().encode())
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=_scheduler(plan),
            num_samples=num_samples,
            max_concurrent_trials=plan.resources.max_concurrent or None,
            reuse_actors=True,
        ),
        run_config=_run_config(plan, progress),
    )
    tuner.fit()
    return read_trials(plan.run_dir)


def load_plan(run_dir: str) -> SweepPlan:
    location = join(str(run_dir), PLAN)
    if not exists(location):
        raise ConfigError(str(run_dir), f"is not a sksearch sweep folder (no {PLAN})")
    try:
        return SweepPlan.from_json(read_bytes(location).decode())
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(location, f"unreadable sweep plan ({error})") from None


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


def sweep_status(run_dir: str) -> dict[str, Any]:
    """Counts by state, best so far, elapsed time, from the plan, the table and Ray's state."""
    plan = load_plan(run_dir)
    table = read_trials(run_dir)
    states = _ray_states(run_dir)
    for status in table["status"] if len(table) else []:
        states[status] = states.get(status, 0) + 1
    metric, mode = plan.objectives[0]
    best = None
    finished = table[table["status"] == "completed"] if len(table) else table
    if len(finished):
        row = finished.sort_values(metric, ascending=mode == "min").iloc[0]
        best = {"trial_id": row["trial_id"], "archid": row["archid"], metric: float(row[metric])}
    created = datetime.fromisoformat(plan.created)
    return {
        "sweep": plan.name,
        "space": plan.space_file,
        "states": states,
        "best": best,
        "objective": f"{metric}:{mode}",
        "elapsed_s": (datetime.now(timezone.utc) - created).total_seconds(),
        "rows": len(table),
    }


def _ray_states(run_dir: str) -> dict[str, int]:
    """Trials Ray knows but the table does not yet hold (pending, running, paused)."""
    import glob

    if is_uri(run_dir):
        return {}
    files = sorted(glob.glob(os.path.join(run_dir, "experiment_state-*.json")))
    if not files:
        return {}
    state = json.loads(Path(files[-1]).read_text())
    counts: dict[str, int] = {}
    for entry in state.get("trial_data", []):
        trial_json = json.loads(entry[0]) if isinstance(entry, list) else entry
        status = str(trial_json.get("status", "")).lower()
        if status in ("pending", "running", "paused"):
            counts[status] = counts.get(status, 0) + 1
    return counts
