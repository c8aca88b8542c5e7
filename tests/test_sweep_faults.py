"""The fault suite (`-m faults`): sweeps under injected faults, each driver a real `sksearch`
process. A trial's worker killed (retried, or errored for good: exit 3), the driver killed and
resumed, a deleted checkpoint, a damaged table, a copied run folder, a stalled node, and a
two-node local cluster."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sksearch.runfiles import read_trials
from sksearch.search import load_space
from sksearch.search.store import Store
from tests.clusters import descendants, local_cluster, wait_for
from tests.filesystems import small_filesystem

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.faults]
SPACES = Path(__file__).parents[1] / "spaces"


def sksearch_process(*args, **popen):
    command = [sys.executable, "-m", "sksearch.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def results(run_dir):
    """{trial dir: [reported results]} from Ray's per-trial result.json logs."""
    logs = {}
    for path in Path(run_dir).glob("run_trial_*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        logs[path.parent.name] = lines
    return logs


def one_trial_space(tmp_path):
    space = tmp_path / "one.yaml"
    space.write_text("base: sknet26\nknobs:\n  branches: K3+K5\nrecipe: smoke\n")
    return space


def kill_worker_after_two_epochs(run_dir):
    """SIGKILL the process training the trial once it has reported two epochs."""

    def worker_after_two_epochs():
        for lines in results(run_dir).values():
            if any(line.get("epoch", 0) >= 2 for line in lines):
                return lines[-1]["pid"]
        return None

    os.kill(wait_for(worker_after_two_epochs, what="two reported epochs"), signal.SIGKILL)


ONE_TRIAL = [
    "--num-cpus",
    "2",
    "--quiet",
    "--set",
    "epochs=6",
    "--set",
    "train_samples=1024",
    "--set",
    "val_samples=128",
]


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


@pytest.fixture
def two_node_cluster():
    with local_cluster(nodes=2) as cluster:
        yield cluster


@pytest.mark.cluster
def test_a_sweep_on_a_two_node_cluster_spreads_its_trials(tmp_path, two_node_cluster):
    address, env = two_node_cluster
    sweep = ["sweep", str(SPACES / "smoke.yaml"), "--address", address, "--storage", str(tmp_path), "--quiet",
             "--set", "epochs=3", "--set", "train_samples=512", "--set", "val_samples=64"]  # fmt: skip
    output = finish(sksearch_process(*sweep, env=env))
    assert "results table" in output
    table = read_trials(str(tmp_path / "smoke"))
    assert len(table) == 4 and set(table["status"]) == {"completed"}
    assert table["node_id"].nunique() == 2  # both nodes ran trials
    # the trials of both nodes are in the one store: the same sweep again trains nothing
    stored = Store(str(tmp_path / "store"))
    assert len({record.row["node_id"] for record in stored}) == 2
    finish(sksearch_process(*sweep, "--name", "again", env=env))
    rerun = read_trials(str(tmp_path / "again"))
    assert set(rerun["status"]) == {"reused"} and set(rerun["reused_from"]) == {f"smoke/{t}" for t in table["trial_id"]}


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


def run_dir_bytes(run_dir, name):
    return (run_dir / name).read_bytes()


def test_damaged_state_a_missing_checkpoint_a_damaged_table_and_a_copied_folder(tmp_path):
    """The driver killed mid-trial: status says `interrupted`; the trial's checkpoints deleted:
    resume trains it again from epoch 0 and says so. Then a copy of the run folder with a damaged
    table: read-only verbs refuse in one line, resume rebuilds it, and the original is untouched."""
    space = one_trial_space(tmp_path)
    settings = ["--set", "epochs=4", "--set", "train_samples=512", "--set", "val_samples=128"]
    args = ["--storage", str(tmp_path), "--num-cpus", "2", "--quiet", *settings]
    driver = sksearch_process("sweep", str(space), *args, start_new_session=True)
    run_dir = tmp_path / "one"

    def two_epochs_checkpointed():
        done = any(line.get("epoch", 0) >= 2 for lines in results(run_dir).values() for line in lines)
        return done and list(run_dir.glob("run_trial_*/checkpoint_*"))

    wait_for(two_epochs_checkpointed, what="two checkpointed epochs")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    status = finish(sksearch_process("status", str(run_dir)))
    assert "1 trials: interrupted 1;" in status and f"sksearch resume {run_dir}" in status, status
    for folder in run_dir.glob("run_trial_*/checkpoint_*"):
        shutil.rmtree(folder)

    output = finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2", "--quiet"))
    row = read_trials(str(run_dir)).iloc[0]
    assert row["status"] == "completed" and row["epochs"] == 4, output
    assert row["resumed_at_epoch"] == 0 and "was gone or damaged: trained again from epoch 0" in row["reason"]
    assert "1 trials: completed 1;" in finish(sksearch_process("status", str(run_dir)))

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    original = {name: run_dir_bytes(run_dir, name) for name in ("trials.parquet", "history.parquet")}
    (copy / "trials.parquet").write_bytes(original["trials.parquet"][:10])
    for process in [sksearch_process(verb, str(copy)) for verb in ("results", "status", "pareto")]:
        message, _ = process.communicate(timeout=120)
        assert process.returncode == 2 and message.count("\n") == 1, message
        assert "trials.parquet: is damaged" in message and f"sksearch repair {copy}" in message
    output = finish(sksearch_process("resume", str(copy), "--num-cpus", "2", "--quiet"))
    assert "trials.parquet is damaged: rebuilding it" in output
    repaired = read_trials(str(copy))
    assert repaired.drop(columns="checkpoint").equals(read_trials(str(run_dir)).drop(columns="checkpoint"))
    assert repaired["checkpoint"].iloc[0].startswith(str(copy))  # the copy's own checkpoint
    assert {name: run_dir_bytes(run_dir, name) for name in original} == original  # the original untouched


def command_line(pid):
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def test_a_stalled_node_stops_the_driver_with_the_resume_command_and_resume_finishes(tmp_path):
    """The raylet stopped (SIGSTOP) until Ray declares its node dead (health checks, and the
    driver's grace without a live node, made short for the test): the driver says so in one line
    with the resume command and exits 4, instead of waiting forever; the resumed sweep ends with
    every trial completed."""
    space = one_trial_space(tmp_path)
    quick_checks = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3", "SKSEARCH_CLUSTER_GRACE_S": "10"}  # fmt: skip
    args = ["--storage", str(tmp_path), "--num-cpus", "2", "--quiet", "--set", "epochs=12", "--set", "val_samples=64"]
    driver = sksearch_process("sweep", str(space), *args, start_new_session=True, env={**os.environ, **quick_checks})
    run_dir = tmp_path / "one"
    wait_for(lambda: any(lines for lines in results(run_dir).values()), what="a first reported epoch")
    (raylet,) = [pid for pid in descendants(driver.pid) if "/raylet " in command_line(pid)]
    os.kill(raylet, signal.SIGSTOP)
    stalled = time.monotonic()
    try:
        output, _ = driver.communicate(timeout=240)
    finally:
        os.kill(raylet, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # what is left of the local Ray it started
    assert driver.returncode == 4, output
    assert time.monotonic() - stalled < 120
    last = output.strip().splitlines()[-1]
    assert last.startswith("the Ray cluster is lost") and last.endswith(
        f"`sksearch resume {run_dir}` continues the sweep"
    )
    output = finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2", "--quiet"))
    table = read_trials(str(run_dir))
    assert list(table["status"]) == ["completed"] and table["epochs"].iloc[0] == 12, output


TWO_TRIALS = "base: sknet26\nknobs:\n  branches: {grid: [K3+K5, K3+K7]}\nrecipe: smoke\n"
SMALL = ["--num-cpus", "2", "--quiet", "--max-concurrent", "1", "--set", "epochs=3", "--set", "train_samples=256",
         "--set", "val_samples=64"]  # fmt: skip


def test_a_full_disk_stops_the_sweep_in_one_line_and_resume_ends_as_an_undisturbed_run(tmp_path):
    space = tmp_path / "two.yaml"
    space.write_text(TWO_TRIALS)
    finish(sksearch_process("sweep", str(space), "--storage", str(tmp_path / "calm"), *SMALL))
    with small_filesystem(tmp_path / "small", 160) as small:
        driver = sksearch_process("sweep", str(space), "--storage", str(small), *SMALL)
        run_dir = small / "two"
        wait_for(lambda: list(run_dir.glob("run_trial_*/checkpoint_*")), what="a first checkpoint")
        free = shutil.disk_usage(small).free
        filler = small / "filler"
        subprocess.run(["fallocate", "-l", str(free - 24 * 2**20), str(filler)], check=True)
        output, _ = driver.communicate(timeout=600)
        assert driver.returncode == 5, output
        line = output.strip().splitlines()[-1]
        assert "Traceback" not in output and f"{run_dir}: the disk has" in line and "MiB to go on" in line, output
        for path in run_dir.rglob("*"):  # nothing a reader takes for data is empty or cut short
            if path.name.startswith(("experiment_state", "sweep.json", ".sweep.json")) or path.name == "params.json":
                json.loads(path.read_text())  # (basic-variant-state-*.json is a pickle)
            if path.suffix == ".parquet":
                pd.read_parquet(path)
        filler.unlink()
        finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2", "--quiet"))
        resumed = read_trials(str(run_dir)).sort_values("archid").reset_index(drop=True)
    calm = read_trials(str(tmp_path / "calm" / "two")).sort_values("archid").reset_index(drop=True)
    columns = ["archid", "status", "epochs", "top1_err", "top5_err", "train_loss", "best_top1_err"]
    pd.testing.assert_frame_equal(resumed[columns], calm[columns])


def test_two_sweeps_sharing_a_store_train_a_network_once(tmp_path):
    space = one_trial_space(tmp_path)
    store = tmp_path / "store"
    common = ["--store", str(store), "--num-cpus", "1", "--quiet", "--set", "epochs=3", "--set", "train_samples=256",
              "--set", "val_samples=64"]  # fmt: skip
    first = sksearch_process("sweep", str(space), "--storage", str(tmp_path / "a"), *common)
    second = sksearch_process("sweep", str(space), "--storage", str(tmp_path / "b"), *common)
    finish(first), finish(second)
    rows = pd.concat([read_trials(str(tmp_path / side / "one")) for side in ("a", "b")], ignore_index=True)
    trained = rows[~rows["reason"].fillna("").str.contains("store")]
    assert len(rows) == 2 and len(trained) == 1, rows[["sweep", "status", "reason"]]
    answered = rows[rows["reason"].fillna("").str.contains("store")].iloc[0]
    assert answered["top1_err"] == trained.iloc[0]["top1_err"]
    assert not list(store.rglob(".claim"))  # released once the record was written


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


def test_a_lost_checkpoint_during_a_sweep_trains_the_trial_again_with_one_row_per_epoch(tmp_path):
    driver = sksearch_process(
        "sweep", str(one_trial_space(tmp_path)), "--storage", str(tmp_path), "--max-failures", "2", *ONE_TRIAL
    )
    run_dir = tmp_path / "one"

    def checkpointed_worker():
        lines = [line for lines in results(run_dir).values() for line in lines]
        ready = any(line.get("epoch", 0) >= 2 for line in lines) and list(run_dir.glob("run_trial_*/checkpoint_*"))
        return lines[-1]["pid"] if ready else None

    pid = wait_for(checkpointed_worker, what="two checkpointed epochs")
    for folder in run_dir.glob("run_trial_*/checkpoint_*"):
        shutil.rmtree(folder)
    os.kill(pid, signal.SIGKILL)
    finish(driver)
    row = read_trials(str(run_dir)).iloc[0]
    assert row["status"] == "completed" and row["epochs"] == 6
    assert "trained again from epoch 0" in row["reason"] and row["resumed_at_epoch"] == 0
    from sksearch.runfiles import read_history

    assert read_history(str(run_dir))["epoch"].tolist() == [1, 2, 3, 4, 5, 6]  # one row per epoch


def test_a_copied_interrupted_run_resumed_beside_its_original_never_rewrites_its_records(tmp_path):
    space = one_trial_space(tmp_path)
    store = tmp_path / "store"
    settings = ["--set", "epochs=4", "--set", "train_samples=512", "--set", "val_samples=128"]
    common = ["--num-cpus", "2", "--quiet"]
    driver = sksearch_process("sweep", str(space), "--storage", str(tmp_path / "a"), "--store", str(store), *common,
                              *settings, start_new_session=True)  # fmt: skip
    run_dir = tmp_path / "a" / "one"
    wait_for(lambda: list(run_dir.glob("run_trial_*/checkpoint_*")), what="a checkpoint")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    copy = tmp_path / "b" / "one"  # the same sweep name and trial ids, another folder
    shutil.copytree(run_dir, copy)
    finish(sksearch_process("resume", str(copy), *common))
    (copy_record,) = Store(str(store))
    written = Path(copy_record.location).read_bytes()
    finish(sksearch_process("resume", str(run_dir), *common))
    finish(sksearch_process("extend", str(copy), "--seeds", "0", *common))
    assert Path(copy_record.location).read_bytes() == written  # the copy's record untouched
    checkpoints = sorted(record.row["checkpoint"] for record in Store(str(store)))
    assert len(checkpoints) == 2 and checkpoints[0].startswith(str(run_dir)) and checkpoints[1].startswith(str(copy))


def test_a_folder_made_read_only_mid_sweep_stops_it_in_one_line_and_read_only_verbs_still_answer(tmp_path):
    space = tmp_path / "two.yaml"
    space.write_text(TWO_TRIALS)
    with small_filesystem(tmp_path / "small", 200) as small:
        driver = sksearch_process("sweep", str(space), "--storage", str(small), *SMALL)
        run_dir = small / "two"
        wait_for(lambda: len(read_trials(str(run_dir))) if (run_dir / "trials.parquet").exists() else 0,
                 what="a first finished trial")  # fmt: skip
        # read-only from now on: a read-only bind of the folder over itself (a remount of the
        # filesystem is refused while the driver holds files open for writing)
        subprocess.run(["mount", "--bind", str(small), str(small)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(small)], check=True)
        output, _ = driver.communicate(timeout=600)
        assert driver.returncode == 5 and "Traceback" not in output, output
        assert "read-only" in output.strip().splitlines()[-1], output
        readers = [["results", str(run_dir)], ["status", str(run_dir)], ["pareto", str(run_dir)],
                   ["store", "ls", "--store", str(small / "store")]]  # fmt: skip
        writers = [
            ["repair", str(run_dir)],
            ["table", str(run_dir)],
            ["extend", str(run_dir)],
            ["replay", str(run_dir)],
        ]
        processes = [(verb, sksearch_process(*verb)) for verb in readers + writers]  # side by side: none writes
        for verb, process in processes:
            answer, _ = process.communicate(timeout=120)
            if verb in readers:
                assert process.returncode == 0 and "Traceback" not in answer, (verb, answer)
            else:
                assert process.returncode in (2, 5) and answer.count("\n") == 1, (verb, answer)
        subprocess.run(["umount", str(small)], check=True)  # the bind goes: writable again
        finish(sksearch_process("resume", str(run_dir), "--num-cpus", "2", "--quiet"))
        assert set(read_trials(str(run_dir))["status"]) == {"completed"}
