"""The SK family against timm, to the weight: for each preset timm also builds, the parameter counts
and the largest logit difference after timm's (random) weights are copied into ours.

Goal: equal parameters and max |logit difference| < 1e-4 for every preset.

    .venv/bin/python benchmarks/family_parity.py [--size 224]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm
import torch

import sksearch

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.reference_weights import PARITY, copy_weights_by_order, randomise_batchnorm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="input resolution")
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randn(2, 3, args.size, args.size)
    print(f"timm {timm.__version__}, torch {torch.__version__}, batch 2 at {args.size}px, fp32, eval mode")
    print(f"{'preset':22s} {'params ours':>12s} {'params timm':>12s} {'max |logit|':>12s} {'max |diff|':>11s}")
    for name, make in PARITY.items():
        reference = make(timm).eval()
        randomise_batchnorm(reference)
        ours = sksearch.build(name).eval()
        copy_weights_by_order(reference, ours)
        with torch.no_grad():
            expected, got = reference(images), ours(images)
        ours_params = sum(p.numel() for p in ours.parameters())
        timm_params = sum(p.numel() for p in reference.parameters())
        print(f"{name:22s} {ours_params:12,d} {timm_params:12,d} {expected.abs().max():12.3f} "
              f"{(expected - got).abs().max():11.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
