"""Knobs: the names a space file may vary, their value types, and where each lands in the spec.

A knob is either a spec path (`unit.branches[1].dilation`, `stages[2].depth`, `unit.reduction`,
`se`), written into the base spec as it stands, or a named shortcut. Most shortcuts are aliases of
a path (`attention` is `unit.attention`, `depth_2` is `stages[2].depth`, `groups_1` is
`unit.branches[1].groups`, `gate` is `unit.gate`); the rest compute several fields at once
(`branches`, `num_branches` and `branch_<m>`, `cardinality`, `depths`, `width_multiplier`,
`attention_stages`, and `preset`, which starts the point from a whole named network) or belong to
the recipe (`lr`, ...).
Going back from a spec to a knob's value reads the path, or asks the shortcut's own `read`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sksearch.presets import KERNELS, PRESETS, preset
from sksearch.spec import DEPTHWISE, Branch, NetSpec, Stage, Unit
from sksearch.validation import ConfigError, boolean, check_keys, integer, number, one_of

if TYPE_CHECKING:
    from sksearch.search.space import Space


@dataclass(frozen=True)
class BranchOption:
    """A named branch: kernel and dilation, optionally pinning its own groups and ReLU."""

    kernel: int
    dilation: int = 1
    groups: int | str | None = None
    relu: bool | None = None


BUILTIN_OPTIONS = {
    **{name: BranchOption(kernel, dilation) for name, (kernel, dilation) in KERNELS.items()},
    "5x5": BranchOption(5),
    "7x7": BranchOption(7),
    "1x1": BranchOption(1),
}

# -- value types (module functions and partials, so that a Space pickles, as Optuna needs) --------

_count = functools.partial(integer, minimum=1)
_positive = functools.partial(number, low=0, open_low=True)
_non_negative = functools.partial(number, low=0)
_fraction = functools.partial(number, low=0, high=1, open_high=True)


def _choice(choices: tuple[str, ...], value: Any, path: str) -> str:
    return one_of(value, choices, path)


def _groups(value: Any, path: str) -> int | str:
    return value if value == DEPTHWISE else _count(value, path)


@dataclass(frozen=True)
class KnobType:
    """How one knob's values are checked, and where they go: a spec `path`, or a shortcut's `read`
    (spec, space -> value) for knobs that compute several fields."""

    parse: Callable[[Any, str], Any]
    numeric: str | None = None  # "int" or "float": ranges allowed
    branch: int | None = None  # the branch a branch-scoped knob belongs to (exists only for m < M)
    path: str | None = None
    read: Callable[[NetSpec, Space], Any] | None = None


@dataclass(frozen=True)
class Knob:
    name: str
    form: str  # fixed, choice, grid, int, float
    values: tuple = ()
    low: float = 0
    high: float = 0
    log: bool = False
    type: KnobType = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    @property
    def branch(self) -> int | None:
        return self.type.branch

    @property
    def finite(self) -> bool:
        return self.form != "float"

    def options(self) -> tuple:
        if self.form == "int":
            return tuple(range(int(self.low), int(self.high) + 1))
        return self.values

    def admits(self, value: Any) -> bool:
        if self.form in ("int", "float"):
            return not isinstance(value, (bool, str)) and self.low <= value <= self.high
        return value in self.values

    def sample(self, rng: random.Random) -> Any:
        if self.form == "int":
            if self.log:
                return min(int(self.high), max(int(self.low), round(math.exp(rng.uniform(*self._log_bounds())))))
            return rng.randint(int(self.low), int(self.high))
        if self.form == "float":
            return math.exp(rng.uniform(*self._log_bounds())) if self.log else rng.uniform(self.low, self.high)
        return rng.choice(self.values)

    def _log_bounds(self) -> tuple[float, float]:
        return math.log(self.low), math.log(self.high)

    def describe(self) -> str:
        if self.form in ("int", "float"):
            return f"[{self.low}, {self.high}]{' log-uniform' if self.log else ''}"
        return " | ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in self.values)


# -- spec paths ---------------------------------------------------------------------------------

# Knob paths, types and aliases come from NetSpec's dataclass fields: a scalar field is a knob
# (unless its metadata says `knob: False`) whose values are checked by its type, a str field's
# `choices` and an int field's `minimum` (1 unless stated).
_SCOPES = {"stages[{}].": Stage, "unit.branches[{}].": Branch, "unit.": Unit, "": NetSpec}
_PATH_GROUPS = {"stages[{}].": "stage", "unit.branches[{}].": "branch", "unit.": "unit", "": "top"}  # regex groups
_INDEXED_ALIASES = ("depth", "groups", "relu")  # depth_<s>, groups_<m>, relu_<m>


def _leaf_type(spec_field: dataclasses.Field) -> KnobType | None:
    """The knob type of a scalar spec field; None for a field that is not a knob."""
    if not spec_field.metadata.get("knob", True):
        return None
    kind = str(spec_field.type).replace(" | None", "")
    if kind == "bool":
        return KnobType(boolean)
    if kind == "int":
        return KnobType(functools.partial(integer, minimum=spec_field.metadata.get("minimum", 1)), "int")
    if kind == "int | str":
        return KnobType(_groups, "int")
    if kind == "str":
        return KnobType(functools.partial(_choice, spec_field.metadata["choices"]))
    return None  # nested structures (stages, unit, branches, attention_stages) are not one value


_LEAF_TYPES = {
    prefix: {f.name: leaf for f in dataclasses.fields(scope) if (leaf := _leaf_type(f)) is not None}
    for prefix, scope in _SCOPES.items()
}
_SPEC_PATH = re.compile(
    "|".join(
        re.escape(prefix).replace(r"\{\}", rf"(?P<{name}>\d+)") + f"(?P<{name}_leaf>{'|'.join(leaves)})"
        for prefix, leaves in _LEAF_TYPES.items()
        for name in [_PATH_GROUPS[prefix]]
    )
)
# Named shortcuts that are a spec path under another name: every unit field by its own name, and
# a stage's depth or a branch's groups and ReLU with its index
_ALIASES = {name: f"unit.{name}" for name in _LEAF_TYPES["unit."]}


def _tokens(path: str) -> list[str | int]:
    return [int(token[1:-1]) if token.startswith("[") else token for token in re.findall(r"\w+|\[\d+\]", path)]


def read_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at a spec path of `NetSpec.to_dict()` data; None where a list is too short."""
    value: Any = data
    for token in _tokens(path):
        if isinstance(token, int) and token >= len(value):
            return None
        value = value[token]
    return value


def write_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = _tokens(path)
    target: Any = data
    for token in parents:
        target = target[token]
    target[leaf] = value


def _alias_of(name: str) -> str | None:
    if name in _ALIASES:
        return _ALIASES[name]
    indexed = re.fullmatch(rf"({'|'.join(_INDEXED_ALIASES)})_(\d+)", name)
    if indexed is None:
        return None
    prefix = next(prefix for prefix, leaves in _LEAF_TYPES.items() if indexed.group(1) in leaves)
    return prefix.format(indexed.group(2)) + indexed.group(1)


def _path_type(name: str, path: str, space: Space) -> KnobType:
    match = _SPEC_PATH.fullmatch(path)
    if match is None:
        raise ConfigError(f"knobs.{name}", f"unknown knob ({_known_knobs()})")
    stages = len(space.base.stages)
    if match.group("stage") is not None and int(match.group("stage")) >= stages:
        raise ConfigError(f"knobs.{name}", f"stage {match.group('stage')} does not exist (the base has {stages})")
    prefix = next(prefix for prefix, group in _PATH_GROUPS.items() if match.group(f"{group}_leaf"))
    leaf = _LEAF_TYPES[prefix][path.rsplit(".", 1)[-1]]
    branch = int(match.group("branch")) if match.group("branch") is not None else None
    return KnobType(leaf.parse, leaf.numeric, branch=branch, path=path)


def _known_knobs() -> str:
    names = [*_COMPUTED, *RECIPE_KNOBS, "branch_<m>", "attention", "reduction", "min_dim", "depth_<s>",
             "groups_<m>", "relu_<m>"]  # fmt: skip
    return f"known: {', '.join(names)}, or a spec path such as unit.branches[1].dilation or stages[2].depth"


# -- computed shortcuts -------------------------------------------------------------------------


def option_name(options: Mapping[str, BranchOption], value: Any, path: str) -> str:
    if value not in options:
        raise ConfigError(path, f"unknown branch option {value!r} (known: {', '.join(options)})")
    return value


def _branch_set(options: Mapping[str, BranchOption], value: Any, path: str) -> str:
    names = value.split("+") if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ConfigError(path, f"must be a list of branch options like [K3, K5] or 'K3+K5', got {value!r}")
    return "+".join(option_name(options, str(item).strip(), f"{path}[{i}]") for i, item in enumerate(names))


def _count_list(items: list, path: str) -> str:
    """Counts written as numbers or digit strings, kept as '3,4,6,3'."""
    numbers = [int(item) if isinstance(item, str) and item.strip().isdigit() else item for item in items]
    return ",".join(str(_count(item, f"{path}[{i}]")) for i, item in enumerate(numbers))


def _depths(stages: int, value: Any, path: str) -> str:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) != stages:
        raise ConfigError(path, f"must list {stages} stage depths, got {value!r}")
    return _count_list(items, path)


def _stage_list(value: Any, path: str) -> str:
    """`all`, or stage numbers from 1 as a list or a comma-separated string, kept as '2,3'."""
    if value == "all":
        return value
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(path, f"must be 'all' or a list of stage numbers like [3, 4], got {value!r}")
    return _count_list(items, path)


def _preset_name(value: Any, path: str) -> str:
    return one_of(value, PRESETS, path, what="preset")


def option_of(options: Mapping[str, BranchOption], branch: Branch) -> str | None:
    """The first option that builds `branch` (its own groups and ReLU, if pinned, must agree)."""
    for name, option in options.items():
        if (option.kernel, option.dilation) != (branch.kernel, branch.dilation):
            continue
        if option.groups not in (None, branch.groups) or option.relu not in (None, branch.relu):
            continue
        return name
    return None


def _read_branches(spec: NetSpec, space: Space) -> str | None:
    names = [option_of(space.branch_options, branch) for branch in spec.unit.branches]
    return None if None in names else "+".join(names)


def _read_branch(index: int, spec: NetSpec, space: Space) -> str | None:
    branches = spec.unit.branches
    return option_of(space.branch_options, branches[index]) if index < len(branches) else None


def _read_num_branches(spec: NetSpec, space: Space) -> int:
    return spec.num_branches


def _read_cardinality(spec: NetSpec, space: Space) -> int | str:
    return spec.unit.branches[0].groups


def _read_depths(spec: NetSpec, space: Space) -> str:
    return ",".join(str(stage.depth) for stage in spec.stages)


def _read_attention_stages(spec: NetSpec, space: Space) -> str:
    return spec.attention_stages_text


def _read_preset(spec: NetSpec, space: Space) -> str | None:
    """The preset of this space's choices that is `spec` (at its own width)."""
    knob = next(knob for knob in space.knobs if knob.name == "preset")
    return next((name for name in knob.options() if preset(name).archid == spec.archid), None)


def _read_width_multiplier(spec: NetSpec, space: Space) -> float:
    """A spec is its own width: scaling it by anything but 1 would give another network."""
    return 1.0


_COMPUTED: dict[str, Callable[[Space], KnobType]] = {
    "branches": lambda space: KnobType(functools.partial(_branch_set, space.branch_options), read=_read_branches),
    "num_branches": lambda space: KnobType(_count, "int", read=_read_num_branches),
    "cardinality": lambda space: KnobType(_count, "int", read=_read_cardinality),
    "depths": lambda space: KnobType(functools.partial(_depths, len(space.base.stages)), read=_read_depths),
    "width_multiplier": lambda space: KnobType(_positive, "float", read=_read_width_multiplier),
    "attention_stages": lambda space: KnobType(_stage_list, read=_read_attention_stages),
    "preset": lambda space: KnobType(_preset_name, read=_read_preset),
}

# Knobs of the training recipe rather than the network: swept with it, recorded beside it.
RECIPE_KNOBS = {
    "lr": _positive,
    "weight_decay": _non_negative,
    "label_smoothing": _fraction,
    "batch_size": _count,
    "epochs": _count,
}


def _read_recipe(name: str, spec: NetSpec, space: Space) -> Any:
    return getattr(space.recipe, name)


def knob_type_of(name: str, space: Space) -> KnobType:
    """The type of knob `name` in `space`, or ConfigError for a name no knob has."""
    if name in _COMPUTED:
        return _COMPUTED[name](space)
    if name in RECIPE_KNOBS:
        numeric = "int" if RECIPE_KNOBS[name] is _count else "float"
        return KnobType(RECIPE_KNOBS[name], numeric, read=functools.partial(_read_recipe, name))
    scoped = re.fullmatch(r"branch_(\d+)", name)
    if scoped:
        index = int(scoped.group(1))
        parse = functools.partial(option_name, space.branch_options)
        return KnobType(parse, branch=index, read=functools.partial(_read_branch, index))
    return _path_type(name, _alias_of(name) or name, space)


# -- parsing a space file's knobs ---------------------------------------------------------------

_FORMS = ("choice", "grid", "int", "float")
MAX_INT_VALUES = 10_000  # an int range wider than this is a typo: no knob has that many useful values


def parse_knobs(value: Any, space: Space) -> tuple[Knob, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError("knobs", "must be a mapping of knob -> value or {choice|grid|int|float: ...}")
    knobs = [_parse_knob(str(name), entry, space) for name, entry in value.items()]
    _check_exclusive({knob.name: knob for knob in knobs}, space)
    # the branch count first: branch-scoped knobs depend on it (define-by-run order)
    return tuple(sorted(knobs, key=lambda knob: knob.name not in ("num_branches", "branches")))


def _check_exclusive(knobs: Mapping[str, Knob], space: Space) -> None:
    """Two knobs may not set the same field, and the branch set has one way to be varied."""
    names = set(knobs)
    if "branches" in names and any(re.fullmatch(r"num_branches|branch_\d+", n) for n in names):
        raise ConfigError("knobs.branches", "cannot be combined with num_branches or branch_<m> knobs")
    if "depths" in names and any(knob.type.path and knob.type.path.endswith("].depth") for knob in knobs.values()):
        raise ConfigError("knobs.depths", "cannot be combined with depth_<s> or stages[s].depth knobs")
    if "preset" in names and names & {"branches", "num_branches", "cardinality", "depths"} | {
        n for n in names if re.fullmatch(r"branch_\d+", n)
    }:
        raise ConfigError(
            "knobs.preset", "sets the whole network: combine it with spec paths and width_multiplier only"
        )
    if "cardinality" in names and space.base.unit.branches[0].groups == DEPTHWISE:
        raise ConfigError("knobs.cardinality", "needs a base with an integer group count, not depthwise")
    seen: dict[str, str] = {}
    for knob in knobs.values():
        if knob.type.path in seen:
            raise ConfigError(f"knobs.{knob.name}", f"sets {knob.type.path}, as knob {seen[knob.type.path]} does")
        if knob.type.path:
            seen[knob.type.path] = knob.name


def _parse_knob(name: str, entry: Any, space: Space) -> Knob:
    path = f"knobs.{name}"
    knob_type = knob_type_of(name, space)
    if not isinstance(entry, Mapping):
        return Knob(name, "fixed", (knob_type.parse(entry, path),), type=knob_type)
    forms = [key for key in entry if key in _FORMS]
    check_keys(entry, (*_FORMS, "log"), path, what="key of a knob")
    if len(forms) != 1:
        raise ConfigError(path, "must be a value or a mapping with one of choice, grid, int, float (and log)")
    form = forms[0]
    values = entry[form]
    log = boolean(entry.get("log", False), f"{path}.log")
    if form in ("choice", "grid"):
        if log:
            raise ConfigError(f"{path}.log", "applies to int and float ranges only")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}.{form}", f"must be a non-empty list, got {values!r}")
        parsed = tuple(knob_type.parse(v, f"{path}.{form}[{i}]") for i, v in enumerate(values))
        if len(set(parsed)) != len(parsed):
            raise ConfigError(f"{path}.{form}", "lists a value twice")
        return Knob(name, form, parsed, type=knob_type)
    if knob_type.numeric is None or (form == "float" and knob_type.numeric == "int"):
        raise ConfigError(f"{path}.{form}", f"{name} does not take a {form} range")
    if not isinstance(values, list) or len(values) != 2:
        raise ConfigError(f"{path}.{form}", f"must be [low, high], got {values!r}")
    parse = _count if form == "int" else _positive
    low, high = (parse(v, f"{path}.{form}[{i}]") for i, v in enumerate(values))
    if low > high:
        raise ConfigError(f"{path}.{form}", f"low must not exceed high, got [{low}, {high}]")
    if form == "int" and high - low >= MAX_INT_VALUES:  # a grid would list every value
        raise ConfigError(f"{path}.{form}", f"spans {high - low + 1:,} values; at most {MAX_INT_VALUES:,}")
    return Knob(name, form, low=low, high=high, log=log, type=knob_type)


def check_branch_coverage(space: Space) -> None:
    """Every branch a point can have must come from the base or from a branch_<m> knob."""
    by_name = {knob.name: knob for knob in space.knobs}
    if "branches" in by_name:
        most = max(len(value.split("+")) for value in by_name["branches"].options())
    elif "num_branches" in by_name:
        most = max(by_name["num_branches"].options())
        for m in range(space.base.num_branches, most):
            if f"branch_{m}" not in by_name:
                raise ConfigError(f"knobs.branch_{m}", f"is required: num_branches reaches {m + 1}, the base has fewer")
    else:
        most = space.base.num_branches
    for knob in space.knobs:
        if knob.branch is not None and knob.branch >= most:
            raise ConfigError(f"knobs.{knob.name}", f"branch {knob.branch} does not exist (at most {most} branches)")
