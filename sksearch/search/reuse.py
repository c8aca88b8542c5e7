"""Answering a sweep's trials from the trial store before launching any: a grid or random sweep
trains only the (network, seed) cases the store cannot answer, and its table gets a row for each
answered one (status `reused`, or the source's own `failed`, and `reused_from`). No Ray here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sksearch.recipes import Recipe
from sksearch.runfiles import trial_row
from sksearch.search.plan import SweepPlan
from sksearch.search.space import Candidate
from sksearch.search.store import Record, Store, trial_key


@dataclass(frozen=True)
class Case:
    """One trial a grid or random sweep asks for: a point of the space and a training seed."""

    point: dict[str, Any]
    seed: int

    def config(self) -> dict[str, Any]:
        return {"point": self.point, "seed": self.seed}


@dataclass(frozen=True)
class Answered:
    rows: list[dict[str, Any]]  # results-table rows of the cases the store answered
    history: list[dict[str, Any]]  # their per-epoch history, under the new trial ids
    to_run: list[Case]  # the cases left to train
    unreadable: str = ""  # the store's note on records it could not read (none: "")


def grid_cases(plan: SweepPlan) -> list[Case]:
    """Every candidate once per seed, candidates first (the order Ray's grid gives them)."""
    return [Case(candidate.knobs, seed) for seed in plan.space.search.seeds for candidate in plan.candidates]


def answer_from_store(plan: SweepPlan, cases: list[Case]) -> Answered:
    """Split `cases` into those the store answers (with their rows) and those to train. Without
    `plan.reuse` every case is trained."""
    if not plan.reuse:
        return Answered([], [], list(cases))
    store = Store(plan.store_location)
    rows, history, to_run = [], [], []
    for case in cases:
        candidate = plan.space.candidate(case.point)
        recipe = plan.recipe_for(case.point, case.seed)
        record = store.answer(trial_key(candidate.spec, recipe), recipe.epochs)
        if record is None:
            to_run.append(case)
            continue
        trial_id = f"reused-{plan.name}-{len(rows):05d}"  # unique in the union an extension makes
        row = _reused_row(plan, case, candidate, recipe, record, trial_id)
        rows.append(_with_timing(plan, row, candidate, recipe, store) if plan.timed else row)
        history.extend({**epoch, "trial_id": trial_id} for epoch in record.history)
    return Answered(rows, history, to_run, store.unreadable_note())


def _with_timing(plan: SweepPlan, row: dict[str, Any], candidate: Candidate, recipe: Recipe, store: Store) -> dict:
    """A reused row with the latency and throughput the sweep needs (the record's, or measured now,
    as its trial would have) and the sweep's bounds on them: a network too slow is `failed`."""
    from sksearch.search.timings import trial_timing

    timing = trial_timing(candidate.spec, recipe, store, plan.resources.cpus_per_trial, known=row)
    broken = plan.space.constraints.timing_violation(timing)
    failed = {"status": "failed", "reason": f"{broken} (the network of {row['reused_from']})"} if broken else {}
    return {**row, **timing, **failed}


def _reused_row(
    plan: SweepPlan, case: Case, candidate: Candidate, recipe: Recipe, record: Record, trial_id: str
) -> dict[str, Any]:
    """The record's results under this sweep's knobs and names; `reused_from` says whence."""
    source = record.row
    last = {**source, "epoch": source.get("epochs"), "time_total_s": source.get("wall_time")}
    completed = source.get("status") in ("completed", "stopped")  # a stopped one ran as many epochs as asked
    row = trial_row(
        sweep=plan.name,
        trial_id=trial_id,
        point=case.point,
        seed=case.seed,
        spec=candidate.spec,
        params=candidate.complexity.params,
        macs=candidate.complexity.macs,
        recipe=recipe.to_dict(),
        last=last,
        status="reused" if completed else str(source.get("status")),
        reason=f"answered from the store: trial {record.source}"
        + (f" ({source['reason']})" if source.get("reason") else ""),
        checkpoint=source.get("checkpoint"),
    )
    return {**row, "reused_from": record.source}
