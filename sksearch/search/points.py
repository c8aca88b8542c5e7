"""Point -> spec, and spec -> point: the only place knob values meet the spec.

`spec_of(space, point)` starts from the base spec's plain data (or the point's `preset`), lays down
the computed shortcuts (branch set, cardinality, depths, attention stages), writes every path knob
into its field, applies the groups rule and the width multiplier, and validates the result as a
NetSpec. `point_for(space, spec)` reads
each knob's value back (its path, or its shortcut's `read`) and checks by rebuilding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sksearch.presets import preset
from sksearch.search.knobs import RECIPE_KNOBS, BranchOption, Knob, read_path, write_path
from sksearch.spec import DEPTHWISE, Branch, NetSpec, round_to
from sksearch.validation import ConfigError

if TYPE_CHECKING:
    from sksearch.search.space import Space


def num_branches(space: Space, point: Mapping[str, Any]) -> int:
    if "branches" in point:
        return len(str(point["branches"]).split("+"))
    return point.get("num_branches", space.base.num_branches)


def is_active(space: Space, knob: Knob, point: Mapping[str, Any]) -> bool:
    """Branch-scoped knobs exist only for branches the point has."""
    return knob.branch is None or knob.branch < num_branches(space, point)


def spec_of(space: Space, point: Mapping[str, Any]) -> NetSpec:
    """The network a point describes (before compute matching); ConfigError if it is invalid."""
    if "preset" in point:  # the whole network comes from the preset; path knobs apply on top
        draft = preset(point["preset"]).to_dict()
    else:
        draft = space.base.to_dict()
        cardinality = point.get("cardinality", _base_cardinality(space))
        draft["unit"]["branches"] = [_branch(space, option, cardinality) for option in _options(space, point)]
    if "attention_stages" in point:
        stages = point["attention_stages"]
        draft["attention_stages"] = None if stages == "all" else [int(number) for number in stages.split(",")]
    if "cardinality" in point:  # keep the per-group width of the base
        for stage in draft["stages"]:
            stage["width"] = stage["width"] // _base_cardinality(space) * cardinality
    if "depths" in point:
        for stage, depth in zip(draft["stages"], point["depths"].split(","), strict=True):
            stage["depth"] = int(depth)
    for knob in space.knobs:
        if knob.type.path and knob.name in point:
            write_path(draft, knob.type.path, point[knob.name])
    if space.groups_rule == "snap":
        _snap_widths(draft)
    spec = NetSpec.from_dict(draft)
    multiplier = point.get("width_multiplier", 1.0)
    return spec.scaled(multiplier, stem_and_head=False) if multiplier != 1 else spec


def knob_of_error(space: Space, point: Mapping[str, Any], error: ConfigError) -> str:
    """The knob, as the user wrote it, that set the field an invalid spec names (else the field)."""
    for knob in space.knobs:
        if knob.name in point and knob.type.path and error.path.startswith(knob.type.path):
            return knob.name
    if "attention_stages" in point and error.path.startswith("attention_stages"):
        return "attention_stages"
    branch_knobs = ("branches", "num_branches", "cardinality", "width_multiplier")
    for name in branch_knobs if error.path.startswith("unit.branches") else ():
        if name in point:
            return name
    return error.path


def _base_cardinality(space: Space) -> int | str:
    return space.base.unit.branches[0].groups


def _options(space: Space, point: Mapping[str, Any]) -> list[BranchOption]:
    if "branches" in point:
        return [space.branch_options[name] for name in point["branches"].split("+")]
    return [
        space.branch_options[point[f"branch_{m}"]]
        if f"branch_{m}" in point
        else _base_option(space, space.base.unit.branches[m])
        for m in range(num_branches(space, point))
    ]


def _base_option(space: Space, branch: Branch) -> BranchOption:
    """A base branch as an option: groups equal to the cardinality follow the cardinality knob."""
    groups = None if branch.groups == _base_cardinality(space) else branch.groups
    return BranchOption(branch.kernel, branch.dilation, groups, branch.relu)


def _branch(space: Space, option: BranchOption, cardinality: int | str) -> dict[str, Any]:
    return {
        "kernel": option.kernel,
        "dilation": option.dilation,
        "groups": option.groups if option.groups is not None else cardinality,
        "relu": option.relu if option.relu is not None else space.base.unit.branches[0].relu,
    }


def _snap_widths(draft: dict[str, Any]) -> None:
    """The `snap` rule: round every grouped width to the nearest multiple of its branch groups."""
    groups = math.lcm(*(int(b["groups"]) for b in draft["unit"]["branches"] if b["groups"] != DEPTHWISE))
    if groups == 1:
        return
    shuffle = draft["template"] == "shufflenetv2"
    outer = math.lcm(2, groups)  # shuffle units group their inputs and split outputs in halves
    for stage in draft["stages"]:
        stage["width"] = round_to(stage["width"], groups)
        if shuffle:
            stage["out_width"] = round_to(stage["out_width"], outer)
    if shuffle:
        draft["stem_width"] = round_to(draft["stem_width"], groups)


def value_in(space: Space, knob: Knob, spec: NetSpec) -> Any:
    """What `knob` would have to be for `spec` (None: it cannot say)."""
    if knob.type.path:
        return read_path(spec.to_dict(), knob.type.path)
    value = knob.type.read(spec, space)
    if knob.name in RECIPE_KNOBS and not knob.admits(value) and knob.finite:
        return knob.options()[0]  # a recipe knob does not change the network: any value rebuilds it
    return value
