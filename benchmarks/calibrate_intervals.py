"""Do `compare`'s 95% intervals keep their promise? Simulated results tables, known true effect.

Each table has P pairs of networks (a knob off/on) trained with S seeds. A run's error is
    base[pair] + level[seed] + on * (effect + pair_effect[pair] + seed_effect[seed]) + noise:
the seed's own level cancels in a seed-paired difference, but its effect on the knob's difference
(the seed sets data order and initialisation, and seed 0 gave the largest difference in 3 of 4
committed pairs) is shared by every pair, and pairs differ among themselves in what the knob does.
The per-pair truth is effect + pair_effect (its own seeds are a sample); the overall truth is effect.
The tables go through `sksearch.results.statistics.compare_knob`, as a sweep's table does, and the
script counts how often the per-pair and overall 95% intervals cover their true effects, and how
often a table with no effect is called "within noise".

    .venv/bin/python benchmarks/calibrate_intervals.py --tables 1000
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd

from sksearch.results.statistics import compare_knob

# (pair sd, seed sd, run noise sd) of the simulated differences: the proxy's regime (seed effects
# and pair heterogeneity near the noise) and the corners where one of them is absent
REGIMES = ((1.0, 2.0, 1.0), (2.0, 0.0, 1.0), (0.0, 2.0, 1.0), (0.0, 0.0, 1.0), (2.0, 2.0, 2.0))


def simulated_table(rng: np.random.Generator, pairs: int, seeds: int, effect: float, regime: tuple) -> pd.DataFrame:
    """One results table: 2 networks per pair (attention off/on), each trained with `seeds` seeds."""
    pair_sd, seed_sd, noise_sd = regime
    level, seed_effect = rng.normal(0, 3, seeds), rng.normal(0, seed_sd, seeds)
    rows = []
    for pair in range(pairs):
        base, shift = rng.normal(20, 3), effect + rng.normal(0, pair_sd)
        for attention, seed in itertools.product((False, True), range(seeds)):
            on = (shift + seed_effect[seed]) * attention
            error = base + level[seed] + on + rng.normal(0, noise_sd / np.sqrt(2))
            rows.append({"archid": f"p{pair}-{attention}", "branches": f"pair{pair}", "attention": attention,
                         "seed": seed, "top1_err": error, "true_shift": shift})  # fmt: skip
    return pd.DataFrame(rows)


def coverage(pairs: int, seeds: int, effect: float, regime: tuple, tables: int, seed: int = 0) -> dict:
    """Shares of tables whose per-pair and overall intervals cover `effect`, and (effect 0) whose
    overall verdict is "within noise"."""
    rng = np.random.default_rng(seed)
    pair_cover = overall_cover = quiet = pair_count = 0
    for _ in range(tables):
        runs = simulated_table(rng, pairs, seeds, effect, regime)
        table = compare_knob(runs, "attention", ["branches", "attention"], ["top1_err"], power=None)
        per_pair, overall = table[table["pair"] != "overall"], table[table["pair"] == "overall"].iloc[0]
        pair_count += len(per_pair)
        # a pair's interval is about that pair: its own true shift (the effect plus its pair effect)
        truth = per_pair["archid_b"].map(runs.groupby("archid")["true_shift"].first())
        pair_cover += int(((per_pair["ci_low"] <= truth) & (truth <= per_pair["ci_high"])).sum())
        overall_cover += int(overall["ci_low"] <= effect <= overall["ci_high"])
        quiet += int(overall["verdict"] == "within noise")
    return {"pairs": pairs, "seeds": seeds, "effect": effect, "pair_sd": regime[0], "seed_sd": regime[1],
            "noise_sd": regime[2], "tables": tables, "overall_coverage": overall_cover / tables,
            "pair_coverage": pair_cover / pair_count, "within_noise": quiet / tables}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--out", help="write the coverage table as CSV here")
    args = parser.parse_args()
    rows = []
    settings = list(itertools.product((2, 4, 8), (2, 3, 5), (0.0, 2.0), REGIMES))
    for index, (pairs, seeds, effect, regime) in enumerate(settings):
        rows.append(coverage(pairs, seeds, effect, regime, args.tables, seed=index))
        print(f"[{index + 1}/{len(settings)}] {rows[-1]}", flush=True)  # long: show progress
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
    inside = frame["overall_coverage"].between(0.93, 0.97)
    print(f"overall coverage within [0.93, 0.97] in {inside.sum()} of {len(frame)} settings; "
          f"range {frame['overall_coverage'].min():.3f}-{frame['overall_coverage'].max():.3f}")  # fmt: skip
    if args.out:
        frame.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
