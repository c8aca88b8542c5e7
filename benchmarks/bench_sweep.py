"""Per-trial overhead of the sksearch sweep harness against bare Ray Tune, in one run.

Both run the same trivial trainable (one report, no training) for N trials on one local Ray
instance with reuse_actors. The harness adds what `sksearch sweep` does around a trial: the space
point -> network mapping, the plan passed to each trial, the results table written as trials end,
and the history collected at the end. Goal: <= 0.2 s of overhead per trial.

    .venv/bin/python benchmarks/bench_sweep.py [--trials 40] [--cpus 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

from sksearch.search import plan_sweep, run_sweep

SPACE = Path(__file__).parents[1] / "spaces" / "sknet50.yaml"
RESULT = {"top1_err": 50.0, "top5_err": 10.0, "train_loss": 1.0, "epoch": 1, "status": "completed"}


def trivial_trial(config, plan) -> None:
    """The harness's trial function signature, doing no work."""
    point, _ = plan.point_and_seed(config)
    tune.report({**RESULT, "gmacs": plan.space.candidate(point).complexity.gmacs})


def trivial_bare(config) -> None:
    tune.report({**RESULT, "gmacs": 1.0})


def time_bare(trials: int, storage: str) -> float:
    tuner = tune.Tuner(
        tune.with_resources(trivial_bare, {"CPU": 1}),
        param_space={"index": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="bare", storage_path=storage, verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def time_harness(trials: int, storage: str) -> float:
    plan = plan_sweep(SPACE, recipe="smoke", algorithm="random", num_samples=trials, storage=storage, name="harness")
    start = time.perf_counter()
    table = run_sweep(plan, progress=False, trial_fn=trivial_trial)
    elapsed = time.perf_counter() - start
    assert len(table) == trials, len(table)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as storage:
        time_bare(4, storage + "/warm")  # warm the actor pool and imports once
        bare = time_bare(args.trials, storage)
        harness = time_harness(args.trials, storage)
    print(f"{args.trials} trials on a local Ray with {args.cpus} CPUs, reuse_actors, one report per trial")
    print(f"{'':12s} {'seconds':>9s} {'trials/s':>9s}")
    print(f"{'bare Tune':12s} {bare:9.2f} {args.trials / bare:9.2f}")
    print(f"{'sksearch':12s} {harness:9.2f} {args.trials / harness:9.2f}")
    print(f"time ratio sksearch / bare: {harness / bare:.2f}")
    print(f"overhead per trial: {(harness - bare) / args.trials:.3f} s   (goal <= 0.2 s)")


if __name__ == "__main__":
    main()
