"""Parameter and MAC counts, two independent ways that must agree exactly.

* analytic: from the spec alone (no weights, no torch), microseconds per spec. Sampling,
  constraints and the space enumerator use it.
* fvcore: builds the model and traces it with fvcore's FlopCountAnalysis in eval mode.

Conventions (docs/paper.md): `params` = learnable parameters (BN running statistics excluded);
`macs` = multiply-accumulates of every conv and linear layer, SK/SE attention layers included,
batch 1, eval mode, at the spec's input size (the paper's "GFLOPs" = GMACs);
`fvcore_flops` = fvcore's own default total (it adds BN and adaptive pooling);
`elementwise_flops` = the ops fvcore leaves uncounted (residual adds, max pooling, the SK/SE
mean / softmax / mul / addcmul / sigmoid), one per output element, or per input element for
reductions and pooling.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sksearch.nets import resolve_spec
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError

METHODS = ("analytic", "fvcore")


@dataclass(frozen=True)
class PartComplexity:
    """Complexity of one part of the network: the stem, a stage, or the head (+ pool + fc)."""

    name: str
    params: int
    macs: int
    activations: int


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int
    activations: int
    input_size: int
    method: str
    parts: tuple[PartComplexity, ...]
    fvcore_flops: int | None = None
    elementwise_flops: int | None = None

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "parts": [dataclasses.asdict(p) for p in self.parts]}


def count(
    spec_or_name: NetSpec | str | Mapping[str, Any],
    method: str = "analytic",
    input_size: int | None = None,
) -> Complexity:
    """Count params, MACs and activations of a spec (or preset name) at `input_size`
    (default: the spec's own)."""
    spec = resolve_spec(spec_or_name)
    size = spec.input_size if input_size is None else input_size
    if method == "analytic":
        return analytic_count(spec, size)
    if method == "fvcore":
        key = (spec.archid, size)
        if key not in _FVCORE_CACHE:  # equal networks are traced once per process
            _check_trace_fits(spec, size)
            _FVCORE_CACHE[key] = fvcore_count(spec, size)
        return _FVCORE_CACHE[key]
    raise ConfigError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")


def _check_trace_fits(spec: NetSpec, size: int) -> None:
    """Refuse a trace whose activations (float32, all of them: the bound a trace can reach) exceed
    this machine's free memory, rather than let the allocator fail minutes later."""
    import os

    needed = analytic_count(spec, size).activations * 4
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > free:
        raise ConfigError(
            "input_size",
            f"{size} needs up to {needed / 2**30:.1f} GiB of activations to trace; {free / 2**30:.1f} GiB is free",
        )


# -- analytic -----------------------------------------------------------------------------------
# Mirrors the modules of layers.py / nets.py one for one, in plain integer arithmetic.


class _Tally:
    __slots__ = ("activations", "macs", "params")

    def __init__(self) -> None:
        self.params = self.macs = self.activations = 0

    def add(self, other: _Tally, times: int = 1) -> None:
        self.params += times * other.params
        self.macs += times * other.macs
        self.activations += times * other.activations

    def conv_bn(self, cin: int, cout: int, size: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                bias: bool = False, bn: bool = True) -> int:  # fmt: skip
        """A conv with 'same' padding (any dilation), by default without bias and with BN after it:
        returns the output size."""
        out = (size - 1) // stride + 1
        weights = cout * (cin // groups) * kernel * kernel
        self.params += weights + (cout if bias else 0) + (2 * cout if bn else 0)
        self.macs += weights * out * out
        self.activations += cout * out * out
        return out

    def pointwise(self, cin: int, cout: int, bias: bool, groups: int = 1) -> None:
        """A 1x1 conv or linear layer on a pooled (1x1) input."""
        weights = cin // groups * cout
        self.params += weights + (cout if bias else 0)
        self.macs += weights
        self.activations += cout

    def batch_norm(self, channels: int) -> None:
        self.params += 2 * channels

    def sk_conv(self, spec: NetSpec, stage: int, cin: int, cout: int, size: int, stride: int) -> int:
        unit, attended = spec.unit, spec.has_attention(stage)
        branches = unit.branches if attended else unit.branches[:1]
        split = len(branches) if unit.split_input and attended else 1
        for branch in branches:
            out = self.conv_bn(cin // split, cout, size, branch.kernel, stride, branch.groups_for(cout))
        if unit.selects and attended:
            dim, groups, bias = unit.attention_dim(cout), unit.attention_groups(cout), unit.kind == "split"
            self.pointwise(cout, dim, bias, groups)
            if unit.fuse_bn:
                self.batch_norm(dim)
            self.pointwise(dim, cout * len(branches), bias, groups)
        return out

    def unit_attention(self, spec: NetSpec, channels: int, size: int) -> None:
        if spec.se:
            hidden = max(channels // spec.se_reduction, spec.se_min_dim)
            self.pointwise(channels, hidden, bias=True)
            self.pointwise(hidden, channels, bias=True)
        elif spec.attention_module == "cbam":
            hidden = max(int(channels / 16 + 0.5), 1)
            self.pointwise(channels, hidden, bias=False)
            self.pointwise(hidden, channels, bias=False)
            self.macs += channels * hidden * 2  # the shared MLP runs twice: on average and max statistics
            self.activations += hidden + channels
            self.conv_bn(2, 1, size, kernel=7)

    def bottleneck_attention(self, channels: int, size: int) -> None:
        """BAM at a stage boundary (layers.BottleneckAttention)."""
        hidden = max(channels // 16, 1)
        self.pointwise(channels, hidden, bias=True)
        self.batch_norm(hidden)
        self.pointwise(hidden, channels, bias=True)
        self.conv_bn(channels, hidden, size, bias=True)  # each BN follows its conv here
        for _ in range(2):
            self.conv_bn(hidden, hidden, size, kernel=3, bias=True)
        self.conv_bn(hidden, 1, size, bias=True, bn=False)

    def shortcut(self, spec: NetSpec, cin: int, cout: int, size: int, stride: int) -> None:
        if stride == 1 and cin == cout:
            return
        if spec.avg_down:  # the pool takes the stride, the conv has none
            self.conv_bn(cin, cout, (size - 1) // stride + 1)
        else:
            self.conv_bn(cin, cout, size, stride=stride)

    def bottleneck(self, spec: NetSpec, index: int, cin: int, size: int, stride: int) -> int:
        stage = spec.stages[index]
        self.conv_bn(cin, stage.width, size)
        if spec.avd and stride > 1:  # a 3x3 average pool takes the stride, before or after the SK conv
            out = (size - 1) // stride + 1
            self.sk_conv(spec, index, stage.width, stage.width, out if spec.avd_first else size, 1)
        else:
            out = self.sk_conv(spec, index, stage.width, stage.width, size, stride)
        self.conv_bn(stage.width, stage.out_width, out)
        self.unit_attention(spec, stage.out_width, out)
        self.shortcut(spec, cin, stage.out_width, size, stride)
        return out

    def basic(self, spec: NetSpec, index: int, cin: int, size: int, stride: int) -> int:
        stage = spec.stages[index]
        out = self.sk_conv(spec, index, cin, stage.width, size, stride)
        self.conv_bn(stage.width, stage.out_width, out, kernel=3)
        self.unit_attention(spec, stage.out_width, out)
        self.shortcut(spec, cin, stage.out_width, size, stride)
        return out

    def shuffle_unit(self, spec: NetSpec, index: int, cin: int, size: int, stride: int) -> int:
        stage = spec.stages[index]
        half = stage.out_width // 2
        if stride > 1:
            self.conv_bn(cin, half, self.sk_conv(spec, index, cin, cin, size, stride))
        self.conv_bn(cin if stride > 1 else half, stage.width, size)
        out = self.sk_conv(spec, index, stage.width, stage.width, size, stride)
        self.conv_bn(stage.width, half, out)
        self.unit_attention(spec, stage.out_width, out)
        return out

    def stem(self, spec: NetSpec, size: int) -> int:
        if spec.template == "cifar":
            return self.conv_bn(3, spec.stem_width, size, 3)
        if spec.deep_stem:
            inner = spec.stem_width // 2
            out = self.conv_bn(3, inner, size, 3, stride=2)
            self.conv_bn(inner, inner, out, 3)
            self.conv_bn(inner, spec.stem_width, out, 3)
        else:
            kernel = 7 if spec.template == "imagenet" else 3
            out = self.conv_bn(3, spec.stem_width, size, kernel, stride=2)
        return (out - 1) // 2 + 1  # 3x3/2 max pool, padding 1

    def part(self, name: str) -> PartComplexity:
        return PartComplexity(name, self.params, self.macs, self.activations)


_UNITS = {"bottleneck": _Tally.bottleneck, "basic": _Tally.basic, "shuffle": _Tally.shuffle_unit}


def analytic_count(spec: NetSpec, input_size: int) -> Complexity:
    """Walk the spec part by part; a stage's repeated units are counted once and multiplied."""
    stem = _Tally()
    size = stem.stem(spec, input_size)
    parts = [stem.part("stem")]
    unit = _UNITS[spec.block if spec.template != "shufflenetv2" else "shuffle"]
    for index, stage in enumerate(spec.stages):
        first, rest = _Tally(), _Tally()
        size = unit(first, spec, index, spec.stage_in_width(index), size, spec.stage_stride(index))
        if stage.depth > 1:
            unit(rest, spec, index, stage.out_width, size, 1)
            first.add(rest, stage.depth - 1)
        if spec.attention_module == "bam" and index < len(spec.stages) - 1:
            first.bottleneck_attention(stage.out_width, size)
        parts.append(first.part(f"stage{index + 1}"))
    head = _Tally()
    if spec.head_width:
        head.conv_bn(spec.stages[-1].out_width, spec.head_width, size)
    head.pointwise(spec.features_width, spec.num_classes, bias=True)
    parts.append(head.part("head"))
    return Complexity(
        params=sum(p.params for p in parts),
        macs=sum(p.macs for p in parts),
        activations=sum(p.activations for p in parts),
        input_size=input_size,
        method="analytic",
        parts=tuple(parts),
    )


# -- fvcore -------------------------------------------------------------------------------------

_PER_OUTPUT_ELEMENT = ("add", "add_", "mul", "mul_", "addcmul", "softmax", "sigmoid")
_PER_INPUT_ELEMENT = ("mean", "sum", "amax", "max_pool2d", "avg_pool2d")
_MAC_OPS = ("conv", "linear", "addmm", "matmul", "mm")


def _extra_handles() -> dict[str, Any]:
    from fvcore.nn.jit_handles import elementwise_flop_counter

    handles: dict[str, Any] = {f"aten::{op}": elementwise_flop_counter(0, 1) for op in _PER_OUTPUT_ELEMENT}
    handles.update({f"aten::{op}": elementwise_flop_counter(1, 0) for op in _PER_INPUT_ELEMENT})
    for view in ("unflatten", "transpose", "flatten", "split", "cat"):  # views and copies
        handles[f"aten::{view}"] = None
    return handles


_FVCORE_CACHE: dict[tuple[str, int], Complexity] = {}


def fvcore_count(spec: NetSpec, input_size: int) -> Complexity:
    with warnings.catch_warnings():
        # fvcore's import and its jit trace warn about deprecated torch.jit APIs: not the user's concern
        warnings.simplefilter("ignore")
        return _trace_and_count(spec, input_size)


def _trace_and_count(spec: NetSpec, input_size: int) -> Complexity:
    import torch
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    from sksearch.nets import build

    model = build(spec).eval()
    images = torch.zeros(1, 3, input_size, input_size)
    flops = FlopCountAnalysis(model, images).set_op_handle(**_extra_handles())
    activations = ActivationCountAnalysis(model, images)
    for analysis in (flops, activations):
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    extra_ops = set(_PER_OUTPUT_ELEMENT + _PER_INPUT_ELEMENT)
    by_operator = flops.by_operator()
    module_ops, module_acts = flops.by_module_and_operator(), activations.by_module()
    parts = []
    for name, module_names in _fvcore_parts(spec).items():
        part_params = sum(p.numel() for m in module_names for p in model.get_submodule(m).parameters())
        part_macs = sum(module_ops[m].get(op, 0) for m in module_names for op in _MAC_OPS)
        part_acts = sum(module_acts[m] for m in module_names)
        parts.append(PartComplexity(name, part_params, int(part_macs), int(part_acts)))
    return Complexity(
        params=sum(p.numel() for p in model.parameters()),
        macs=int(sum(by_operator.get(op, 0) for op in _MAC_OPS)),
        activations=int(activations.total()),
        input_size=input_size,
        method="fvcore",
        parts=tuple(parts),
        fvcore_flops=int(sum(v for op, v in by_operator.items() if op not in extra_ops)),
        elementwise_flops=int(sum(by_operator.get(op, 0) for op in extra_ops)),
    )


def _fvcore_parts(spec: NetSpec) -> dict[str, list[str]]:
    """The same parts as the analytic count, as names of the model's top-level modules."""
    parts = {"stem": ["stem"]}
    parts.update({f"stage{i + 1}": [f"stages.{i}"] for i in range(len(spec.stages))})
    parts["head"] = (["head"] if spec.head_width else []) + ["fc"]
    return parts
