"""Does a committed row reproduce? One trial of a committed sweep trained again by `train`.

    .venv/bin/python benchmarks/reproduce_row.py results/proxy/pilot --archid 4ea2974ebe --seed 0

The trial is trained again with the recipe and threads it ran with (its `recipe_json`), and every
epoch's training loss and errors are compared with the sweep's history, bit for bit. A trial is
bit-identical between a sweep and `train` on one machine (tests/test_results.py checks it); on
another CPU the floating-point order of the kernels may differ, and a few hundredths in the first
epoch's loss grow into points of error by the last, so a mismatch names the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMPARED = ("train_loss", "top1_err", "top5_err", "raw_top1_err")


def main() -> None:
    from sksearch.recipes import recipe_from
    from sksearch.runfiles import read_history, read_trials
    from sksearch.spec import NetSpec
    from sksearch.train import train

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--archid", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    trials = read_trials(args.run_dir)
    row = trials[(trials["archid"] == args.archid) & (trials["seed"] == args.seed)].iloc[0]
    committed = read_history(args.run_dir)
    committed = committed[committed["trial_id"] == row["trial_id"]].sort_values("epoch")
    recipe = recipe_from(json.loads(row["recipe_json"]))
    with tempfile.TemporaryDirectory() as workdir:
        result = train(NetSpec.from_dict(json.loads(row["spec"])), recipe, workdir)
    print(f"machine: {platform.processor() or platform.machine()}, threads {recipe.threads}")
    mismatches = 0
    for ours, theirs in zip(result.history, committed.to_dict("records"), strict=True):
        same = all(ours.get(name) == theirs.get(name) for name in COMPARED if name in theirs)
        mismatches += not same
        shown = ", ".join(f"{name} {ours.get(name)!r} vs {theirs.get(name)!r}" for name in COMPARED if name in theirs)
        print(f"epoch {ours['epoch']}: {'identical' if same else 'DIFFERS'}: {shown}")
    print("reproduced bit for bit" if not mismatches else f"{mismatches} epochs differ")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
