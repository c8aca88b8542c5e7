"""`sksearch plan`: what a sweep costs before it runs (sksearch.search.cost). Nothing trains, nothing is
written unless asked; the figures follow from the throughput measured or given."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from sksearch.cli import main
from sksearch.results.statistics import seeds_for_power
from sksearch.search.cost import pilot_noise, wall_hours

RESULTS = Path(__file__).resolve().parents[1] / "results"
TABLE7 = RESULTS / "proxy-v1" / "table7"
TWO = """\
base: sknet26
knobs:
  branches: {grid: [K3+K5, K3+K7]}
recipe: {preset: smoke, epochs: 4, train_samples: 600, val_samples: 300}
search: {algorithm: grid, seeds: [0]}
"""


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(TWO)
    return path


def plan_json(capsys, *argv):
    assert main(["plan", *argv, "--format", "json", "--steps", "1", "--batch", "4"]) == 0
    return json.loads(capsys.readouterr().out)


def test_trials_are_packed_longest_first_and_a_shared_device_splits_its_speed():
    assert wall_hours([3, 2, 2, 1], devices=2, per_trial=1) == 4  # 3+1 and 2+2
    assert wall_hours([3, 2, 2, 1], devices=1, per_trial=0.5) == 8  # two at once, each at half speed
    assert wall_hours([1, 1, 1], devices=8, per_trial=2) == 1  # 4 slots of 2 devices


def test_a_plan_counts_trials_and_hours_from_the_measured_throughput(space, tmp_path, capsys):
    plan = plan_json(capsys, str(space), "--seeds", "3", "--gpus", "2")
    summary, networks = plan["summary"], pd.DataFrame(plan["networks"])
    assert (summary["networks"], summary["trials"], summary["seeds"]) == (2, 6, [0, 1, 2])
    assert (summary["train_images"], summary["val_images"], summary["epochs"]) == (600, 300, 4)
    assert (networks["train_images_per_s"] > 0).all() and list(networks["network"]) == ["K3+K5", "K3+K7"]
    expected = 4 * (600 + 300 / 3) / networks["train_images_per_s"] / 3600
    assert networks["trial_hours"].tolist() == pytest.approx(expected.tolist())
    assert summary["device_hours"] == pytest.approx(3 * networks["trial_hours"].sum())
    assert summary["wall_hours"] == pytest.approx(wall_hours([*networks["trial_hours"]] * 3, 2, 1))
    assert "measured here" in summary["throughput_from"] and not list(tmp_path.glob("two*/"))  # nothing written


def test_a_throughput_table_from_the_target_device_replaces_the_measurement(space, tmp_path, capsys):
    assert main(["plan", str(space), "--format", "csv", "--steps", "1", "--out", str(tmp_path / "t.csv")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 't.csv'}\n"
    table = pd.read_csv(tmp_path / "t.csv").assign(train_images_per_s=[100.0, 50.0])
    table.to_csv(tmp_path / "t.csv", index=False)
    plan = plan_json(capsys, str(space), "--throughput", str(tmp_path / "t.csv"), "--gpus", "1")
    hours = [4 * (600 + 100) / rate / 3600 for rate in (100.0, 50.0)]
    assert [row["trial_hours"] for row in plan["networks"]] == pytest.approx(hours)
    assert plan["summary"]["wall_hours"] == pytest.approx(sum(hours))
    assert plan["summary"]["throughput_from"] == f"table {tmp_path / 't.csv'}"


def test_seeds_for_an_effect_from_a_given_noise_or_a_pilot_run(space, capsys):
    plan = plan_json(capsys, str(space), "--effect", "0.7", "--noise", "1.0")["summary"]
    assert plan["seeds_for_effect"] == seeds_for_power(0.7, math.sqrt(2)) and plan["std_from_runs"] is None
    std, runs = pilot_noise(pd.read_parquet(TABLE7 / "trials.parquet"))
    plan = plan_json(capsys, str(space), "--effect", "0.7", "--pilot", str(TABLE7))["summary"]
    assert (plan["run_std"], plan["std_from_runs"]) == (pytest.approx(std), runs) and runs > 11
    assert plan["seeds_for_effect_low"] <= plan["seeds_for_effect"] <= plan["seeds_for_effect_high"]
    assert main(["plan", str(space), "--effect", "0.7", "--noise", "1.0", "--steps", "1"]) == 0
    assert "seeds for 80% power at an effect of 0.7 points (a run's std 1, as given): " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gpus", "0"], "--gpus: must be >= 1, got 0"),
        (["--effect", "0"], "--effect: must be a positive number, got 0"),
        (["--effect", "-1", "--noise", "1"], "--effect: must be a positive number"),
        (["--effect", "0.7"], "--effect: needs the noise it is measured against"),
        (["--throughput", "{tmp}/missing.csv"], "--throughput: cannot read"),
        (["--throughput", "{tmp}/bad.csv"], "--throughput: {tmp}/bad.csv lacks column train_images_per_s"),
        (["--set", "max_gmacs=0.0001"], "no feasible network"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_nothing_is_written(space, tmp_path, capsys, extra, message):
    (tmp_path / "bad.csv").write_text("archid,speed\nabc,1\n")
    if extra[:1] == ["--set"]:  # a space whose constraint no network meets
        space.write_text(TWO + "constraints: {max_gmacs: 0.0001}\n")
        extra = []
    out = tmp_path / "plan.json"
    argv = ["plan", str(space), *[item.format(tmp=tmp_path) for item in extra], "--out", str(out), "--steps", "1"]
    try:
        code = main(argv)
    except SystemExit as exit:  # refused by the flag's own type, as argparse does
        code = exit.code
    assert code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message.format(tmp=tmp_path) in error, error
    assert not out.exists()
