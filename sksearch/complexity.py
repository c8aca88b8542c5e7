"""Parameter and MAC counts, two independent ways that must agree exactly.

* analytic: from the spec alone (no weights), microseconds per spec: the sum of the costs each
  block states beside its forward (layers.py, nets.py). Sampling, constraints and the space
  enumerator use it.
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

from sksearch.nets import network_cost, resolve_spec
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
# The blocks state their own costs beside their forwards (layers.py, nets.py); this only names them.


def analytic_count(spec: NetSpec, input_size: int) -> Complexity:
    """The blocks' own costs (nets.network_cost), part by part."""
    parts = tuple(
        PartComplexity(name, cost.params, cost.macs, cost.activations) for name, cost in network_cost(spec, input_size)
    )
    return Complexity(
        params=sum(p.params for p in parts),
        macs=sum(p.macs for p in parts),
        activations=sum(p.activations for p in parts),
        input_size=input_size,
        method="analytic",
        parts=parts,
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
