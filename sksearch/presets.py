"""Named specs: the paper's models, their baselines, and the Table 3 / CIFAR / ShuffleNetV2 variants.

Presets are NetSpec values, not subclasses. `preset(name, **overrides)` returns one;
`create_model(name, num_classes=...)` builds one, timm style.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sksearch.spec import DEPTHWISE, Branch, NetSpec, Stage, Unit
from sksearch.validation import ConfigError

# The paper's named kernels (Sec. 4.3, Table 7), for a given group count.
KERNELS = {"K3": (3, 1), "K5": (3, 2), "K7": (3, 3)}


def kernel_branch(name: str, groups: int | str, relu: bool = True) -> Branch:
    kernel, dilation = KERNELS[name]
    return Branch(kernel=kernel, dilation=dilation, groups=groups, relu=relu)


def resnext_stages(depths: Sequence[int], cardinality: int, base_width: int, out_base: int = 256) -> tuple:
    """Stages of a ResNeXt `cardinality` x `base_width`d template: the grouped-conv width is
    cardinality * base_width, the unit output 4x the ResNet base width; both double per stage."""
    return tuple(
        Stage(depth=depth, width=cardinality * base_width * 2**i, out_width=out_base * 2**i)
        for i, depth in enumerate(depths)
    )


def resnext(
    depths: Sequence[int],
    cardinality: int = 32,
    base_width: int = 4,
    *,
    template: str = "imagenet",
    kernels: Sequence[str] = ("K3",),
    attention: bool = True,
    reduction: int = 16,
    min_dim: int = 32,
    se: bool = False,
) -> NetSpec:
    """A ResNeXt-family spec; with more than one kernel and attention it is an SKNet."""
    unit = Unit(
        branches=tuple(kernel_branch(name, cardinality) for name in kernels),
        attention=attention,
        reduction=reduction,
        min_dim=min_dim,
    )
    return NetSpec(
        template=template,
        stages=resnext_stages(depths, cardinality, base_width),
        unit=unit,
        se=se,
        num_classes=10 if template == "cifar" else 1000,
    )


def shufflenetv2(
    out_widths: Sequence[int],
    *,
    sk: bool = False,
    se: bool = False,
    relu: tuple[bool, bool] = (False, False),
) -> NetSpec:
    """ShuffleNetV2 as re-implemented in the paper (stages {4,6,6}, Appendix B). With `sk`, each
    3x3 depthwise conv is an SK conv with M=2 (K3, K5), r=4, G = channels and, by default, no ReLU
    in the paths (Table S8). The paper gives no L here; L=16 reproduces the 0.5x + SK #P."""
    kernels = ("K3", "K5") if sk else ("K3",)
    unit = Unit(
        branches=tuple(
            kernel_branch(name, DEPTHWISE, relu=on) for name, on in zip(kernels, relu[: len(kernels)], strict=True)
        ),
        attention=sk,
        reduction=4,
        min_dim=16,
    )
    stages = tuple(
        Stage(depth=depth, width=out // 2, out_width=out) for depth, out in zip((4, 6, 6), out_widths, strict=True)
    )
    return NetSpec(template="shufflenetv2", stages=stages, unit=unit, se=se)


def _sknet29() -> NetSpec:
    """SK[2, 16, 32] on ResNeXt-29 16x32d with the second path 1x1 (Appendix D); L=32 as in Sec. 3.1."""
    spec = resnext((3, 3, 3), 16, 32, template="cifar", kernels=("K3",), reduction=32)
    second_path = Branch(kernel=1, dilation=1, groups=16)
    return spec.replace(unit=Unit(branches=(*spec.unit.branches, second_path), reduction=32, min_dim=32))


def _resnext50_wider() -> NetSpec:
    """Appendix A's "1/16 more channels in all bottleneck blocks": ResNeXt-50 scaled by 17/16 in
    its units; 136-wide grouped convs take 34 groups of 4. Reproduces Table 3's 4.74 GFLOPs."""
    return resnext((3, 4, 6, 3)).scaled(17 / 16, stem_and_head=False)


def timm_skresnet(depths: Sequence[int], block: str = "bottleneck", cardinality: int = 1, base_width: int = 64,
                  **unit: Any) -> NetSpec:  # fmt: skip
    """timm's SK ResNets (sknet.py): K3 and K5 branches, each reading half of the input channels
    (`split_input`) unless told otherwise, d = make_divisible(C / r, divisor) (`width_rule: divisible`)."""
    unit = {"split_input": True, "reduction": 16, "divisor": 8, **unit}
    basic = block == "basic"
    stages = (
        tuple(Stage(depth, 64 * 2**i, 64 * 2**i) for i, depth in enumerate(depths))
        if basic
        else resnext_stages(depths, cardinality, base_width)
    )
    sk = Unit(
        branches=tuple(kernel_branch(name, cardinality) for name in ("K3", "K5")),
        width_rule="divisible",
        min_dim=unit["divisor"],  # timm's make_divisible floors at its divisor
        **unit,
    )
    return NetSpec(stages=stages, unit=sk, block=block)


def resnest(
    depths: Sequence[int], radix: int = 2, cardinality: int = 1, base_width: int = 64, avd_first: bool = False
) -> NetSpec:
    """ResNeSt-D as timm builds it (resnest.py): split attention with `radix` splits of one 3x3 conv
    per unit, d = make_divisible(C * radix / 4, 8) floored at 32, its layers grouped by cardinality,
    a sigmoid gate for radix 1, avd (after the conv, or first), ResNet-D's deep stem and
    average-pool shortcuts."""
    unit = Unit(
        branches=(Branch(kernel=3, dilation=1, groups=cardinality),) * radix,
        kind="split",
        gate="softmax" if radix > 1 else "sigmoid",
        split_input=True,
        width_rule="divisible",
        reduction=4,
        min_dim=32,
        divisor=8,
    )
    stages = resnext_stages(depths, cardinality, base_width)
    return NetSpec(stages=stages, unit=unit, deep_stem=True, avg_down=True, avd=True, avd_first=avd_first)


@dataclass(frozen=True)
class Preset:
    make: Callable[[], NetSpec]
    description: str


_SKNET = {"kernels": ("K3", "K5")}
_SHUFFLE_X0_5 = (48, 96, 192)
_SHUFFLE_X1_0 = (116, 232, 464)

PRESETS: dict[str, Preset] = {
    # ImageNet baselines (Table S9, Table 1/2)
    "resnet50": Preset(lambda: resnext((3, 4, 6, 3), 1, 64), "ResNet-50 (G=1)"),
    "resnet101": Preset(lambda: resnext((3, 4, 23, 3), 1, 64), "ResNet-101 (G=1)"),
    "resnet152": Preset(lambda: resnext((3, 8, 36, 3), 1, 64), "ResNet-152 (G=1)"),
    "resnext50_32x4d": Preset(lambda: resnext((3, 4, 6, 3)), "ResNeXt-50 (32x4d), Table 1"),
    "resnext101_32x4d": Preset(lambda: resnext((3, 4, 23, 3)), "ResNeXt-101 (32x4d), Table 2"),
    "seresnext50_32x4d": Preset(lambda: resnext((3, 4, 6, 3), se=True), "SENet-50: SE on ResNeXt-50"),
    "seresnext101_32x4d": Preset(lambda: resnext((3, 4, 23, 3), se=True), "SENet-101: SE on ResNeXt-101"),
    # SKNets: SK[M=2, G=32, r=16], L=32 (Table 1, Sec. 3.2)
    "sknet26": Preset(lambda: resnext((2, 2, 2, 2), **_SKNET), "SKNet-26, stages {2,2,2,2}"),
    "sknet50": Preset(lambda: resnext((3, 4, 6, 3), **_SKNET), "SKNet-50, Table 1"),
    "sknet101": Preset(lambda: resnext((3, 4, 23, 3), **_SKNET), "SKNet-101, stages {3,4,23,3}"),
    # Table 3: ResNeXt-50 with SKNet-50's budget spent on width, depth or cardinality (Appendix A)
    "resnext50_wider": Preset(
        _resnext50_wider, "ResNeXt-50 with 1/16 more channels in every bottleneck (34x4d, outputs x17/16)"
    ),
    "resnext56_deeper": Preset(
        lambda: resnext((3, 4, 8, 3)), "ResNeXt-56: 2 more units at the end of conv4_x (Appendix A)"
    ),
    "resnext50_36x4d": Preset(lambda: resnext((3, 4, 6, 3), 36, 4), "ResNeXt-50 with cardinality 36"),
    # Table 2's other rivals: CBAM after each unit, BAM between stages
    "resnext50_cbam": Preset(
        lambda: resnext((3, 4, 6, 3)).replace(attention_module="cbam"), "ResNeXt-50 + CBAM (timm's module), Table 2"
    ),
    "resnext101_cbam": Preset(
        lambda: resnext((3, 4, 23, 3)).replace(attention_module="cbam"), "ResNeXt-101 + CBAM (timm's module), Table 2"
    ),
    "resnext50_bam": Preset(lambda: resnext((3, 4, 6, 3)).replace(attention_module="bam"), "ResNeXt-50 + BAM, Table 2"),
    "resnext101_bam": Preset(
        lambda: resnext((3, 4, 23, 3)).replace(attention_module="bam"), "ResNeXt-101 + BAM, Table 2"
    ),
    # timm's SK ResNets and ResNeSt-D (weights copy across from timm: tests/test_family.py)
    "skresnet18": Preset(
        lambda: timm_skresnet((2, 2, 2, 2), "basic", reduction=8, divisor=16),
        "timm skresnet18: basic units, split input",
    ),
    "skresnet34": Preset(
        lambda: timm_skresnet((3, 4, 6, 3), "basic", reduction=8, divisor=16),
        "timm skresnet34: basic units, split input",
    ),
    "skresnet50": Preset(lambda: timm_skresnet((3, 4, 6, 3)), "timm skresnet50: G=1, split input"),
    "skresnext50_32x4d": Preset(
        lambda: resnext((3, 4, 6, 3), **_SKNET),
        "timm skresnext50_32x4d, which is SKNet-50: its d = make_divisible(C/16, 32) is max(C/16, 32) at every width",
    ),
    "resnest14d": Preset(lambda: resnest((1, 1, 1, 1)), "ResNeSt-14d (timm): radix 2, avd, deep stem, avg_down"),
    "resnest26d": Preset(lambda: resnest((2, 2, 2, 2)), "ResNeSt-26d (timm): radix 2, avd, deep stem, avg_down"),
    "resnest50d": Preset(lambda: resnest((3, 4, 6, 3)), "ResNeSt-50d (timm): radix 2, avd, deep stem, avg_down"),
    "resnest50d_4s2x40d": Preset(
        lambda: resnest((3, 4, 6, 3), radix=4, cardinality=2, base_width=40, avd_first=True),
        "ResNeSt-50d 4s2x40d (timm): radix 4 in 2 cardinal groups, avd first",
    ),
    "resnest50d_1s4x24d": Preset(
        lambda: resnest((3, 4, 6, 3), radix=1, cardinality=4, base_width=24, avd_first=True),
        "ResNeSt-50d 1s4x24d (timm): radix 1 (a sigmoid gate), 4 cardinal groups, avd first",
    ),
    # CIFAR (Table 5, Appendix D)
    "resnext29_16x32d": Preset(lambda: resnext((3, 3, 3), 16, 32, template="cifar"), "ResNeXt-29 16x32d"),
    "resnext29_8x64d": Preset(lambda: resnext((3, 3, 3), 8, 64, template="cifar"), "ResNeXt-29 8x64d"),
    "resnext29_16x64d": Preset(lambda: resnext((3, 3, 3), 16, 64, template="cifar"), "ResNeXt-29 16x64d"),
    "senet29": Preset(
        lambda: resnext((3, 3, 3), 16, 32, template="cifar", se=True), "SENet-29: SE on ResNeXt-29 16x32d"
    ),
    "sknet29": Preset(
        _sknet29,
        "SKNet-29: SK[2,16,32] on ResNeXt-29 16x32d, second path 1x1 (Appendix D)",
    ),
    # ShuffleNetV2 (Table 4, Appendix B)
    "shufflenetv2_x0_5": Preset(lambda: shufflenetv2(_SHUFFLE_X0_5), "ShuffleNetV2 0.5x, stages {4,6,6}"),
    "shufflenetv2_x1_0": Preset(lambda: shufflenetv2(_SHUFFLE_X1_0), "ShuffleNetV2 1.0x, stages {4,6,6}"),
    "shufflenetv2_x0_5_se": Preset(
        lambda: shufflenetv2(_SHUFFLE_X0_5, se=True), "ShuffleNetV2 0.5x + SE after each shuffle"
    ),
    "shufflenetv2_x1_0_se": Preset(
        lambda: shufflenetv2(_SHUFFLE_X1_0, se=True), "ShuffleNetV2 1.0x + SE after each shuffle"
    ),
    "shufflenetv2_x0_5_sk": Preset(
        lambda: shufflenetv2(_SHUFFLE_X0_5, sk=True), "ShuffleNetV2 0.5x + SK (M=2, K3/K5, r=4)"
    ),
    "shufflenetv2_x1_0_sk": Preset(
        lambda: shufflenetv2(_SHUFFLE_X1_0, sk=True), "ShuffleNetV2 1.0x + SK (M=2, K3/K5, r=4)"
    ),
}


def _add_table6_variants() -> None:
    """Table 6: SKNet-50 with the first branch fixed at 3x3 D=1 G=32 and five second branches."""
    for kernel, dilation, groups in ((3, 3, 32), (3, 2, 32), (3, 1, 32), (5, 1, 64), (7, 1, 128)):
        second = Branch(kernel=kernel, dilation=dilation, groups=groups)

        def make(second: Branch = second) -> NetSpec:
            spec = resnext((3, 4, 6, 3), kernels=("K3",))
            return spec.replace(unit=Unit(branches=(*spec.unit.branches, second)))

        PRESETS[f"sknet50_b2_{kernel}x{kernel}_d{dilation}_g{groups}"] = Preset(
            make, f"Table 6: SKNet-50, second branch {kernel}x{kernel} D={dilation} G={groups}"
        )


def _add_table7_variants() -> None:
    """Table 7: SKNet-50 over subsets of {K3, K5, K7}, summed ("no SK") or selected ("SK")."""
    subsets = (("K3",), ("K5",), ("K7",), ("K3", "K5"), ("K3", "K7"), ("K5", "K7"), ("K3", "K5", "K7"))
    for kernels in subsets:
        stem = "sknet50_" + "".join(name.lower() for name in kernels)
        modes = ((stem, False),) if len(kernels) == 1 else ((f"{stem}_sum", False), (f"{stem}_sk", True))
        for name, attention in modes:
            PRESETS[name] = Preset(
                lambda kernels=kernels, attention=attention: resnext(
                    (3, 4, 6, 3), kernels=kernels, attention=attention
                ),
                f"Table 7: SKNet-50 with {'+'.join(kernels)}, {'SK' if attention else 'summed'}",
            )


def _add_table_s8_variants() -> None:
    """Table S8: ShuffleNetV2 1.0x + SK with a ReLU after the K3 and/or K5 path."""
    for suffix, relu in (("relu_k3", (True, False)), ("relu_k5", (False, True)), ("relu_both", (True, True))):
        PRESETS[f"shufflenetv2_x1_0_sk_{suffix}"] = Preset(
            lambda relu=relu: shufflenetv2(_SHUFFLE_X1_0, sk=True, relu=relu),
            f"Table S8: ShuffleNetV2 1.0x + SK, ReLU in paths (K3, K5) = {relu}",
        )


_add_table6_variants()
_add_table7_variants()
_add_table_s8_variants()


def list_presets() -> list[str]:
    return list(PRESETS)


def preset(name: str, **overrides: Any) -> NetSpec:
    """The named spec, with top-level fields overridden (`preset("sknet50", num_classes=10)`)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `sksearch presets`"
        raise ConfigError("preset", f"unknown preset {name!r} ({hint})")
    spec = PRESETS[name].make()
    return spec.replace(**overrides) if overrides else spec
