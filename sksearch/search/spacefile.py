"""Space files (`spaces/*.yaml`): read, validate section by section, build a Space.

Every problem is one ConfigError naming the file and the field (`spaces/x.yaml: knobs.reduction.
choice[1]: must be >= 1, got 0`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sksearch.complexity import count
from sksearch.nets import resolve_spec
from sksearch.presets import preset
from sksearch.recipes import recipe_from
from sksearch.schema import parse_objectives
from sksearch.search.knobs import BUILTIN_OPTIONS, BranchOption, check_branch_coverage, parse_knobs
from sksearch.search.space import Constraints, SearchSettings, Space
from sksearch.spec import Branch, NetSpec
from sksearch.validation import ConfigError, check_keys, integer, name_list, number, one_of
from sksearch.yamlfiles import read_yaml_file

ALGORITHMS = ("grid", "random", "tpe", "nsga2")
EARLY_STOPPING = ("none", "asha", "hyperband", "mo-asha")
GROUPS_RULES = ("reject", "snap")
_SECTIONS = ("name", "description", "base", "branch_options", "knobs", "groups_rule", "constraints", "recipe", "search")


def load_space(path: str | Path) -> Space:
    """Load and validate a space file; errors name the file and the field."""
    path = Path(path)
    return read_yaml_file(path, lambda data: parse_space(data, default_name=path.stem, source=str(path)))


def parse_space(data: Any, default_name: str = "space", source: str = "") -> Space:
    data = check_keys(data, _SECTIONS, required=("base",))
    name = data.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError("name", f"must be letters, digits, '_', '-' or '.', got {name!r}")
    space = Space(
        name=name,
        base=_parse_base(data["base"]),
        knobs=(),
        branch_options=_parse_branch_options(data.get("branch_options", {})),
        groups_rule=one_of(data.get("groups_rule", "reject"), GROUPS_RULES, "groups_rule"),
        constraints=_parse_constraints(data.get("constraints", {})),
        recipe=_within("recipe", lambda: recipe_from(data.get("recipe", "smoke"))),
        search=_parse_search(data.get("search", {})),
        source=source,
    )
    space = Space(**{**space.__dict__, "knobs": parse_knobs(data.get("knobs", {}), space)})
    check_branch_coverage(space)
    return space


def _within(path: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except ConfigError as error:
        raise error.within(path) from None


def _parse_base(value: Any) -> NetSpec:
    if isinstance(value, str):
        return _within("base", lambda: preset(value))
    if isinstance(value, Mapping) and "preset" in value:
        overrides = {k: v for k, v in value.items() if k != "preset"}
        return _within("base", lambda: preset(value["preset"]).replace(**overrides))
    return _within("base", lambda: resolve_spec(value))


def _parse_branch_options(value: Any) -> dict[str, BranchOption]:
    if not isinstance(value, Mapping):
        raise ConfigError("branch_options", f"must be a mapping of name -> branch, got {type(value).__name__}")
    options = dict(BUILTIN_OPTIONS)
    for name, entry in value.items():
        path = f"branch_options.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ConfigError(path, "option names are letters, digits and '_'")
        entry = check_keys(entry, ("kernel", "dilation", "groups", "relu"), path, required=("kernel",))
        # validate through a Branch, which knows the rules
        _within(
            path, lambda e=entry: Branch(e["kernel"], e.get("dilation", 1), e.get("groups", 1), e.get("relu", True))
        )
        options[name] = BranchOption(entry["kernel"], entry.get("dilation", 1), entry.get("groups"), entry.get("relu"))
    return options


def _parse_constraints(value: Any) -> Constraints:
    known = ("min_params_m", "max_params_m", "min_gmacs", "max_gmacs", "compute_matched", "max_latency_ms",
             "min_throughput")  # fmt: skip
    bounds: dict[str, Any] = {}
    for key, entry in check_keys(value, known, "constraints").items():
        path = f"constraints.{key}"
        if key == "compute_matched":
            bounds.update(_parse_compute_matched(entry, path))
        else:
            bounds[key] = number(entry, path, 0, open_low=True)
    constraints = Constraints(**bounds)
    for low, high in (("min_params_m", "max_params_m"), ("min_gmacs", "max_gmacs")):
        bounds_given = getattr(constraints, low) is not None and getattr(constraints, high) is not None
        if bounds_given and getattr(constraints, low) > getattr(constraints, high):
            raise ConfigError(f"constraints.{low}", f"must not exceed {high}")
    return constraints


def _parse_compute_matched(entry: Any, path: str) -> dict[str, float]:
    entry = check_keys(entry, ("target", "tolerance"), path, required=("target",))
    target = entry["target"]
    if isinstance(target, str):
        target_gmacs = _within(f"{path}.target", lambda: count(preset(target)).gmacs)
    else:
        target_gmacs = number(target, f"{path}.target", 0, open_low=True)
    tolerance = number(entry.get("tolerance", 0.02), f"{path}.tolerance", 0, 1, open_low=True, open_high=True)
    return {"match_gmacs": target_gmacs, "match_tolerance": tolerance}


MAX_SEED = 2**32 - 1  # numpy's and torch's generators both take it


def _distinct_seeds(seeds: list) -> tuple[int, ...]:
    """Training seeds: each a seed the generators accept, none twice (a repeated seed would count
    one run as two replicates)."""
    checked = tuple(integer(seed, f"search.seeds[{i}]", minimum=0, maximum=MAX_SEED) for i, seed in enumerate(seeds))
    for index, seed in enumerate(checked):
        if seed in checked[:index]:
            raise ConfigError(f"search.seeds[{index}]", f"seed {seed} is listed twice; each seed is one replicate")
    return checked


def _parse_search(value: Any) -> SearchSettings:
    known = ("algorithm", "num_samples", "objectives", "seed_presets", "seeds", "early_stopping")
    value = check_keys(value, known, "search")
    seed_presets = name_list(value.get("seed_presets", []), "search.seed_presets")
    for index, name in enumerate(seed_presets):
        _within(f"search.seed_presets[{index}]", lambda n=name: preset(n))
    seeds = value.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("search.seeds", f"must be a non-empty list of integers, got {seeds!r}")
    settings = SearchSettings(
        algorithm=one_of(value.get("algorithm", "grid"), ALGORITHMS, "search.algorithm"),
        num_samples=None
        if value.get("num_samples") is None
        else integer(value["num_samples"], "search.num_samples", minimum=1),
        # at most 3: the Pareto front, its hypervolume and plot take 2 or 3
        objectives=parse_objectives(value.get("objectives", ["top1_err:min"]), "search.objectives", sizes=range(1, 4)),
        seed_presets=tuple(seed_presets),
        seeds=_distinct_seeds(seeds),
        early_stopping=one_of(value.get("early_stopping", "none"), EARLY_STOPPING, "search.early_stopping"),
    )
    if settings.early_stopping == "mo-asha" and len(settings.objectives) < 2:
        (metric, _), *_ = settings.objectives
        raise ConfigError("search.early_stopping", f"mo-asha ranks two or more objectives and there is one "
                          f"({metric}); plain asha stops on one: use asha")  # fmt: skip
    return settings
