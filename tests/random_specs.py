"""Seeded random valid specs over every knob, small enough for fvcore to trace quickly."""

import random

from sksearch import Branch, NetSpec, Stage, Unit
from sksearch.spec import DEPTHWISE

INPUT_SIZES = {"imagenet": (32, 48, 65), "cifar": (16, 32, 33), "shufflenetv2": (32, 57, 64)}
MAX_STAGES = {"imagenet": 4, "cifar": 3, "shufflenetv2": 3}


def random_branch(rng: random.Random) -> Branch:
    return Branch(
        kernel=rng.choice((1, 3, 3, 5, 7)),
        dilation=rng.choice((1, 1, 2, 3)),
        groups=rng.choice((1, 2, 4, 8, DEPTHWISE)),
        relu=rng.random() < 0.7,
    )


def random_spec(rng: random.Random, template: str | None = None) -> NetSpec:
    """Widths are multiples of 16 (so every group count above divides them)."""
    template = template or rng.choice(("imagenet", "cifar", "shufflenetv2"))
    stages = tuple(
        Stage(depth=rng.randint(1, 3), width=16 * rng.randint(1, 4), out_width=16 * rng.randint(1, 6))
        for _ in range(rng.randint(1, MAX_STAGES[template]))
    )
    unit = Unit(
        branches=tuple(random_branch(rng) for _ in range(rng.randint(1, 4))),
        attention=rng.random() < 0.7,
        reduction=rng.choice((1, 2, 4, 16)),
        min_dim=rng.choice((1, 4, 8, 32)),
    )
    return NetSpec(
        template=template,
        stages=stages,
        unit=unit,
        se=rng.random() < 0.4,
        se_reduction=rng.choice((2, 4, 16)),
        num_classes=rng.choice((5, 10)),
        stem_width=16 * rng.randint(1, 3),
        head_width=rng.choice((0, 64)) if template == "shufflenetv2" else 0,
        input_size=rng.choice(INPUT_SIZES[template]),
    )
