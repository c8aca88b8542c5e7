"""The search side: spaces, their knobs and candidates, sweep plans, trials, searchers, schedulers,
callbacks, running and status.

Modules, in the order data flows through them:

- `knobs`: knob names, value types, spec paths and shortcuts;
- `points`: a point's knob values -> a spec, and a spec -> knob values;
- `space`: `Space`, `Candidate`, `Draw`, constraints; `spacefile`: reading space files;
- `adapters`: a space as Ray Tune's param_space and Optuna's define-by-run function;
- `plan`: `SweepPlan` (sweep.json), every check before Ray starts; `status`: a sweep's progress;
- `store`: the trial store (one immutable record per trial); `reuse`: answering a sweep from it;
  `extend`: a finished sweep's extension (only new networks trained);
- `trial`, `searchers`, `schedulers`, `callbacks`, `run`: the sweep on Ray Tune (these import Ray).

The names below need no Ray; `run_sweep`, `resume_sweep`, `repair_sweep` and `extend_sweep` import it
when first used.
"""

from sksearch.search.plan import Resources, SweepPlan, load_plan, plan_sweep
from sksearch.search.space import Candidate, Draw, Rejected, Space
from sksearch.search.spacefile import load_space, parse_space
from sksearch.search.status import sweep_status


def __getattr__(name: str):
    if name in ("run_sweep", "resume_sweep", "repair_sweep", "extend_sweep"):
        from sksearch.search import run

        return getattr(run, name)
    raise AttributeError(f"module 'sksearch.search' has no attribute {name!r}")


__all__ = [
    "Candidate",
    "Draw",
    "Rejected",
    "Resources",
    "Space",
    "SweepPlan",
    "extend_sweep",
    "load_plan",
    "load_space",
    "parse_space",
    "plan_sweep",
    "repair_sweep",
    "resume_sweep",
    "run_sweep",
    "sweep_status",
]
