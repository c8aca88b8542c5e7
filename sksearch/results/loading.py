"""The merged results table of one or more sweeps, queries on it, and the sweeps' own data."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sksearch.files import join, read_bytes
from sksearch.results.conditions import filter_rows
from sksearch.runfiles import PLAN, TRIALS, check_sweep_folders, read_complete_trials, read_history
from sksearch.schema import parse_objectives, with_spec_columns
from sksearch.validation import ConfigError


def load_results(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """The trials of one or more sweeps as one table (a `sweep` column tells them apart)."""
    locations = [str(run_dir) for run_dir in run_dirs]
    check_sweep_folders(locations)
    frames = []
    for location in locations:
        frame = read_complete_trials(location)
        if len(frame):
            frame["run_dir"] = location
            frames.append(frame)
    if not frames:
        raise ConfigError("RUN_DIR", f"no finished trial yet (no rows in {TRIALS})")
    return with_spec_columns(pd.concat(frames, ignore_index=True, sort=False))


def query(frame: pd.DataFrame, where: str | None = None, sort: str | None = None) -> pd.DataFrame:
    """Rows matching a condition (sksearch.results.conditions), sorted by a column (`column:desc`
    for descending)."""
    if where:
        frame = filter_rows(frame, where)
    if sort:
        column, _, order = sort.partition(":")
        if column not in frame:
            raise ConfigError("--sort", f"no column {column!r}")
        if order not in ("", "asc", "desc"):
            raise ConfigError("--sort", f"order must be asc or desc, got {order!r}")
        frame = frame.sort_values(column, ascending=order != "desc", kind="stable")
    return frame


def sweep_objectives(run_dirs: Iterable[str | Path]) -> list[str]:
    """The objective metrics of the sweeps' plans (sweep.json, read without Ray), in order, each once."""
    names: list[str] = []
    for run_dir in run_dirs:
        search = json.loads(read_bytes(join(str(run_dir), PLAN)))["space"].get("search", {})
        for name, _ in parse_objectives(search.get("objectives", ["top1_err:min"]), f"{run_dir}/{PLAN}"):
            names += [] if name in names else [name]
    return names


def learning_curves(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    frames = [read_history(str(run_dir)) for run_dir in run_dirs]
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
