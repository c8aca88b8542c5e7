"""After (and during) a sweep: the merged results table, Pareto fronts, ablation answers with
their uncertainty, the paper's tables beside ours, and exported configurations.

Everything works on the tables a sweep writes (sksearch.runfiles; sksearch.schema says what each
column means). Modules: `loading` (load, query), `fronts` (Pareto, hypervolume, knee),
`statistics` and `comparison` (seed-paired differences), `paper_tables`, `exports`.
"""

from sksearch.results.comparison import compare, published_errors
from sksearch.results.exports import export, load_export, select_for_export
from sksearch.results.fronts import (
    Objectives,
    default_reference,
    hypervolume,
    knee,
    non_dominated,
    pareto,
    seed_means,
    within_reference,
)
from sksearch.results.loading import learning_curves, load_results, query, sweep_objectives
from sksearch.results.paper_tables import (
    PAPER_TABLES,
    paper_table,
    published_points,
    rank_agreement,
    render_paper_table,
    write_paper_table,
)

__all__ = [
    "PAPER_TABLES",
    "Objectives",
    "compare",
    "default_reference",
    "export",
    "hypervolume",
    "knee",
    "learning_curves",
    "load_export",
    "load_results",
    "non_dominated",
    "paper_table",
    "pareto",
    "published_errors",
    "published_points",
    "query",
    "rank_agreement",
    "render_paper_table",
    "seed_means",
    "select_for_export",
    "sweep_objectives",
    "within_reference",
    "write_paper_table",
]
