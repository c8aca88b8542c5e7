"""The trial store's targets, measured on this machine.

    .venv/bin/python benchmarks/bench_store.py [--epochs 2] [--table results/sknet50_smoke] [--repeats 20]

1. Re-run: spaces/smoke.yaml (4 networks, proxy recipe cut to --epochs and 2048 images) is swept,
   then swept again under a new name with the same store: the trainings of each run and their wall
   times (Ray's start included in the first), and the ratio (goal: 0 trainings, <= 10%).
2. Extend: the first sweep extended by one new value of its `branches` knob (K5+K7): the networks
   trained, against the networks the new value adds (goal: exactly those).
3. Replay: every algorithm x --repeats on the committed tabulated benchmark, at budgets 0.25 and 1.0
   (the whole table: every trial of every repeat), in seconds (goal: <= 30 s on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SMOKE = ROOT / "spaces" / "smoke.yaml"


def trained(table) -> int:
    return int((table["status"] != "reused").sum())


def rerun(storage: Path, epochs: int) -> None:
    from sksearch.search import plan_sweep, run_sweep

    settings = {"epochs": epochs, "train_samples": 2048, "val_samples": 512}
    times, tables = [], []
    for name in ("first", "again"):
        started = time.perf_counter()
        plan = plan_sweep(SMOKE, settings=settings, storage=str(storage), name=name)
        tables.append(run_sweep(plan, num_cpus=2, progress=False))
        times.append(time.perf_counter() - started)
    print("\n1. re-running a finished sweep under a new name (the same store)")
    print(f"   first run: {len(tables[0])} trials, {trained(tables[0])} trained, {times[0]:.1f} s")
    print(f"   re-run:    {len(tables[1])} trials, {trained(tables[1])} trained, {times[1]:.2f} s")
    print(f"   re-run / first run: {times[1] / times[0]:.2%}  (goal: 0 trained, <= 10%)")


def extend(storage: Path) -> None:
    from sksearch.search import extend_sweep, load_space

    data = yaml.safe_load(SMOKE.read_text())
    before = len(load_space(SMOKE).enumerate())
    data["knobs"]["branches"]["grid"].append("K5+K7")
    wider = storage / "wider.yaml"
    wider.write_text(yaml.safe_dump(data))
    new = len(load_space(wider).enumerate()) - before
    started = time.perf_counter()
    union = extend_sweep(str(storage / "first"), space_file=str(wider), num_cpus=2, progress=False)
    seconds = time.perf_counter() - started
    added = union[union["sweep"] != "first"]
    print("\n2. extend with one new knob value (branches: K5+K7)")
    print(f"   networks the value adds: {new}; trained by extend: {trained(added)} ({seconds:.1f} s)")
    print(f"   the sweep's table now: {len(union)} rows, {union['archid'].nunique()} networks")


def replay_speed(table_dir: str, repeats: int) -> None:
    from sksearch.search.replay import ALGORITHMS, load_benchmark, replay

    table = load_benchmark([table_dir])
    algorithms = f"{len(ALGORITHMS)} algorithms x {repeats} repeats"
    print(f"\n3. replay on {table_dir}: {len(table.networks)} networks, {algorithms}")
    for budget in (0.25, 1.0):
        started = time.perf_counter()
        trials = replay(table, ALGORITHMS, repeats, budget)
        seconds = time.perf_counter() - started
        per = trials.groupby("algorithm", sort=False).size() / repeats
        counts = ", ".join(f"{name} {count:.0f}" for name, count in per.items())
        print(f"   budget {budget:g}: {seconds:.1f} s ({len(trials)} replayed trials; per repeat: {counts})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--table", default=str(ROOT / "results" / "sknet50_smoke"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rerun(Path(folder), args.epochs)
        extend(Path(folder))
    replay_speed(args.table, args.repeats)


if __name__ == "__main__":
    main()
