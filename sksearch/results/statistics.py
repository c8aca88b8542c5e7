"""How sure a comparison of designs is: intervals that keep their 95%, and the seeds 80% power needs.

An ablation answer is a difference between two networks that differ in one knob. Trained with the
same seeds on the same data, their runs pair by seed. Per pair of networks: the mean of the
seed-paired differences, its t interval and p-value, and the seeds a paired t test needs for 80%
power (or the power asked for), as a range, since a spread from a few seeds is itself uncertain. A
column that does not vary between seeds (params, MACs) gets its exact difference, no interval.

Over many pairs (the `overall` answer), the differences d[p, s] of pair p and seed s share two
kinds of noise: a seed sets the data order and initialisation of every pair's runs (a seed effect
shared across pairs), and pairs differ among themselves (a pair effect). Pooling the differences
as independent ignores both and gives intervals far too narrow. The answer is the effect over the
population of pairs under crossed random pair and seed effects, d = effect + a[p] + b[s] + e[p, s],
estimated from the balanced two-way ANOVA of the complete pairs x seeds table: the grand mean, with
Var = (MS_pair + MS_seed - MS_error) / (P S) and Satterthwaite's degrees of freedom (if the
combination is not positive, the larger of MS_pair and MS_seed stands alone). benchmarks/
calibrate_intervals.py measures its coverage on simulated tables (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sksearch.recipes import recipe_identity
from sksearch.schema import seed_free
from sksearch.validation import ConfigError

CONFIDENCE = 0.95
POWER = 0.8
MAX_SEEDS = 10_000  # beyond this, "seeds for 80% power" reads as never
CROSSED_MODEL = "crossed random pair and seed effects (two-way ANOVA, Satterthwaite df)"


def t_quantile(df: float) -> float:
    """The two-sided t quantile of a CONFIDENCE interval with `df` degrees of freedom."""
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def seeds_for_power(effect: float, std: float, power: float = POWER) -> int | None:
    """The paired seeds a two-sided 5% paired t test needs to detect `effect` with `power`, when a
    seed's difference has spread `std`; None when no number up to MAX_SEEDS would (or no effect)."""
    from statsmodels.stats.power import TTestPower

    if not effect or math.isnan(effect) or math.isnan(std):
        return None
    if std == 0:
        return 2
    size, test = abs(effect) / std, TTestPower()
    if test.power(size, MAX_SEEDS, 1 - CONFIDENCE) < power:
        return None
    # the normal approximation's n, then up or down to the smallest n whose t test reaches `power`
    n = max(2, math.ceil(((stats.norm.ppf(0.5 + CONFIDENCE / 2) + stats.norm.ppf(power)) / size) ** 2))
    while n > 2 and test.power(size, n - 1, 1 - CONFIDENCE) >= power:
        n -= 1
    while test.power(size, n, 1 - CONFIDENCE) < power:
        n += 1
    return n


def std_range(std: float, n: int) -> tuple[float, float]:
    """The CONFIDENCE interval of a spread estimated from n values (chi-square)."""
    low_q, high_q = stats.chi2.ppf([0.5 + CONFIDENCE / 2, 0.5 - CONFIDENCE / 2], n - 1)
    return std * math.sqrt((n - 1) / low_q), std * math.sqrt((n - 1) / high_q)


def pooled_seed_std(frame: pd.DataFrame, metric: str, by: str = "archid") -> tuple[float, int]:
    """A run's std over seeds, pooled over the groups of `by` run with two seeds or more (each
    group's variance weighted by its degrees of freedom), and those degrees of freedom (runs less
    groups): the one noise figure behind `plan --pilot`, the proxy's targets and a benchmark's
    reliability. (nan, 0) when no group has two runs."""
    groups = [group.to_numpy(dtype=float) for _, group in frame.dropna(subset=[metric]).groupby(by)[metric]]
    repeated = [values for values in groups if len(values) >= 2]
    if not repeated:
        return math.nan, 0
    dof = sum(len(values) - 1 for values in repeated)
    pooled = sum(values.var(ddof=1) * (len(values) - 1) for values in repeated) / dof
    return math.sqrt(pooled), dof


def power_columns(
    effect: float, std: float, n: int, named_effect: float | None = None, power: float | None = POWER
) -> dict[str, Any]:
    """Seeds for `power` at the observed effect and spread, as a range over the spread's own
    interval (`_low` at its low end), and (with `named_effect`) for an effect the user names.
    None as the power: no columns (a caller that wants intervals alone)."""
    if power is None:
        return {}
    low_std, high_std = std_range(std, n) if n >= 2 and std > 0 else (std, std)
    columns = {}
    for prefix, size in (("seeds_power", effect), ("seeds_for_effect", named_effect)):
        if size is not None:
            columns[prefix] = seeds_for_power(size, std, power)
            columns[f"{prefix}_low"] = seeds_for_power(size, low_std, power)
            columns[f"{prefix}_high"] = seeds_for_power(size, high_std, power)
    return columns


def paired_summary(
    differences: Sequence[float], named_effect: float | None = None, power: float | None = POWER, exact: bool = False
) -> dict[str, Any]:
    """Mean, std, n, the CONFIDENCE t interval and p-value, whether the interval excludes zero, and
    the seeds 80% power needs. With one difference no interval is possible (NaN, `resolved` None).
    `exact`: a column without seed noise (schema.seed_free): its difference, no interval."""
    values = np.asarray(differences, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    base = {"n": n, "diff": mean, "model": "seed-paired t"}
    if exact and n:
        return {**base, **_exact(mean)}
    if n < 2:
        return {**base, **_no_interval()}
    std = float(values.std(ddof=1))
    return {
        **base,
        **_interval(mean, std**2 / n, n - 1),
        "diff_std": std,
        "exact": False,
        **power_columns(mean, std, n, named_effect, power),
    }


def crossed_summary(
    differences: pd.DataFrame, named_effect: float | None = None, power: float | None = POWER, exact: bool = False
) -> dict[str, Any]:
    """The effect over the population of pairs from a pairs x seeds table of differences (rows:
    pairs, columns: seeds; seeds some pair lacks are left out), under crossed random pair and seed
    effects (the module's docstring). One pair: its seed-paired t summary."""
    table = differences.dropna(axis=1, how="any")
    pairs, seeds = table.shape
    if pairs == 1:
        return {**paired_summary(table.iloc[0].tolist(), named_effect, power, exact), "pairs": 1, "seeds": seeds}
    values = table.to_numpy(dtype=float)
    mean = float(values.mean())
    counts = {"n": values.size, "diff": mean, "pairs": pairs, "seeds": seeds, "model": CROSSED_MODEL}
    if exact:  # the mean over the pairs is all there is to it
        return {**counts, **_exact(mean)}
    if seeds < 2:
        return {**counts, **_no_interval()}
    ms_pair, ms_seed, ms_error = _mean_squares(values)
    terms = [(ms_pair, pairs - 1, 1.0), (ms_seed, seeds - 1, 1.0), (ms_error, (pairs - 1) * (seeds - 1), -1.0)]
    combined = ms_pair + ms_seed - ms_error
    if combined <= 0:
        terms = [max(terms[:2], key=lambda term: term[0])]
        combined = terms[0][0]
    df = combined**2 / sum((sign * ms) ** 2 / dof for ms, dof, sign in terms)
    # variance of the grand mean over S seeds = floor (pairs' own spread) + per_seed / S
    floor = max(ms_pair - ms_error, 0.0) / seeds / pairs
    per_seed = max(ms_seed - ms_error, 0.0) / pairs + ms_error / pairs
    low, high = (scale**2 for scale in std_range(1.0, seeds))
    return {
        **counts,
        **_interval(mean, combined / (pairs * seeds), df),
        "diff_std": float(values.std(ddof=1)),  # of single differences, for reading only
        "exact": False,
        **{f"{prefix}{end}": _seeds_crossed(size, floor * scale, per_seed * scale, power)
           for prefix, size in (("seeds_power", mean), ("seeds_for_effect", named_effect))
           if size is not None and power is not None
           for end, scale in (("", 1.0), ("_low", low), ("_high", high))},
    }  # fmt: skip


def _seeds_crossed(effect: float, floor: float, per_seed: float, power: float = POWER) -> int | None:
    """Seeds (each run by every pair) for `power` over these pairs: the normal approximation
    (z_0.975 + z_power)^2 (floor + per_seed / S) <= effect^2. None when even endless seeds would not
    do (the pairs' own spread: more pairs are needed, not seeds)."""
    if not effect or math.isnan(effect):
        return None
    room = effect**2 / (stats.norm.ppf(0.5 + CONFIDENCE / 2) + stats.norm.ppf(power)) ** 2 - floor
    if room <= 0:
        return None
    needed = max(2, math.ceil(per_seed / room))
    return needed if needed <= MAX_SEEDS else None


def _no_interval() -> dict[str, Any]:
    """One seed: no spread, so no interval and no verdict."""
    return {**dict.fromkeys(("diff_std", "ci_low", "ci_high", "df", "p_value"), math.nan), "resolved": None,
            "exact": False}  # fmt: skip


def _exact(difference: float) -> dict[str, Any]:
    return {"model": "exact (no seed noise)", "diff_std": 0.0, "ci_low": difference, "ci_high": difference,
            "df": math.nan, "p_value": math.nan, "resolved": bool(difference != 0), "exact": True}  # fmt: skip


def _mean_squares(values: np.ndarray) -> tuple[float, float, float]:
    """MS of pairs, seeds and error of a complete two-way table without replication."""
    pairs, seeds = values.shape
    grand, by_pair, by_seed = values.mean(), values.mean(axis=1), values.mean(axis=0)
    residual = values - by_pair[:, None] - by_seed[None, :] + grand
    return (
        seeds * float(((by_pair - grand) ** 2).sum()) / (pairs - 1),
        pairs * float(((by_seed - grand) ** 2).sum()) / (seeds - 1),
        float((residual**2).sum()) / ((pairs - 1) * (seeds - 1)),
    )


def _interval(mean: float, variance: float, df: float) -> dict[str, Any]:
    half = t_quantile(df) * math.sqrt(variance)
    t_value = mean / math.sqrt(variance) if variance > 0 else math.inf
    low, high = mean - half, mean + half
    return {"ci_low": low, "ci_high": high, "df": float(df), "p_value": float(2 * stats.t.sf(abs(t_value), df)),
            "resolved": bool(low > 0 or high < 0)}  # fmt: skip


def seed_differences(first: pd.DataFrame, second: pd.DataFrame, metric: str) -> pd.Series:
    """second - first, per seed both ran (the mean of a seed's runs where one ran it twice)."""
    by_seed = [trials.groupby("seed")[metric].mean() for trials in (first, second)]
    common = by_seed[0].index.intersection(by_seed[1].index)
    return (by_seed[1][common] - by_seed[0][common]).sort_index()


def verdict(summary: dict[str, Any], lower: str, higher: str) -> str:
    if summary.get("exact"):
        return "exact: no difference" if summary["diff"] == 0 else f"exact: {lower if summary['diff'] < 0 else higher}"
    if summary["resolved"] is None:
        return "one seed: no interval"
    if not summary["resolved"]:
        return "within noise"
    return lower if summary["diff"] < 0 else higher


def kendall_tau(ours: Sequence[float], published: Sequence[float]) -> tuple[float, int, float]:
    """Rank agreement of our row order with the paper's (1: same order, -1: reversed), n, and the
    two-sided p-value of no agreement (scipy's exact test for small n without ties)."""
    pairs = [(a, b) for a, b in zip(ours, published, strict=True) if not (pd.isna(a) or pd.isna(b))]
    if len(pairs) < 2:
        return math.nan, len(pairs), math.nan
    result = stats.kendalltau([a for a, _ in pairs], [b for _, b in pairs])
    return float(result.statistic), len(pairs), float(result.pvalue)


def with_holm(table: pd.DataFrame) -> pd.DataFrame:
    """`holm_p` and `holm_verdict` beside the raw answers: Holm's adjustment over every interval of
    the table of one metric (an answer that holds many comparisons finds some by chance)."""
    from statsmodels.stats.multitest import multipletests

    table = table.copy()
    table["holm_p"], table["holm_verdict"] = math.nan, table["verdict"]
    for _, rows in table.groupby("metric", sort=False):
        tested = rows[rows["p_value"].notna()]
        if tested.empty:
            continue
        rejected, adjusted, _, _ = multipletests(tested["p_value"], alpha=1 - CONFIDENCE, method="holm")
        table.loc[tested.index, "holm_p"] = adjusted
        for index, reject in zip(tested.index, rejected, strict=True):
            if not reject and table.at[index, "resolved"]:
                table.at[index, "holm_verdict"] = "within noise (Holm)"
    return table


# -- comparing the networks of a sweep that differ in one knob ---------------------------------------


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
    named_effect: float | None = None,
    power: float | None = POWER,
) -> pd.DataFrame:
    """One row per (pair of networks differing only in `knob`, metric), then one `overall` row per
    (pair of knob values, metric) pooling every seed-paired difference of those pairs.

    `design_columns` are the columns that describe a network (the sweep's knobs); two networks
    differ only in `knob` when they agree on every other one. Differences are value_b - value_a,
    paired by seed. The overall rows estimate the effect over the population of pairs (crossed pair
    and seed effects; the module's docstring). `published` maps archids to the paper's top-1 error,
    for the paper's difference; `named_effect` asks for the seeds 80% power needs to see it.
    """
    others = [column for column in design_columns if column != knob]
    groups = frame[others].astype(str).agg(tuple, axis=1) if others else pd.Series([()] * len(frame), frame.index)
    values = _ordered_values(frame[knob])
    rows: list[dict[str, Any]] = []
    pooled: dict[tuple, dict[str, pd.Series]] = {}  # (value_a, value_b, metric) -> pair -> its differences
    for group_key, group in frame.groupby(groups, sort=False):
        label = _label(group_key, others)
        for index, value_a in enumerate(values):
            for value_b in values[index + 1 :]:
                for pair in _pairs(group, knob, value_a, value_b):
                    for metric in metrics:
                        differences = seed_differences(pair["a"], pair["b"], metric)
                        if differences.empty:
                            continue
                        name = f"{label}: {pair['archid_a']}->{pair['archid_b']}"
                        pooled.setdefault((value_a, value_b, metric), {})[name] = differences
                        summary = paired_summary(differences.tolist(), named_effect, power, seed_free(metric))
                        row = _comparison_row(label, knob, value_a, value_b, metric, summary)
                        row.update(archid_a=pair["archid_a"], archid_b=pair["archid_b"])
                        if published and metric == "top1_err" and {row["archid_a"], row["archid_b"]} <= set(published):
                            row["published_diff"] = published[row["archid_b"]] - published[row["archid_a"]]
                        rows.append(row)
    for (value_a, value_b, metric), by_pair in pooled.items():
        summary = crossed_summary(pd.DataFrame(by_pair).T, named_effect, power, seed_free(metric))
        rows.append(_comparison_row("overall", knob, value_a, value_b, metric, summary))
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


def _comparison_row(pair: str, knob: str, value_a: Any, value_b: Any, metric: str, summary: dict) -> dict:
    lower, higher = f"{knob}={value_b} lower", f"{knob}={value_b} higher"
    identity = {"pair": pair, "knob": knob, "value_a": value_a, "value_b": value_b, "archid_a": "", "archid_b": ""}
    return {**identity, "metric": metric, **summary, "verdict": verdict(summary, lower, higher)}


def check_single_recipe(frame: pd.DataFrame, swept: Sequence[str]) -> None:
    """Refuse to compare runs trained under different recipes (beyond the seed and swept knobs)."""
    keys = frame["recipe_json"].map(lambda text: recipe_identity(text, swept)) if "recipe_json" in frame else None
    if keys is not None and keys.nunique() > 1:
        names = sorted(set(frame.get("recipe", pd.Series(["?"])).astype(str)))
        detail = f"recipes {', '.join(names)}" if len(names) > 1 else f"differently configured {names[0]} recipes"
        raise ConfigError("RUN_DIR", f"the runs mix {detail}; compare runs trained under one recipe")
