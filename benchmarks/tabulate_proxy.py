"""A tabulated benchmark worth replaying (issue 27): networks of a shipped space under the converged
`proxy` recipe, every epoch's validation error recorded, a second seed on some of them to measure
the noise; then the figures that say whether the table tells networks apart.

    .venv/bin/python benchmarks/tabulate_proxy.py [--space spaces/sknet26.yaml] [--networks 48] [--repeat 12]
        [--runs results/proxy-runs] [--out results/bench_sknet26] [--train-only | --report-only | --snapshot]

1. Sweeps (resumed when interrupted, skipped when finished; benchmarks/proxy_tables.run_or_resume),
   one thread per trial, two at a time:
   - `<name>`: a random search of --networks distinct networks of the space, seed 0;
   - `<name>_seed1`: the first --repeat of those networks (a random draw of fewer networks with the
     same seed is the longer draw's start) with seeds 0 and 1; the seed-0 trials are answered by the
     trial store, so only the --repeat seed-1 trials train.
2. The report into --out: both sweeps' sweep.json, trials.parquet and history.parquet (not the
   checkpoints), and targets.json with
   - `reliability`: between-network variance over between-network plus seed variance of a run's
     final top-1 error (seed variance from the networks run twice; goal >= 0.8);
   - `front_stability`: the share of the (top1_err, gmacs) front's networks still on the front when
     each network's error is re-drawn with the measured seed noise, mean over 1000 draws (>= 0.8);
   - `rung_spearman`: per ASHA rung (epochs 1, 4, ... as sksearch's schedulers place them), the
     Spearman correlation of the epoch's error with the final error over the seed-0 runs.
`--snapshot` copies the tables of a run still training into --out with `progress.json` (trials
finished of each sweep, no figures), so that a long run's results can be committed in pieces.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRIC = "top1_err"


def reliability(finals: pd.DataFrame) -> dict[str, float]:
    """Share of a run's final-error variance that is between networks: 1 - seed variance / total
    variance, the total over every network's seed-0 run, the seed variance pooled over the networks
    run with two or more seeds."""
    from sksearch.results.statistics import pooled_seed_std

    seed_std, seed_dof = pooled_seed_std(finals, METRIC)
    if not seed_dof:
        raise ValueError("no network was run with two seeds: the seed variance is unknown")
    total = float(finals[finals["seed"] == finals["seed"].min()][METRIC].var(ddof=1))
    return {"reliability": max(0.0, 1 - seed_std**2 / total), "seed_std": seed_std, "total_std": total**0.5,
            "seed_dof": seed_dof}  # fmt: skip


def front_stability(finals: pd.DataFrame, seed_std: float, draws: int = 1000, seed: int = 0) -> float:
    """Mean share of the front's networks (seed-mean error, GMACs; both minimised) that stay on the
    front when every network's mean error is re-drawn with its noise, seed_std / sqrt(its seeds)."""
    from sksearch.results.fronts import non_dominated

    networks = finals.groupby("archid").agg(error=(METRIC, "mean"), gmacs=("gmacs", "first"), n=(METRIC, "size"))
    values = networks[["error", "gmacs"]].to_numpy(float)
    front = non_dominated(values)
    rng = np.random.default_rng(seed)
    kept = []
    for _ in range(draws):
        drawn = values.copy()
        drawn[:, 0] += rng.normal(0, seed_std / np.sqrt(networks["n"].to_numpy()))
        kept.append(non_dominated(drawn)[front].mean())
    return float(np.mean(kept))


def rung_spearman(history: pd.DataFrame, finals: pd.DataFrame, epochs: int) -> dict[str, float]:
    """Spearman's rho of the error after each ASHA rung's epoch with the final error, over the runs
    of the lowest seed."""
    from scipy import stats

    from sksearch.search.schedulers import rungs

    runs = finals[finals["seed"] == finals["seed"].min()].set_index("trial_id")[METRIC]
    found = {}
    for rung in sorted(rung for rung in rungs(epochs) if rung < epochs):  # the last is the end, not a cut
        at = history[(history["epoch"] == rung) & history["trial_id"].isin(runs.index)].set_index("trial_id")[METRIC]
        found[str(rung)] = float(stats.spearmanr(at, runs.loc[at.index]).statistic)
    return found


def targets(run_dirs: list[Path]) -> dict[str, object]:
    from sksearch.runfiles import read_history, read_trials
    from sksearch.schema import RESULT_STATUSES

    finals = pd.concat([read_trials(str(run_dir)) for run_dir in run_dirs], ignore_index=True)
    finals = finals[finals["status"].isin(RESULT_STATUSES)].drop_duplicates(["archid", "seed"])
    history = pd.concat([read_history(str(run_dir)) for run_dir in run_dirs], ignore_index=True)
    noise = reliability(finals)
    return {
        **noise,
        "front_stability": front_stability(finals, noise["seed_std"]),
        "rung_spearman": rung_spearman(history, finals, int(finals["epochs"].max())),
        "networks": int(finals["archid"].nunique()),
        "runs": len(finals),
    }


TABLES = ("sweep.json", "trials.parquet", "history.parquet")  # what is committed; never the checkpoints


def copy_tables(run_dirs: list[Path], out: Path) -> None:
    for run_dir in run_dirs:
        if (run_dir / "sweep.json").exists():
            (out / run_dir.name).mkdir(parents=True, exist_ok=True)
            for name in TABLES:
                if (run_dir / name).exists():
                    shutil.copy2(run_dir / name, out / run_dir.name / name)


def progress(run_dirs: list[Path]) -> dict[str, dict[str, int]]:
    """Trials with a result and trials planned, per sweep started so far."""
    from benchmarks.proxy_tables import trial_counts

    counts = {run_dir.name: trial_counts(run_dir) for run_dir in run_dirs}
    return {name: {"finished": c[0], "trials": c[1]} for name, c in counts.items() if c is not None}


def main() -> None:
    from benchmarks.proxy_tables import finished_trials, run_or_resume

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(ROOT / "spaces/sknet26.yaml"))
    parser.add_argument("--networks", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=12, help="networks run with a second seed")
    parser.add_argument("--name", default="bench26")
    parser.add_argument("--runs", default=str(ROOT / "results/proxy-runs"))
    parser.add_argument("--out", default=str(ROOT / "results/bench_sknet26"))
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--snapshot", action="store_true", help="copy the tables so far, with progress.json")
    args = parser.parse_args()
    runs, out, space = Path(args.runs), Path(args.out), Path(args.space)
    sweeps = {args.name: ([0], args.networks), f"{args.name}_seed1": ([0, 1], args.repeat)}
    run_dirs = [runs / name for name in sweeps]
    if args.snapshot:
        copy_tables(run_dirs, out)
        (out / "progress.json").write_text(json.dumps(progress(run_dirs), indent=2) + "\n")
        print((out / "progress.json").read_text(), end="")
        return
    if not args.report_only:
        runs.mkdir(parents=True, exist_ok=True)
        for name, (seeds, networks) in sweeps.items():
            run_or_resume(space, name, runs, seeds, algorithm="random", num_samples=networks)
    if args.train_only:
        return
    unfinished = [run_dir.name for run_dir in run_dirs if not finished_trials(run_dir)]
    if unfinished:
        sys.exit(f"not finished: {', '.join(unfinished)} (run without --report-only to train them)")
    copy_tables(run_dirs, out)
    (out / "progress.json").unlink(missing_ok=True)
    figures = targets(run_dirs)
    (out / "targets.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
