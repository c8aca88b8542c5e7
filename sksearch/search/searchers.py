"""Searchers: grid and random over pre-drawn distinct feasible candidates, Optuna TPE / NSGA-II
through Ray's OptunaSearch behind `FeasibleSearcher`, so that a constraint-violating network is
never launched.
"""

from __future__ import annotations

from typing import Any

from ray import tune
from ray.tune.search import Searcher

from sksearch.presets import preset
from sksearch.search.plan import SweepPlan
from sksearch.search.space import Rejected, Space


def search_setup(plan: SweepPlan) -> tuple[dict[str, Any], Any, int]:
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
