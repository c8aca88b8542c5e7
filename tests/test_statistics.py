"""Paired comparisons: intervals, seeds to resolve, Kendall tau, `compare` and the paper table's twins."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sksearch
from sksearch.results import compare, load_results, paper_table, rank_agreement, render_paper_table
from sksearch.results.statistics import kendall_tau, paired_summary, seed_differences, seeds_to_resolve, t_quantile


def test_paired_summary_known_answer():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027; half-width 4.3027 / sqrt(3) = 2.4841
    summary = paired_summary([1.0, 2.0, 3.0])
    assert summary["n"] == 3 and summary["diff"] == 2.0 and summary["diff_std"] == 1.0
    assert summary["ci_low"] == pytest.approx(2 - 2.4841, abs=1e-4)
    assert summary["ci_high"] == pytest.approx(2 + 2.4841, abs=1e-4)
    assert summary["resolved"] is False  # the interval holds zero
    assert paired_summary([1.0, 1.1, 0.9, 1.0])["resolved"] is True


def test_one_seed_gives_no_interval():
    summary = paired_summary([-0.7])
    assert summary["n"] == 1 and summary["diff"] == -0.7
    assert math.isnan(summary["ci_low"]) and summary["resolved"] is None and summary["seeds_to_resolve"] is None


def test_seeds_to_resolve_is_the_smallest_sufficient_n():
    n = seeds_to_resolve(1.0, 2.0)
    assert t_quantile(n) * 2.0 / math.sqrt(n) < 1.0 <= t_quantile(n - 1) * 2.0 / math.sqrt(n - 1)
    assert n == 18
    assert seeds_to_resolve(1.0, 0.0) == 2
    assert seeds_to_resolve(0.0, 1.0) is None
    assert seeds_to_resolve(1e-6, 10.0) is None  # not within any affordable number of seeds


def test_seed_differences_pair_by_seed_and_average_repeats():
    first = pd.DataFrame({"seed": [0, 1, 2], "top1_err": [10.0, 12.0, 14.0]})
    second = pd.DataFrame({"seed": [1, 2, 2, 3], "top1_err": [11.0, 13.0, 15.0, 99.0]})
    differences = seed_differences(first, second, "top1_err")
    assert differences.to_dict() == {1: -1.0, 2: 0.0}  # seed 2 ran twice: its mean 14; seeds 0 and 3 unpaired


def test_kendall_tau():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == (1.0, 4)
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == (-1.0, 4)
    tau, n = kendall_tau([1, 2, float("nan")], [1, 2, 3])
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
                "recipe": recipe, "recipe_json": json.dumps({"name": recipe, "seed": seed}),
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
    assert k3k5["resolved"] and k3k5["verdict"] == "attention=True lower" and k3k5["seeds_to_resolve"] == 2
    assert k3k5["published_diff"] == pytest.approx(20.79 - 21.76)
    k3k7 = pairs.loc["branches=K3+K7"]
    assert k3k7["verdict"] == "within noise" and k3k7["diff"] == pytest.approx(0.0)
    overall = table[table["pair"] == "overall"].iloc[0]
    assert overall["n"] == 6 and overall["diff"] == pytest.approx(-0.5)
    np.testing.assert_allclose(overall["diff_std"], np.std([-1, -1, -1, 1, -2, 1], ddof=1))


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
    tau, n = rank_agreement(table.reset_index())
    assert n == 3 and tau == 1.0  # K3 worst, K3+K5 SK best: the paper's order
    text = render_paper_table(table.reset_index(), "table7", ["proxy"])
    assert "| -1.00 [-1.00, -1.00] lower than twin | -0.97 |" in text
    assert "Kendall tau over the 3 rows run): +1.00" in text


PROXY = Path(__file__).parents[1] / "results/proxy"


def test_the_committed_proxy_tables_are_what_the_committed_trials_give():
    """results/proxy (benchmarks/proxy_tables.py): 3 seeds of every Table 7 row under the proxy, and
    the committed Markdown table is exactly what `table` makes of the committed trials."""
    frame = load_results([PROXY / "table7"])
    assert (frame["status"] == "completed").all() and set(frame["recipe"]) == {"proxy"}
    assert frame["archid"].nunique() == 11 and (frame.groupby("archid")["seed"].nunique() >= 3).all()
    table = paper_table(frame, "table7")
    assert (PROXY / "paper_table7.md").read_text() == render_paper_table(table, "table7", list(frame["recipe"]))
    six = load_results([PROXY / "table7", PROXY / "table6"])
    six = paper_table(six, "table6")
    assert (six[six["row"] != "extra"]["n"] >= 3).all()  # its five rows, two of them from the Table 7 sweep
