"""Analytic counter vs fvcore on the same specs, in one run.

Draws N distinct specs from the shipped spaces, and R random specs over every knob of the spec
(the SK family's included: tests/random_specs.py, small networks), counts each with both counters,
and prints specs/second for each, the speed ratio and the number of mismatches (params, MACs or
activations; must be 0). Goals: analytic >= 10,000 specs/s on one core, and >= 1000x faster than fvcore.

    .venv/bin/python benchmarks/bench_complexity.py [--n 200] [--random 500]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import sys
import time
from pathlib import Path

import torch

from sksearch.complexity import count, fvcore_count
from sksearch.search import load_space

ROOT = Path(__file__).parents[1]
SPACES = ROOT / "spaces"
sys.path.insert(0, str(ROOT))
from tests.random_specs import random_spec  # noqa: E402  (the suite's generator, over every knob)


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


def analytic_rate(specs: list) -> tuple[float, list]:
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:  # at least 2 s of analytic counting
        analytic = [count(spec) for spec in specs]
        repeats += 1
    return repeats * len(specs) / (time.perf_counter() - start), analytic


def fvcore_mismatches(specs: list, analytic: list) -> tuple[int, float]:
    mismatches, start = 0, time.perf_counter()
    for spec, expected in zip(specs, analytic, strict=True):
        traced = fvcore_count(spec, spec.input_size)  # uncached: a real trace each time
        mismatches += (traced.params, traced.macs, traced.activations) != (
            expected.params, expected.macs, expected.activations)  # fmt: skip
    return mismatches, len(specs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of distinct specs (>= 200 for the record)")
    parser.add_argument("--random", type=int, default=500, help="random specs over every knob (small networks)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core for both counters
    groups = {
        "spaces": draw_specs(args.n),
        "random": [random_spec(random.Random(seed)) for seed in range(args.random)],
    }
    print(
        f"{len(groups['spaces'])} distinct specs from {len(list(SPACES.glob('*.yaml')))} shipped spaces and "
        f"{len(groups['random'])} random specs over every knob; python {platform.python_version()}, "
        f"torch {torch.__version__}, 1 thread"
    )
    print(f"{'specs':8s} {'analytic/s':>12s} {'fvcore/s':>10s} {'ratio':>9s} {'mismatches':>11s}")
    for name, specs in groups.items():
        if not specs:
            continue
        rate, analytic = analytic_rate(specs)
        mismatches, fvcore_rate = fvcore_mismatches(specs, analytic)
        print(f"{name:8s} {rate:12,.0f} {fvcore_rate:10,.2f} {rate / fvcore_rate:8,.0f}x {mismatches:11d}")
    print("goals: analytic >= 10,000 specs/s on one core, >= 1000x fvcore, 0 mismatches")


if __name__ == "__main__":
    main()
