"""Pareto fronts on seed means, their hypervolume against a stated reference, and the knee."""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np
import pandas as pd

from sksearch.recipes import recipe_identity
from sksearch.schema import FRONT_SIZES, network_names, objective_signs, parse_objectives, results_of

Objectives = Sequence[tuple[str, str]]


def seed_means(frame: pd.DataFrame, objectives: Objectives) -> pd.DataFrame:
    """One point per network and recipe: the mean of each objective over its seeds, with std and n,
    and a readable `name` (schema.network_names). Only completed trials with every objective count."""
    names = [name for name, _ in objectives]
    usable = results_of(frame).dropna(subset=names).copy()
    if usable.empty:
        return usable
    usable["recipe_key"] = usable.get("recipe_json", pd.Series("", index=usable.index)).map(recipe_identity)
    grouped = usable.groupby(["archid", "recipe_key"], sort=False)
    points = grouped.first().reset_index()
    for name in names:
        points[name] = grouped[name].mean().to_numpy()
        points[f"{name}_std"] = grouped[name].std(ddof=1).fillna(0.0).to_numpy()
    points["n"] = grouped.size().to_numpy()
    points["trial_ids"] = grouped["trial_id"].agg(list).to_numpy() if "trial_id" in usable else [[]] * len(points)
    points["name"] = network_names(points)
    return points.drop(columns=["recipe_key"])


def as_minimised(frame: pd.DataFrame, objectives: Objectives) -> np.ndarray:
    return np.column_stack([frame[name].to_numpy(float) for name, _ in objectives]) * objective_signs(objectives)


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (all <=, one <), all objectives minimised;
    ties stay on the front."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return moocore.is_nondominated(values, keep_weakly=True)


def pareto(frame: pd.DataFrame, objectives: Objectives | str) -> pd.DataFrame:
    """The non-dominated networks, on seed means (each point with <objective>_std and n), sorted by
    the first objective. Failed, stopped and errored trials, and rows missing an objective, are out."""
    if isinstance(objectives, str):
        objectives = parse_objectives(objectives, "--objectives", frame, FRONT_SIZES)
    points = seed_means(frame, objectives)
    if points.empty:
        return points
    front = points[non_dominated(as_minimised(points, objectives))]
    first, mode = objectives[0]
    return front.sort_values(first, ascending=mode == "min", kind="stable").reset_index(drop=True)


def default_reference(frame: pd.DataFrame, objectives: Objectives) -> list[float]:
    """The worst value of each objective among the usable points, 10% of its range beyond it."""
    values = as_minimised(seed_means(frame, objectives), objectives)
    worst, best = values.max(axis=0), values.min(axis=0)
    margin = np.where(worst > best, 0.1 * (worst - best), np.maximum(np.abs(worst) * 0.1, 1e-9))
    return [float(v) for v in (worst + margin) * objective_signs(objectives)]


def hypervolume(front: pd.DataFrame, objectives: Objectives, reference: Sequence[float]) -> float:
    """The volume the front dominates, bounded by `reference` (in each objective's own units)."""
    bound = np.asarray(reference, dtype=float) * objective_signs(objectives)
    return minimised_hypervolume(as_minimised(front, objectives), bound)


def within_reference(front: pd.DataFrame, objectives: Objectives, reference: Sequence[float]) -> np.ndarray:
    """Which points are better than `reference` in every objective: only they add hypervolume."""
    bound = np.asarray(reference, dtype=float) * objective_signs(objectives)
    return np.all(as_minimised(front, objectives) < bound, axis=1)


def minimised_hypervolume(points: np.ndarray, bound: np.ndarray) -> float:
    """The volume that points (every objective minimised) dominate up to `bound`: only points
    better than it in every objective add to it; 0 for none."""
    inside = points[np.all(points < bound, axis=1)]
    return float(moocore.hypervolume(inside, ref=bound)) if len(inside) else 0.0


def knee(front: pd.DataFrame, objectives: Objectives) -> int:
    """Index (in `front`) of the knee: the point nearest the ideal corner once every objective is
    scaled to [0, 1] over the front."""
    values = as_minimised(front, objectives)
    low, high = values.min(axis=0), values.max(axis=0)
    scaled = (values - low) / np.where(high > low, high - low, 1.0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))
