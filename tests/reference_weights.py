"""Copying a reference network's weights into ours (torchvision's, timm's): which timm network each
preset equals, and the copy."""

import torch

# our preset -> how timm builds the same network
PARITY = {
    "skresnet18": lambda timm: timm.create_model("skresnet18"),
    "skresnet34": lambda timm: timm.create_model("skresnet34"),
    "skresnet50": lambda timm: timm.create_model("skresnet50"),
    "skresnext50_32x4d": lambda timm: timm.create_model("skresnext50_32x4d"),
    "resnest14d": lambda timm: timm.create_model("resnest14d"),
    "resnest26d": lambda timm: timm.create_model("resnest26d"),
    "resnest50d": lambda timm: timm.create_model("resnest50d"),
    "resnest50d_4s2x40d": lambda timm: timm.create_model("resnest50d_4s2x40d"),
    "resnest50d_1s4x24d": lambda timm: timm.create_model("resnest50d_1s4x24d"),
    "resnext50_cbam": lambda timm: _timm_resnext_cbam(timm, (3, 4, 6, 3)),
    "resnext101_cbam": lambda timm: _timm_resnext_cbam(timm, (3, 4, 23, 3)),
}


def _timm_resnext_cbam(timm, layers):
    return timm.models.resnet.ResNet(
        timm.models.resnet.Bottleneck, list(layers), cardinality=32, base_width=4, block_args={"attn_layer": "cbam"}
    )


def reference_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """timm's state in our modules' order: a split-attention conv (and its BN) holding all radix
    splits at once is cut into one tensor per split, interleaved conv, BN, conv, BN as our branches."""
    state = model.state_dict()
    split_convs = {name for name, module in model.named_modules() if type(module).__name__ == "SplitAttn"}
    tensors, skip = [], set()
    for key, value in state.items():
        if key in skip:
            continue
        owner = key.rsplit(".", 2)[0]
        if owner in split_convs and key == f"{owner}.conv.weight":
            radix = model.get_submodule(owner).radix
            bn = [f"{owner}.bn0.{leaf}" for leaf in ("weight", "bias", "running_mean", "running_var")]
            skip.update([*bn, f"{owner}.bn0.num_batches_tracked"])
            for r in range(radix):
                tensors.append(value.chunk(radix)[r])
                tensors += [state[b].chunk(radix)[r] for b in bn] + [state[f"{owner}.bn0.num_batches_tracked"]]
        else:
            tensors.append(value)
    return tensors


def copy_weights_by_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy the reference's state entry by entry in registration order, insisting on equal shapes
    (a split-attention conv cut into its radix splits first: `reference_tensors`)."""
    targets = list(target.state_dict().items())
    sources = reference_tensors(source)
    assert len(sources) == len(targets)
    with torch.no_grad():
        for (name, slot), value in zip(targets, sources, strict=True):
            assert slot.shape == value.shape, name
            slot.copy_(value)


def randomise_batchnorm(model: torch.nn.Module) -> None:
    """Give BN non-trivial statistics so a wrong mapping cannot hide behind identity BNs."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
