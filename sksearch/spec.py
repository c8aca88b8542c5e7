"""The architecture spec: one frozen, validated value that fully describes a network.

Every knob that changes the built network is a field here. The builder (nets.py) and the
analytic counter (complexity.py) read nothing else, so a knob's effect can be followed
spec -> builder -> counter. Paper references: eq. (4) for d = max(C/r, L), Table 6/7 for the
branch sets, Table S8 for ReLU in the paths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sksearch.validation import ConfigError, boolean, check_keys, integer, number, one_of
from sksearch.yamlfiles import parse_yaml, read_yaml_file

TEMPLATES = ("imagenet", "cifar", "shufflenetv2")
DEPTHWISE = "depthwise"
KINDS = ("sk", "split")  # the paper's SK attention; ResNeSt's split attention
GATES = ("softmax", "sigmoid")
WIDTH_RULES = ("paper", "divisible", "fixed")
BLOCKS = ("bottleneck", "basic")
ATTENTION_MODULES = ("none", "cbam", "bam")
# Bounds that no real network reaches and that stop an absurd value before it fills the memory
MAX_CHANNELS = 65_536
MAX_DEPTH = 1_000
MAX_KERNEL = 63
MAX_INPUT_SIZE = 4_096
MAX_CLASSES = 1_000_000

# Template-dependent defaults, resolved on construction so that equal networks compare equal.
_TEMPLATE_DEFAULTS: dict[str, dict[str, int]] = {
    "imagenet": {"stem_width": 64, "head_width": 0, "input_size": 224},
    "cifar": {"stem_width": 64, "head_width": 0, "input_size": 32},
    "shufflenetv2": {"stem_width": 24, "head_width": 1024, "input_size": 224},
}


@dataclass(frozen=True)
class Branch:
    """One path of an SK convolution: a (grouped, possibly dilated) conv -> BN -> optional ReLU.

    `groups` is a count (G) or "depthwise" (G = channels, as in the ShuffleNetV2 variants).
    """

    kernel: int = 3
    dilation: int = 1
    groups: int | str = 32
    relu: bool = True

    def __post_init__(self) -> None:
        integer(self.kernel, "kernel", minimum=1, maximum=MAX_KERNEL)
        if self.kernel % 2 == 0:
            raise ConfigError("kernel", f"must be odd, got {self.kernel}")
        integer(self.dilation, "dilation", minimum=1, maximum=MAX_INPUT_SIZE)
        if self.groups != DEPTHWISE:
            if isinstance(self.groups, str):
                raise ConfigError("groups", f"must be an integer or '{DEPTHWISE}', got {self.groups!r}")
            integer(self.groups, "groups", minimum=1)
        boolean(self.relu, "relu")

    def groups_for(self, channels: int) -> int:
        """The group count this branch uses on a conv of `channels` channels."""
        return channels if self.groups == DEPTHWISE else int(self.groups)

    @property
    def label(self) -> str:
        """`3x3 D=2` (dilation shown when there is one), as the paper names its branches."""
        return f"{self.kernel}x{self.kernel}" + (f" D={self.dilation}" if self.dilation > 1 else "")

    @property
    def receptive_kernel(self) -> int:
        """The kernel size a dilated kernel approximates (3x3 D=2 -> 5), as in Table 6."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Unit:
    """The SK convolution shared by every unit of the network.

    M = len(branches). With attention the branches are fused and selected (Sec. 3.1);
    without it, or with M = 1 and a softmax gate, the output is the plain sum of the branches
    (Table 7, "no SK"). The later fields reach timm's and ResNeSt's variants of the same unit:
    `kind` "split" is ResNeSt's split attention (the branches are its radix splits, its attention
    layers are grouped by the branch groups and carry biases), `gate` softmax across branches or a
    sigmoid per branch, `split_input` gives each branch its own 1/M slice of the input (timm,
    ResNeSt), `width_rule` picks how d is computed (`attention_dim`), `fuse_bn` the BN of the fuse step.
    """

    branches: tuple[Branch, ...] = (Branch(),)
    attention: bool = True
    reduction: int = 16
    min_dim: int = 32
    kind: str = field(default="sk", metadata={"choices": KINDS})
    gate: str = field(default="softmax", metadata={"choices": GATES})
    split_input: bool = False
    width_rule: str = field(default="paper", metadata={"choices": WIDTH_RULES})
    divisor: int = 8
    fuse_bn: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.branches, tuple):
            raise ConfigError("branches", f"must be a tuple of Branch, got {type(self.branches).__name__}")
        if not self.branches:
            raise ConfigError("branches", "must list at least one branch")
        for index, branch in enumerate(self.branches):
            if not isinstance(branch, Branch):
                raise ConfigError(f"branches[{index}]", f"must be a Branch, got {branch!r}")
        boolean(self.attention, "attention")
        integer(self.reduction, "reduction", minimum=1)
        integer(self.min_dim, "min_dim", minimum=1)
        one_of(self.kind, KINDS, "kind")
        one_of(self.gate, GATES, "gate")
        boolean(self.split_input, "split_input")
        one_of(self.width_rule, WIDTH_RULES, "width_rule")
        integer(self.divisor, "divisor", minimum=1)
        boolean(self.fuse_bn, "fuse_bn")
        self._check_combination()

    def _check_combination(self) -> None:
        if self.gate != "softmax" and not self.attention:
            raise ConfigError("gate", f"{self.gate} gates the attention, and attention is off")
        for index, branch in enumerate(self.branches[1:], start=1):
            if self.kind == "split" and branch != self.branches[0]:
                raise ConfigError(
                    f"branches[{index}]", "differs from branches[0]: split attention's radix splits are identical"
                )
        if self.split_input and any(branch.groups == DEPTHWISE for branch in self.branches):
            raise ConfigError("split_input", "cannot split the input of a depthwise branch (its groups are its input)")

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    @property
    def selects(self) -> bool:
        """Whether the unit has the fuse/select attention (a softmax over one branch is pointless;
        a sigmoid on one branch is a gated conv, ResNeSt's radix 1)."""
        return self.attention and (len(self.branches) > 1 or self.gate == "sigmoid")

    def attention_dim(self, channels: int) -> int:
        """The width d of the fuse step on a conv of `channels` output channels.

        `paper`: d = max(C / r, L), eq. (4). `divisible`: timm's make_divisible(C * s / r, divisor)
        with L as its floor, where s = M for split attention (ResNeSt scales by the radix) and 1
        for SK. `fixed`: d = L.
        """
        if self.width_rule == "paper":
            return max(channels // self.reduction, self.min_dim)
        if self.width_rule == "fixed":
            return self.min_dim
        scale = self.num_branches if self.kind == "split" else 1
        return make_divisible(channels * scale / self.reduction, self.divisor, self.min_dim)

    def attention_groups(self, channels: int) -> int:
        """Split attention groups its fuse and select layers by the branch groups (cardinality)."""
        return self.branches[0].groups_for(channels) if self.kind == "split" else 1


def make_divisible(value: float, divisor: int, floor: int) -> int:
    """timm's channel rounding: the nearest multiple of `divisor`, at least `floor`, and never
    more than 10% below `value`."""
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# Knobs added after the first version, with the defaults that build the first version's networks.
_SELECTION_KNOBS = ("kind", "gate", "width_rule", "divisor", "fuse_bn")
_LATER_UNIT_KNOBS = {"kind": "sk", "gate": "softmax", "split_input": False, "width_rule": "paper", "divisor": 8,
                     "fuse_bn": True}  # fmt: skip
_LATER_NET_KNOBS = {"block": "bottleneck", "attention_module": "none", "attention_stages": None,
                    "deep_stem": False, "avg_down": False, "avd": False, "avd_first": False,
                    "se_min_dim": 1}  # fmt: skip


@dataclass(frozen=True)
class Stage:
    """`depth` units; `width` is the channel count of the SK (grouped) conv, `out_width` the unit output."""

    depth: int
    width: int
    out_width: int

    def __post_init__(self) -> None:
        integer(self.depth, "depth", minimum=1, maximum=MAX_DEPTH)
        integer(self.width, "width", minimum=1, maximum=MAX_CHANNELS)
        integer(self.out_width, "out_width", minimum=1, maximum=MAX_CHANNELS)


@dataclass(frozen=True)
class NetSpec:
    """A whole network. Hashable, comparable, and serialisable to dict/YAML without loss.

    Templates: `imagenet` (7x7/2 stem, 3x3/2 max pool, bottleneck units, first stage stride 1),
    `cifar` (3x3 stem, bottleneck units, first stage stride 1) and `shufflenetv2` (3x3/2 stem,
    max pool, shuffle units, every stage opens with a stride-2 unit, 1x1 head conv).
    `stem_width`, `head_width` and `input_size` default per template.

    Later knobs (docs/api.md's spec section says where each comes from): `block` basic (ResNet-18/34:
    SK conv then a 3x3 conv) instead of bottleneck; `attention_module` CBAM after each unit or BAM
    between stages (Table 2's rivals; SE is `se`); `attention_stages` the stages (from 1) whose units
    have the SK conv, the others a plain conv of branch 0; ResNet-D's `deep_stem` and `avg_down`;
    ResNeSt's `avd` (a 3x3 average pool takes the stride off the SK conv, after it or, with
    `avd_first`, before it).
    """

    stages: tuple[Stage, ...]
    template: str = field(default="imagenet", metadata={"knob": False})  # a space's networks share their base's
    unit: Unit = field(default_factory=Unit)
    se: bool = False
    se_reduction: int = 16
    se_min_dim: int = 1  # the floor of SE's hidden width max(C // r, floor), as L is the SK fuse width's
    num_classes: int = field(default=1000, metadata={"knob": False})  # the dataset's, set by the recipe
    stem_width: int | None = None
    head_width: int | None = field(default=None, metadata={"minimum": 0})
    input_size: int | None = None
    block: str = field(default="bottleneck", metadata={"choices": BLOCKS})
    attention_module: str = field(default="none", metadata={"choices": ATTENTION_MODULES})
    attention_stages: tuple[int, ...] | None = None
    deep_stem: bool = False
    avg_down: bool = False
    avd: bool = False
    avd_first: bool = False

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ConfigError("template", f"must be one of {', '.join(TEMPLATES)}, got {self.template!r}")
        for name, default in _TEMPLATE_DEFAULTS[self.template].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if not isinstance(self.stages, tuple):
            raise ConfigError("stages", f"must be a tuple of Stage, got {type(self.stages).__name__}")
        if not self.stages:
            raise ConfigError("stages", "must list at least one stage")
        for index, stage in enumerate(self.stages):
            if not isinstance(stage, Stage):
                raise ConfigError(f"stages[{index}]", f"must be a Stage, got {stage!r}")
        if not isinstance(self.unit, Unit):
            raise ConfigError("unit", f"must be a Unit, got {self.unit!r}")
        boolean(self.se, "se")
        integer(self.se_reduction, "se_reduction", minimum=1)
        integer(self.se_min_dim, "se_min_dim", minimum=1, maximum=MAX_CHANNELS)
        integer(self.num_classes, "num_classes", minimum=1, maximum=MAX_CLASSES)
        integer(self.stem_width, "stem_width", minimum=1, maximum=MAX_CHANNELS)
        integer(self.head_width, "head_width", minimum=0, maximum=MAX_CHANNELS)
        integer(self.input_size, "input_size", minimum=1, maximum=MAX_INPUT_SIZE)
        one_of(self.block, BLOCKS, "block")
        one_of(self.attention_module, ATTENTION_MODULES, "attention_module")
        for name in ("deep_stem", "avg_down", "avd", "avd_first"):
            boolean(getattr(self, name), name)
        object.__setattr__(self, "attention_stages", self._checked_attention_stages())
        self._check_combination()
        self._check_shapes()

    def _checked_attention_stages(self) -> tuple[int, ...] | None:
        """Sorted and unique; every stage listed is the same network as None (all stages)."""
        if self.attention_stages is None:
            return None
        if not isinstance(self.attention_stages, (tuple, list)):
            raise ConfigError("attention_stages", f"must be a list of stage numbers, got {self.attention_stages!r}")
        for index, number_ in enumerate(self.attention_stages):
            integer(number_, f"attention_stages[{index}]", minimum=1)
            if number_ > len(self.stages):
                raise ConfigError(
                    f"attention_stages[{index}]", f"stage {number_} does not exist (the network has {len(self.stages)})"
                )
        stages = tuple(sorted(set(self.attention_stages)))
        return None if len(stages) == len(self.stages) else stages

    def _check_combination(self) -> None:
        """Knobs that only exist together, or not at all."""
        shuffle = self.template == "shufflenetv2"
        if self.block == "basic" and shuffle:
            raise ConfigError("block", "basic blocks belong to the imagenet and cifar templates")
        if self.se and self.attention_module != "none":
            raise ConfigError("attention_module", f"{self.attention_module} and se are alternatives: pick one")
        if self.attention_module == "bam" and len(self.stages) < 2:
            raise ConfigError("attention_module", "bam sits between stages, and there is one stage")
        if self.deep_stem and self.template != "imagenet":
            raise ConfigError("deep_stem", "replaces the imagenet template's 7x7 stem")
        if self.deep_stem and self.stem_width % 2:
            raise ConfigError(
                "stem_width", f"must be even with deep_stem (its inner width is half), got {self.stem_width}"
            )
        if self.avg_down and shuffle:
            raise ConfigError("avg_down", "shuffle units have no projection shortcut")
        if self.avd_first and not self.avd:
            raise ConfigError("avd_first", "places the avd pool, and avd is off")
        if self.avd and (shuffle or self.block == "basic"):
            raise ConfigError("avd", "belongs to bottleneck units")
        if self.avd and all(self.stage_stride(index) == 1 for index in range(len(self.stages))):
            raise ConfigError("avd", "takes a unit's stride, and no unit has one")

    def _check_shapes(self) -> None:
        """Cross-field rules: every group count divides the channels it groups, and so on."""
        for index, stage in enumerate(self.stages):
            if self.template == "shufflenetv2" and stage.out_width % 2:
                raise ConfigError(
                    f"stages[{index}].out_width",
                    f"must be even (a shuffle unit splits it in halves), got {stage.out_width}",
                )
            for in_channels, out_channels, where in self.sk_conv_shapes(index):
                self._check_sk_conv(index, in_channels, out_channels, where)

    def _check_sk_conv(self, index: int, in_channels: int, out_channels: int, where: str) -> None:
        unit, attended = self.unit, self.has_attention(index)
        split = unit.num_branches if unit.split_input and attended else 1
        if in_channels % split:
            raise ConfigError("unit.split_input", f"M={split} does not divide {where}={in_channels}")
        for b, branch in enumerate(unit.branches if attended else unit.branches[:1]):
            groups = branch.groups_for(out_channels)
            if out_channels % groups:
                raise ConfigError(f"unit.branches[{b}].groups", f"{groups} does not divide {where}={out_channels}")
            if (in_channels // split) % groups:
                per_branch = in_channels // split
                raise ConfigError(
                    f"unit.branches[{b}].groups",
                    f"{groups} does not divide the {per_branch} input channels of each branch at {where}",
                )
        dim, attention_groups = unit.attention_dim(out_channels), unit.attention_groups(out_channels)
        if unit.selects and attended and dim % attention_groups:
            raise ConfigError(
                "unit.min_dim",
                f"split attention's width {dim} at {where}={out_channels} is not a multiple of its groups "
                f"{attention_groups}",
            )

    # -- shape rules shared by the builder and the analytic counter ---------------------------

    def stage_stride(self, index: int) -> int:
        """Stride of the first unit of stage `index` (the rest have stride 1)."""
        return 2 if self.template == "shufflenetv2" or index > 0 else 1

    def stage_in_width(self, index: int) -> int:
        return self.stem_width if index == 0 else self.stages[index - 1].out_width

    @property
    def features_width(self) -> int:
        """Channels entering global pooling and the classifier."""
        return self.head_width or self.stages[-1].out_width

    def has_attention(self, index: int) -> bool:
        """Whether stage `index` (from 0) has the SK conv, or a plain conv of branch 0."""
        return self.attention_stages is None or index + 1 in self.attention_stages

    @property
    def attention_stages_text(self) -> str:
        """`all`, or the stages with the SK conv as '3,4' (a knob value and a results column)."""
        return "all" if self.attention_stages is None else ",".join(map(str, self.attention_stages))

    def sk_conv_shapes(self, index: int) -> list[tuple[int, int, str]]:
        """(input, output) channels of the SK convs in stage `index`, with the field they come from."""
        stage, where = self.stages[index], f"stages[{index}].width"
        if self.block == "basic":  # the SK conv is the unit's first conv: it takes the unit's input
            shapes = [(self.stage_in_width(index), stage.width, where)]
            return shapes + ([(stage.out_width, stage.width, where)] if stage.depth > 1 else [])
        shapes = [(stage.width, stage.width, where)]
        if self.template == "shufflenetv2":  # the stride-2 unit's second path has an SK conv too
            source = "stem_width" if index == 0 else f"stages[{index - 1}].out_width"
            shapes.append((self.stage_in_width(index), self.stage_in_width(index), source))
        return shapes

    # -- identity and serialisation ---------------------------------------------------------

    @property
    def num_branches(self) -> int:
        return self.unit.num_branches

    @property
    def archid(self) -> str:
        """Short stable hash of the canonical form: equal networks get equal archids.

        Knobs that cannot change the network are left out of the canonical form: the attention's
        knobs when there is no selection, se_reduction without SE, and input_size (the same weights
        run at 224 and 320, as in Table 2). Knobs added after the first version are left out at
        their defaults, so that the archids of earlier results stay valid.
        """
        canonical = self.to_dict()
        del canonical["input_size"]
        unit = canonical["unit"]
        if not self.unit.selects:
            for knob in ("attention", "reduction", "min_dim", *_SELECTION_KNOBS):
                unit.pop(knob)
        if not self.se:
            del canonical["se_reduction"]
            canonical.pop("se_min_dim", None)
        for fields, defaults in ((unit, _LATER_UNIT_KNOBS), (canonical, _LATER_NET_KNOBS)):
            for knob, default in defaults.items():
                if fields.get(knob, default) == default:
                    fields.pop(knob, None)
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (every default spelled out); `from_dict` rebuilds an equal spec."""
        unit = {"branches": [dataclasses.asdict(branch) for branch in self.unit.branches]}
        unit.update({f.name: getattr(self.unit, f.name) for f in dataclasses.fields(Unit) if f.name != "branches"})
        later = {name: getattr(self, name) for name in _LATER_NET_KNOBS}
        if self.attention_stages is not None:
            later["attention_stages"] = list(self.attention_stages)
        return {
            "template": self.template,
            "stem_width": self.stem_width,
            "stages": [dataclasses.asdict(stage) for stage in self.stages],
            "unit": unit,
            "se": self.se,
            "se_reduction": self.se_reduction,
            "head_width": self.head_width,
            "num_classes": self.num_classes,
            "input_size": self.input_size,
            **later,
        }

    @classmethod
    def from_dict(cls, data: Any) -> NetSpec:
        """Strict: unknown keys and wrong types raise ConfigError naming the field path."""
        values = _fields_of(cls, data, "", required=("stages",))
        values["stages"] = tuple(
            _build(Stage, item, f"stages[{index}]", required=("depth", "width", "out_width"))
            for index, item in enumerate(_sequence(values["stages"], "stages"))
        )
        if "unit" in values:
            unit = _fields_of(Unit, values["unit"], "unit")
            if "branches" in unit:
                unit["branches"] = tuple(
                    _build(Branch, item, f"unit.branches[{index}]")
                    for index, item in enumerate(_sequence(unit["branches"], "unit.branches"))
                )
            values["unit"] = _construct(Unit, unit, "unit")
        if isinstance(values.get("attention_stages"), list):
            values["attention_stages"] = tuple(values["attention_stages"])
        return _construct(cls, values, "")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, source: str | Path) -> NetSpec:
        """From YAML text, or from a YAML file (a Path, or a one-line string ending .yaml/.yml)."""
        return read_spec(source) if is_spec_file(source) else cls.from_dict(parse_yaml(source))

    def scaled(self, factor: float, *, stem_and_head: bool = True) -> NetSpec:
        """The same architecture with its channel counts scaled by `factor`.

        Group counts scale with the widths, so the per-group width is kept (Table 3's "wider"
        ResNeXt is ResNeXt-50 at 17/16 with 34 groups), and L with them. Grouped widths round to a
        multiple of their groups, other widths to a multiple of 8. With `stem_and_head=False` only
        the units change, as in the paper's "more channels in all bottleneck blocks".
        """
        number(factor, "width_multiplier", 0, open_low=True)

        def groups(branch: Branch) -> int | str:
            return branch.groups if branch.groups == DEPTHWISE else max(1, round(branch.groups * factor))

        branches = tuple(dataclasses.replace(b, groups=groups(b)) for b in self.unit.branches)
        grouped = math.lcm(*(int(b.groups) for b in branches if b.groups != DEPTHWISE))
        if self.unit.split_input:  # each branch's slice of the input is grouped too
            grouped *= self.num_branches
        # shuffle units group their input too, so every width there is a multiple of the groups
        plain = math.lcm(8, grouped) if self.template == "shufflenetv2" else 8
        stages = tuple(
            Stage(stage.depth, round_to(stage.width * factor, grouped), round_to(stage.out_width * factor, plain))
            for stage in self.stages
        )
        unit = dataclasses.replace(self.unit, branches=branches, min_dim=max(1, round(self.unit.min_dim * factor)))
        changes: dict[str, Any] = {"stages": stages, "unit": unit}
        if stem_and_head:
            changes["stem_width"] = round_to(self.stem_width * factor, plain)
            changes["head_width"] = round_to(self.head_width * factor, 8) if self.head_width else 0
        return self.replace(**changes)

    def replace(self, **changes: Any) -> NetSpec:
        """A copy with top-level fields changed; unknown names raise ConfigError."""
        check_keys(changes, (f.name for f in dataclasses.fields(self)), what="spec field")
        return _construct(type(self), {**self.__dict__, **changes}, "")


def round_to(value: float, divisor: int) -> int:
    """The nearest multiple of `divisor` (at least `divisor` itself)."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


def is_spec_file(source: Any) -> bool:
    """A Path, or a string naming a .yaml/.yml file (YAML text has a newline or no such suffix)."""
    if isinstance(source, Path):
        return True
    return isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))


def read_spec(path: str | Path) -> NetSpec:
    """Load a spec file; errors are prefixed with the file name."""
    return read_yaml_file(path, NetSpec.from_dict)


def _fields_of(cls: type, data: Any, path: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    return check_keys(data, (f.name for f in dataclasses.fields(cls)), path, required)


def _sequence(value: Any, path: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(path, f"must be a list, got {type(value).__name__}")
    return list(value)


def _construct(cls: type, values: dict[str, Any], path: str) -> Any:
    try:
        return cls(**values)
    except ConfigError as error:
        raise error.within(path) from None


def _build(cls: type, data: Any, path: str, required: tuple[str, ...] = ()) -> Any:
    return _construct(cls, _fields_of(cls, data, path, required), path)
