"""How sure a comparison of designs is: seed-paired differences with 95% intervals.

An ablation answer is a difference between two networks that differ in one knob. Trained with the
same seeds on the same data, their runs pair by seed, and the paired differences carry the noise
of the comparison. For each pair this module gives the mean difference, its t interval, whether
the interval excludes zero, and how many seeds would make the observed gap resolvable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sksearch.validation import ConfigError

CONFIDENCE = 0.95
MAX_SEEDS = 10_000  # beyond this, "seeds to resolve" reads as never


def t_quantile(n: int) -> float:
    """The two-sided t quantile of a CONFIDENCE interval on the mean of n values."""
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))


def seeds_to_resolve(mean: float, std: float) -> int | None:
    """The fewest paired seeds whose interval would exclude zero if the mean and spread stayed as
    observed; None when no number up to MAX_SEEDS would (a zero or tiny gap)."""
    if mean == 0 or math.isnan(mean) or math.isnan(std):
        return None
    if std == 0:
        return 2
    low, high = 2, MAX_SEEDS
    if t_quantile(high) * std / math.sqrt(high) >= abs(mean):
        return None
    while low < high:  # the half-width shrinks as n grows
        middle = (low + high) // 2
        if t_quantile(middle) * std / math.sqrt(middle) < abs(mean):
            high = middle
        else:
            low = middle + 1
    return low


def paired_summary(differences: Sequence[float]) -> dict[str, Any]:
    """Mean, std, n, the CONFIDENCE interval, whether it excludes zero, and the seeds needed.
    With one difference no interval is possible: the interval is NaN and `resolved` is None."""
    values = np.asarray(differences, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        no_interval = dict.fromkeys(("diff_std", "ci_low", "ci_high"), math.nan)
        return {"n": n, "diff": mean, **no_interval, "resolved": None, "seeds_to_resolve": None}
    std = float(values.std(ddof=1))
    half = t_quantile(n) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    return {
        "n": n,
        "diff": mean,
        "diff_std": std,
        "ci_low": low,
        "ci_high": high,
        "resolved": bool(low > 0 or high < 0),
        "seeds_to_resolve": seeds_to_resolve(mean, std),
    }


def seed_differences(first: pd.DataFrame, second: pd.DataFrame, metric: str) -> pd.Series:
    """second - first, per seed both ran (the mean of a seed's runs where one ran it twice)."""
    by_seed = [trials.groupby("seed")[metric].mean() for trials in (first, second)]
    common = by_seed[0].index.intersection(by_seed[1].index)
    return (by_seed[1][common] - by_seed[0][common]).sort_index()


def verdict(summary: dict[str, Any], lower: str, higher: str) -> str:
    if summary["n"] < 2:
        return "one seed: no interval"
    if not summary["resolved"]:
        return "within noise"
    return lower if summary["diff"] < 0 else higher


def kendall_tau(ours: Sequence[float], published: Sequence[float]) -> tuple[float, int]:
    """Rank agreement of our row order with the paper's (1: same order, -1: reversed), and n."""
    pairs = [(a, b) for a, b in zip(ours, published, strict=True) if not (pd.isna(a) or pd.isna(b))]
    if len(pairs) < 2:
        return math.nan, len(pairs)
    tau = stats.kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return float(tau), len(pairs)


# -- comparing the networks of a sweep that differ in one knob ---------------------------------------


# Recipe fields that say where a run trained, not how: runs that differ only in them compare.
PLACEMENT_FIELDS = ("threads", "workers", "device")


def recipe_key(recipe_json: Any, ignore: Sequence[str] = ()) -> str:
    """A recipe's fingerprint without its seed and placement (and `ignore`d fields, e.g. swept ones)."""
    if not isinstance(recipe_json, str) or not recipe_json:
        return ""
    data = json.loads(recipe_json)
    for name in ("seed", *PLACEMENT_FIELDS, *ignore):
        data.pop(name, None)
    return json.dumps(data, sort_keys=True)


def _ordered_values(values: pd.Series) -> list[Any]:
    """Booleans as (False, True), so that a difference reads "with minus without"; others sorted."""
    distinct = list(pd.unique(values.dropna()))
    return sorted(distinct, key=lambda value: (not isinstance(value, bool), str(value)))


def _label(key: tuple, columns: Sequence[str]) -> str:
    """`branches=K3+K5`: the values the paired networks share (columns a run does not have left out)."""
    shown = [f"{column}={value}" for column, value in zip(columns, key, strict=True) if value not in ("nan", "None")]
    return ", ".join(shown) or "all"


def compare_knob(
    frame: pd.DataFrame,
    knob: str,
    design_columns: Sequence[str],
    metrics: Sequence[str],
    published: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (pair of networks differing only in `knob`, metric), then one `overall` row per
    (pair of knob values, metric) pooling every seed-paired difference of those pairs.

    `design_columns` are the columns that describe a network (the sweep's knobs); two networks
    differ only in `knob` when they agree on every other one. Differences are value_b - value_a,
    paired by seed. `published` maps archids to the paper's top-1 error, for the paper's difference.
    """
    others = [column for column in design_columns if column != knob]
    groups = frame[others].astype(str).agg(tuple, axis=1) if others else pd.Series([()] * len(frame), frame.index)
    values = _ordered_values(frame[knob])
    rows: list[dict[str, Any]] = []
    pooled: dict[tuple, list[float]] = {}
    for group_key, group in frame.groupby(groups, sort=False):
        label = _label(group_key, others)
        for index, value_a in enumerate(values):
            for value_b in values[index + 1 :]:
                for pair in _pairs(group, knob, value_a, value_b):
                    for metric in metrics:
                        differences = seed_differences(pair["a"], pair["b"], metric)
                        if differences.empty:
                            continue
                        pooled.setdefault((value_a, value_b, metric), []).extend(differences.tolist())
                        row = _comparison_row(label, knob, value_a, value_b, metric, differences.tolist())
                        row.update(archid_a=pair["archid_a"], archid_b=pair["archid_b"])
                        if published and metric == "top1_err" and {row["archid_a"], row["archid_b"]} <= set(published):
                            row["published_diff"] = published[row["archid_b"]] - published[row["archid_a"]]
                        rows.append(row)
    for (value_a, value_b, metric), differences in pooled.items():
        rows.append(_comparison_row("overall", knob, value_a, value_b, metric, differences))
    return pd.DataFrame(rows)


def _pairs(group: pd.DataFrame, knob: str, value_a: Any, value_b: Any) -> list[dict[str, Any]]:
    """The networks of a group with knob = value_a against those with value_b, each pair once.
    A pair with one archid is no pair: the knob does not change that network (attention with M = 1)."""
    side_a, side_b = group[group[knob] == value_a], group[group[knob] == value_b]
    return [
        {"archid_a": archid_a, "a": trials_a, "archid_b": archid_b, "b": trials_b}
        for archid_a, trials_a in side_a.groupby("archid", sort=False)
        for archid_b, trials_b in side_b.groupby("archid", sort=False)
        if archid_a != archid_b
    ]


def _comparison_row(pair: str, knob: str, value_a: Any, value_b: Any, metric: str, differences: list[float]) -> dict:
    summary = paired_summary(differences)
    lower, higher = f"{knob}={value_b} lower", f"{knob}={value_b} higher"
    identity = {"pair": pair, "knob": knob, "value_a": value_a, "value_b": value_b, "archid_a": "", "archid_b": ""}
    return {**identity, "metric": metric, **summary, "verdict": verdict(summary, lower, higher)}


def check_single_recipe(frame: pd.DataFrame, swept: Sequence[str]) -> None:
    """Refuse to compare runs trained under different recipes (beyond the seed and swept knobs)."""
    keys = frame["recipe_json"].map(lambda text: recipe_key(text, swept)) if "recipe_json" in frame else None
    if keys is not None and keys.nunique() > 1:
        names = sorted(set(frame.get("recipe", pd.Series(["?"])).astype(str)))
        detail = f"recipes {', '.join(names)}" if len(names) > 1 else f"differently configured {names[0]} recipes"
        raise ConfigError("RUN_DIR", f"the runs mix {detail}; compare runs trained under one recipe")
