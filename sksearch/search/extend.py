"""Extending a finished sweep: more samples, new knob values or more seeds. The extension runs as
a sweep of its own (`<name>.extend<k>` beside the original) that the trial store answers for every
network already run, so only new networks are trained; the original's table and history become
the union. Ray is imported only when something is left to train."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from sksearch.files import atomic_write_text, check_writable_folder, is_uri
from sksearch.runfiles import PLAN, read_complete_trials, read_history, write_history, write_trials
from sksearch.search.plan import SweepPlan, check_search, load_plan_here, space_mapping
from sksearch.search.spacefile import parse_space
from sksearch.search.store import Record, Store, trial_key
from sksearch.validation import ConfigError
from sksearch.yamlfiles import read_yaml_file


def plan_extension(
    run_dir: str,
    *,
    space_file: str | None = None,
    num_samples: int | None = None,
    seeds: list[int] | None = None,
) -> tuple[SweepPlan, SweepPlan]:
    """(the sweep, its extension's plan): the new space (or the sweep's own) under the sweep's
    recipe, with the overrides, checked before anything runs."""
    if is_uri(run_dir):
        raise ConfigError(run_dir, "extending a sweep at a URI is not supported; extend a local copy")
    plan = load_plan_here(run_dir)
    check_writable_folder(plan.storage, run_dir)  # the extension is written beside the sweep
    data: dict[str, Any] = dict(read_yaml_file(space_file, space_mapping)) if space_file else dict(plan.space_data)
    data["recipe"] = plan.space_data["recipe"]  # the sweep's recipe: old and new trials stay comparable
    search = dict(data.get("search", plan.space_data.get("search", {})))
    search.update({k: v for k, v in {"num_samples": num_samples, "seeds": seeds}.items() if v is not None})
    data["search"] = search
    parse_space(data, default_name=plan.name, source=space_file or plan.space_file)
    taken = {path.name for path in Path(plan.storage).glob(f"{plan.name}.extend*")}
    name = next(f"{plan.name}.extend{k}" for k in range(1, len(taken) + 2) if f"{plan.name}.extend{k}" not in taken)
    extension = dataclasses.replace(
        plan,
        name=name,
        space_data=data,
        space_file=space_file or plan.space_file,
        reuse=True,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    check_search(extension)
    return plan, extension


MERGED = ".merged"  # in an extension's folder once its rows are in the original's table


def unfinished_extensions(plan: SweepPlan) -> list[SweepPlan]:
    """Extensions of this sweep that were started and never merged (their driver was killed): the
    next `extend` continues them instead of training their networks again under a new name."""
    table = read_complete_trials(plan.run_dir)
    merged_sweeps = set(table["sweep"]) if len(table) else set()  # extensions merged before the marker existed
    found = []
    for folder in sorted(Path(plan.storage).glob(f"{plan.name}.extend*")):
        if (folder / PLAN).is_file() and not (folder / MERGED).exists() and folder.name not in merged_sweeps:
            found.append(load_plan_here(str(folder)))
    return found


def mark_merged(extension: SweepPlan) -> None:
    atomic_write_text(Path(extension.run_dir) / MERGED, "")


def record_own_trials(plan: SweepPlan) -> int:
    """Put the sweep's finished trials into the store (a sweep run before the store existed has
    none there), so that the extension answers them instead of training them again."""
    table = read_complete_trials(plan.run_dir)
    history = read_history(plan.run_dir)
    store, written = Store(plan.store_location), 0
    for row in table.to_dict("records") if len(table) else []:
        if row.get("status") not in ("completed", "failed", "stopped") or _reused(row):
            continue  # a reused row is another sweep's trial, already recorded
        knobs = {
            knob.name: row[knob.name] for knob in plan.space.knobs if knob.name in row and not pd.isna(row[knob.name])
        }
        point, seed = plan.space.point_of(knobs), int(row["seed"])
        key = trial_key(plan.space.candidate(point).spec, plan.recipe_for(point, seed))
        if not any(r.source == f"{row['sweep']}/{row['trial_id']}" for r in store.records(key)):
            epochs = history[history["trial_id"] == row["trial_id"]].to_dict("records") if len(history) else []
            store.put(Record(key, row, tuple(epochs)))
            written += 1
    return written


def merge_extension(plan: SweepPlan, extension: SweepPlan, added: pd.DataFrame) -> pd.DataFrame:
    """The sweep's table and history become the union: the extension's rows, except those the
    store answered from this very sweep's own trials."""
    table = read_complete_trials(plan.run_dir)
    own = {f"{row['sweep']}/{row['trial_id']}" for row in table.to_dict("records")} if len(table) else set()
    sources = added["reused_from"] if "reused_from" in added else pd.Series("", index=added.index)
    new = added[~sources.isin(own)]
    if len(table):  # rows already merged (an extension continued after its merge) count once
        new = new[~new["trial_id"].isin(set(table["trial_id"]))]
    union = pd.concat([table, new], ignore_index=True, sort=False) if len(table) else new
    write_trials(plan.run_dir, union.to_dict("records"))
    history = read_history(extension.run_dir)
    if len(history):
        history = history[history["trial_id"].isin(set(new["trial_id"]))]
        write_history(
            plan.run_dir, pd.concat([read_history(plan.run_dir), history], ignore_index=True).to_dict("records")
        )
    return union


def _reused(row: dict[str, Any]) -> bool:
    """A row answered from another sweep's trial (`reused_from` set; a missing one reads as None or NaN)."""
    source = row.get("reused_from")
    return isinstance(source, str) and bool(source)
