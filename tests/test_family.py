"""The attention family equals timm's networks to the weight: timm's SK ResNets, ResNeSt-D and
ResNeXt + CBAM, random weights copied across, the same logits."""

import pytest
import torch

import sksearch
from sksearch.complexity import count
from tests.reference_weights import PARITY, copy_weights_by_order, randomise_batchnorm

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", list(PARITY))
def test_weights_copied_from_timm_give_the_same_logits(name):
    torch.manual_seed(0)
    reference = PARITY[name](timm).eval()
    randomise_batchnorm(reference)
    ours = sksearch.build(name).eval()
    assert count(name).params == sum(p.numel() for p in reference.parameters())
    copy_weights_by_order(reference, ours)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = reference(images), ours(images)
    assert expected.abs().max() > 1e-2  # the comparison is not between two zeros
    assert (expected - got).abs().max() < 1e-4


def test_timms_skresnext50_is_sknet50():
    assert sksearch.preset("skresnext50_32x4d") == sksearch.preset("sknet50")
