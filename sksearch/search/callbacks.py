"""Tune callbacks: the results table written as trials end (and reconciled with every trial when a
run ends, so a resumed run ends with the same table), and the compact live table.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from ray.tune import Callback

from sksearch.files import join, read_bytes
from sksearch.search.plan import SweepPlan
from sksearch.table import HISTORY_COLUMNS, read_trials, trial_row, write_history, write_trials


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
        recipe = self.plan.recipe_for(point, seed)
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
    """A compact live table of trials on the terminal (status, epoch, the first objective, GMACs,
    knobs), at most every `interval` seconds."""

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
        metric = self.plan.objectives[0][0]  # a metric column (sksearch.schema) every epoch reports
        for trial in trials[-20:]:
            last = trial.last_result or {}
            point, _ = self.plan.point_and_seed(trial.config)
            gmacs = self.plan.space.candidate(point).complexity.gmacs
            value = last.get(metric)
            knobs = " ".join(f"{k}={v}" for k, v in point.items())
            lines.append(
                f"  {trial.trial_id:12s} {trial.status:10s} epoch {last.get('epoch', 0):>3}/{epochs:<3} "
                f"{metric} {'-' if value is None else f'{value:6.2f}':>6}  GMACs {gmacs:7.4f}  {knobs}"
            )
        print("\n".join(lines), file=self.stream, flush=True)
