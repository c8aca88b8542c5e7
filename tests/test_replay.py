"""Replay: search algorithms on the committed proxy Table 7 sweep (11 networks x 3 seeds, 8 epochs
each, with history), Optuna's real samplers and Ray Tune's real ASHA, no training."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sksearch.cli import main
from sksearch.runfiles import HISTORY
from sksearch.schema import REPLAY_COLUMNS
from sksearch.search.replay import ALGORITHMS, load_benchmark, replay, replay_once
from sksearch.search.replay_curves import anytime
from tests.pictures import drawn, title

TABLE7 = Path(__file__).parents[1] / "results" / "proxy-v1" / "table7"


@pytest.fixture(scope="module")
def table():
    return load_benchmark([str(TABLE7)])


def test_the_table_holds_each_network_once_with_its_seeds_averaged_and_costs_summed(table):
    trials = pd.read_parquet(TABLE7 / "trials.parquet")
    history = pd.read_parquet(TABLE7 / HISTORY)
    assert len(table.networks) == trials["archid"].nunique() == 11
    network = table.networks[0]
    mine = trials[trials["archid"] == network.archid]
    assert network.epochs == 8 and network.point == {"branches": "K3", "attention": False}
    assert network.values(table.objectives, 8) == pytest.approx([mine["top1_err"].mean(), mine["gmacs"].mean()])
    epochs = history[history["trial_id"].isin(mine["trial_id"])]
    assert network.epoch_seconds.sum() == pytest.approx(epochs["epoch_time"].sum())
    assert table.total_seconds == pytest.approx(history["epoch_time"].sum())


def test_exact_and_nearest_lookups(table):
    assert table.exact({"branches": "K3+K5", "attention": True}) is not None
    # one branch with attention is the same network as without (one archid): the table holds it once
    assert table.exact({"branches": "K5", "attention": True}) is None
    nearest = table.nearest({"branches": "K5", "attention": True}, excluded=set())
    assert table.networks[nearest].point == {"branches": "K5", "attention": False}  # first of those 1 knob away
    assert table.nearest({"branches": "K5", "attention": True}, excluded={nearest}) == 4  # K3+K5 SK, next at 1
    everything_but_one = set(range(len(table.networks))) - {4}
    assert table.nearest({"branches": "K3"}, everything_but_one) == 4
    assert table.nearest({}, set(range(len(table.networks)))) is None


@pytest.mark.parametrize("algorithm", ["random", "grid", "tpe", "nsga2"])
def test_with_the_whole_budget_every_algorithm_tries_each_network_once_and_reaches_the_whole_front(table, algorithm):
    rows = pd.DataFrame(replay_once(table, algorithm, seed=1, budget=1.0))
    assert sorted(rows["archid"]) == sorted(network.archid for network in table.networks)
    assert rows["hv_fraction"].iloc[-1] == pytest.approx(1.0)
    assert rows["compute"].iloc[-1] == pytest.approx(1.0)
    assert (np.diff(rows["hv_fraction"]) >= 0).all() and (np.diff(rows["seconds"]) > 0).all()
    assert not rows["stopped"].any()


def test_budget_seeds_and_the_orders(table):
    runs = replay(table, ["random", "grid", "tpe"], repeats=3, budget=0.3)
    assert (runs["seconds"] <= 0.3 * table.total_seconds).all()
    orders = {key: tuple(run["archid"]) for key, run in runs.groupby(["algorithm", "repeat"])}
    assert len({orders["grid", repeat] for repeat in range(3)}) == 1  # grid: the table's order each time
    assert orders["grid", 0][0] == table.networks[0].archid
    assert len({orders["random", repeat] for repeat in range(3)}) > 1  # seeded differently
    again = replay(table, ["random", "tpe"], repeats=3, budget=0.3)
    pd.testing.assert_frame_equal(again, runs[runs["algorithm"] != "grid"].reset_index(drop=True))


@pytest.mark.parametrize("algorithm", ["asha", "mo-asha"])
def test_asha_stops_at_its_rungs_and_spends_less_per_trial(table, algorithm):
    rows = replay(table, [algorithm], repeats=5, budget=1.0)
    stopped = rows[rows["stopped"]]
    assert len(stopped) > 0
    assert set(stopped["epochs"]) <= {1, 4}  # ASHA's rungs for grace 1, reduction 4, 8 epochs
    first = rows.groupby("repeat").head(1)
    assert (first["epochs"] == 8).all()  # nothing recorded yet at its rungs: the first trial runs to the end
    assert (rows.groupby("repeat")["trial"].size() == len(table.networks)).all()
    assert rows.groupby("repeat")["compute"].max().max() < 1.0


def test_parallel_workers_keep_the_budget_and_the_clock(table):
    rows = pd.DataFrame(replay_once(table, "random", seed=0, budget=1.0, workers=3))
    assert rows["compute"].iloc[-1] == pytest.approx(1.0)
    assert rows["clock"].iloc[-1] < rows["seconds"].iloc[-1]  # three at a time: less wall than compute


def test_anytime_medians_on_both_axes(table):
    runs = replay(table, ["random"], repeats=4, budget=0.5)
    curves = anytime(runs, budget=0.5, points=11)
    compute = curves[curves["axis"] == "compute"]
    assert list(compute["at"]) == pytest.approx(np.linspace(0, 0.5, 11).tolist())
    last = runs.groupby("repeat")["hv_fraction"].last()
    assert compute["hv_fraction_median"].iloc[-1] == pytest.approx(last.median())
    assert (compute["hv_fraction_q25"] <= compute["hv_fraction_median"]).all()
    epochs = curves[curves["axis"] == "trial_epochs"]
    assert epochs["at"].min() == 0 and epochs["at"].max() <= runs["trial_epochs"].max()


def test_the_replay_verb_writes_tables_and_a_picture(tmp_path, capsys, monkeypatch):
    """By default into ./replay-<run name>: never over the run folder's own (committed) files."""
    monkeypatch.chdir(tmp_path)
    before = sorted(path.name for path in TABLE7.iterdir())
    assert main(["replay", str(TABLE7), "--repeats", "3", "--budget", "0.5"]) == 0
    out = tmp_path / "replay-table7"
    assert sorted(path.name for path in TABLE7.iterdir()) == before
    printed = capsys.readouterr().out
    assert printed.startswith("replaying 6 algorithms x 3 repeats on 11 networks (budget 0.5 of the compute)")
    assert "11 networks, 88 trial-epochs" in printed and all(f"  {name} " in printed for name in ALGORITHMS)
    summary = pd.read_csv(out / "at_budget.csv")
    assert list(summary["algorithm"]) == list(ALGORITHMS) and (summary["repeats"] == 3).all()
    assert len(pd.read_csv(out / "replay.csv")) > 0 and set(pd.read_csv(out / "anytime.csv")["axis"]) == {
        "compute",
        "trial_epochs",
    }
    for name in ("replay.csv", "anytime.csv", "at_budget.csv"):  # each column is explained in one place
        assert set(pd.read_csv(out / name).columns) <= set(REPLAY_COLUMNS), name
    panels = drawn(out / "replay.png")  # a panel per algorithm (tests/test_plots.py checks the figure)
    assert panels[0]["ylabel"] == "hypervolume / the whole table's"
    assert [panel["title"] for panel in panels] == list(ALGORITHMS)
    assert [panel["title"] for panel in drawn(out / "replay_trial_epochs.png")] == list(ALGORITHMS)
    assert "11 networks of table7" in title(out / "replay.png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithms", "random,bayes"], "--algorithms: unknown algorithm 'bayes'"),
        (["--algorithms", "tpe,tpe"], "--algorithms: lists an algorithm twice"),
        (["--budget", "0"], "--budget: must be a fraction of the table's compute in (0, 1], got 0"),
        (["--budget", "1.5"], "--budget: must be a fraction"),
        (["--objectives", "gmacs:min,top1_err:min"], "--algorithms: asha stops trials on the first objective"),
        (["--objectives", "top1_err:min,latency:min"], "--objectives[1]: no column 'latency'"),
        (["--objectives", "top1_err:min", "--algorithms", "mo-asha"], "--algorithms: mo-asha ranks two or more"),
    ],
)
def test_bad_replay_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "replay"
    assert main(["replay", str(TABLE7), "--out", str(out), *args]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not out.exists()


def test_a_folder_that_is_no_sweep_or_has_no_history_is_refused(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bare = tmp_path / "bare"
    shutil.copytree(TABLE7, bare)
    (bare / HISTORY).unlink()
    assert main(["replay", str(bare), "--out", str(tmp_path / "o")]) == 2
    assert "has no per-epoch history" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_committed_tabulated_benchmark_is_replayable():
    """results/sknet50_smoke (benchmarks/tabulate_sknet50.py): 56 distinct networks of the SKNet-50
    space, each with its full per-epoch history, as RESULTS.md reports."""
    table = load_benchmark([str(TABLE7.parents[1] / "sknet50_smoke")])
    assert len(table.networks) == 56 and {network.epochs for network in table.networks} == {8}
    assert table.space.name == "sknet50" and table.full_hypervolume > 0


@pytest.mark.parametrize("algorithm", ["tpe", "nsga2"])
def test_a_smaller_budget_replays_the_same_algorithm_up_to_where_it_stops(table, algorithm):
    """Settings come from the table's size, never the budget: the cut replay is a prefix of the whole."""
    whole = pd.DataFrame(replay_once(table, algorithm, seed=2, budget=1.0))
    cut = pd.DataFrame(replay_once(table, algorithm, seed=2, budget=0.4))
    assert 0 < len(cut) < len(whole) and list(cut["archid"]) == list(whole["archid"][: len(cut)])


def test_the_reference_point_is_never_beyond_chance():
    from sksearch.search.replay import ReplaySettings

    smoke = load_benchmark([str(Path(__file__).parents[1] / "results" / "sknet50_smoke")])
    worst = max(network.values(smoke.objectives, network.epochs)[0] for network in smoke.networks)
    assert worst > 87.5 and smoke.reference[0] == 87.5  # 8 classes: a guess is wrong 87.5% of the time
    assert smoke.reference_why == ("chance with 8 classes", "the worst plus 10% of the range")
    settings = ReplaySettings.for_table(smoke)
    assert (settings.startup, settings.population) == (10, 28)  # 56 networks, as a sweep of all of them
    assert "NSGA-II population 28" in settings.describe(smoke) and "rungs at epochs 1, 4" in settings.describe(smoke)


def test_a_claim_is_made_only_where_its_interval_excludes_zero():
    from sksearch.search.replay_curves import claims

    rng = np.random.default_rng(0)
    rows = [
        {"algorithm": name, "repeat": repeat, "compute": 0.05, "hv_fraction": level + rng.normal(0, 0.02)}
        for name, level in (("good", 0.9), ("twin", 0.9), ("poor", 0.5))
        for repeat in range(30)
    ]
    found = claims(pd.DataFrame(rows), budget=0.3).set_index(["at", "algorithm", "other"])
    assert list(found.index.get_level_values("at").unique()) == [0.1, 0.25]  # 0.5 is beyond the budget
    assert (
        found.loc[(0.25, "good", "poor"), "verdict"] == "beats"
        and found.loc[(0.25, "twin", "poor"), "verdict"] == "beats"
    )
    low, high = found.loc[(0.25, "good", "twin"), ["ci_low", "ci_high"]]
    assert low < 0 < high and found.loc[(0.25, "good", "twin"), "verdict"] == "within noise"
    assert found.loc[(0.1, "good", "poor"), "median_difference"] == pytest.approx(0.4, abs=0.03)


def test_the_interval_of_a_median_covers_it_and_narrows_with_repeats():
    from sksearch.search.replay_curves import median_interval

    rng = np.random.default_rng(1)
    few, many = rng.normal(0.9, 0.05, 10), rng.normal(0.9, 0.05, 400)
    (low, high), (low_many, high_many) = median_interval(few), median_interval(many)
    assert low < np.median(few) < high and low_many < 0.9 < high_many
    assert high_many - low_many < (high - low) / 2
    assert median_interval(np.full(50, 0.95)) == (0.95, 0.95)  # every repeat alike: the point itself
