"""sksearch: ablation and architecture search for Selective Kernel Networks (SKNet, CVPR 2019).

The public API, in one place:

- networks: `NetSpec` (and `Stage`, `Unit`, `Branch`), `preset`, `list_presets`, `read_spec`,
  `build`, `create_model`, `count`, `record_attention`;
- search: `load_space`;
- results: `load_results`, `pareto`;
- errors: `ConfigError`.

A model argument is a NetSpec, a preset name, a spec YAML file or a spec dict everywhere.
Importing the package, building and analytic counting need only torch; fvcore is imported by the
fvcore counter, pandas by the results, ray and optuna by the sweep machinery alone.
"""

from sksearch.complexity import Complexity, count
from sksearch.layers import record_attention
from sksearch.nets import SKNet, build
from sksearch.presets import list_presets, preset
from sksearch.spec import Branch, NetSpec, Stage, Unit, read_spec
from sksearch.validation import ConfigError


def pareto(frame, objectives):
    """The non-dominated trials of a results table (see sksearch.results.pareto), on seed means."""
    from sksearch.results import pareto as front

    return front(frame, objectives)


def load_results(*run_dirs):
    """The merged results table of one or more sweep folders (see sksearch.results)."""
    from sksearch.results import load_results as load

    return load(run_dirs)


def load_space(path):
    """Load a search space file (see sksearch.search); imported lazily to keep `import sksearch` light."""
    from sksearch.search import load_space as load

    return load(path)


def create_model(name: str, num_classes: int = 1000, **overrides) -> SKNet:
    """timm-style constructor: `create_model("sknet50", num_classes=10)`."""
    return build(name, num_classes=num_classes, **overrides)


__all__ = [
    "Branch",
    "Complexity",
    "ConfigError",
    "NetSpec",
    "SKNet",
    "Stage",
    "Unit",
    "build",
    "count",
    "create_model",
    "list_presets",
    "load_results",
    "load_space",
    "pareto",
    "preset",
    "read_spec",
    "record_attention",
]
__version__ = "0.1.0"
