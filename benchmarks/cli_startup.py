"""CPU seconds of `sksearch --help`, every verb's `--help` and a refusal of bad input by every verb,
each in a fresh process, against the target of 1 s (issue 28): the CLI imports torch, Ray and
pandas only in the verbs that use them, and refuses bad input before it does.

    python benchmarks/cli_startup.py [--repeats 3]

CPU time (user + system of the child) is what an idle machine's wall time approaches; the wall time
is printed beside it, and varies with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_CPU_S = 1.0
LAUNCH = "import sys; from sksearch.cli import main; sys.exit(main(sys.argv[1:]))"  # what the `sksearch` script runs


def refusals(folder: str) -> dict[str, list[str]]:
    """One bad input per verb, each refused with exit code 2: a space file that is not YAML, a run
    folder that is not there, an output folder under a file."""
    bad_yaml, missing = str(Path(folder) / "space.yaml"), str(Path(folder) / "no-such-run")
    Path(bad_yaml).write_text("name: [unclosed\n")
    return {
        "presets": ["presets", "--sort", "colour"],
        "spec": ["spec", "nosuchnet"],
        "count": ["count", "nosuchnet"],
        "paper": ["paper", "--out", bad_yaml + "/out"],
        "latency": ["latency", "nosuchnet"],
        "train": ["train", "nosuchnet"],
        "prepare": ["prepare", missing, str(Path(folder) / "packed")],
        "sweep": ["sweep", bad_yaml],
        "resume": ["resume", missing],
        "extend": ["extend", missing, "--num-samples", "2"],
        "repair": ["repair", missing],
        "status": ["status", missing],
        "plan": ["plan", bad_yaml],
        "store": ["store", "ls", "--store", missing],
        "space": ["space", "show", bad_yaml],
        "results": ["results", missing],
        "pareto": ["pareto", missing],
        "compare": ["compare", missing],
        "table": ["table", missing, "--paper", "table7"],
        "export": ["export", missing, "--best", "--out", str(Path(folder) / "export")],
        "plot": ["plot", missing, "--kind", "edf", "--out", str(Path(folder) / "x.png")],
        "attention": ["attention", missing],
        "replay": ["replay", missing],
    }


def measure(arguments: list[str]) -> tuple[float, float, int, str]:
    """CPU seconds, wall seconds, exit code and the last line of stderr of one fresh `sksearch` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCH, *arguments], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return cpu, wall, done.returncode, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command; the median is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cases = [("--help", ["--help"])]
        for verb, refusal in refusals(folder).items():
            cases += [(f"{verb} --help", [verb, "--help"]), (f"{verb} refusal", refusal)]
        print(f"{'command':<22}{'CPU s':>8}{'wall s':>8}{'x target':>10}  exit  message")
        worst = 0.0
        for name, arguments in cases:
            runs = sorted((measure(arguments) for _ in range(args.repeats)), key=lambda run: run[0])
            cpu, wall, code, message = runs[len(runs) // 2]
            worst = max(worst, cpu)
            print(f"{name:<22}{cpu:>8.2f}{wall:>8.2f}{cpu / TARGET_CPU_S:>10.2f}  {code:>4}  {message[:70]}")
        load = os.getloadavg()[0]
        print(f"slowest: {worst:.2f} s of CPU against the target of {TARGET_CPU_S:.0f} s; load {load:.1f}")
    return 0 if worst <= TARGET_CPU_S else 1


if __name__ == "__main__":
    sys.exit(main())
