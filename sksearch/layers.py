"""Building blocks: conv-BN-act, the SK convolution (split / fuse / select) and SE.

Only torch is imported here: a GPU box or a laptop can build models without ray, optuna or fvcore.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


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


class SelectAttention(nn.Module):
    """Fuse and select of eq. (3)-(5): pooled statistics -> fc -> BN -> ReLU -> fc -> softmax over M.

    Kept as its own module so that a forward hook on it sees the attention weights
    (shape B x M x C x 1 x 1) and costs nothing when no hook is registered.
    """

    def __init__(self, channels: int, num_branches: int, dim: int):
        super().__init__()
        self.num_branches = num_branches
        self.reduce = ConvBnAct(channels, dim, 1)
        self.select = nn.Conv2d(dim, channels * num_branches, 1, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.select(self.reduce(pooled))
        return logits.unflatten(1, (self.num_branches, -1)).softmax(dim=1)


class SKConv(nn.Module):
    """Selective Kernel convolution on `channels` channels (Fig. 1), for any number of branches.

    Branch m is a `kernel_size[m]` conv with `dilation[m]` and `groups[m]`, then BN and, if `act[m]`,
    ReLU. With `attention_dim` None (no selection), or one branch, it returns the plain sum of its
    branches; otherwise d = `attention_dim` is the width of the fuse step (eq. 4).
    `label` names the unit the way the paper does (SK_3_4 = stage conv3_x, unit 4).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Sequence[int] = (3, 3),
        dilation: Sequence[int] = (1, 2),
        groups: Sequence[int] = (32, 32),
        act: Sequence[bool] = (True, True),
        attention_dim: int | None = 32,
        stride: int = 1,
        label: str = "SK",
    ):
        super().__init__()
        self.label = label
        self.paths = nn.ModuleList(
            ConvBnAct(channels, channels, k, stride=stride, dilation=d, groups=g, act=a)
            for k, d, g, a in zip(kernel_size, dilation, groups, act, strict=True)
        )
        selects = attention_dim is not None and len(self.paths) > 1
        self.attention = SelectAttention(channels, len(self.paths), attention_dim) if selects else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [path(x) for path in self.paths]
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
    """SE module (Hu et al.): channel gates from pooled statistics, hidden width max(C // r, 1)."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gates.sigmoid()


def _sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return total


@contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record every SK unit's selection weights while the context is open.

    Yields a dict filled on each forward pass: {unit label: tensor of shape (batch, M, channels)},
    the softmax weights of each branch per channel, summing to 1 over M. A later forward pass
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
