"""`sksearch status`: a sweep's counts by state, best trial so far and elapsed time, read from its
plan, its table and Ray's experiment state (no Ray process needed).

Each trial is counted once: by its table row when it has one (final), else by Ray's state. Ray's
`pending`, `running` and `paused` read `interrupted` when no driver is alive (the run folder's
driver.json names the driver's host and pid while it runs). Trials the search has not created yet
count as `not started`, so that the counts add up to the sweep's trials.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sksearch.files import atomic_write_text, is_uri
from sksearch.runfiles import ray_trial_states, read_complete_trials
from sksearch.schema import best_trial, results_of
from sksearch.search.plan import load_plan

DRIVER = "driver.json"
UNFINISHED = ("pending", "running", "paused")


def sweep_status(run_dir: str) -> dict[str, Any]:
    """Counts by state, best so far, and time: `elapsed_s` since the sweep was planned, up to its
    end (`ended`: its last trial's end, from the table's `finished_at`) once no driver runs it.
    A table from before end times were kept has no end: `ended` and `elapsed_s` are None, and
    `trials_time_s` (the trials' own seconds, summed) is what is known."""
    plan = load_plan(run_dir)
    table = read_complete_trials(run_dir)
    ray_states = ray_trial_states(run_dir)
    recorded = dict(zip(table["trial_id"], table["status"], strict=True)) if len(table) else {}
    alive = driver_alive(run_dir)
    states: dict[str, int] = {}
    for state in {**ray_states, **recorded}.values():
        state = state if alive or state not in UNFINISHED else "interrupted"
        states[state] = states.get(state, 0) + 1
    total = max(plan.total_trials, sum(states.values()))  # an extended sweep's table is the union
    if total > sum(states.values()):
        states["not started"] = total - sum(states.values())
    metric, mode = plan.objectives[0]
    best = None
    finished = results_of(table)
    if len(finished):
        row = best_trial(finished, metric, mode)
        best = {"trial_id": row["trial_id"], "archid": row["archid"], metric: float(row[metric])}
    created = datetime.fromisoformat(plan.created)
    ended = None if alive else _last_end(table)
    elapsed = ((ended or datetime.now(timezone.utc)) - created).total_seconds() if alive or ended else None
    return {
        "sweep": plan.name,
        "space": plan.space_file,
        "states": states,
        "trials": total,
        "driver_alive": alive,
        "resumable": not alive and (states.get("interrupted", 0) > 0 or driver_killed(run_dir)),
        "best": best,
        "objective": f"{metric}:{mode}",
        "elapsed_s": elapsed,
        "ended": ended.isoformat(timespec="seconds") if ended else None,
        "trials_time_s": float(table["wall_time"].sum()) if "wall_time" in table else 0.0,
        "rows": len(table),
    }


def _last_end(table) -> datetime | None:
    """When the last trial of the table ended (None for a table without end times)."""
    if "finished_at" not in table or table["finished_at"].isna().all():
        return None
    return datetime.fromtimestamp(float(table["finished_at"].max()), timezone.utc)


# -- the driver marker: who runs the sweep now ------------------------------------------------


def mark_driver(run_dir: str) -> None:
    """Record this process as the sweep's driver (local run folders only)."""
    if not is_uri(run_dir):
        atomic_write_text(os.path.join(run_dir, DRIVER), json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))


def unmark_driver(run_dir: str) -> None:
    if not is_uri(run_dir):
        with contextlib.suppress(OSError):  # a read-only folder keeps it: status checks the pid is alive
            Path(run_dir, DRIVER).unlink(missing_ok=True)


def driver_killed(run_dir: str) -> bool:
    """Whether the sweep's driver died without ending it: its marker is left and it is not alive
    (a driver that ends, finished or interrupted, takes its marker away)."""
    return not is_uri(run_dir) and Path(run_dir, DRIVER).exists() and not driver_alive(run_dir)


def driver_alive(run_dir: str) -> bool:
    """Whether a driver runs the sweep: its marker exists and, on this host, its process lives
    (on another host the marker is trusted). At a URI: unknown, taken as alive."""
    if is_uri(run_dir):
        return True
    try:
        driver = json.loads(Path(run_dir, DRIVER).read_text())
    except (OSError, ValueError):
        return False
    if driver.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(driver["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
