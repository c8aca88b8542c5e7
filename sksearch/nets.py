"""Network builders: `build(spec)` is the only way a network is made.

Templates (see NetSpec): ResNeXt-style bottleneck networks for `imagenet` and `cifar`, and
ShuffleNetV2 for `shufflenetv2`. Every grouped 3x3 conv of the original design is an SKConv;
with one branch and no attention it is exactly the original conv (ResNeXt, ShuffleNetV2).

Beside each unit's forward is its `cost` (sksearch.layers.Cost), and `network_cost` composes them
part by part: the analytic counter (sksearch.complexity) is that composition.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sksearch.layers import BottleneckAttention, ChannelSpatialAttention, ConvBnAct, Cost, SKConv, SqueezeExcite
from sksearch.presets import preset
from sksearch.spec import NetSpec, is_spec_file, read_spec


class Bottleneck(nn.Module):
    """1x1 -> SK conv -> 1x1 (+ SE or CBAM) + shortcut, then ReLU. The stride sits on the SK branch
    convs, or with `avd` on a 3x3 average pool after (or, `avd_first`, before) the SK conv."""

    def __init__(self, spec: NetSpec, in_channels: int, stage: int, stride: int, label: str):
        super().__init__()
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        pool = nn.AvgPool2d(3, stride, padding=1) if spec.avd and stride > 1 else None
        self.conv1 = ConvBnAct(in_channels, width, 1)
        self.avd_first = pool if spec.avd_first else None
        self.conv2 = sk_conv(spec, stage, width, width, 1 if pool else stride, label)
        self.avd_last = None if spec.avd_first else pool
        self.conv3 = ConvBnAct(width, out_channels, 1, act=False)
        self.se = unit_attention(spec, out_channels)
        self.shortcut = shortcut(spec, in_channels, out_channels, stride)
        self.act = nn.ReLU(inplace=True)

    @staticmethod
    def cost(tally: Cost, spec: NetSpec, in_channels: int, stage: int, stride: int, size: int) -> int:
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        ConvBnAct.cost(tally, in_channels, width, size)
        if spec.avd and stride > 1:  # the 3x3 average pool takes the stride, before or after the SK conv
            out = (size - 1) // stride + 1
            SKConv.cost(tally, out if spec.avd_first else size, sk_conv_arguments(spec, stage, width, width, 1))
        else:
            out = SKConv.cost(tally, size, sk_conv_arguments(spec, stage, width, width, stride))
        ConvBnAct.cost(tally, width, out_channels, out)
        unit_attention_cost(tally, spec, out_channels, out)
        shortcut_cost(tally, spec, in_channels, out_channels, size, stride)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.avd_first is not None:
            out = self.avd_first(out)
        out = self.conv2(out)
        if self.avd_last is not None:
            out = self.avd_last(out)
        return _residual(self, self.conv3(out), x)


class BasicUnit(nn.Module):
    """ResNet-18/34's unit as timm's SK ResNets build it: SK conv (with the stride) -> 3x3 conv
    (+ SE or CBAM) + shortcut, then ReLU."""

    def __init__(self, spec: NetSpec, in_channels: int, stage: int, stride: int, label: str):
        super().__init__()
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        self.conv1 = sk_conv(spec, stage, in_channels, width, stride, label)
        self.conv2 = ConvBnAct(width, out_channels, 3, act=False)
        self.se = unit_attention(spec, out_channels)
        self.shortcut = shortcut(spec, in_channels, out_channels, stride)
        self.act = nn.ReLU(inplace=True)

    @staticmethod
    def cost(tally: Cost, spec: NetSpec, in_channels: int, stage: int, stride: int, size: int) -> int:
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        out = SKConv.cost(tally, size, sk_conv_arguments(spec, stage, in_channels, width, stride))
        ConvBnAct.cost(tally, width, out_channels, out, kernel=3)
        unit_attention_cost(tally, spec, out_channels, out)
        shortcut_cost(tally, spec, in_channels, out_channels, size, stride)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _residual(self, self.conv2(self.conv1(x)), x)


def _residual(unit: Bottleneck | BasicUnit, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if unit.se is not None:
        out = unit.se(out)
    out += x if unit.shortcut is None else unit.shortcut(x)  # in place: BN's, SE's, CBAM's backward never read it
    return unit.act(out)


def unit_attention(spec: NetSpec, channels: int) -> nn.Module | None:
    """The attention module after a unit's last BN: SE, CBAM, or none (BAM sits between stages)."""
    if spec.se:
        return SqueezeExcite(channels, spec.se_reduction, spec.se_min_dim)
    return ChannelSpatialAttention(channels) if spec.attention_module == "cbam" else None


def unit_attention_cost(tally: Cost, spec: NetSpec, channels: int, size: int) -> None:
    if spec.se:
        SqueezeExcite.cost(tally, channels, spec.se_reduction, spec.se_min_dim)
    elif spec.attention_module == "cbam":
        ChannelSpatialAttention.cost(tally, channels, size)


def shortcut(spec: NetSpec, in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """The projection shortcut where shapes change: a strided 1x1 conv + BN, or with ResNet-D's
    `avg_down` a 2x2 average pool (ceil mode) and an unstrided 1x1 conv + BN."""
    if stride == 1 and in_channels == out_channels:
        return None
    if not spec.avg_down:
        return ConvBnAct(in_channels, out_channels, 1, stride=stride, act=False)
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, ConvBnAct(in_channels, out_channels, 1, act=False))


def shortcut_cost(tally: Cost, spec: NetSpec, in_channels: int, out_channels: int, size: int, stride: int) -> None:
    if stride == 1 and in_channels == out_channels:
        return
    if spec.avg_down:  # the pool takes the stride, the conv has none
        ConvBnAct.cost(tally, in_channels, out_channels, (size - 1) // stride + 1)
    else:
        ConvBnAct.cost(tally, in_channels, out_channels, size, stride=stride)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split channels, transform one half. Stride 2: two paths, both
    downsampling. Each 3x3 depthwise conv is an SK conv; SE (if any) follows the channel shuffle."""

    def __init__(self, spec: NetSpec, in_channels: int, stage: int, stride: int, label: str):
        super().__init__()
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        half = out_channels // 2
        self.downsample = (
            nn.Sequential(
                sk_conv(spec, stage, in_channels, in_channels, stride, f"{label}b"),
                ConvBnAct(in_channels, half, 1),
            )
            if stride > 1
            else None
        )
        main_in = in_channels if stride > 1 else half
        self.main = nn.Sequential(
            ConvBnAct(main_in, width, 1),
            sk_conv(spec, stage, width, width, stride, label),
            ConvBnAct(width, half, 1),
        )
        self.se = unit_attention(spec, out_channels)

    @staticmethod
    def cost(tally: Cost, spec: NetSpec, in_channels: int, stage: int, stride: int, size: int) -> int:
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        half = out_channels // 2
        if stride > 1:
            down = SKConv.cost(tally, size, sk_conv_arguments(spec, stage, in_channels, in_channels, stride))
            ConvBnAct.cost(tally, in_channels, half, down)
        ConvBnAct.cost(tally, in_channels if stride > 1 else half, width, size)
        out = SKConv.cost(tally, size, sk_conv_arguments(spec, stage, width, width, stride))
        ConvBnAct.cost(tally, width, half, out)
        unit_attention_cost(tally, spec, out_channels, out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is None:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat((kept, self.main(transformed)), dim=1)
        else:
            out = torch.cat((self.downsample(x), self.main(x)), dim=1)
        out = channel_shuffle(out, 2)
        return out if self.se is None else self.se(out)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


class SKNet(nn.Module):
    """stem -> stages -> (head conv) -> global average pool -> fc. `spec` is kept on the model."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        self.stem = _stem(spec)
        unit_class = unit_class_of(spec)
        stages = []
        for index, stage in enumerate(spec.stages):
            in_channels = spec.stage_in_width(index)
            units = []
            for position in range(stage.depth):
                stride = spec.stage_stride(index) if position == 0 else 1
                label = f"SK_{index + 2}_{position + 1}"
                units.append(unit_class(spec, in_channels, index, stride, label))
                in_channels = stage.out_width
            if spec.attention_module == "bam" and index < len(spec.stages) - 1:
                units.append(BottleneckAttention(stage.out_width))
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)
        self.head = ConvBnAct(spec.stages[-1].out_width, spec.head_width, 1) if spec.head_width else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(spec.features_width, spec.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return x if self.head is None else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))


def unit_class_of(spec: NetSpec) -> type[nn.Module]:
    if spec.template == "shufflenetv2":
        return ShuffleUnit
    return BasicUnit if spec.block == "basic" else Bottleneck


def _stem(spec: NetSpec) -> nn.Sequential:
    if spec.template == "cifar":
        return nn.Sequential(ConvBnAct(3, spec.stem_width, 3))
    if spec.deep_stem:  # ResNet-D: three 3x3 convs, the first two half as wide
        inner = spec.stem_width // 2
        convs = [ConvBnAct(3, inner, 3, stride=2), ConvBnAct(inner, inner, 3), ConvBnAct(inner, spec.stem_width, 3)]
    else:
        convs = [ConvBnAct(3, spec.stem_width, 7 if spec.template == "imagenet" else 3, stride=2)]
    return nn.Sequential(*convs, nn.MaxPool2d(3, stride=2, padding=1))


def _stem_cost(tally: Cost, spec: NetSpec, size: int) -> int:
    if spec.template == "cifar":
        return ConvBnAct.cost(tally, 3, spec.stem_width, size, 3)
    if spec.deep_stem:
        inner = spec.stem_width // 2
        out = ConvBnAct.cost(tally, 3, inner, size, 3, stride=2)
        ConvBnAct.cost(tally, inner, inner, out, 3)
        ConvBnAct.cost(tally, inner, spec.stem_width, out, 3)
    else:
        out = ConvBnAct.cost(tally, 3, spec.stem_width, size, 7 if spec.template == "imagenet" else 3, stride=2)
    return (out - 1) // 2 + 1  # 3x3/2 max pool, padding 1


def network_cost(spec: NetSpec, input_size: int) -> list[tuple[str, Cost]]:
    """The cost of each part SKNet builds (stem, stage1.., head with the fc) at `input_size`, from
    the blocks' own costs; a stage's repeated units are counted once and multiplied."""
    stem = Cost()
    size = _stem_cost(stem, spec, input_size)
    parts = [("stem", stem)]
    unit = unit_class_of(spec)
    for index, stage in enumerate(spec.stages):
        first, rest = Cost(), Cost()
        size = unit.cost(first, spec, spec.stage_in_width(index), index, spec.stage_stride(index), size)
        if stage.depth > 1:
            unit.cost(rest, spec, stage.out_width, index, 1, size)
            first.add(rest, stage.depth - 1)
        if spec.attention_module == "bam" and index < len(spec.stages) - 1:
            BottleneckAttention.cost(first, stage.out_width, size)
        parts.append((f"stage{index + 1}", first))
    head = Cost()
    if spec.head_width:
        ConvBnAct.cost(head, spec.stages[-1].out_width, spec.head_width, size)
    head.pointwise(spec.features_width, spec.num_classes, bias=True)  # the fc, after the pool
    parts.append(("head", head))
    return parts


def init_weights(model: SKNet, zero_init_last_bn: bool = False) -> None:
    """Kaiming (He et al. [8]) init for convs, BN to identity; optionally each bottleneck's last BN
    to zero, so that every residual unit starts as the identity (shuffle units have no residual sum)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_last_bn:
        for module in model.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.conv3.bn.weight)
            elif isinstance(module, BasicUnit):
                nn.init.zeros_(module.conv2.bn.weight)


def sk_conv(spec: NetSpec, stage: int, in_channels: int, out_channels: int, stride: int, label: str) -> SKConv:
    return SKConv(**sk_conv_arguments(spec, stage, in_channels, out_channels, stride), label=label)


def sk_conv_arguments(spec: NetSpec, stage: int, in_channels: int, out_channels: int, stride: int) -> dict[str, Any]:
    """The spec's SK unit mapped onto SKConv's plain arguments (for the layer and its cost alike);
    in a stage without attention (`attention_stages`) it is the plain conv of branch 0."""
    unit = spec.unit
    attended = spec.has_attention(stage)
    branches = unit.branches if attended else unit.branches[:1]
    selects = unit.selects and attended
    return {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "kernel_size": [branch.kernel for branch in branches],
        "dilation": [branch.dilation for branch in branches],
        "groups": [branch.groups_for(out_channels) for branch in branches],
        "act": [branch.relu for branch in branches],
        "attention_dim": unit.attention_dim(out_channels) if selects else None,
        "stride": stride,
        "split_input": unit.split_input and attended,
        "attention": {
            "gate": unit.gate,
            "groups": unit.attention_groups(out_channels),
            "bias": unit.kind == "split",
            "fuse_bn": unit.fuse_bn,
        },
    }


def resolve_spec(spec_or_name: NetSpec | str | Path | Mapping[str, Any], **overrides: Any) -> NetSpec:
    """A NetSpec from a spec, a preset name, a spec YAML file or a spec dict, with top-level fields
    overridden."""
    if is_spec_file(spec_or_name):
        spec_or_name = read_spec(spec_or_name)
    elif isinstance(spec_or_name, str):
        return preset(spec_or_name, **overrides)
    spec = spec_or_name if isinstance(spec_or_name, NetSpec) else NetSpec.from_dict(spec_or_name)
    return spec.replace(**overrides) if overrides else spec


def build(
    spec_or_name: NetSpec | str | Mapping[str, Any],
    *,
    zero_init_last_bn: bool = False,
    **overrides: Any,
) -> SKNet:
    """Build the network a spec (or preset name, or spec dict) describes.

    `overrides` replace top-level spec fields (`build("sknet50", num_classes=10)`);
    `zero_init_last_bn` is an initialisation choice, not part of the network's identity.
    """
    model = SKNet(resolve_spec(spec_or_name, **overrides))
    init_weights(model, zero_init_last_bn)
    return model
