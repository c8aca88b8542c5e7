"""Ablation answers: what one knob changes, paired by seed, with its uncertainty (sksearch.results.statistics)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from sksearch.paper import published
from sksearch.presets import preset
from sksearch.recipes import Recipe
from sksearch.results.statistics import POWER, check_single_recipe, compare_knob, with_holm
from sksearch.schema import design_columns, is_spec_column, knob_columns, results_of
from sksearch.validation import ConfigError, number


def compare(
    frame: pd.DataFrame,
    knob: str = "attention",
    metrics: Sequence[str] = ("top1_err",),
    effect: float | None = None,
    power: float = POWER,
) -> pd.DataFrame:
    """Pairs the networks that differ only in `knob`, pairs their runs by seed, and gives per pair
    and overall the mean difference of each metric (value_b - value_a; for a boolean knob, with
    minus without) with its 95% interval, p-value, the verdict raw and Holm-adjusted, the seeds
    `power` needs at the observed gap (and at `effect`, if named), and the paper's difference where
    it has both rows (see sksearch.results.statistics; the overall rows say which model)."""
    if effect is not None:
        number(effect, "--effect", 0, open_low=True)
    number(power, "--power", 0, 1, open_low=True, open_high=True)
    done = results_of(frame)
    # a spec column is compared among spec columns, a knob among the sweeps' knobs (each restates the other)
    spec_design = [c for c in design_columns(done) if is_spec_column(c)]
    design = spec_design if is_spec_column(knob) else knob_columns(done)
    if knob not in design:
        raise ConfigError("--knob", f"{knob!r} is not a design choice of these runs (knobs: {', '.join(design)})")
    for metric in metrics:
        if metric not in done or not pd.api.types.is_numeric_dtype(done[metric]):
            raise ConfigError("--metrics", f"{metric!r} is not a numeric column of the results table")
    done = done.dropna(subset=list(metrics))
    values = done[knob].dropna().unique()
    if len(values) < 2:
        shown = ", ".join(str(v) for v in values) or "no value"
        raise ConfigError("--knob", f"{knob} never varies among the completed trials (only {shown})")
    check_single_recipe(done, [c for c in design if c in {f.name for f in dataclasses.fields(Recipe)}])
    table = compare_knob(done, knob, design, metrics, published_errors(), effect, power)
    if table.empty:
        raise ConfigError("--knob", f"no two networks of these runs differ only in {knob} and share a seed")
    return with_holm(table)


def published_errors() -> dict[str, float]:
    """archid -> the paper's top-1 error (224 px) of every published row a preset builds."""
    errors: dict[str, float] = {}
    for record in published().to_dict("records"):
        if record["model"] and record["top1_err_224"]:
            errors.setdefault(preset(record["model"]).archid, float(record["top1_err_224"]))
    return errors
