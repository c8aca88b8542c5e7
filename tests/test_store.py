"""The trial store: keys, immutable records on a folder or a file:// URI, answering requests, and
its verbs."""

import json
import threading
from pathlib import Path

import pytest

from sksearch.cli import main
from sksearch.files import CHECKPOINT
from sksearch.presets import preset
from sksearch.recipes import recipe_from
from sksearch.search.store import Record, Store, recipe_fingerprint, trial_key


def record(key="k", trial_id="t1", status="completed", epochs=2, checkpoint=None, sweep="s"):
    row = {"sweep": sweep, "trial_id": trial_id, "status": status, "epochs": epochs, "top1_err": 40.0,
           "checkpoint": checkpoint, "reason": ""}  # fmt: skip
    return Record(key, row, ({"epoch": 1, "top1_err": 50.0}, {"epoch": 2, "top1_err": 40.0}))


def checkpoint_dir(tmp_path, name="ckpt"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / CHECKPOINT).write_bytes(b"weights")
    return str(folder)


def test_the_key_ignores_where_a_trial_runs_but_not_what_it_trains():
    smoke = recipe_from({"preset": "smoke"})
    spec = preset("sknet26")
    assert trial_key(spec, smoke) == trial_key(spec, smoke.replace(threads=2, device="cpu", name="other"))
    assert recipe_fingerprint(smoke) != recipe_fingerprint(smoke.replace(lr=0.2))
    assert trial_key(spec, smoke).endswith("-s0") and trial_key(spec, smoke.replace(seed=3)).endswith("-s3")
    # the archid in the key is the network as trained (the smoke recipe shrinks it), not as declared
    assert trial_key(spec, smoke).split("-")[0] == smoke.adapt(spec, smoke.classes).archid != spec.archid


@pytest.mark.parametrize("uri", [False, True])
def test_records_are_written_whole_and_answer_requests(tmp_path, uri):
    root = tmp_path / "store"
    store = Store(root.as_uri() if uri else str(root))
    done = record(trial_id="a", checkpoint=checkpoint_dir(tmp_path))
    stopped = record(trial_id="b", status="stopped", epochs=1, checkpoint=checkpoint_dir(tmp_path, "b"))
    store.put(done)
    store.put(stopped)
    assert store.stored_keys() == ["k"] and len(store.records("k")) == 2
    assert store.answer("k", 2).source == "s/a"  # the completed one, with the most epochs
    assert store.answer("missing", 2) is None
    store.remove(done)
    assert store.answer("k", 1).source == "s/b" and store.answer("k", 2) is None  # stopped after 1 epoch
    assert not list(root.rglob("*.tmp"))  # no temporary file left behind


def test_an_entry_whose_checkpoint_vanished_is_absent_and_gc_removes_it(tmp_path, capsys):
    store = Store(str(tmp_path / "store"))
    gone = checkpoint_dir(tmp_path, "gone")
    store.put(record(trial_id="a", checkpoint=gone))
    store.put(record(key="f", trial_id="d", status="failed", checkpoint=None))  # a diverged trial needs none
    assert store.answer("k", 2).source == "s/a"
    (Path(gone) / CHECKPOINT).unlink()  # the file gone, its folder left (a driver killed while Ray pruned it)
    assert store.answer("k", 2) is None and store.answer("f", 2).row["status"] == "failed"
    assert main(["store", "ls", "--store", str(tmp_path / "store")]) == 0
    listed = capsys.readouterr().out
    assert "2 records of 2 keys" in listed
    (failed,) = [line for line in listed.splitlines() if line.split()[0] == "f"]
    assert failed.split()[-1] == "none"  # a failed record needs no checkpoint: not "gone"
    assert main(["store", "gc", "--store", str(tmp_path / "store")]) == 0
    assert "removed 1 stored trials" in capsys.readouterr().out
    assert store.stored_keys() == ["f"]  # the key's folder went with its last record
    assert main(["store", "show", "k", "--store", str(tmp_path / "store")]) == 2
    assert "key: no stored trial has key 'k'" in capsys.readouterr().err
    assert main(["store", "show", "f", "--store", str(tmp_path / "store")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["row"]["status"] == "failed"


def test_concurrent_writers_of_one_key_keep_every_record_whole(tmp_path):
    store = Store(str(tmp_path / "store"))
    ckpt = checkpoint_dir(tmp_path)

    def write(index):
        for round_ in range(20):
            store.put(record(trial_id=f"w{index}", sweep=f"sweep{round_ % 2}", checkpoint=ckpt))

    threads = [threading.Thread(target=write, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = store.records("k")
    assert len(records) == 8 and all(len(r.history) == 2 for r in records)  # 4 trials x 2 sweeps


def test_a_half_written_file_of_another_program_is_skipped(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.put(record(trial_id="a", checkpoint=checkpoint_dir(tmp_path)))
    (Path(tmp_path / "store" / "k") / "other.json").write_text('{"key": "k", "row": {')
    assert [r.source for r in store.records("k")] == ["s/a"]
