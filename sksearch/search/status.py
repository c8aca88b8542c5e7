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
from sksearch.table import read_trials


def sweep_status(run_dir: str) -> dict[str, Any]:
    """Counts by state, best so far, elapsed time, from the plan, the table and Ray's state."""
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
    return {
        "sweep": plan.name,
        "space": plan.space_file,
        "states": states,
        "best": best,
        "objective": f"{metric}:{mode}",
        "elapsed_s": (datetime.now(timezone.utc) - created).total_seconds(),
        "rows": len(table),
    }


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
