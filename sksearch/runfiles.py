"""The results table of a sweep: one row per trial, and one per trial-epoch for learning curves.

Files in a sweep's run folder (a local path or a URI): `sweep.json` (the plan, to resume from),
`trials.parquet` and `history.parquet`, each rewritten whole and atomically, and `driver.log`
(Tune's log lines, kept off the terminal).

Row statuses: `completed`; `failed` (the trial ended itself, e.g. diverged: `reason` says why);
`stopped` (early-stopped by ASHA/HyperBand); `error` (crashed after all retries: Ray's error; its
metrics are blank, since its last epoch is not a result, and `epochs` says how far it got).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from sksearch.files import exists, is_uri, join, read_bytes, write_bytes
from sksearch.schema import FINAL_METRICS, RUN_REPORTS, spec_columns
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError, first_line

TRIALS = "trials.parquet"
HISTORY = "history.parquet"
PLAN = "sweep.json"
DRIVER_LOG = "driver.log"  # Tune's own log lines of the sweep (tracebacks of crashed trials)

HISTORY_COLUMNS = ("epoch", "train_loss", "top1_err", "top5_err", "raw_top1_err", "raw_top5_err", "lr", "epoch_time",
                   "images_per_s")  # fmt: skip


def trial_row(
    *,
    sweep: str,
    trial_id: str,
    point: Mapping[str, Any],
    seed: int,
    spec: NetSpec,
    params: int,
    macs: int,
    recipe: Mapping[str, Any],
    last: Mapping[str, Any],
    status: str,
    reason: str,
    checkpoint: str | None,
) -> dict[str, Any]:
    """One trial as a row: identity, knobs, spec, recipe, final and best metrics, complexity
    (sksearch.schema says what each column means)."""
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "sweep": sweep,
        "status": status,
        "reason": reason,
        "archid": spec.archid,
        **dict(point),
        **{name: value for name, value in spec_columns(spec).items() if name not in point},
        "recipe": recipe.get("name", ""),
        "seed": seed,
        "params": params,
        "params_m": params / 1e6,
        "macs": macs,
        "gmacs": macs / 1e9,
        "epochs": int(last.get("epoch", 0) or 0),
        "wall_time": float(last.get("time_total_s", 0.0) or 0.0),
        "finished_at": float(last["timestamp"]) if last.get("timestamp") else None,
        "checkpoint": checkpoint,
        "spec": json.dumps(spec.to_dict(), sort_keys=True),
        "recipe_json": json.dumps(dict(recipe), sort_keys=True),
    }
    for name in FINAL_METRICS + RUN_REPORTS:
        row[name] = last.get(name)
    if status == "error":  # an unfinished trial's last epoch is not a result: `epochs` says how far it got
        row.update(dict.fromkeys(FINAL_METRICS))
    return row


def write_frame(location: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(location, buffer.getvalue())


def read_frame(location: str) -> pd.DataFrame:
    """A Parquet table; a damaged one is refused in one line that says how to rebuild it."""
    try:
        return pd.read_parquet(io.BytesIO(read_bytes(location)))
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        run_dir = location.rsplit("/", 1)[0]
        raise ConfigError(location, f"is damaged ({first_line(error)}); `sksearch repair {run_dir}` rebuilds it "
                          "from Ray's records of the trials") from None  # fmt: skip


def write_trials(run_dir: str, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rewrite the table with `rows` (one per trial id), ordered by trial id."""
    frame = pd.DataFrame(list(rows))
    if len(frame):
        frame = frame.sort_values("trial_id", kind="stable").reset_index(drop=True)
    write_frame(join(run_dir, TRIALS), frame)
    return frame


def read_trials(run_dir: str) -> pd.DataFrame:
    location = join(run_dir, TRIALS)
    return read_frame(location) if exists(location) else pd.DataFrame()


def write_history(run_dir: str, rows: Iterable[Mapping[str, Any]]) -> None:
    write_frame(join(run_dir, HISTORY), pd.DataFrame(list(rows)))


def read_history(run_dir: str) -> pd.DataFrame:
    location = join(run_dir, HISTORY)
    return read_frame(location) if exists(location) else pd.DataFrame()


def check_sweep_folders(locations: Iterable[str]) -> None:
    """Refuse, in one line, a folder that does not exist or is not a sweep's, or one given twice;
    cheap, so that a verb refuses a mistyped folder before it loads what it works with."""
    seen: dict[str, str] = {}
    for location in map(str, locations):
        same = location if is_uri(location) else os.path.realpath(location)
        if same in seen:
            raise ConfigError("RUN_DIR", f"{location} is given twice (as {seen[same]}); each sweep counts once")
        seen[same] = location
        if not is_uri(location) and not os.path.exists(location):
            raise ConfigError(location, "does not exist")
        if not exists(join(location, PLAN)):
            raise ConfigError(location, f"is not a sksearch sweep folder (no {PLAN})")


def damaged_tables(run_dir: str) -> list[str]:
    """The run folder's tables that exist but cannot be read."""
    damaged = []
    for name in (TRIALS, HISTORY):
        try:
            read_frame(join(run_dir, name)) if exists(join(run_dir, name)) else None
        except ConfigError:
            damaged.append(name)
    return damaged


def ray_trials(run_dir: str) -> list:
    """Ray's trials of a run as its last saved experiment state holds them, through Ray's public
    ExperimentAnalysis, without its warning for every trial that has no results yet. Raises what
    Ray raises for a folder without (readable) state."""
    from ray.tune import ExperimentAnalysis

    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return ExperimentAnalysis(run_dir if is_uri(run_dir) else os.path.abspath(run_dir)).trials
    finally:
        quiet.setLevel(level)


def ray_trial_states(run_dir: str) -> dict[str, str]:
    """{trial id: pending, running, paused, finished or error} from Ray's last saved experiment
    state; {} when there is none or it is damaged."""
    names = {"terminated": "finished"}
    try:
        trials = ray_trials(run_dir)
    except Exception:  # no state (yet), or one Ray is rewriting: its own resume says if it is damaged
        return {}
    return {trial.trial_id: names.get(trial.status.lower(), trial.status.lower()) for trial in trials}


def read_complete_trials(run_dir: str) -> pd.DataFrame:
    """The table, refused in one line when it lacks trials Ray recorded as finished (deleted or
    replaced by an older copy): a table that silently lacks results would mislead every verb."""
    table = read_trials(run_dir)
    recorded = set(table["trial_id"]) if len(table) else set()
    lacking = [t for t, state in ray_trial_states(run_dir).items() if state == "finished" and t not in recorded]
    if lacking:
        raise ConfigError(join(run_dir, TRIALS), f"lacks {len(lacking)} trials Ray recorded as finished (deleted?); "
                          f"`sksearch repair {run_dir}` rebuilds it from Ray's records")  # fmt: skip
    return table
