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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sksearch.validation import ConfigError, boolean, check_keys, integer, number

T = TypeVar("T")

TEMPLATES = ("imagenet", "cifar", "shufflenetv2")
DEPTHWISE = "depthwise"

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
        integer(self.kernel, "kernel", minimum=1)
        if self.kernel % 2 == 0:
            raise ConfigError("kernel", f"must be odd, got {self.kernel}")
        integer(self.dilation, "dilation", minimum=1)
        if self.groups != DEPTHWISE:
            if isinstance(self.groups, str):
                raise ConfigError("groups", f"must be an integer or '{DEPTHWISE}', got {self.groups!r}")
            integer(self.groups, "groups", minimum=1)
        boolean(self.relu, "relu")

    def groups_for(self, channels: int) -> int:
        """The group count this branch uses on a conv of `channels` channels."""
        return channels if self.groups == DEPTHWISE else int(self.groups)

    @property
    def receptive_kernel(self) -> int:
        """The kernel size a dilated kernel approximates (3x3 D=2 -> 5), as in Table 6."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Unit:
    """The SK convolution shared by every unit of the network.

    M = len(branches). With attention the branches are fused and selected (Sec. 3.1);
    without it, or with M = 1, the output is the plain sum of the branches (Table 7, "no SK").
    """

    branches: tuple[Branch, ...] = (Branch(),)
    attention: bool = True
    reduction: int = 16
    min_dim: int = 32

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

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    @property
    def selects(self) -> bool:
        """Whether the unit has the fuse/select attention (it is pointless with one branch)."""
        return self.attention and len(self.branches) > 1

    def attention_dim(self, channels: int) -> int:
        """d = max(C / r, L), eq. (4)."""
        return max(channels // self.reduction, self.min_dim)


@dataclass(frozen=True)
class Stage:
    """`depth` units; `width` is the channel count of the SK (grouped) conv, `out_width` the unit output."""

    depth: int
    width: int
    out_width: int

    def __post_init__(self) -> None:
        integer(self.depth, "depth", minimum=1)
        integer(self.width, "width", minimum=1)
        integer(self.out_width, "out_width", minimum=1)


@dataclass(frozen=True)
class NetSpec:
    """A whole network. Hashable, comparable, and serialisable to dict/YAML without loss.

    Templates: `imagenet` (7x7/2 stem, 3x3/2 max pool, bottleneck units, first stage stride 1),
    `cifar` (3x3 stem, bottleneck units, first stage stride 1) and `shufflenetv2` (3x3/2 stem,
    max pool, shuffle units, every stage opens with a stride-2 unit, 1x1 head conv).
    `stem_width`, `head_width` and `input_size` default per template.
    """

    stages: tuple[Stage, ...]
    template: str = "imagenet"
    unit: Unit = field(default_factory=Unit)
    se: bool = False
    se_reduction: int = 16
    num_classes: int = 1000
    stem_width: int | None = None
    head_width: int | None = None
    input_size: int | None = None

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
        integer(self.num_classes, "num_classes", minimum=1)
        integer(self.stem_width, "stem_width", minimum=1)
        integer(self.head_width, "head_width", minimum=0)
        integer(self.input_size, "input_size", minimum=1)
        self._check_shapes()

    def _check_shapes(self) -> None:
        """Cross-field rules: every group count divides the channels it groups, and so on."""
        for index, stage in enumerate(self.stages):
            if self.template == "shufflenetv2" and stage.out_width % 2:
                raise ConfigError(
                    f"stages[{index}].out_width",
                    f"must be even (a shuffle unit splits it in halves), got {stage.out_width}",
                )
            for channels, where in self.sk_conv_widths(index):
                for b, branch in enumerate(self.unit.branches):
                    groups = branch.groups_for(channels)
                    if channels % groups:
                        raise ConfigError(
                            f"unit.branches[{b}].groups",
                            f"{groups} does not divide {where}={channels}",
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

    def sk_conv_widths(self, index: int) -> list[tuple[int, str]]:
        """Channel counts of the SK convs in stage `index`, with the field each comes from."""
        widths = [(self.stages[index].width, f"stages[{index}].width")]
        if self.template == "shufflenetv2":  # the stride-2 unit's second path has an SK conv too
            where = "stem_width" if index == 0 else f"stages[{index - 1}].out_width"
            widths.append((self.stage_in_width(index), where))
        return widths

    # -- identity and serialisation ---------------------------------------------------------

    @property
    def num_branches(self) -> int:
        return self.unit.num_branches

    @property
    def archid(self) -> str:
        """Short stable hash of the canonical form: equal networks get equal archids.

        Knobs that cannot change the network are left out of the canonical form: r and L when
        there is no selection, se_reduction without SE, and input_size (the same weights run at
        224 and 320, as in Table 2).
        """
        canonical = self.to_dict()
        del canonical["input_size"]
        if not self.unit.selects:
            for knob in ("attention", "reduction", "min_dim"):
                del canonical["unit"][knob]
        if not self.se:
            del canonical["se_reduction"]
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (every default spelled out); `from_dict` rebuilds an equal spec."""
        return {
            "template": self.template,
            "stem_width": self.stem_width,
            "stages": [dataclasses.asdict(stage) for stage in self.stages],
            "unit": {
                "branches": [dataclasses.asdict(branch) for branch in self.unit.branches],
                "attention": self.unit.attention,
                "reduction": self.unit.reduction,
                "min_dim": self.unit.min_dim,
            },
            "se": self.se,
            "se_reduction": self.se_reduction,
            "head_width": self.head_width,
            "num_classes": self.num_classes,
            "input_size": self.input_size,
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


class _Loader(yaml.SafeLoader):
    """YAML as researchers write numbers: `5e-4` and `1e6` are floats (YAML 1.2), not strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Safe-load YAML (numbers in scientific notation included); a syntax error becomes a
    ConfigError with its line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "syntax error"
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError("", f"not valid YAML ({problem}{where})") from None


def read_yaml_file(path: str | Path, parse: Callable[[Any], T]) -> T:
    """Read a YAML file and `parse` its data; every problem is a ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), f"cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), f"is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                          f"{error.start}); a YAML file must be") from None  # fmt: skip
    try:
        return parse(parse_yaml(text))
    except ConfigError as error:
        raise error.in_file(path) from None


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
