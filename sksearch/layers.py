"""Building blocks: conv-BN-act, the SK convolution (split / fuse / select), SE, CBAM and BAM.

Each block states its own cost beside its forward (pycls's `complexity()` pattern): a static
`cost(tally, ...)` that takes the block's constructor arguments and the input's spatial size, adds
the block's parameters, MACs and output activations to a `Cost`, and returns the output size.
The analytic counter (sksearch.complexity) only composes these; fvcore checks them on random specs.

Only torch is imported here: a GPU box or a laptop can build models without ray, optuna or fvcore.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class Cost:
    """Learnable parameters, multiply-accumulates and output activations (batch 1, eval mode) of
    the blocks stated into it, in plain integers."""

    __slots__ = ("activations", "macs", "params")

    def __init__(self) -> None:
        self.params = self.macs = self.activations = 0

    def add(self, other: Cost, times: int = 1) -> None:
        self.params += times * other.params
        self.macs += times * other.macs
        self.activations += times * other.activations

    def conv(self, cin: int, cout: int, size: int, kernel: int = 1, stride: int = 1, groups: int = 1,
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


class ConvBnAct(nn.Sequential):
    """conv (no bias) -> BN -> optional ReLU, 'same' padding for any dilation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
    ):
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(
                in_channels,
                out_channels,
                kernel,
                stride=stride,
                padding=dilation * (kernel - 1) // 2,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            bn=nn.BatchNorm2d(out_channels),
        )
        if act:
            layers["act"] = nn.ReLU(inplace=True)
        super().__init__(layers)

    @staticmethod
    def cost(tally: Cost, in_channels: int, out_channels: int, size: int, kernel: int = 1, stride: int = 1,
             groups: int = 1) -> int:  # fmt: skip
        return tally.conv(in_channels, out_channels, size, kernel, stride, groups)


class SelectAttention(nn.Module):
    """Fuse and select of eq. (3)-(5): pooled statistics -> fc -> BN -> ReLU -> fc -> gate.

    The gate is a softmax over the M branches (SK) or a sigmoid per branch. With `groups` > 1 (split
    attention) both fc layers are grouped and their outputs come group-major, as in ResNeSt; they are
    reordered to branch-major. Kept as its own module so that a forward hook on it sees the attention
    weights (shape B x M x C x 1 x 1) and costs nothing when no hook is registered.
    """

    def __init__(
        self,
        channels: int,
        num_branches: int,
        dim: int,
        gate: str = "softmax",
        groups: int = 1,
        bias: bool = False,
        fuse_bn: bool = True,
    ):
        super().__init__()
        self.num_branches, self.groups, self.gate = num_branches, groups, gate
        reduce: OrderedDict[str, nn.Module] = OrderedDict(conv=nn.Conv2d(channels, dim, 1, groups=groups, bias=bias))
        if fuse_bn:
            reduce["bn"] = nn.BatchNorm2d(dim)
        reduce["act"] = nn.ReLU(inplace=True)
        self.reduce = nn.Sequential(reduce)
        self.select = nn.Conv2d(dim, channels * num_branches, 1, groups=groups, bias=bias)

    @staticmethod
    def cost(tally: Cost, channels: int, num_branches: int, dim: int, gate: str = "softmax", groups: int = 1,
             bias: bool = False, fuse_bn: bool = True) -> None:  # fmt: skip
        tally.pointwise(channels, dim, bias, groups)
        if fuse_bn:
            tally.batch_norm(dim)
        tally.pointwise(dim, channels * num_branches, bias, groups)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.select(self.reduce(pooled))
        logits = logits.unflatten(1, (self.groups, self.num_branches, -1)).transpose(1, 2).flatten(2, 3)
        return logits.softmax(dim=1) if self.gate == "softmax" else logits.sigmoid()


class SKConv(nn.Module):
    """Selective Kernel convolution from `in_channels` to `out_channels` (default: as many; Fig. 1),
    for any number of branches.

    Branch m is a `kernel_size[m]` conv with `dilation[m]` and `groups[m]`, then BN and, if `act[m]`,
    ReLU; with `split_input` it reads only its own 1/M slice of the input channels. With
    `attention_dim` None (no selection) it returns the plain sum of its branches; otherwise
    d = `attention_dim` is the width of the fuse step (eq. 4) and `attention` the keyword arguments
    of SelectAttention. `label` names the unit the way the paper does (SK_3_4 = stage conv3_x, unit 4).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        kernel_size: Sequence[int] = (3, 3),
        dilation: Sequence[int] = (1, 2),
        groups: Sequence[int] = (32, 32),
        act: Sequence[bool] = (True, True),
        attention_dim: int | None = 32,
        stride: int = 1,
        split_input: bool = False,
        attention: Mapping[str, Any] | None = None,
        label: str = "SK",
    ):
        super().__init__()
        self.label = label
        out_channels = out_channels or in_channels
        self.split = in_channels // len(kernel_size) if split_input else None
        path_in = self.split or in_channels
        self.paths = nn.ModuleList(
            ConvBnAct(path_in, out_channels, k, stride=stride, dilation=d, groups=g, act=a)
            for k, d, g, a in zip(kernel_size, dilation, groups, act, strict=True)
        )
        self.attention = (
            None
            if attention_dim is None
            else SelectAttention(out_channels, len(self.paths), attention_dim, **(attention or {}))
        )

    @staticmethod
    def cost(tally: Cost, size: int, arguments: Mapping[str, Any]) -> int:
        """`arguments`: the constructor's, by name (nets.sk_conv_arguments gives all of them)."""
        out_channels, branches = arguments["out_channels"] or arguments["in_channels"], len(arguments["kernel_size"])
        path_in = arguments["in_channels"] // branches if arguments["split_input"] else arguments["in_channels"]
        for kernel, group in zip(arguments["kernel_size"], arguments["groups"], strict=True):
            out = tally.conv(path_in, out_channels, size, kernel, arguments["stride"], group)
        if arguments["attention_dim"] is not None:
            SelectAttention.cost(tally, out_channels, branches, arguments["attention_dim"], **arguments["attention"])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.split(self.split, dim=1) if self.split else [x] * len(self.paths)
        features = [path(part) for path, part in zip(self.paths, inputs, strict=True)]
        if self.attention is None:
            return _sum(features)
        # GAP(U1 + U2 + ...) == GAP(U1) + GAP(U2) + ...: the full-size sum U is never needed.
        pooled = _sum([f.mean((2, 3), keepdim=True) for f in features])
        return WeightedSum.apply(self.attention(pooled), *features)


class WeightedSum(torch.autograd.Function):
    """Select (eq. 6): V = sum_m a_m * U_m, with a of shape (B, M, C, 1, 1).

    The same arithmetic as `a[:, 0] * U_0 + a[:, 1] * U_1 + ...`, written into one output buffer.
    The backward pass allocates only the branch gradients: on a CPU a fresh full-size temporary
    costs more than the arithmetic done in it.
    """

    @staticmethod
    def forward(ctx, weights: torch.Tensor, *features: torch.Tensor) -> torch.Tensor:
        out = torch.mul(features[0], weights[:, 0])
        for index in range(1, len(features)):
            out.addcmul_(features[index], weights[:, index])
        ctx.save_for_backward(weights, *features)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weights, *features = ctx.saved_tensors
        grad_weights = None
        if ctx.needs_input_grad[0]:
            flat = grad.flatten(2)
            per_branch = [torch.linalg.vecdot(flat, feature.flatten(2)) for feature in features]
            grad_weights = torch.stack(per_branch, dim=1)[..., None, None]
        grad_features = [
            grad * weights[:, index] if ctx.needs_input_grad[index + 1] else None for index in range(len(features))
        ]
        return grad_weights, *grad_features


class SqueezeExcite(nn.Module):
    """SE module (Hu et al.): channel gates from pooled statistics, hidden width max(C // r, floor)
    (the floor keeps a narrow proxy's SE from a 1-channel bottleneck, as L does for SK)."""

    def __init__(self, channels: int, reduction: int, min_dim: int = 1):
        super().__init__()
        hidden = self.hidden_width(channels, reduction, min_dim)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    @staticmethod
    def hidden_width(channels: int, reduction: int, min_dim: int = 1) -> int:
        return max(channels // reduction, min_dim)

    @staticmethod
    def cost(tally: Cost, channels: int, reduction: int, min_dim: int = 1) -> None:
        hidden = SqueezeExcite.hidden_width(channels, reduction, min_dim)
        tally.pointwise(channels, hidden, bias=True)
        tally.pointwise(hidden, channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gates.sigmoid()


class ChannelSpatialAttention(nn.Module):
    """CBAM (Woo et al. 2018) as timm builds it: channel gates from a shared MLP (no biases, hidden
    width C / 16 rounded) on average- and max-pooled statistics, then a spatial gate from a 7x7 conv + BN on
    the channel-wise mean and max."""

    def __init__(self, channels: int, reduction: int = 16, kernel: int = 7):
        super().__init__()
        hidden = self.hidden_width(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.spatial = ConvBnAct(2, 1, kernel, act=False)

    @staticmethod
    def hidden_width(channels: int, reduction: int) -> int:
        return max(int(channels / reduction + 0.5), 1)  # timm rounds to the nearest

    @staticmethod
    def cost(tally: Cost, channels: int, size: int, reduction: int = 16, kernel: int = 7) -> None:
        hidden = ChannelSpatialAttention.hidden_width(channels, reduction)
        tally.pointwise(channels, hidden, bias=False)
        tally.pointwise(hidden, channels, bias=False)
        tally.macs += channels * hidden * 2  # the shared MLP runs twice: on average and max statistics
        tally.activations += hidden + channels
        tally.conv(2, 1, size, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        average = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        largest = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        x = x * (average + largest).sigmoid()
        statistics = torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), dim=1)
        return x * self.spatial(statistics).sigmoid()


class BottleneckAttention(nn.Module):
    """BAM (Park et al. 2018) at a stage boundary: F + F * sigmoid(Mc(F) + Ms(F)). Mc: pooled MLP
    C -> C/16 (BN, ReLU) -> C; Ms: 1x1 to C/16, two 3x3 convs with dilation 4, 1x1 to one map;
    every conv with a bias and (but the last) BN and ReLU, as in its paper's code."""

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4):
        super().__init__()
        hidden = self.hidden_width(channels, reduction)
        self.channel = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )
        spatial: list[nn.Module] = [nn.Conv2d(channels, hidden, 1)]
        for _ in range(2):
            spatial += [nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
            spatial.append(nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation))
        spatial += [nn.BatchNorm2d(hidden), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1)]
        self.spatial = nn.Sequential(*spatial)

    @staticmethod
    def hidden_width(channels: int, reduction: int) -> int:
        return max(channels // reduction, 1)

    @staticmethod
    def cost(tally: Cost, channels: int, size: int, reduction: int = 16, dilation: int = 4) -> None:
        hidden = BottleneckAttention.hidden_width(channels, reduction)
        tally.pointwise(channels, hidden, bias=True)
        tally.batch_norm(hidden)
        tally.pointwise(hidden, channels, bias=True)
        tally.conv(channels, hidden, size, bias=True)  # each BN follows its conv here
        for _ in range(2):
            tally.conv(hidden, hidden, size, kernel=3, bias=True)
        tally.conv(hidden, 1, size, bias=True, bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = (self.channel(x.mean((2, 3), keepdim=True)) + self.spatial(x)).sigmoid()
        return x + x * gates


def _sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return total


@contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record every SK unit's selection weights while the context is open.

    Yields a dict filled on each forward pass: {unit label: tensor of shape (batch, M, channels)},
    the weights of each branch per channel: with the softmax gate they sum to 1 over M, with a
    sigmoid gate each lies in (0, 1) on its own. A later forward pass
    overwrites the previous one. Outside the context the model runs with no hooks at all.
    """
    weights: dict[str, torch.Tensor] = {}
    handles = []
    for module in model.modules():
        if isinstance(module, SKConv) and module.attention is not None:

            def store(_module, _inputs, output, label=module.label):
                weights[label] = output.detach().flatten(2)

            handles.append(module.attention.register_forward_hook(store))
    try:
        yield weights
    finally:
        for handle in handles:
            handle.remove()
