"""Pictures of sweeps: Pareto scatters, EDFs of error per design choice (pycls style), learning
curves and replayed search curves. The attention analysis draws its figure with the same helpers
(sksearch.attention).

Plots are PNG files drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sksearch.files import atomic_write
from sksearch.results import Objectives, knee, pareto, seed_means
from sksearch.schema import (
    axis_label,
    best_trials,
    design_columns,
    is_spec_column,
    network_names,
    results_of,
    value_word,
)
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
    renderer = figure.canvas.get_renderer()
    panels = []
    for axes in figure.axes:
        if axes.get_label() == "<colorbar>":
            continue
        legend, place = axes.get_legend(), axes.get_subplotspec()
        rows, columns, first, _ = place.get_geometry() if place else (1, 1, 0, 0)
        panels.append(
            {
                "title": axes.get_title(),
                "xlabel": axes.get_xlabel(),
                "ylabel": axes.get_ylabel(),
                "legend": [text.get_text() for text in legend.get_texts()] if legend else [],
                "legend_title": legend.get_title().get_text() if legend else "",
                "labels": [text.get_text() for text in axes.texts],  # text placed on the plot (point names)
                "label_boxes": [list(text.get_window_extent(renderer).extents) for text in axes.texts],  # pixels
                "grid": [int(rows), int(columns), int(first)],  # grid rows, grid columns, cell (row-major)
            }
        )
    return panels


MOST_PANELS_PER_ROW = 4


def panel_grid(count: int, width: float = 4.0, height: float = 3.4, per_row: int = MOST_PANELS_PER_ROW):
    """A figure of `count` panels on rows of at most `per_row` (so that each stays readable); the
    last row's unused cells are removed."""
    plt = pyplot()
    columns = min(count, per_row)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    cells = list(axes.flat)
    for spare in cells[count:]:
        spare.remove()
    return figure, cells[:count]


@dataclass(frozen=True)
class AxisScale:
    """How a column's values map onto an axis. Values that span less than 1% of their size (GMACs that
    differ in the 4th digit) are drawn as % above the smallest, so the axis shows the span as small as
    it is, rather than as one column of points or a tick offset easy to miss."""

    label: str
    origin: float = 0.0
    factor: float = 1.0

    @classmethod
    def of(cls, column: str, values: pd.Series) -> AxisScale:
        low, high = float(values.min()), float(values.max())
        if low != 0 and 0 < high - low < RELATIVE_BELOW * abs(low):
            return cls(f"{axis_label(column)}: % above {low:.6g}", low, 100 / abs(low))
        return cls(axis_label(column))

    def values(self, values: pd.Series) -> pd.Series:
        return (values - self.origin) * self.factor

    def spread(self, spread: pd.Series) -> pd.Series:
        return spread * self.factor


RELATIVE_BELOW = 0.01


# -- plots of a sweep ---------------------------------------------------------------------------


def plot_pareto(
    frame: pd.DataFrame, objectives: Objectives, out: str | Path, paper: pd.DataFrame | None = None
) -> Path:
    """Every network (seed means), the front (with its knee when it has 3 points or more) on numeric
    axes labelled with their units; `paper`'s published points (results.published_points) on a panel
    of their own: they are ImageNet errors of full-size networks, not the sweep's task."""
    plt = pyplot()
    (x, _), (y, _) = objectives[0], objectives[1]
    points, front = seed_means(frame, objectives), pareto(frame, objectives)
    if front.empty:
        raise ConfigError("RUN_DIR", "no completed trial has every objective: there is no front to plot")
    published = paper.dropna(subset=[x, y]) if paper is not None and x in paper and y in paper else pd.DataFrame()
    ratios = [1.6, 1] if len(published) else [1]
    figure, cells = plt.subplots(1, len(ratios), figsize=(4 * sum(ratios) + 2, 4.8), squeeze=False,
                                 gridspec_kw={"width_ratios": ratios})  # fmt: skip
    axes = cells[0][0]
    across, up = AxisScale.of(x, points[x]), AxisScale.of(y, points[y])
    color = points[objectives[2][0]] if len(objectives) == 3 else None
    scatter = axes.scatter(across.values(points[x]), up.values(points[y]), c=color, s=18, alpha=0.6,
                           label="networks (mean over seeds)")  # fmt: skip
    if color is not None:
        figure.colorbar(scatter, ax=axes, label=axis_label(objectives[2][0]))
    ordered = front.sort_values(x)
    axes.errorbar(across.values(ordered[x]), up.values(ordered[y]), xerr=across.spread(ordered[f"{x}_std"]),
                  yerr=up.spread(ordered[f"{y}_std"]), fmt="o-", color="tab:red", capsize=2,
                  label="Pareto front (bars: 1 std over seeds)")  # fmt: skip
    if len(front) >= KNEE_NEEDS:
        corner = front.iloc[knee(front, objectives)]
        axes.scatter(across.values(pd.Series([corner[x]])), up.values(pd.Series([corner[y]])), s=160,
                     facecolors="none", edgecolors="black", label="knee")  # fmt: skip
    _label_points(axes, across.values(ordered[x]), up.values(ordered[y]), ordered["name"])
    _finish_panel(axes, across.label, up.label, f"{_sweeps_and_recipes(frame)}: {len(points)} networks, "
                  f"{len(front)} on the front")  # fmt: skip
    if len(published):
        _draw_published(cells[0][1], published, x, y)
    return save_figure(figure, out)


KNEE_NEEDS = 3  # a knee is the front's point of greatest bend: it takes 3 points to bend


def _draw_published(axes, published: pd.DataFrame, x: str, y: str) -> None:
    axes.scatter(published[x], published[y], marker="*", s=120, color="black", label="published (paper)")
    _label_points(axes, published[x], published[y], published["row"], most=len(published))
    _finish_panel(axes, axis_label(x), axis_label(y), "the paper's rows: ImageNet, full-size networks")


def _finish_panel(axes, xlabel: str, ylabel: str, title: str) -> None:
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.ticklabel_format(useOffset=False)
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)


def _label_points(axes, xs: pd.Series, ys: pd.Series, names: pd.Series, most: int = 12) -> None:
    """Name each point (at most `most`, spread along the series), moved apart by adjustText so that
    no two labels overlap. Names longer than SHORT_NAME are numbered instead, with a key under the panel."""
    from adjustText import adjust_text

    chosen = np.unique(np.linspace(0, len(names) - 1, min(most, len(names))).round().astype(int))
    shown = [str(names.iloc[i]) for i in chosen]
    numbered = max(map(len, shown)) > SHORT_NAME
    texts = [
        axes.text(xs.iloc[i], ys.iloc[i], str(number) if numbered else name, fontsize=7)
        for number, (i, name) in enumerate(zip(chosen, shown, strict=True), start=1)
    ]
    if numbered:
        key = "\n".join(textwrap.fill(f"{number}: {name}", 110, subsequent_indent="    ")
                        for number, name in enumerate(shown, start=1))  # fmt: skip
        axes.annotate(key, (0, 0), xycoords="axes fraction", xytext=(0, -36), textcoords="offset points",
                      va="top", fontsize=6.5, family="monospace")  # fmt: skip
    if len(texts) > 1:
        adjust_text(texts, ax=axes, expand=(1.3, 1.5), arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})


SHORT_NAME = 24  # characters a point's label may take on the plot


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
    """One panel per design choice (at most 4 to a row), one EDF curve per value of it, over
    networks: each network's metric is its mean over seeds, so repeated seeds do not count twice."""
    _check_metric(frame, metric)
    networks = seed_means(frame, [(metric, "min")])
    columns = list(by) if by else design_choices(networks)
    for column in columns:
        if column not in networks:
            raise ConfigError("--by", f"no column {column!r} in the results table")
    if not columns:
        raise ConfigError("--by", "no design choice varies across the finished trials")
    grid = np.linspace(networks[metric].min(), networks[metric].max(), 200)
    figure, panels = panel_grid(len(columns))
    for panel, column in zip(panels, columns, strict=True):
        for value, group in networks.groupby(column, sort=True, dropna=False):
            count = f"{len(group)} network" + ("s" if len(group) > 1 else "")
            panel.plot(grid, edf(group[metric], grid), label=f"{value_word(column, value)} ({count})")
        panel.set_title(axis_label(column), fontsize=10)
        panel.set_xlabel(axis_label(metric))
        panel.set_ylabel("fraction of networks")
        panel.legend(fontsize=7)
        panel.grid(alpha=0.3)
    figure.suptitle(f"EDF of {axis_label(metric)} per design choice ({len(networks)} networks, each the mean "
                    f"over its seeds); {_sweeps_and_recipes(frame)}", fontsize=10)  # fmt: skip
    figure.tight_layout()
    return save_figure(figure, out)


def _check_metric(frame: pd.DataFrame, metric: str) -> None:
    if metric not in frame or not pd.api.types.is_numeric_dtype(frame[metric]):
        raise ConfigError("--metric", f"{metric!r} is not a numeric column of the results")


def plot_curves(
    history: pd.DataFrame, frame: pd.DataFrame, out: str | Path, top: int = 5, metric: str = "top1_err"
) -> Path:
    """Learning curves of the `top` best trials (by final `metric`), each named by its network and seed."""
    plt = pyplot()
    if history.empty:
        raise ConfigError("RUN_DIR", "has no history.parquet yet (it is written when a sweep run ends)")
    _check_metric(history, metric)
    done = results_of(frame).assign(name=network_names)
    best = best_trials(done, metric).head(top)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for row in best.to_dict("records"):
        curve = history[history["trial_id"] == row["trial_id"]].sort_values("epoch")
        name = textwrap.fill(f"{row['name']}, seed {row['seed']}", 100, subsequent_indent="    ")
        axes.plot(curve["epoch"], curve[metric], marker="o", label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel(axis_label(metric))
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title(f"the {len(best)} best trials by final {axis_label(metric)}; {_sweeps_and_recipes(frame)}",
                   fontsize=9)  # fmt: skip
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.14))  # under the axes: names can be long
    axes.grid(alpha=0.3)
    return save_figure(figure, out)


REPLAY_AXES = {
    "compute": "compute spent (fraction of the table's seconds)",
    "trial_epochs": "trial-epochs spent",
}


def plot_replay(curves: pd.DataFrame, out: str | Path, axis: str = "compute", title: str = "") -> Path:
    """Anytime hypervolume of replayed search algorithms against `axis` (REPLAY_AXES): a panel per
    algorithm with its median and interquartile band over repeats, the others' medians in grey behind
    it, so that bands never pile up."""
    shown = curves[curves["axis"] == axis]
    algorithms = list(dict.fromkeys(shown["algorithm"]))
    figure, panels = panel_grid(len(algorithms), width=3.6, height=3.0, per_row=3)
    repeats = int(shown["repeats"].max())
    for panel, algorithm in zip(panels, algorithms, strict=True):
        others = shown[shown["algorithm"] != algorithm].groupby("algorithm", sort=False)
        for index, (_, curve) in enumerate(others):
            panel.step(curve["at"], curve["hv_fraction_median"], where="post", color="0.75", linewidth=0.8,
                       label=None if index else "other algorithms (median)")  # fmt: skip
        own = shown[shown["algorithm"] == algorithm]
        panel.step(own["at"], own["hv_fraction_median"], where="post", color="tab:blue", label="median")
        panel.fill_between(own["at"], own["hv_fraction_q25"], own["hv_fraction_q75"], color="tab:blue", alpha=0.2,
                           step="post", label="quartiles (25-75%)")  # fmt: skip
        panel.set_title(algorithm, fontsize=10)
        panel.set_xlabel(REPLAY_AXES[axis], fontsize=8)
        panel.set_ylabel("hypervolume / the whole table's", fontsize=8)
        panel.set_ylim(-0.02, 1.02)
        panel.grid(alpha=0.3)
    panels[0].legend(title=f"over {repeats} repeats", fontsize=7, title_fontsize=7, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, out)
