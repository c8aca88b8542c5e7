"""Pictures of sweeps: Pareto scatters, EDFs of error per design choice (pycls style), learning
curves and replayed search curves. The attention analysis draws its figure with the same helpers
(sksearch.attention).

Plots are PNG files drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sksearch.files import atomic_write
from sksearch.results import Objectives, knee, pareto, seed_means
from sksearch.schema import axis_label, best_trials, design_columns, is_spec_column, network_names, results_of
from sksearch.validation import ConfigError


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, out: str | Path) -> Path:
    """Write the figure in the format its suffix names (PNG by default). A PNG records the figure's
    title in its Title text chunk and its panels' titles, axis labels, legend entries and labels in its
    Description chunk, so a reader or a test can tell what was drawn without a viewer."""
    plt = pyplot()
    kind = Path(out).suffix.lower().lstrip(".") or "png"
    formats = figure.canvas.get_supported_filetypes()
    if kind not in formats:
        plt.close(figure)
        raise ConfigError(str(out), f"cannot draw a .{kind} file (formats: {', '.join(sorted(formats))})")
    metadata = None
    if kind == "png":
        metadata = {"Software": "sksearch", "Title": figure.get_suptitle(), "Description": json.dumps(_drawn(figure))}
    path = atomic_write(
        out,
        lambda temporary: figure.savefig(temporary, format=kind, dpi=120, bbox_inches="tight", metadata=metadata),
    )
    plt.close(figure)
    return path


def _drawn(figure) -> list[dict]:
    panels = []
    for axes in figure.axes:
        legend = axes.get_legend()
        panels.append(
            {
                "title": axes.get_title(),
                "xlabel": axes.get_xlabel(),
                "ylabel": axes.get_ylabel(),
                "legend": [text.get_text() for text in legend.get_texts()] if legend else [],
                "legend_title": legend.get_title().get_text() if legend else "",
                "labels": [text.get_text() for text in axes.texts],  # text placed on the plot (point names)
            }
        )
    return panels


# -- plots of a sweep ---------------------------------------------------------------------------


def plot_pareto(
    frame: pd.DataFrame, objectives: Objectives, out: str | Path, paper: pd.DataFrame | None = None
) -> Path:
    """Every trial (seed means), the front with its knee, and `paper`'s published points
    (results.published_points), on numeric axes labelled with their units, titled by sweep and recipe."""
    plt = pyplot()
    (x, _), (y, _) = objectives[0], objectives[1]
    points, front = seed_means(frame, objectives), pareto(frame, objectives)
    if front.empty:
        raise ConfigError("RUN_DIR", "no completed trial has every objective: there is no front to plot")
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    color = points[objectives[2][0]] if len(objectives) == 3 else None
    scatter = axes.scatter(points[x], points[y], c=color, s=18, alpha=0.6, label="trials (seed mean)")
    if color is not None:
        figure.colorbar(scatter, ax=axes, label=axis_label(objectives[2][0]))
    ordered = front.sort_values(x)
    axes.errorbar(ordered[x], ordered[y], xerr=ordered[f"{x}_std"], yerr=ordered[f"{y}_std"], fmt="o-",
                  color="tab:red", label="Pareto front", capsize=2)  # fmt: skip
    corner = front.iloc[knee(front, objectives)]
    axes.scatter([corner[x]], [corner[y]], s=160, facecolors="none", edgecolors="black", label="knee")
    _label_points(axes, ordered, x, y)
    if paper is not None and x in paper and y in paper:
        shown = paper.dropna(subset=[x, y])
        if len(shown):
            axes.scatter(shown[x], shown[y], marker="*", s=120, color="black", label="published (paper)")
    axes.set_xlabel(axis_label(x))
    axes.set_ylabel(axis_label(y))
    axes.ticklabel_format(useOffset=False)  # GMACs that differ in the 4th decimal read as themselves
    axes.set_title(_sweeps_and_recipes(frame), fontsize=9)
    axes.legend()
    axes.grid(alpha=0.3)
    return save_figure(figure, out)


def _label_points(axes, front: pd.DataFrame, x: str, y: str, most: int = 12) -> None:
    """Each front point's readable name beside it (at most `most`, spread along the front)."""
    shown = front.iloc[np.unique(np.linspace(0, len(front) - 1, min(most, len(front))).round().astype(int))]
    for _, row in shown.iterrows():
        axes.annotate(str(row["name"]), (row[x], row[y]), xytext=(4, 4), textcoords="offset points", fontsize=7)


def _sweeps_and_recipes(frame: pd.DataFrame) -> str:
    sweeps = ", ".join(sorted(map(str, frame["sweep"].dropna().unique()))) if "sweep" in frame else ""
    recipes = ", ".join(sorted(map(str, frame["recipe"].dropna().unique()))) if "recipe" in frame else ""
    return f"sweep {sweeps or '-'}, recipe {recipes or '-'}"


def edf(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Fraction of models with error below each value of `grid` (the empirical distribution)."""
    values = np.sort(np.asarray(values, dtype=float))
    return np.searchsorted(values, grid, side="right") / max(len(values), 1)


def design_choices(frame: pd.DataFrame) -> list[str]:
    """Design columns (sksearch.schema) worth an EDF, with 2..12 distinct values: the sweeps' own
    knobs, or the spec columns (which restate them) when no knob varies."""
    varying = [c for c in design_columns(frame) if 2 <= frame[c].nunique() <= 12]
    knobs = [c for c in varying if not is_spec_column(c)]
    return knobs or varying


def plot_edf(frame: pd.DataFrame, out: str | Path, by: Sequence[str] | None = None, metric: str = "top1_err") -> Path:
    """One panel per design choice, one EDF curve per value of it."""
    plt = pyplot()
    _check_metric(frame, metric)
    done = results_of(frame).dropna(subset=[metric])
    columns = list(by) if by else design_choices(done)
    for column in columns:
        if column not in done:
            raise ConfigError("--by", f"no column {column!r} in the results table")
    if not columns:
        raise ConfigError("--by", "no design choice varies across the finished trials")
    grid = np.linspace(done[metric].min(), done[metric].max(), 200)
    figure, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    for panel, column in zip(axes[0], columns, strict=True):
        for value, group in done.groupby(column, sort=True):
            panel.plot(grid, edf(group[metric], grid), label=f"{value} (n={len(group)})")
        panel.set_title(column)
        panel.set_xlabel(axis_label(metric))
        panel.set_ylabel(f"fraction of models with {metric} < e")
        panel.legend(fontsize=7)
        panel.grid(alpha=0.3)
    return save_figure(figure, out)


def _check_metric(frame: pd.DataFrame, metric: str) -> None:
    if metric not in frame or not pd.api.types.is_numeric_dtype(frame[metric]):
        raise ConfigError("--metric", f"{metric!r} is not a numeric column of the results")


def plot_curves(
    history: pd.DataFrame, frame: pd.DataFrame, out: str | Path, top: int = 5, metric: str = "top1_err"
) -> Path:
    """Learning curves of the `top` best trials (by final `metric`)."""
    plt = pyplot()
    if history.empty:
        raise ConfigError("RUN_DIR", "has no history.parquet yet (it is written when a sweep run ends)")
    _check_metric(history, metric)
    done = results_of(frame).assign(name=network_names)
    best = best_trials(done, metric).head(top)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for row in best.to_dict("records"):
        curve = history[history["trial_id"] == row["trial_id"]].sort_values("epoch")
        axes.plot(
            curve["epoch"], curve[metric], marker="o", label=f"{row['name']} ({row['archid']}, {row['trial_id']})"
        )
    axes.set_xlabel("epoch")
    axes.set_ylabel(axis_label(metric))
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return save_figure(figure, out)


def plot_replay(curves: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Anytime hypervolume of replayed search algorithms: the median over repeats and its
    interquartile band, against the fraction of the table's compute (left) and trial-epochs (right)."""
    plt = pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    axes = (("compute", "compute spent (fraction of the table's seconds)"), ("trial_epochs", "trial-epochs spent"))
    for panel, (axis, label) in zip(panels, axes, strict=True):
        for algorithm, curve in curves[curves["axis"] == axis].groupby("algorithm", sort=False):
            line = panel.step(curve["at"], curve["hv_fraction_median"], where="post", label=f"{algorithm} (median)")[0]
            panel.fill_between(curve["at"], curve["hv_fraction_q25"], curve["hv_fraction_q75"],
                               color=line.get_color(), alpha=0.15, step="post")  # fmt: skip
        panel.set_xlabel(label)
        panel.grid(alpha=0.3)
    panels[0].set_ylabel("hypervolume / the whole table's")
    repeats = int(curves["repeats"].max())
    panels[0].legend(title=f"shaded: quartiles over {repeats} repeats", fontsize=8, title_fontsize=8)
    figure.suptitle(title)
    return save_figure(figure, out)
