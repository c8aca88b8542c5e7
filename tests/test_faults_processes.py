"""The fault suite (`-m faults`), killed processes: a trial's worker killed (retried, or errored
for good: exit 3), Ctrl-C, the driver killed and resumed, an extend killed. Each driver is a real
`sksearch` process."""

import json
import os
import signal

import pandas as pd
import pytest

from sksearch.runfiles import read_trials
from sksearch.search import load_space
from sksearch.search.store import Store
from tests.clusters import wait_for
from tests.faults import (
    ONE_TRIAL,
    SPACES,
    finish,
    one_trial_space,
    results,
    sksearch_process,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.faults]


def kill_worker_after_two_epochs(run_dir):
    """SIGKILL the process training the trial once it has reported two epochs."""

    def worker_after_two_epochs():
        for lines in results(run_dir).values():
            if any(line.get("epoch", 0) >= 2 for line in lines):
                return lines[-1]["pid"]
        return None

    os.kill(wait_for(worker_after_two_epochs, what="two reported epochs"), signal.SIGKILL)


def test_a_killed_trial_worker_is_retried_from_its_checkpoint(tmp_path):
    driver = sksearch_process(
        "sweep", str(one_trial_space(tmp_path)), "--storage", str(tmp_path), "--max-failures", "2", *ONE_TRIAL
    )
    run_dir = tmp_path / "one"
    kill_worker_after_two_epochs(run_dir)
    output = finish(driver)
    # one line says what happened; Ray's traceback is in driver.log, its banner and hints nowhere
    assert "crashed (" in output and "retry 1 of 2, from its last checkpoint" in output, output
    assert "Traceback" not in output and "ActorDiedError" in (run_dir / "driver.log").read_text()
    assert not any(noise in output for noise in ("Configuration for experiment", "TensorBoard", "Token auth"))
    table = read_trials(str(run_dir))
    row = table.iloc[0]
    assert len(table) == 1 and row["status"] == "completed" and row["epochs"] == 6
    assert row["resumed_at_epoch"] >= 2  # the retry started from a checkpoint, not from scratch
    (lines,) = results(run_dir).values()
    assert len({line["pid"] for line in lines}) == 2  # two worker processes served the trial
    assert [line["epoch"] for line in lines][-1] == 6


def test_ctrl_c_leaves_unfinished_trials_unrecorded_exits_130_and_resume_finishes(tmp_path):
    """Tune answers Ctrl-C by terminating the unfinished trials: they must not read as stopped by
    early stopping (nor enter the store as such), and the driver must not report a finished sweep."""
    args = ["--storage", str(tmp_path), "--num-cpus", "2", "--quiet", "--max-concurrent", "1",
            "--set", "epochs=2", "--set", "train_samples=512", "--set", "val_samples=128"]  # fmt: skip
    driver = sksearch_process("sweep", str(SPACES / "smoke.yaml"), *args, start_new_session=True)
    run_dir = tmp_path / "smoke"
    wait_for(lambda: len(read_trials(str(run_dir))) >= 1, what="a finished trial")
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 130, output
    table = read_trials(str(run_dir))
    finished = len(table)
    assert f"sksearch sweep: interrupted before the sweep finished; `sksearch resume {run_dir}` continues it" in output
    assert "Pareto front" not in output  # no finished sweep is reported
    assert finished < 4 and set(table["status"]) == {"completed"}
    assert [record.row["status"] for record in Store(str(tmp_path / "store"))] == ["completed"] * finished
    status = json.loads(finish(sksearch_process("status", str(run_dir), "--json")))
    assert status["states"]["completed"] == finished and "stopped" not in status["states"]

    finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2"))
    table = read_trials(str(run_dir))
    assert len(table) == 4 and set(table["status"]) == {"completed"}


def test_a_killed_driver_resumes_without_running_a_finished_trial_again_and_mo_asha_decides_as_without_one(tmp_path):
    """The driver (and the local Ray it started) killed after two finished trials: status says
    nothing runs; resume runs no finished trial again, and MO-ASHA's rungs, rebuilt from the result
    logs, end every trial as in an undisturbed run of the same sweep (one trial at a time, so the
    order and the training are deterministic); the resumed run's status is the whole run's."""
    args = ["--num-cpus", "2", "--quiet", "--max-concurrent", "1", "--early-stopping", "mo-asha",
            "--objectives", "top1_err:min,gmacs:min", "--set", "epochs=4", "--set", "train_samples=512",
            "--set", "val_samples=128"]  # fmt: skip
    finish(sksearch_process("sweep", str(SPACES / "smoke.yaml"), "--storage", str(tmp_path / "calm"), *args))
    calm = read_trials(str(tmp_path / "calm" / "smoke")).set_index("archid")[["status", "epochs"]]
    storage = ["--storage", str(tmp_path / "killed"), "--no-reuse"]
    driver = sksearch_process("sweep", str(SPACES / "smoke.yaml"), *storage, *args, start_new_session=True)
    run_dir = tmp_path / "killed" / "smoke"
    wait_for(lambda: len(read_trials(str(run_dir))) >= 2, what="two finished trials")
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait()
    finished_before = read_trials(str(run_dir))
    logs_before = {name: lines for name, lines in results(run_dir).items()
                   if any(f"_{trial_id}_" in name for trial_id in finished_before["trial_id"])}  # fmt: skip
    assert len(finished_before) >= 2 and len(logs_before) >= 2
    status = json.loads(finish(sksearch_process("status", str(run_dir), "--json")))
    assert sum(status["states"].values()) == 4 and "running" not in status["states"]  # nothing runs now
    assert not status["driver_alive"] and sum(status["states"].get(s, 0) for s in ("completed", "stopped")) == len(
        finished_before
    )

    output = finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2"))
    assert "results table" in output
    assert "Failed to fetch metrics" not in output and "Traceback" not in output  # Ray's noise is in driver.log
    resumed = read_trials(str(run_dir))
    assert set(resumed["archid"]) == {c.archid for c in load_space(SPACES / "smoke.yaml").enumerate()}
    logs_after = results(run_dir)
    for name, lines in logs_before.items():  # finished trials were not run again
        assert logs_after[name] == lines
    for lines in logs_after.values():  # no epoch of a trial reported twice at its end
        assert [line["epoch"] for line in lines].count(lines[-1]["epoch"]) == 1
    assert (calm["status"] == "stopped").any()  # the test means something only if MO-ASHA stopped one
    pd.testing.assert_frame_equal(resumed.set_index("archid")[["status", "epochs"]].sort_index(), calm.sort_index())
    after = json.loads(finish(sksearch_process("status", str(run_dir), "--json")))  # the resumed run, whole
    assert after["states"] == resumed["status"].value_counts().to_dict() and after["trials"] == 4
    assert not after["resumable"]
    assert after["trials_time_s"] == pytest.approx(resumed["wall_time"].sum()) and after["ended"] is not None


def test_a_trial_that_errors_after_its_retries_exits_3_naming_it_with_blank_metrics(tmp_path):
    driver = sksearch_process(
        "sweep", str(one_trial_space(tmp_path)), "--storage", str(tmp_path), "--max-failures", "0", *ONE_TRIAL
    )
    run_dir = tmp_path / "one"
    kill_worker_after_two_epochs(run_dir)
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 3, output
    (row,) = read_trials(str(run_dir)).to_dict("records")
    assert f"trial {row['trial_id']} errored after all retries: " in output and "Traceback" not in output
    assert row["status"] == "error" and row["epochs"] >= 2 and "The actor died unexpectedly" in row["reason"]
    assert all(row[name] is None or row[name] != row[name] for name in ("top1_err", "top5_err", "best_top1_err"))


def test_a_killed_extend_is_continued_by_the_next_one_not_trained_again(tmp_path):
    space = one_trial_space(tmp_path)
    settings = ["--set", "epochs=3", "--set", "train_samples=256", "--set", "val_samples=64"]
    finish(sksearch_process("sweep", str(space), "--storage", str(tmp_path), "--num-cpus", "2", "--quiet", *settings))
    run_dir = tmp_path / "one"
    extend = sksearch_process("extend", str(run_dir), "--seeds", "0,1", "--num-cpus", "2", "--quiet",
                              start_new_session=True)  # fmt: skip
    extension = tmp_path / "one.extend1"
    wait_for(lambda: any(line.get("epoch", 0) >= 1 for lines in results(extension).values() for line in lines),
             what="the extension's first epoch")  # fmt: skip
    os.killpg(extend.pid, signal.SIGKILL)
    extend.wait()
    output = finish(sksearch_process("extend", str(run_dir), "--seeds", "0,1", "--num-cpus", "2", "--quiet"))
    assert f"continuing the unfinished extension {extension}" in output, output
    table = read_trials(str(run_dir))
    assert sorted(table["seed"]) == [0, 1] and set(table["status"]) == {"completed"}, table
    # seed 1 trained once, in the first extension (continued), not again in the second
    second = read_trials(str(tmp_path / "one.extend2"))
    assert (second["status"] == "reused").all()
