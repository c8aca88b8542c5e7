"""The builder: torchvision equivalence, every preset runs, SK units behave as the paper says."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models.resnet import Bottleneck as TorchvisionBottleneck
from torchvision.models.resnet import ResNet

import sksearch
from sksearch import Stage
from sksearch.complexity import count
from sksearch.layers import SKConv
from tests.reference_weights import copy_weights_by_order, randomise_batchnorm

SMALL_INPUT = {"imagenet": 64, "cifar": 32, "shufflenetv2": 64}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


TORCHVISION_TWINS = [
    ("resnext50_32x4d", {}, torchvision.models.resnext50_32x4d),
    # torchvision has no resnext101_32x4d builder; its ResNet class makes the same network
    (
        "resnext101_32x4d",
        {},
        lambda: ResNet(TorchvisionBottleneck, [3, 4, 23, 3], groups=32, width_per_group=4),
    ),
    ("resnet50", {}, torchvision.models.resnet50),
    # torchvision's ShuffleNetV2 has stages {4,8,4}; the paper re-implemented it with {4,6,6}
    (
        "shufflenetv2_x1_0",
        {"stages": (Stage(4, 58, 116), Stage(8, 116, 232), Stage(4, 232, 464))},
        torchvision.models.shufflenet_v2_x1_0,
    ),
]


@pytest.mark.parametrize(("name", "overrides", "factory"), TORCHVISION_TWINS, ids=[t[0] for t in TORCHVISION_TWINS])
def test_matches_torchvision_exactly(name, overrides, factory):
    torch.manual_seed(0)
    reference = factory().eval()
    randomise_batchnorm(reference)
    ours = sksearch.build(name, **overrides).eval()
    assert n_params(ours) == n_params(reference)
    copy_weights_by_order(reference, ours)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = reference(images), ours(images)
    assert expected.abs().max() > 0.1  # the comparison is not between two near-zero outputs
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_weighted_sum_gradients_match_the_plain_expression():
    from sksearch.layers import WeightedSum

    weights = torch.softmax(torch.randn(2, 3, 5, 1, 1, dtype=torch.double), dim=1).requires_grad_()
    features = [torch.randn(2, 5, 4, 4, dtype=torch.double, requires_grad=True) for _ in range(3)]
    assert torch.autograd.gradcheck(WeightedSum.apply, (weights, *features))
    plain = sum(weights[:, m] * features[m] for m in range(3))
    torch.testing.assert_close(WeightedSum.apply(weights, *features), plain)


@pytest.mark.parametrize("name", sksearch.list_presets())
def test_every_preset_builds_and_runs(name):
    spec = sksearch.preset(name, num_classes=7)
    size = SMALL_INPUT[spec.template]
    model = sksearch.build(spec).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    assert count(spec).params == n_params(model)


def test_sknet50_is_the_paper_table1_network():
    model = sksearch.build("sknet50")
    units = [list(stage) for stage in model.stages]
    assert [len(stage) for stage in units] == [3, 4, 6, 3]
    sk_convs = [m for m in model.modules() if isinstance(m, SKConv)]
    assert len(sk_convs) == 16
    for stage, width, dim in zip(units, (128, 256, 512, 1024), (32, 32, 32, 64), strict=True):
        sk = stage[0].conv2
        assert [p.conv.dilation for p in sk.paths] == [(1, 1), (2, 2)]
        assert [p.conv.groups for p in sk.paths] == [32, 32]
        assert [p.conv.kernel_size for p in sk.paths] == [(3, 3), (3, 3)]
        assert sk.paths[0].conv.in_channels == width
        assert sk.attention.reduce.conv.out_channels == dim  # d = max(C/16, 32)
        assert sk.attention.select.out_channels == 2 * width
        assert sk.attention.select.bias is None and sk.attention.reduce.conv.bias is None
    # the stride of a downsampling unit sits on the branch convs
    assert units[1][0].conv2.paths[0].conv.stride == (2, 2)
    assert units[1][0].conv1.conv.stride == (1, 1)
    assert n_params(model) == 27_479_784


def test_attention_weights_are_recorded_on_request_and_sum_to_one():
    model = sksearch.build("sknet26", num_classes=5).eval()
    images = torch.randn(3, 3, 64, 64)
    with sksearch.record_attention(model) as weights, torch.no_grad():
        model(images)
    assert list(weights) == [f"SK_{s}_{u}" for s in (2, 3, 4, 5) for u in (1, 2)]
    for label, value in weights.items():
        channels = 128 * 2 ** (int(label.split("_")[1]) - 2)
        assert value.shape == (3, 2, channels)
        torch.testing.assert_close(value.sum(dim=1), torch.ones(3, channels))
    assert all(not m._forward_hooks for m in model.modules())  # nothing left behind


def test_attention_records_three_branches_and_shufflenet_units():
    model = sksearch.build("sknet50_k3k5k7_sk").eval()
    with sksearch.record_attention(model) as weights, torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert weights["SK_3_4"].shape == (1, 3, 256)
    shuffle = sksearch.build("shufflenetv2_x0_5_sk").eval()
    with sksearch.record_attention(shuffle) as weights, torch.no_grad():
        shuffle(torch.randn(2, 3, 64, 64))
    assert {"SK_2_1", "SK_2_1b", "SK_4_6"} <= set(weights)
    assert weights["SK_2_1b"].shape == (
        2,
        2,
        24,
    )  # the stride-2 unit's second path, on the stem's 24 channels


def test_selection_output_is_the_attention_weighted_sum():
    sk = sksearch.build("sknet50").stages[0][0].conv2.eval()
    x = torch.randn(2, 128, 8, 8)
    with sksearch.record_attention(sk) as weights, torch.no_grad():
        out = sk(x)
        branches = [path(x) for path in sk.paths]
    attention = weights["SK_2_1"][..., None, None]
    torch.testing.assert_close(out, attention[:, 0] * branches[0] + attention[:, 1] * branches[1])


def test_unselected_units_sum_their_branches_and_single_branches_are_plain_convs():
    summed = sksearch.build("sknet50_k3k5_sum").stages[0][0].conv2.eval()
    assert summed.attention is None
    x = torch.randn(1, 128, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(summed(x), summed.paths[0](x) + summed.paths[1](x))
    plain = sksearch.build("resnext50_32x4d", unit=sksearch.preset("sknet50_k3").unit).stages[0][0].conv2
    assert plain.attention is None and len(plain.paths) == 1


def test_zero_init_last_bn_and_kaiming_init():
    model = sksearch.build("resnext50_32x4d", zero_init_last_bn=True)
    assert all(unit.conv3.bn.weight.abs().sum() == 0 for stage in model.stages for unit in stage)
    default = sksearch.build("resnext50_32x4d")
    assert all(unit.conv3.bn.weight.min() == 1 for stage in default.stages for unit in stage)
    conv = default.stem[0].conv.weight
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert abs(conv.std().item() - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5


def test_build_accepts_presets_specs_dicts_files_and_overrides(tmp_path):
    spec = sksearch.preset("sknet29")
    assert sksearch.build(spec).spec == spec
    assert sksearch.build(spec.to_dict()).spec == spec
    (tmp_path / "net.yaml").write_text(spec.to_yaml())
    assert sksearch.build(tmp_path / "net.yaml").spec == spec == sksearch.build(str(tmp_path / "net.yaml")).spec
    assert sksearch.count(str(tmp_path / "net.yaml")) == sksearch.count("sknet29")
    model = sksearch.create_model("sknet29", num_classes=100)
    assert model.fc.out_features == 100
    with pytest.raises(sksearch.ConfigError, match=r"^num_clases: unknown spec field"):
        sksearch.build("sknet29", num_clases=100)


def test_the_sk_layer_takes_plain_arguments():
    """As timm's SelectiveKernel: kernels, dilations, groups and d as numbers, no spec needed."""
    layer = SKConv(16, kernel_size=(3, 3, 5), dilation=(1, 2, 1), groups=(4, 4, 16), act=(True, True, False),
                   attention_dim=8, stride=2).eval()  # fmt: skip
    convs = [path.conv for path in layer.paths]
    assert [(c.kernel_size, c.dilation, c.groups, c.stride) for c in convs] == [
        ((3, 3), (1, 1), 4, (2, 2)), ((3, 3), (2, 2), 4, (2, 2)), ((5, 5), (1, 1), 16, (2, 2))
    ]  # fmt: skip
    assert layer.attention.reduce.conv.out_channels == 8
    assert layer(torch.randn(2, 16, 8, 8)).shape == (2, 16, 4, 4)
    assert SKConv(16, 16, (3, 3), (1, 2), (4, 4), (True, True), attention_dim=None).attention is None
    built = sksearch.build("sknet50").stages[0][0].conv2  # the builder maps the spec onto the same layer
    assert [p.conv.dilation for p in built.paths] == [(1, 1), (2, 2)] and built.attention.reduce.conv.out_channels == 32


def test_the_public_api_is_listed_and_importable():
    assert "count" in sksearch.__all__ and "load_space" in sksearch.__all__
    for name in sksearch.__all__:
        assert getattr(sksearch, name) is not None


def test_import_and_build_need_no_ray_optuna_or_fvcore():
    code = (
        "import sys, sksearch, sksearch.search; sksearch.build('sknet26', num_classes=3); "
        "sksearch.load_space('spaces/table7.yaml').enumerate(); "
        "bad = [m for m in ('ray', 'optuna', 'fvcore') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
