"""sksearch: ablation and architecture search for Selective Kernel Networks (SKNet, CVPR 2019).

The public API, in one place:

- networks: `NetSpec` (and `Stage`, `Unit`, `Branch`), `preset`, `list_presets`, `read_spec`,
  `build`, `create_model`, `count`, `record_attention`;
- search: `load_space`;
- results: `load_results`, `pareto`;
- errors: `ConfigError`.

A model argument is a NetSpec, a preset name, a spec YAML file or a spec dict everywhere.
Importing the package costs nothing: each name is imported on first use. Building and analytic
counting need only torch; fvcore is imported by the fvcore counter, pandas by the results, ray and
optuna by the sweep machinery alone.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"


# Public name -> the module that defines it. Imported on first use, so that `import sksearch` (and
# the command line's start-up, `sksearch --help`) costs no torch, pandas or Ray.
_LAZY = {
    "Complexity": "sksearch.complexity",
    "count": "sksearch.complexity",
    "record_attention": "sksearch.layers",
    "SKNet": "sksearch.nets",
    "build": "sksearch.nets",
    "list_presets": "sksearch.presets",
    "preset": "sksearch.presets",
    "Branch": "sksearch.spec",
    "NetSpec": "sksearch.spec",
    "Stage": "sksearch.spec",
    "Unit": "sksearch.spec",
    "read_spec": "sksearch.spec",
    "ConfigError": "sksearch.validation",
}


def __getattr__(name: str) -> Any:
    """A public name (or a submodule, `sksearch.complexity`) imported when first asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        try:
            value = importlib.import_module(f"sksearch.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"sksearch.{name}":
                raise
            raise AttributeError(f"module 'sksearch' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def pareto(frame, objectives):
    """The non-dominated trials of a results table (see sksearch.results.pareto), on seed means."""
    from sksearch.results import pareto as front

    return front(frame, objectives)


def load_results(*run_dirs):
    """The merged results table of one or more sweep folders (see sksearch.results)."""
    from sksearch.results import load_results as load

    return load(run_dirs)


def load_space(path):
    """Load a search space file (see sksearch.search)."""
    from sksearch.search import load_space as load

    return load(path)


def create_model(name: str, num_classes: int = 1000, **overrides):
    """timm-style constructor: `create_model("sknet50", num_classes=10)`."""
    from sksearch.nets import build

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
