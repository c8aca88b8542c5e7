"""Verbs that draw, probe or simulate: plot, attention, replay."""

from __future__ import annotations

import argparse
from pathlib import Path

from sksearch.cli.common import check_exists, float_list, out_folder, positive_int, verb
from sksearch.cli.results import front_objectives
from sksearch.validation import ConfigError


def _plot_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="sweep folders (each holds sweep.json)")
    parser.add_argument("--kind", choices=("pareto", "edf", "curves"), required=True, help="which plot")
    parser.add_argument("--out", required=True, help="the PNG file")
    parser.add_argument("--objectives", default="top1_err:min,gmacs:min", help="for --kind pareto")
    parser.add_argument("--by", help="for --kind edf: design-choice columns (default: every varying knob)")
    parser.add_argument("--metric", default="top1_err", help="for --kind edf and curves: the error column")
    parser.add_argument("--top", type=positive_int, default=5, help="for --kind curves: how many trials")


@verb("plot", "PNG plots: Pareto scatter, EDFs per design choice, learning curves", _plot_flags)
def cmd_plot(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)  # a mistyped folder is refused before the heavy imports
    from sksearch.plots import plot_curves, plot_edf, plot_pareto
    from sksearch.results import learning_curves, load_results, published_points

    frame = load_results(args.run_dirs)
    if args.kind == "pareto":
        path = plot_pareto(frame, front_objectives(args.objectives, frame), args.out, published_points(frame))
    elif args.kind == "edf":
        path = plot_edf(frame, args.out, by=args.by.split(",") if args.by else None, metric=args.metric)
    else:
        path = plot_curves(learning_curves(args.run_dirs), frame, args.out, top=args.top, metric=args.metric)
    print(f"wrote {path}")
    return 0


def _attention_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="an export folder, a checkpoint.pt, or a folder holding one")
    parser.add_argument("--scales", default="1.0,1.5,2.0", help="object scales, comma-separated (1.0: as trained)")
    parser.add_argument(
        "--object-sizes",
        action="store_true",
        help="synthetic only: draw every object of a scale at one size, the scale times the smallest trained "
        "object (1 to the recipe's scale_range high/low spans the trained sizes), instead of enlarging them",
    )
    parser.add_argument("--samples", type=positive_int, default=256, help="images per scale")
    parser.add_argument("--data-root", help="an ImageFolder tree to use instead of the synthetic set")
    parser.add_argument(
        "--seed", type=int, help="synthetic images of this data seed (default: the recipe's, as evaluated)"
    )
    parser.add_argument("--out", type=out_folder, help="output folder (default: <source>/attention)")


@verb("attention", "SK attention vs. object scale (paper Sec. 4.4)", _attention_flags)
def cmd_attention(args: argparse.Namespace) -> int:
    check_exists(args.source)
    from sksearch.attention import attention_by_scale, folder_batches, load_model, synthetic_sets, write_attention

    scales = float_list(args.scales, "--scales", positive=True)
    if args.object_sizes and args.data_root:
        raise ConfigError("--object-sizes", "draws synthetic objects: an ImageFolder's objects have their own sizes")
    model, spec, recipe = load_model(args.source)
    if args.data_root:
        batches = folder_batches(args.data_root, spec, scales, args.samples)
    else:
        sets = synthetic_sets(spec, recipe, scales, args.samples, seed=args.seed, fixed_sizes=args.object_sizes)
        batches = {scale: dataset.images.float() for scale, dataset in sets.items()}
    units, channels = attention_by_scale(model, spec, batches)
    out = Path(
        args.out or (Path(args.source) if Path(args.source).is_dir() else Path(args.source).parent) / "attention"
    )
    if args.data_root:
        data = f"ImageFolder {args.data_root}, centre-cropped to 1/scale"
    else:
        seed = recipe.get("data_seed", 0) if args.seed is None else args.seed
        drawn = "objects enlarged by each scale"
        if args.object_sizes:
            drawn = "every object at scale x the smallest trained size"
        data = f"synthetic images (data seed {seed}), {drawn}"
    title = f"{Path(args.source).name} (archid {spec.archid}): {data}; {args.samples} images per scale"
    scale_name = "object size (x smallest trained)" if args.object_sizes else "object scale"
    paths = write_attention(units, channels, out, title, scale_name)
    pivot = units.pivot(index="unit", columns="scale", values="difference").loc[list(dict.fromkeys(units["unit"]))]
    print("attention of the larger kernel minus the smaller, per SK unit and object scale:")
    print(pivot.to_string(float_format=lambda v: f"{v:+.4f}"))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _replay_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished sweeps of one space, with history")
    parser.add_argument("--algorithms", default="random,grid,tpe,nsga2,asha,mo-asha", help="comma-separated, of those")
    parser.add_argument("--budget", type=float, default=0.25, help="fraction of the table's compute, in (0, 1]")
    parser.add_argument("--repeats", type=positive_int, default=50, help="replays of each algorithm, seeded 0..n-1")
    parser.add_argument(
        "--startup-trials", type=positive_int, help="TPE's random start-up trials (default: by table size)"
    )
    parser.add_argument("--population", type=positive_int, help="NSGA-II's population (default: by table size)")
    parser.add_argument("--objectives", help="e.g. top1_err:min,gmacs:min (default: the first sweep's)")
    parser.add_argument("--workers", type=positive_int, default=1, help="trials at once on the simulated clock")
    parser.add_argument("--out", type=out_folder, help="output folder (default: ./replay-<first RUN_DIR's name>)")


@verb("replay", "search algorithms simulated on finished sweeps: anytime hypervolume, no training", _replay_flags)
def cmd_replay(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)
    from tqdm import tqdm

    from sksearch.files import check_writable_folder, is_uri
    from sksearch.search.replay import ReplaySettings, check_replay, load_benchmark, replay
    from sksearch.search.replay_curves import summary_lines, write_replay

    algorithms = [name.strip() for name in args.algorithms.split(",")]
    check_replay(algorithms, args.budget)
    table = load_benchmark(args.run_dirs, args.objectives)
    check_replay(algorithms, args.budget, table)
    out = args.out or f"replay-{Path(args.run_dirs[0]).resolve().name}"  # here: never over a run's own files
    if not is_uri(out):
        check_writable_folder(out, "--out")  # before the replays, not after
    print(f"replaying {len(algorithms)} algorithms x {args.repeats} repeats on {len(table.networks)} networks "
          f"(budget {args.budget:g} of the compute) into {out}", flush=True)  # fmt: skip
    settings = ReplaySettings.for_table(table, args.startup_trials, args.population)
    with tqdm(total=len(algorithms) * args.repeats, desc="replays", unit="replay", leave=False) as bar:
        trials = replay(table, algorithms, args.repeats, args.budget, args.workers, bar.update, settings)
    paths = write_replay(out, trials, table, args.budget)
    print("\n".join(summary_lines(trials, table, args.budget, settings)))
    print("wrote " + ", ".join(paths))
    return 0
