"""The figures, drawn from the committed results tables (no training, no Ray): each one's panel grid,
labels and legend entries, read back from what matplotlib drew (tests.pictures)."""

import itertools
from pathlib import Path

import pandas as pd
import pytest

from sksearch import load_results
from sksearch.plots import MOST_PANELS_PER_ROW, plot_curves, plot_edf, plot_pareto, plot_replay
from sksearch.results import published_points
from sksearch.results.loading import learning_curves
from sksearch.schema import axis_label
from tests.pictures import drawn

RESULTS = Path(__file__).resolve().parents[1] / "results"
SMOKE = RESULTS / "sknet50_smoke"  # 56 networks of the SKNet-50 space, every knob varies
TABLE7 = RESULTS / "proxy-v1" / "table7"
FRONT = [("top1_err", "min"), ("gmacs", "min")]


@pytest.fixture(scope="module")
def smoke():
    return load_results(SMOKE)


def overlapping(boxes):
    """Pairs of (x0, y0, x1, y1) pixel boxes that overlap."""
    return [
        (a, b)
        for a, b in itertools.combinations(boxes, 2)
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]


def test_edf_panels_sit_on_a_grid_and_count_networks_not_trials(smoke, tmp_path):
    twice = pd.concat([smoke, smoke.assign(seed=1, trial_id=smoke["trial_id"] + "_again")], ignore_index=True)
    panels = drawn(plot_edf(twice, tmp_path / "edf.png"))
    assert len(panels) == 12
    assert {tuple(p["grid"][:2]) for p in panels} == {(3, MOST_PANELS_PER_ROW)}  # 12 panels: 3 rows of 4
    assert [p["grid"][2] for p in panels] == list(range(12))
    titles = [p["title"] for p in panels]
    assert titles[:2] == ["branches M", "kernel of branch 0"] and "depth of conv4_x" in titles
    assert not set(titles) & set(smoke.columns)  # words, not column names
    for panel in panels:  # each value's count is of networks (each seed mean once): 56, not 112
        counts = [int(entry.split("(")[1].split(" network")[0]) for entry in panel["legend"]]
        assert sum(counts) == 56, panel["legend"]
        assert panel["ylabel"] == "fraction of networks" and panel["xlabel"] == "top-1 error (%)"
    attention = panels[titles.index("attention: SK or plain sum")]
    assert attention["legend"] == ["sum (28 networks)", "SK (28 networks)"]


def test_a_few_choices_stay_on_one_row(smoke, tmp_path):
    panels = drawn(plot_edf(smoke, tmp_path / "edf.png", by=["attention", "reduction"]))
    assert [p["grid"] for p in panels] == [[1, 2, 0], [1, 2, 1]]


def test_pareto_keeps_the_papers_imagenet_points_on_their_own_panel(tmp_path):
    frame = load_results(TABLE7)
    sweep, paper = drawn(plot_pareto(frame, FRONT, tmp_path / "front.png", published_points(frame)))
    assert "published (paper)" not in sweep["legend"] and paper["legend"] == ["published (paper)"]
    assert "ImageNet" in paper["title"] and sweep["title"].startswith("sweep table7, recipe proxy: 11 networks")
    assert "knee" not in sweep["legend"]  # a 2-point front has no knee
    assert (sweep["xlabel"], sweep["ylabel"]) == ("top-1 error (%)", "GMACs")
    assert set(sweep["labels"]) == {"K3 sum", "K3+K5 sum"}  # short names sit beside their points
    assert not overlapping(sweep["label_boxes"])


def test_pareto_numbers_long_names_and_draws_a_knee_on_a_front_of_three(smoke, tmp_path):
    (panel,) = drawn(plot_pareto(smoke, FRONT, tmp_path / "front.png"))
    assert "knee" in panel["legend"] and "Pareto front (bars: 1 std over seeds)" in panel["legend"]
    *numbers, key = panel["labels"]
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)] and len(numbers) >= 3
    assert key.startswith("1: num_branches=")  # the key under the panel names each numbered point
    assert not overlapping(panel["label_boxes"][:-1])


def test_an_axis_of_values_within_one_percent_shows_the_percentage_above_the_smallest(smoke, tmp_path):
    near = smoke.assign(gmacs=4.5 + smoke["gmacs"] / 1e4)  # GMACs differing in the 4th digit
    (panel,) = drawn(plot_pareto(near, FRONT, tmp_path / "front.png"))
    low = near[near["status"] == "completed"]["gmacs"].min()
    assert panel["ylabel"] == f"GMACs: % above {low:.6g}" and panel["xlabel"] == "top-1 error (%)"


def test_curves_name_each_trial_by_network_and_seed(smoke, tmp_path):
    (panel,) = drawn(plot_curves(learning_curves([SMOKE]), smoke, tmp_path / "curves.png", top=3))
    assert len(panel["legend"]) == 3 and all(entry.endswith(", seed 0") for entry in panel["legend"])
    assert all(trial not in " ".join(panel["legend"]) for trial in smoke["trial_id"])  # words, not ids
    assert (panel["xlabel"], panel["ylabel"]) == ("epoch", "top-1 error (%)")


@pytest.mark.parametrize(("axis", "xlabel"), [("compute", "compute spent"), ("trial_epochs", "trial-epochs spent")])
def test_replay_draws_a_panel_per_algorithm_with_its_own_band(axis, xlabel, tmp_path):
    curves = pd.read_csv(SMOKE / "replay" / "anytime.csv")
    panels = drawn(plot_replay(curves, tmp_path / "replay.png", axis=axis, title="t"))
    algorithms = list(dict.fromkeys(curves["algorithm"]))
    assert [p["title"] for p in panels] == algorithms and all(p["grid"][:2] == [2, 3] for p in panels)
    assert panels[0]["legend"] == ["other algorithms (median)", "median", "quartiles (25-75%)"]
    assert panels[0]["legend_title"] == f"over {int(curves['repeats'].max())} repeats"
    assert all(p["xlabel"].startswith(xlabel) for p in panels)


@pytest.mark.parametrize(
    ("column", "label"),
    [("branch_0", "kernel of branch 0"), ("kernel_1", "kernel of branch 1"), ("depth_2", "depth of conv4_x"),
     ("cardinality", "groups G (cardinality)"), ("gmacs", "GMACs"), ("spec_min_dim", "spec: min dim"),
     ("colour", "colour")],
)  # fmt: skip
def test_columns_read_as_words_with_units(column, label):
    assert axis_label(column) == label
