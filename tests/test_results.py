"""Results: Pareto fronts, hypervolume, knee, paper tables, export, plots, attention analysis."""

import io
import json
import shutil
import socket
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import sksearch
from sksearch.cli import main
from sksearch.complexity import count
from sksearch.results import (
    hypervolume,
    knee,
    load_export,
    paper_table,
    pareto,
    render_paper_table,
    seed_means,
)
from sksearch.runfiles import TRIALS
from sksearch.schema import COLUMNS, FRONT_SIZES, knob_columns, network_names, parse_objectives, role_of
from sksearch.search import plan_sweep, run_sweep
from tests.pictures import drawn, title

SPACES = Path(__file__).parents[1] / "spaces"


def trials(rows):
    """A hand-made results table: (archid, seed, top1_err, gmacs[, status])."""
    records = []
    for index, (archid, seed, error, gmacs, *status) in enumerate(rows):
        records.append(
            {
                "trial_id": f"t{index}",
                "archid": archid,
                "seed": seed,
                "top1_err": error,
                "gmacs": gmacs,
                "status": status[0] if status else "completed",
                "recipe_json": json.dumps({"seed": seed}),
            }
        )
    return pd.DataFrame(records)


MIN_MIN = [("top1_err", "min"), ("gmacs", "min")]


def test_pareto_known_answer():
    frame = trials(
        [("a", 0, 20.0, 4.0), ("b", 0, 22.0, 3.0), ("c", 0, 25.0, 2.0), ("d", 0, 23.0, 3.5), ("e", 0, 30.0, 2.5)]
    )
    front = pareto(frame, MIN_MIN)
    assert list(front["archid"]) == ["a", "b", "c"]  # d is dominated by b, e by c


def test_pareto_keeps_ties_and_drops_nan_and_failed_trials():
    frame = trials(
        [
            ("a", 0, 20.0, 4.0),
            ("twin", 0, 20.0, 4.0),
            ("b", 0, 22.0, 3.0),
            ("nan", 0, float("nan"), 1.0),
            ("broken", 0, 1.0, 1.0, "failed"),
            ("halted", 0, 2.0, 0.5, "stopped"),
        ]
    )
    front = pareto(frame, MIN_MIN)
    assert sorted(front["archid"]) == ["a", "b", "twin"]


def test_pareto_on_seed_means_with_std_and_n():
    frame = trials([("a", 0, 20.0, 4.0), ("a", 1, 22.0, 4.0), ("a", 2, 24.0, 4.0), ("b", 0, 21.0, 5.0)])
    points = seed_means(frame, MIN_MIN)
    a = points[points["archid"] == "a"].iloc[0]
    assert (a["top1_err"], a["top1_err_std"], a["n"]) == (22.0, 2.0, 3)
    assert sorted(a["trial_ids"]) == ["t0", "t1", "t2"]
    assert set(pareto(frame, MIN_MIN)["archid"]) == {"a", "b"}  # b is more accurate on its one seed, but costlier


def test_pareto_maximised_objectives_and_three_objectives():
    frame = trials([("a", 0, 20.0, 4.0), ("b", 0, 22.0, 3.0)])
    frame["images_per_s"] = [100.0, 50.0]
    assert list(pareto(frame, [("top1_err", "min"), ("images_per_s", "max")])["archid"]) == ["a"]
    front = pareto(frame, [("top1_err", "min"), ("gmacs", "min"), ("images_per_s", "max")])
    assert sorted(front["archid"]) == ["a", "b"]


def test_hypervolume_against_known_values():
    front = pd.DataFrame({"top1_err": [1.0, 2.0, 3.0], "gmacs": [3.0, 2.0, 1.0]})
    # staircase below (4, 4): 3x1 + 2x1 + 1x1
    assert hypervolume(front, MIN_MIN, [4.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume(front, MIN_MIN, [2.5, 2.5]) == pytest.approx(0.25)  # only (2, 2) is inside: 0.5 x 0.5
    cube = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0], "c": [0.0, 0.0]})
    objectives = [("a", "min"), ("b", "min"), ("c", "min")]
    assert hypervolume(cube, objectives, [2.0, 2.0, 1.0]) == pytest.approx(3.0)  # two 2x1x1 boxes overlapping in 1
    maximised = pd.DataFrame({"top1_err": [1.0], "acc": [5.0]})
    assert hypervolume(maximised, [("top1_err", "min"), ("acc", "max")], [3.0, 1.0]) == pytest.approx(8.0)


def test_knee_is_the_point_nearest_the_ideal():
    front = pd.DataFrame({"top1_err": [10.0, 11.0, 20.0], "gmacs": [9.0, 2.0, 1.0]})
    assert knee(front, MIN_MIN) == 1


def test_objective_names_are_checked():
    frame = trials([("a", 0, 20.0, 4.0)])
    with pytest.raises(sksearch.ConfigError, match=r"^--objectives\[1\]: no column 'flops'"):
        parse_objectives("top1_err:min,flops:min", "--objectives", frame, FRONT_SIZES)
    with pytest.raises(sksearch.ConfigError, match=r"^--objectives\[0\]: mode must be min or max"):
        parse_objectives("top1_err:low,gmacs", "--objectives", frame, FRONT_SIZES)
    with pytest.raises(sksearch.ConfigError, match="takes 2 or 3 objectives"):
        parse_objectives("top1_err", "--objectives", frame, FRONT_SIZES)
    with pytest.raises(sksearch.ConfigError, match=r"^--objectives\[0\]: column 'archid' is not numeric"):
        parse_objectives("archid,gmacs", "--objectives", frame, FRONT_SIZES)


# -- on a real sweep ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, local_ray):
    storage = tmp_path_factory.mktemp("sweeps")
    settings = {"epochs": 2, "train_samples": 128, "val_samples": 64, "batch_size": 32}
    plan = plan_sweep(SPACES / "table7.yaml", recipe="smoke", settings=settings, storage=str(storage), seeds=[0, 1])
    # two table rows of Table 7 only, to stay quick: K3+K5 summed and selected
    data = dict(plan.space_data)
    data["knobs"] = {"branches": {"grid": ["K3+K5"]}, "attention": {"grid": [False, True]}}
    plan = plan_sweep(
        _write_space(storage, data),
        recipe="smoke",
        settings=settings,
        storage=str(storage),
        seeds=[0, 1],
        name="t7",
    )
    run_sweep(plan, progress=False)
    return storage / "t7"


def _write_space(folder, data):
    import yaml

    path = folder / "t7.yaml"
    data = {**data, "recipe": "smoke"}
    path.write_text(yaml.safe_dump(data))
    return path


def test_results_verb_merges_filters_and_formats(sweep_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    assert main(["results", str(sweep_dir), f"{sweep_dir}/"]) == 2  # one sweep twice would double its rows
    assert "is given twice" in capsys.readouterr().err
    assert (
        main(
            [
                "results",
                str(sweep_dir),
                str(copy),
                "--where",
                "attention == True",
                "--format",
                "csv",
                "--out",
                str(tmp_path / "t.csv"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == 4 and set(table["attention"]) == {True}  # 2 seeds, in two sweeps
    capsys.readouterr()
    assert main(["results", str(sweep_dir), "--sort", "top1_err:desc", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["top1_err"] for r in rows] == sorted((r["top1_err"] for r in rows), reverse=True)


def test_pareto_verb_on_a_sweep_with_plot(sweep_dir, tmp_path, capsys):
    assert (
        main(
            [
                "pareto",
                str(sweep_dir),
                "--objectives",
                "top1_err:min,gmacs:min",
                "--plot",
                str(tmp_path / "front.png"),
                "--reference",
                "100,5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "of 2 networks (4 completed trials)" in out and "reference point (100, 5)" in out and "knee:" in out
    panel, paper = drawn(tmp_path / "front.png")  # the paper's ImageNet rows on a panel of their own
    assert panel["xlabel"] == "top-1 error (%)"
    assert panel["ylabel"].startswith("GMACs: % above 4.46")  # SK adds 0.2% of MACs: drawn as such
    assert {"networks (mean over seeds)", "Pareto front (bars: 1 std over seeds)"} <= set(panel["legend"])
    assert panel["title"].startswith("sweep t7, recipe smoke: 2 networks") and "ImageNet" in paper["title"]


def test_paper_table_shows_missing_rows_as_missing(sweep_dir, tmp_path):
    frame = pd.read_parquet(sweep_dir / TRIALS)
    table = paper_table(frame, "table7")
    assert len(table) == 11
    ran = table[table["status"] == "run"]
    assert set(ran["model"]) == {"sknet50_k3k5_sum", "sknet50_k3k5_sk"}
    assert (ran["n"] == 2).all() and ran["top1_err_std"].notna().all()
    missing = table[table["status"] == "missing"]
    assert len(missing) == 9 and missing["top1_err"].isna().all()  # not invented
    text = render_paper_table(table, "table7", ["smoke"])
    assert text.count("| missing |") == 9 and "recipe smoke" in text
    assert main(["table", str(sweep_dir), "--paper", "table7", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "paper_table7.md").exists() and (tmp_path / "paper_table7.csv").exists()


def test_networks_outside_the_paper_table_are_named_readably(sweep_dir):
    extra = paper_table(pd.read_parquet(sweep_dir / TRIALS), "table3")  # it has SKNet-50 (K3+K5 SK), not the sum
    extra = extra[extra["row"] == "extra"]
    archids = pd.read_parquet(sweep_dir / TRIALS).drop_duplicates("archid").set_index("attention")["archid"]
    assert list(extra["model"]) == [f"sum [{archids[False]}]"]


def test_the_table_verb_shows_twins_and_rank_agreement(sweep_dir, tmp_path, capsys):
    assert main(["table", str(sweep_dir), "--paper", "table7", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "paper_table7.md").read_text()
    assert "Kendall tau over the 2 rows run" in text and "| vs twin: ours (95% CI) | vs twin: paper |" in text
    sk_row = next(line for line in text.splitlines() if line.startswith("| K3+K5 SK |"))
    assert "| -0.97 |" in sk_row and ("within noise" in sk_row or "than twin" in sk_row)
    table = pd.read_csv(tmp_path / "paper_table7.csv").set_index("row")
    assert table.loc["K3+K5 SK", "twin"] == "K3+K5" and table.loc["K3+K5 SK", "diff_n"] == 2


def test_the_compare_verb_pairs_sk_with_its_plain_sum_by_seed(sweep_dir, tmp_path, capsys):
    assert main(["compare", str(sweep_dir), "--out", str(tmp_path / "c.csv")]) == 0
    out = capsys.readouterr().out
    assert "attention: True minus False, paired by seed" in out and "branches=K3+K5" in out and "overall" in out
    table = pd.read_csv(tmp_path / "c.csv")
    assert set(table["metric"]) == {"top1_err", "gmacs"}  # the sweep's objectives
    frame = pd.read_parquet(sweep_dir / TRIALS)
    by_seed = frame.pivot_table(index="seed", columns="attention", values="top1_err")
    row = table[(table["pair"] != "overall") & (table["metric"] == "top1_err")].iloc[0]
    assert row["n"] == 2 and row["diff"] == pytest.approx((by_seed[True] - by_seed[False]).mean())
    assert row["published_diff"] == pytest.approx(20.79 - 21.76)
    gmacs = table[(table["pair"] != "overall") & (table["metric"] == "gmacs")].iloc[0]
    expected = count("sknet50_k3k5_sk").gmacs - count("sknet50_k3k5_sum").gmacs
    assert gmacs["diff"] == pytest.approx(expected) and gmacs["exact"]  # no seed noise in MACs: no interval
    assert main(["compare", str(sweep_dir), "--format", "csv", "--metrics", "top1_err"]) == 0
    assert pd.read_csv(io.StringIO(capsys.readouterr().out))["metric"].tolist() == ["top1_err", "top1_err"]


def _edited_copy(sweep_dir, folder, edit):
    folder.mkdir()
    (folder / "sweep.json").write_text((sweep_dir / "sweep.json").read_text())
    edit(pd.read_parquet(sweep_dir / TRIALS)).to_parquet(folder / TRIALS)
    return folder


def _other_recipe(frame):
    """The rows of half the networks as if trained under the proxy: a recipe that trains otherwise."""
    proxy = frame["recipe_json"].map(lambda text: json.dumps({**json.loads(text), "name": "proxy", "epochs": 16}))
    return frame.assign(recipe="proxy", recipe_json=proxy)


def _no_shared_seed(frame):
    return frame[(frame["attention"] & (frame["seed"] == 0)) | (~frame["attention"] & (frame["seed"] == 1))]


@pytest.mark.parametrize(
    ("argv", "edit", "message"),
    [
        (
            ["--knob", "colour"],
            None,
            "--knob: 'colour' is not a design choice of these runs (knobs: branches, attention)",
        ),
        (["--knob", "branches"], None, "--knob: branches never varies among the completed trials (only K3+K5)"),
        (["--metrics", "top1_err,nope"], None, "--metrics: 'nope' is not a numeric column"),
        ([], _other_recipe, "RUN_DIR: the runs mix recipes proxy, smoke"),
        ([], _no_shared_seed, "--knob: no two networks of these runs differ only in attention and share a seed"),
    ],
)
def test_compare_bad_input_is_one_line_exit_2_and_nothing_written(sweep_dir, tmp_path, capsys, argv, edit, message):
    runs = [str(sweep_dir)]
    if edit is _other_recipe:
        runs.append(str(_edited_copy(sweep_dir, tmp_path / "other", edit)))
    elif edit is not None:
        runs = [str(_edited_copy(sweep_dir, tmp_path / "edited", edit))]
    assert main(["compare", *runs, *argv, "--out", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.csv").exists()


def test_a_swept_row_is_reproduced_exactly_by_the_train_verb(sweep_dir, tmp_path, capsys):
    """Same spec, recipe, seed and thread count: `sksearch train` gives the sweep's error to the bit."""
    row = pd.read_parquet(sweep_dir / TRIALS).iloc[-1]
    spec_file = tmp_path / "declared.yaml"
    spec_file.write_text(sksearch.NetSpec.from_dict(json.loads(row["spec"])).to_yaml())
    recipe = json.loads(row["recipe_json"])
    assert recipe["seed"] == 1 and recipe["threads"] == 1
    settings = [item for key, value in recipe.items() for item in ("--set", f"{key}={json.dumps(value)}")]
    assert main(["train", str(spec_file), "--recipe", recipe["name"], *settings, "--out", str(tmp_path / "again")]) == 0
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["archid"] == row["trained_archid"]
    assert summary["final"]["top1_err"] == row["top1_err"] and summary["final"]["train_loss"] == row["train_loss"]


def test_export_round_trip(sweep_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(sweep_dir), "--best", "top1_err", "--top", "2", "--out", str(out)]) == 0
    folders = sorted(out.iterdir())
    assert len(folders) == 2
    frame = pd.read_parquet(sweep_dir / TRIALS).set_index("trial_id")
    for folder in folders:
        row = frame.loc[folder.name.split("-", 1)[1]]
        model, spec = load_export(folder)  # the weights load into the rebuilt spec
        assert not model.training  # ready to evaluate
        complexity = count(spec)
        assert (spec.archid, complexity.params, complexity.macs) == (
            row["trained_archid"],
            row["trained_params"],
            row["trained_macs"],
        )
        recorded = json.loads((folder / "complexity.json").read_text())
        assert recorded["trained"]["archid"] == spec.archid and recorded["declared"]["archid"] == row["archid"]
        declared = sksearch.read_spec(folder / "declared_spec.yaml")
        assert declared.archid == row["archid"] and count(declared).params == row["params"]
        assert json.loads((folder / "recipe.json").read_text())["name"] == "smoke"
        assert json.loads((folder / "metrics.json").read_text())["top1_err"] == pytest.approx(row["top1_err"])
        with torch.no_grad():
            assert model.eval()(torch.randn(2, 3, spec.input_size, spec.input_size)).shape == (2, spec.num_classes)
    assert main(["export", str(sweep_dir), "--pareto", "--out", str(tmp_path / "front")]) == 0
    assert main(["export", str(sweep_dir), "--archid", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "--archid: no completed trial has archid 'nope'" in capsys.readouterr().err


def test_plots(sweep_dir, tmp_path):
    panels = {}
    for kind in ("pareto", "edf", "curves"):
        out = tmp_path / f"{kind}.png"
        assert main(["plot", str(sweep_dir), "--kind", kind, "--out", str(out)]) == 0
        panels[kind] = drawn(out)
    front, _ = panels["pareto"]
    assert "networks (mean over seeds)" in front["legend"] and front["xlabel"] == "top-1 error (%)"
    names = set(sksearch.load_results(sweep_dir)["attention"].map({True: "SK", False: "sum"}))
    assert front["labels"] and set(front["labels"]) <= names  # each front point named by its varying knob
    # one EDF panel per design choice: the sweep's one varying knob, not the training seed
    assert [p["title"] for p in panels["edf"]] == ["attention: SK or plain sum"]
    assert panels["edf"][0]["legend"] == ["sum (1 network)", "SK (1 network)"]
    (curves,) = panels["curves"]
    assert (curves["xlabel"], curves["ylabel"], len(curves["legend"])) == ("epoch", "top-1 error (%)", 4)
    assert main(["plot", str(sweep_dir), "--kind", "edf", "--by", "colour", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["plot", str(sweep_dir), "--kind", "pareto", "--out", str(tmp_path / "front.pdf")]) == 0
    assert (tmp_path / "front.pdf").read_bytes()[:5] == b"%PDF-"  # the format the suffix names


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pareto", "{tmp}", "--objectives", "top1_err:min,gmacs:min"], "is not a sksearch sweep folder"),
        (["pareto", "{sweep}", "--objectives", "top1_err:min,flops:min"], "--objectives[1]: no column 'flops'"),
        (["pareto", "{sweep}", "--reference", "1,2,3"], "--reference: needs 2 values"),
        (["results", "{sweep}", "--where", "top1_err >>> 3"], "--where: 'top1_err >>> 3' is not a condition"),
        (["results", "{sweep}", "--format", "parquet"], "--out: is required with --format parquet"),
        (["table", "{sweep}", "--paper", "table9"], "--paper: must be one of table3"),
        (["results", "{tmp}/missing"], "missing: does not exist"),
        (["results", "{sweep}", "--out", "{tmp}"], ": is a folder; give the name of a file to write"),
        (["plot", "{sweep}", "--kind", "pareto", "--out", "{tmp}/p.docx"], "p.docx: cannot draw a .docx file"),
        (["pareto", "{sweep}", "--plot", "{tmp}"], ": is a folder; give the name of a file to write"),
        (["results", "{sweep}", "--where", "top1_err"], "--where: column 'top1_err' is not true/false"),
        (["plot", "{sweep}", "--kind", "edf", "--metric", "eror", "--out", "{tmp}/e.png"], "--metric: 'eror' is not"),
        (["plot", "{sweep}", "--kind", "curves", "--metric", "eror", "--out", "{tmp}/c.png"], "--metric: 'eror' is"),
        (["pareto", "{sweep}", "--reference", "0,0"], "--reference: no front point is better than it"),
        (["export", "{sweep}", "--best", "top1_err", "--out", "{sweep}"], "t7 is not empty; export into a new"),
    ],
)
def test_bad_results_input_is_one_line_and_exit_2(sweep_dir, tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, sweep=sweep_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


# -- attention vs. object scale -----------------------------------------------------------------


def test_attention_analysis_on_a_trained_sk_model(tmp_path, capsys):
    from sksearch.recipes import recipe_from
    from sksearch.train import train

    recipe = recipe_from(
        {"preset": "smoke", "epochs": 3, "train_samples": 256, "val_samples": 64, "batch_size": 32, "threads": 1}
    )
    train("sknet26", recipe, tmp_path / "trial")
    out = tmp_path / "attention"
    assert (
        main(["attention", str(tmp_path / "trial"), "--scales", "1.0,1.5,2.0", "--samples", "24", "--out", str(out)])
        == 0
    )
    units = pd.read_csv(out / "attention.csv")
    labels = [f"SK_{s}_{u}" for s in (2, 3, 4, 5) for u in (1, 2)]
    assert len(units) == len(labels) * 3 and set(units["scale"]) == {1.0, 1.5, 2.0}
    assert set(units["unit"]) == set(labels) and (units["images"] == 24).all()
    np.testing.assert_allclose(units["attention_branch0"] + units["attention_branch1"], 1.0, atol=1e-5)
    # K5 (3x3 D=2) is the larger kernel: difference = its attention minus K3's
    np.testing.assert_allclose(units["difference"], units["attention_branch1"] - units["attention_branch0"], atol=1e-6)
    channels = pd.read_parquet(out / "attention_channels.parquet")
    widths = {label: 16 * 2 ** (int(label.split("_")[1]) - 2) for label in labels}  # 1/8 of 128, 256, ...
    for (label, scale), group in channels.groupby(["unit", "scale"]):
        assert len(group) == 2 * widths[label]
        sums = group.groupby("channel")["attention"].sum()
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)
        mean_of_channels = group[group["branch"] == 1]["attention"].mean()
        row = units[(units["unit"] == label) & (units["scale"] == scale)].iloc[0]
        assert mean_of_channels == pytest.approx(row["attention_branch1"], abs=1e-5)
    overview, detail = drawn(out / "attention.png")
    assert overview["legend"] == ["1x", "1.5x", "2x"] and overview["xlabel"] == "SK unit (stage_unit)"
    deepest = units["unit"].iloc[-1]  # Fig. 3's per-channel panel, for the deepest unit
    assert detail["legend"] == ["1x", "1.5x", "2x"] and detail["xlabel"] == f"channel of {deepest}"
    assert title(out / "attention.png").startswith("trial (archid ") and "synthetic images (data seed 0)" in title(
        out / "attention.png"
    )
    assert "SK_3_1" in capsys.readouterr().out
    sizes = ["--object-sizes", "--scales", "1,3", "--samples", "8", "--out", str(tmp_path / "sizes")]
    assert main(["attention", str(tmp_path / "trial"), *sizes]) == 0
    overview, _ = drawn(tmp_path / "sizes" / "attention.png")
    assert overview["legend"] == ["1x", "3x"] and overview["legend_title"] == "object size (x smallest trained)"
    assert "every object at scale x the smallest trained size" in title(tmp_path / "sizes" / "attention.png")


def test_object_sizes_draw_every_object_of_a_batch_at_one_size():
    """--object-sizes: scale 1 is the smallest object the recipe trains on, high/low its largest."""
    from sksearch.attention import synthetic_sets
    from sksearch.data import MAX_RADIUS
    from sksearch.presets import preset

    spec = preset("sknet26", input_size=32, num_classes=8)
    sets = synthetic_sets(spec, {"scale_range": [1.5, 6.0]}, [1.0, 4.0], 16, fixed_sizes=True)
    assert sets[1.0].radii.tolist() == pytest.approx([MAX_RADIUS * 1.5 / 6.0] * 16)
    assert sets[4.0].radii.tolist() == pytest.approx([MAX_RADIUS] * 16)
    spread = synthetic_sets(spec, {"scale_range": [1.5, 6.0]}, [1.0], 64)[1.0].radii
    assert spread.min() >= MAX_RADIUS * 0.25 - 1e-6 and spread.max() - spread.min() > 0.2  # as trained


@pytest.mark.parametrize("verb", [["train", "sknet26"], ["export", "{sweep}", "--pareto"], ["attention", "{sweep}"]])
def test_an_out_folder_that_is_a_file_is_refused_before_any_work(sweep_dir, capsys, verb):
    argv = [a.format(sweep=sweep_dir) for a in verb] + ["--out", str(sweep_dir / "trials.parquet")]
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and "trials.parquet is a file, not a folder" in err


def test_attention_needs_a_model_and_sane_scales(tmp_path, capsys):
    assert main(["attention", str(tmp_path), "--samples", "4"]) == 2
    assert "is neither an export folder" in capsys.readouterr().err
    (tmp_path / "some.yaml").write_text("a: 1\n")  # torch's unpickler fails on it with an IndexError
    assert main(["attention", str(tmp_path / "some.yaml")]) == 2
    assert "some.yaml: is not a readable sksearch checkpoint" in capsys.readouterr().err
    assert main(["attention", str(tmp_path), "--scales", "1,-2"]) == 2
    assert "--scales: must be positive" in capsys.readouterr().err
    assert main(["attention", str(tmp_path), "--object-sizes", "--data-root", str(tmp_path)]) == 2
    assert "--object-sizes: draws synthetic objects" in capsys.readouterr().err


def test_every_column_has_one_meaning(sweep_dir):
    frame = sksearch.load_results(sweep_dir)
    assert knob_columns(frame) == ["branches", "attention"]  # the sweep's design choices, as declared
    roles = {column: role_of(column) for column in frame.columns}
    assert roles["seed"] == "identity" and roles["top1_err"] == "metric" and roles["gmacs"] == "complexity"
    assert roles["spec_kernels"] == "design" and roles["dilation_1"] == "design" and roles["node_id"] == "run"
    assert set(COLUMNS) >= {c for c, role in roles.items() if role != "design"}


def test_per_branch_columns_answer_where_queries(sweep_dir, capsys):
    assert main(["results", str(sweep_dir), "--where", "dilation_1 >= 2 and kernel_0 == 3", "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(frame) == 4 and set(frame["dilation_1"]) == {2} and set(frame["groups_1"]) == {32}
    assert main(["results", str(sweep_dir), "--where", "dilation_1 >= 3"]) == 0
    assert "(no rows)" in capsys.readouterr().out


def test_tables_written_before_a_column_existed_gain_it_from_the_spec():
    frame = sksearch.load_results(Path(__file__).parents[1] / "results/proxy-v1/table7")
    sk_rows = frame[frame["spec_kernels"] == "3x3d1+3x3d3"]
    assert len(sk_rows) and set(sk_rows["dilation_1"]) == {3} and set(sk_rows["kernel_1"]) == {3}


def test_machine_readable_formats_keep_stdout_parseable(sweep_dir, capsys):
    assert main(["pareto", str(sweep_dir), "--format", "json"]) == 0
    captured = capsys.readouterr()
    front = json.loads(captured.out)  # the table alone
    assert {row["archid"] for row in front} and "hypervolume" in captured.err and "knee:" in captured.err
    assert main(["pareto", str(sweep_dir), "--format", "csv"]) == 0
    assert pd.read_csv(io.StringIO(capsys.readouterr().out)).shape[0] == len(front)


def test_export_best_refuses_unknown_modes_and_non_numeric_columns(sweep_dir, tmp_path, capsys):
    for best, message in [
        ("top1_err:maximize", "--best[0]: mode must be min or max, got 'maximize'"),
        ("branches", "--best[0]: column 'branches' is not numeric"),
        ("flops", "--best[0]: no column 'flops' in the results table"),
    ]:
        assert main(["export", str(sweep_dir), "--best", best, "--out", str(tmp_path / "x")]) == 2
        assert capsys.readouterr().err == f"sksearch export: error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_networks_are_named_by_the_knobs_that_vary(sweep_dir):
    frame = pd.DataFrame(
        {
            "archid": ["a", "b", "c"],
            "seed": [0, 1, 2],
            "branches": ["K3+K5", "K3+K7", "K3+K7"],
            "attention": [True, False, True],
            "reduction": [16, 16, 8],
            "depths": ["3,4,6,3"] * 3,
        }
    )
    assert list(network_names(frame)) == ["K3+K5 SK reduction=16", "K3+K7 sum reduction=16", "K3+K7 SK reduction=8"]
    points = seed_means(sksearch.load_results(sweep_dir), MIN_MIN)
    assert sorted(points["name"]) == ["SK", "sum"]  # branches never vary there; the seed is not a knob


def test_a_run_where_every_trial_failed_has_no_front_to_export_or_plot(tmp_path):
    from sksearch.plots import plot_pareto
    from sksearch.results import select_for_export

    failed = trials([("a", 0, float("nan"), 4.0, "failed"), ("b", 0, float("nan"), 3.0, "failed")])
    with pytest.raises(sksearch.ConfigError, match=r"^--pareto: no completed trial has every objective"):
        select_for_export(failed, front_objectives=MIN_MIN)
    with pytest.raises(sksearch.ConfigError, match=r"^RUN_DIR: no completed trial has every objective"):
        plot_pareto(failed, MIN_MIN, tmp_path / "front.png")
    assert not (tmp_path / "front.png").exists()


def test_compare_on_a_spec_column_pairs_networks_among_spec_columns(sweep_dir):
    from sksearch.results import compare

    frame = sksearch.load_results(sweep_dir)
    by_knob = compare(frame, "attention", ["top1_err"])
    by_spec = compare(frame, "spec_attention", ["top1_err"])  # the knob `attention` restates it: not a blocker
    assert list(by_spec["diff"]) == list(by_knob["diff"]) and len(by_spec)


def test_status_of_a_copied_table_says_what_it_knows_of_its_time_and_no_resume_for_a_finished_sweep(tmp_path, capsys):
    """A committed sweep checked out elsewhere: no span up to a file's date, no path of the machine
    it ran on, no resume hint for a sweep that ended; a killed driver's sweep gets the hint."""

    run_dir = tmp_path / "table7"
    shutil.copytree(Path(__file__).parents[1] / "results/proxy-v1/table7", run_dir)
    assert main(["status", str(run_dir)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "33 trials: completed 33" in first and "ran " in first and "(the table records no end time)" in first
    assert "table7.yaml)" in first and "(/" not in first and "resume" not in first
    (run_dir / "driver.json").write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7}))  # no such pid
    assert main(["status", str(run_dir)]) == 0
    assert f"`sksearch resume {run_dir}` continues it" in capsys.readouterr().out


def test_status_counts_an_extended_sweep_whole_and_ends_at_its_last_trial(sweep_dir, capsys):
    from sksearch.search import sweep_status

    status = sweep_status(str(sweep_dir))
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    assert status["trials"] >= len(table) and sum(status["states"].values()) == status["trials"]
    ended = datetime.fromisoformat(status["ended"]).timestamp()
    assert ended == pytest.approx(table["finished_at"].max(), abs=1) and not status["resumable"]
