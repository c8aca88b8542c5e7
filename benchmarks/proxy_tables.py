"""The proxy findings: Tables 7 and 6 under the `proxy` recipe, 3 seeds each, committed to results/proxy/.

    .venv/bin/python benchmarks/proxy_tables.py [--seeds 0,1,2] [--runs results/proxy-runs] [--out results/proxy]

1. Sweeps (skipped when finished, resumed when interrupted) into --runs, sharing one trial store:
   - `pilot`: Table 7's single-kernel rows (K3, K5, K7; nothing to select) x seeds, run first: the
     proxy's schedule is judged on them (seed spread, last-epoch swing), never on SK vs sum; Table 7
     then reuses their trials from the store;
   - `table7`: spaces/table7.yaml, 11 networks x seeds;
   - `table6`: the three Table 6 networks Table 7 does not hold (second branch 3x3 D=1, 5x5 G=64,
     7x7 G=128); its 3x3 D=2 and D=3 rows are Table 7's K3+K5 SK and K3+K7 SK networks (same archid),
     so Table 6 is read from both sweeps rather than training those networks twice.
2. The report into --out: each sweep's sweep.json, trials.parquet and history.parquet; the paper
   tables (Markdown + CSV, with each row's paired difference to its twin); `compare` over attention
   (Table 7) and over the second branch (Table 6); the attention-vs-object-scale analysis of the
   K3+K5 SK network (seed 0); and the figures the issue targets, printed and saved as targets.json.

Each trial runs on one thread, two at a time (a 2-core machine); the wall times are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABLE6_EXTRA = """\
name: table6
description: the Table 6 networks that Table 7 does not already hold (second branch 3x3 D=1, 5x5 G=64, 7x7 G=128)
base: sknet50
branch_options:
  g64_5x5: {kernel: 5, dilation: 1, groups: 64}
  g128_7x7: {kernel: 7, dilation: 1, groups: 128}
knobs:
  branch_1: {grid: [K3, g64_5x5, g128_7x7]}
recipe: proxy
search:
  algorithm: grid
  objectives: [top1_err:min, gmacs:min]
"""


PILOT = """\
name: pilot
description: Table 7's single-kernel rows (nothing to select), to judge the proxy's schedule on
base: sknet50
knobs:
  branches: {grid: [K3, K5, K7]}
  attention: false
recipe: proxy
search:
  algorithm: grid
  objectives: [top1_err:min, gmacs:min]
"""


def run_or_resume(space: Path, name: str, runs: Path, seeds: list[int], **overrides) -> None:
    """Run the sweep under the proxy recipe (plan_sweep's `overrides` besides), or finish an
    interrupted one (nothing to do when it finished)."""
    from sksearch.search import plan_sweep, resume_sweep, run_sweep

    run_dir = runs / name
    if finished_trials(run_dir):
        print(f"{name}: finished already ({len(pd.read_parquet(run_dir / 'trials.parquet'))} trials)", flush=True)
        return
    if (run_dir / "sweep.json").exists():
        print(f"{name}: resuming", flush=True)
        resume_sweep(str(run_dir), num_cpus=2)
    else:
        plan = plan_sweep(space, recipe="proxy", seeds=seeds, storage=str(runs), name=name, **overrides)
        print(f"{name}: {plan.total_trials} trials", flush=True)
        run_sweep(plan, num_cpus=2, progress=True)


def trial_counts(run_dir: Path) -> tuple[int, int] | None:
    """(trials with a result, trials planned) of the sweep in `run_dir`; None before it started."""
    from sksearch.runfiles import read_trials
    from sksearch.schema import RESULT_STATUSES
    from sksearch.search import load_plan

    if not (run_dir / "sweep.json").exists():
        return None
    table = read_trials(str(run_dir))
    finished = int(table["status"].isin(RESULT_STATUSES).sum()) if len(table) else 0
    return finished, load_plan(str(run_dir)).total_trials


def finished_trials(run_dir: Path) -> bool:
    """Whether the sweep in `run_dir` ran every trial its plan holds to the end."""
    counts = trial_counts(run_dir)
    return counts is not None and counts[0] == counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", default=str(ROOT / "results/proxy-runs"), help="where the sweeps run")
    parser.add_argument("--out", default=str(ROOT / "results/proxy"), help="where the findings are committed")
    parser.add_argument("--train-only", action="store_true", help="run the sweeps, skip the report")
    parser.add_argument("--report-only", action="store_true", help="report the sweeps that finished, train nothing")
    parser.add_argument("--attention-only", action="store_true",
                        help="only the attention analysis, of Table 7's K3+K5 SK of seed 0 (finished)")  # fmt: skip
    args = parser.parse_args()
    if args.attention_only:
        from benchmarks.proxy_report import attention_analysis
        from sksearch.runfiles import read_trials
        from sksearch.schema import RESULT_STATUSES

        trials = read_trials(str(Path(args.runs) / "table7"))
        attention_analysis(trials[trials["status"].isin(RESULT_STATUSES)], Path(args.out) / "attention")
        return
    seeds = [int(seed) for seed in args.seeds.split(",")]
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    extra, pilot = runs / "table6.yaml", runs / "pilot.yaml"
    extra.write_text(TABLE6_EXTRA)
    pilot.write_text(PILOT)
    timing_file = runs / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    sweeps = ((pilot, "pilot"), (ROOT / "spaces/table7.yaml", "table7"), (extra, "table6"))
    for space, name in [] if args.report_only else sweeps:
        started = time.monotonic()
        try:
            run_or_resume(space, name, runs, seeds)
        finally:  # an interrupted run's time counts too: resumed, it adds the rest
            if time.monotonic() - started > 60:
                timing[name] = timing.get(name, 0.0) + time.monotonic() - started
                timing_file.write_text(json.dumps(timing, indent=2))
    if not args.train_only:
        from benchmarks.proxy_report import report

        finished = [name for _, name in sweeps[1:] if finished_trials(runs / name)]
        report(runs, out, timing, finished)


if __name__ == "__main__":
    main()
