"""Comparisons: seed-paired and crossed-effects intervals and their calibration, seeds for 80% power,
exact differences, Holm, Kendall tau, `compare` and the paper table's twins."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sksearch
from benchmarks.calibrate_intervals import coverage
from sksearch.recipes import RECIPES
from sksearch.results import compare, load_results, paper_table, rank_agreement, render_paper_table
from sksearch.results.statistics import (
    CROSSED_MODEL,
    crossed_summary,
    kendall_tau,
    paired_summary,
    pooled_seed_std,
    seed_differences,
    seeds_for_power,
    with_holm,
)
from sksearch.schema import RESULT_STATUSES


def test_paired_summary_known_answer():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027; half-width 4.3027 / sqrt(3) = 2.4841
    summary = paired_summary([1.0, 2.0, 3.0])
    assert summary["n"] == 3 and summary["diff"] == 2.0 and summary["diff_std"] == 1.0
    assert summary["ci_low"] == pytest.approx(2 - 2.4841, abs=1e-4)
    assert summary["ci_high"] == pytest.approx(2 + 2.4841, abs=1e-4)
    assert summary["resolved"] is False  # the interval holds zero
    assert paired_summary([1.0, 1.1, 0.9, 1.0])["resolved"] is True


def test_the_pooled_seed_std_weights_each_network_by_its_degrees_of_freedom():
    # a: 1, 3 (variance 2, 1 dof); b: 2, 4, 6 (variance 4, 2 dof); c: one run, no spread
    frame = pd.DataFrame({"archid": list("aabbbc"), "top1_err": [1.0, 3.0, 2.0, 4.0, 6.0, 9.0]})
    assert pooled_seed_std(frame, "top1_err") == (pytest.approx(math.sqrt((2 + 2 * 4) / 3)), 3)
    assert pooled_seed_std(frame[frame["archid"] == "c"], "top1_err")[1] == 0


def test_one_seed_gives_no_interval():
    summary = paired_summary([-0.7])
    assert summary["n"] == 1 and summary["diff"] == -0.7
    assert math.isnan(summary["ci_low"]) and summary["resolved"] is None and "seeds_power" not in summary


def test_seeds_for_80_percent_power_is_the_smallest_n_a_paired_t_test_needs():
    from statsmodels.stats.power import TTestPower

    n = seeds_for_power(1.0, 2.0)
    assert TTestPower().power(0.5, n, 0.05) >= 0.8 > TTestPower().power(0.5, n - 1, 0.05)
    assert n == 34  # half a spread: 34 seeds for 80% power (a 50%-power rule would say 18)
    assert seeds_for_power(1.0, 0.0) == 2 and seeds_for_power(0.0, 1.0) is None
    assert seeds_for_power(1e-6, 10.0) is None  # not within any affordable number of seeds


def test_seeds_come_as_a_range_over_the_spreads_own_uncertainty_and_for_a_named_effect():
    summary = paired_summary([1.0, 3.0, 2.0], named_effect=0.7)  # diff 2, std 1 from 3 seeds
    assert summary["seeds_power_low"] <= summary["seeds_power"] <= summary["seeds_power_high"]
    assert summary["seeds_power_high"] > 3 * summary["seeds_power"]  # a spread from 3 seeds is uncertain
    assert summary["seeds_for_effect"] == seeds_for_power(0.7, 1.0)


def test_a_column_without_seed_noise_gets_its_exact_difference_and_no_interval():
    summary = paired_summary([0.25, 0.25, 0.25], exact=True)
    assert summary["exact"] and summary["ci_low"] == summary["ci_high"] == 0.25 and "seeds_power" not in summary
    assert paired_summary([0.25], exact=True)["exact"]  # one seed is enough for a count
    crossed = crossed_summary(pd.DataFrame([[0.25, 0.25], [0.5, 0.5]]), exact=True)  # differs by pair, not seed
    assert crossed["exact"] and crossed["diff"] == pytest.approx(0.375) and crossed["model"].startswith("exact")


def test_the_overall_interval_rests_on_crossed_pair_and_seed_effects():
    # pairs x seeds; a strong seed effect (seed 0 high in every pair) that pooling would ignore
    table = pd.DataFrame([[6.0, 1.0, 2.0], [5.0, 0.5, 1.5], [7.0, 2.0, 2.5], [6.5, 1.0, 3.0]])
    crossed = crossed_summary(table)
    pooled = paired_summary(table.to_numpy().ravel().tolist())
    assert crossed["model"] == CROSSED_MODEL and (crossed["pairs"], crossed["seeds"]) == (4, 3)
    assert crossed["diff"] == pytest.approx(pooled["diff"])
    assert crossed["ci_high"] - crossed["ci_low"] > 2 * (pooled["ci_high"] - pooled["ci_low"])
    assert pooled["resolved"] and not crossed["resolved"]  # 12 "independent" runs overclaim


def test_holm_adjusts_the_verdicts_of_many_comparisons():
    table = pd.DataFrame({"metric": ["top1_err"] * 3, "p_value": [0.01, 0.02, 0.04], "resolved": [True] * 3,
                          "verdict": ["lower"] * 3})  # fmt: skip
    adjusted = with_holm(table)
    np.testing.assert_allclose(adjusted["holm_p"], [0.03, 0.04, 0.04])
    assert adjusted["holm_verdict"].tolist() == ["lower", "lower", "lower"]
    table["p_value"] = [0.01, 0.03, 0.04]
    assert with_holm(table)["holm_verdict"].tolist() == ["lower", "within noise (Holm)", "within noise (Holm)"]


@pytest.mark.parametrize(
    "pairs, seeds, effect, regime",
    [
        (4, 3, 0.0, (1.0, 2.0, 1.0)),
        pytest.param(8, 5, 2.0, (2.0, 2.0, 2.0), marks=pytest.mark.slow),
        (4, 5, 0.0, (0.0, 2.0, 1.0)),
    ],
)
def test_intervals_keep_their_95_percent_on_simulated_tables(pairs, seeds, effect, regime):
    """Simulated results tables (benchmarks/calibrate_intervals.py) with seed effects shared by every
    pair, pairs that differ, and run noise: the intervals cover the true effect about 95% of the time."""
    found = coverage(pairs, seeds, effect, regime, tables=300, seed=1)
    assert 0.92 <= found["overall_coverage"] <= 0.98, found
    assert 0.92 <= found["pair_coverage"] <= 0.98, found
    if effect == 0:
        assert found["within_noise"] >= 0.92, found


def test_seed_differences_pair_by_seed_and_average_repeats():
    first = pd.DataFrame({"seed": [0, 1, 2], "top1_err": [10.0, 12.0, 14.0]})
    second = pd.DataFrame({"seed": [1, 2, 2, 3], "top1_err": [11.0, 13.0, 15.0, 99.0]})
    differences = seed_differences(first, second, "top1_err")
    assert differences.to_dict() == {1: -1.0, 2: 0.0}  # seed 2 ran twice: its mean 14; seeds 0 and 3 unpaired


def test_kendall_tau_with_its_n_and_p_value():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40])[:2] == (1.0, 4)
    tau, n, p_value = kendall_tau([1, 2, 3, 4], [40, 30, 20, 10])
    assert (tau, n) == (-1.0, 4) and p_value == pytest.approx(1 / 12)  # exact: 2 of 24 orders are as extreme
    tau, n, _ = kendall_tau([1, 2, float("nan")], [1, 2, 3])
    assert n == 2 and tau == 1.0


# -- compare on a hand-made Table 7 --------------------------------------------------------------


def table7_frame(errors, recipe="proxy"):
    """Trials of Table 7 rows: {(branches, attention): [error per seed]} with the presets' archids."""
    presets = {("K3", False): "sknet50_k3", ("K3+K5", False): "sknet50_k3k5_sum", ("K3+K5", True): "sknet50_k3k5_sk",
               ("K3+K7", False): "sknet50_k3k7_sum", ("K3+K7", True): "sknet50_k3k7_sk"}  # fmt: skip
    rows = []
    for (branches, attention), per_seed in errors.items():
        for seed, error in enumerate(per_seed):
            rows.append({
                "trial_id": f"t{len(rows)}", "status": "completed", "archid": sksearch.preset(presets[branches, attention]).archid,
                "branches": branches, "attention": attention, "seed": seed, "top1_err": error, "gmacs": 4.4, "params_m": 27.5,
                "recipe": recipe, "recipe_json": json.dumps({"name": recipe, "seed": seed, "epochs": RECIPES[recipe].epochs}),
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_pairs_networks_differing_only_in_the_knob():
    frame = table7_frame({
        ("K3", False): [30.0, 31.0, 29.0],
        ("K3+K5", False): [20.0, 21.0, 22.0], ("K3+K5", True): [19.0, 20.0, 21.0],  # SK better by exactly 1
        ("K3+K7", False): [20.0, 22.0, 21.0], ("K3+K7", True): [21.0, 20.0, 22.0],  # noise around 0
    })  # fmt: skip
    table = compare(frame, "attention", ["top1_err"])
    pairs = table[table["pair"] != "overall"].set_index("pair")
    assert set(pairs.index) == {"branches=K3+K5", "branches=K3+K7"}  # K3 has no twin: M = 1
    k3k5 = pairs.loc["branches=K3+K5"]
    assert (k3k5["value_a"], k3k5["value_b"], k3k5["n"], k3k5["diff"]) == (False, True, 3, -1.0)
    assert k3k5["resolved"] and k3k5["verdict"] == "attention=True lower" and not k3k5["exact"]
    assert k3k5["published_diff"] == pytest.approx(20.79 - 21.76)
    k3k7 = pairs.loc["branches=K3+K7"]
    assert k3k7["verdict"] == "within noise" and k3k7["diff"] == pytest.approx(0.0)
    overall = table[table["pair"] == "overall"].iloc[0]
    assert overall["n"] == 6 and overall["diff"] == pytest.approx(-0.5)
    assert (overall["pairs"], overall["seeds"], overall["model"]) == (2, 3, CROSSED_MODEL)
    assert overall["verdict"] == "within noise" and "holm_verdict" in table


def test_compare_with_one_seed_says_no_interval_is_possible():
    frame = table7_frame({("K3+K5", False): [20.0], ("K3+K5", True): [19.0]})
    row = compare(frame, "attention", ["top1_err"]).iloc[0]
    assert row["n"] == 1 and row["verdict"] == "one seed: no interval"


@pytest.mark.parametrize(
    ("frame", "knob", "message"),
    [
        (table7_frame({("K3+K5", False): [20.0], ("K3+K5", True): [19.0]}), "colour", "--knob: 'colour' is not a design choice"),
        (table7_frame({("K3+K5", True): [20.0, 21.0]}), "attention", "--knob: attention never varies"),
        (table7_frame({("K3+K5", False): [20.0], ("K3+K7", True): [19.0]}), "attention", "--knob: no two networks of these runs differ only in attention"),
        (pd.concat([table7_frame({("K3+K5", False): [20.0]}), table7_frame({("K3+K5", True): [19.0]}, recipe="smoke")]),
         "attention", "RUN_DIR: the runs mix recipes proxy, smoke"),
    ],
)  # fmt: skip
def test_compare_refuses_what_it_cannot_pair(frame, knob, message):
    with pytest.raises(sksearch.ConfigError, match=message):
        compare(frame.reset_index(drop=True), knob, ["top1_err"])


def test_the_paper_table_shows_each_rows_difference_to_its_twin_and_the_rank_agreement():
    frame = table7_frame({
        ("K3", False): [22.0, 23.0, 24.0],
        ("K3+K5", False): [20.0, 21.0, 22.0], ("K3+K5", True): [19.0, 20.0, 21.0],
    })  # fmt: skip
    table = paper_table(frame, "table7").set_index("row")
    sk = table.loc["K3+K5 SK"]
    assert sk["twin"] == "K3+K5" and sk["diff_to_twin"] == -1.0 and sk["diff_n"] == 3
    assert sk["diff_verdict"] == "lower than twin" and sk["published_diff_to_twin"] == pytest.approx(-0.97)
    assert table.loc["K3+K7 SK", "diff_verdict"] == "not run" and pd.isna(table.loc["K3", "twin"])
    tau, n, _ = rank_agreement(table.reset_index())
    assert n == 3 and tau == 1.0  # K3 worst, K3+K5 SK best: the paper's order
    text = render_paper_table(table.reset_index(), "table7", ["proxy"])
    assert "| -1.00 [-1.00, -1.00] lower than twin | -0.97 |" in text
    assert "Kendall tau over the 3 rows run): +1.00" in text


RESULTS = Path(__file__).parents[1] / "results"


@pytest.mark.parametrize("folder", ["proxy", "proxy-v1"])
def test_the_committed_proxy_tables_are_what_the_committed_trials_give(folder):
    """results/proxy (benchmarks/proxy_tables.py; proxy-v1, the first proxy's): 3 seeds of every
    Table 7 row under the proxy, and the committed Markdown tables are exactly what `table` makes of
    the committed trials."""
    proxy = RESULTS / folder
    frame = load_results([proxy / "table7"])
    assert frame["status"].isin(RESULT_STATUSES).all() and set(frame["recipe"]) == {"proxy"}
    assert frame["archid"].nunique() == 11 and (frame.groupby("archid")["seed"].nunique() >= 3).all()
    table = paper_table(frame, "table7")
    assert (proxy / "paper_table7.md").read_text() == render_paper_table(table, "table7", list(frame["recipe"]))
    six = paper_table(load_results([proxy / "table7", proxy / "table6"]), "table6")
    assert (six[six["row"] != "extra"]["n"] >= 3).all()  # its five rows, two of them from the Table 7 sweep
