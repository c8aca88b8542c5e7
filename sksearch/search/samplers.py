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


def startup_trials(num_samples: int) -> int:
    """TPE's random start-up trials for a search of num_samples: Optuna's 10, fewer for a short search."""
    return min(10, max(2, num_samples // 3))


def population_size(num_samples: int) -> int:
    """NSGA-II's population for a search of num_samples: Optuna's 50, at most half the search."""
    return max(2, min(50, num_samples // 2))


def optuna_sampler(
    algorithm: str, seed: int, num_samples: int, startup: int | None = None, population: int | None = None
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of a `tpe` or `nsga2` search of num_samples trials (`startup` and
    `population` override what num_samples gives)."""
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup or startup_trials(num_samples))
    return PicklableNSGAIISampler(seed=seed, population_size=population or population_size(num_samples))
