"""The analytic counter against fvcore, the paper's tables, and the `count` / `paper` verbs."""

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch

import sksearch
from sksearch.cli import main
from sksearch.complexity import count
from sksearch.paper import GMACS_TOLERANCE, PARAMS_TOLERANCE_M, UNREACHABLE, complexity_table, render_markdown
from tests.random_specs import random_spec

ROOT = Path(__file__).parents[1]
RANDOM_SPECS = [random_spec(random.Random(seed)) for seed in range(60)]


def test_random_specs_cover_every_knob():
    assert {s.template for s in RANDOM_SPECS} == {"imagenet", "cifar", "shufflenetv2"}
    assert {s.num_branches for s in RANDOM_SPECS} == {1, 2, 3, 4}
    assert {s.unit.selects for s in RANDOM_SPECS} == {True, False}
    assert {s.se for s in RANDOM_SPECS} == {True, False}
    assert len({b.dilation for s in RANDOM_SPECS for b in s.unit.branches}) == 3
    assert len({s.input_size for s in RANDOM_SPECS}) >= 6
    # the family's knobs (docs/api.md: The spec)
    units = [s.unit for s in RANDOM_SPECS if s.unit.selects]
    assert {(u.kind, u.gate) for u in units} == {("sk", "softmax"), ("sk", "sigmoid"), ("split", "softmax"),
                                                 ("split", "sigmoid")}  # fmt: skip
    assert {u.width_rule for u in units} == {"paper", "divisible", "fixed"} and {u.fuse_bn for u in units} == {
        True,
        False,
    }
    assert {s.unit.split_input for s in RANDOM_SPECS} == {True, False}
    assert {s.block for s in RANDOM_SPECS} == {"bottleneck", "basic"}
    assert {s.attention_module for s in RANDOM_SPECS} == {"none", "cbam", "bam"}
    assert any(s.attention_stages for s in RANDOM_SPECS) and any(s.avd_first for s in RANDOM_SPECS)
    assert all(any(getattr(s, knob) for s in RANDOM_SPECS) for knob in ("deep_stem", "avg_down", "avd"))


QUICK_SPECS = 20  # the quick loop's share of the random specs; the full suite counts all 60


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(spec, marks=[pytest.mark.slow] * (i >= QUICK_SPECS), id=f"seed{i}")
        for i, spec in enumerate(RANDOM_SPECS)
    ],
)
def test_analytic_equals_fvcore_on_random_specs(spec):
    analytic, traced = count(spec), count(spec, "fvcore")
    assert (analytic.params, analytic.macs, analytic.activations) == (
        traced.params,
        traced.macs,
        traced.activations,
    )
    assert analytic.parts == traced.parts
    assert analytic.params == sum(p.numel() for p in sksearch.build(spec).parameters())


@pytest.mark.parametrize(
    "name", ["sknet50", "seresnext50_32x4d", "shufflenetv2_x1_0_sk", "sknet29", "resnext56_deeper"]
)
def test_analytic_equals_fvcore_on_presets(name):
    analytic, traced = count(name), count(name, "fvcore")
    assert (analytic.params, analytic.macs, analytic.parts) == (traced.params, traced.macs, traced.parts)
    # fvcore's own total adds BN and adaptive pooling on top of the MACs
    assert traced.fvcore_flops > traced.macs and traced.elementwise_flops > 0


def test_input_size_changes_macs_not_params():
    at_224, at_320 = count("sknet50"), count("sknet50", input_size=320)
    assert at_224.params == at_320.params
    assert at_320.macs > 2 * at_224.macs
    assert count("sknet50", "fvcore", input_size=96).macs == count("sknet50", input_size=96).macs


def test_fvcore_counts_are_cached_by_archid():
    spec = sksearch.preset("sknet26", num_classes=3)
    first = count(spec, "fvcore", input_size=40)
    same_network = spec.replace(input_size=77)  # a different spec value, the same archid
    assert count(same_network, "fvcore", input_size=40) is first


def test_fvcore_count_is_quiet(capfd):
    count(sksearch.preset("sknet26", num_classes=4), "fvcore", input_size=33)
    captured = capfd.readouterr()
    assert "nsupported" not in captured.err + captured.out


def test_unknown_method_is_a_config_error():
    with pytest.raises(sksearch.ConfigError, match=r"^method: must be one of analytic, fvcore"):
        count("sknet50", "exact")


def test_known_macs_of_torchvision_resnext50():
    # torchvision's resnext50_32x4d: 4.2305 GMACs of conv + linear at 224 (fvcore on torchvision)
    assert count("resnext50_32x4d").macs == 4_230_479_872


# -- the paper ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_table():
    return complexity_table()


def test_every_built_row_is_within_tolerance_or_documented(paper_table):
    readme = (ROOT / "docs/paper.md").read_text()
    outside = paper_table[~paper_table["within_tolerance"]]
    assert set(outside["model"]) == set(UNREACHABLE)  # no undocumented miss, no stale excuse
    for model, reason in UNREACHABLE.items():
        assert reason and f"`{model}`" in readme
    inside = paper_table[paper_table["within_tolerance"]]
    assert (inside["params_diff_m"].abs() <= PARAMS_TOLERANCE_M).all()
    assert (inside["gmacs_diff"].dropna().abs() <= GMACS_TOLERANCE).all()


def test_paper_table_covers_tables_1_to_7_and_s9(paper_table):
    assert set(paper_table["table"]) == {"T1", "T2", "T3", "T4", "T5", "T6", "T7", "S9"}
    assert (paper_table["table"] == "T7").sum() == 11
    assert (paper_table["table"] == "T6").sum() == 5


def test_committed_paper_report_is_current(paper_table):
    committed = pd.read_csv(ROOT / "results/paper/complexity.csv", dtype=str, keep_default_na=False)
    fresh = pd.read_csv(pd.io.common.StringIO(paper_table.to_csv(index=False)), dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(committed, fresh)
    assert (ROOT / "results/paper/complexity.md").read_text() == render_markdown(paper_table)


# -- the verbs ----------------------------------------------------------------------------------


def test_count_verb_prints_both_methods_and_json(capsys):
    assert main(["count", "sknet26", "--method", "both", "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "analytic" in out and "fvcore" in out and "stage4" in out
    assert main(["count", "sknet50", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["analytic"]["params"] == 27_479_784
    assert payload["archid"] == sksearch.preset("sknet50").archid


def test_count_verb_reads_spec_files(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(sksearch.preset("sknet29").to_yaml())
    assert main(["count", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["analytic"]["params"] == 27_813_450


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["count", "sknet5"], "sksearch count: error: preset: unknown preset 'sknet5'"),
        (["count", "sknet50", "--input-size", "0"], "argument --input-size: must be >= 1, got 0"),
        (["count", "sknet50", "--method", "guess"], "argument --method: invalid choice"),
        (["count", "missing.yaml"], "sksearch count: error: missing.yaml: cannot read"),
        # activations far beyond any machine's memory: refused with the figure, before tracing
        (["count", "sknet50", "--method", "fvcore", "--input-size", "100000"], "GiB of activations to trace"),
        (["paper", "--out", __file__], "argument --out: " + __file__ + " is a file, not a folder"),
    ],
)
def test_count_verb_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        raise SystemExit(main(argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_count_verb_rejects_an_invalid_spec_file(tmp_path, capsys):
    data = sksearch.preset("sknet50").to_dict()
    data["unit"]["branches"][0]["groups"] = 48
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(data))
    assert main(["count", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"sksearch count: error: {path}: unit.branches[0].groups: 48 does not divide stages[0].width=128\n"
    )


def test_paper_verb_writes_csv_and_markdown(tmp_path, capsys):
    assert main(["paper", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "complexity.csv").exists() and (tmp_path / "complexity.md").exists()
    assert "## T7" in capsys.readouterr().out


def test_forward_matches_counted_output_resolution():
    """The analytic walk and the real network agree on the final feature map size."""
    for spec in RANDOM_SPECS[:12]:
        model = sksearch.build(spec).eval()
        with torch.no_grad():
            features = model.forward_features(torch.zeros(1, 3, spec.input_size, spec.input_size))
        head = count(spec).parts[-1]
        assert features.shape[1] == spec.features_width
        assert head.macs == spec.features_width * spec.num_classes + (
            spec.stages[-1].out_width * spec.head_width * features.shape[2] * features.shape[3]
        )


def test_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    verbs = ("presets", "spec", "count", "paper", "train", "prepare", "sweep", "resume", "extend", "repair", "status", "plan",
             "space",
             "results",
             "pareto", "compare", "table", "export", "plot", "attention")  # fmt: skip
    assert all(f"    {verb} " in text for verb in verbs) and "95% intervals" in text


def test_every_option_has_help_and_a_bare_command_lists_the_verbs(capsys):
    import argparse

    from sksearch.cli import build_parser

    def undocumented(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from undocumented(sub, [*prefix, name])
            elif not action.help:
                yield " ".join([*prefix, action.dest])

    assert list(undocumented(build_parser(), [])) == []
    assert main([]) == 2
    assert "    sweep " in capsys.readouterr().out


def test_a_folder_is_not_a_model(tmp_path, capsys):
    assert main(["count", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err == f"sksearch count: error: {tmp_path}: is a folder, not a preset name or a spec file\n"
    )
