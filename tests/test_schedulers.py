"""MO-ASHA: ASHA's rungs, promotion by non-dominated rank and hypervolume contribution; its rungs
rebuilt from the trials' result logs after a resume; a real sweep stopped by it."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from sksearch.search import plan_sweep, run_sweep
from sksearch.search.schedulers import MultiObjectiveASHA, rungs
from sksearch.search.store import Store
from tests.test_sweep import QUICK, SPACES

TWO = [("top1_err", "min"), ("gmacs", "min")]


@pytest.mark.parametrize("max_t", [2, 4, 8, 16, 100])
def test_the_rungs_are_rays_asha_rungs(max_t):
    ray_rungs = [milestone for milestone, _ in ASHAScheduler(metric="m", mode="min", max_t=max_t)._brackets[0]._rungs]
    assert rungs(max_t) == ray_rungs


def test_the_order_is_rank_then_hypervolume_contribution():
    scheduler = MultiObjectiveASHA(TWO, 8)
    values = np.array([[10.0, 5.0], [20.0, 1.0], [30.0, 6.0], [11.0, 4.9], [40.0, 7.0]])
    order = scheduler.order(values)
    assert set(order[:3]) == {0, 1, 3} and order[3:] == [2, 4]  # the front, then rank 1, then rank 2
    # (10, 5) and (11, 4.9) crowd each other: each adds little that the other does not cover
    assert order[0] == 1
    maximised = MultiObjectiveASHA([("top1_err", "min"), ("images_per_s", "max")], 8)
    assert maximised.order(np.array([[10.0, 100.0], [10.0, 50.0]])) == [0, 1]


def report(scheduler, trial_id, epoch, error, gmacs):
    trial = SimpleNamespace(trial_id=trial_id)
    return scheduler.on_trial_result(None, trial, {"training_iteration": epoch, "top1_err": error, "gmacs": gmacs})


def test_a_trial_goes_on_only_among_the_best_quarter_of_its_rung():
    scheduler = MultiObjectiveASHA(TWO, 8)
    assert report(scheduler, "a", 1, 50.0, 2.0) == TrialScheduler.CONTINUE  # alone at rung 1
    assert report(scheduler, "b", 1, 60.0, 3.0) == TrialScheduler.STOP  # dominated by a
    assert report(scheduler, "c", 1, 40.0, 1.0) == TrialScheduler.CONTINUE  # dominates both
    assert report(scheduler, "a", 2, 45.0, 2.0) == TrialScheduler.CONTINUE  # between rungs
    assert report(scheduler, "a", 4, 30.0, 2.0) == TrialScheduler.CONTINUE  # first at rung 4
    assert report(scheduler, "a", 8, 20.0, 2.0) == TrialScheduler.STOP  # the end
    five = [report(scheduler, name, 1, 45.0 - index, 5.0 - index) for index, name in enumerate("defgh")]
    assert five[-1] == TrialScheduler.CONTINUE  # h dominates a..g: among the best ceil(8/4) = 2


def test_the_rungs_are_rebuilt_from_the_result_logs_after_a_resume(tmp_path):
    """A resumed sweep's MO-ASHA starts empty (Tune keeps no scheduler state): its first report
    rebuilds the rungs from every trial's result.json, so a trial is judged against those before."""
    trials = []
    for name, errors in (("a", [50.0, 45.0]), ("b", [40.0])):
        folder = tmp_path / name
        folder.mkdir()
        lines = [
            {"training_iteration": epoch, "top1_err": error, "gmacs": 2.0} for epoch, error in enumerate(errors, 1)
        ]
        (folder / "result.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        trials.append(SimpleNamespace(trial_id=name, path=str(folder)))
    fresh = MultiObjectiveASHA(TWO, 8)
    controller = SimpleNamespace(get_trials=lambda: trials)
    worse = {"training_iteration": 1, "top1_err": 70.0, "gmacs": 3.0}
    assert fresh.on_trial_result(controller, SimpleNamespace(trial_id="c"), worse) == TrialScheduler.STOP
    assert set(fresh.rungs[-1][1]) == {"a", "b", "c"}  # rung 1: a and b from their logs, c now
    assert MultiObjectiveASHA(TWO, 8).on_trial_result(None, SimpleNamespace(trial_id="c"), worse) == "CONTINUE"


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_grid_sweep_under_mo_asha(tmp_path):
    plan = plan_sweep(SPACES / "smoke.yaml", settings={**QUICK, "epochs": 4}, early_stopping="mo-asha",
                      storage=str(tmp_path), name="moasha")  # fmt: skip
    table = run_sweep(plan, progress=False)
    assert len(table) == 4 and set(table["status"]) <= {"completed", "stopped"}
    assert (table["status"] == "completed").any()
    stopped = table[table["status"] == "stopped"]
    assert stopped["reason"].str.startswith("early stopping after epoch").all() and (stopped["epochs"] == 1).all()
    # one store record a trial, with every epoch it ran (recorded as it ended, before Ray's log had them all)
    records = {record.row["trial_id"]: record for record in Store(str(tmp_path / "store"))}
    assert len(records) == len(list(Store(str(tmp_path / "store")))) == 4
    for row in table.to_dict("records"):
        assert [epoch["epoch"] for epoch in records[row["trial_id"]].history] == list(range(1, row["epochs"] + 1))
