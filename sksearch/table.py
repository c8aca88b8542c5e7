"""The results table of a sweep: one row per trial, and one per trial-epoch for learning curves.

Files in a sweep's run folder (a local path or a URI): `sweep.json` (the plan, to resume from),
`trials.parquet` and `history.parquet`, each rewritten whole and atomically.

Row statuses: `completed`; `failed` (the trial ended itself, e.g. diverged: `reason` says why);
`stopped` (early-stopped by ASHA/HyperBand); `error` (crashed after all retries: Ray's error).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from sksearch.files import exists, join, read_bytes, write_bytes
from sksearch.schema import FINAL_METRICS, RUN_REPORTS, spec_columns
from sksearch.spec import NetSpec

TRIALS = "trials.parquet"
HISTORY = "history.parquet"
PLAN = "sweep.json"

HISTORY_COLUMNS = ("epoch", "train_loss", "top1_err", "top5_err", "lr", "epoch_time", "images_per_s")


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
        "checkpoint": checkpoint,
        "spec": json.dumps(spec.to_dict(), sort_keys=True),
        "recipe_json": json.dumps(dict(recipe), sort_keys=True),
    }
    for name in FINAL_METRICS + RUN_REPORTS:
        row[name] = last.get(name)
    return row


def write_frame(location: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(location, buffer.getvalue())


def read_frame(location: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(read_bytes(location)))


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
