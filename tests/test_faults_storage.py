"""The fault suite (`-m faults`), damaged or lost storage: a deleted checkpoint, a damaged table, a
copied run folder, a full disk, a folder made read-only, a store shared by two sweeps. Each driver is
a real `sksearch` process."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from sksearch.runfiles import read_trials
from sksearch.search.store import Store
from tests.clusters import wait_for
from tests.faults import ONE_TRIAL, finish, one_trial_space, results, sksearch_process
from tests.filesystems import small_filesystem

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.faults]


def run_dir_bytes(run_dir, name):
    return (run_dir / name).read_bytes()


TWO_TRIALS = "base: sknet26\nknobs:\n  branches: {grid: [K3+K5, K3+K7]}\nrecipe: smoke\n"


SMALL = ["--num-cpus", "2", "--quiet", "--max-concurrent", "1", "--set", "epochs=3", "--set", "train_samples=256",
         "--set", "val_samples=64"]  # fmt: skip


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
