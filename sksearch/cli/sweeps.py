"""Verbs that run sweeps: sweep, resume, extend, repair, status."""

from __future__ import annotations

import argparse
import json
import sys

from sksearch.cli.common import (
    add_set_flag,
    check_exists,
    check_space_file,
    int_list,
    parse_settings,
    positive_float,
    positive_int,
    verb,
    write_or_print,
)
from sksearch.validation import ConfigError


def _space_flags(parser: argparse.ArgumentParser) -> None:
    """What sweep and plan share: the space and what overrides its recipe and search."""
    parser.add_argument("space", help="search space YAML file")
    parser.add_argument("--recipe", help="recipe preset for every trial (default: the space's)")
    add_set_flag(parser)
    parser.add_argument("--algorithm", help="grid, random, tpe or nsga2 (default: the space's)")
    parser.add_argument("--num-samples", type=positive_int, help="trials for random/tpe/nsga2")


def _sweep_flags(parser: argparse.ArgumentParser) -> None:
    _space_flags(parser)
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
    check_exists(args.run_dir)  # its sweep.json may be what is lost: load_plan says so, and what mends it
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
    check_exists(args.run_dir)  # its sweep.json may be what is lost: load_plan says so, and what mends it
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
    check_exists(args.run_dir)  # its sweep.json may be what is lost: load_plan says so, and what mends it
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


def _plan_flags(parser: argparse.ArgumentParser) -> None:
    _space_flags(parser)
    parser.add_argument("--seeds", type=positive_int, help="seeds per network, N: 0..N-1 (default: the space's)")
    parser.add_argument("--gpus", type=positive_int, default=1, help="devices the sweep runs on (default 1)")
    parser.add_argument("--gpus-per-trial", type=float, help="device per trial; fractions share one (default 1)")
    parser.add_argument("--throughput", help="CSV of archid, train_images_per_s measured on the target device")
    parser.add_argument("--device", default="cpu", help="where to measure throughput without a table: cpu, cuda")
    parser.add_argument("--batch", type=positive_int, default=8, help="batch of the timed training steps")
    parser.add_argument("--steps", type=positive_int, default=3, help="timed training steps per network")
    parser.add_argument("--threads", type=positive_int, help="torch's CPU threads while timing")
    parser.add_argument("--train-images", type=positive_int, help="training images per epoch (an image folder's)")
    parser.add_argument("--effect", type=positive_float, help="an effect to detect (points): the seeds it needs")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--noise", type=positive_float, help="a run's std over seeds (points), for --effect")
    noise.add_argument("--pilot", help="a finished pilot sweep whose seeds give the std, for --effect")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    parser.add_argument("--out", help="write the output to this file (nothing is written without it)")


@verb("plan", "what a sweep will cost before it runs: trials, throughput, device-hours, wall time", _plan_flags)
def cmd_plan(args: argparse.Namespace) -> int:
    check_space_file(args.space)
    if args.effect and not (args.noise or args.pilot):
        raise ConfigError("--effect", "needs the noise it is measured against: --noise STD or --pilot RUN_DIR")
    if args.pilot:
        from sksearch.runfiles import check_sweep_folders

        check_sweep_folders([args.pilot])
    from sksearch.search import Resources, plan_sweep
    from sksearch.search.cost import Measuring, network_costs, pilot_noise, read_throughput, sweep_cost
    from sksearch.search.timings import check_device

    table = read_throughput(args.throughput) if args.throughput else None
    if table is None:
        check_device(args.device)
    seeds = list(range(args.seeds)) if args.seeds else None
    resources = Resources(gpus_per_trial=args.gpus_per_trial)
    plan = plan_sweep(args.space, recipe=args.recipe, settings=parse_settings(args.set), algorithm=args.algorithm,
                      num_samples=args.num_samples, seeds=seeds, resources=resources, dry_run=True)  # fmt: skip
    measuring = Measuring(args.device, args.batch, args.steps, args.threads)
    networks = network_costs(plan, measuring, table, args.train_images)
    noise = None
    if args.effect:
        from sksearch.runfiles import read_trials

        noise = (args.noise, None) if args.noise else pilot_noise(read_trials(args.pilot))
    summary = sweep_cost(plan, networks, args.gpus, args.train_images, args.effect, noise)
    summary["throughput_from"] = f"table {args.throughput}" if table is not None else _measured_where(measuring)
    write_or_print(_plan_text(args.format, summary, networks), args.out)
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _measured_where(measuring) -> str:
    from sksearch.search.cost import describe_device

    return (f"measured here: {describe_device(measuring)}, {measuring.steps} training steps at batch "
            f"{measuring.batch} (or the recipe's, if smaller)")  # fmt: skip


def _plan_text(form: str, summary: dict, networks) -> str:
    if form == "json":
        return json.dumps({"summary": summary, "networks": networks.to_dict("records")}, indent=2)
    if form == "csv":
        return networks.to_csv(index=False)
    s = summary
    drawn = " (drawn: the search picks its own)" if s["networks_drawn"] else ""
    lines = [
        f"plan of {s['space']} ({s['algorithm']}, recipe {s['recipe']}): {s['networks']} networks{drawn}, "
        f"{s['trials']} trials of {s['epochs']} epochs",
        f"each epoch: {s['train_images']:,} training + {s['val_images']:,} validation images ({s['images_from']})",
        f"throughput: {s['throughput_from']}",
        networks.to_string(index=False, float_format=lambda value: f"{value:.4g}"),
        f"device-hours: {s['device_hours']:.4g} ({s['device_per_trial']:g} device per trial); wall time on "
        f"{s['devices']} devices: {s['wall_hours']:.4g} h ({s['wall_hours'] / 24:.3g} days)",
    ]
    if s["early_stopping"] != "none":
        lines.append(f"an upper bound: every trial runs all its epochs, and {s['early_stopping']} stops some early")
    if "seeds_for_effect" in s:
        spread = f"from {s['std_from_runs']} pilot runs" if s["std_from_runs"] else "as given"
        seeds = _count(s["seeds_for_effect"])
        if s["std_from_runs"]:
            low, high = _count(s["seeds_for_effect_low"]), _count(s["seeds_for_effect_high"])
            seeds += f" ({low}-{high} over the std's 95% range)"
        lines.append(f"seeds for 80% power at an effect of {s['effect']:g} points (a run's std {s['run_std']:.3g}, "
                     f"{spread}): {seeds}")  # fmt: skip
    return "\n".join(lines)


def _count(seeds) -> str:
    return "more than 10,000" if seeds is None else str(seeds)
