"""The sweep's Tune callbacks: the results table (trials.parquet, history.parquet) and the trial
store written as trials end (and reconciled with every trial when a run ends, so a resumed run ends
with the same table), one-line notes on crashed trials, and the compact live table. What they read
of Ray's records is in sksearch.search.ray_records. Their import paths are part of every run
folder's saved state (Ray pickles a run's callbacks), so they stay here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from ray.tune import Callback

from sksearch.files import check_free_space, is_uri
from sksearch.recipes import Recipe
from sksearch.runfiles import (
    HISTORY_COLUMNS,
    ray_trial_states,
    read_history,
    read_trials,
    trial_row,
    write_history,
    write_trials,
)
from sksearch.schema import best_trials, network_names
from sksearch.search.plan import SweepPlan
from sksearch.search.ray_records import (
    checkpoint_bytes,
    error_line,
    reported_results,
    stand_in_for_lost_checkpoint,
    status_of,
    trial_history,
)
from sksearch.search.store import Record, Store, trial_claim, trial_key
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError


class TableCallback(Callback):
    """Writes trials.parquet as trials end, and all rows plus history.parquet when a run ends."""

    def __init__(self, plan: SweepPlan):
        self.plan = plan
        self.run_dir = plan.run_dir
        self.rows: dict[str, dict[str, Any]] = {}
        self.ended: set[str] = set()  # trials Tune completed (or stopped) or errored in this driver
        self.received: dict[str, list[dict[str, Any]]] = {}  # trial id -> its epochs' reports, as received

    def __getstate__(self) -> dict[str, Any]:
        """Ray saves the callback in the run's state: the reports it received are not state (the
        trials' result logs hold them)."""
        return {**self.__dict__, "received": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"received": {}, **state})  # (a run saved before there was `received`)

    def _follow(self, trials) -> None:
        """Write where the trials are: Ray restores this callback from the run folder with the path
        it was created with, and a folder resumed after a copy or a move must not write into the old
        one. (At a URI, resume refuses a folder that is not where its plan says.)"""
        paths = [trial.path for trial in trials if trial.path]
        if paths and not is_uri(self.plan.storage):
            here = os.path.dirname(paths[0].rstrip("/"))
            if here != self.run_dir:
                self.run_dir, self.rows = here, {}

    def _load(self) -> None:
        if not self.rows:
            table = read_trials(self.run_dir)
            self.rows = {row["trial_id"]: row for row in table.to_dict("records")} if len(table) else {}

    def _row(self, trial) -> dict[str, Any]:
        point, seed = self.plan.point_and_seed(trial.config)
        candidate = self.plan.space.candidate(point)
        last = dict(trial.last_result or {})
        status, reason = status_of(trial, last)
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
        self._follow([trial])
        self._load()
        if self._ended_before(trial):
            return
        self.rows[trial.trial_id] = self._row(trial)
        write_trials(self.run_dir, self.rows.values())
        self._store(trial, self._history(trial))

    def _history(self, trial) -> list[dict[str, Any]]:
        return trial_history(trial, self.received.get(trial.trial_id, ()))

    def _ended_before(self, trial) -> bool:
        """Whether an earlier driver recorded this trial ending after more epochs than Ray's saved
        state holds. Killed between the two, it left Ray an older last result, and the trial, resumed
        from its final checkpoint, has nothing left to report: its row and store record stand."""
        row = self.rows.get(trial.trial_id)
        ended = row is not None and row.get("status") in ("completed", "stopped", "failed")
        return ended and _epochs(row.get("epochs")) > _epochs((trial.last_result or {}).get("epoch"))

    def _network(self, trial) -> tuple[NetSpec, Recipe]:
        """(spec, recipe) the trial trained."""
        point, seed = self.plan.point_and_seed(trial.config)
        return self.plan.space.candidate(point).spec, self.plan.recipe_for(point, seed)

    def _store(self, trial, history: list[dict[str, Any]]) -> None:
        """The trial's immutable record in the trial store (sksearch.search.store)."""
        spec, recipe = self._network(trial)
        Store(self.plan.store_location).put(Record(trial_key(spec, recipe), self.rows[trial.trial_id], tuple(history)))
        trial_claim(
            self.plan.store_location, self.plan.name, spec, recipe, trial.trial_id
        ).release()  # a sweep waiting on it reads the record

    def _recorded_history(self, trial) -> list[dict[str, Any]]:
        """The history in the store record of the trial's row (an earlier driver's), else its result log's."""
        checkpoint = self.rows[trial.trial_id].get("checkpoint")
        key = trial_key(*self._network(trial))
        record = Store(self.plan.store_location).record_of(key, trial_id=trial.trial_id, checkpoint=checkpoint)
        return list(record.history) if record is not None else self._history(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """Keep the epoch's report (the trial's result log in the run folder can lag behind it when
        the trial ends). Stop the sweep, in one line, before its storage is full: past that point Ray
        writes its state and checkpoints half-way and the sweep could not be resumed."""
        report = {name: result[name] for name in HISTORY_COLUMNS if name in result}
        self.received.setdefault(trial.trial_id, []).append(report)
        if not is_uri(self.run_dir):
            check_free_space(self.run_dir, checkpoint_bytes(trial))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended.add(trial.trial_id)
        self._record(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.ended.add(trial.trial_id)
        self._record(trial)

    def on_experiment_end(self, trials, **info):
        """An interrupted run (Ctrl-C) ends with Tune terminating its unfinished trials without
        completing them: those get no row and no store record (they were not stopped by early
        stopping), and Ray's saved state keeps them unfinished for `resume`. A trial counts as
        finished when it ended in this driver, has a row from an earlier one, or Ray saved it so."""
        self._follow(trials)
        self._load()
        saved = ray_trial_states(self.run_dir)
        recorded = set(self.rows) | set(read_trials(self.run_dir).get("trial_id", []))

        def finished(trial) -> bool:
            ended = trial.trial_id in self.ended or trial.trial_id in recorded
            return ended or saved.get(trial.trial_id) in ("finished", "error")

        self.reconcile(trials, finished)

    def reconcile(self, trials, finished: Callable[[Any], bool] = lambda trial: True) -> None:
        """A row for every finished trial (Ray calls it terminated or errored, and `finished` agrees)
        and the history of all of them, both written whole."""
        history = []
        for trial in trials:
            if self._ended_before(trial):
                history.extend(self._recorded_history(trial))
                continue
            epochs = self._history(trial)
            if trial.status in ("TERMINATED", "ERROR") and finished(trial):
                self.rows[trial.trial_id] = self._row(trial)
                self._store(trial, epochs)
            history.extend(epochs)
        # rows no Ray trial of this run made (answered from the store) keep their history
        ran = {trial.trial_id for trial in trials}
        try:
            kept = read_history(self.run_dir)
        except ConfigError:  # damaged (being repaired): only what Ray holds can be rebuilt
            kept = pd.DataFrame()
        if len(kept):
            history.extend(row for row in kept.to_dict("records") if row["trial_id"] not in ran)
        write_trials(self.run_dir, self.rows.values())
        write_history(self.run_dir, history)


class TrialNotes(Callback):
    """One line on stderr when a trial crashes (and is retried from its checkpoint) or errors for
    good, in place of Ray's tracebacks, which go to the run's driver.log."""

    def __init__(self, plan: SweepPlan):
        self.plan = plan

    def on_trial_recover(self, iteration, trials, trial, **info):
        stand_in_for_lost_checkpoint(trial)
        retry = f"retry {trial.num_failures} of {self.plan.max_failures}"
        self._note(f"trial {trial.trial_id} crashed ({error_line(trial)}); {retry}, from its last checkpoint")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._note(f"trial {trial.trial_id} errored after {self.plan.max_failures} retries: {error_line(trial)}")

    def _note(self, text: str) -> None:
        print(f"[{self.plan.name}] {text}", file=sys.stderr, flush=True)


def rebuild_tables(plan: SweepPlan, trials) -> pd.DataFrame:
    """trials.parquet and history.parquet rebuilt from Ray's records of `trials` alone (a table
    damaged or deleted). A trial Ray's state still calls unfinished whose own log says it ended is
    finished: the state is saved less often than the log."""
    for trial in trials:
        records = reported_results(trial)
        if records and records[-1].get("status") in ("completed", "failed"):
            trial.update_last_result(records[-1])
            trial.set_status(trial.TERMINATED)
    table = TableCallback(plan)
    table.reconcile(trials)
    return read_trials(plan.run_dir)


class LiveTable(Callback):
    """A live view of the sweep on the terminal, at most every `interval` seconds, that stays short
    however many trials there are: counts by status, then the running trials, the best few and the
    latest finished, each with its readable network name (schema.network_names). When the output is
    not a terminal (a log file, a pipe), one line per finished trial instead, and the table once at
    the end: a redirected sweep's log grows with its trials, not with its minutes."""

    def __init__(self, plan: SweepPlan, interval: float = 10.0, rows: int = 5):
        self.plan, self.interval, self.rows = plan, interval, rows
        self.started = time.monotonic()
        self.shown = 0.0
        self.finished_order: dict[str, int] = {}  # trial id -> the order it was first seen finished

    def on_step_end(self, iteration, trials, **info):
        if sys.stdout.isatty() and time.monotonic() - self.shown >= self.interval:
            self.show(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._announce(trials, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._announce(trials, trial)

    def on_experiment_end(self, trials, **info):
        self.show(trials)

    def _announce(self, trials, trial) -> None:
        """One line for a trial that ended, when the live table is not drawn (named among all the
        sweep's trials: a name says what varies)."""
        if sys.stdout.isatty():
            return
        frame = self._frame(trials)
        row = frame[frame["trial_id"] == trial.trial_id].iloc[0].copy()
        row["status"] = status_of(trial, trial.last_result or {})[0]  # Tune calls before it sets the status
        line = self._line(row, self.plan.objectives[0][0]).strip()
        print(f"[{self.plan.name}] {time.monotonic() - self.started:6.0f}s  {line}", file=sys.stdout, flush=True)

    def show(self, trials) -> None:
        self.shown = time.monotonic()
        lines = self.lines(trials, time.monotonic() - self.started)
        print("\n".join(lines), file=sys.stdout, flush=True)

    def lines(self, trials, elapsed: float) -> list[str]:
        frame = self._frame(trials)
        counts = frame["status"].value_counts()
        summary = ", ".join(f"{status} {counts[status]}" for status in _LIVE_ORDER if status in counts)
        lines = [f"[{self.plan.name}] {elapsed:6.0f}s  {len(frame)} trials: {summary}"]
        metric, mode = self.plan.objectives[0]
        finished = frame[frame["status"].isin(("completed", "failed", "stopped", "error"))]
        sections = (
            ("running", frame[frame["status"] == "running"]),
            (f"best {metric}", best_trials(frame[frame["status"] == "completed"], metric, mode)),
            ("latest finished", finished.sort_values("finished", ascending=False)),
        )
        for title, rows in sections:
            if len(rows):
                more = f" (+{len(rows) - self.rows} more)" if len(rows) > self.rows else ""
                lines.append(f" {title}{more}:")
                lines.extend(self._line(row, metric) for _, row in rows.head(self.rows).iterrows())
        return lines

    def _frame(self, trials) -> pd.DataFrame:
        records, points = [], []
        metric = self.plan.objectives[0][0]  # a metric column (sksearch.schema) every epoch reports
        for trial in trials:
            point, seed = self.plan.point_and_seed(trial.config)
            last = trial.last_result or {}
            status = _live_status(trial, last)
            points.append(point)
            if status in ("completed", "failed", "stopped", "error"):
                self.finished_order.setdefault(trial.trial_id, len(self.finished_order))
            records.append({
                "trial_id": trial.trial_id,
                "status": status,
                "seed": seed,
                "epoch": last.get("epoch", 0),
                metric: last.get(metric, float("nan")),
                "gmacs": self.plan.space.candidate(point).complexity.gmacs,
                "finished": self.finished_order.get(trial.trial_id, -1),
            })  # fmt: skip
        frame = pd.DataFrame(records)
        if frame.empty:
            return pd.DataFrame(columns=["status", "finished", metric])
        return frame.assign(name=network_names(pd.DataFrame(points, index=frame.index)))

    def _line(self, row: pd.Series, metric: str) -> str:
        epochs, value = self.plan.space.recipe.epochs, row[metric]
        shown = "-" if pd.isna(value) else f"{value:.2f}"
        return (
            f"  {row['trial_id']:12s} {row['status']:9s} epoch {row['epoch']:>3}/{epochs:<3} "
            f"{metric} {shown:>6}  GMACs {row['gmacs']:7.4f}  {row['name']}"
        )


def _epochs(value: Any) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


# The order statuses are counted in; Ray's PENDING / RUNNING / PAUSED read in lower case.
_LIVE_ORDER = ("pending", "running", "paused", "completed", "stopped", "failed", "error")


def _live_status(trial, last: Mapping[str, Any]) -> str:
    """The trial's status as the results table will name it (ASHA's stops read `stopped`)."""
    if trial.status in ("TERMINATED", "ERROR"):
        return "error" if trial.status == "ERROR" else status_of(trial, last)[0]
    return trial.status.lower()
