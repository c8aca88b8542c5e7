"""Sweeps on a real local Ray instance (2 CPUs, no dashboard), the test session's one (conftest)."""

import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import sksearch
from sksearch.cli import main
from sksearch.runfiles import read_history, read_trials
from sksearch.search import Resources, load_plan, load_space, plan_sweep, resume_sweep, run_sweep, sweep_status
from sksearch.search.store import Store

SPACES = Path(__file__).parents[1] / "spaces"
QUICK = {"epochs": 2, "train_samples": 128, "val_samples": 64, "batch_size": 32}


# Tests that run sweeps share the session's local Ray instance; the plan, live-table and refusal
# tests need none (they carry no `ray` marker, so a quick `-m "not ray"` loop runs them). The quick
# loop (`-m "not slow"`) keeps the grid sweep below (and test_results' shared one); the others are `slow`.
uses_ray = pytest.mark.usefixtures("local_ray")


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@uses_ray
@pytest.mark.slow  # the quick loop's one sweep is test_results' (every results verb reads it)
def test_a_grid_sweep_over_the_smoke_space(tmp_path):
    plan = plan_sweep(SPACES / "smoke.yaml", settings=QUICK, storage=str(tmp_path))
    table = run_sweep(plan, progress=False)
    assert len(table) == 4 and set(table["status"]) == {"completed"}
    expected = {c.archid for c in load_space(SPACES / "smoke.yaml").enumerate()}
    assert set(table["archid"]) == expected
    for column in (
        "trial_id",
        "branches",
        "attention",
        "spec_kernels",
        "spec_attention",
        "recipe",
        "seed",
        "top1_err",
        "top5_err",
        "best_top1_err",
        "params",
        "macs",
        "gmacs",
        "fvcore_flops",
        "epochs",
        "wall_time",
        "status",
        "reason",
        "checkpoint",
        "trained_params",
    ):
        assert column in table, column
    assert (table["epochs"] == 2).all() and (table["fvcore_flops"] > table["macs"]).all()
    assert table["checkpoint"].map(lambda path: (Path(path) / "checkpoint.pt").exists()).all()
    assert (tmp_path / "smoke" / "sweep.json").exists()
    history = read_history(str(tmp_path / "smoke"))
    assert len(history) == 8 and set(history["epoch"]) == {1, 2}
    status = sweep_status(str(tmp_path / "smoke"))
    assert status["states"] == {"completed": 4} and status["best"]["top1_err"] == table["top1_err"].min()
    # a finished sweep's duration stops at its end
    assert status["ended"] is not None and status["elapsed_s"] == sweep_status(str(tmp_path / "smoke"))["elapsed_s"]
    assert status["trials"] == 4 and not status["driver_alive"] and not (tmp_path / "smoke" / "driver.json").exists()
    records = list(Store(str(tmp_path / "store")))  # one record a trial, with its whole history
    assert len(records) == 4 and all([epoch["epoch"] for epoch in record.history] == [1, 2] for record in records)


def lag_rays_state_behind_the_last_epoch(run_dir: Path) -> None:
    """Ray's saved state and result log as a driver killed after a trial's row was written, before
    Ray saved its state again, leaves them: the trial running at its next-to-last epoch, its last
    checkpoint (the final one, on disk) registered under that epoch's result, the log one line short."""
    from ray import cloudpickle

    (log,) = run_dir.glob("run_trial_*/result.json")
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-1]))
    before_last = json.loads(lines[-2])
    (state_file,) = run_dir.glob("experiment_state-*.json")
    state = json.loads(state_file.read_text())
    ((trial, metadata),) = state["trial_data"]
    trial, metadata = json.loads(trial), json.loads(metadata)
    manager = cloudpickle.loads(bytes.fromhex(metadata["checkpoint_manager"]["value"]))
    manager.latest_checkpoint_result.metrics.update(before_last)
    metadata["checkpoint_manager"]["value"] = cloudpickle.dumps(manager).hex()
    trial["status"], metadata["last_result"] = "RUNNING", before_last
    state["trial_data"] = [[json.dumps(trial), json.dumps(metadata)]]
    state_file.write_text(json.dumps(state))


def one_trial_run_whose_ray_state_lags(tmp_path) -> tuple[pd.DataFrame, Path]:
    """A finished one-trial sweep (3 epochs), its table, and its run folder with Ray's state lagged."""
    space = write(tmp_path, "base: sknet26\nknobs:\n  branches: K3+K5\nrecipe: smoke\n")
    table = run_sweep(plan_sweep(space, settings={**QUICK, "epochs": 3}, storage=str(tmp_path)), progress=False)
    lag_rays_state_behind_the_last_epoch(tmp_path / "space")
    return table, tmp_path / "space"


@pytest.mark.slow
@uses_ray
def test_a_resumed_run_keeps_a_trial_that_ended_after_rays_last_saved_state(tmp_path):
    """Killed between a trial's row and Ray's next save, a driver leaves Ray an older last result;
    resumed, the trial continues from its final checkpoint with nothing left to train. Its row, its
    history and its one store record stand."""
    table, run_dir = one_trial_run_whose_ray_state_lags(tmp_path)
    resumed = resume_sweep(str(run_dir), quiet=True)
    pd.testing.assert_frame_equal(resumed, table)
    assert read_history(str(run_dir))["epoch"].tolist() == [1, 2, 3]
    assert len(list(Store(str(tmp_path / "store")))) == 1


@pytest.mark.slow
@uses_ray
def test_a_trial_whose_end_no_driver_recorded_ends_on_its_last_epoch_when_resumed(tmp_path):
    """Killed after a trial's final checkpoint, before its row and store record: resumed from Ray's
    older state, the trial trains nothing and reports its last epoch again, so it ends completed
    with every epoch (not `stopped` at Ray's older one)."""
    table, run_dir = one_trial_run_whose_ray_state_lags(tmp_path)
    (run_dir / "trials.parquet").unlink()
    store = Store(str(tmp_path / "store"))
    for record in list(store):
        store.remove(record)
    resumed = resume_sweep(str(run_dir), quiet=True)
    columns = ["trial_id", "status", "epochs", "top1_err", "top5_err", "best_top1_err"]
    pd.testing.assert_frame_equal(resumed[columns], table[columns])
    assert resumed["resumed_at_epoch"].iloc[0] == 3  # it trained no epoch
    assert (Path(resumed["checkpoint"].iloc[0]) / "checkpoint.pt").exists()  # the final one, registered again
    assert read_history(str(run_dir))["epoch"].tolist() == [1, 2, 3]
    assert len(list(store)) == 1


@pytest.mark.slow
@uses_ray
def test_a_deleted_table_is_refused_alike_and_repair_rebuilds_it_from_rays_records(tmp_path, capsys):
    plan = plan_sweep(SPACES / "smoke.yaml", settings={**QUICK, "epochs": 1}, storage=str(tmp_path))
    table = run_sweep(plan, progress=False)
    run_dir = tmp_path / "smoke"
    (run_dir / "trials.parquet").unlink()
    (run_dir / "history.parquet").write_bytes(b"PAR1")
    for verb in ("status", "results", "pareto"):  # one verdict, whichever verb asks
        assert main([verb, str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "trials.parquet: lacks 4 trials Ray recorded as finished" in err, err
    assert main(["plot", str(run_dir), "--kind", "pareto", "--out", str(tmp_path / "p.png")]) == 2
    assert main(["repair", str(run_dir)]) == 0
    assert "(4 trials: completed 4)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "trials.parquet"), table)
    assert len(read_history(str(run_dir))) == 4


@uses_ray
@pytest.mark.slow
def test_an_nsga2_sweep_records_both_objectives_and_launches_no_infeasible_network(tmp_path):
    plan = plan_sweep(
        SPACES / "sknet50.yaml",
        recipe="smoke",
        settings=QUICK,
        num_samples=6,
        storage=str(tmp_path),
        name="nsga",
    )
    assert plan.space.search.algorithm == "nsga2"
    table = run_sweep(plan, progress=False)
    assert len(table) == 6 and set(table["status"]) == {"completed"}
    assert table["top1_err"].notna().all() and table["gmacs"].notna().all()
    assert (table["gmacs"] <= 5.0).all()  # the space's budget: violating networks were never launched
    # the seeded known networks ran first
    assert {sksearch.preset("sknet50").archid, sksearch.preset("resnext50_32x4d").archid} <= set(table["archid"])


@uses_ray
@pytest.mark.slow
def test_a_tpe_sweep_with_asha_early_stopping(tmp_path):
    plan = plan_sweep(
        SPACES / "smoke.yaml",
        settings={**QUICK, "epochs": 4},
        algorithm="tpe",
        num_samples=4,
        early_stopping="asha",
        objectives="top1_err:min",
        storage=str(tmp_path),
        name="asha",
    )
    table = run_sweep(plan, progress=False)
    assert len(table) == 4 and set(table["status"]) <= {"completed", "stopped"}
    assert (table["status"] == "completed").any()
    stopped = table[table["status"] == "stopped"]
    assert stopped["reason"].str.startswith("early stopping after epoch").all()
    assert (stopped["epochs"] < 4).all() and (table[table["status"] == "completed"]["epochs"] == 4).all()


@pytest.mark.slow
@uses_ray
def test_a_diverging_trial_is_recorded_as_failed_while_the_others_finish(tmp_path):
    space = write(
        tmp_path,
        """
        base: sknet26
        knobs:
          unit.attention: {grid: [true, false]}
          lr: {grid: [0.1, 1000000.0]}
        recipe: {preset: smoke, zero_init_last_bn: false}
    """,
    )
    table = run_sweep(plan_sweep(space, settings=QUICK, storage=str(tmp_path)), progress=False)
    assert len(table) == 4
    # a spec-path knob is a column named as written, beside the spec it set
    assert list(table["unit.attention"]) == list(table["spec_attention"]) and set(table["dilation_1"]) == {2}
    failed = table[table["status"] == "failed"]
    assert set(failed["lr"]) == {1000000.0} and len(failed) == 2
    assert failed["reason"].str.startswith("diverged: loss").all()
    assert set(table[table["lr"] == 0.1]["status"]) == {"completed"}


@uses_ray
@pytest.mark.slow
def test_a_two_worker_data_parallel_trial(tmp_path):
    space = write(tmp_path, "base: sknet26\nknobs:\n  branches: K3+K5\nrecipe: smoke\n")
    plan = plan_sweep(space, settings=QUICK, storage=str(tmp_path), resources=Resources(workers_per_trial=2))
    table = run_sweep(plan, progress=False)
    assert list(table["status"]) == ["completed"] and int(table["epochs"].iloc[0]) == 2
    assert list((tmp_path / "space").glob("*-workers/checkpoint_*"))  # Ray Train's own checkpoints


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algorithm", "grid", str(SPACES / "sknet50.yaml")], "--algorithm: grid needs a finite space"),
        (
            ["--objectives", "top1_err:min,flops:min", str(SPACES / "smoke.yaml")],
            "--objectives: unknown metric 'flops'",
        ),
        (["--address", "auto", str(SPACES / "smoke.yaml")], "--storage: 'results' is a relative path that workers"),
        (["--recipe", "smok", str(SPACES / "smoke.yaml")], "recipe.preset: unknown recipe 'smok'"),
        (["--set", "epohcs=2", str(SPACES / "smoke.yaml")], "recipe.epohcs: unknown recipe key (did you mean epochs?)"),
        (["--algorithm", "bayes", str(SPACES / "smoke.yaml")], "--algorithm: must be one of grid, random, tpe, nsga2"),
        (["--name", "a b", str(SPACES / "smoke.yaml")], "--name: must be letters"),
        (["nothere.yaml"], "nothere.yaml: cannot read"),
        # TPE needs a budget; a default of 1 trial would be a silent surprise
        (["--algorithm", "tpe", str(SPACES / "smoke.yaml")], "--num-samples: tpe needs a number of trials"),
        (["--storage", str(SPACES / "smoke.yaml"), str(SPACES / "smoke.yaml")], "smoke.yaml is a file, not a folder"),
        (["--storage", "/proc/sksearch/results", str(SPACES / "smoke.yaml")], "--storage: cannot write into /proc"),
        (
            ["--objectives", "top1_err,gmacs,params_m,top5_err", str(SPACES / "smoke.yaml")],
            "--objectives: takes 1 to 3 objectives, got 4",  # a front and its hypervolume take 2 or 3
        ),
        (
            ["--early-stopping", "mo-asha", "--objectives", "top1_err:min", str(SPACES / "smoke.yaml")],
            "--early-stopping: mo-asha ranks two or more objectives and there is one (top1_err); plain asha",
        ),
        (["--objectives", "top1_err,latency", str(SPACES / "smoke.yaml")], "--objectives: unknown metric 'latency'"),
    ],
)
def test_bad_sweep_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()


def test_a_bad_cluster_grace_setting_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKSEARCH_CLUSTER_GRACE_S", "soon")
    assert main(["sweep", str(SPACES / "smoke.yaml")]) == 2
    err = capsys.readouterr().err
    assert "SKSEARCH_CLUSTER_GRACE_S: must be a positive number of seconds, not 'soon'" in err and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


@uses_ray
def test_sweep_refuses_an_existing_sweep_and_impossible_resources(tmp_path, capsys):
    plan = plan_sweep(SPACES / "smoke.yaml", settings=QUICK, storage=str(tmp_path), name="twice")
    (tmp_path / "twice").mkdir()
    (tmp_path / "twice" / "sweep.json").write_text(plan.to_json())
    assert main(["sweep", str(SPACES / "smoke.yaml"), "--storage", str(tmp_path), "--name", "twice"]) == 2
    assert "already holds a sweep; `sksearch resume" in capsys.readouterr().err
    greedy = plan_sweep(
        SPACES / "smoke.yaml",
        settings=QUICK,
        storage=str(tmp_path),
        name="greedy",
        resources=Resources(gpus_per_trial=0.5),
    )
    with pytest.raises(sksearch.ConfigError, match=r"--gpus-per-trial: asks for 0.5 GPUs; the cluster has 0"):
        run_sweep(greedy, progress=False)
    assert not (tmp_path / "greedy").exists()


def test_status_and_resume_of_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "is not a sksearch sweep folder (no sweep.json)" in capsys.readouterr().err
    assert main(["resume", str(tmp_path)]) == 2


def test_the_plan_round_trips_through_sweep_json(tmp_path):
    plan = plan_sweep(
        SPACES / "table7.yaml",
        recipe="smoke",
        settings=QUICK,
        storage=str(tmp_path),
        seeds=[0, 1],
        resources=Resources(cpus_per_trial=2, max_concurrent=3),
    )
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "sweep.json").write_text(plan.to_json())
    again = load_plan(str(tmp_path / "x"))
    assert again.space.recipe == plan.space.recipe and again.space.search == plan.space.search
    assert again.resources == plan.resources and again.space.search.seeds == (0, 1)
    assert pd.Series([c.archid for c in again.space.enumerate()]).nunique() == 11


def test_the_live_table_stays_short_and_names_networks_and_stopped_trials():
    """Hundreds of trials: counts, the running ones, the best few and the latest finished, never a
    line per trial; an ASHA-stopped trial reads `stopped`, as in the results table."""
    from ray.tune.experiment import Trial

    from sksearch.search.callbacks import LiveTable

    plan = plan_sweep(SPACES / "table7.yaml", recipe="smoke", settings={"epochs": 3}, storage="unused")
    trials = []
    for index in range(300):
        candidate = plan.candidates[index % len(plan.candidates)]
        trial = Trial("run_trial", config={"point": candidate.knobs, "seed": 0}, stub=True)
        if index < 200:  # finished: every third one stopped early by the scheduler after epoch 1
            trial.set_status(Trial.TERMINATED)
            stopped = index % 3 == 0
            trial.update_last_result({"epoch": 1 if stopped else 3, "top1_err": 90.0 - index / 10,
                                      "status": None if stopped else "completed"})  # fmt: skip
        elif index < 204:
            trial.set_status(Trial.RUNNING)
            trial.update_last_result({"epoch": 2, "top1_err": 50.0})
        trials.append(trial)
    lines = LiveTable(plan, rows=3).lines(trials, elapsed=60)
    assert lines[0] == "[table7]     60s  300 trials: pending 96, running 4, completed 133, stopped 67"
    assert len(lines) <= 1 + 3 * 4 and " running (+1 more):" in lines
    best = lines[lines.index(" best top1_err (+130 more):") + 1]
    assert best.split()[1:2] == ["completed"] and "70.10" in best  # trial 199, the best completed
    rows = [line for line in lines if line.startswith("  ")]
    assert len(rows) == 9 and all(line.endswith((" SK", " sum")) for line in rows)  # e.g. `K3+K5 SK`


def test_the_live_table_is_one_line_per_finished_trial_when_the_output_is_not_a_terminal(capsys):
    """Redirected to a file, the table is not redrawn every 10 s: a line per trial that ends, and
    the table once at the end."""
    from ray.tune.experiment import Trial

    from sksearch.search.callbacks import LiveTable

    plan = plan_sweep(SPACES / "smoke.yaml", recipe="smoke", settings={"epochs": 3}, storage="unused")
    live = LiveTable(plan, interval=0.0)
    trials = [Trial("run_trial", config={"point": c.knobs, "seed": 0}, stub=True) for c in plan.candidates]
    for trial in trials:
        trial.set_status(Trial.RUNNING)
        trial.update_last_result({"epoch": 2, "top1_err": 50.0})
    for _ in range(5):
        live.on_step_end(0, trials)
    assert capsys.readouterr().out == ""  # not a terminal (pytest captures): nothing redrawn
    trials[0].update_last_result({"epoch": 3, "top1_err": 41.0, "status": "completed"})
    live.on_trial_complete(0, trials, trials[0])  # Tune calls it while the trial still reads RUNNING
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[smoke]") and " completed " in lines[0] and "41.00" in lines[0]
    assert lines[0].endswith((" SK", " sum"))  # named among the sweep's trials, e.g. `K3+K5 SK`
    trials[0].set_status(Trial.TERMINATED)
    live.on_experiment_end(trials)
    assert "4 trials: running 3, completed 1" in capsys.readouterr().out


@pytest.mark.slow
@uses_ray
def test_the_store_answers_a_rerun_and_trains_only_new_networks(tmp_path, capsys):
    """A finished sweep run again under another name trains nothing (no Ray trial at all); a new
    knob value trains exactly the new network; --no-reuse trains again."""
    one = write(tmp_path, "base: sknet26\nknobs:\n  branches: {grid: [K3+K5]}\nrecipe: smoke\n", "one.yaml")
    two = write(tmp_path, "base: sknet26\nknobs:\n  branches: {grid: [K3+K5, K3+K7]}\nrecipe: smoke\n", "two.yaml")
    quick = {**QUICK, "epochs": 1}
    first = run_sweep(plan_sweep(one, settings=quick, storage=str(tmp_path), name="first"), progress=False)
    again = run_sweep(plan_sweep(one, settings=quick, storage=str(tmp_path), name="again"), progress=False)
    assert list(again["status"]) == ["reused"] and again["reused_from"].iloc[0] == f"first/{first['trial_id'][0]}"
    assert again["top1_err"].iloc[0] == first["top1_err"].iloc[0] and not list((tmp_path / "again").glob("run_trial*"))
    assert len(read_history(str(tmp_path / "again"))) == 1  # the stored history came along
    wider = run_sweep(plan_sweep(two, settings=quick, storage=str(tmp_path), name="wider"), progress=False)
    assert sorted(wider["status"]) == ["completed", "reused"]
    assert wider.set_index("status").loc["completed", "branches"] == "K3+K7"  # only the new network trained
    fresh = run_sweep(plan_sweep(one, settings=quick, storage=str(tmp_path), name="fresh", reuse=False), progress=False)
    assert list(fresh["status"]) == ["completed"]
    assert main(["store", "ls", "--store", str(tmp_path / "store")]) == 0
    assert "3 records of 2 keys" in capsys.readouterr().out  # K3+K5 twice (first, fresh), K3+K7 once
    assert main(["pareto", str(tmp_path / "again")]) == 0  # a reused row is a result like a completed one


@pytest.mark.slow
@uses_ray
def test_tpe_never_trains_a_network_twice_and_stops_when_nothing_new_is_left(tmp_path):
    """Four networks, six samples asked: TPE's repeated suggestions are answered (from the sweep's
    own results), never trained again, and the search ends with the four."""
    plan = plan_sweep(SPACES / "smoke.yaml", settings={**QUICK, "epochs": 1}, storage=str(tmp_path),
                      algorithm="tpe", num_samples=6)  # fmt: skip
    table = run_sweep(plan, progress=False)
    assert len(table) == 4 and table["archid"].is_unique and set(table["status"]) == {"completed"}


@pytest.mark.slow
@uses_ray
def test_a_trial_stopped_early_before_goes_on_from_its_stored_checkpoint(tmp_path):
    """The store holds a trial of this network, recipe and seed that early stopping ended after
    epoch 1 (a real checkpoint); asked for 2 epochs, the sweep continues it instead of starting over."""
    from sksearch.search.store import Record, trial_key
    from sksearch.train import train

    one = write(tmp_path, "base: sknet26\nknobs:\n  branches: {grid: [K3+K5]}\nrecipe: smoke\n", "one.yaml")
    plan = plan_sweep(one, settings={**QUICK, "epochs": 2}, storage=str(tmp_path), name="full")
    (candidate,) = plan.candidates
    recipe = plan.recipe_for(candidate.knobs, 0)

    class Stopped(Exception):
        pass

    def stop_after_epoch_1(metrics, checkpoint):
        if metrics["epoch"] == 1:
            raise Stopped

    with pytest.raises(Stopped):
        train(candidate.spec, recipe, tmp_path / "early", report=stop_after_epoch_1)
    row = {"sweep": "asha", "trial_id": "t0", "status": "stopped", "epochs": 1, "checkpoint": str(tmp_path / "early")}
    Store(plan.store_location).put(Record(trial_key(candidate.spec, recipe), row, ()))
    (done,) = run_sweep(plan, progress=False).to_dict("records")
    assert done["status"] == "completed" and done["epochs"] == 2 and done["resumed_at_epoch"] == 1
    assert done["reason"] == "continued from stored trial asha/t0 after epoch 1"


@uses_ray
def test_a_stored_failure_answers_an_optuna_suggestion_as_failed_without_a_launch(tmp_path):
    """Every network of the space stored as diverged (training is deterministic per seed): TPE's
    suggestions are each told failed, as a grid sweep answers them, and none is launched."""
    from sksearch.search.searchers import search_setup
    from sksearch.search.store import Record, trial_key

    plan = plan_sweep(SPACES / "smoke.yaml", settings=QUICK, storage=str(tmp_path), algorithm="tpe", num_samples=4)
    for index, candidate in enumerate(plan.candidates):
        key = trial_key(candidate.spec, plan.recipe_for(candidate.knobs, 0))
        row = {"sweep": "old", "trial_id": f"t{index}", "status": "failed", "reason": "diverged: loss nan"}
        Store(plan.store_location).put(Record(key, row, ()))
    _, searcher, _ = search_setup(plan, [])
    searcher.max_tries = 12
    assert searcher.suggest("trial-0") == searcher.FINISHED
    assert searcher.answered == 12 and not searcher.keys  # each answered, nothing running


@pytest.mark.slow
@uses_ray
def test_a_tpe_study_starts_from_the_store_and_trains_only_networks_it_lacks(tmp_path):
    from sksearch.search.searchers import stored_results

    quick = {**QUICK, "epochs": 1}
    first = run_sweep(plan_sweep(SPACES / "smoke.yaml", settings=quick, storage=str(tmp_path), name="first",
                                 algorithm="tpe", num_samples=2), progress=False)  # fmt: skip
    plan = plan_sweep(SPACES / "smoke.yaml", settings=quick, storage=str(tmp_path), name="second",
                      algorithm="tpe", num_samples=4)  # fmt: skip
    known = stored_results(plan)  # given to the Optuna study as completed trials before it starts
    assert sorted(values[0] for _, values in known) == sorted(first["top1_err"])
    second = run_sweep(plan, progress=False)
    assert len(second) == 2 and not set(second["archid"]) & set(first["archid"])  # the two it lacked


@pytest.mark.slow
@uses_ray
def test_extend_trains_exactly_the_new_networks_and_seeds_and_the_table_becomes_the_union(tmp_path, capsys):
    one = write(tmp_path, "base: sknet26\nknobs:\n  branches: {grid: [K3+K5]}\nrecipe: smoke\n", "one.yaml")
    two = write(tmp_path, "base: sknet26\nknobs:\n  branches: {grid: [K3+K5, K3+K7]}\nrecipe: smoke\n", "two.yaml")
    base = run_sweep(
        plan_sweep(one, settings={**QUICK, "epochs": 1}, storage=str(tmp_path), name="base"), progress=False
    )
    shutil.rmtree(tmp_path / "store")  # as for a sweep run before the store existed: extend records it first
    run_dir = str(tmp_path / "base")
    assert main(["extend", run_dir, "--space", str(two), "--num-cpus", "2", "--quiet"]) == 0
    assert "extended sweep" in capsys.readouterr().out
    table = read_trials(run_dir)
    assert len(table) == 2 and list(table["status"]) == ["completed", "completed"]
    assert table.set_index("branches").loc["K3+K5", "trial_id"] == base["trial_id"][0]  # not trained again
    assert len(read_history(run_dir)) == 2
    assert main(["extend", run_dir, "--seeds", "0,1", "--num-cpus", "2", "--quiet"]) == 0
    table = read_trials(run_dir)
    assert len(table) == 3 and sorted(table["seed"]) == [0, 0, 1]  # the one new seed of the sweep's own space
    assert main(["extend", str(tmp_path)]) == 2  # not a sweep folder: one line, nothing run
    assert "is not a sksearch sweep folder" in capsys.readouterr().err
