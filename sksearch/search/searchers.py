"""Searchers: grid and random over pre-drawn distinct feasible candidates, Optuna TPE / NSGA-II
through Ray's OptunaSearch behind `FeasibleSearcher`, so that a constraint-violating network is
never launched.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from sksearch.presets import preset
from sksearch.recipes import Recipe
from sksearch.schema import optuna_directions
from sksearch.search.plan import SweepPlan
from sksearch.search.reuse import Case
from sksearch.search.samplers import optuna_sampler
from sksearch.search.space import Rejected
from sksearch.search.store import Store, trial_key
from sksearch.spec import NetSpec


def search_setup(plan: SweepPlan, cases: list[Case]) -> tuple[dict[str, Any], Any, int]:
    """(param_space, search_alg, num_samples) for the plan's algorithm; grid and random run `cases`
    (those the trial store could not answer)."""
    search = plan.space.search
    if search.algorithm in ("grid", "random"):
        return {"case": tune.grid_search([case.config() for case in cases])}, None, 1
    return {}, FeasibleSearcher(_optuna_searcher(plan), plan), search.num_samples


def _optuna_searcher(plan: SweepPlan):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = plan.space.search
    sampler = optuna_sampler(search.algorithm, search.seeds[0], search.num_samples)
    points = [plan.space.point_for(preset(name)) for name in search.seed_presets]
    metrics = [metric for metric, _ in search.objectives]
    modes = [mode for _, mode in search.objectives]
    storage, name = optuna.storages.InMemoryStorage(), f"sksearch-{plan.name}"
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, directions=optuna_directions(search.objectives)
    )
    for point, values in stored_results(plan):  # the study starts knowing what the store knows
        study.enqueue_trial(point)
        trial = study.ask()
        plan.space.suggest(trial)
        study.tell(trial, values)
    return OptunaSearch(
        space=plan.space.suggest,
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=sampler,
        points_to_evaluate=points or None,
        study_name=name,
        storage=storage,
    )


def stored_results(plan: SweepPlan) -> list[tuple[dict[str, Any], list[float]]]:
    """(point, objective values) of every stored trial that ran a network of this space to the end
    under this sweep's recipe and first seed (nothing without `plan.reuse`)."""
    if not plan.reuse:
        return []
    seed, found, seen = plan.space.search.seeds[0], [], set()
    for record in Store(plan.store_location):
        if record.row.get("status") != "completed" or record.key in seen or "spec" not in record.row:
            continue
        point = plan.space.point_for(NetSpec.from_dict(json.loads(record.row["spec"])))
        values = [record.row.get(metric) for metric, _ in plan.objectives]
        if point is None or any(v is None or math.isnan(v) for v in values):
            continue
        if trial_key(plan.space.candidate(point).spec, plan.recipe_for(point, seed)) == record.key:
            found.append((point, [float(v) for v in values]))
            seen.add(record.key)
    return found


class FeasibleSearcher(Searcher):
    """Wraps a searcher so that a suggestion is launched only when it must be: one the space
    rejects (a violated constraint) is told failed; one whose (network, recipe, seed) this sweep has
    finished, or the trial store answers, is told that result (a stored failure: failed); one this
    sweep is training right now is told failed (Optuna samples elsewhere). Each time the searcher is
    asked again, so a sweep never trains a network twice. When every suggestion is a network already
    run, the search ends."""

    def __init__(self, searcher, plan: SweepPlan, max_tries: int = 500):
        self.searcher, self.plan, self.space, self.max_tries = searcher, plan, plan.space, max_tries
        self.inner_ids: dict[str, str] = {}
        self.keys: dict[str, str] = {}  # trial id -> its store key, while it runs
        self.results: dict[str, dict | None] = {}  # key -> result of a trial this sweep ran (None: running)
        self.rejected = self.answered = 0
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str):
        looked_up: dict[str, dict | None] = {}  # a small space repeats keys: ask the store once each
        for attempt in range(self.max_tries):
            inner_id = trial_id if attempt == 0 else f"{trial_id}-asked-{attempt}"
            config = self.searcher.suggest(inner_id)
            if config is None or config == self.FINISHED:
                return config
            try:
                candidate = self.space.candidate(config)
            except Rejected:
                self.rejected += 1
                self.searcher.on_trial_complete(inner_id, result=None, error=True)
                continue
            point, seed = self.plan.point_and_seed(config)
            recipe = self.plan.recipe_for(point, seed)
            key = trial_key(candidate.spec, recipe)
            if key not in looked_up:
                looked_up[key] = self._known_result(key, candidate.spec, recipe)
            known = looked_up[key]  # None: not known; {}: a stored failure (it diverged); else its objectives
            if known is not None or key in self.results:
                self.answered += known is not None
                self.searcher.on_trial_complete(inner_id, result=known or None, error=not known)
                continue
            self.inner_ids[trial_id], self.keys[trial_id], self.results[key] = inner_id, key, None
            return config
        return self.FINISHED  # the searcher suggests nothing new any more

    def _known_result(self, key: str, spec: NetSpec, recipe: Recipe) -> dict | None:
        """The objectives of `key` from this sweep's finished trial or from the trial store, where
        a stored failure (a diverged trial: training is deterministic per seed) is {}, as a grid
        sweep answers it too."""
        if self.results.get(key) is not None:
            return self.results[key]
        if not self.plan.reuse:
            return None
        store = Store(self.plan.store_location)
        record = store.answer(key, self.space.recipe.epochs)  # completed, stopped or failed (store.REUSABLE)
        if record is None:
            return None
        if record.row["status"] == "failed":
            return {}
        row = record.row
        if self.plan.timed:  # the store's trial may predate the need: its timing is measured now
            from sksearch.search.timings import trial_timing

            timing = trial_timing(spec, recipe, store, self.plan.resources.cpus_per_trial, known=row)
            if self.space.constraints.timing_violation(timing):
                return {}
            row = {**row, **timing}
        return {metric: row.get(metric) for metric, _ in self.plan.objectives}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.inner_ids:
            self.searcher.on_trial_result(self.inner_ids[trial_id], result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.keys:
            key = self.keys.pop(trial_id)
            if error or not result:
                self.results.pop(key, None)  # a crashed trial's network may be suggested again
            else:
                self.results[key] = {metric: result.get(metric) for metric, _ in self.plan.objectives}
        if trial_id in self.inner_ids:
            self.searcher.on_trial_complete(self.inner_ids.pop(trial_id), result=result, error=error)

    # Tune saves a wrapper's own state with get_state and the inner searcher (Optuna's study
    # included) on its own, as for its ConcurrencyLimiter.
    def get_state(self) -> dict:
        return {"inner_ids": dict(self.inner_ids), "keys": dict(self.keys), "results": dict(self.results),
                "rejected": self.rejected, "answered": self.answered}  # fmt: skip

    def set_state(self, state: dict) -> None:
        self.inner_ids, self.rejected = dict(state["inner_ids"]), state["rejected"]
        self.keys, self.results = dict(state.get("keys", {})), dict(state.get("results", {}))
        self.answered = state.get("answered", 0)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
