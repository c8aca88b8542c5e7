"""Replay: search algorithms run against finished sweeps' tables instead of training.

Each algorithm decides as it would in a sweep, with the code a sweep uses: Optuna's samplers through
ask/tell (built by samplers.optuna_sampler, the points drawn by the space's own `suggest`), and
Ray Tune's ASHA or sksearch's MO-ASHA deciding after every epoch (schedulers.py). Only the backend
is simulated: a trial's epochs are read from the tables' per-epoch history and each costs its
recorded epoch time on a simulated clock, `workers` trials at a time.

What a replayed algorithm can try is the tabulated networks. A suggestion of a network the table
holds is that network; one already measured is answered from the table at no cost and the sampler
asks again (as a sweep's trial store answers it); a suggestion the table lacks runs the nearest
network not yet tried (knob distance: 1 per differing choice, range-normalised for numbers), and
the sampler is told that network's result. `random` tries the networks in a random order, `grid`
in the table's order, `asha` and `mo-asha` in a random order under that scheduler (schedulers.py).

After each trial ends, the hypervolume of what has been measured so far (a stopped trial with the
metrics of its last epoch) is recorded against the compute spent; replay_curves summarises the
repeats, and schema.REPLAY_COLUMNS says what each output column means.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from sksearch.files import join, read_bytes
from sksearch.results.fronts import default_reference, minimised_hypervolume
from sksearch.results.loading import load_results
from sksearch.runfiles import HISTORY_COLUMNS, PLAN, read_history
from sksearch.schema import chance_value, objective_signs, optuna_directions, parse_objectives
from sksearch.search.knobs import Knob
from sksearch.search.samplers import population_size, startup_trials
from sksearch.search.space import Space
from sksearch.search.spacefile import parse_space
from sksearch.validation import ConfigError

ALGORITHMS = ("random", "grid", "tpe", "nsga2", "asha", "mo-asha")
_ASKS_ANSWERED_IN_A_ROW = 50  # then the nearest untried network runs, so a converged sampler still spends


@dataclass(frozen=True)
class Network:
    """One tabulated network: its knob values, and per epoch its learned objectives (mean over its
    seeds) and cost (summed over its seeds, as a sweep with those seeds pays it)."""

    archid: str
    point: dict[str, Any]
    static: dict[str, float]
    curves: dict[str, np.ndarray]
    epoch_seconds: np.ndarray

    @property
    def epochs(self) -> int:
        return len(self.epoch_seconds)

    def values(self, objectives: Sequence[tuple[str, str]], epoch: int) -> list[float]:
        """The objectives after `epoch` epochs (1-based)."""
        return [
            float(self.curves[name][epoch - 1]) if name in self.curves else self.static[name] for name, _ in objectives
        ]


@dataclass
class Benchmark:
    """The networks a replay may try, with what the whole table reaches. The hypervolume's
    reference point is each objective's worst value plus 10% of its range, but never beyond chance
    for an error (networks no better than guessing add nothing); `reference_why` says which."""

    space: Space
    networks: list[Network]
    objectives: tuple[tuple[str, str], ...]
    reference: list[float]
    reference_why: tuple[str, ...] = ()
    signs: np.ndarray = field(init=False)
    finals: np.ndarray = field(init=False)  # each network's final objective values, one row per network
    full_hypervolume: float = field(init=False)
    total_seconds: float = field(init=False)  # every network's every epoch
    total_epochs: int = field(init=False)

    def __post_init__(self) -> None:
        self.signs = objective_signs(self.objectives)
        self.total_seconds = float(sum(network.epoch_seconds.sum() for network in self.networks))
        self.total_epochs = sum(network.epochs for network in self.networks)
        self.finals = np.array([network.values(self.objectives, network.epochs) for network in self.networks])
        self.full_hypervolume = self.hypervolume(self.finals)
        self._index = {_frozen(network.point): index for index, network in enumerate(self.networks)}
        self._knobs = {knob.name: knob for knob in self.space.knobs}

    def hypervolume(self, values: Sequence[Sequence[float]]) -> float:
        points = np.asarray(values, dtype=float).reshape(-1, len(self.objectives)) * self.signs
        return minimised_hypervolume(points, np.asarray(self.reference) * self.signs)

    def exact(self, point: dict[str, Any]) -> int | None:
        return self._index.get(_frozen(point))

    def nearest(self, point: dict[str, Any], excluded: set[int]) -> int | None:
        """The untried network whose knobs are closest to `point` (the first in table order on a tie)."""
        distances = [
            (self._distance(point, network.point), index)
            for index, network in enumerate(self.networks)
            if index not in excluded
        ]
        return min(distances)[1] if distances else None

    def _distance(self, one: dict[str, Any], other: dict[str, Any]) -> float:
        return sum(_knob_distance(self._knobs.get(name), one.get(name), other.get(name)) for name in {*one, *other})


def _frozen(point: dict[str, Any]) -> tuple:
    """A point as a key; numbers as floats, since a table column with gaps reads 3 back as 3.0."""
    return tuple(sorted((name, _number_or_text(value)) for name, value in point.items()))


def _number_or_text(value: Any) -> Any:
    numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return float(value) if numeric else json.dumps(value)


def _knob_distance(knob: Knob | None, one: Any, other: Any) -> float:
    if one is None or other is None:
        return float(one is not other)
    if knob is not None and knob.form in ("int", "float") and knob.high > knob.low:
        if knob.log:
            return abs(math.log(one) - math.log(other)) / math.log(knob.high / knob.low)
        return abs(one - other) / (knob.high - knob.low)
    return float(one != other)


def check_replay(algorithms: Sequence[str], budget: float, table: Benchmark | None = None) -> None:
    """Refuses an unknown algorithm, a budget outside (0, 1], and (given the table) ASHA on a first
    objective that has no per-epoch history to stop on."""
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ConfigError("--algorithms", f"unknown algorithm {name!r} (known: {', '.join(ALGORITHMS)})")
    if len(set(algorithms)) != len(algorithms):
        raise ConfigError("--algorithms", "lists an algorithm twice")
    if not 0 < budget <= 1:
        raise ConfigError("--budget", f"must be a fraction of the table's compute in (0, 1], got {budget:g}")
    if table is None:
        return
    metric = table.objectives[0][0]
    if "asha" in algorithms and metric not in table.networks[0].curves:
        raise ConfigError("--algorithms", f"asha stops trials on the first objective, and {metric} has no per-epoch "
                          f"history; put a learned metric such as top1_err first")  # fmt: skip
    if "mo-asha" in algorithms and len(table.objectives) < 2:
        raise ConfigError("--algorithms", f"mo-asha ranks two or more objectives and there is one ({metric}); "
                          "plain asha stops on one")  # fmt: skip


# -- reading the tables ------------------------------------------------------------------------


def load_benchmark(run_dirs: Sequence[str], objectives: str | None = None) -> Benchmark:
    """The completed networks of one or more sweeps of the same space, with their per-epoch history;
    `objectives` (default: the first sweep's) must be columns of the table."""
    trials = load_results(run_dirs)
    space = _common_space(run_dirs)
    trials = trials[trials["status"] == "completed"]
    history = pd.concat([read_history(str(run_dir)) for run_dir in run_dirs], ignore_index=True)
    if not len(history):
        raise ConfigError(str(run_dirs[0]), "has no per-epoch history (history.parquet) to replay")
    parsed = parse_objectives(objectives or [f"{n}:{m}" for n, m in space.search.objectives], "--objectives", trials)
    knobs = [knob.name for knob in space.knobs]
    networks = [
        network
        for _, rows in trials.groupby("archid", sort=False)
        if (network := _network(rows, history, knobs, parsed)) is not None
    ]
    if len(networks) < 2:
        raise ConfigError("RUN_DIR", f"holds {len(networks)} completed network(s) with a full history; replay needs 2")
    finals = pd.DataFrame(
        [network.values(parsed, network.epochs) for network in networks], columns=[name for name, _ in parsed]
    ).assign(archid=[network.archid for network in networks], status="completed")
    reference, why = [], []
    for (name, mode), value in zip(parsed, default_reference(finals, parsed), strict=True):
        chance = chance_value(name, space.recipe.classes) if mode == "min" else None
        reference.append(min(value, chance) if chance is not None else value)
        why.append(f"chance with {space.recipe.classes} classes" if chance is not None and chance < value
                   else "the worst plus 10% of the range")  # fmt: skip
    return Benchmark(space, networks, parsed, reference, tuple(why))


@dataclass(frozen=True)
class ReplaySettings:
    """What each algorithm is set to: fixed by the table's size (as a sweep of every network would
    set them), never by the budget, so that two budgets compare the same algorithms."""

    startup: int  # TPE's random start-up trials
    population: int  # NSGA-II's population

    @classmethod
    def for_table(cls, table: Benchmark, startup: int | None = None, population: int | None = None) -> ReplaySettings:
        size = len(table.networks)
        return cls(startup or startup_trials(size), population or population_size(size))

    def describe(self, table: Benchmark) -> str:
        from sksearch.search.schedulers import GRACE_PERIOD, REDUCTION_FACTOR, rungs

        max_t = max(network.epochs for network in table.networks)
        milestones = ", ".join(str(rung) for rung in sorted(rungs(max_t)) if rung < max_t)  # max_t: the end
        return (f"settings: TPE {self.startup} start-up trials, NSGA-II population {self.population} (from the "
                f"table's {len(table.networks)} networks); ASHA and MO-ASHA rungs at epochs {milestones} (grace "
                f"{GRACE_PERIOD}, reduction {REDUCTION_FACTOR})")  # fmt: skip


def _common_space(run_dirs: Sequence[str]) -> Space:
    spaces = []
    for run_dir in run_dirs:
        try:
            data = json.loads(read_bytes(join(str(run_dir), PLAN)))["space"]
        except (OSError, ValueError, KeyError):
            raise ConfigError(str(run_dir), f"is not a sksearch sweep folder (no readable {PLAN})") from None
        spaces.append(parse_space(data, source=f"{run_dir}/{PLAN}"))
    for run_dir, space in zip(run_dirs[1:], spaces[1:], strict=True):
        if [knob.name for knob in space.knobs] != [knob.name for knob in spaces[0].knobs]:
            raise ConfigError(str(run_dir), f"is a sweep of other knobs than {run_dirs[0]}; replay tables of one space")
    return spaces[0]


def _network(rows: pd.DataFrame, history: pd.DataFrame, knobs: list[str], objectives) -> Network | None:
    """A network from its trials (one per seed) and their epochs; None when an epoch is missing."""
    epochs = history[history["trial_id"].isin(rows["trial_id"])]
    per_trial = epochs.groupby("trial_id")["epoch"].agg(["count", "max"])
    if len(per_trial) != len(rows) or (per_trial["count"] != per_trial["max"]).any():
        return None
    last = int(per_trial["max"].min())
    epochs = epochs[epochs["epoch"] <= last]
    by_epoch = epochs.groupby("epoch")
    first = rows.iloc[0].to_dict()  # Python scalars, as the space's suggest gives them
    return Network(
        archid=str(first["archid"]),
        point={name: first[name] for name in knobs if name in first and not pd.isna(first[name])},
        static={name: float(rows[name].mean()) for name, _ in objectives if name not in HISTORY_COLUMNS},
        curves={name: by_epoch[name].mean().to_numpy(float) for name, _ in objectives if name in HISTORY_COLUMNS},
        epoch_seconds=by_epoch["epoch_time"].sum().to_numpy(float),
    )


# -- the simulated backend ---------------------------------------------------------------------


@dataclass
class _Trial:
    index: int
    handle: Any  # what the algorithm knows the trial by (an Optuna trial, or None)
    ray_trial: SimpleNamespace
    epoch: int = 0


class _Ordered:
    """Tries the networks in a fixed order (random: shuffled by the repeat's seed)."""

    def __init__(self, order: Sequence[int]):
        self.order = iter(order)

    def start(self, taken: set[int]) -> tuple[int, Any] | None:
        return next(((index, None) for index in self.order if index not in taken), None)

    def finish(self, trial: _Trial, values: list[float]) -> None:
        pass


class _Sampled:
    """Tries what an Optuna sampler suggests, through ask/tell on a study of the table's objectives."""

    def __init__(self, table: Benchmark, algorithm: str, seed: int, settings: ReplaySettings):
        import optuna

        from sksearch.search.samplers import optuna_sampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = optuna_directions(table.objectives)
        sampler = optuna_sampler(algorithm, seed, len(table.networks), settings.startup, settings.population)
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.table, self.answers, self.failed = table, {}, optuna.trial.TrialState.FAIL

    def start(self, taken: set[int]) -> tuple[int, Any] | None:
        for _ in range(_ASKS_ANSWERED_IN_A_ROW):
            trial = self.study.ask()
            fixed = self.table.space.suggest(trial)  # suggests the knobs on the trial, returns the fixed ones
            point = {**trial.params, **fixed}
            index = self.table.exact(point)
            if index in self.answers:  # measured already: answered at no cost
                self.study.tell(trial, self.answers[index])
                continue
            if index is None or index in taken:
                index = self.table.nearest(point, taken)
            if index is None:
                self.study.tell(trial, state=self.failed)
            return None if index is None else (index, trial)
        index = self.table.nearest({}, taken)
        return None if index is None else (index, self.study.ask())

    def finish(self, trial: _Trial, values: list[float]) -> None:
        self.answers[trial.index] = values
        self.study.tell(trial.handle, values)


def _proposer(table: Benchmark, algorithm: str, seed: int, settings: ReplaySettings):
    if algorithm in ("tpe", "nsga2"):
        return _Sampled(table, algorithm, seed, settings)
    order = range(len(table.networks))
    return _Ordered(order if algorithm == "grid" else np.random.default_rng(seed).permutation(len(order)))


def _stopper(algorithm: str, table: Benchmark):
    """The scheduler a sweep with this early stopping would use (None for none)."""
    from sksearch.search.schedulers import MultiObjectiveASHA, asha

    max_t = max(network.epochs for network in table.networks)
    if algorithm == "asha":
        return asha(*table.objectives[0], max_t)
    return MultiObjectiveASHA(table.objectives, max_t) if algorithm == "mo-asha" else None


def replay_once(
    table: Benchmark, algorithm: str, seed: int, budget: float, workers: int = 1, settings: ReplaySettings | None = None
) -> list[dict[str, Any]]:
    """One replay of `algorithm` until `budget` (a fraction of the table's compute in seconds) is
    spent or nothing is left to try: one row per ended trial."""
    from ray.tune.schedulers import TrialScheduler

    limit = budget * table.total_seconds
    proposer = _proposer(table, algorithm, seed, settings or ReplaySettings.for_table(table))
    stopper = _stopper(algorithm, table)
    running: list[tuple[float, int, _Trial]] = []
    taken: set[int] = set()
    measured: list[list[float]] = []
    rows: list[dict[str, Any]] = []
    spent, epochs_spent, clock, counter = 0.0, 0, 0.0, itertools.count()

    def launch() -> bool:
        started = proposer.start(taken)
        if started is None:
            return False
        index, handle = started
        taken.add(index)
        trial = _Trial(index, handle, SimpleNamespace(trial_id=f"{algorithm}-{seed}-{index}"))
        if stopper is not None:
            stopper.on_trial_add(None, trial.ray_trial)
        heapq.heappush(running, (clock + table.networks[index].epoch_seconds[0], next(counter), trial))
        return True

    while len(running) < workers and launch():
        pass
    while running:
        clock, _, trial = heapq.heappop(running)
        network = table.networks[trial.index]
        cost = float(network.epoch_seconds[trial.epoch])
        if spent + cost > limit:
            break
        spent, epochs_spent, trial.epoch = spent + cost, epochs_spent + 1, trial.epoch + 1
        values = network.values(table.objectives, trial.epoch)
        names = [name for name, _ in table.objectives]
        result = {"training_iteration": trial.epoch, **dict(zip(names, values, strict=True))}
        ended = trial.epoch == network.epochs
        if stopper is not None and not ended:
            ended = stopper.on_trial_result(None, trial.ray_trial, result) == TrialScheduler.STOP
        if not ended:
            heapq.heappush(running, (clock + network.epoch_seconds[trial.epoch], next(counter), trial))
            continue
        if stopper is not None:
            stopper.on_trial_complete(None, trial.ray_trial, result)
        proposer.finish(trial, values)
        measured.append(values)
        hypervolume = table.hypervolume(measured)
        rows.append({
            "algorithm": algorithm, "repeat": seed, "trial": len(rows), "archid": network.archid,
            "epochs": trial.epoch, "stopped": trial.epoch < network.epochs, "seconds": spent,
            "compute": spent / table.total_seconds, "trial_epochs": epochs_spent, "clock": clock,
            "hypervolume": hypervolume, "hv_fraction": hypervolume / table.full_hypervolume,
        })  # fmt: skip
        while len(running) < workers and launch():
            pass
    return rows


def replay(
    table: Benchmark,
    algorithms: Sequence[str],
    repeats: int,
    budget: float,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    settings: ReplaySettings | None = None,
) -> pd.DataFrame:
    """Every algorithm `repeats` times (repeat r seeds its sampler or order with r): the ended trials."""
    settings = settings or ReplaySettings.for_table(table)
    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature warnings, once per study
        for algorithm, repeat in itertools.product(algorithms, range(repeats)):
            rows += replay_once(table, algorithm, repeat, budget, workers, settings)
            if progress is not None:
                progress(1)
    return pd.DataFrame(rows)
