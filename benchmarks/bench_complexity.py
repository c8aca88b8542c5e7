"""Analytic counter vs fvcore on the same specs, in one run.

Draws N distinct specs from the shipped spaces, counts each with both counters, and prints
specs/second for each, the speed ratio and the number of mismatches (params or MACs; must be 0).
Goals: analytic >= 10,000 specs/s on one core, and >= 1000x faster than fvcore.

    .venv/bin/python benchmarks/bench_complexity.py [--n 200]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path

import torch

from sksearch.complexity import count, fvcore_count
from sksearch.search import load_space

SPACES = Path(__file__).parents[1] / "spaces"


def draw_specs(n: int) -> list:
    """Round-robin over the shipped spaces until n distinct specs are drawn."""
    per_space = []
    for path in sorted(SPACES.glob("*.yaml")):
        space = load_space(path)
        draw = space.enumerate() if space.finite else space.sample(n, seed=0)
        per_space.append([candidate.spec for candidate in draw])
    specs, seen = [], set()
    for spec in itertools.chain.from_iterable(itertools.zip_longest(*per_space)):
        if spec is not None and (spec.archid, spec.input_size) not in seen:
            seen.add((spec.archid, spec.input_size))
            specs.append(spec)
    return specs[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of distinct specs (>= 200 for the record)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core for both counters
    specs = draw_specs(args.n)
    print(
        f"{len(specs)} distinct specs from {len(list(SPACES.glob('*.yaml')))} shipped spaces; "
        f"python {platform.python_version()}, torch {torch.__version__}, 1 thread"
    )

    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:  # at least 2 s of analytic counting
        analytic = [count(spec) for spec in specs]
        repeats += 1
    analytic_rate = repeats * len(specs) / (time.perf_counter() - start)

    mismatches = 0
    start = time.perf_counter()
    for spec, expected in zip(specs, analytic, strict=True):
        traced = fvcore_count(spec, spec.input_size)  # uncached: a real trace each time
        mismatches += (traced.params, traced.macs) != (expected.params, expected.macs)
    fvcore_rate = len(specs) / (time.perf_counter() - start)

    print(f"{'counter':10s} {'specs/s':>12s}")
    print(f"{'analytic':10s} {analytic_rate:12,.0f}   (goal >= 10,000)")
    print(f"{'fvcore':10s} {fvcore_rate:12,.2f}")
    print(f"speed ratio analytic / fvcore: {analytic_rate / fvcore_rate:,.0f}x   (goal >= 1000x)")
    print(f"mismatches (params or MACs): {mismatches}   (must be 0)")


if __name__ == "__main__":
    main()
