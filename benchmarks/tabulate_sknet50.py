"""A tabulated benchmark for `sksearch replay`: random networks of spaces/sknet50.yaml, trained fully.

    .venv/bin/python benchmarks/tabulate_sknet50.py [--samples 56] [--runs results/tabulate-runs] \
        [--out results/sknet50_smoke]

Draws --samples points of the SKNet-50 design space at random (seed 0, the space's 5-GMAC limit) and
trains each under the `smoke` recipe (1/8 of the channels, 32 px synthetic images, 8 epochs, the
whole per-epoch history kept), one trial at a time on one thread so that each trial's recorded wall
time is that of an undisturbed run. An interrupted run is resumed. The sweep's sweep.json,
trials.parquet and history.parquet are then copied to --out, which is committed: replay reads it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NAME = "sknet50_smoke"
TABLE_FILES = ("sweep.json", "trials.parquet", "history.parquet")


def run_or_resume(runs: Path, samples: int) -> float:
    """Run the sweep, or finish an interrupted one; returns its wall time in seconds."""
    from sksearch.search import Resources, plan_sweep, resume_sweep, run_sweep

    started = time.monotonic()
    if (runs / NAME / "sweep.json").exists():
        print(f"{NAME}: resuming", flush=True)
        resume_sweep(str(runs / NAME), num_cpus=1)
    else:
        plan = plan_sweep(
            ROOT / "spaces/sknet50.yaml",
            recipe="smoke",
            settings={"threads": 1},
            algorithm="random",
            num_samples=samples,
            seeds=[0],
            storage=str(runs),
            name=NAME,
            resources=Resources(cpus_per_trial=1, max_concurrent=1),
            reuse=False,
        )
        print(f"{NAME}: {samples} random networks of spaces/sknet50.yaml under the smoke recipe", flush=True)
        run_sweep(plan, num_cpus=1, progress=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=56)
    parser.add_argument("--runs", default=str(ROOT / "results/tabulate-runs"), help="where the sweep runs")
    parser.add_argument("--out", default=str(ROOT / "results" / NAME), help="where the table is committed")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    seconds = run_or_resume(runs, args.samples)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLE_FILES:
        shutil.copyfile(runs / NAME / name, out / name)
    from sksearch.runfiles import read_trials

    table = read_trials(str(out))
    summary = {
        "trials": len(table),
        "distinct_networks": int(table["archid"].nunique()),
        "completed": int((table["status"] == "completed").sum()),
        "sweep_seconds": round(seconds, 1),
        "trial_seconds_total": round(float(table["wall_time"].sum()), 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
