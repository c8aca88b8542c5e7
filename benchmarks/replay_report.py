"""What the search algorithms reach on the committed tabulated benchmark, replayed (no training).

    .venv/bin/python benchmarks/replay_report.py [--table RUN_DIR ...] [--repeats 50] [--budget 0.5]

Replays random, grid, TPE, NSGA-II, ASHA (on top1_err) and MO-ASHA (on every objective) --repeats
times each up to --budget of the table's compute, objectives top1_err and gmacs, writes the replay's
CSVs and PNG into the first TABLE's replay/ (several run folders are one table: a network's seeds
averaged, their costs summed), and prints, per algorithm, the fraction of the table's hypervolume
reached at 10%, 25% and 50% of the compute (median [IQR] over repeats) and the least compute at
which its median reaches 95%; the best median at 25% with its bootstrap interval; how compressed
the fractions are (one network alone, every network at the median error); then the settings, the
reference point and the claims that hold (the replay verb's summary). TABLE defaults to the
benchmark of `tabulate_proxy.py` (results/bench_sknet26, both seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from sksearch.search.replay import ALGORITHMS, ReplaySettings, load_benchmark, replay
    from sksearch.search.replay_curves import CHECKPOINTS, anytime, summary_lines, write_replay

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench = ROOT / "results" / "bench_sknet26"
    parser.add_argument("--table", nargs="+", default=[str(bench / "bench26"), str(bench / "bench26_seed1")])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--budget", type=float, default=0.5)
    args = parser.parse_args()
    table = load_benchmark(args.table, "top1_err:min,gmacs:min")
    started = time.perf_counter()
    trials = replay(table, ALGORITHMS, args.repeats, args.budget)
    seconds = time.perf_counter() - started
    write_replay(str(Path(args.table[0]) / "replay"), trials, table, args.budget)
    curves = anytime(trials, args.budget, points=round(args.budget * 100) + 1)
    compute = curves[curves["axis"] == "compute"]
    print(f"{len(table.networks)} networks, {table.total_epochs} trial-epochs, {table.total_seconds:.0f} s of "
          f"compute; {len(ALGORITHMS)} algorithms x {args.repeats} repeats replayed in {seconds:.1f} s")  # fmt: skip
    header = " | ".join(f"{fraction:.0%} of the compute" for fraction in CHECKPOINTS)
    print(f"| algorithm | {header} | least compute with median >= 95% |")
    print("|---|" + "---:|" * (len(CHECKPOINTS) + 1))
    for algorithm, curve in compute.groupby("algorithm", sort=False):
        cells = []
        for fraction in CHECKPOINTS:
            row = curve.iloc[int(np.argmin(np.abs(curve["at"].to_numpy() - fraction)))]
            cells.append(f"{row.hv_fraction_median:.3f} [{row.hv_fraction_q25:.3f}, {row.hv_fraction_q75:.3f}]")
        reached = curve[curve["hv_fraction_median"] >= 0.95]
        least = f"{reached['at'].iloc[0]:.0%}" if len(reached) else f"not within {args.budget:.0%}"
        print(f"| {algorithm} | " + " | ".join(cells) + f" | {least} |")
    print(_best_at_quarter(trials))
    print(_band(table))
    print("\n".join(summary_lines(trials, table, args.budget, ReplaySettings.for_table(table))))


def _best_at_quarter(trials) -> str:
    """The algorithm with the best median at 25% of the compute, with the 95% bootstrap interval of
    that median, against the goal of 0.95 of the table's hypervolume (P4)."""
    from sksearch.search.replay_curves import median_interval, reached

    medians = {name: float(np.median(reached(trials, name, 0.25))) for name in dict.fromkeys(trials["algorithm"])}
    best = max(medians, key=medians.get)
    low, high = median_interval(reached(trials, best, 0.25))
    verdict = "met" if low >= 0.95 else "not met" if high < 0.95 else "not shown (the interval spans it)"
    return (f"best median at 25% of the compute: {best} {medians[best]:.3f} (95% bootstrap interval of the "
            f"median [{low:.3f}, {high:.3f}]); goal >= 0.95: {verdict}")  # fmt: skip


def _band(table) -> str:
    """How compressed the hypervolume fractions are on this table: what one network alone, and every
    network given the median error, reach (an algorithm's fraction is read against these)."""
    whole = table.full_hypervolume
    single = max(table.hypervolume([point]) for point in table.finals) / whole
    median = table.finals.copy()
    median[:, 0] = np.median(median[:, 0])
    return (f"the band: the best single network alone reaches {single:.3f} of the table's hypervolume; "
            f"every network given the median error, {table.hypervolume(median) / whole:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
