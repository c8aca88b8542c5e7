"""Network builders: `build(spec)` is the only way a network is made.

Templates (see NetSpec): ResNeXt-style bottleneck networks for `imagenet` and `cifar`, and
ShuffleNetV2 for `shufflenetv2`. Every grouped 3x3 conv of the original design is an SKConv;
with one branch and no attention it is exactly the original conv (ResNeXt, ShuffleNetV2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sksearch.layers import ConvBnAct, SKConv, SqueezeExcite
from sksearch.presets import preset
from sksearch.spec import NetSpec, Unit, is_spec_file, read_spec


class Bottleneck(nn.Module):
    """1x1 -> SK conv -> 1x1 (+ SE) + shortcut, then ReLU. The stride sits on the SK branch convs."""

    def __init__(self, spec: NetSpec, in_channels: int, stage: int, stride: int, label: str):
        super().__init__()
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        self.conv1 = ConvBnAct(in_channels, width, 1)
        self.conv2 = sk_conv(width, spec.unit, stride, label)
        self.conv3 = ConvBnAct(width, out_channels, 1, act=False)
        self.se = SqueezeExcite(out_channels, spec.se_reduction) if spec.se else None
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ConvBnAct(in_channels, out_channels, 1, stride=stride, act=False) if needs_projection else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        if self.se is not None:
            out = self.se(out)
        out += x if self.shortcut is None else self.shortcut(x)  # in place: BN's and SE's backward never read it
        return self.act(out)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split channels, transform one half. Stride 2: two paths, both
    downsampling. Each 3x3 depthwise conv is an SK conv; SE (if any) follows the channel shuffle."""

    def __init__(self, spec: NetSpec, in_channels: int, stage: int, stride: int, label: str):
        super().__init__()
        width, out_channels = spec.stages[stage].width, spec.stages[stage].out_width
        half = out_channels // 2
        self.downsample = (
            nn.Sequential(
                sk_conv(in_channels, spec.unit, stride, f"{label}b"),
                ConvBnAct(in_channels, half, 1),
            )
            if stride > 1
            else None
        )
        main_in = in_channels if stride > 1 else half
        self.main = nn.Sequential(
            ConvBnAct(main_in, width, 1),
            sk_conv(width, spec.unit, stride, label),
            ConvBnAct(width, half, 1),
        )
        self.se = SqueezeExcite(out_channels, spec.se_reduction) if spec.se else None

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
        unit_class = ShuffleUnit if spec.template == "shufflenetv2" else Bottleneck
        stages = []
        for index, stage in enumerate(spec.stages):
            in_channels = spec.stage_in_width(index)
            units = []
            for position in range(stage.depth):
                stride = spec.stage_stride(index) if position == 0 else 1
                label = f"SK_{index + 2}_{position + 1}"
                units.append(unit_class(spec, in_channels, index, stride, label))
                in_channels = stage.out_width
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


def _stem(spec: NetSpec) -> nn.Sequential:
    if spec.template == "cifar":
        return nn.Sequential(ConvBnAct(3, spec.stem_width, 3))
    kernel = 7 if spec.template == "imagenet" else 3
    return nn.Sequential(
        ConvBnAct(3, spec.stem_width, kernel, stride=2),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


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


def sk_conv(channels: int, unit: Unit, stride: int, label: str) -> SKConv:
    """The spec's SK unit mapped onto the layer's plain arguments, on a conv of `channels` channels."""
    return SKConv(
        channels,
        kernel_size=[branch.kernel for branch in unit.branches],
        dilation=[branch.dilation for branch in unit.branches],
        groups=[branch.groups_for(channels) for branch in unit.branches],
        act=[branch.relu for branch in unit.branches],
        attention_dim=unit.attention_dim(channels) if unit.selects else None,
        stride=stride,
        label=label,
    )


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
