"""Latency measurement: its noise, the latency/MAC gap of SK units, and timing a whole space.

    .venv/bin/python benchmarks/bench_latency.py [--repeats 5] [--threads 1] [--space spaces/table7.yaml]

1. Noise: SKNet-50 at 224 px, batch 1, measured --repeats times (each a median of 10 runs after 3
   warm-ups, in one process, --threads threads); the spread of those medians, (max - min) / median
   (goal: <= 5%).
2. The gap: SKNet-50 beside ResNeXt-50 (32x4d): latency, throughput at batch 8, and their ratios
   beside the MACs ratio (timm's published training throughput: SKNet-50 at 0.65x ResNeXt-50's speed
   for 1.055x its MACs).
3. `sksearch latency --space`: every network of the space measured (a fresh cache), wall time
   (goal: under 5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def noise(repeats: int, threads: int) -> None:
    from sksearch import preset
    from sksearch.latency import measure

    medians = [measure(preset("sknet50"), batch=1, threads=threads, runs=10).latency_ms for _ in range(repeats)]
    spread = (max(medians) - min(medians)) / statistics.median(medians)
    print(f"1. SKNet-50, 224 px, batch 1, {threads} thread(s): medians of {repeats} measurements (ms):")
    print("   " + ", ".join(f"{m:.1f}" for m in medians) + f"; spread (max - min) / median = {spread:.1%} (goal <= 5%)")


def gap(threads: int) -> None:
    from sksearch import count, preset
    from sksearch.latency import measure

    timings = {name: measure(preset(name), batch=8, threads=threads) for name in ("sknet50", "resnext50_32x4d")}
    sk, rx = timings["sknet50"], timings["resnext50_32x4d"]
    macs = count("sknet50").macs / count("resnext50_32x4d").macs
    print(f"2. SKNet-50 / ResNeXt-50, {threads} thread(s): MACs {macs:.3f}x; latency {sk.latency_ms:.1f} / "
          f"{rx.latency_ms:.1f} ms = {sk.latency_ms / rx.latency_ms:.3f}x; throughput at batch 8 "
          f"{sk.throughput:.2f} / {rx.throughput:.2f} images/s = {sk.throughput / rx.throughput:.3f}x")  # fmt: skip


def whole_space(space: str, threads: int) -> None:
    with tempfile.TemporaryDirectory() as store:
        started = time.perf_counter()
        command = [sys.executable, "-m", "sksearch.cli", "latency", space, "--threads", str(threads), "--store", store]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - started
    rows = output.strip().splitlines()
    count = len(rows) - 2  # a header line and a closing line
    print(f"3. sksearch latency {space} --threads {threads}: {count} networks in {seconds:.0f} s (goal < 300 s)")
    print("\n".join("   " + row for row in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--space", default=str(ROOT / "spaces" / "table7.yaml"))
    args = parser.parse_args()
    noise(args.repeats, args.threads)
    gap(args.threads)
    whole_space(args.space, args.threads)


if __name__ == "__main__":
    main()
