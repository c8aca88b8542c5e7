"""Search spaces declared in YAML: parse, validate, sample, enumerate, constrain, hand to Ray/Optuna.

A space is a base spec plus knobs. A *point* maps knob names to values (scalars only, so Optuna
categoricals and Parquet columns take them as they are); `space.candidate(point)` turns it into
a NetSpec, the only place knob values meet the spec. Sampling, enumeration, the Ray Tune adapter
and the Optuna adapter all go through it, so the same choices give the same network.

Constraints use the analytic counter on the network as declared (full size), before a recipe
such as `smoke` shrinks it for training.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sksearch.complexity import Complexity, count
from sksearch.nets import resolve_spec
from sksearch.presets import KERNELS, preset
from sksearch.recipes import Recipe, recipe_from
from sksearch.spec import DEPTHWISE, Branch, ConfigError, NetSpec, Stage, Unit, read_yaml_file, round_to

ALGORITHMS = ("grid", "random", "tpe", "nsga2")
EARLY_STOPPING = ("none", "asha", "hyperband")
OBJECTIVE_METRICS = ("top1_err", "top5_err", "train_loss", "gmacs", "params_m", "epoch_time", "images_per_s")
GROUPS_RULES = ("reject", "snap")


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


# -- knob values --------------------------------------------------------------------------------


def _int_value(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(path, f"must be an integer >= 1, got {value!r}")
    return value


def _bool_value(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {value!r}")
    return value


def _positive_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(path, f"must be a number > 0, got {value!r}")
    return float(value)


def _non_negative_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(path, f"must be a number >= 0, got {value!r}")
    return float(value)


def _fraction(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(path, f"must be a number in [0, 1), got {value!r}")
    return float(value)


def _groups_value(value: Any, path: str) -> int | str:
    return value if value == DEPTHWISE else _int_value(value, path)


@dataclass(frozen=True)
class KnobType:
    """How one knob's values are checked and canonicalised; `numeric` allows ranges."""

    parse: Callable[[Any, str], Any]
    numeric: str | None = None  # "int" or "float"
    branch_scoped: bool = False  # groups_<m>, branch_<m>, relu_<m>: exist only for m < M


@dataclass(frozen=True)
class Knob:
    name: str
    form: str  # fixed, choice, grid, int, float
    values: tuple = ()
    low: float = 0
    high: float = 0
    log: bool = False
    branch: int | None = None  # for branch-scoped knobs: the branch index
    type: KnobType = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    @property
    def finite(self) -> bool:
        return self.form != "float"

    def options(self) -> tuple:
        if self.form == "int":
            return tuple(range(int(self.low), int(self.high) + 1))
        return self.values

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
        return " | ".join(_show(v) for v in self.values)


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Constraints:
    min_params_m: float | None = None
    max_params_m: float | None = None
    min_gmacs: float | None = None
    max_gmacs: float | None = None
    match_gmacs: float | None = None  # compute-matched: scale width to land on this GMACs
    match_tolerance: float = 0.02  # relative

    def violation(self, complexity: Complexity) -> str | None:
        checks = (
            ("min_params_m", complexity.params_m, lambda value, bound: value < bound),
            ("max_params_m", complexity.params_m, lambda value, bound: value > bound),
            ("min_gmacs", complexity.gmacs, lambda value, bound: value < bound),
            ("max_gmacs", complexity.gmacs, lambda value, bound: value > bound),
        )
        for name, value, violates in checks:
            bound = getattr(self, name)
            if bound is not None and violates(value, bound):
                return name
        return None


@dataclass(frozen=True)
class SearchSettings:
    """How a sweep searches this space (used by `sksearch sweep`)."""

    algorithm: str = "grid"
    num_samples: int = 1
    objectives: tuple[tuple[str, str], ...] = (("top1_err", "min"),)
    seed_presets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    early_stopping: str = "none"


@dataclass(frozen=True)
class Candidate:
    """One feasible network of a space: the knob values, the spec, its analytic complexity."""

    point: tuple[tuple[str, Any], ...]
    spec: NetSpec
    complexity: Complexity
    width_match: float | None = None  # the width multiplier compute matching chose

    @property
    def archid(self) -> str:
        return self.spec.archid

    @property
    def knobs(self) -> dict[str, Any]:
        return dict(self.point)

    @property
    def recipe_knobs(self) -> tuple[tuple[str, Any], ...]:
        """The recipe values this point sets (two such points train the same network differently)."""
        return tuple((name, value) for name, value in self.point if name in RECIPE_KNOBS)

    def row(self) -> dict[str, Any]:
        return {
            "archid": self.archid,
            **self.knobs,
            "num_branches": self.spec.num_branches,
            "input_size": self.spec.input_size,
            "params": self.complexity.params,
            "params_m": round(self.complexity.params_m, 4),
            "macs": self.complexity.macs,
            "gmacs": round(self.complexity.gmacs, 5),
            "width_match": self.width_match,
        }


class Rejected(Exception):
    """A point that gives no feasible network; `reason` is the rejection statistic it counts as."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Draw:
    """Candidates from sampling or enumeration, deduplicated, with why the rest were rejected."""

    candidates: list[Candidate] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    attempts: int = 0
    knob_names: tuple[str, ...] = ()  # column order of the table

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, index: int) -> Candidate:
        return self.candidates[index]

    def to_frame(self):
        import pandas as pd

        frame = pd.DataFrame([candidate.row() for candidate in self.candidates])
        if frame.empty:
            return frame
        first = ["archid", *(name for name in self.knob_names if name in frame)]
        return frame[first + [column for column in frame if column not in first]]

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.rejected.most_common()) or "none"
        rate = 100 * len(self.candidates) / self.attempts if self.attempts else 0.0
        return f"{len(self.candidates)} distinct feasible of {self.attempts} points ({rate:.0f}%); rejected: {reasons}"


@dataclass(frozen=True)
class Space:
    name: str
    base: NetSpec
    knobs: tuple[Knob, ...]
    branch_options: Mapping[str, BranchOption]
    groups_rule: str = "reject"
    constraints: Constraints = Constraints()
    recipe: Recipe = field(default_factory=lambda: recipe_from("smoke"))
    search: SearchSettings = SearchSettings()
    source: str = ""

    # -- size and iteration ---------------------------------------------------------------------

    @property
    def finite(self) -> bool:
        return all(knob.finite for knob in self.knobs)

    def __len__(self) -> int:
        """The number of points (knob combinations) before constraints and deduplication."""
        if not self.finite:
            raise TypeError(f"space {self.name} has a float range and no finite size; sample it")
        return sum(1 for _ in self._points())

    def _points(self) -> Iterator[dict[str, Any]]:
        def extend(index: int, point: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if index == len(self.knobs):
                yield dict(point)
                return
            knob = self.knobs[index]
            if not self._active(knob, point):
                yield from extend(index + 1, point)
                return
            for value in knob.options():
                point[knob.name] = value
                yield from extend(index + 1, point)
            del point[knob.name]

        yield from extend(0, {})

    def _active(self, knob: Knob, point: Mapping[str, Any]) -> bool:
        """Branch-scoped knobs exist only for branches the point has."""
        return knob.branch is None or knob.branch < self._num_branches(point)

    def _num_branches(self, point: Mapping[str, Any]) -> int:
        if "branches" in point:
            return len(str(point["branches"]).split("+"))
        return point.get("num_branches", self.base.num_branches)

    def enumerate(self, progress: bool = False) -> Draw:
        """Every point of a finite space, as distinct feasible networks."""
        if not self.finite:
            knob = next(k for k in self.knobs if not k.finite)
            raise ConfigError(f"knobs.{knob.name}", "a float range cannot be enumerated; sample the space instead")
        points: Iterator[dict[str, Any]] = self._points()
        if progress:
            from tqdm import tqdm

            points = tqdm(points, total=len(self), desc=f"enumerating {self.name}", unit="point")
        return self._collect(points)

    def sample(self, n: int, seed: int = 0, max_attempts: int | None = None) -> Draw:
        """Up to `n` distinct feasible networks drawn at random; reproducible by `seed`."""
        rng = random.Random(seed)
        attempts = max_attempts or max(200, 50 * n)

        def points() -> Iterator[dict[str, Any]]:
            for _ in range(attempts):
                point: dict[str, Any] = {}
                for knob in self.knobs:
                    if self._active(knob, point):
                        point[knob.name] = knob.sample(rng)
                yield point

        return self._collect(points(), limit=n)

    def _collect(self, points: Iterator[dict[str, Any]], limit: int | None = None) -> Draw:
        draw = Draw(knob_names=tuple(knob.name for knob in self.knobs))
        seen: set[tuple] = set()
        for point in points:
            draw.attempts += 1
            try:
                candidate = self.candidate(point)
            except Rejected as rejection:
                draw.rejected[rejection.reason] += 1
                continue
            key = (candidate.archid, candidate.spec.input_size, candidate.recipe_knobs)
            if key in seen:
                draw.rejected["duplicate"] += 1
                continue
            seen.add(key)
            draw.candidates.append(candidate)
            if limit is not None and len(draw.candidates) >= limit:
                break
        return draw

    # -- point -> network -----------------------------------------------------------------------

    def point_of(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The active knob values of a config (a Ray Tune config or Optuna params may hold more)."""
        point: dict[str, Any] = {}
        for knob in self.knobs:
            if self._active(knob, {**point, **config}):
                value = config[knob.name] if knob.name in config else _fixed_value(knob)
                point[knob.name] = knob.type.parse(value, f"config.{knob.name}")
        return point

    def candidate(self, config: Mapping[str, Any]) -> Candidate:
        """The network a point describes, compute-matched and checked; raises Rejected if infeasible."""
        point = self.point_of(config)
        try:
            spec = self._spec(point)
        except ConfigError as error:
            raise Rejected(f"invalid {error.path}") from None
        width_match = None
        if self.constraints.match_gmacs is not None:
            spec, width_match = self._compute_matched(spec)
        complexity = count(spec)
        violation = self.constraints.violation(complexity)
        if violation:
            raise Rejected(violation)
        return Candidate(tuple(point.items()), spec, complexity, width_match)

    def spec_for(self, config: Mapping[str, Any]) -> NetSpec:
        return self.candidate(config).spec

    def recipe_for(self, config: Mapping[str, Any], recipe: Recipe | None = None) -> Recipe:
        """The space's recipe (or `recipe`) with the point's recipe knobs applied."""
        point = self.point_of(config)
        changes = {name: value for name, value in point.items() if name in RECIPE_KNOBS}
        try:
            return (recipe or self.recipe).replace(**changes)
        except ConfigError as error:
            raise error.within("knobs") from None

    def _spec(self, point: Mapping[str, Any]) -> NetSpec:
        base = self.base
        depths = [stage.depth for stage in base.stages]
        if "depths" in point:
            depths = [int(d) for d in point["depths"].split(",")]
        for index in range(len(depths)):
            depths[index] = point.get(f"depth_{index}", depths[index])
        cardinality = point.get("cardinality", self._base_cardinality)
        widths = [stage.width for stage in base.stages]
        if "cardinality" in point:  # keep the per-group width of the base
            widths = [width // self._base_cardinality * cardinality for width in widths]
        branches = []
        for index, option in enumerate(self._branch_options(point)):
            own_groups = option.groups if option.groups is not None else cardinality
            own_relu = option.relu if option.relu is not None else base.unit.branches[0].relu
            branches.append(
                Branch(
                    kernel=option.kernel,
                    dilation=option.dilation,
                    groups=point.get(f"groups_{index}", own_groups),
                    relu=point.get(f"relu_{index}", own_relu),
                )
            )
        stages = [Stage(d, w, s.out_width) for d, w, s in zip(depths, widths, base.stages, strict=True)]
        stem_width = base.stem_width
        if self.groups_rule == "snap":
            stem_width, stages = _snap_widths(base.template, stem_width, stages, branches)
        spec = NetSpec(
            template=base.template,
            stages=tuple(stages),
            unit=Unit(
                branches=tuple(branches),
                attention=point.get("attention", base.unit.attention),
                reduction=point.get("reduction", base.unit.reduction),
                min_dim=point.get("min_dim", base.unit.min_dim),
            ),
            se=point.get("se", base.se),
            se_reduction=point.get("se_reduction", base.se_reduction),
            num_classes=base.num_classes,
            stem_width=stem_width,
            head_width=base.head_width,
            input_size=point.get("input_size", base.input_size),
        )
        multiplier = point.get("width_multiplier", 1.0)
        return spec.scaled(multiplier, stem_and_head=False) if multiplier != 1 else spec

    @property
    def _base_cardinality(self) -> int | str:
        return self.base.unit.branches[0].groups

    def _branch_options(self, point: Mapping[str, Any]) -> list[BranchOption]:
        if "branches" in point:
            return [self.branch_options[name] for name in point["branches"].split("+")]
        return [
            self.branch_options[point[f"branch_{m}"]]
            if f"branch_{m}" in point
            else self._base_option(self.base.unit.branches[m])
            for m in range(self._num_branches(point))
        ]

    def _base_option(self, branch: Branch) -> BranchOption:
        """A base branch as an option: groups equal to the cardinality follow the cardinality knob."""
        groups = None if branch.groups == self._base_cardinality else branch.groups
        return BranchOption(branch.kernel, branch.dilation, groups, branch.relu)

    def _compute_matched(self, spec: NetSpec) -> tuple[NetSpec, float]:
        """Scale the units' width until GMACs land within the tolerance of the target (Table 3).
        A network already within it is kept as it is."""
        target, tolerance = self.constraints.match_gmacs, self.constraints.match_tolerance
        low, high, multiplier, scaled = 0.05, 8.0, 1.0, spec
        for _ in range(40):  # bisection on the multiplier: GMACs grow with width
            gmacs = count(scaled).gmacs
            if abs(gmacs - target) <= tolerance * target:
                return scaled, round(multiplier, 4)
            low, high = (multiplier, high) if gmacs < target else (low, multiplier)
            multiplier = math.sqrt(low * high)
            try:
                scaled = spec.scaled(multiplier, stem_and_head=False)
            except ConfigError:
                break
        raise Rejected("compute_matched")

    def point_for(self, spec: NetSpec) -> dict[str, Any] | None:
        """Knob values that rebuild `spec` in this space (to seed a search with a known network),
        or None when the space does not contain it. Verified by rebuilding and comparing archids."""
        point: dict[str, Any] = {}
        for knob in self.knobs:
            if not self._active(knob, point):
                continue
            value = self._value_in(knob, spec)
            if value is None or not _admits(knob, value):
                return None
            point[knob.name] = value
        try:
            rebuilt = self.candidate(point)
        except Rejected:
            return None
        return point if rebuilt.archid == spec.archid and rebuilt.spec.input_size == spec.input_size else None

    def _value_in(self, knob: Knob, spec: NetSpec) -> Any:
        """What knob `knob` would have to be for `spec` (None: it cannot say)."""
        name, unit = knob.name, spec.unit
        if name in RECIPE_KNOBS:
            value = getattr(self.recipe, name)
            return value if _admits(knob, value) else knob.options()[0] if knob.finite else None
        scoped = re.fullmatch(r"(branch|groups|relu)_(\d+)", name)
        if scoped:
            index = int(scoped.group(2))
            if index >= unit.num_branches:
                return None
            branch = unit.branches[index]
            return {"branch": self._option_of(branch), "groups": branch.groups, "relu": branch.relu}[scoped.group(1)]
        staged = re.fullmatch(r"depth_(\d+)", name)
        if staged:
            return spec.stages[int(staged.group(1))].depth
        derived = {
            "num_branches": unit.num_branches,
            "attention": unit.attention,
            "reduction": unit.reduction,
            "min_dim": unit.min_dim,
            "se": spec.se,
            "se_reduction": spec.se_reduction,
            "input_size": spec.input_size,
            "cardinality": unit.branches[0].groups,
            "depths": ",".join(str(stage.depth) for stage in spec.stages),
            "width_multiplier": 1.0,
        }
        if name == "branches":
            names = [self._option_of(branch) for branch in unit.branches]
            return None if None in names else "+".join(names)
        return derived[name]

    def _option_of(self, branch: Branch) -> str | None:
        for name, option in self.branch_options.items():
            if (option.kernel, option.dilation) != (branch.kernel, branch.dilation):
                continue
            if option.groups not in (None, branch.groups) or option.relu not in (None, branch.relu):
                continue
            return name
        return None

    # -- Ray Tune and Optuna --------------------------------------------------------------------

    def to_tune(self) -> dict[str, Any]:
        """A Ray Tune param_space. Branch-scoped knobs are always present (Ray has no conditionals);
        `candidate` ignores those beyond the point's number of branches."""
        from ray import tune

        space: dict[str, Any] = {}
        for knob in self.knobs:
            if knob.form == "fixed":
                space[knob.name] = knob.values[0]
            elif knob.form == "grid":
                space[knob.name] = tune.grid_search(list(knob.values))
            elif knob.form == "choice":
                space[knob.name] = tune.choice(list(knob.values))
            elif knob.form == "int":
                sampler = tune.lograndint if knob.log else tune.randint
                space[knob.name] = sampler(int(knob.low), int(knob.high) + 1)
            else:
                space[knob.name] = (tune.loguniform if knob.log else tune.uniform)(knob.low, knob.high)
        return space

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Optuna define-by-run: suggests every active knob on `trial` and returns the fixed ones
        (Ray's OptunaSearch takes such a function as its space). A categorical's value set never
        depends on other knobs; branch-scoped knobs are only suggested for existing branches."""
        point: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for knob in self.knobs:
            if not self._active(knob, point):
                continue
            if knob.form == "fixed":
                constants[knob.name] = point[knob.name] = knob.values[0]
            elif knob.form in ("choice", "grid"):
                point[knob.name] = trial.suggest_categorical(knob.name, list(knob.values))
            elif knob.form == "int":
                point[knob.name] = trial.suggest_int(knob.name, int(knob.low), int(knob.high), log=knob.log)
            else:
                point[knob.name] = trial.suggest_float(knob.name, knob.low, knob.high, log=knob.log)
        return constants

    def describe(self) -> list[tuple[str, str, str]]:
        return [(knob.name, knob.form, knob.describe()) for knob in self.knobs]


def _admits(knob: Knob, value: Any) -> bool:
    if knob.form in ("int", "float"):
        return not isinstance(value, (bool, str)) and knob.low <= value <= knob.high
    return value in knob.values


def _fixed_value(knob: Knob) -> Any:
    if knob.form != "fixed":
        raise ConfigError(knob.name, "is missing from the config")
    return knob.values[0]


def _snap_widths(
    template: str, stem_width: int, stages: list[Stage], branches: list[Branch]
) -> tuple[int, list[Stage]]:
    """The `snap` rule: round every grouped width to the nearest multiple of its branch groups."""
    groups = math.lcm(*(int(b.groups) for b in branches if b.groups != DEPTHWISE))
    if groups == 1:
        return stem_width, stages
    if template != "shufflenetv2":
        return stem_width, [Stage(s.depth, round_to(s.width, groups), s.out_width) for s in stages]
    outer = math.lcm(2, groups)  # shuffle units group their inputs and split outputs in halves
    snapped = [Stage(s.depth, round_to(s.width, groups), round_to(s.out_width, outer)) for s in stages]
    return round_to(stem_width, groups), snapped


# -- parsing ------------------------------------------------------------------------------------

_SECTIONS = ("name", "description", "base", "branch_options", "knobs", "groups_rule", "constraints", "recipe", "search")


def load_space(path: str | Path) -> Space:
    """Read and validate a space file; any problem raises ConfigError naming file, key and reason."""
    path = Path(path)
    return read_yaml_file(path, lambda data: parse_space(data, default_name=path.stem, source=str(path)))


def parse_space(data: Any, default_name: str = "space", source: str = "") -> Space:
    if not isinstance(data, Mapping):
        raise ConfigError("", f"a space file must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in _SECTIONS:
            raise ConfigError(str(key), f"unknown key (known: {', '.join(_SECTIONS)})")
    if "base" not in data:
        raise ConfigError("base", "is required (a preset name or a spec)")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError("name", f"must be letters, digits, '_', '-' or '.', got {name!r}")
    base = _parse_base(data["base"])
    options = _parse_branch_options(data.get("branch_options", {}))
    groups_rule = data.get("groups_rule", "reject")
    if groups_rule not in GROUPS_RULES:
        raise ConfigError("groups_rule", f"must be one of {', '.join(GROUPS_RULES)}, got {groups_rule!r}")
    space = Space(
        name=name,
        base=base,
        knobs=(),
        branch_options=options,
        groups_rule=groups_rule,
        constraints=_parse_constraints(data.get("constraints", {})),
        recipe=_within("recipe", lambda: recipe_from(data.get("recipe", "smoke"))),
        search=_parse_search(data.get("search", {})),
        source=source,
    )
    knobs = _parse_knobs(data.get("knobs", {}), space)
    space = Space(**{**space.__dict__, "knobs": knobs})
    _check_branch_coverage(space)
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
        if not isinstance(entry, Mapping):
            raise ConfigError(path, f"must be a mapping with kernel, dilation, groups, relu; got {entry!r}")
        for key in entry:
            if key not in ("kernel", "dilation", "groups", "relu"):
                raise ConfigError(f"{path}.{key}", "unknown key (known: kernel, dilation, groups, relu)")
        if "kernel" not in entry:
            raise ConfigError(f"{path}.kernel", "is required")
        groups = entry.get("groups")
        relu = entry.get("relu")
        # validate through a Branch, which knows the rules
        _within(
            path, lambda e=entry: Branch(e["kernel"], e.get("dilation", 1), e.get("groups", 1), e.get("relu", True))
        )
        options[name] = BranchOption(entry["kernel"], entry.get("dilation", 1), groups, relu)
    return options


def _parse_constraints(value: Any) -> Constraints:
    if not isinstance(value, Mapping):
        raise ConfigError("constraints", f"must be a mapping, got {type(value).__name__}")
    known = ("min_params_m", "max_params_m", "min_gmacs", "max_gmacs", "compute_matched")
    bounds: dict[str, Any] = {}
    for key, entry in value.items():
        path = f"constraints.{key}"
        if key not in known:
            raise ConfigError(path, f"unknown key (known: {', '.join(known)})")
        if key == "compute_matched":
            bounds.update(_parse_compute_matched(entry, path))
        else:
            bounds[key] = _positive_float(entry, path)
    constraints = Constraints(**bounds)
    for low, high in (("min_params_m", "max_params_m"), ("min_gmacs", "max_gmacs")):
        bounds_given = getattr(constraints, low) is not None and getattr(constraints, high) is not None
        if bounds_given and getattr(constraints, low) > getattr(constraints, high):
            raise ConfigError(f"constraints.{low}", f"must not exceed {high}")
    return constraints


def _parse_compute_matched(entry: Any, path: str) -> dict[str, float]:
    if not isinstance(entry, Mapping):
        raise ConfigError(path, "must be a mapping with target (GMACs or a preset name) and tolerance")
    for key in entry:
        if key not in ("target", "tolerance"):
            raise ConfigError(f"{path}.{key}", "unknown key (known: target, tolerance)")
    if "target" not in entry:
        raise ConfigError(f"{path}.target", "is required (GMACs, or a preset whose GMACs to match)")
    target = entry["target"]
    if isinstance(target, str):
        target_gmacs = _within(f"{path}.target", lambda: count(preset(target)).gmacs)
    else:
        target_gmacs = _positive_float(target, f"{path}.target")
    tolerance = _positive_float(entry.get("tolerance", 0.02), f"{path}.tolerance")
    if tolerance >= 1:
        raise ConfigError(f"{path}.tolerance", f"is relative and must be < 1, got {tolerance}")
    return {"match_gmacs": target_gmacs, "match_tolerance": tolerance}


def _parse_search(value: Any) -> SearchSettings:
    if not isinstance(value, Mapping):
        raise ConfigError("search", f"must be a mapping, got {type(value).__name__}")
    known = ("algorithm", "num_samples", "objectives", "seed_presets", "seeds", "early_stopping")
    for key in value:
        if key not in known:
            raise ConfigError(f"search.{key}", f"unknown key (known: {', '.join(known)})")
    algorithm = value.get("algorithm", "grid")
    if algorithm not in ALGORITHMS:
        raise ConfigError("search.algorithm", f"must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    early = value.get("early_stopping", "none")
    if early not in EARLY_STOPPING:
        raise ConfigError("search.early_stopping", f"must be one of {', '.join(EARLY_STOPPING)}, got {early!r}")
    objectives = parse_objectives(value.get("objectives", ["top1_err:min"]), "search.objectives")
    seed_presets = _string_list(value.get("seed_presets", []), "search.seed_presets")
    for index, name in enumerate(seed_presets):
        _within(f"search.seed_presets[{index}]", lambda n=name: preset(n))
    seeds = value.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("search.seeds", f"must be a non-empty list of integers, got {seeds!r}")
    for index, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"search.seeds[{index}]", f"must be an integer >= 0, got {seed!r}")
    return SearchSettings(
        algorithm=algorithm,
        num_samples=_int_value(value.get("num_samples", 1), "search.num_samples"),
        objectives=objectives,
        seed_presets=tuple(seed_presets),
        seeds=tuple(seeds),
        early_stopping=early,
    )


def parse_objectives(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    """`["top1_err:min", "gmacs:min"]` (or one comma-separated string) -> ((metric, mode), ...)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(path, f"must list objectives like top1_err:min, got {value!r}")
    objectives = []
    for index, item in enumerate(items):
        metric, _, mode = str(item).strip().partition(":")
        if metric not in OBJECTIVE_METRICS:
            raise ConfigError(f"{path}[{index}]", f"unknown metric {metric!r} (known: {', '.join(OBJECTIVE_METRICS)})")
        mode = mode or "min"
        if mode not in ("min", "max"):
            raise ConfigError(f"{path}[{index}]", f"mode must be min or max, got {mode!r}")
        objectives.append((metric, mode))
    if len({metric for metric, _ in objectives}) != len(objectives):
        raise ConfigError(path, "lists a metric twice")
    return tuple(objectives)


def _string_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, f"must be a list of names, got {value!r}")
    return value


# -- knobs --------------------------------------------------------------------------------------

_FORMS = ("choice", "grid", "int", "float")


def _option_name(options: Mapping[str, BranchOption], value: Any, path: str) -> str:
    if value not in options:
        raise ConfigError(path, f"unknown branch option {value!r} (known: {', '.join(options)})")
    return value


def _branch_set(options: Mapping[str, BranchOption], value: Any, path: str) -> str:
    names = value.split("+") if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ConfigError(path, f"must be a list of branch options like [K3, K5] or 'K3+K5', got {value!r}")
    return "+".join(_option_name(options, str(item).strip(), f"{path}[{i}]") for i, item in enumerate(names))


def _depths(stages: int, value: Any, path: str) -> str:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) != stages:
        raise ConfigError(path, f"must list {stages} stage depths, got {value!r}")
    parsed = []
    for i, item in enumerate(items):
        item = int(item) if isinstance(item, str) and item.strip().isdigit() else item
        parsed.append(str(_int_value(item, f"{path}[{i}]")))
    return ",".join(parsed)


_FIXED_KNOBS = {
    "num_branches": KnobType(_int_value, "int"),
    "attention": KnobType(_bool_value),
    "reduction": KnobType(_int_value, "int"),
    "min_dim": KnobType(_int_value, "int"),
    "width_multiplier": KnobType(_positive_float, "float"),
    "cardinality": KnobType(_int_value, "int"),
    "se": KnobType(_bool_value),
    "se_reduction": KnobType(_int_value, "int"),
    "input_size": KnobType(_int_value, "int"),
}


# Knobs of the training recipe rather than the network: swept with it, recorded beside it.
RECIPE_KNOBS = {
    "lr": KnobType(_positive_float, "float"),
    "weight_decay": KnobType(_non_negative_float, "float"),
    "label_smoothing": KnobType(_fraction, "float"),
    "batch_size": KnobType(_int_value, "int"),
    "epochs": KnobType(_int_value, "int"),
}


def knob_type_of(name: str, space: Space) -> KnobType:
    """The type of knob `name` in `space`, or ConfigError for a name no knob has.
    (Parsers are module functions bound with partial, so a Space pickles, as Optuna needs.)"""
    stages = len(space.base.stages)
    if name in _FIXED_KNOBS:
        return _FIXED_KNOBS[name]
    if name in RECIPE_KNOBS:
        return RECIPE_KNOBS[name]
    if name == "branches":
        return KnobType(functools.partial(_branch_set, space.branch_options))
    if name == "depths":
        return KnobType(functools.partial(_depths, stages))
    scoped = re.fullmatch(r"(branch|groups|relu)_(\d+)", name)
    if scoped:
        kind = scoped.group(1)
        parse = {
            "branch": functools.partial(_option_name, space.branch_options),
            "groups": _groups_value,
            "relu": _bool_value,
        }[kind]
        return KnobType(parse, "int" if kind == "groups" else None, branch_scoped=True)
    staged = re.fullmatch(r"depth_(\d+)", name)
    if staged and int(staged.group(1)) < stages:
        return KnobType(_int_value, "int")
    known = ", ".join([*_FIXED_KNOBS, *RECIPE_KNOBS, "branches", "depths", "branch_<m>", "groups_<m>", "relu_<m>"])
    raise ConfigError(f"knobs.{name}", f"unknown knob (known: {known}, depth_<0..{stages - 1}>)")


def _parse_knobs(value: Any, space: Space) -> tuple[Knob, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError("knobs", "must be a mapping of knob -> value or {choice|grid|int|float: ...}")
    knobs = [_parse_knob(str(name), entry, space) for name, entry in value.items()]
    names = {knob.name for knob in knobs}
    if "branches" in names and any(re.fullmatch(r"num_branches|branch_\d+", n) for n in names):
        raise ConfigError("knobs.branches", "cannot be combined with num_branches or branch_<m> knobs")
    if "depths" in names and any(re.fullmatch(r"depth_\d+", n) for n in names):
        raise ConfigError("knobs.depths", "cannot be combined with depth_<s> knobs")
    if "cardinality" in names and space.base.unit.branches[0].groups == DEPTHWISE:
        raise ConfigError("knobs.cardinality", "needs a base with an integer group count, not depthwise")
    # the branch count first: branch-scoped knobs depend on it (define-by-run order)
    return tuple(sorted(knobs, key=lambda knob: knob.name not in ("num_branches", "branches")))


def _parse_knob(name: str, entry: Any, space: Space) -> Knob:
    path = f"knobs.{name}"
    knob_type = knob_type_of(name, space)
    branch = int(name.rsplit("_", 1)[1]) if knob_type.branch_scoped else None
    if not isinstance(entry, Mapping):
        return Knob(name, "fixed", (knob_type.parse(entry, path),), branch=branch, type=knob_type)
    forms = [key for key in entry if key in _FORMS]
    extra = [key for key in entry if key not in (*_FORMS, "log")]
    if len(forms) != 1 or extra:
        raise ConfigError(path, "must be a value or a mapping with one of choice, grid, int, float (and log)")
    form = forms[0]
    values = entry[form]
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{path}.log", f"must be true or false, got {log!r}")
    if form in ("choice", "grid"):
        if log:
            raise ConfigError(f"{path}.log", "applies to int and float ranges only")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}.{form}", f"must be a non-empty list, got {values!r}")
        parsed = tuple(knob_type.parse(v, f"{path}.{form}[{i}]") for i, v in enumerate(values))
        if len(set(parsed)) != len(parsed):
            raise ConfigError(f"{path}.{form}", "lists a value twice")
        return Knob(name, form, parsed, branch=branch, type=knob_type)
    if knob_type.numeric is None or (form == "float" and knob_type.numeric == "int"):
        raise ConfigError(f"{path}.{form}", f"{name} does not take a {form} range")
    if not isinstance(values, list) or len(values) != 2:
        raise ConfigError(f"{path}.{form}", f"must be [low, high], got {values!r}")
    parse = _int_value if form == "int" else _positive_float
    low, high = (parse(v, f"{path}.{form}[{i}]") for i, v in enumerate(values))
    if low > high:
        raise ConfigError(f"{path}.{form}", f"low must not exceed high, got [{low}, {high}]")
    return Knob(name, form, low=low, high=high, log=log, branch=branch, type=knob_type)


def _check_branch_coverage(space: Space) -> None:
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
