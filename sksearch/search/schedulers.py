"""Early stopping: Ray Tune's ASHA or HyperBand on the sweep's first objective."""

from __future__ import annotations

from sksearch.search.plan import SweepPlan


def scheduler(plan: SweepPlan):
    """The plan's early-stopping scheduler (None without one); its horizon is the most epochs a trial can run."""
    search = plan.space.search
    if search.early_stopping == "none":
        return None
    from ray.tune.schedulers import HyperBandScheduler

    metric, mode = search.objectives[0]
    max_t = plan.space.recipe.epochs
    for knob in plan.space.knobs:
        if knob.name == "epochs":
            max_t = int(max(knob.options()) if knob.finite else knob.high)
    if search.early_stopping == "asha":
        return asha(metric, mode, max_t)
    return HyperBandScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t)


def asha(metric: str, mode: str, max_t: int):
    """Ray Tune's ASHA as a sweep uses it: rungs from epoch 1, Ray's default reduction factor."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t, grace_period=1)
