"""What a finished (or resumed) sweep leaves beside its table: counts by status, the best trial,
and for several objectives the Pareto front as pareto.csv and pareto.png in the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sksearch.files import atomic_write_text, is_uri, join
from sksearch.runfiles import TRIALS
from sksearch.schema import best_trial, results_of


@dataclass
class Outcome:
    table_path: str
    counts: dict[str, int]
    objectives: tuple[tuple[str, str], ...]
    best: pd.Series | None = None  # one objective: the best completed trial
    front: pd.DataFrame | None = None  # several: the Pareto front on seed means
    files: list[Path] = field(default_factory=list)


def sweep_outcome(run_dir: str, table: pd.DataFrame, objectives: tuple[tuple[str, str], ...]) -> Outcome:
    """Counts, best trial or front; writes the front's files into a local run folder."""
    outcome = Outcome(
        table_path=join(str(run_dir), TRIALS),
        counts=table["status"].value_counts().to_dict() if len(table) else {},
        objectives=tuple(objectives),
    )
    done = results_of(table)
    if done.empty:
        return outcome
    if len(objectives) < 2:
        outcome.best = best_trial(done, *objectives[0])
        return outcome
    from sksearch.plots import plot_pareto
    from sksearch.results import pareto, published_points

    outcome.front = pareto(done, objectives)
    if not is_uri(run_dir):
        csv = atomic_write_text(
            Path(run_dir) / "pareto.csv", outcome.front.drop(columns=["trial_ids"]).to_csv(index=False)
        )
        outcome.files = [csv, plot_pareto(done, objectives, Path(run_dir) / "pareto.png", published_points(done))]
    return outcome
