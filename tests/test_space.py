"""Search spaces: the paper's tables, sampling, Ray/Optuna adapters, constraints, malformed files."""

import textwrap
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from ray.tune.search.variant_generator import generate_variants

import sksearch
from sksearch.cli import main
from sksearch.paper import GMACS_TOLERANCE, PARAMS_TOLERANCE_M, published
from sksearch.recipes import recipe_from
from sksearch.search import Rejected, load_space, parse_space

SPACES = Path(__file__).parents[1] / "spaces"
SHIPPED = sorted(SPACES.glob("*.yaml"))


def paper_rows(table):
    frame = published()
    return frame[frame["table"] == table]


@pytest.mark.parametrize("table", ["T6", "T7"])
def test_enumerating_table6_and_table7_yields_exactly_the_paper_rows(table):
    space = load_space(SPACES / f"table{table[1]}.yaml")
    draw = space.enumerate()
    rows = paper_rows(table)
    expected = {
        sksearch.preset(model).archid: row for model, row in zip(rows["model"], rows.to_dict("records"), strict=True)
    }
    assert {candidate.archid for candidate in draw} == set(expected)
    assert len(draw) == len(rows)
    for candidate in draw:
        row = expected[candidate.archid]
        assert abs(candidate.complexity.params_m - float(row["params_m"])) <= PARAMS_TOLERANCE_M
        assert abs(candidate.complexity.gmacs - float(row["gflops"])) <= GMACS_TOLERANCE


def test_table7_dedupes_the_single_branch_rows():
    draw = load_space(SPACES / "table7.yaml").enumerate()
    assert draw.attempts == 14 and len(draw) == 11
    assert draw.rejected == {"duplicate": 3}


def test_table3_is_compute_matched_to_sknet50():
    space = load_space(SPACES / "table3.yaml")
    target = sksearch.complexity.count("sknet50").gmacs
    draw = space.enumerate()
    assert len(draw) == 8
    for candidate in draw:
        assert abs(candidate.complexity.gmacs - target) <= 0.01 * target
    sk = [c for c in draw if c.knobs == {"branches": "K3+K5", "depths": "3,4,6,3", "cardinality": 32}]
    assert sk[0].archid == sksearch.preset("sknet50").archid and sk[0].width_match == 1.0
    deeper = [c for c in draw if c.knobs["depths"] == "3,4,8,3"]
    assert all(c.width_match < 1 for c in deeper)  # two more units leave less width for the budget


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_space_loads_and_runs_under_the_smoke_recipe(path):
    space = load_space(path)
    draw = space.sample(3, seed=0) if not space.finite else space.enumerate()
    assert len(draw) >= 1
    smoke = recipe_from("smoke")
    for candidate in list(draw)[:3]:
        small = smoke.adapt(candidate.spec, num_classes=smoke.classes)
        model = sksearch.build(small).eval()
        with torch.no_grad():
            logits = model(torch.randn(2, 3, smoke.image_size, smoke.image_size))
        assert logits.shape == (2, smoke.classes)


def test_sampling_is_reproducible_by_seed_and_distinct():
    space = load_space(SPACES / "sknet50.yaml")
    first, again, other = space.sample(20, seed=3), space.sample(20, seed=3), space.sample(20, seed=4)
    assert [c.archid for c in first] == [c.archid for c in again]
    assert [c.archid for c in first] != [c.archid for c in other]
    assert len({c.archid for c in first}) == 20
    assert first.rejected["max_gmacs"] > 0  # the budget does reject some draws
    assert all(c.complexity.gmacs <= 5.0 for c in first)


def test_branch_scoped_knobs_exist_only_for_existing_branches():
    space = load_space(SPACES / "sknet50.yaml")
    for candidate in space.sample(30, seed=1):
        knobs = candidate.knobs
        present = {int(name.split("_")[1]) for name in knobs if name.startswith("branch_")}
        assert present == set(range(knobs["num_branches"]))
        assert candidate.spec.num_branches == knobs["num_branches"]


def test_len_counts_points_and_continuous_spaces_refuse_to_enumerate():
    assert len(load_space(SPACES / "table7.yaml")) == 14
    assert len(load_space(SPACES / "shufflenet.yaml")) == 12  # M=1: 2x2, M=2: 2x2x2
    continuous = load_space(SPACES / "sknet50.yaml")
    with pytest.raises(TypeError, match="float range"):
        len(continuous)
    with pytest.raises(sksearch.ConfigError, match="cannot be enumerated"):
        continuous.enumerate()


def test_ray_and_optuna_adapters_give_identical_specs():
    space = load_space(SPACES / "shufflenet.yaml")
    # Ray has no conditional knobs: relu_1 varies even with one branch, and point_of drops it there
    ray_configs = [config for _, config in generate_variants(space.to_tune())]
    assert len(ray_configs) == 16
    points = {tuple(space.point_of(config).items()) for config in ray_configs}
    assert points == {c.point for c in space.enumerate()}
    for config in ray_configs:
        point = space.point_of(config)
        fixed = {"branch_1", "attention"}
        trial = optuna.trial.FixedTrial({name: value for name, value in point.items() if name not in fixed})
        constants = space.suggest(trial)
        assert set(constants) == fixed & set(point)
        assert "relu_1" in trial.params or point["num_branches"] == 1
        assert space.spec_for({**trial.params, **constants}) == space.spec_for(config)


def test_optuna_define_by_run_over_a_conditional_space():
    """A real study: categoricals keep their value sets, so Optuna never complains."""
    space = load_space(SPACES / "sknet50.yaml")
    specs = []

    def objective(trial):
        constants = space.suggest(trial)
        try:
            candidate = space.candidate({**trial.params, **constants})
        except Rejected:  # infeasible (over budget): prune, as the sweep does
            raise optuna.TrialPruned() from None
        specs.append(candidate.spec)
        assert ("branch_3" in trial.params) == (trial.params["num_branches"] == 4)
        return candidate.complexity.gmacs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    study.optimize(objective, n_trials=25)
    assert len(specs) >= 10
    ray_domains = space.to_tune()
    assert set(ray_domains) == {knob.name for knob in space.knobs}


def test_optuna_and_sampling_share_the_point_to_spec_mapping():
    space = load_space(SPACES / "sknet50.yaml")
    for candidate in space.sample(5, seed=9):
        trial = optuna.trial.FixedTrial(candidate.knobs)
        constants = space.suggest(trial)
        assert space.spec_for({**trial.params, **constants}) == candidate.spec


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_groups_rule_reject_or_snap(tmp_path):
    body = """
        base: sknet50
        knobs:
          groups_1: {grid: [32, 48]}
        groups_rule: {rule}
    """
    rejecting = load_space(write(tmp_path, body.replace("{rule}", "reject")))
    draw = rejecting.enumerate()
    assert len(draw) == 1 and draw.rejected == {"invalid groups_1": 1}
    snapping = load_space(write(tmp_path, body.replace("{rule}", "snap")))
    snapped = snapping.enumerate()
    assert len(snapped) == 2
    widths = [stage.width for stage in snapped[1].spec.stages]
    assert widths == [96, 288, 480, 1056] and all(w % 96 == 0 for w in widths)


def test_constraints_bound_params_and_gmacs(tmp_path):
    path = write(
        tmp_path,
        """
        base: sknet50
        knobs:
          width_multiplier: {grid: [0.5, 1.0, 1.5]}
        constraints: {min_gmacs: 2.0, max_params_m: 40}
        """,
    )
    draw = load_space(path).enumerate()
    assert [c.knobs["width_multiplier"] for c in draw] == [1.0]
    assert draw.rejected == {"min_gmacs": 1, "max_params_m": 1}


def test_cardinality_keeps_the_per_group_width(tmp_path):
    path = write(tmp_path, "base: resnext50_32x4d\nknobs:\n  cardinality: 36\n")
    (candidate,) = load_space(path).enumerate()
    assert candidate.archid == sksearch.preset("resnext50_36x4d").archid


def test_inline_base_and_recipe_overrides(tmp_path):
    spec = sksearch.preset("sknet29").to_dict()
    space = parse_space({"base": spec, "recipe": {"preset": "cifar", "dataset": "cifar100", "epochs": 10}})
    assert space.base == sksearch.preset("sknet29")
    assert space.recipe.epochs == 10 and space.recipe.base_lr() == 0.05  # CIFAR-100's rate (Appendix D)
    assert parse_space({"base": {"preset": "sknet50", "num_classes": 10}}).base.num_classes == 10


MALFORMED = [
    ("base: sknet50\nknobz: {}\n", "knobz: unknown key"),
    ("knobs: {}\n", "base: is required"),
    ("base: sknet5\n", "base.preset: unknown preset 'sknet5'"),
    ("base: {stages: [{depth: 0, width: 8, out_width: 8}]}\n", "base.stages[0].depth: must be >= 1"),
    ("base: sknet50\nknobs:\n  colour: red\n", "knobs.colour: unknown knob"),
    ("base: sknet50\nknobs:\n  reduction: {choice: [8, 0]}\n", "knobs.reduction.choice[1]: must be >= 1, got 0"),
    ("base: sknet50\nknobs:\n  reduction: {choice: []}\n", "knobs.reduction.choice: must be a non-empty list"),
    ("base: sknet50\nknobs:\n  attention: {int: [0, 1]}\n", "knobs.attention.int: attention does not take a int range"),
    ("base: sknet50\nknobs:\n  min_dim: {int: [64, 8]}\n", "knobs.min_dim.int: low must not exceed high"),
    (
        "base: sknet50\nknobs:\n  min_dim: {float: [8, 64]}\n",
        "knobs.min_dim.float: min_dim does not take a float range",
    ),
    ("base: sknet50\nknobs:\n  reduction: {choice: [8], grid: [4]}\n", "knobs.reduction: must be a value or a mapping"),
    ("base: sknet50\nknobs:\n  reduction: {choice: [8, 8]}\n", "knobs.reduction.choice: lists a value twice"),
    ("base: sknet50\nknobs:\n  branch_1: {choice: [K3, K9]}\n", "knobs.branch_1.choice[1]: unknown branch option 'K9'"),
    ("base: sknet50\nknobs:\n  num_branches: {choice: [2, 3]}\n", "knobs.branch_2: is required"),
    ("base: sknet50\nknobs:\n  relu_4: false\n", "knobs.relu_4: branch 4 does not exist"),
    ("base: sknet50\nknobs:\n  branches: [K3, K5]\n  num_branches: 2\n", "knobs.branches: cannot be combined"),
    ("base: sknet50\nknobs:\n  depths: {choice: ['3,4,6']}\n", "knobs.depths.choice[0]: must list 4 stage depths"),
    ("base: sknet50\nknobs:\n  depth_7: 2\n", "knobs.depth_7: stage 7 does not exist (the base has 4)"),
    (
        "base: sknet50\nknobs:\n  width_multiplier: {float: [0, 2]}\n",
        "knobs.width_multiplier.float[0]: must be > 0, got 0",
    ),
    (
        "base: sknet50\nknobs:\n  min_dim: {choice: [8], log: true}\n",
        "knobs.min_dim.log: applies to int and float ranges",
    ),
    ("base: sknet50\ngroups_rule: round\n", "groups_rule: must be one of reject, snap"),
    ("base: sknet50\nconstraints: {max_gflops: 4}\n", "constraints.max_gflops: unknown key"),
    ("base: sknet50\nconstraints: {min_gmacs: 5, max_gmacs: 4}\n", "constraints.min_gmacs: must not exceed max_gmacs"),
    (
        "base: sknet50\nconstraints: {compute_matched: {tolerance: 0.1}}\n",
        "constraints.compute_matched.target: is required",
    ),
    ("base: sknet50\nrecipe: smok\n", "recipe: unknown recipe 'smok' (did you mean smoke?)"),
    ("base: sknet50\nrecipe: {preset: smoke, epochs: 0}\n", "recipe.epochs: must be >= 1, got 0"),
    ("base: sknet50\nrecipe: {preset: smoke, optimiser: adam}\n", "recipe.optimiser: unknown recipe key"),
    ("base: sknet50\nsearch: {algorithm: bayes}\n", "search.algorithm: must be one of grid, random, tpe, nsga2"),
    (
        "base: sknet50\nsearch: {objectives: [top1_err:min, flops:min]}\n",
        "search.objectives[1]: unknown metric 'flops'",
    ),
    ("base: sknet50\nsearch: {objectives: [top1_err:up]}\n", "search.objectives[0]: mode must be min or max"),
    ("base: sknet50\nbranch_options: {wide: {kernel: 4}}\n", "branch_options.wide.kernel: must be odd"),
    (
        "base: shufflenetv2_x1_0\nknobs:\n  cardinality: 8\n",
        "knobs.cardinality: needs a base with an integer group count",
    ),
    ("base: sknet50\nname: my space\n", "name: must be letters, digits"),
    ("- just\n- a list\n", "must be a mapping, got list"),
    ("base: [sknet50\n", "not valid YAML"),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED, ids=[m.split(":")[0] for _, m in MALFORMED])
def test_malformed_spaces_each_name_file_key_and_reason(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(sksearch.ConfigError) as caught:
        load_space(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: "), text
    assert message in text, text
    assert "\n" not in text


def test_malformed_space_through_the_cli_is_one_line_and_exit_2(tmp_path, capsys):
    path = write(tmp_path, "base: sknet50\nknobs:\n  reduction: {choice: [8, 0]}\n")
    assert main(["space", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"sksearch space: error: {path}: knobs.reduction.choice[1]: must be >= 1, got 0\n"
    assert main(["space", "show", str(tmp_path / "none.yaml")]) == 2


def test_space_verbs(tmp_path, capsys):
    assert main(["space", "show", str(SPACES / "table7.yaml")]) == 0
    out = capsys.readouterr().out
    assert "points: 14; 11 distinct feasible" in out and "feasible GMACs 4.2305 .. 4.6943" in out
    assert main(["space", "sample", str(SPACES / "sknet50.yaml"), "-n", "4", "--seed", "2"]) == 0
    assert "4 distinct feasible" in capsys.readouterr().out
    out_csv = tmp_path / "t6.csv"
    assert main(["space", "enumerate", str(SPACES / "table6.yaml"), "--out", str(out_csv)]) == 0
    table = pd.read_csv(out_csv)
    assert list(table["branch_1"]) == ["K7", "K5", "K3", "g64_5x5", "g128_7x7"]
    assert list(table.columns[:2]) == ["archid", "branch_1"]


def test_point_for_finds_known_networks_and_refuses_others():
    space = load_space(SPACES / "sknet50.yaml")
    for name in ("sknet50", "resnext50_32x4d", "sknet50_k3k5k7_sk"):
        point = space.point_for(sksearch.preset(name))
        assert point is not None and space.spec_for(point).archid == sksearch.preset(name).archid
    assert space.point_for(sksearch.preset("sknet101")) is None  # 23 units in conv4_x: outside depth_2's range
    table7 = load_space(SPACES / "table7.yaml")
    assert table7.point_for(sksearch.preset("sknet50_k3k7_sum")) == {"branches": "K3+K7", "attention": False}


def test_recipe_knobs_change_the_training_not_the_network():
    space = parse_space({"base": "sknet26", "knobs": {"lr": {"grid": [0.1, 0.05]}, "epochs": 3}, "recipe": "smoke"})
    draw = space.enumerate()
    assert len(draw) == 2 and draw[0].archid == draw[1].archid  # same network, two trainings
    assert [space.recipe_for(c.knobs).lr for c in draw] == [0.1, 0.05]
    assert space.recipe_for(draw[0].knobs).epochs == 3


# -- knobs that address the spec ----------------------------------------------------------------


def test_a_knob_may_name_a_spec_path():
    space = parse_space(
        {
            "base": "sknet50",
            "knobs": {"unit.branches[1].dilation": {"choice": [1, 2, 3]}, "stages[2].depth": {"int": [3, 8]}},
        }
    )
    draw = space.enumerate()
    assert len(space) == 18 and len(draw) == 18 and not draw.rejected
    seen = {(c.spec.unit.branches[1].dilation, c.spec.stages[2].depth) for c in draw}
    assert seen == {(d, depth) for d in (1, 2, 3) for depth in range(3, 9)}
    for candidate in draw:  # every other field is the base's
        assert candidate.spec.replace(stages=space.base.stages, unit=space.base.unit) == space.base
        assert candidate.spec.unit.branches[0] == space.base.unit.branches[0]
        assert space.point_for(candidate.spec) == candidate.knobs  # read back from the path, no lookup


def test_named_knobs_are_shortcuts_of_spec_paths():
    by_name = parse_space({"base": "sknet50", "knobs": {"groups_1": 16, "depth_2": 4, "reduction": 8}})
    by_path = parse_space(
        {"base": "sknet50", "knobs": {"unit.branches[1].groups": 16, "stages[2].depth": 4, "unit.reduction": 8}}
    )
    assert by_name.enumerate()[0].spec == by_path.enumerate()[0].spec
    spec = by_name.enumerate()[0].spec
    assert (spec.unit.branches[1].groups, spec.stages[2].depth, spec.unit.reduction) == (16, 4, 8)


def test_a_rejected_point_names_the_knob_as_written():
    space = parse_space({"base": "sknet50", "knobs": {"unit.branches[1].groups": {"grid": [32, 48]}}})
    assert space.enumerate().rejected == {"invalid unit.branches[1].groups": 1}
    with pytest.raises(Rejected, match=r"^invalid unit.branches\[1\].groups: unit.branches\[1\].groups: 48 does not"):
        space.candidate({"unit.branches[1].groups": 48})
    shortcut = parse_space(
        {
            "base": "sknet50",
            "branch_options": {"g48": {"kernel": 3, "groups": 48}},
            "knobs": {"branches": {"grid": ["K3+K5", "K3+g48"]}},
        }
    )
    assert shortcut.enumerate().rejected == {"invalid branches": 1}


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"stages[4].depth": 3}, "knobs.stages[4].depth: stage 4 does not exist (the base has 4)"),
        ({"unit.branches[1].colour": 3}, "knobs.unit.branches[1].colour: unknown knob"),
        ({"unit.branches[2].kernel": 5}, "knobs.unit.branches[2].kernel: branch 2 does not exist"),
        ({"unit.branches[0].kernel": {"choice": [3, 4]}}, None),  # an even kernel: rejected per point, not here
        ({"groups_1": 16, "unit.branches[1].groups": 8}, "sets unit.branches[1].groups, as knob groups_1 does"),
        ({"depths": "3,4,6,3", "stages[0].depth": 2}, "knobs.depths: cannot be combined"),
        ({"unit.attention": {"int": [0, 1]}}, "knobs.unit.attention.int: unit.attention does not take a int range"),
    ],
)
def test_spec_path_knobs_are_checked_when_the_space_is_read(knobs, message):
    if message is None:
        assert parse_space({"base": "sknet50", "knobs": knobs}).enumerate().rejected == {
            "invalid unit.branches[0].kernel": 1
        }
        return
    with pytest.raises(sksearch.ConfigError) as caught:
        parse_space({"base": "sknet50", "knobs": knobs})
    assert message in str(caught.value)


def test_spec_path_knobs_reach_optuna_and_ray_tune():
    space = parse_space({"base": "sknet50", "knobs": {"unit.branches[1].dilation": {"choice": [1, 3]}}})
    trial = optuna.trial.FixedTrial({"unit.branches[1].dilation": 3})
    space.suggest(trial)
    assert space.spec_for(trial.params).unit.branches[1].dilation == 3
    configs = [config for _, config in generate_variants(space.to_tune())]
    assert {space.spec_for(config).unit.branches[1].dilation for config in configs} <= {1, 3}


def test_asking_a_finite_space_for_more_networks_than_it_holds_returns_them_all_at_once():
    space = load_space(SPACES / "table7.yaml")
    draw = space.sample(1_000_000, seed=3)
    assert len(draw) == 11 and {c.archid for c in draw} == {c.archid for c in space.enumerate()}
    assert draw.summary().endswith("asked for 1000000: the space holds 11 distinct feasible networks")
    assert [c.archid for c in draw] == [c.archid for c in space.sample(1_000_000, seed=3)]  # still seeded
    assert len(space.sample(5, seed=3)) == 5  # fewer than the space holds: drawn as before


def test_space_verbs_refuse_what_they_cannot_do_in_one_line(tmp_path, capsys):
    assert main(["space", "enumerate", str(SPACES / "sknet50.yaml")]) == 2
    assert "a float range cannot be enumerated; sample the space instead" in capsys.readouterr().err
    empty = write(tmp_path, "base: sknet50\nknobs:\n  reduction: {grid: [8, 16]}\nconstraints: {max_gmacs: 0.1}\n")
    assert main(["space", "show", str(empty)]) == 2  # as `sweep` refuses it
    err = capsys.readouterr().err
    assert err.startswith("sksearch space: error: knobs: no feasible network in space space:") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["space", "show"], ["space", "sample"], ["count"], ["sweep"], ["train"], ["spec"]])
def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path, capsys, argv):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"\x00\xff\xfe")
    assert main([*argv, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: is not UTF-8 text (byte 0xff at offset 1)" in err, err
    assert not (tmp_path / "results").exists()


def test_sk_family_is_compute_matched_and_every_member_trains_a_step_under_the_proxy():
    space = load_space(SPACES / "sk_family.yaml")
    target = sksearch.complexity.count("sknet50").gmacs
    draw = space.enumerate()
    assert [c.knobs["preset"] for c in draw] == list(space.knobs[0].values) and len(draw) == 7
    assert all(abs(c.complexity.gmacs - target) <= 0.02 * target for c in draw)
    resnest = next(c for c in draw if c.knobs["preset"] == "resnest50d")
    assert resnest.width_match < 1 and resnest.spec.unit.kind == "split" and resnest.spec.avd  # only widths change
    proxy = recipe_from("proxy")
    for candidate in draw:
        model = sksearch.build(proxy.adapt(candidate.spec, num_classes=proxy.classes))
        loss = model(torch.randn(4, 3, proxy.image_size, proxy.image_size)).logsumexp(1).mean()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters()), candidate.knobs["preset"]


def test_preset_and_attention_stages_knobs(tmp_path):
    path = tmp_path / "family.yaml"
    path.write_text(
        textwrap.dedent("""
        base: sknet50
        knobs:
          preset: {grid: [sknet50, resnest50d]}
          attention_stages: {grid: [all, "3,4", [4]]}
          unit.gate: {grid: [softmax, sigmoid]}
    """)
    )
    space = load_space(path)
    draw = space.enumerate()
    assert len(draw) == 12
    picked = space.spec_for({"preset": "resnest50d", "attention_stages": "3,4", "unit.gate": "sigmoid"})
    expected = sksearch.preset("resnest50d")
    expected = expected.replace(attention_stages=(3, 4), unit=expected.unit.__class__(**{
        **expected.unit.__dict__, "gate": "sigmoid"}))  # fmt: skip
    assert picked == expected
    assert space.point_for(sksearch.preset("resnest50d")) == {
        "preset": "resnest50d", "attention_stages": "all", "unit.gate": "softmax"}  # fmt: skip
    trial = optuna.trial.FixedTrial({"preset": "sknet50", "attention_stages": "4", "unit.gate": "softmax"})
    constants = space.suggest(trial)
    assert space.spec_for({**trial.params, **constants}).attention_stages == (4,)


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ("preset: {grid: [sknet50, resnext50]}", "knobs.preset.grid[1]: unknown preset 'resnext50'"),
        ("preset: sknet50\n  branches: {grid: [K3, K3+K5]}", "knobs.preset: sets the whole network"),
        ("attention_stages: {grid: [all, '3,x']}", "knobs.attention_stages.grid[1][1]: must be an integer"),
        ("unit.kind: {grid: [sk, splat]}", "knobs.unit.kind.grid[1]: must be one of sk, split"),
        ("avd: {grid: [maybe]}", "knobs.avd.grid[0]: must be true or false"),
    ],
)
def test_family_knob_errors_name_the_knob_and_exit_2(tmp_path, capsys, knobs, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"base: sknet50\nknobs:\n  {knobs}\n")
    assert main(["space", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_an_invalid_family_combination_is_rejected_as_its_knob():
    space = parse_space({"base": "sknet50", "knobs": {"unit.kind": {"grid": ["sk", "split"]}}})
    draw = space.enumerate()
    assert len(draw) == 1 and draw.rejected == {"invalid unit.branches[1]": 1}  # K3 and K5 are no radix splits


def test_every_scalar_field_of_the_spec_is_a_knob_by_its_path():
    """Knob paths and types come from NetSpec's dataclass fields: a field added to the spec is a
    knob without a second list to edit; fields marked `knob: False` are refused as knobs."""
    import dataclasses
    import re

    from sksearch.search.knobs import read_path
    from sksearch.search.spacefile import parse_space
    from sksearch.spec import Branch, NetSpec, Stage, Unit

    base = sksearch.preset("sknet50")
    data = base.to_dict()
    scopes = {"stages[1].": Stage, "unit.branches[1].": Branch, "unit.": Unit, "": NetSpec}
    checked = 0
    for prefix, scope in scopes.items():
        for spec_field in dataclasses.fields(scope):
            value = read_path(data, prefix + spec_field.name)
            if isinstance(value, (dict, list, tuple)) or value is None:
                continue  # a structure, not one value
            path = prefix + spec_field.name
            if spec_field.metadata.get("knob", True):
                space = parse_space({"base": "sknet50", "knobs": {path: value}})
                assert space.knobs[0].type.path == path
                checked += 1
            else:
                with pytest.raises(sksearch.ConfigError, match=f"knobs.{re.escape(path)}: unknown knob"):
                    parse_space({"base": "sknet50", "knobs": {path: value}})
    assert checked >= 25
