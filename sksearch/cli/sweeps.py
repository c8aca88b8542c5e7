"""Verbs that run sweeps: sweep, resume, extend, repair, status."""

from __future__ import annotations

import argparse
import json
import sys

from sksearch.cli.common import (
    add_set_flag,
    check_exists,
    check_space_file,
    check_sweep_folder,
    int_list,
    parse_settings,
    positive_int,
    verb,
)


def _sweep_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="search space YAML file")
    parser.add_argument("--recipe", help="recipe preset for every trial (default: the space's)")
    add_set_flag(parser)
    parser.add_argument("--algorithm", help="grid, random, tpe or nsga2 (default: the space's)")
    parser.add_argument("--num-samples", type=positive_int, help="trials for random/tpe/nsga2")
    parser.add_argument("--objectives", help="e.g. top1_err:min,gmacs:min (default: the space's)")
    parser.add_argument("--early-stopping", help="none, asha, hyperband or mo-asha (every objective)")
    parser.add_argument("--seeds", type=int_list, help="training seeds, e.g. 0,1,2 (grid/random repeat each network)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial, also torch's threads")
    parser.add_argument("--gpus-per-trial", type=float, help="fractions allowed (default: 1 if the cluster has GPUs)")
    parser.add_argument("--workers-per-trial", type=positive_int, default=1, help="> 1: data-parallel trials")
    parser.add_argument("--max-concurrent", type=int, default=0, help="at most this many trials at once (0: no limit)")
    parser.add_argument("--max-failures", type=int, default=2, help="retries of a crashed trial, from its checkpoint")
    parser.add_argument("--address", help="an existing Ray cluster: ray://host:10001 or auto")
    parser.add_argument("--storage", help="results root, a path or URI (default: results)")
    parser.add_argument("--name", help="sweep name (default: the space's name)")
    parser.add_argument("--num-cpus", type=positive_int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no live table and none of Ray's warnings")
    parser.add_argument("--store", help="the trial store, a path or URI (default: <storage>/store)")
    parser.add_argument("--no-reuse", action="store_true", help="train every trial, even those the store answers")


@verb("sweep", "run a search over a space on Ray Tune", _sweep_flags)
def cmd_sweep(args: argparse.Namespace) -> int:
    check_space_file(args.space)
    from sksearch.search import Resources, plan_sweep, run_sweep

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
        store=args.store,
        reuse=not args.no_reuse,
    )
    search = plan.space.search
    print(
        f"sweep {plan.name}: space {args.space}, {search.algorithm} search, recipe {plan.space.recipe.name}, "
        f"objectives {', '.join(f'{m}:{o}' for m, o in search.objectives)} -> {plan.run_dir}"
    )
    table = run_sweep(plan, address=args.address, num_cpus=args.num_cpus, progress=not args.quiet)
    return _print_outcome(plan.run_dir, table, search.objectives)


def _resume_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the sweep folder (holding sweep.json)")
    parser.add_argument("--address", help="an existing Ray cluster: ray://host:10001 or auto")
    parser.add_argument("--num-cpus", type=positive_int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--quiet", action="store_true", help="none of Ray's warnings on the terminal")


@verb("resume", "continue a sweep whose driver stopped", _resume_flags)
def cmd_resume(args: argparse.Namespace) -> int:
    check_sweep_folder(args.run_dir)
    from sksearch.runfiles import damaged_tables
    from sksearch.search import load_plan, resume_sweep

    plan = load_plan(args.run_dir)
    print(f"resuming sweep {plan.name} in {args.run_dir}")
    for name in damaged_tables(args.run_dir):
        print(f"{name} is damaged: rebuilding it from Ray's records of the trials first")
    table = resume_sweep(args.run_dir, address=args.address, num_cpus=args.num_cpus, quiet=args.quiet)
    return _print_outcome(args.run_dir, table, plan.objectives)


def _extend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the finished sweep's folder (holding sweep.json)")
    parser.add_argument("--space", help="a space file with new knob values (default: the sweep's own space)")
    parser.add_argument("--num-samples", type=positive_int, help="trials for random/tpe/nsga2")
    parser.add_argument("--seeds", type=int_list, help="training seeds, e.g. 0,1,2,3 (more seeds per network)")
    parser.add_argument("--address", help="an existing Ray cluster: ray://host:10001 or auto")
    parser.add_argument("--num-cpus", type=positive_int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no live table and none of Ray's warnings")


@verb("extend", "more samples, knob values or seeds for a finished sweep; trains only new networks", _extend_flags)
def cmd_extend(args: argparse.Namespace) -> int:
    check_sweep_folder(args.run_dir)
    from sksearch.runfiles import read_trials
    from sksearch.search import extend_sweep, load_plan

    objectives = load_plan(args.run_dir).objectives  # refuses a folder that is not a sweep
    before = len(read_trials(args.run_dir))
    table = extend_sweep(args.run_dir, space_file=args.space, num_samples=args.num_samples, seeds=args.seeds,
                         address=args.address, num_cpus=args.num_cpus, progress=not args.quiet)  # fmt: skip
    print(f"extended sweep {args.run_dir}: {len(table) - before} new trials")
    return _print_outcome(args.run_dir, table, objectives)


def _repair_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the sweep folder (holding sweep.json)")


@verb("repair", "rebuild a sweep's damaged or deleted tables from Ray's records", _repair_flags)
def cmd_repair(args: argparse.Namespace) -> int:
    check_exists(args.run_dir)  # its sweep.json may be what is damaged: the folder must be there
    from sksearch.search import repair_sweep
    from sksearch.search.plan import restore_plan

    if restore_plan(args.run_dir):
        print(f"{args.run_dir}/sweep.json was damaged or missing: rebuilt from its copy")
    table = repair_sweep(args.run_dir)
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    summary = ", ".join(f"{status} {n}" for status, n in counts.items()) or "no finished trial"
    print(f"rebuilt {args.run_dir}/trials.parquet ({len(table)} trials: {summary}) and history.parquet")
    return 0


def _status_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the sweep folder (holding sweep.json)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


@verb("status", "counts by state, best so far, elapsed time", _status_flags)
def cmd_status(args: argparse.Namespace) -> int:
    check_sweep_folder(args.run_dir)
    from sksearch.search import sweep_status

    status = sweep_status(args.run_dir)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    states = ", ".join(f"{state} {n}" for state, n in sorted(status["states"].items())) or "no trials yet"
    summed = f"its trials ran {status['trials_time_s'] / 60:.1f} min in all"
    if status["driver_alive"]:
        timing = f"running for {status['elapsed_s'] / 60:.1f} min; {summed} so far"
    elif status["ended"]:
        timing = f"ran {status['elapsed_s'] / 60:.1f} min, ended {status['ended']}; {summed}"
    else:  # a table from before end times were recorded
        timing = f"{summed} (the table records no end time)"
    print(f"sweep {status['sweep']} ({_shown_path(status['space'])}): {status['trials']} trials: {states}; {timing}")
    if status["resumable"]:
        print(f"no driver is running it: `sksearch resume {args.run_dir}` continues it")
    best = status["best"]
    metric = status["objective"].split(":")[0]
    print(
        f"best {status['objective']}: "
        + (f"{best[metric]:.3f} (trial {best['trial_id']}, archid {best['archid']})" if best else "none finished yet")
    )
    return 0


def _shown_path(path: str) -> str:
    """A path as the reader can use it: relative to here when it is below, else its file name
    (a plan made on another machine names that machine's folders)."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return Path(path).name


# The exit status of a sweep some of whose trials errored after all their retries.
TRIALS_ERRORED = 3


def _print_outcome(run_dir: str, table, objectives) -> int:
    """Where the table is, and the best trial or the Pareto front (written by sweep_outcome); the
    exit status: TRIALS_ERRORED, naming them, if any trial errored after all its retries."""
    from sksearch.search.outcome import sweep_outcome

    outcome = sweep_outcome(run_dir, table, objectives)
    counts = ", ".join(f"{status} {n}" for status, n in outcome.counts.items())
    print(f"results table: {outcome.table_path} ({len(table)} trials: {counts})")
    if outcome.best is not None:
        metric, best = objectives[0][0], outcome.best
        print(f"best {metric}: {best[metric]:.4g} (archid {best['archid']}, trial {best['trial_id']})")
    if outcome.front is not None:
        names = [name for name, _ in objectives]
        print(f"Pareto front ({', '.join(f'{n}:{m}' for n, m in objectives)}), {len(outcome.front)} networks:")
        print(outcome.front[["archid", "name", *names, "n"]].to_string(index=False))
    if outcome.files:
        print(f"Pareto front: {' and '.join(str(p) for p in outcome.files)} (more: sksearch pareto {run_dir})")
    errored = table[table["status"] == "error"] if len(table) else table
    for row in errored.itertuples():
        print(f"trial {row.trial_id} errored after all retries: {row.reason}", file=sys.stderr)
    if len(errored):
        print(f"{len(errored)} trials errored; their tracebacks are in {run_dir}/driver.log", file=sys.stderr)
        return TRIALS_ERRORED
    return 0
