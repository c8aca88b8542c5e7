"""After (and during) a sweep: the merged results table, Pareto fronts, the paper's tables beside
ours, and exported configurations that rebuild the exact model.

Everything works on the table written by the sweep (table.py); the Python functions mirror the
CLI: `load_results`, `pareto`, `hypervolume`, `knee`, `paper_table`, `export`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sksearch.complexity import count
from sksearch.files import atomic_write, atomic_write_text, exists, join, read_bytes
from sksearch.paper import published, twin_of
from sksearch.presets import preset
from sksearch.recipes import Recipe
from sksearch.spec import ConfigError, NetSpec
from sksearch.statistics import (
    check_single_recipe,
    compare_knob,
    kendall_tau,
    paired_summary,
    seed_differences,
    verdict,
)
from sksearch.table import PLAN, TRIALS, knob_columns, read_history, read_trials

Objectives = Sequence[tuple[str, str]]


# -- the merged table ---------------------------------------------------------------------------


def load_results(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """The trials of one or more sweeps as one table (a `sweep` column tells them apart)."""
    frames = []
    for run_dir in run_dirs:
        location = str(run_dir)
        if not exists(join(location, PLAN)):
            raise ConfigError(location, f"is not a sksearch sweep folder (no {PLAN})")
        frame = read_trials(location)
        if len(frame):
            frame["run_dir"] = location
            frames.append(frame)
    if not frames:
        raise ConfigError("RUN_DIR", f"no finished trial yet (no rows in {TRIALS})")
    return pd.concat(frames, ignore_index=True, sort=False)


def query(frame: pd.DataFrame, where: str | None = None, sort: str | None = None) -> pd.DataFrame:
    """Rows matching a pandas query expression, sorted by a column (`column:desc` for descending)."""
    if where:
        try:
            frame = frame.query(where)
        except Exception as error:  # pandas raises many kinds for a bad expression
            raise ConfigError("--where", f"cannot evaluate {where!r} ({type(error).__name__}: {error})") from None
    if sort:
        column, _, order = sort.partition(":")
        if column not in frame:
            raise ConfigError("--sort", f"no column {column!r}")
        if order not in ("", "asc", "desc"):
            raise ConfigError("--sort", f"order must be asc or desc, got {order!r}")
        frame = frame.sort_values(column, ascending=order != "desc", kind="stable")
    return frame


def parse_objectives(text: str | Sequence[str], frame: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """`top1_err:min,gmacs:min` -> [(name, mode)]; any numeric column of `frame` may be one."""
    items = text.split(",") if isinstance(text, str) else list(text)
    objectives = []
    for index, item in enumerate(items):
        name, _, mode = str(item).strip().partition(":")
        mode = mode or "min"
        if mode not in ("min", "max"):
            raise ConfigError(f"--objectives[{index}]", f"mode must be min or max, got {mode!r}")
        if frame is not None:
            if name not in frame:
                raise ConfigError(f"--objectives[{index}]", f"no column {name!r} in the results table")
            if not pd.api.types.is_numeric_dtype(frame[name]):
                raise ConfigError(f"--objectives[{index}]", f"column {name!r} is not numeric")
        objectives.append((name, mode))
    if not 2 <= len(objectives) <= 3:
        raise ConfigError("--objectives", f"a Pareto front takes 2 or 3 objectives, got {len(objectives)}")
    if len({name for name, _ in objectives}) != len(objectives):
        raise ConfigError("--objectives", "lists a column twice")
    return objectives


# -- Pareto fronts ------------------------------------------------------------------------------


def seed_means(frame: pd.DataFrame, objectives: Objectives) -> pd.DataFrame:
    """One point per network and recipe: the mean of each objective over its seeds, with std and n.
    Only completed trials with every objective present count."""
    names = [name for name, _ in objectives]
    usable = frame[(frame.get("status", "completed") == "completed")].dropna(subset=names).copy()
    if usable.empty:
        return usable
    usable["recipe_key"] = usable.get("recipe_json", pd.Series("", index=usable.index)).map(_without_seed)
    grouped = usable.groupby(["archid", "recipe_key"], sort=False)
    points = grouped.first().reset_index()
    for name in names:
        points[name] = grouped[name].mean().to_numpy()
        points[f"{name}_std"] = grouped[name].std(ddof=1).fillna(0.0).to_numpy()
    points["n"] = grouped.size().to_numpy()
    points["trial_ids"] = grouped["trial_id"].agg(list).to_numpy() if "trial_id" in usable else [[]] * len(points)
    return points.drop(columns=["recipe_key"])


def _without_seed(recipe_json: Any) -> str:
    if not isinstance(recipe_json, str) or not recipe_json:
        return ""
    data = json.loads(recipe_json)
    data.pop("seed", None)
    return json.dumps(data, sort_keys=True)


def _as_minimised(frame: pd.DataFrame, objectives: Objectives) -> np.ndarray:
    return np.column_stack([frame[name].to_numpy(float) * (1 if mode == "min" else -1) for name, mode in objectives])


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (all <=, one <); ties stay on the front."""
    keep = np.ones(len(values), dtype=bool)
    for index, point in enumerate(values):
        dominates_it = np.all(values <= point, axis=1) & np.any(values < point, axis=1)
        keep[index] = not dominates_it.any()
    return keep


def pareto(frame: pd.DataFrame, objectives: Objectives | str) -> pd.DataFrame:
    """The non-dominated networks, on seed means (each point with <objective>_std and n), sorted by
    the first objective. Failed, stopped and errored trials, and rows missing an objective, are out."""
    if isinstance(objectives, str):
        objectives = parse_objectives(objectives, frame)
    points = seed_means(frame, objectives)
    if points.empty:
        return points
    front = points[non_dominated(_as_minimised(points, objectives))]
    first, mode = objectives[0]
    return front.sort_values(first, ascending=mode == "min", kind="stable").reset_index(drop=True)


def default_reference(frame: pd.DataFrame, objectives: Objectives) -> list[float]:
    """The worst value of each objective among the usable points, 10% of its range beyond it."""
    values = _as_minimised(seed_means(frame, objectives), objectives)
    worst, best = values.max(axis=0), values.min(axis=0)
    margin = np.where(worst > best, 0.1 * (worst - best), np.maximum(np.abs(worst) * 0.1, 1e-9))
    return [float(v * (1 if mode == "min" else -1)) for v, (_, mode) in zip(worst + margin, objectives, strict=True)]


def hypervolume(front: pd.DataFrame, objectives: Objectives, reference: Sequence[float]) -> float:
    """The volume the front dominates, bounded by `reference` (in each objective's own units)."""
    signs = np.array([1 if mode == "min" else -1 for _, mode in objectives])
    points = _as_minimised(front, objectives)
    bound = np.asarray(reference, dtype=float) * signs
    points = points[np.all(points < bound, axis=1)]
    return float(_hypervolume(points, bound))


def _hypervolume(points: np.ndarray, bound: np.ndarray) -> float:
    """Exact, by slicing along the last objective (fine for fronts of hundreds of points)."""
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(bound[0] - points[:, 0].min())
    order = np.argsort(points[:, -1])
    points = points[order]
    volume = 0.0
    for index in range(len(points)):
        top = points[index + 1, -1] if index + 1 < len(points) else bound[-1]
        height = top - points[index, -1]
        if height > 0:
            volume += height * _hypervolume(points[: index + 1, :-1], bound[:-1])
    return volume


def knee(front: pd.DataFrame, objectives: Objectives) -> int:
    """Index (in `front`) of the knee: the point nearest the ideal corner once every objective is
    scaled to [0, 1] over the front."""
    values = _as_minimised(front, objectives)
    low, high = values.min(axis=0), values.max(axis=0)
    scaled = (values - low) / np.where(high > low, high - low, 1.0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))


# -- ablations: what one knob changes, paired by seed -------------------------------------------------


def compare(frame: pd.DataFrame, knob: str = "attention", metrics: Sequence[str] = ("top1_err",)) -> pd.DataFrame:
    """Pairs the networks that differ only in `knob`, pairs their runs by seed, and gives per pair
    and overall the mean difference of each metric (value_b - value_a; for a boolean knob, with
    minus without) with its 95% interval, the verdict, the seeds that would resolve the gap, and
    the paper's difference where it has both rows (see sksearch.statistics)."""
    done = frame[frame["status"] == "completed"] if "status" in frame else frame
    design = [c for c in done.columns if c.startswith("spec_")] if knob.startswith("spec_") else knob_columns(done)
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
    table = compare_knob(done, knob, design, metrics, published_errors())
    if table.empty:
        raise ConfigError("--knob", f"no two networks of these runs differ only in {knob} and share a seed")
    return table


def sweep_objectives(run_dirs: Iterable[str | Path]) -> list[str]:
    """The objective metrics of the sweeps' plans (sweep.json, read without Ray), in order, each once."""
    names: list[str] = []
    for run_dir in run_dirs:
        search = json.loads(read_bytes(join(str(run_dir), PLAN)))["space"].get("search", {})
        for item in search.get("objectives", ["top1_err:min"]):
            name = str(item).partition(":")[0]
            names += [] if name in names else [name]
    return names


def published_errors() -> dict[str, float]:
    """archid -> the paper's top-1 error (224 px) of every published row a preset builds."""
    errors: dict[str, float] = {}
    for record in published().to_dict("records"):
        if record["model"] and record["top1_err_224"]:
            errors.setdefault(preset(record["model"]).archid, float(record["top1_err_224"]))
    return errors


# -- the paper's tables -------------------------------------------------------------------------

PAPER_TABLES = {"table3": "T3", "table4": "T4", "table5": "T5", "table6": "T6", "table7": "T7", "tables8": "S8"}

# Table 3's space is compute-matched, so its variants are recognised by how the baseline was
# grown rather than by the paper's exact networks.
_TABLE3_DIRECTIONS = {
    "resnext50_wider": {"branches": "K3", "depths": "3,4,6,3", "cardinality": 32},
    "resnext56_deeper": {"branches": "K3", "depths": "3,4,8,3", "cardinality": 32},
    "resnext50_36x4d": {"branches": "K3", "depths": "3,4,6,3", "cardinality": 36},
}


def _matches(frame: pd.DataFrame, model: str) -> pd.Series:
    by_archid = frame["archid"] == preset(model).archid
    direction = _TABLE3_DIRECTIONS.get(model)
    if direction and all(column in frame for column in direction):
        by_direction = pd.Series(True, index=frame.index)
        for column, value in direction.items():
            by_direction &= frame[column].astype(str) == str(value)
        return by_archid | by_direction
    return by_archid


def paper_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The paper's rows with our measured error (mean +- std over seeds, n), params and GMACs beside
    the published figures. A row no trial matches shows as missing; other networks of the sweep
    follow, marked `extra`."""
    if table not in PAPER_TABLES:
        raise ConfigError("--paper", f"must be one of {', '.join(PAPER_TABLES)}, got {table!r}")
    rows = published()
    rows = rows[(rows["table"] == PAPER_TABLES[table]) & (rows["model"] != "")]
    done = frame[frame["status"] == "completed"] if "status" in frame else frame
    matched = pd.Series(False, index=done.index)
    out, trials_of = [], {}
    for record in rows.to_dict("records"):
        mask = _matches(done, record["model"])
        matched |= mask
        ours = trials_of[record["row"]] = done[mask]
        spec_complexity = count(record["model"])
        out.append(
            {
                "row": record["row"],
                "model": record["model"],
                "published_top1_err": _number(record["top1_err_224"]),
                **({"published_cifar100_err": _number(record["cifar100_err"])} if table == "table5" else {}),
                **_measured(ours),
                "published_params_m": record["params_m"],  # as printed
                "params_m": round(ours["params_m"].mean(), 3) if len(ours) else round(spec_complexity.params_m, 3),
                "published_gmacs": _published_gmacs(record),
                "gmacs": round(ours["gmacs"].mean(), 4) if len(ours) else round(spec_complexity.gmacs, 4),
            }
        )
    for archid, group in done[~matched].groupby("archid", sort=False):
        out.append(
            {
                "row": "extra",
                "model": archid,
                **_measured(group),
                "params_m": round(group["params_m"].mean(), 3),
                "gmacs": round(group["gmacs"].mean(), 4),
            }
        )
    for row in out[: len(rows)]:
        row.update(_twin_difference(PAPER_TABLES[table], row, out, trials_of))
    result = pd.DataFrame(out)
    if "top1_err" in result and "published_top1_err" in result:
        result["err_diff"] = (result["top1_err"] - result["published_top1_err"]).round(2)
    return result


def _twin_difference(code: str, row: dict, rows: list[dict], trials_of: dict) -> dict[str, Any]:
    """The row's top-1 error minus its twin's (paper.twin_of), paired by seed, with its 95% interval,
    beside the paper's own difference."""
    twin = twin_of(code, row["row"])
    if twin is None:
        return {"twin": None}
    published_twin = next(r["published_top1_err"] for r in rows if r["row"] == twin)
    summary = paired_summary(seed_differences(trials_of[twin], trials_of[row["row"]], "top1_err"))
    return {
        "twin": twin,
        "diff_to_twin": summary["diff"],
        "diff_ci_low": summary["ci_low"],
        "diff_ci_high": summary["ci_high"],
        "diff_n": summary["n"],
        "diff_verdict": verdict(summary, "lower than twin", "higher than twin") if summary["n"] else "not run",
        "seeds_to_resolve": summary["seeds_to_resolve"],
        "published_diff_to_twin": None
        if row["published_top1_err"] is None or published_twin is None
        else round(row["published_top1_err"] - published_twin, 2),
    }


def rank_agreement(table: pd.DataFrame) -> tuple[float, int]:
    """Kendall tau between our rows' mean errors and the published ones, over the rows run, and n."""
    if "published_top1_err" not in table:
        return float("nan"), 0
    ran = table[(table["row"] != "extra") & (table["status"] == "run")]
    return kendall_tau(ran["top1_err"].tolist(), ran["published_top1_err"].tolist())


def published_points(frame: pd.DataFrame) -> pd.DataFrame:
    """The published (error, params, GMACs) of every paper row the sweep ran, under our column names."""
    points = []
    for name in PAPER_TABLES:
        table = paper_table(frame, name)
        ran = table[(table["row"] != "extra") & (table["status"] == "run")]
        for row in ran.to_dict("records"):
            points.append(
                {
                    "row": row["row"],
                    "top1_err": row["published_top1_err"],
                    "params_m": row["published_params_m"],
                    "gmacs": row["published_gmacs"],
                }
            )
    return pd.DataFrame(points, columns=["row", "top1_err", "params_m", "gmacs"])


def _number(text: str | None) -> float | None:
    return float(text) if text else None


def _published_gmacs(record: dict) -> str:
    """As printed: GFLOPs (= GMACs), or Table 4's MFLOPs in GMACs with the same precision."""
    if record["gflops"]:
        return record["gflops"]
    if record["mflops"]:
        return f"{float(record['mflops']) / 1000:.{len(record['mflops'].split('.')[1]) + 3}f}"
    return ""


def _measured(trials: pd.DataFrame) -> dict[str, Any]:
    if not len(trials):
        return {"top1_err": None, "top1_err_std": None, "n": 0, "status": "missing"}
    errors = trials["top1_err"].astype(float)
    return {
        "top1_err": round(errors.mean(), 2),
        "top1_err_std": round(errors.std(ddof=1), 2) if len(errors) > 1 else 0.0,
        "n": len(errors),
        "status": "run",
    }


def render_paper_table(table: pd.DataFrame, name: str, recipes: Sequence[str]) -> str:
    """Markdown: missing rows shown as missing, each row's paired difference to its twin with its
    95% interval beside the paper's, and how far our row order agrees with the paper's."""
    tau, ranked = rank_agreement(table)
    lines = [
        f"# {name}: measured beside the published figures",
        "",
        f"Measured under recipe {', '.join(sorted(set(recipes))) or '-'}: published errors are the paper's "
        "(ImageNet, or CIFAR for Table 5), so errors compare only under the matching recipe.",
        "`vs twin`: this row's top-1 error minus its twin's (the row it modifies), paired by seed, with "
        "its 95% t interval; `within noise` when the interval holds zero.",
        f"Rank agreement with the paper (Kendall tau over the {ranked} rows run): "
        + ("-" if math.isnan(tau) else f"{tau:+.2f}"),
        "",
        "| row | model | top-1 err published | top-1 err ours (mean +- std, n) | vs twin: ours (95% CI) "
        "| vs twin: paper | #P published | #P ours | GMACs published | GMACs ours |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.to_dict("records"):
        if row.get("status") == "missing":
            ours = "missing"
        else:
            ours = f"{row['top1_err']:.2f} +- {row['top1_err_std']:.2f} (n={row['n']})"
        lines.append(
            f"| {row['row']} | `{row['model']}` | {_cell(row.get('published_top1_err'))} | {ours} "
            f"| {_twin_cell(row)} | {_cell(row.get('published_diff_to_twin'))} "
            f"| {_cell(row.get('published_params_m'))} | {_cell(row['params_m'])} "
            f"| {_cell(row.get('published_gmacs'))} | {_cell(row['gmacs'])} |"
        )
    return "\n".join(lines) + "\n"


def _twin_cell(row: dict) -> str:
    twin = row.get("twin")
    if not isinstance(twin, str):
        return ""
    if not row["diff_n"]:
        return f"vs {twin}: not run"
    if row["diff_n"] < 2:
        return f"{row['diff_to_twin']:+.2f} (one seed: no interval)"
    return f"{row['diff_to_twin']:+.2f} [{row['diff_ci_low']:+.2f}, {row['diff_ci_high']:+.2f}] {row['diff_verdict']}"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- export -------------------------------------------------------------------------------------


def select_for_export(
    frame: pd.DataFrame,
    *,
    front_objectives: Objectives | None = None,
    best: str | None = None,
    top: int = 1,
    archid: str | None = None,
) -> pd.DataFrame:
    """The trials to export: the Pareto front (best seed of each point), the top K by a metric, or
    the best trial of one archid."""
    done = frame[frame["status"] == "completed"]
    if front_objectives:
        front = pareto(done, front_objectives)
        first, mode = front_objectives[0]
        ids = [_best_of(done[done["trial_id"].isin(ids)], first, mode) for ids in front["trial_ids"]]
        return done[done["trial_id"].isin(ids)]
    if best:
        metric, _, mode = best.partition(":")
        if metric not in done:
            raise ConfigError("--best", f"no column {metric!r} in the results table")
        mode = mode or ("max" if metric in ("images_per_s",) else "min")
        return done.sort_values(metric, ascending=mode == "min", kind="stable").head(top)
    if archid:
        chosen = done[done["archid"] == archid]
        if chosen.empty:
            raise ConfigError("--archid", f"no completed trial has archid {archid!r}")
        return done[done["trial_id"] == _best_of(chosen, "top1_err", "min")]
    raise ConfigError("export", "choose --pareto, --best METRIC or --archid ID")


def _best_of(trials: pd.DataFrame, metric: str, mode: str) -> str:
    return trials.sort_values(metric, ascending=mode == "min", kind="stable")["trial_id"].iloc[0]


def export(trials: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """One folder per trial: spec.yaml (the network as trained: the weights fit it), declared_spec.yaml,
    complexity.json, recipe.json, metrics.json and weights.safetensors."""
    from safetensors.torch import save_file

    from sksearch.train import CHECKPOINT, load_checkpoint

    out_dir = Path(out_dir)
    folders = []
    for row in trials.to_dict("records"):
        folder = out_dir / f"{row['archid']}-{row['trial_id']}"
        checkpoint = row.get("checkpoint")
        if not isinstance(checkpoint, str) or not exists(join(checkpoint, CHECKPOINT)):
            raise ConfigError(f"trial {row['trial_id']}", f"has no checkpoint to export (checkpoint: {checkpoint!r})")
        trained, weights, recipe = load_checkpoint(_local(join(checkpoint, CHECKPOINT)))
        declared = NetSpec.from_dict(json.loads(row["spec"]))
        atomic_write_text(folder / "spec.yaml", trained.to_yaml())
        atomic_write_text(folder / "declared_spec.yaml", declared.to_yaml())
        atomic_write_text(folder / "complexity.json", json.dumps(_complexity_record(trained, declared), indent=2))
        atomic_write_text(folder / "recipe.json", json.dumps(recipe, indent=2))
        metrics = {
            k: _plain(row.get(k))
            for k in (
                "trial_id",
                "sweep",
                "seed",
                "top1_err",
                "top5_err",
                "train_loss",
                "best_top1_err",
                "best_top5_err",
                "best_epoch",
                "epochs",
            )
        }
        atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2))
        tensors = {name: tensor.contiguous() for name, tensor in weights.items()}
        atomic_write(folder / "weights.safetensors", lambda temporary, t=tensors: save_file(t, str(temporary)))
        folders.append(folder)
    return folders


def _local(location: str) -> str:
    """A checkpoint file a torch.load can open (URIs are copied to a temporary file first)."""
    from sksearch.files import is_uri, read_bytes

    if not is_uri(location):
        return location
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pt", delete=False) as handle:
        handle.write(read_bytes(location))
    return handle.name


def _complexity_record(trained: NetSpec, declared: NetSpec) -> dict[str, Any]:
    def record(spec: NetSpec) -> dict[str, Any]:
        complexity = count(spec)
        return {
            "archid": spec.archid,
            "params": complexity.params,
            "macs": complexity.macs,
            "gmacs": complexity.gmacs,
            "input_size": spec.input_size,
        }

    return {"trained": record(trained), "declared": record(declared)}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_export(folder: str | Path):
    """(model with the exported weights, spec) from an export folder."""
    from safetensors.torch import load_file

    from sksearch.nets import build
    from sksearch.spec import read_spec

    folder = Path(folder)
    spec = read_spec(folder / "spec.yaml")
    model = build(spec)
    model.load_state_dict(load_file(str(folder / "weights.safetensors")))
    return model, spec


def learning_curves(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    frames = [read_history(str(run_dir)) for run_dir in run_dirs]
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
