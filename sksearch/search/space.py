"""A search space: a base spec plus knobs; its points, candidates, samples and enumerations.

A *point* maps knob names to values (scalars only, so Optuna categoricals and Parquet columns take
them as they are); `space.candidate(point)` turns it into a feasible network or raises Rejected.
Sampling, enumeration, the Ray Tune adapter and the Optuna adapter all go through it, so the same
choices give the same network. Constraints use the analytic counter on the network as declared
(full size), before a recipe such as `proxy` shrinks it for training.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sksearch.complexity import Complexity, count
from sksearch.recipes import Recipe, recipe_from
from sksearch.search import adapters
from sksearch.search.knobs import RECIPE_KNOBS, BranchOption, Knob
from sksearch.search.points import is_active, knob_of_error, spec_of, value_in
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError


@dataclass(frozen=True)
class Constraints:
    min_params_m: float | None = None
    max_params_m: float | None = None
    min_gmacs: float | None = None
    max_gmacs: float | None = None
    match_gmacs: float | None = None  # compute-matched: scale width to land on this GMACs
    match_tolerance: float = 0.02  # relative
    # measured on the trial's device before it trains (sksearch.latency): a violating trial ends `failed`
    max_latency_ms: float | None = None
    min_throughput: float | None = None

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

    def timing_violation(self, timing: Mapping[str, float]) -> str | None:
        """Why a measured network breaks a latency or throughput bound (None when it does not)."""
        if self.max_latency_ms is not None and timing["latency_ms"] > self.max_latency_ms:
            return f"latency {timing['latency_ms']:.2f} ms > max_latency_ms {self.max_latency_ms:g}"
        if self.min_throughput is not None and timing["throughput"] < self.min_throughput:
            return f"throughput {timing['throughput']:.1f} images/s < min_throughput {self.min_throughput:g}"
        return None

    @property
    def timed(self) -> bool:
        return self.max_latency_ms is not None or self.min_throughput is not None

    def compute_matched(self, spec: NetSpec) -> tuple[NetSpec, float]:
        """Scale the units' width until GMACs land within the tolerance of the target (Table 3).
        A network already within it is kept as it is."""
        target, tolerance = self.match_gmacs, self.match_tolerance
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
        raise Rejected("compute_matched", f"no width within {tolerance:.0%} of {target:g} GMACs")


@dataclass(frozen=True)
class SearchSettings:
    """How a sweep searches this space (used by `sksearch sweep`)."""

    algorithm: str = "grid"
    num_samples: int | None = None  # trials of random/tpe/nsga2: required by them, unused by grid
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
        complexity = self.complexity
        return {"archid": self.archid, **self.knobs, "num_branches": self.spec.num_branches,
                "input_size": self.spec.input_size, "params": complexity.params,
                "params_m": round(complexity.params_m, 4), "macs": complexity.macs,
                "gmacs": round(complexity.gmacs, 5), "width_match": self.width_match}  # fmt: skip


class Rejected(Exception):
    """A point that gives no feasible network; `reason` is the rejection statistic it counts as
    (`invalid <knob>` names the knob as the space file wrote it), `detail` the whole story."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Draw:
    """Candidates from sampling or enumeration, deduplicated, with why the rest were rejected."""

    candidates: list[Candidate] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    attempts: int = 0
    knob_names: tuple[str, ...] = ()  # column order of the table
    requested: int | None = None  # how many networks a sample asked for

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
        text = f"{len(self.candidates)} distinct feasible of {self.attempts} points ({rate:.0f}%); rejected: {reasons}"
        if self.requested is not None and self.requested > len(self.candidates):
            text += f"; asked for {self.requested}: the space holds {len(self.candidates)} distinct feasible networks"
        return text


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
            if not is_active(self, knob, point):
                yield from extend(index + 1, point)
                return
            for value in knob.options():
                point[knob.name] = value
                yield from extend(index + 1, point)
            del point[knob.name]

        yield from extend(0, {})

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

    def sample(self, n: int, seed: int = 0, max_attempts: int | None = None, progress: bool = False) -> Draw:
        """Up to `n` distinct feasible networks drawn at random; reproducible by `seed`. A finite
        space with no more than `n` points is enumerated instead (every network it has, shuffled):
        drawing could only find fewer, slower."""
        rng = random.Random(seed)
        if self.finite and sum(1 for _ in itertools.islice(self._points(), n + 1)) <= n:
            draw = self.enumerate()
            rng.shuffle(draw.candidates)
            draw.requested = n
            return draw

        def points() -> Iterator[dict[str, Any]]:
            attempts: Any = range(max_attempts or max(200, 50 * n))
            if progress:
                from tqdm import tqdm

                attempts = tqdm(attempts, desc=f"sampling {self.name}", unit="point")
            for _ in attempts:
                point: dict[str, Any] = {}
                for knob in self.knobs:
                    if is_active(self, knob, point):
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

    def point_of(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The active knob values of a config (a Ray Tune config or Optuna params may hold more)."""
        point: dict[str, Any] = {}
        for knob in self.knobs:
            if is_active(self, knob, {**point, **config}):
                if knob.name not in config and knob.form != "fixed":
                    raise ConfigError(f"config.{knob.name}", "is missing")
                value = config[knob.name] if knob.name in config else knob.values[0]
                point[knob.name] = knob.type.parse(value, f"config.{knob.name}")
        return point

    def candidate(self, config: Mapping[str, Any]) -> Candidate:
        """The network a point describes, compute-matched and checked; raises Rejected if infeasible."""
        point = self.point_of(config)
        try:
            spec = spec_of(self, point)
        except ConfigError as error:
            raise Rejected(f"invalid {knob_of_error(self, point, error)}", str(error)) from None
        width_match = None
        if self.constraints.match_gmacs is not None:
            spec, width_match = self.constraints.compute_matched(spec)
        complexity = count(spec)
        violation = self.constraints.violation(complexity)
        if violation:
            raise Rejected(violation, f"{complexity.gmacs:.3f} GMACs, {complexity.params_m:.2f} M params")
        return Candidate(tuple(point.items()), spec, complexity, width_match)

    def spec_for(self, config: Mapping[str, Any]) -> NetSpec:
        return self.candidate(config).spec

    def recipe_for(self, config: Mapping[str, Any], recipe: Recipe | None = None) -> Recipe:
        """The space's recipe (or `recipe`) with the point's recipe knobs applied."""
        changes = {name: value for name, value in self.point_of(config).items() if name in RECIPE_KNOBS}
        try:
            return (recipe or self.recipe).replace(**changes)
        except ConfigError as error:
            raise error.within("knobs") from None

    def point_for(self, spec: NetSpec) -> dict[str, Any] | None:
        """Knob values that rebuild `spec` in this space (to seed a search with a known network),
        or None when the space does not contain it. Verified by rebuilding and comparing archids."""
        point: dict[str, Any] = {}
        for knob in self.knobs:
            if is_active(self, knob, point):
                point[knob.name] = value_in(self, knob, spec)
                if point[knob.name] is None or not knob.admits(point[knob.name]):
                    return None
        try:
            rebuilt = self.candidate(point)
        except Rejected:
            return None
        return point if rebuilt.archid == spec.archid and rebuilt.spec.input_size == spec.input_size else None

    def to_tune(self) -> dict[str, Any]:
        return adapters.tune_param_space(self)

    def suggest(self, trial: Any) -> dict[str, Any]:
        return adapters.suggest(self, trial)

    def describe(self) -> list[tuple[str, str, str]]:
        return [(knob.name, knob.form, knob.describe()) for knob in self.knobs]
