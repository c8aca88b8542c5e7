"""The `sksearch` command. Each verb parses its flags and calls into the modules; nothing else.

Bad input of any kind ends in one line on stderr naming the field and the reason, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sksearch.spec import ConfigError, NetSpec, read_spec


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def spec_argument(text: str) -> tuple[str, NetSpec]:
    """A preset name or a spec YAML file, with the label to show for it."""
    from sksearch.presets import preset

    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        return Path(text).stem, read_spec(text)
    return text, preset(text)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers separated by commas, got {text!r}") from None
    return values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# -- verbs --------------------------------------------------------------------------------------


def cmd_presets(args: argparse.Namespace) -> int:
    from sksearch.complexity import count
    from sksearch.presets import PRESETS

    print(f"{'name':32s} {'params (M)':>10s} {'GMACs':>8s}  description")
    for name, entry in PRESETS.items():
        complexity = count(name)
        print(f"{name:32s} {complexity.params_m:10.3f} {complexity.gmacs:8.3f}  {entry.description}")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    _, spec = spec_argument(args.model)
    text = spec.to_yaml()
    if args.out:
        from sksearch.files import atomic_write_text

        atomic_write_text(args.out, text)
        print(f"wrote {args.out} (archid {spec.archid})")
    else:
        sys.stdout.write(text)
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    from sksearch.complexity import count

    label, spec = spec_argument(args.model)
    methods = ("analytic", "fvcore") if args.method == "both" else (args.method,)
    results = {method: count(spec, method, args.input_size) for method in methods}
    mismatch = len(results) == 2 and (
        results["analytic"].params != results["fvcore"].params or results["analytic"].macs != results["fvcore"].macs
    )
    if args.json:
        payload = {"model": label, "archid": spec.archid, **{m: c.to_dict() for m, c in results.items()}}
        print(json.dumps(payload, indent=2))
    else:
        print(_format_count(label, spec, results))
    if mismatch:
        sys.stderr.write("sksearch count: error: the analytic and fvcore counts disagree (please report)\n")
        return 1
    return 0


def _format_count(label: str, spec: NetSpec, results: dict) -> str:
    first = next(iter(results.values()))
    lines = [
        f"{label}  archid {spec.archid}  template {spec.template}  input {first.input_size}x{first.input_size}  "
        f"M={spec.num_branches}",
        f"{'method':9s} {'params':>12s} {'GMACs':>9s} {'fvcore GFLOPs':>14s} {'elementwise GFLOPs':>19s}",
    ]
    for method, complexity in results.items():
        fvcore = "-" if complexity.fvcore_flops is None else f"{complexity.fvcore_flops / 1e9:.4f}"
        extra = "-" if complexity.elementwise_flops is None else f"{complexity.elementwise_flops / 1e9:.4f}"
        lines.append(f"{method:9s} {complexity.params:>12,d} {complexity.gmacs:9.4f} {fvcore:>14s} {extra:>19s}")
    lines.append(f"{'part':9s} {'params (M)':>12s} {'GMACs':>9s} {'activations (M)':>16s}")
    for part in first.parts:
        lines.append(f"{part.name:9s} {part.params / 1e6:12.3f} {part.macs / 1e9:9.4f} {part.activations / 1e6:16.3f}")
    lines.append("params: learnable parameters; GMACs: conv + linear multiply-accumulates (the paper's GFLOPs)")
    return "\n".join(lines)


def cmd_paper(args: argparse.Namespace) -> int:
    from sksearch.paper import write_report

    csv_path, md_path = write_report(args.out)
    print(md_path.read_text())
    print(f"wrote {csv_path} and {md_path}")
    return 0


def parse_settings(pairs: Sequence[str], path: str = "--set") -> dict:
    """`key=value` pairs, values read as YAML (`epochs=3`, `lr=0.05`, `scale_range=[1, 3]`)."""
    from sksearch.spec import parse_yaml

    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(path, f"expects key=value, got {pair!r}")
        settings[key.strip()] = parse_yaml(value) if value.strip() else None
    return settings


def cmd_train(args: argparse.Namespace) -> int:
    from sksearch.recipes import recipe_from
    from sksearch.train import train, write_summary

    label, spec = spec_argument(args.model)
    try:
        recipe = recipe_from({"preset": args.recipe, **parse_settings(args.set)})
    except ConfigError as error:
        raise error.within("recipe") from None
    out = Path(args.out or f"results/train/{label}")
    print(f"training {label} (archid {spec.archid}) under recipe {recipe.name} -> {out}")
    result = train(spec, recipe, out, report=_print_epoch, resume=not args.restart, progress=True)
    write_summary(result, spec, recipe, out)
    final = result.final
    print(
        f"{result.status}{': ' + result.reason if result.reason else ''}; {result.epochs_run} epochs in "
        f"{result.wall_time:.1f}s; params {result.params / 1e6:.3f}M, GMACs {result.macs / 1e9:.4f} (as trained)"
    )
    if final:
        best = result.best
        print(
            f"final top-1 error {final['top1_err']:.2f}%, top-5 {final['top5_err']:.2f}%; "
            f"best top-1 {best['top1_err']:.2f}% at epoch {best['epoch']}; files in {out}"
        )
    return 0 if result.status == "completed" else 1


def _print_epoch(metrics: dict, checkpoint: object) -> None:
    print(
        f"epoch {metrics['epoch']:3d}  loss {metrics['train_loss']:.4f}  top-1 err {metrics['top1_err']:6.2f}%  "
        f"top-5 err {metrics['top5_err']:6.2f}%  {metrics['epoch_time']:.1f}s  {metrics['images_per_s']:.0f} img/s"
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    from sksearch.sweep import Resources, plan_sweep, run_sweep

    resources = Resources(
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        workers_per_trial=args.workers_per_trial,
        max_concurrent=args.max_concurrent,
    )
    settings = parse_settings(args.set)
    plan = plan_sweep(
        args.space,
        recipe=args.recipe,
        settings=settings,
        algorithm=args.algorithm,
        num_samples=args.num_samples,
        objectives=args.objectives,
        early_stopping=args.early_stopping,
        seeds=args.seeds,
        name=args.name,
        storage=args.storage,
        address=args.address,
        resources=resources,
        max_failures=args.max_failures,
    )
    search = plan.space.search
    print(
        f"sweep {plan.name}: space {args.space}, {search.algorithm} search, recipe {plan.space.recipe.name}, "
        f"objectives {', '.join(f'{m}:{o}' for m, o in search.objectives)} -> {plan.run_dir}"
    )
    table = run_sweep(plan, address=args.address, num_cpus=args.num_cpus, progress=not args.quiet)
    _print_outcome(plan.run_dir, table, search.objectives)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from sksearch.sweep import load_plan, resume_sweep

    plan = load_plan(args.run_dir)
    print(f"resuming sweep {plan.name} in {args.run_dir}")
    table = resume_sweep(args.run_dir, address=args.address, num_cpus=args.num_cpus)
    _print_outcome(args.run_dir, table, plan.objectives)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sksearch.sweep import sweep_status

    status = sweep_status(args.run_dir)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    states = ", ".join(f"{state} {n}" for state, n in sorted(status["states"].items())) or "no trials yet"
    print(f"sweep {status['sweep']} ({status['space']}): {states}; elapsed {status['elapsed_s'] / 60:.1f} min")
    best = status["best"]
    metric = status["objective"].split(":")[0]
    print(
        f"best {status['objective']}: "
        + (f"{best[metric]:.3f} (trial {best['trial_id']}, archid {best['archid']})" if best else "none finished yet")
    )
    return 0


def _print_outcome(run_dir: str, table, objectives) -> None:
    """Where the table is; the Pareto front (also as pareto.csv / pareto.png in the run folder)."""
    from sksearch.files import is_uri, join
    from sksearch.table import TRIALS

    counts = table["status"].value_counts().to_dict() if len(table) else {}
    print(
        f"results table: {join(str(run_dir), TRIALS)} ({len(table)} trials: "
        + ", ".join(f"{status} {n}" for status, n in counts.items())
        + ")"
    )
    done = table[table["status"] == "completed"] if len(table) else table
    if len(objectives) < 2 or done.empty:
        if len(done):
            metric, mode = objectives[0]
            best = done.sort_values(metric, ascending=mode == "min").iloc[0]
            print(f"best {metric}: {best[metric]:.4g} (archid {best['archid']}, trial {best['trial_id']})")
        return
    from sksearch.analysis import plot_pareto
    from sksearch.files import atomic_write_text
    from sksearch.results import pareto, published_points

    front = pareto(done, objectives)
    names = [name for name, _ in objectives]
    print(f"Pareto front ({', '.join(f'{n}:{m}' for n, m in objectives)}), {len(front)} networks:")
    print(front[["archid", *names, "n"]].to_string(index=False))
    if not is_uri(run_dir):
        atomic_write_text(Path(run_dir) / "pareto.csv", front.drop(columns=["trial_ids"]).to_csv(index=False))
        plot_pareto(done, objectives, Path(run_dir) / "pareto.png", published_points(done))
        print(f"Pareto front: {Path(run_dir) / 'pareto.csv'} and pareto.png (more: sksearch pareto {run_dir})")


def cmd_results(args: argparse.Namespace) -> int:
    from sksearch.results import load_results, query

    frame = query(load_results(args.run_dirs), args.where, args.sort)
    if args.columns:
        missing = [c for c in args.columns.split(",") if c not in frame]
        if missing:
            raise ConfigError("--columns", f"no column {missing[0]!r} in the results table")
        frame = frame[args.columns.split(",")]
    _emit(frame, args.format, args.out, default_columns=_SUMMARY_COLUMNS)
    return 0


_SUMMARY_COLUMNS = ("trial_id", "sweep", "status", "archid", "top1_err", "top5_err", "gmacs", "params_m", "seed")


def _emit(frame, fmt: str, out: str | None, default_columns=()) -> None:
    """Print or write a table: table (text), csv, json or parquet (parquet needs --out)."""
    from sksearch.files import atomic_write, atomic_write_text

    if fmt == "parquet":
        if not out:
            raise ConfigError("--out", "is required with --format parquet")
        atomic_write(out, lambda temporary: frame.to_parquet(temporary, index=False))
    else:
        if fmt == "table":
            shown = frame
            if default_columns and len(frame.columns) > 14:
                knobs = [c for c in frame.columns if c not in default_columns and not c.startswith(_DETAIL_PREFIXES)]
                shown = frame[[c for c in default_columns if c in frame] + knobs[:8]]
            text = shown.to_string(index=False) if len(shown) else "(no rows)"
        elif fmt == "csv":
            text = frame.to_csv(index=False)
        else:
            text = frame.to_json(orient="records", indent=2, default_handler=str)
        if out:
            atomic_write_text(out, text if text.endswith("\n") else text + "\n")
        else:
            print(text)
    if out:
        print(f"wrote {len(frame)} rows to {out}")


_DETAIL_PREFIXES = (
    "spec",
    "trained_",
    "recipe",
    "best_",
    "checkpoint",
    "node_id",
    "run_dir",
    "reason",
    "wall_time",
    "epochs",
    "fvcore",
    "macs",
    "params",
    "images_per_s",
    "resumed",
    "train_loss",
)


def cmd_pareto(args: argparse.Namespace) -> int:
    from sksearch.results import (
        default_reference,
        hypervolume,
        knee,
        load_results,
        pareto,
        parse_objectives,
        seed_means,
    )

    frame = load_results(args.run_dirs)
    objectives = parse_objectives(args.objectives, frame)
    front = pareto(frame, objectives)
    if front.empty:
        raise ConfigError("RUN_DIR", "no completed trial has every objective")
    reference = _reference(args.reference, objectives) or default_reference(frame, objectives)
    names = [name for name, _ in objectives]
    shown = front[["archid", *[c for n in names for c in (n, f"{n}_std")], "n"]].copy()
    knee_index = knee(front, objectives)
    shown.insert(0, "knee", ["*" if i == knee_index else "" for i in range(len(shown))])
    _emit(shown, args.format, args.out)
    points = seed_means(frame, objectives)
    print(
        f"{len(front)} networks on the front, of {len(points)} networks ({points['n'].sum()} completed trials); "
        f"objectives {', '.join(f'{n}:{m}' for n, m in objectives)}"
    )
    print(
        f"hypervolume {hypervolume(front, objectives, reference):.6g} against reference point "
        f"({', '.join(f'{v:g}' for v in reference)})"
    )
    knee_row = front.iloc[knee_index]
    print(f"knee: {knee_row['archid']} (" + ", ".join(f"{n} {knee_row[n]:.4g}" for n in names) + ")")
    if args.plot:
        from sksearch.analysis import plot_pareto
        from sksearch.results import published_points

        print(f"wrote {plot_pareto(frame, objectives, args.plot, published_points(frame))}")
    return 0


def _reference(text: str | None, objectives) -> list[float] | None:
    if not text:
        return None
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise ConfigError("--reference", f"must be numbers separated by commas, got {text!r}") from None
    if len(values) != len(objectives):
        raise ConfigError("--reference", f"needs {len(objectives)} values, one per objective, got {len(values)}")
    return values


def cmd_compare(args: argparse.Namespace) -> int:
    from sksearch.results import compare, load_results, sweep_objectives

    frame = load_results(args.run_dirs)
    metrics = args.metrics.split(",") if args.metrics else sweep_objectives(args.run_dirs)
    table = compare(frame, args.knob, metrics)
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    else:
        print(_format_comparison(table, args.knob))
    if args.out:
        from sksearch.files import atomic_write_text

        atomic_write_text(args.out, table.to_csv(index=False))
        sys.stderr.write(f"wrote {args.out}\n")
    return 0


def _format_comparison(table, knob: str) -> str:
    """One line per pair and metric: the paired difference, its 95% interval and the verdict."""
    import pandas as pd

    first = table.iloc[0]
    lines = [
        f"{knob}: {first['value_b']} minus {first['value_a']}, paired by seed; 95% t intervals; "
        "'seeds' = paired seeds that would resolve the observed gap",
        f"{'pair':28s} {'metric':9s} {'n':>3s} {'diff':>8s} {'95% interval':>19s}  {'verdict':24s} {'seeds':>6s} "
        f"{'paper':>7s}",
    ]
    for row in table.to_dict("records"):
        interval = "-" if pd.isna(row["ci_low"]) else f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        seeds = "-" if row["n"] < 2 else (str(row["seeds_to_resolve"]) if row["seeds_to_resolve"] else "never")
        paper = row.get("published_diff")
        paper = "" if pd.isna(paper) else f"{paper:+.2f}"
        pair = row["pair"] if row["pair"] == "overall" else f"{row['pair']} ({row['value_a']}->{row['value_b']})"
        lines.append(
            f"{pair[:28]:28s} {row['metric']:9s} {row['n']:3d} {row['diff']:+8.3f} {interval:>19s}  "
            f"{row['verdict'][:24]:24s} {seeds:>6s} {paper:>7s}"
        )
    return "\n".join(lines)


def cmd_table(args: argparse.Namespace) -> int:
    from sksearch.files import atomic_write_text
    from sksearch.results import load_results, paper_table, render_paper_table

    frame = load_results(args.run_dirs)
    table = paper_table(frame, args.paper)
    text = render_paper_table(table, args.paper, list(frame.get("recipe", [])))
    print(text)
    from sksearch.files import is_uri

    if not args.out and is_uri(args.run_dirs[0]):
        raise ConfigError("--out", "is required when the sweep is at a URI")
    out = Path(args.out or args.run_dirs[0])
    markdown = atomic_write_text(out / f"paper_{args.paper}.md", text)
    csv = atomic_write_text(out / f"paper_{args.paper}.csv", table.to_csv(index=False))
    print(f"wrote {markdown} and {csv}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sksearch.results import export, load_results, parse_objectives, select_for_export

    frame = load_results(args.run_dirs)
    objectives = parse_objectives(args.objectives, frame) if args.pareto else None
    chosen = select_for_export(frame, front_objectives=objectives, best=args.best, top=args.top, archid=args.archid)
    folders = export(chosen, args.out)
    for folder in folders:
        print(folder)
    print(f"exported {len(folders)} configurations to {args.out}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from sksearch.analysis import plot_curves, plot_edf, plot_pareto
    from sksearch.results import learning_curves, load_results, parse_objectives, published_points

    frame = load_results(args.run_dirs)
    if args.kind == "pareto":
        path = plot_pareto(frame, parse_objectives(args.objectives, frame), args.out, published_points(frame))
    elif args.kind == "edf":
        path = plot_edf(frame, args.out, by=args.by.split(",") if args.by else None, metric=args.metric)
    else:
        path = plot_curves(learning_curves(args.run_dirs), frame, args.out, top=args.top, metric=args.metric)
    print(f"wrote {path}")
    return 0


def cmd_attention(args: argparse.Namespace) -> int:
    from sksearch.analysis import attention_by_scale, folder_batches, load_model, synthetic_batches, write_attention

    scales = _float_list(args.scales, "--scales")
    model, spec, recipe = load_model(args.source)
    if args.data_root:
        batches = folder_batches(args.data_root, spec, scales, args.samples)
    else:
        batches = synthetic_batches(spec, recipe, scales, args.samples, seed=args.seed)
    units, channels = attention_by_scale(model, spec, batches)
    out = Path(
        args.out or (Path(args.source) if Path(args.source).is_dir() else Path(args.source).parent) / "attention"
    )
    paths = write_attention(units, channels, out)
    pivot = units.pivot(index="unit", columns="scale", values="difference").loc[list(dict.fromkeys(units["unit"]))]
    print("attention of the larger kernel minus the smaller, per SK unit and object scale:")
    print(pivot.to_string(float_format=lambda v: f"{v:+.4f}"))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _float_list(text: str, flag: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise ConfigError(flag, f"must be numbers separated by commas, got {text!r}") from None
    if any(value <= 0 for value in values):
        raise ConfigError(flag, f"must be positive, got {text!r}")
    return values


def cmd_space_show(args: argparse.Namespace) -> int:
    from sksearch.space import load_space

    space = load_space(args.file)
    print(f"space {space.name} ({args.file})")
    print(f"base: archid {space.base.archid}, {space.base.template}, M={space.base.num_branches}")
    print(
        f"recipe: {space.recipe.name}; search: {space.search.algorithm}, objectives "
        + ", ".join(f"{metric}:{mode}" for metric, mode in space.search.objectives)
    )
    print("knobs:")
    for name, form, values in space.describe():
        print(f"  {name:18s} {form:7s} {values}")
    bounds = {k: v for k, v in space.constraints.__dict__.items() if v is not None and k != "match_tolerance"}
    print("constraints: " + (", ".join(f"{k} {v:g}" for k, v in bounds.items()) or "none"))
    if space.finite:
        size = len(space)
        draw = space.enumerate(progress=size > 2000)
        print(f"points: {size}; " + draw.summary())
    else:
        draw = space.sample(args.samples, seed=args.seed)
        print(f"points: continuous; sampled {args.samples} networks: " + draw.summary())
    if len(draw):
        frame = draw.to_frame()
        print(
            f"feasible GMACs {frame['gmacs'].min():.4f} .. {frame['gmacs'].max():.4f}; "
            f"params {frame['params_m'].min():.3f}M .. {frame['params_m'].max():.3f}M"
        )
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    from sksearch.space import load_space

    draw = load_space(args.file).sample(args.n, seed=args.seed)
    _print_draw(draw)
    return 0


def cmd_space_enumerate(args: argparse.Namespace) -> int:
    from sksearch.space import load_space

    space = load_space(args.file)
    draw = space.enumerate(progress=len(space) > 2000)
    if args.out:
        from sksearch.files import atomic_write_text

        atomic_write_text(args.out, draw.to_frame().to_csv(index=False))
        print(f"wrote {len(draw)} networks to {args.out}; {draw.summary()}")
    else:
        _print_draw(draw)
    return 0


def _print_draw(draw) -> None:
    frame = draw.to_frame()
    if len(frame):
        print(frame.drop(columns=["params", "macs"]).to_string(index=False))
    print(draw.summary())


# -- wiring -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sksearch", description="Ablation and architecture search for SKNets.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    def verb(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    verb("presets", cmd_presets, "list the named models with their params and GMACs")

    spec = verb("spec", cmd_spec, "print (or write) the spec YAML of a preset or spec file")
    spec.add_argument("model", help="preset name or spec YAML file")
    spec.add_argument("--out", help="write the YAML to this file instead of printing it")

    counting = verb("count", cmd_count, "count params and MACs of a preset or spec file")
    counting.add_argument("model", help="preset name or spec YAML file")
    counting.add_argument("--method", choices=("analytic", "fvcore", "both"), default="analytic")
    counting.add_argument("--input-size", type=positive_int, help="input resolution (default: the spec's)")
    counting.add_argument("--json", action="store_true", help="print JSON for scripts")

    training = verb("train", cmd_train, "train one preset or spec file under a recipe")
    training.add_argument("model", help="preset name or spec YAML file")
    training.add_argument("--recipe", default="smoke", help="recipe preset: smoke, cifar or imagenet")
    training.add_argument(
        "--set", "-s", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field"
    )
    training.add_argument("--out", help="output folder (default results/train/<name>)")
    training.add_argument("--restart", action="store_true", help="ignore a checkpoint already in --out")

    sweep = verb("sweep", cmd_sweep, "run a search over a space on Ray Tune")
    sweep.add_argument("space", help="search space YAML file")
    sweep.add_argument("--recipe", help="recipe preset for every trial (default: the space's)")
    sweep.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    sweep.add_argument("--algorithm", help="grid, random, tpe or nsga2 (default: the space's)")
    sweep.add_argument("--num-samples", type=positive_int, help="trials for random/tpe/nsga2")
    sweep.add_argument("--objectives", help="e.g. top1_err:min,gmacs:min (default: the space's)")
    sweep.add_argument("--early-stopping", help="none, asha or hyperband")
    sweep.add_argument("--seeds", type=_int_list, help="training seeds, e.g. 0,1,2 (grid/random repeat each network)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0)
    sweep.add_argument("--gpus-per-trial", type=float, help="fractions allowed (default: 1 if the cluster has GPUs)")
    sweep.add_argument("--workers-per-trial", type=positive_int, default=1, help="> 1: data-parallel trials")
    sweep.add_argument("--max-concurrent", type=int, default=0, help="at most this many trials at once (0: no limit)")
    sweep.add_argument("--max-failures", type=int, default=2, help="retries of a crashed trial, from its checkpoint")
    sweep.add_argument("--address", help="an existing Ray cluster: ray://host:10001 or auto")
    sweep.add_argument("--storage", help="results root, a path or URI (default: results)")
    sweep.add_argument("--name", help="sweep name (default: the space's name)")
    sweep.add_argument("--num-cpus", type=positive_int, help="CPUs of the local Ray instance (default: all)")
    sweep.add_argument("--quiet", action="store_true", help="no live table")

    resume = verb("resume", cmd_resume, "continue a sweep whose driver stopped")
    resume.add_argument("run_dir")
    resume.add_argument("--address")
    resume.add_argument("--num-cpus", type=positive_int)

    status = verb("status", cmd_status, "counts by state, best so far, elapsed time")
    status.add_argument("run_dir")
    status.add_argument("--json", action="store_true")

    results = verb("results", cmd_results, "the merged results table of one or more sweeps")
    results.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    results.add_argument("--format", choices=("table", "csv", "parquet", "json"), default="table")
    results.add_argument("--where", help="a pandas query, e.g. \"status == 'completed' and gmacs < 4.5\"")
    results.add_argument("--sort", help="column to sort by, COLUMN[:asc|desc]")
    results.add_argument("--columns", help="comma-separated columns to keep")
    results.add_argument("--out", help="write to this file instead of printing")

    front = verb("pareto", cmd_pareto, "the non-dominated trials, hypervolume and knee")
    front.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    front.add_argument("--objectives", default="top1_err:min,gmacs:min", help="2 or 3, e.g. top1_err:min,gmacs:min")
    front.add_argument("--reference", help="hypervolume reference point, one value per objective")
    front.add_argument("--plot", help="also draw every trial, the front and published points to this PNG")
    front.add_argument("--format", choices=("table", "csv", "json"), default="table")
    front.add_argument("--out")

    comparing = verb(
        "compare", cmd_compare, "paired differences, with 95% intervals, of networks differing in one knob"
    )
    comparing.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    comparing.add_argument("--knob", default="attention", help="the design choice to compare (default: attention)")
    comparing.add_argument("--metrics", help="comma-separated columns (default: the sweeps' objectives)")
    comparing.add_argument("--format", choices=("table", "csv"), default="table", help="text on stdout, or CSV")
    comparing.add_argument("--out", help="also write the comparison as CSV to this file")

    table = verb("table", cmd_table, "a paper table's layout with our measurements beside the published")
    table.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    table.add_argument("--paper", required=True, help="table3, table4, table5, table6, table7 or tables8")
    table.add_argument("--out", help="folder for paper_<table>.md and .csv (default: the first RUN_DIR)")

    export = verb("export", cmd_export, "write configurations that rebuild the exact model, with weights")
    export.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    chosen = export.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--pareto", action="store_true", help="every point of the Pareto front")
    chosen.add_argument("--best", metavar="METRIC[:min|max]", help="the best trials by a column")
    chosen.add_argument("--archid", help="the best trial of this network")
    export.add_argument("--top", type=positive_int, default=1, help="with --best: how many")
    export.add_argument("--objectives", default="top1_err:min,gmacs:min", help="with --pareto")
    export.add_argument("--out", required=True)

    plot = verb("plot", cmd_plot, "PNG plots: Pareto scatter, EDFs per design choice, learning curves")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    plot.add_argument("--kind", choices=("pareto", "edf", "curves"), required=True)
    plot.add_argument("--out", required=True, help="the PNG file")
    plot.add_argument("--objectives", default="top1_err:min,gmacs:min", help="for --kind pareto")
    plot.add_argument("--by", help="for --kind edf: design-choice columns (default: every varying knob)")
    plot.add_argument("--metric", default="top1_err")
    plot.add_argument("--top", type=positive_int, default=5, help="for --kind curves: how many trials")

    attention = verb("attention", cmd_attention, "SK attention vs. object scale (paper Sec. 4.4)")
    attention.add_argument("source", help="an export folder, a checkpoint.pt, or a folder holding one")
    attention.add_argument("--scales", default="1.0,1.5,2.0")
    attention.add_argument("--samples", type=positive_int, default=256)
    attention.add_argument("--data-root", help="an ImageFolder tree to use instead of the synthetic set")
    attention.add_argument(
        "--seed", type=int, help="synthetic images of this data seed (default: the recipe's, as evaluated)"
    )
    attention.add_argument("--out", help="output folder (default: <source>/attention)")

    space = verb("space", _missing_subverb, "inspect a search space file")
    space_verbs = space.add_subparsers(dest="space_verb", required=True, parser_class=_Parser)
    show = space_verbs.add_parser("show", help="knobs, size, pass-rate and complexity range")
    show.add_argument("file")
    show.add_argument("--samples", type=positive_int, default=500, help="samples for a continuous space")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(handler=cmd_space_show)
    sample = space_verbs.add_parser("sample", help="draw distinct feasible networks at random")
    sample.add_argument("file")
    sample.add_argument("-n", type=positive_int, default=10)
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(handler=cmd_space_sample)
    enumerate_ = space_verbs.add_parser("enumerate", help="every feasible network of a finite space")
    enumerate_.add_argument("file")
    enumerate_.add_argument("--out", help="write the table to this CSV file")
    enumerate_.set_defaults(handler=cmd_space_enumerate)

    paper = verb("paper", cmd_paper, "regenerate the paper's complexity columns beside the published figures")
    paper.add_argument("--out", default="results/paper", help="folder for complexity.csv and .md")
    return parser


def _missing_subverb(args: argparse.Namespace) -> int:
    raise AssertionError("argparse requires a sub-verb")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        sys.stderr.write(f"sksearch {args.verb}: error: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"sksearch {args.verb}: interrupted\n")
        return 130
    except BrokenPipeError:  # the reader (| head) left: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout for the interpreter's exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
