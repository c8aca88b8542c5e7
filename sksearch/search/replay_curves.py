"""Summaries of replayed search algorithms (sksearch.search.replay): anytime hypervolume curves
with their quartiles over repeats, what each algorithm reached at the budget, and the files and
lines that report them (schema.REPLAY_COLUMNS says what each column means)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from sksearch.files import join
from sksearch.search.replay import Benchmark, ReplaySettings


def anytime(trials: pd.DataFrame, budget: float, points: int = 51) -> pd.DataFrame:
    """The hypervolume fraction reached, median and quartiles over repeats, on two axes: `compute`
    (a fraction of the table's seconds, 0 to the budget) and `trial_epochs` (0 to the most any
    repeat spent; a repeat counts up to what it spent, and a point needs half the repeats)."""
    grids = {"compute": np.linspace(0.0, budget, points), "trial_epochs": np.arange(trials["trial_epochs"].max() + 1)}
    rows = []
    for algorithm, (axis, grid) in itertools.product(trials["algorithm"].unique(), grids.items()):
        runs = [run for _, run in trials[trials["algorithm"] == algorithm].groupby("repeat")]
        reached = np.array([_step(run[axis].to_numpy(), run["hv_fraction"].to_numpy(), grid) for run in runs])
        if axis == "trial_epochs":  # past what a repeat spent, it says nothing
            reached[grid[None, :] > np.array([run[axis].max() for run in runs])[:, None]] = np.nan
        counted = (~np.isnan(reached)).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # columns with no repeat left
            low, median, high = np.nanpercentile(reached, [25, 50, 75], axis=0)
        for at, value in enumerate(grid):
            if 2 * counted[at] >= len(runs):
                rows.append({
                    "algorithm": algorithm, "axis": axis, "at": float(value), "hv_fraction_median": median[at],
                    "hv_fraction_q25": low[at], "hv_fraction_q75": high[at], "repeats": int(counted[at]),
                })  # fmt: skip
    return pd.DataFrame(rows)


def _step(at: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The last value recorded at or before each grid point (0 before the first)."""
    positions = np.searchsorted(at, grid, side="right")
    return np.where(positions > 0, values[np.maximum(positions - 1, 0)], 0.0)


def at_budget(trials: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm, what its repeats reached when the budget ran out: the hypervolume fraction
    (median and quartiles), and the trials and trial-epochs spent (medians)."""
    last = trials.groupby(["algorithm", "repeat"], sort=False).agg(
        hv_fraction=("hv_fraction", "last"), trials=("trial", "size"), trial_epochs=("trial_epochs", "last"),
        stopped=("stopped", "sum"),
    )  # fmt: skip
    grouped = last.groupby(level="algorithm", sort=False)
    return pd.DataFrame({
        "hv_fraction_median": grouped["hv_fraction"].median(),
        "hv_fraction_q25": grouped["hv_fraction"].quantile(0.25),
        "hv_fraction_q75": grouped["hv_fraction"].quantile(0.75),
        "trials_median": grouped["trials"].median(),
        "stopped_median": grouped["stopped"].median(),
        "trial_epochs_median": grouped["trial_epochs"].median(),
        "repeats": grouped.size(),
    }).reset_index()  # fmt: skip


CHECKPOINTS = (0.1, 0.25, 0.5)  # fractions of the table's compute where algorithms are compared


def reached(trials: pd.DataFrame, algorithm: str, compute: float) -> np.ndarray:
    """Each repeat's hypervolume fraction by `compute` (a fraction of the table's seconds)."""
    runs = trials[trials["algorithm"] == algorithm].groupby("repeat")
    grid = np.array([compute])
    return np.array([_step(run["compute"].to_numpy(), run["hv_fraction"].to_numpy(), grid)[0] for _, run in runs])


def claims(trials: pd.DataFrame, budget: float, checkpoints: tuple[float, ...] = CHECKPOINTS) -> pd.DataFrame:
    """Every pair of algorithms at each checkpoint within the budget: the difference of their median
    hypervolume fractions over repeats, its 95% percentile-bootstrap interval (scipy.stats.bootstrap,
    the repeats of each resampled on their own, 2000 resamples, seeded), and the verdict: `beats` or
    `trails` only where the interval excludes zero, else `within noise`."""
    algorithms = list(dict.fromkeys(trials["algorithm"]))
    rows = []
    for at in (point for point in checkpoints if point <= budget + 1e-12):
        values = {algorithm: reached(trials, algorithm, at) for algorithm in algorithms}
        for first, second in itertools.combinations(algorithms, 2):
            one, other = values[first], values[second]
            difference = float(np.median(one) - np.median(other))
            low, high = _bootstrap_interval((one, other), _median_difference, difference)
            verdict = "beats" if low > 0 else "trails" if high < 0 else "within noise"
            rows.append({"at": at, "algorithm": first, "other": second, "median_difference": difference,
                         "ci_low": low, "ci_high": high, "verdict": verdict, "repeats": len(one)})  # fmt: skip
    return pd.DataFrame(rows)


def median_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the median of `values` (one per repeat)."""
    return _bootstrap_interval((values,), np.median, float(np.median(values)))


def _bootstrap_interval(samples: tuple[np.ndarray, ...], statistic, estimate: float) -> tuple[float, float]:
    """95% percentile-bootstrap interval of `statistic` (each sample resampled on its own, 2000
    resamples, seeded); a sample without spread gives the point `estimate`."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate sample (every repeat alike) has a point interval
        found = stats.bootstrap(samples, statistic, n_resamples=2000, method="percentile", vectorized=True,
                                rng=np.random.default_rng(0))  # fmt: skip
    low, high = float(found.confidence_interval.low), float(found.confidence_interval.high)
    return (estimate, estimate) if np.isnan(low) else (low, high)


def _median_difference(one: np.ndarray, other: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(one, axis=axis) - np.median(other, axis=axis)


def write_replay(out: str, trials: pd.DataFrame, table: Benchmark, budget: float) -> list[str]:
    """replay.csv (every ended trial), anytime.csv, at_budget.csv, claims.csv, and the anytime curves
    against compute (replay.png) and against trial-epochs (replay_trial_epochs.png) into `out`."""
    from sksearch.files import atomic_write_text
    from sksearch.plots import plot_replay
    from sksearch.schema import axis_label

    curves = anytime(trials, budget)
    summary = at_budget(trials)
    written = []
    tables = (("replay.csv", trials), ("anytime.csv", curves), ("at_budget.csv", summary),
              ("claims.csv", claims(trials, budget)))  # fmt: skip
    for name, frame in tables:
        written.append(str(atomic_write_text(join(out, name), frame.to_csv(index=False))))
    objectives = ", ".join(f"{axis_label(name)} ({mode})" for name, mode in table.objectives)
    title = f"{len(table.networks)} networks of {table.space.name}; objectives {objectives}; budget {budget:g}"
    for axis, name in (("compute", "replay.png"), ("trial_epochs", "replay_trial_epochs.png")):
        written.append(str(plot_replay(curves, join(out, name), axis=axis, title=title)))
    return written


def summary_lines(trials: pd.DataFrame, table: Benchmark, budget: float, settings: ReplaySettings) -> list[str]:
    """The table, the algorithms' settings and the reference point; what each algorithm reached at
    the budget, one line each; then the claims whose interval excludes zero."""
    from sksearch.schema import axis_label

    reference = ", ".join(f"{axis_label(name)} {value:.4g} ({why})" for (name, _), value, why
                          in zip(table.objectives, table.reference, table.reference_why, strict=True))  # fmt: skip
    header = [
        f"{len(table.networks)} networks, {table.total_epochs} trial-epochs, {table.total_seconds:.0f} s in all",
        settings.describe(table),
        f"reference point: {reference}",
        f"at {budget:g} of the compute, the fraction of the table's hypervolume reached (median [IQR] over repeats):",
    ]
    lines = header + [
        f"  {row.algorithm:<7} {row.hv_fraction_median:.3f} [{row.hv_fraction_q25:.3f}, {row.hv_fraction_q75:.3f}]  "
        f"{row.trials_median:.0f} trials ({row.stopped_median:.0f} stopped), {row.trial_epochs_median:.0f} trial-epochs"
        for row in at_budget(trials).itertuples()
    ]
    found = claims(trials, budget)
    if found.empty:
        return lines
    shown = found[found["verdict"] != "within noise"]
    lines.append(f"claims (difference of medians, 95% bootstrap interval; {len(found) - len(shown)} of {len(found)} "
                 "pairs are within noise and not listed):")  # fmt: skip
    lines += [
        f"  at {row.at:.0%} of the compute: {row.algorithm} {row.verdict} {row.other} by {row.median_difference:+.3f} "
        f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}]"
        for row in shown.itertuples()
    ]
    return lines
