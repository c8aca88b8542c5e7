"""The sweep plan: everything a sweep needs, validated before Ray starts and stored as sweep.json,
so that `resume` rebuilds the same trainable and search. No Ray here: planning, refusing and
status need none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from sksearch.data import check_data_root
from sksearch.files import check_writable_folder, exists, is_uri, join, read_bytes, write_bytes
from sksearch.presets import preset
from sksearch.recipes import Recipe
from sksearch.runfiles import PLAN
from sksearch.schema import TIMING_METRICS
from sksearch.search.space import Draw, Space
from sksearch.search.spacefile import parse_space
from sksearch.search.store import store_location
from sksearch.validation import ConfigError, first_line, number
from sksearch.yamlfiles import read_yaml_file

DEFAULT_STORAGE = "results"
MAX_CPUS_PER_TRIAL = 4_096  # beyond any node
MAX_GPUS_PER_TRIAL = 64


@dataclass(frozen=True)
class Resources:
    """What each trial gets. `gpus_per_trial` None: 1 if the cluster has GPUs, else 0."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    workers_per_trial: int = 1  # > 1: a data-parallel trial (Ray Train TorchTrainer)
    max_concurrent: int = 0  # 0: as many as resources allow

    def __post_init__(self) -> None:
        number(self.cpus_per_trial, "--cpus-per-trial", 0, MAX_CPUS_PER_TRIAL, open_low=True)
        if self.gpus_per_trial is not None:
            number(self.gpus_per_trial, "--gpus-per-trial", 0, MAX_GPUS_PER_TRIAL)
        if self.workers_per_trial < 1:
            raise ConfigError("--workers-per-trial", f"must be >= 1, got {self.workers_per_trial}")
        if self.max_concurrent < 0:
            raise ConfigError("--max-concurrent", f"must be >= 0, got {self.max_concurrent}")


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs, as plain data (stored as sweep.json in the run folder)."""

    name: str
    space_data: Mapping[str, Any]  # the space file's data, recipe and search already overridden
    space_file: str
    storage: str  # absolute path or URI
    resources: Resources = Resources()
    max_failures: int = 2
    store: str = ""  # the trial store's folder or URI (search.store); "" for <storage>/store
    reuse: bool = True  # answer trials from the store instead of training them again
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @cached_property
    def space(self) -> Space:
        return parse_space(dict(self.space_data), default_name=self.name, source=self.space_file)

    @cached_property
    def candidates(self) -> Draw:
        """The distinct feasible networks a grid or random search runs (drawn once)."""
        space, search = self.space, self.space.search
        if search.algorithm == "grid":
            return space.enumerate()
        return space.sample(search.num_samples, seed=search.seeds[0])

    @property
    def total_trials(self) -> int:
        """How many trials the sweep runs: each candidate once per seed (grid, random), or num_samples."""
        search = self.space.search
        if search.algorithm in ("grid", "random"):
            return len(self.candidates) * len(search.seeds)
        return int(search.num_samples or 0)

    @property
    def run_dir(self) -> str:
        return join(self.storage, self.name)

    @property
    def store_location(self) -> str:
        return store_location(self.store or None, self.storage)

    @property
    def objectives(self) -> tuple[tuple[str, str], ...]:
        return self.space.search.objectives

    @property
    def timed(self) -> bool:
        """Whether trials measure latency and throughput first: an objective or a constraint needs them."""
        return self.space.constraints.timed or any(name in TIMING_METRICS for name, _ in self.objectives)

    def point_and_seed(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Grid/random configs carry {"case": {"point", "seed"}} (or, planned before the store,
        {"point", "seed"}); Optuna configs carry the knobs themselves."""
        config = config.get("case", config)
        point = config.get("point", config)
        seed = config.get("seed", self.space.search.seeds[0])
        return self.space.point_of(point), int(seed)

    def recipe_for(self, point: Mapping[str, Any], seed: int) -> Recipe:
        """The recipe a trial of `point` trains under: the point's recipe knobs, the seed, and
        torch's threads set to the CPUs Ray gives the trial unless the recipe sets them."""
        recipe = self.space.recipe_for(point).replace(seed=seed)
        if recipe.threads is None:
            recipe = recipe.replace(threads=max(1, int(self.resources.cpus_per_trial)))
        return recipe

    def to_json(self) -> str:
        data = {
            "version": 1,
            "name": self.name,
            "space_file": self.space_file,
            "space": self.space_data,
            "storage": self.storage,
            "resources": dataclasses.asdict(self.resources),
            "max_failures": self.max_failures,
            "store": self.store,
            "reuse": self.reuse,
            "created": self.created,
        }
        return json.dumps(data, indent=2, default=list)

    @classmethod
    def from_json(cls, text: str) -> SweepPlan:
        data = json.loads(text)
        return cls(
            name=data["name"],
            space_data=data["space"],
            space_file=data["space_file"],
            storage=data["storage"],
            resources=Resources(**data["resources"]),
            max_failures=data["max_failures"],
            store=data.get("store", ""),  # sweeps planned before the store have the default
            reuse=data.get("reuse", True),
            created=data["created"],
        )


def plan_sweep(
    space_file: str | Path,
    *,
    recipe: str | None = None,
    settings: Mapping[str, Any] | None = None,
    algorithm: str | None = None,
    num_samples: int | None = None,
    objectives: str | None = None,
    early_stopping: str | None = None,
    seeds: list[int] | None = None,
    name: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    resources: Resources | None = None,
    max_failures: int = 2,
    store: str | None = None,
    reuse: bool = True,
    dry_run: bool = False,
) -> SweepPlan:
    """Load the space, apply command-line overrides, and refuse anything that cannot run. A
    `dry_run` plan (to cost a sweep, sksearch.search.cost) skips what only launching needs: the
    data on this machine, a writable store, and a free run folder."""
    space_file = Path(space_file)
    data = dict(read_yaml_file(space_file, space_mapping))
    parse_space(data, default_name=space_file.stem, source=str(space_file))  # the file alone is valid
    if recipe is not None or settings:
        base = recipe if recipe is not None else data.get("recipe", "smoke")
        preset_part = {"preset": base} if isinstance(base, str) else dict(base)
        data["recipe"] = {**preset_part, **(settings or {})}
    search = dict(data.get("search", {}))
    overrides = {
        "algorithm": algorithm,
        "num_samples": num_samples,
        "early_stopping": early_stopping,
        "seeds": seeds,
    }
    search.update({key: value for key, value in overrides.items() if value is not None})
    if objectives is not None:
        search["objectives"] = [item.strip() for item in objectives.split(",")]
    data["search"] = search
    try:
        space = parse_space(data, default_name=space_file.stem, source=str(space_file))
    except ConfigError as error:  # an override is wrong: name the flag, not the file
        raise _as_flag_error(error) from None
    data["recipe"] = space.recipe.to_dict()  # resolved: a resume must not depend on preset defaults
    sweep_name = name or space.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", sweep_name):
        raise ConfigError("--name", f"must be letters, digits, '_', '-' or '.', got {sweep_name!r}")
    plan = SweepPlan(
        name=sweep_name,
        space_data=data,
        space_file=str(space_file),
        storage=resolve_storage(storage, address),
        resources=resources or Resources(),
        max_failures=max_failures,
        store=store_location(store, "") if store is not None else "",
        reuse=reuse,
    )
    if store is not None and not is_uri(plan.store) and not dry_run:
        check_writable_folder(plan.store, "--store")
    if max_failures < 0:
        raise ConfigError("--max-failures", f"must be >= 0, got {max_failures}")
    if num_samples is not None and plan.space.search.algorithm == "grid":
        raise ConfigError("--num-samples", "a grid runs every network of the space once per seed; --num-samples "
                          "is for random, tpe and nsga2")  # fmt: skip
    check_search(plan)
    if dry_run:
        return plan
    if not address:  # a cluster's workers may hold data this machine has not
        check_data_root(plan.space.recipe)
    if exists(join(plan.run_dir, PLAN)):
        raise ConfigError(
            "--name",
            f"{plan.run_dir} already holds a sweep; `sksearch resume {plan.run_dir}` continues it, "
            "--name starts another",
        )
    return plan


def space_mapping(data: Any) -> Mapping[str, Any]:
    """A space file's data, refused unless it is a mapping."""
    if not isinstance(data, Mapping):
        raise ConfigError("", f"a space file must be a mapping, got {type(data).__name__}")
    return data


def _as_flag_error(error: ConfigError) -> ConfigError:
    flags = {"search.algorithm": "--algorithm", "search.num_samples": "--num-samples",
             "search.objectives": "--objectives", "search.early_stopping": "--early-stopping",
             "search.seeds": "--seeds"}  # fmt: skip
    for prefix, flag in flags.items():
        if error.path.startswith(prefix):
            return ConfigError(flag, error.reason)
    return error


def resolve_storage(storage: str | None, address: str | None) -> str:
    """An absolute path or URI. With a cluster address a relative path is refused: workers on
    other nodes could not see it. A local folder must be one this user can write into."""
    location = storage or DEFAULT_STORAGE
    if is_uri(location):
        return location
    if address and not os.path.isabs(location):
        raise ConfigError(
            "--storage",
            f"{location!r} is a relative path that workers on other nodes cannot see; with --address give "
            "an absolute path on shared storage or a URI (s3://, gs://, ...)",
        )
    check_writable_folder(location, "--storage")
    return os.path.abspath(location)


def check_search(plan: SweepPlan) -> None:
    """Refuse a search the space cannot give (grid over a float range, no feasible network, ...)."""
    space, search = plan.space, plan.space.search
    if search.algorithm == "grid" and not space.finite:
        raise ConfigError("--algorithm", "grid needs a finite space (it has a float range): use random, tpe or nsga2")
    if search.algorithm != "grid" and search.num_samples is None:
        raise ConfigError("--num-samples", f"{search.algorithm} needs a number of trials: give search.num_samples "
                          "in the space file or --num-samples")  # fmt: skip
    if search.algorithm in ("grid", "random") and not len(plan.candidates):
        raise ConfigError("knobs", f"no feasible network in space {space.name}: {plan.candidates.summary()}")
    for index, name in enumerate(search.seed_presets):
        if space.point_for(preset(name)) is None:
            raise ConfigError(f"search.seed_presets[{index}]", f"{name} is not a network of space {space.name}")


def load_plan_here(run_dir: str) -> SweepPlan:
    """The sweep's plan, placed where its folder is now (a copied or moved folder is a sweep of its
    own); a local folder is made absolute. At a URI a copy is refused."""
    run_dir = run_dir if is_uri(run_dir) else os.path.abspath(run_dir)
    plan = load_plan(run_dir)
    if is_uri(run_dir) and plan.run_dir.rstrip("/") != run_dir.rstrip("/"):
        raise ConfigError(run_dir, f"is a copy of the sweep at {plan.run_dir}; at a URI only the original is resumed")
    return dataclasses.replace(
        plan, storage=os.path.dirname(run_dir.rstrip("/")), name=os.path.basename(run_dir.rstrip("/"))
    )


PLAN_COPY = ".sweep.json.copy"  # a second copy of the plan, from which `repair` rebuilds a damaged one


def write_plan(plan: SweepPlan) -> None:
    """sweep.json, and its copy (each written whole: a crash leaves at least one intact)."""
    for name in (PLAN_COPY, PLAN):
        write_bytes(join(plan.run_dir, name), plan.to_json().encode())


def load_plan(run_dir: str) -> SweepPlan:
    location = join(str(run_dir), PLAN)
    if not exists(location):
        if exists(join(str(run_dir), PLAN_COPY)):
            raise ConfigError(str(run_dir), f"has lost its {PLAN}; `sksearch repair {run_dir}` restores it")
        raise ConfigError(str(run_dir), f"is not a sksearch sweep folder (no {PLAN})")
    try:
        return _parse_plan(location)
    except ConfigError as error:
        if exists(join(str(run_dir), PLAN_COPY)):
            raise ConfigError(location, f"{error.reason}; `sksearch repair {run_dir}` restores it") from None
        raise


def restore_plan(run_dir: str) -> bool:
    """Rebuild a missing or damaged sweep.json from its copy; True when it was rebuilt."""
    try:
        _parse_plan(join(run_dir, PLAN))
        return False
    except ConfigError:
        if not exists(join(run_dir, PLAN_COPY)):
            raise ConfigError(join(run_dir, PLAN), "is damaged and has no copy to rebuild it from") from None
    _parse_plan(join(run_dir, PLAN_COPY))  # refuses a damaged copy too
    write_bytes(join(run_dir, PLAN), read_bytes(join(run_dir, PLAN_COPY)))
    return True


def _parse_plan(location: str) -> SweepPlan:
    try:
        return SweepPlan.from_json(read_bytes(location).decode())
    except OSError as error:
        raise ConfigError(location, f"cannot be read ({error.strerror or error})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(location, f"unreadable sweep plan ({first_line(error)})") from None
