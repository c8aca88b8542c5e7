"""Early stopping: Ray Tune's ASHA or HyperBand on the sweep's first objective, or MO-ASHA on all
of them (ASHA's rungs, promotion by non-dominated rank and then hypervolume contribution)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import moocore
import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sksearch.schema import objective_signs
from sksearch.search.plan import SweepPlan

GRACE_PERIOD, REDUCTION_FACTOR = 1, 4  # rungs from epoch 1; Ray's default reduction factor


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
    if search.early_stopping == "mo-asha":
        return MultiObjectiveASHA(search.objectives, max_t)
    return HyperBandScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t)


def asha(metric: str, mode: str, max_t: int):
    """Ray Tune's ASHA as a sweep uses it."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t,
                         grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR)  # fmt: skip


def rungs(max_t: int, grace_period: int = GRACE_PERIOD, reduction_factor: int = REDUCTION_FACTOR) -> list[int]:
    """ASHA's milestones, highest first (Ray's rule: grace * rf^k below max_t)."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in reversed(range(count))]


class MultiObjectiveASHA(FIFOScheduler):
    """ASHA with several objectives. At each rung (ASHA's milestones) a trial is recorded with its
    objectives and goes on only if it is among the best 1/reduction_factor (at least one) of the
    trials recorded there, itself included, ordered by non-dominated rank and, within a rank, by
    hypervolume contribution (moocore), then by the first objective. Learned and static objectives
    mix freely: each is read from the trial's report. Asynchronous like ASHA: a trial is judged
    when it reaches a rung, against whoever reached it before.

    Tune does not save a scheduler's state, so on the first report after a sweep is resumed, the
    rungs are rebuilt from every trial's result log (a trial reaching a rung was recorded with its
    report of that epoch, so the rebuilt rungs equal the lost ones). Replay drives the same class."""

    def __init__(
        self,
        objectives: Sequence[tuple[str, str]],
        max_t: int,
        grace_period: int = GRACE_PERIOD,
        reduction_factor: int = REDUCTION_FACTOR,
        time_attr: str = "training_iteration",
    ):
        super().__init__()
        self.objectives, self.max_t, self.time_attr = tuple(objectives), max_t, time_attr
        self.reduction_factor = reduction_factor
        self.signs = objective_signs(self.objectives)
        milestones = rungs(max_t, grace_period, reduction_factor)
        self.rungs: list[tuple[int, dict[str, list[float]]]] = [(milestone, {}) for milestone in milestones]
        self.rebuilt = False

    def on_trial_result(self, tune_controller, trial, result: dict[str, Any]) -> str:
        if not self.rebuilt and tune_controller is not None:
            self._rebuild(tune_controller.get_trials(), trial.trial_id, result.get(self.time_attr, 0))
        self.rebuilt = True
        if result.get(self.time_attr, 0) >= self.max_t:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE if self._record(trial.trial_id, result) else TrialScheduler.STOP

    def on_trial_complete(self, tune_controller, trial, result: dict[str, Any]) -> None:
        if result:
            self._record(trial.trial_id, result)

    def _record(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Records the trial at the highest rung it reached and has not been recorded at; whether it goes on."""
        if self.time_attr not in result or any(result.get(name) is None for name, _ in self.objectives):
            return True
        for milestone, recorded in self.rungs:
            if result[self.time_attr] < milestone or trial_id in recorded:
                continue
            recorded[trial_id] = [float(result[name]) for name, _ in self.objectives]
            return self.promotes(recorded, trial_id)
        return True

    def promotes(self, recorded: dict[str, list[float]], trial_id: str) -> bool:
        ids = list(recorded)
        order = self.order(np.array([recorded[i] for i in ids]))
        keep = max(1, math.ceil(len(ids) / self.reduction_factor))
        return ids.index(trial_id) in order[:keep]

    def order(self, values: np.ndarray) -> list[int]:
        """Row indices, best first: by non-dominated rank, then hypervolume contribution within the
        rank (reference: the worst value of each objective plus 10% of its range), then objective 1."""
        points = values * self.signs
        ranks = moocore.pareto_rank(points)
        worst, best = points.max(axis=0), points.min(axis=0)
        reference = worst + np.where(worst > best, 0.1 * (worst - best), 1.0)
        contribution = np.zeros(len(points))
        for rank in np.unique(ranks):
            members = np.flatnonzero(ranks == rank)
            contribution[members] = moocore.hv_contributions(points[members], ref=reference)
        return sorted(range(len(points)), key=lambda i: (ranks[i], -contribution[i], points[i, 0]))

    def _rebuild(self, trials, reporting: str, now: int) -> None:
        """The rungs from every trial's result log, short of the report being judged (trial
        `reporting` at time `now`)."""
        from sksearch.search.ray_records import reported_results

        for trial in trials:
            for report in reported_results(trial):
                if trial.trial_id != reporting or report.get(self.time_attr, 0) < now:
                    self._record(trial.trial_id, report)
