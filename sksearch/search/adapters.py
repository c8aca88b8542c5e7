"""A space as Ray Tune's param_space and as Optuna's define-by-run function.

Both hand back knob values only; `Space.candidate` turns them into networks, so the two searchers
and the grid see the same network for the same choices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sksearch.search.points import is_active

if TYPE_CHECKING:
    from sksearch.search.space import Space


def tune_param_space(space: Space) -> dict[str, Any]:
    """A Ray Tune param_space. Branch-scoped knobs are always present (Ray has no conditionals);
    `candidate` ignores those beyond the point's number of branches."""
    from ray import tune

    param_space: dict[str, Any] = {}
    for knob in space.knobs:
        if knob.form == "fixed":
            param_space[knob.name] = knob.values[0]
        elif knob.form == "grid":
            param_space[knob.name] = tune.grid_search(list(knob.values))
        elif knob.form == "choice":
            param_space[knob.name] = tune.choice(list(knob.values))
        elif knob.form == "int":
            sampler = tune.lograndint if knob.log else tune.randint
            param_space[knob.name] = sampler(int(knob.low), int(knob.high) + 1)
        else:
            param_space[knob.name] = (tune.loguniform if knob.log else tune.uniform)(knob.low, knob.high)
    return param_space


def suggest(space: Space, trial: Any) -> dict[str, Any]:
    """Optuna define-by-run: suggests every active knob on `trial` and returns the fixed ones
    (Ray's OptunaSearch takes such a function as its space). A categorical's value set never
    depends on other knobs; branch-scoped knobs are only suggested for existing branches."""
    point: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for knob in space.knobs:
        if not is_active(space, knob, point):
            continue
        if knob.form == "fixed":
            constants[knob.name] = point[knob.name] = knob.values[0]
        elif knob.form in ("choice", "grid"):
            point[knob.name] = trial.suggest_categorical(knob.name, list(knob.values))
        elif knob.form == "int":
            point[knob.name] = trial.suggest_int(knob.name, int(knob.low), int(knob.high), log=knob.log)
        else:
            point[knob.name] = trial.suggest_float(knob.name, knob.low, knob.high, log=knob.log)
    return constants
