"""Verbs that read finished sweeps: results, pareto, compare, table, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sksearch.cli.common import float_list, out_folder, positive_int, verb, write_or_print
from sksearch.validation import ConfigError


def _run_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="sweep folders (each holds sweep.json)")


def _results_flags(parser: argparse.ArgumentParser) -> None:
    _run_dirs(parser)
    parser.add_argument(
        "--format",
        choices=("table", "csv", "parquet", "json"),
        default="table",
        help="output format (parquet needs --out)",
    )
    parser.add_argument(
        "--where",
        help="a condition: columns compared with literals (== != < <= > >=, in [...]), joined by and/or/not; "
        "e.g. \"status == 'completed' and gmacs < 4.5\"",
    )
    parser.add_argument("--sort", help="column to sort by, COLUMN[:asc|desc]")
    parser.add_argument("--columns", help="comma-separated columns to keep")
    parser.add_argument("--out", help="write to this file instead of printing")


@verb("results", "the merged results table of one or more sweeps", _results_flags)
def cmd_results(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)  # a mistyped folder is refused before the heavy imports
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
    """Print or write a table: table (text), csv, json or parquet (parquet needs --out). A wide
    table shows the summary columns and the sweeps' knobs (sksearch.schema)."""
    from sksearch.files import atomic_write
    from sksearch.schema import knob_columns

    if fmt == "parquet":
        if not out:
            raise ConfigError("--out", "is required with --format parquet")
        atomic_write(out, lambda temporary: frame.to_parquet(temporary, index=False))
    else:
        if fmt == "table":
            shown = frame
            if default_columns and len(frame.columns) > 14:
                knobs = [c for c in knob_columns(frame) if c not in default_columns]
                shown = frame[[c for c in default_columns if c in frame] + knobs[:8]]
            text = shown.to_string(index=False) if len(shown) else "(no rows)"
        elif fmt == "csv":
            text = frame.to_csv(index=False)
        else:
            text = frame.to_json(orient="records", indent=2, default_handler=str)
        write_or_print(text, out)
    if out:
        print(f"wrote {len(frame)} rows to {out}")


def _objectives(parser: argparse.ArgumentParser, help_text: str = "2 or 3, e.g. top1_err:min,gmacs:min") -> None:
    parser.add_argument("--objectives", default="top1_err:min,gmacs:min", help=help_text)


def front_objectives(text: str, frame) -> tuple[tuple[str, str], ...]:
    from sksearch.schema import FRONT_SIZES, parse_objectives

    return parse_objectives(text, "--objectives", frame, FRONT_SIZES)


def _pareto_flags(parser: argparse.ArgumentParser) -> None:
    _run_dirs(parser)
    _objectives(parser)
    parser.add_argument("--reference", help="hypervolume reference point, one value per objective")
    parser.add_argument("--plot", help="also draw every trial, the front and published points to this PNG")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format of the front"
    )
    parser.add_argument("--out", help="write the front to this file instead of printing it")


def _point(values) -> str:
    return f"({', '.join(f'{v:g}' for v in values)})"


@verb("pareto", "the non-dominated trials, hypervolume and knee", _pareto_flags)
def cmd_pareto(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)  # a mistyped folder is refused before the heavy imports
    from sksearch.results import (
        default_reference,
        hypervolume,
        knee,
        load_results,
        pareto,
        seed_means,
        within_reference,
    )

    frame = load_results(args.run_dirs)
    objectives = front_objectives(args.objectives, frame)
    front = pareto(frame, objectives)
    if front.empty:
        raise ConfigError("RUN_DIR", "no completed trial has every objective")
    reference = (
        float_list(args.reference, "--reference", len(objectives))
        if args.reference
        else default_reference(frame, objectives)
    )
    inside = int(within_reference(front, objectives, reference).sum())
    if args.reference and not inside:
        fallback = _point(default_reference(frame, objectives))
        raise ConfigError("--reference", "no front point is better than it in every objective (hypervolume 0); "
                          f"give a point worse than the front, e.g. the default {fallback}")  # fmt: skip
    names = [name for name, _ in objectives]
    shown = front[["archid", "name", *[c for n in names for c in (n, f"{n}_std")], "n"]].copy()
    knee_index = knee(front, objectives)
    shown.insert(0, "knee", ["*" if i == knee_index else "" for i in range(len(shown))])
    _emit(shown, args.format, args.out)
    points = seed_means(frame, objectives)
    # the table is the output; with csv or json on stdout the summary goes to stderr, so stdout parses
    notes = sys.stdout if args.format == "table" or args.out else sys.stderr
    print(
        f"{len(front)} networks on the front, of {len(points)} networks ({points['n'].sum()} completed trials); "
        f"objectives {', '.join(f'{n}:{m}' for n, m in objectives)}",
        file=notes,
    )
    beyond = f" ({len(front) - inside} front points lie beyond it and add nothing)" if inside < len(front) else ""
    print(f"hypervolume {hypervolume(front, objectives, reference):.6g} against reference point "
          f"{_point(reference)}{beyond}", file=notes)  # fmt: skip
    knee_row = front.iloc[knee_index]
    print(
        f"knee: {knee_row['archid']} {knee_row['name']} (" + ", ".join(f"{n} {knee_row[n]:.4g}" for n in names) + ")",
        file=notes,
    )
    if args.plot:
        from sksearch.plots import plot_pareto
        from sksearch.results import published_points

        print(f"wrote {plot_pareto(frame, objectives, args.plot, published_points(frame))}", file=notes)
    return 0


def _compare_flags(parser: argparse.ArgumentParser) -> None:
    _run_dirs(parser)
    parser.add_argument("--knob", default="attention", help="the design choice to compare (default: attention)")
    parser.add_argument("--metrics", help="comma-separated columns (default: the sweeps' objectives)")
    parser.add_argument("--format", choices=("table", "csv"), default="table", help="text on stdout, or CSV")
    parser.add_argument("--out", help="also write the comparison as CSV to this file")
    parser.add_argument("--effect", type=float, help="an effect to detect (e.g. 0.7): the seeds it needs")
    parser.add_argument("--power", type=float, default=0.8, help="the power the seeds are counted for (default 0.8)")


@verb("compare", "paired differences, with 95% intervals, of networks differing in one knob", _compare_flags)
def cmd_compare(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)  # a mistyped folder is refused before the heavy imports
    from sksearch.results import compare, load_results, sweep_objectives

    frame = load_results(args.run_dirs)
    metrics = args.metrics.split(",") if args.metrics else sweep_objectives(args.run_dirs)
    table = compare(frame, args.knob, metrics, effect=args.effect, power=args.power)
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    else:
        print(_format_comparison(table, args.knob, args.effect, args.power))
    if args.out:
        write_or_print(table.to_csv(index=False), args.out)
        sys.stderr.write(f"wrote {args.out}\n")
    return 0


def _format_comparison(table, knob: str, effect: float | None, power: float) -> str:
    """One line per pair and metric: the paired difference, its 95% interval, the verdict raw and
    after Holm's adjustment, the seeds for the power asked; then what the overall rows rest on."""
    import pandas as pd

    first = table.iloc[0]
    wanted = f"seeds for {power:.0%} power at the observed gap" + (f" / at {effect:g}" if effect else "")
    lines = [
        f"{knob}: {first['value_b']} minus {first['value_a']}, paired by seed; 95% intervals; 'seeds' = {wanted} "
        "(a range: the spread's own 95% interval)",
        f"{'pair':28s} {'metric':9s} {'n':>3s} {'diff':>8s} {'95% interval':>19s}  {'verdict':22s} "
        f"{'after Holm':22s} {'seeds':>14s} {'paper':>7s}",
    ]
    for row in table.to_dict("records"):
        exact = bool(row.get("exact"))
        interval = (
            "exact" if exact else "-" if pd.isna(row["ci_low"]) else f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        )
        seeds = "-" if exact or pd.isna(row["ci_low"]) else _seeds_text(row, "seeds_power")
        if effect and not exact and not pd.isna(row["ci_low"]):
            seeds += f" / {_seeds_text(row, 'seeds_for_effect')}"
        paper = row.get("published_diff")
        paper = "" if pd.isna(paper) else f"{paper:+.2f}"
        pair = row["pair"] if row["pair"] == "overall" else f"{row['pair']} ({row['value_a']}->{row['value_b']})"
        lines.append(
            f"{pair[:28]:28s} {row['metric']:9s} {row['n']:3d} {row['diff']:+8.3f} {interval:>19s}  "
            f"{row['verdict'][:22]:22s} {row['holm_verdict'][:22]:22s} {seeds:>14s} {paper:>7s}"
        )
    for row in table[table["pair"] == "overall"].to_dict("records"):
        if not pd.isna(row.get("pairs")):
            lines.append(f"overall {row['metric']}: {row['model']}, over {int(row['pairs'])} pairs x "
                         f"{int(row['seeds'])} seeds (the effect over the population of pairs)")  # fmt: skip
    return "\n".join(lines)


def _seeds_text(row: dict, prefix: str) -> str:
    """`9 (5-28)`: the seeds at the observed spread, and over the spread's interval; `never` beyond reach."""
    import pandas as pd

    def shown(value) -> str:
        return "never" if value is None or pd.isna(value) else str(int(value))

    return f"{shown(row.get(prefix))} ({shown(row.get(prefix + '_low'))}-{shown(row.get(prefix + '_high'))})"


def _table_flags(parser: argparse.ArgumentParser) -> None:
    _run_dirs(parser)
    parser.add_argument("--paper", required=True, help="table3, table4, table5, table6, table7 or tables8")
    parser.add_argument(
        "--out", type=out_folder, help="folder for paper_<table>.md and .csv (default: the first RUN_DIR)"
    )


@verb("table", "a paper table's layout with our measurements beside the published", _table_flags)
def cmd_table(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)  # a mistyped folder is refused before the heavy imports
    from sksearch.files import is_uri
    from sksearch.results import load_results, paper_table, render_paper_table, write_paper_table

    if not args.out and is_uri(args.run_dirs[0]):
        raise ConfigError("--out", "is required when the sweep is at a URI")
    frame = load_results(args.run_dirs)
    table = paper_table(frame, args.paper)
    if not ((table["row"] != "extra") & (table["status"] == "run")).any():
        raise ConfigError("--paper", f"no network of these runs is a row of {args.paper} (their archids differ "
                          "from every row's preset); compare them with `sksearch compare` instead")  # fmt: skip
    text = render_paper_table(table, args.paper, list(frame.get("recipe", [])))
    print(text)
    paths = write_paper_table(table, text, args.paper, Path(args.out or args.run_dirs[0]))
    print(f"wrote {' and '.join(str(p) for p in paths)}")
    return 0


def _export_flags(parser: argparse.ArgumentParser) -> None:
    _run_dirs(parser)
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--pareto", action="store_true", help="every point of the Pareto front")
    chosen.add_argument("--best", metavar="METRIC[:min|max]", help="the best trials by a column")
    chosen.add_argument("--archid", help="the best trial of this network")
    parser.add_argument("--top", type=positive_int, default=1, help="with --best: how many")
    _objectives(parser, "with --pareto")
    parser.add_argument(
        "--out",
        type=out_folder,
        required=True,
        help="a new or empty folder to write one sub-folder per configuration into",
    )


@verb("export", "write configurations that rebuild the exact model, with weights", _export_flags)
def cmd_export(args: argparse.Namespace) -> int:
    from sksearch.runfiles import check_sweep_folders

    check_sweep_folders(args.run_dirs)  # a mistyped folder is refused before the heavy imports
    from sksearch.results import export, load_results, select_for_export

    frame = load_results(args.run_dirs)
    objectives = front_objectives(args.objectives, frame) if args.pareto else None
    chosen = select_for_export(frame, front_objectives=objectives, best=args.best, top=args.top, archid=args.archid)
    folders = export(chosen, args.out)
    for folder in folders:
        print(folder)
    print(f"exported {len(folders)} configurations to {args.out}")
    return 0
