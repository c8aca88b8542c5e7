"""The results schema: what every column of a results table means, and which role it plays.

A results table (`trials.parquet`, one row per trial) holds five kinds of column:

- identity: which run a row is (`trial_id`, `sweep`, `archid`, `seed`, ...);
- design: the design choices, i.e. the sweep's knobs (named as the space file names them) and
  the spec restated column by column (`spec_*`, and per branch `kernel_<m>`, `dilation_<m>`,
  `groups_<m>`, branch m counted from 0);
- metric: what training measured;
- complexity: the counters' figures;
- run: how the trial ran.

Every module that reads a results table (results, pareto, plot, the paper tables, the live table)
asks this module which columns are which, so a column means one thing everywhere. A column not
listed here is a knob of the sweep (a design choice).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sksearch.spec import NetSpec
from sksearch.validation import ConfigError

IDENTITY, DESIGN, METRIC, COMPLEXITY, RUN = "identity", "design", "metric", "complexity", "run"

COLUMNS: dict[str, tuple[str, str]] = {
    "trial_id": (IDENTITY, "Ray Tune's trial id"),
    "sweep": (IDENTITY, "the sweep's name"),
    "run_dir": (IDENTITY, "the sweep folder the row was read from (added by load_results)"),
    "status": (
        IDENTITY,
        "completed, reused (a completed trial answered from the trial store), failed (ended "
        "itself; reason says why), stopped (early stopping), error (crashed after all retries)",
    ),
    "reused_from": (IDENTITY, "`<sweep>/<trial id>` of the stored trial that answered this row (else empty)"),
    "reason": (IDENTITY, "why a trial failed, stopped or crashed"),
    "archid": (IDENTITY, "hash of the network as declared (NetSpec.archid)"),
    "spec": (IDENTITY, "the declared network as JSON (NetSpec.from_dict rebuilds it)"),
    "recipe": (IDENTITY, "the recipe's name"),
    "recipe_json": (IDENTITY, "the whole recipe as trained, as JSON"),
    "seed": (IDENTITY, "the training seed"),
    "top1_err": (METRIC, "top-1 error (%) on the held-out split after the last epoch"),
    "top5_err": (METRIC, "top-5 error (%) after the last epoch (of the weight average, where the recipe keeps one)"),
    "raw_top1_err": (METRIC, "top-1 error (%) of the raw weights, where the recipe evaluates a weight average"),
    "raw_top5_err": (METRIC, "top-5 error (%) of the raw weights, where the recipe evaluates a weight average"),
    "train_loss": (METRIC, "mean training loss of the last epoch"),
    "best_top1_err": (METRIC, "lowest top-1 error (%) over the epochs run"),
    "best_top5_err": (METRIC, "lowest top-5 error (%) over the epochs run"),
    "best_epoch": (METRIC, "the epoch of best_top1_err"),
    "images_per_s": (METRIC, "training throughput of the last epoch"),
    "epoch_time": (METRIC, "seconds of the last epoch"),
    "params": (COMPLEXITY, "parameters of the network as declared (analytic counter)"),
    "params_m": (COMPLEXITY, "params / 1e6"),
    "macs": (COMPLEXITY, "multiply-accumulates of the network as declared, at its input size"),
    "gmacs": (COMPLEXITY, "macs / 1e9 (the paper's GFLOPs)"),
    "fvcore_flops": (COMPLEXITY, "fvcore's count of the network as declared"),
    "trained_archid": (COMPLEXITY, "archid of the network as trained (the recipe may shrink it)"),
    "trained_params": (COMPLEXITY, "parameters of the network as trained"),
    "trained_macs": (COMPLEXITY, "MACs of the network as trained"),
    "trained_gmacs": (COMPLEXITY, "trained_macs / 1e9"),
    "latency_ms": (
        COMPLEXITY,
        "measured: median milliseconds of one batch-1 forward pass of the network as declared "
        "on the trial's device (sksearch.latency); only when an objective or constraint needs it",
    ),
    "throughput": (COMPLEXITY, "measured: images/s of forward passes at the recipe's batch size, as latency_ms"),
    "epochs": (RUN, "epochs run"),
    "wall_time": (RUN, "seconds the trial ran"),
    "finished_at": (RUN, "when the trial ended: the time of its last report (Unix seconds); empty in older tables"),
    "checkpoint": (RUN, "the trial's last checkpoint folder"),
    "node_id": (RUN, "the Ray node that ran the last epoch"),
    "resumed_at_epoch": (RUN, "the epoch the trial's last process started after (0: from scratch)"),
    # columns of a front (results.seed_means): one point per network, averaged over its seeds
    "name": (IDENTITY, "a readable name of the network, from the knobs that vary (network_names)"),
    "trial_ids": (IDENTITY, "the trials averaged into a front point"),
    "n": (RUN, "how many seeds a front point averages; <metric>_std is their standard deviation"),
}

# The tables `sksearch replay` writes (sksearch.search.replay): replay.csv has one row per ended
# trial of a replayed algorithm, anytime.csv its curves, at_budget.csv one row per algorithm.
REPLAY_COLUMNS: dict[str, str] = {
    "algorithm": "the replayed search algorithm (random, grid, tpe, nsga2, asha)",
    "repeat": "the repeat, also the seed of its sampler or order",
    "trial": "the trial's place in its repeat, counted from 0 as trials end",
    "archid": "the tabulated network the trial ran",
    "epochs": "epochs the trial ran (fewer than the network's when ASHA stopped it)",
    "stopped": "whether ASHA stopped the trial early",
    "seconds": "compute spent by the repeat when the trial ended: recorded epoch times, summed",
    "compute": "seconds as a fraction of the whole table's (every network's every epoch)",
    "trial_epochs": "epochs run by the repeat when the trial ended, all trials together",
    "clock": "the simulated wall clock when the trial ended (below seconds with --workers > 1)",
    "hypervolume": "of everything measured so far (a stopped trial at its last epoch), against the reference "
    "point of the whole table: each objective's worst final value plus 10% of its range",
    "hv_fraction": "hypervolume / the whole table's (every network at its last epoch)",
    "axis": "anytime.csv: the x axis of the row, `compute` or `trial_epochs`",
    "hv_fraction_median": "the median of hv_fraction over repeats (anytime: reached by `at`; at_budget: at the end)",
    "hv_fraction_q25": "its first quartile over repeats",
    "hv_fraction_q75": "its third quartile over repeats",
    "repeats": "how many repeats the figures summarise",
    "trials_median": "at_budget.csv: the median number of trials that ended within the budget",
    "stopped_median": "at_budget.csv: the median number of them ASHA stopped",
    "trial_epochs_median": "at_budget.csv: the median trial-epochs spent",
    "at": "anytime.csv: the point on that axis; claims.csv: the fraction of the table's compute compared at",
    "other": "claims.csv: the algorithm compared against",
    "median_difference": "claims.csv: algorithm's median hv_fraction minus other's, over repeats",
    "ci_low": "claims.csv: the low end of the difference's 95% percentile-bootstrap interval",
    "ci_high": "claims.csv: the high end of that interval",
    "verdict": "claims.csv: `beats` / `trails` where the interval excludes zero, else `within noise`",
}

# How a column reads on a figure's axis (units included); other columns read as their own name.
AXIS_LABELS = {"top1_err": "top-1 error (%)", "top5_err": "top-5 error (%)", "best_top1_err": "best top-1 error (%)",
               "train_loss": "training loss", "gmacs": "GMACs", "params_m": "params (M)",
               "images_per_s": "training images/s", "epoch_time": "epoch time (s)",
               "wall_time": "wall time (s)", "latency_ms": "latency (ms, batch 1)",
               "throughput": "throughput (images/s)"}  # fmt: skip


# How a design column reads in a figure's titles: the paper's symbols, stages by their conv names.
DESIGN_LABELS = {"num_branches": "branches M", "branches": "branch kernels", "cardinality": "groups G (cardinality)",
                 "reduction": "reduction r", "min_dim": "fuse floor L", "attention": "attention: SK or plain sum",
                 "width_multiplier": "width multiplier", "depths": "stage depths", "se": "squeeze-excitation",
                 "gate": "selection gate", "attention_stages": "stages with attention",
                 "preset": "preset network"}  # fmt: skip
_NUMBERED_LABELS = (
    (re.compile(r"(?:branch|kernel)_(\d+)"), lambda m: f"kernel of branch {m}"),
    (re.compile(r"dilation_(\d+)"), lambda m: f"dilation of branch {m}"),
    (re.compile(r"groups_(\d+)"), lambda m: f"groups of branch {m}"),
    (re.compile(r"depth_(\d+)"), lambda m: f"depth of conv{m + 2}_x"),
)


def axis_label(column: str) -> str:
    """How a column reads on a figure (axis, panel title): units for measures, words for knobs;
    a column without a label reads as its own name."""
    if column in AXIS_LABELS or column in DESIGN_LABELS:
        return AXIS_LABELS.get(column) or DESIGN_LABELS[column]
    for pattern, label in _NUMBERED_LABELS:
        if match := pattern.fullmatch(column):
            return label(int(match.group(1)))
    return f"spec: {column.removeprefix('spec_').replace('_', ' ')}" if column.startswith("spec_") else column


# Columns a sweep's objectives can name (the search needs them reported every epoch).
OBJECTIVE_METRICS = ("top1_err", "top5_err", "train_loss", "gmacs", "params_m", "epoch_time", "images_per_s",
                     "latency_ms", "throughput")  # fmt: skip
TIMING_METRICS = ("latency_ms", "throughput")  # measured before training, only when a sweep needs them
FINAL_METRICS = ("top1_err", "top5_err", "train_loss", "best_top1_err", "best_top5_err", "best_epoch", "raw_top1_err",
                 "raw_top5_err")  # fmt: skip
RUN_REPORTS = (*TIMING_METRICS, "fvcore_flops", "trained_archid", "trained_params", "trained_macs", "trained_gmacs",
               "images_per_s", "node_id", "resumed_at_epoch")  # fmt: skip
FRONT_SIZES = range(2, 4)  # a Pareto front of 2 or 3 objectives
_BRANCH_COLUMN = re.compile(r"(kernel|dilation|groups)_\d+")


def chance_value(column: str, classes: int | None) -> float | None:
    """A top-1 or top-5 error (%) column's value at chance, guessing among `classes`; None for any
    other column, or when the number of classes is not known."""
    top = 5 if "top5" in column else 1 if "top1" in column else None
    if top is None or not classes or role_of(column) != METRIC:
        return None
    return 100.0 * (1 - min(top, classes) / classes)


def seed_free(column: str) -> bool:
    """Whether a column cannot vary between seeds (a count: params, MACs), so that a difference in
    it is exact; measured timings vary, metrics vary."""
    return role_of(column) == COMPLEXITY and column not in TIMING_METRICS


def role_of(column: str) -> str:
    """identity, design, metric, complexity or run; anything unlisted is a knob: a design choice.
    `<column>_std` (a front point's spread over seeds) has its column's role."""
    if column.endswith("_std") and column.removesuffix("_std") in COLUMNS:
        column = column.removesuffix("_std")
    return COLUMNS[column][0] if column in COLUMNS else DESIGN


def is_spec_column(column: str) -> bool:
    """A design column restating the spec (rather than a knob the space declared)."""
    return column.startswith("spec_") or bool(_BRANCH_COLUMN.fullmatch(column))


def design_columns(frame: pd.DataFrame) -> list[str]:
    """Every design column: the sweeps' knobs and the spec restated."""
    return [c for c in frame.columns if role_of(c) == DESIGN]


def knob_columns(frame: pd.DataFrame) -> list[str]:
    """The design choices of a results table as the sweeps declared them: their knob columns."""
    return [c for c in design_columns(frame) if not is_spec_column(c)]


# Booleans read as a word when on and another when off; other booleans as `name` / `no name`.
_BOOLEAN_WORDS = {"attention": ("SK", "sum"), "unit.attention": ("SK", "sum"), "se": ("SE", "no SE")}


def network_names(frame: pd.DataFrame) -> pd.Series:
    """A short readable name per row, built from the knobs that vary across `frame`: branch sets as
    written, booleans as words (`SK` / `sum`), numbers as `name=value`; e.g. `K3+K5 SK reduction=16`.
    Rows of a table where no knob varies are named by their archid."""
    varying = [c for c in knob_columns(frame) if frame[c].astype(str).nunique() > 1]
    if not varying:
        return frame["archid"].astype(str) if "archid" in frame else pd.Series("", index=frame.index)
    return frame[varying].apply(lambda row: " ".join(_word(name, row[name]) for name in varying), axis=1)


def value_word(name: str, value: Any) -> str:
    """A knob's value as a legend shows it: booleans as words (`SK` / `sum`), a missing value (a
    branch the network does not have) as `none`, anything else as written."""
    if isinstance(value, (bool, np.bool_)):
        on, off = _BOOLEAN_WORDS.get(name, (name, f"no {name}"))
        return on if value else off
    if pd.isna(value):
        return "none"
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _word(name: str, value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return value_word(name, value)
    if isinstance(value, str) and (name == "branches" or name.startswith("branch_")):
        return value
    if pd.isna(value):
        return f"{name}=-"
    return f"{name}={value:g}" if isinstance(value, (int, float, np.number)) else f"{name}={value}"


def spec_columns(spec: NetSpec) -> dict[str, Any]:
    """Every knob of a spec as a flat column, and each branch's kernel, dilation and groups as a
    number (depthwise groups as the channel count of the first stage's SK conv)."""
    unit = spec.unit
    columns: dict[str, Any] = {
        "spec_template": spec.template,
        "spec_num_branches": unit.num_branches,
        "spec_kernels": "+".join(f"{b.kernel}x{b.kernel}d{b.dilation}" for b in unit.branches),
        "spec_groups": "+".join(str(b.groups) for b in unit.branches),
        "spec_relu": "+".join("1" if b.relu else "0" for b in unit.branches),
        "spec_attention": unit.selects,
        "spec_reduction": unit.reduction,
        "spec_min_dim": unit.min_dim,
        "spec_depths": ",".join(str(stage.depth) for stage in spec.stages),
        "spec_widths": ",".join(str(stage.width) for stage in spec.stages),
        "spec_out_widths": ",".join(str(stage.out_width) for stage in spec.stages),
        "spec_se": spec.se,
        "spec_se_reduction": spec.se_reduction,
        "spec_stem_width": spec.stem_width,
        "spec_num_classes": spec.num_classes,
        "spec_input_size": spec.input_size,
        # the SK family's knobs (docs/api.md: The spec)
        "spec_kind": unit.kind,
        "spec_gate": unit.gate,
        "spec_split_input": unit.split_input,
        "spec_width_rule": unit.width_rule,
        "spec_fuse_bn": unit.fuse_bn,
        "spec_attention_stages": spec.attention_stages_text,
        "spec_block": spec.block,
        "spec_attention_module": "se" if spec.se else spec.attention_module,
        "spec_resnet_d": spec.deep_stem or spec.avg_down,
        "spec_avd": ("first" if spec.avd_first else "after") if spec.avd else "none",
    }
    for m, branch in enumerate(unit.branches):
        columns[f"kernel_{m}"] = branch.kernel
        columns[f"dilation_{m}"] = branch.dilation
        columns[f"groups_{m}"] = branch.groups_for(spec.stages[0].width)
    return columns


def with_spec_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with every spec column, rebuilt from the `spec` JSON where missing (tables written
    before a column existed); a knob column of the same name is kept as the sweep wrote it."""
    if "spec" not in frame or frame.empty:
        return frame
    if "spec_num_branches" in frame:  # the row with the most branches has every column: one parse tells
        widest = NetSpec.from_dict(json.loads(frame["spec"].loc[frame["spec_num_branches"].idxmax()]))
        if all(column in frame for column in spec_columns(widest)):
            return frame
    restated = pd.DataFrame([spec_columns(NetSpec.from_dict(json.loads(text))) for text in frame["spec"]],
                            index=frame.index)  # fmt: skip
    missing = [c for c in restated.columns if c not in frame.columns]
    return pd.concat([frame, restated[missing]], axis=1) if missing else frame


def parse_objectives(
    value: str | Sequence[str], path: str, frame: pd.DataFrame | None = None, sizes: range | None = None
) -> tuple[tuple[str, str], ...]:
    """`"top1_err:min,gmacs:min"` (or a list of such items) -> ((column, mode), ...).

    Without `frame` the columns must be ones a sweep reports (OBJECTIVE_METRICS); with it, any
    numeric column of the table. `sizes` bounds how many objectives are allowed."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(path, f"must list objectives like top1_err:min, got {value!r}")
    objectives = tuple(_objective(item, f"{path}[{index}]", frame) for index, item in enumerate(items))
    if sizes is not None and len(objectives) not in sizes:
        allowed = " or ".join(map(str, sizes)) if len(sizes) <= 2 else f"{sizes[0]} to {sizes[-1]}"
        raise ConfigError(path, f"takes {allowed} objectives, got {len(objectives)}")
    if len({name for name, _ in objectives}) != len(objectives):
        raise ConfigError(path, "lists a column twice")
    return objectives


def objective_signs(objectives: Sequence[tuple[str, str]]) -> np.ndarray:
    """+1 for an objective minimised, -1 for one maximised: values times signs are all minimised."""
    return np.array([1.0 if mode == "min" else -1.0 for _, mode in objectives])


def optuna_directions(objectives: Sequence[tuple[str, str]]) -> list[str]:
    """The objectives' directions as Optuna names them."""
    return ["minimize" if mode == "min" else "maximize" for _, mode in objectives]


def _objective(item: Any, path: str, frame: pd.DataFrame | None) -> tuple[str, str]:
    name, _, mode = str(item).strip().partition(":")
    mode = mode or "min"
    if mode not in ("min", "max"):
        raise ConfigError(path, f"mode must be min or max, got {mode!r}")
    if frame is None and name not in OBJECTIVE_METRICS:
        raise ConfigError(path, f"unknown metric {name!r} (known: {', '.join(OBJECTIVE_METRICS)})")
    if frame is not None and name not in frame:
        raise ConfigError(path, f"no column {name!r} in the results table")
    if frame is not None and not pd.api.types.is_numeric_dtype(frame[name]):
        raise ConfigError(path, f"column {name!r} is not numeric")
    return name, mode


# Statuses whose metrics are a finished training's results (fronts, tables, exports and EDFs use them).
RESULT_STATUSES = ("completed", "reused")


def results_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that are finished results: completed trials and those answered from the store."""
    return frame[frame["status"].isin(RESULT_STATUSES)] if "status" in frame and len(frame) else frame


def best_trials(frame: pd.DataFrame, metric: str, mode: str = "min") -> pd.DataFrame:
    """Rows ordered best first by `metric` (ties keep their order; NaN last)."""
    return frame.sort_values(metric, ascending=mode == "min", kind="stable", na_position="last")


def best_trial(frame: pd.DataFrame, metric: str, mode: str = "min") -> pd.Series:
    """The best row by `metric`: the one "best trial" rule of status, export and the summaries."""
    return best_trials(frame, metric, mode).iloc[0]
