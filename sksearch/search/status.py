"""`sksearch status`: a sweep's counts by state, best trial so far and elapsed time, read from its
plan, its table and Ray's experiment state (no Ray process needed).
"""

from __future__ import annotations

import glob
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sksearch.files import is_uri
from sksearch.schema import best_trial
from sksearch.search.plan import load_plan
from sksearch.table import TRIALS, read_trials


def sweep_status(run_dir: str) -> dict[str, Any]:
    """Counts by state, best so far, and time: `elapsed_s` since the sweep was planned, up to its
    end (`ended`, the last table write) once no trial is pending, running or paused."""
    plan = load_plan(run_dir)
    table = read_trials(run_dir)
    states = _ray_states(run_dir)
    for status in table["status"] if len(table) else []:
        states[status] = states.get(status, 0) + 1
    metric, mode = plan.objectives[0]
    best = None
    finished = table[table["status"] == "completed"] if len(table) else table
    if len(finished):
        row = best_trial(finished, metric, mode)
        best = {"trial_id": row["trial_id"], "archid": row["archid"], metric: float(row[metric])}
    created = datetime.fromisoformat(plan.created)
    ended = _ended(run_dir, states)
    return {
        "sweep": plan.name,
        "space": plan.space_file,
        "states": states,
        "best": best,
        "objective": f"{metric}:{mode}",
        "elapsed_s": ((ended or datetime.now(timezone.utc)) - created).total_seconds(),
        "ended": ended.isoformat(timespec="seconds") if ended else None,
        "rows": len(table),
    }


def _ended(run_dir: str, states: dict[str, int]) -> datetime | None:
    """When a sweep with no trial pending, running or paused last wrote its table (None while one
    is, or for a sweep at a URI): the run's end, so its duration stops growing."""
    table = os.path.join(run_dir, TRIALS)
    if is_uri(run_dir) or any(states.get(state) for state in ("pending", "running", "paused")):
        return None
    return datetime.fromtimestamp(os.path.getmtime(table), timezone.utc) if os.path.exists(table) else None


def _ray_states(run_dir: str) -> dict[str, int]:
    """Trials Ray knows but the table does not yet hold (pending, running, paused)."""
    if is_uri(run_dir):
        return {}
    files = sorted(glob.glob(os.path.join(run_dir, "experiment_state-*.json")))
    if not files:
        return {}
    state = json.loads(Path(files[-1]).read_text())
    counts: dict[str, int] = {}
    for entry in state.get("trial_data", []):
        trial_json = json.loads(entry[0]) if isinstance(entry, list) else entry
        status = str(trial_json.get("status", "")).lower()
        if status in ("pending", "running", "paused"):
            counts[status] = counts.get(status, 0) + 1
    return counts
