"""Seeded random valid specs over every knob, small enough for fvcore to trace quickly."""

import random

from sksearch import Branch, ConfigError, NetSpec, Stage, Unit
from sksearch.spec import ATTENTION_MODULES, DEPTHWISE, GATES, KINDS, WIDTH_RULES

INPUT_SIZES = {"imagenet": (32, 48, 65), "cifar": (16, 32, 33), "shufflenetv2": (32, 57, 64)}
MAX_STAGES = {"imagenet": 4, "cifar": 3, "shufflenetv2": 3}


def random_branch(rng: random.Random) -> Branch:
    return Branch(
        kernel=rng.choice((1, 3, 3, 5, 7)),
        dilation=rng.choice((1, 1, 2, 3)),
        groups=rng.choice((1, 2, 4, 8, DEPTHWISE)),
        relu=rng.random() < 0.7,
    )


def random_unit(rng: random.Random) -> Unit:
    kind = rng.choice(KINDS)
    branches = tuple(random_branch(rng) for _ in range(rng.randint(1, 4)))
    if kind == "split":  # radix splits are copies of one branch
        branches = (branches[0],) * len(branches)
    attention = rng.random() < 0.7
    return Unit(
        branches=branches,
        attention=attention,
        reduction=rng.choice((1, 2, 4, 16)),
        min_dim=rng.choice((1, 4, 8, 32)),
        kind=kind,
        gate=rng.choice(GATES) if attention else "softmax",
        split_input=rng.random() < 0.3,
        width_rule=rng.choice(WIDTH_RULES),
        divisor=rng.choice((4, 8, 16)),
        fuse_bn=rng.random() < 0.7,
    )


def _draw(rng: random.Random, template: str) -> NetSpec:
    """Widths are multiples of 16 (so every group count above divides them, split or not: mostly)."""
    stages = tuple(
        Stage(depth=rng.randint(1, 3), width=16 * rng.randint(1, 4), out_width=16 * rng.randint(1, 6))
        for _ in range(rng.randint(1, MAX_STAGES[template]))
    )
    bottleneck = template != "shufflenetv2"
    block = rng.choice(("bottleneck", "basic")) if bottleneck else "bottleneck"
    se = rng.random() < 0.3
    avd = bottleneck and block == "bottleneck" and rng.random() < 0.5
    return NetSpec(
        template=template,
        stages=stages,
        unit=random_unit(rng),
        se=se,
        se_reduction=rng.choice((2, 4, 16)),
        num_classes=rng.choice((5, 10)),
        stem_width=16 * rng.randint(1, 3),
        head_width=rng.choice((0, 64)) if template == "shufflenetv2" else 0,
        input_size=rng.choice(INPUT_SIZES[template]),
        block=block,
        attention_module="none" if se else rng.choice(ATTENTION_MODULES),
        attention_stages=tuple(s for s in range(1, len(stages) + 1) if rng.random() < 0.6) or None,
        deep_stem=template == "imagenet" and rng.random() < 0.4,
        avg_down=bottleneck and rng.random() < 0.4,
        avd=avd,
        avd_first=avd and rng.random() < 0.5,
    )


def random_spec(rng: random.Random, template: str | None = None) -> NetSpec:
    """The first valid draw (knobs that exclude each other are drawn again, from the same stream)."""
    template = template or rng.choice(("imagenet", "cifar", "shufflenetv2"))
    while True:
        try:
            return _draw(rng, template)
        except ConfigError:
            continue
