"""NetSpec: validation with field paths, exact round-trips, archid identity."""

import dataclasses
import pickle

import pytest
import yaml

import sksearch
from sksearch import Branch, ConfigError, NetSpec, Stage, Unit
from sksearch.cli import main


def sknet50_dict():
    return sksearch.preset("sknet50").to_dict()


def test_every_preset_round_trips_through_dict_and_yaml():
    for name in sksearch.list_presets():
        spec = sksearch.preset(name)
        assert NetSpec.from_dict(spec.to_dict()) == spec, name
        assert NetSpec.from_yaml(spec.to_yaml()) == spec, name
        assert NetSpec.from_yaml(spec.to_yaml()).archid == spec.archid


def test_archid_ignores_key_order_and_spelled_out_defaults():
    minimal = {
        "stages": [{"out_width": 256, "width": 128, "depth": 3}],
        "unit": {"branches": [{"kernel": 3}, {"dilation": 2, "kernel": 3}]},
    }
    spelled_out = {
        "template": "imagenet",
        "num_classes": 1000,
        "unit": {
            "min_dim": 32,
            "reduction": 16,
            "attention": True,
            "branches": [
                {"kernel": 3, "dilation": 1, "groups": 32, "relu": True},
                {"groups": 32, "relu": True, "kernel": 3, "dilation": 2},
            ],
        },
        "stages": [{"depth": 3, "width": 128, "out_width": 256}],
        "stem_width": 64,
        "input_size": 224,
    }
    assert NetSpec.from_dict(minimal) == NetSpec.from_dict(spelled_out)
    assert NetSpec.from_dict(minimal).archid == NetSpec.from_dict(spelled_out).archid


def test_archid_is_short_stable_and_tracks_the_network():
    spec = sksearch.preset("sknet50")
    assert len(spec.archid) == 10 and spec.archid == sksearch.preset("sknet50").archid
    assert spec.archid != sksearch.preset("resnext50_32x4d").archid
    assert spec.archid != spec.replace(num_classes=10).archid
    # the same weights evaluated at 320 are the same network (Table 2)
    assert spec.archid == spec.replace(input_size=320).archid


def test_archid_ignores_knobs_that_cannot_change_the_network():
    summed = sksearch.preset("sknet50_k3k5_sum")
    assert summed.archid == summed.replace(unit=Unit(summed.unit.branches, False, 4, 8)).archid
    single = sksearch.preset("resnext50_32x4d")
    assert single.archid == single.replace(unit=Unit(single.unit.branches, True, 2, 64)).archid
    assert single.archid == single.replace(se_reduction=4).archid
    assert single.replace(se=True).archid != single.replace(se=True, se_reduction=4).archid


def test_specs_are_hashable_values():
    assert len({sksearch.preset("sknet50"), sksearch.preset("sknet50")}) == 1


def test_template_defaults_are_resolved():
    spec = NetSpec(template="cifar", stages=(Stage(1, 64, 64),))
    assert (spec.stem_width, spec.head_width, spec.input_size) == (64, 0, 32)
    shuffle = NetSpec(template="shufflenetv2", stages=(Stage(1, 24, 48),), unit=Unit((Branch(groups=1),)))
    assert (shuffle.stem_width, shuffle.head_width) == (24, 1024)


def test_receptive_kernel_follows_table6():
    assert [Branch(3, d).receptive_kernel for d in (1, 2, 3)] == [3, 5, 7]


def _with(path, value):
    """sknet50 as a dict with one value replaced; path is a list of keys / indices."""
    data = sknet50_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()

INVALID = [
    (["unit", "branches", 0, "kernel"], 4, "unit.branches[0].kernel: must be odd"),
    (["unit", "branches", 1, "kernel"], 0, "unit.branches[1].kernel: must be >= 1"),
    (["unit", "branches", 1, "dilation"], 0, "unit.branches[1].dilation: must be >= 1, got 0"),
    (
        ["unit", "branches", 0, "groups"],
        48,
        "unit.branches[0].groups: 48 does not divide stages[0].width=128",
    ),
    (["unit", "branches", 0, "groups"], "dw", "unit.branches[0].groups: must be an integer or 'depthwise'"),
    (["unit", "branches", 0, "relu"], "yes", "unit.branches[0].relu: must be true or false"),
    (["unit", "branches"], [], "unit.branches: must list at least one branch"),
    (["unit", "reduction"], 0, "unit.reduction: must be >= 1"),
    (["unit", "min_dim"], -3, "unit.min_dim: must be >= 1"),
    (["unit", "attention"], 1, "unit.attention: must be true or false"),
    (["stages", 1, "depth"], 0, "stages[1].depth: must be >= 1"),
    (["stages", 0, "depth"], "3", "stages[0].depth: must be an integer, got '3'"),
    (["stages", 2, "width"], 2.5, "stages[2].width: must be an integer"),
    (["stages", 0, "out_width"], DELETE, "stages[0].out_width: is required"),
    (["stages", 0, "widht"], 3, "stages[0].widht: unknown key"),
    (["stages"], [], "stages: must list at least one stage"),
    (["stages"], {"depth": 3}, "stages: must be a list"),
    (["template"], "mobilenet", "template: must be one of imagenet, cifar, shufflenetv2"),
    (["num_classes"], 0, "num_classes: must be >= 1"),
    (["se_reduction"], 0, "se_reduction: must be >= 1"),
    (["input_size"], True, "input_size: must be an integer"),
    (["stem_width"], 0, "stem_width: must be >= 1"),
    (["colour"], "red", "colour: unknown key"),
]
# The SK family's knobs, alone and in combinations that cannot be built (sknet50 is the base).
SK_FAMILY_INVALID = [
    ({"unit": {"kind": "split"}}, "unit.branches[1]: differs from branches[0]: split attention's radix splits"),
    ({"unit": {"kind": "resnest"}}, "unit.kind: must be one of sk, split"),
    ({"unit": {"gate": "sigmoid", "attention": False}}, "unit.gate: sigmoid gates the attention, and attention is off"),
    ({"unit": {"gate": "tanh"}}, "unit.gate: must be one of softmax, sigmoid"),
    ({"unit": {"split_input": True, "branches": [{"groups": 32}] * 3}}, "unit.split_input: M=3 does not divide"),
    ({"unit": {"split_input": True, "branches": [{"groups": 128}] * 2}},
     "unit.branches[0].groups: 128 does not divide the 64 input channels of each branch"),
    ({"unit": {"split_input": True, "branches": [{"groups": "depthwise"}] * 2}},
     "unit.split_input: cannot split the input of a depthwise branch"),
    ({"unit": {"width_rule": "timm"}}, "unit.width_rule: must be one of paper, divisible, fixed"),
    ({"unit": {"divisor": 0}}, "unit.divisor: must be >= 1"),
    ({"unit": {"fuse_bn": "no"}}, "unit.fuse_bn: must be true or false"),
    ({"unit": {"kind": "split", "branches": [{"groups": 32}] * 2, "width_rule": "fixed", "min_dim": 40}},
     "unit.min_dim: split attention's width 40 at stages[0].width=128 is not a multiple of its groups 32"),
    ({"avd": True, "template": "shufflenetv2"}, "avd: belongs to bottleneck units"),
    ({"avd": True, "block": "basic"}, "avd: belongs to bottleneck units"),
    ({"avd": True, "template": "cifar", "stages": [{"depth": 1, "width": 128, "out_width": 256}]},
     "avd: takes a unit's stride, and no unit has one"),
    ({"avd_first": True}, "avd_first: places the avd pool, and avd is off"),
    ({"deep_stem": True, "template": "cifar"}, "deep_stem: replaces the imagenet template's 7x7 stem"),
    ({"deep_stem": True, "stem_width": 63}, "stem_width: must be even with deep_stem"),
    ({"se": True, "attention_module": "cbam"}, "attention_module: cbam and se are alternatives"),
    ({"attention_module": "eca"}, "attention_module: must be one of none, cbam, bam"),
    ({"attention_module": "bam", "stages": [{"depth": 1, "width": 128, "out_width": 256}]},
     "attention_module: bam sits between stages, and there is one stage"),
    ({"block": "basic", "template": "shufflenetv2"}, "block: basic blocks belong to the imagenet and cifar"),
    ({"attention_stages": [5]}, "attention_stages[0]: stage 5 does not exist (the network has 4)"),
    ({"attention_stages": [0]}, "attention_stages[0]: must be >= 1"),
    ({"attention_stages": 3}, "attention_stages: must be a list of stage numbers"),
]  # fmt: skip


def _family_case(changes: dict) -> dict:
    data = sknet50_dict()
    unit = changes.get("unit", {})
    data.update({key: value for key, value in changes.items() if key != "unit"})
    data["unit"].update({key: value for key, value in unit.items() if key != "branches"})
    if "branches" in unit:
        data["unit"]["branches"] = [{"kernel": 3, "dilation": 1, **b} for b in unit["branches"]]
    return data


@pytest.mark.parametrize(("changes", "message"), SK_FAMILY_INVALID, ids=[m.split(":")[0] for _, m in SK_FAMILY_INVALID])
def test_invalid_sk_family_combinations_name_the_field(changes, message):
    with pytest.raises(ConfigError) as caught:
        NetSpec.from_dict(_family_case(changes))
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("changes", "message"), SK_FAMILY_INVALID[:4], ids=[m.split(":")[0] for _, m in SK_FAMILY_INVALID[:4]]
)
def test_invalid_sk_family_spec_file_exits_2_with_one_line(tmp_path, capsys, changes, message):
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(_family_case(changes)))
    assert main(["count", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "Traceback" not in err


def test_family_knobs_at_their_defaults_keep_the_first_versions_archids():
    spec = sksearch.preset("sknet50")
    assert spec.archid == "9287a201bf"  # as committed results (results/) name it
    assert NetSpec.from_dict(spec.to_dict()) == spec and "split_input" in spec.to_dict()["unit"]
    every_stage = spec.replace(attention_stages=(4, 1, 2, 3, 3))
    assert every_stage.attention_stages is None and every_stage.archid == spec.archid
    fewer = spec.replace(attention_stages=(4, 3))
    assert fewer.attention_stages == (3, 4) and fewer.archid != spec.archid
    assert NetSpec.from_yaml(fewer.to_yaml()) == fewer
    plain = sksearch.preset("resnext50_32x4d")  # no selection: the attention's knobs cannot matter
    no_gate = dataclasses.replace(plain.unit, fuse_bn=False, width_rule="fixed", kind="split")
    assert plain.replace(unit=no_gate).archid == plain.archid
    assert spec.replace(unit=dataclasses.replace(spec.unit, fuse_bn=False)).archid != spec.archid


def test_timm_width_rule_rounds_as_make_divisible():
    unit = Unit((Branch(), Branch(dilation=2)), width_rule="divisible", reduction=16, divisor=8, min_dim=8)
    assert [unit.attention_dim(c) for c in (64, 100, 128, 2048)] == [8, 8, 8, 128]
    assert Unit((Branch(), Branch(dilation=2)), width_rule="divisible", reduction=8, divisor=16,
                min_dim=16).attention_dim(72) == 16  # fmt: skip
    split = Unit((Branch(groups=1),) * 2, kind="split", width_rule="divisible", reduction=4, min_dim=32)
    assert [split.attention_dim(c) for c in (64, 128, 512)] == [32, 64, 256]  # C * radix / 4, floor 32
    assert Unit((Branch(),) * 2, width_rule="fixed", min_dim=24).attention_dim(512) == 24
    assert Unit((Branch(),), gate="sigmoid").selects and not Unit((Branch(),)).selects


@pytest.mark.parametrize(("path", "value", "message"), INVALID, ids=[m.split(":")[0] for *_, m in INVALID])
def test_invalid_spec_names_the_field(path, value, message):
    with pytest.raises(ConfigError) as caught:
        NetSpec.from_dict(_with(path, value))
    assert str(caught.value).startswith(message), str(caught.value)
    crossed = pickle.loads(pickle.dumps(caught.value))  # as a Ray trial's error reaches the driver
    assert isinstance(crossed, ConfigError) and (crossed.path, str(crossed)) == (caught.value.path, str(caught.value))


def test_shufflenet_rules():
    base = sksearch.preset("shufflenetv2_x1_0").to_dict()
    base["stages"][0]["out_width"] = 117
    with pytest.raises(ConfigError, match=r"^stages\[0\].out_width: must be even"):
        NetSpec.from_dict(base)
    grouped = sksearch.preset("shufflenetv2_x1_0").to_dict()
    grouped["unit"]["branches"][0]["groups"] = 29  # divides width 58 but not the stem's 24 channels
    with pytest.raises(ConfigError, match=r"^unit.branches\[0\].groups: 29 does not divide stem_width=24"):
        NetSpec.from_dict(grouped)


def test_non_mapping_and_bad_yaml():
    with pytest.raises(ConfigError, match="must be a mapping"):
        NetSpec.from_dict([1, 2])
    with pytest.raises(ConfigError, match="not valid YAML"):
        NetSpec.from_yaml("stages: [\n")


def test_read_spec_prefixes_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    data = sknet50_dict()
    data["unit"]["branches"][1]["dilation"] = 0
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        sksearch.read_spec(path)
    assert str(caught.value) == f"{path}: unit.branches[1].dilation: must be >= 1, got 0"
    with pytest.raises(ConfigError, match="cannot read"):
        sksearch.read_spec(tmp_path / "missing.yaml")


def test_direct_construction_validates_too():
    with pytest.raises(ConfigError, match=r"^kernel: must be odd"):
        Branch(kernel=2)
    with pytest.raises(ConfigError, match=r"^unit.branches\[0\].groups"):
        NetSpec(stages=(Stage(1, 30, 64),), unit=Unit((Branch(groups=32),)))


def test_replace_and_preset_overrides_reject_unknown_fields():
    assert sksearch.preset("sknet50", num_classes=10).num_classes == 10
    with pytest.raises(ConfigError, match=r"^width_multiplier: unknown spec field"):
        sksearch.preset("sknet50", width_multiplier=2)
    with pytest.raises(ConfigError, match=r"^preset: unknown preset 'sknet5'.*did you mean"):
        sksearch.preset("sknet5")


def test_from_yaml_takes_text_or_a_path(tmp_path):
    spec = sksearch.preset("sknet26")
    path = tmp_path / "net.yaml"
    path.write_text(spec.to_yaml())
    assert NetSpec.from_yaml(spec.to_yaml()) == NetSpec.from_yaml(path) == NetSpec.from_yaml(str(path)) == spec
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read"):
        NetSpec.from_yaml(str(tmp_path / "missing.yaml"))


def test_the_validator_names_the_field_and_suggests_a_close_key():
    with pytest.raises(ConfigError, match=r"^unit.reductoin: unknown key \(did you mean reduction\?\)$"):
        NetSpec.from_dict({**sksearch.preset("sknet26").to_dict(), "unit": {"reductoin": 8}})
    with pytest.raises(ConfigError, match=r"^width_multiplier: must be > 0, got -1$"):
        sksearch.preset("sknet26").scaled(-1)
