"""The analytic counter's speed over every preset: specs counted per second, best of 5 one-second
rounds, one thread. Run it beside the same script on another checkout to compare two versions of
the code on one machine (RESULTS.md, issue 26).

    .venv/bin/python benchmarks/bench_counter_presets.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sksearch.complexity import analytic_count
from sksearch.presets import list_presets, preset


def specs_per_second(rounds: int = 5, seconds: float = 1.0) -> float:
    specs = [preset(name) for name in list_presets()]
    best = 0.0
    for _ in range(rounds):
        started, counted = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            for spec in specs:
                analytic_count(spec, spec.input_size)
            counted += len(specs)
        best = max(best, counted / (time.perf_counter() - started))
    return best


if __name__ == "__main__":
    print(f"analytic counter over {len(list_presets())} presets: {specs_per_second():,.0f} specs/s (goal >= 10,000)")
