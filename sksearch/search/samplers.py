"""The Optuna samplers of `tpe` and `nsga2` sweeps, shared by sweeps (through Ray's OptunaSearch)
and replay (ask/tell), so both draw the same points."""

from __future__ import annotations

import threading
from typing import Any

import optuna


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II that survives pickling: Ray pickles the searcher it is given to `tune.Tuner`.

    Optuna 5's genetic samplers hold a `threading.Lock` and define no `__getstate__`, so the Tuner
    fails with "cannot pickle '_thread.lock' object". The lock guards a cache, not the study: a copy
    gets a fresh one.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def optuna_sampler(algorithm: str, seed: int, num_samples: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of a `tpe` or `nsga2` sweep of num_samples trials."""
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, num_samples // 3)))
    return PicklableNSGAIISampler(seed=seed, population_size=max(2, min(50, num_samples // 2)))
