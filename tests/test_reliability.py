"""Nothing lost and nothing run that was not asked: NSGA-II on today's Optuna, the --where grammar,
refusals of bad input in one line, storage that is full or read-only, shared stores, damaged plans.
No Ray here: the sweeps under these faults are in the fault suite, tests/test_faults_*.py."""

import json
import os
import pickle
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sksearch.cli import main
from sksearch.files import CHECKPOINT, StorageError, atomic_write_text, check_free_space
from sksearch.results.conditions import filter_rows
from sksearch.runfiles import PLAN
from sksearch.search.plan import PLAN_COPY, load_plan, restore_plan
from sksearch.search.ray_records import trial_history
from sksearch.search.samplers import optuna_sampler
from sksearch.search.spacefile import parse_space
from sksearch.search.store import Claim, Record, Store
from sksearch.validation import ConfigError
from sksearch.yamlfiles import parse_yaml
from tests.filesystems import small_filesystem

ROOT = Path(__file__).parents[1]
SPACES = ROOT / "spaces"
SMOKE_RESULTS = ROOT / "results" / "sknet50_smoke"


def one_line_refusal(capsys, argv, *expected, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


# -- NSGA-II on Optuna 5 -------------------------------------------------------------------------


def test_the_nsga2_sampler_survives_pickling_as_ray_pickles_it():
    sampler = optuna_sampler("nsga2", seed=0, num_samples=8)
    copy = pickle.loads(pickle.dumps(sampler))
    with copy._thread_lock:  # a working lock of its own
        pass
    assert copy.population_size == sampler.population_size == 4


# -- the --where grammar ---------------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "status": ["completed", "failed", "completed"],
        "gmacs": [4.2, 4.8, 5.1],
        "attention": [True, False, True],
        "branches": ["K3+K5", "K3", "K3+K7"],
        "top1_err": [20.0, float("nan"), 25.0],
    }
)


@pytest.mark.parametrize(
    "where, rows",
    [
        ("status == 'completed' and gmacs < 4.5", [0]),
        ("4 < gmacs < 5", [0, 1]),
        ("branches in ['K3', 'K3+K7']", [1, 2]),
        ("branches not in ('K3',)", [0, 2]),
        ("attention", [0, 2]),
        ("not attention or gmacs > 5", [1, 2]),
        ("top1_err < 30", [0, 2]),  # a missing value never matches
        ("gmacs == 4.8 and (branches == 'K3' or attention)", [1]),
        ("-1 < gmacs", [0, 1, 2]),
    ],
)
def test_where_conditions_select_rows(where, rows):
    assert filter_rows(FRAME, where).index.tolist() == rows


@pytest.mark.parametrize(
    "where",
    [
        "@pd.io.common.os.system('touch {flag}') == 0",
        "__import__('os').system('touch {flag}')",
        "gmacs.apply(lambda x: open('{flag}', 'w'))",
        "[x for x in ().__class__.__base__.__subclasses__()] == 1",
        "open('{flag}', 'w') == 1",
        'status == f\'{{open("{flag}", "w")}}\'',
    ],
)
def test_where_never_runs_code(tmp_path, capsys, where):
    flag = tmp_path / "F"
    one_line_refusal(capsys, ["results", str(SMOKE_RESULTS), "--where", where.format(flag=flag)], "--where:")
    assert not flag.exists()


CONDITION_TOKENS = ["gmacs", "status", "attention", "top1_err", "nope", "'completed'", "4.5", "-1", "True", "None",
                    "==", "!=", "<", "<=", ">", ">=", "in", "not", "and", "or", "(", ")", "[", "]", ",", "@x",
                    "__import__('os')", ".", "x()", "lambda", "'", "+", "**", "if", "else", ":"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(CONDITION_TOKENS), max_size=12).map(" ".join)))
def test_any_where_text_selects_rows_or_is_refused_in_one_line(tmp_path, text):
    try:
        chosen = filter_rows(FRAME, text)
    except ConfigError as error:
        assert str(error).startswith("--where: ") and "\n" not in str(error)
    else:
        assert set(chosen.index) <= set(FRAME.index)


# -- YAML spaces ----------------------------------------------------------------------------------


def test_a_key_written_twice_in_a_yaml_file_is_refused(tmp_path, capsys):
    space = tmp_path / "dup.yaml"
    space.write_text("base: sknet26\nrecipe: smoke\nknobs:\n  branches: K3+K5\nrecipe: proxy\n")
    one_line_refusal(capsys, ["space", "show", str(space)], "duplicate key 'recipe' at line 5")
    assert parse_yaml("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n") == {"a": {"b": 1}, "c": {"b": 2}}  # merges still work


SPACE_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**25), 10**25), st.floats(), st.text(max_size=8),
              st.sampled_from(["K3", "K3+K5", "sknet26", "smoke", "grid", "choice", "int", "float"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["grid", "choice", "int", "float", "log", "low"]),
                                               children, max_size=3)),
    max_leaves=12,
)  # fmt: skip
SPACE_KEYS = ["name", "recipe", "search", "constraints", "description", "match", "bogus"]
KNOB_NAMES = ["branches", "attention", "reduction", "depth_0", "width_multiplier", "min_dim", "cardinality"]


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"base": st.sampled_from(["sknet26", "sknet50", "nope"]),
         "knobs": st.dictionaries(st.sampled_from(KNOB_NAMES), SPACE_VALUES, max_size=3)},
        optional={key: SPACE_VALUES for key in SPACE_KEYS},
    )
)  # fmt: skip
def test_any_space_data_parses_or_is_refused_with_a_field(data):
    try:
        parse_space(data, default_name="h", source="h.yaml")
    except ConfigError as error:
        assert "\n" not in str(error) and str(error)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120))
def test_any_yaml_text_loads_or_is_refused_in_one_line(text):
    try:
        parse_yaml(text)
    except ConfigError as error:
        assert str(error).startswith("not valid YAML") and "\n" not in str(error)


# -- bad input: one line, exit 2, nothing written -----------------------------------------------


def write_space(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


SMOKE_SPACE = "base: sknet26\nknobs:\n  branches: {grid: [K3+K5, K3+K7]}\nrecipe: smoke\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "99999999999999999999"], "--seeds: must be <= 4,294,967,295"),
        (["--seeds", "0,1,0"], "--seeds: seed 0 is listed twice"),
        (["--cpus-per-trial", "inf"], "--cpus-per-trial: must be a finite number"),
        (["--cpus-per-trial", "nan"], "--cpus-per-trial: must be a finite number"),
        (["--gpus-per-trial", "1e9"], "--gpus-per-trial: must be in [0, 64]"),
        (["--set", "lr=.nan"], "lr: must be a finite number"),
        (["--set", "image_size=1000000"], "image_size: must be <= 4,096"),
        (["--set", "train_samples=50000000"], "GiB of memory"),
        (["--num-samples", "3"], "--num-samples: a grid runs every network"),
        (["--address", "auto", "--num-cpus", "2"], "--num-cpus: sizes a local Ray instance"),
        (["--address", "127.0.0.1:1"], "--address: nothing answers at 127.0.0.1:1"),
        (["--recipe", "imagenet"], "data_root: data/imagenet/train is not a folder"),
    ],
)
def test_bad_sweep_input_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)  # the imagenet recipe's relative data_root: nothing there
    space = write_space(tmp_path, SMOKE_SPACE)
    storage = tmp_path / "runs"
    one_line_refusal(capsys, ["sweep", str(space), "--storage", str(storage), *extra], message)
    assert not storage.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("base: sknet26\nknobs:\n  width_multiplier: {float: [.nan, 1.0]}\n", "must be a finite number"),
        ("base: sknet26\nknobs:\n  width_multiplier: {float: [0.5, .inf]}\n", "must be a finite number"),
        ("base: sknet26\nknobs:\n  depth_0: {int: [2, 1000000000]}\n", "spans 999,999,999 values; at most 10,000"),
        (
            "base: sknet26\nrecipe: {preset: smoke, epochs: 100000000000}\nknobs:\n  branches: K3\n",
            "epochs: must be <=",
        ),
        ("base: sknet26\nrecipe: {preset: smoke, scale_range: [1, .inf]}\nknobs:\n  branches: K3\n", "finite"),
    ],
)
def test_non_finite_and_absurd_values_in_a_space_are_refused(tmp_path, capsys, text, message):
    one_line_refusal(capsys, ["space", "show", str(write_space(tmp_path, text))], message)


def test_absurd_sizes_of_a_spec_are_refused(tmp_path, capsys):
    assert main(["spec", "sknet26", "--out", str(tmp_path / "net.yaml")]) == 0
    spec = yaml.safe_load((tmp_path / "net.yaml").read_text())
    wide = {**spec, "stages": [{**spec["stages"][0], "width": 10**9}, *spec["stages"][1:]]}
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(wide))
    one_line_refusal(capsys, ["count", str(tmp_path / "wide.yaml")], "stages[0].width: must be <= 65,536")
    (tmp_path / "huge.yaml").write_text(yaml.safe_dump({**spec, "input_size": 10**9}))
    one_line_refusal(capsys, ["latency", str(tmp_path / "huge.yaml")], "input_size: must be <= 4,096")


def test_store_and_latency_refuse_a_store_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv in (["store", "ls"], ["store", "gc"], ["store", "verify"], ["latency", "sknet26"]):
        one_line_refusal(capsys, [*argv, "--store", str(afile)], f"--store: {afile} is a file")
    assert afile.read_text() == "x"


def test_latency_of_a_space_without_a_feasible_network_is_refused(tmp_path, capsys):
    space = write_space(
        tmp_path, "base: sknet26\nknobs:\n  reduction: {choice: [4, 8]}\nconstraints:\n  max_gmacs: 0.0001\n"
    )
    one_line_refusal(capsys, ["latency", str(space), "--store", str(tmp_path / "store")], "no feasible network")


def test_a_paper_table_of_runs_that_are_none_of_its_rows_is_refused(tmp_path, capsys):
    one_line_refusal(capsys, ["table", str(SMOKE_RESULTS), "--paper", "table4", "--out", str(tmp_path)],
                     "--paper: no network of these runs is a row of table4")  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_train_refuses_to_write_into_a_sweep_folder(tmp_path, capsys):
    (tmp_path / PLAN).write_text("{}")
    (tmp_path / "history.parquet").write_bytes(b"the sweep's")
    one_line_refusal(capsys, ["train", "sknet26", "--out", str(tmp_path)], "is a sweep's folder")
    assert (tmp_path / "history.parquet").read_bytes() == b"the sweep's"


# -- the trial store: unreadable records, claims, records never rewritten ---------------------------


def record(sweep="a", trial_id="t1", checkpoint="/x/ckpt", key="k-f-s0"):
    return Record(key, {"sweep": sweep, "trial_id": trial_id, "status": "completed", "checkpoint": checkpoint}, ())


def test_unreadable_store_records_are_counted_and_listed_by_store_verify(tmp_path, capsys):
    store = Store(str(tmp_path))
    store.put(record())
    (tmp_path / "k-f-s0" / "b-t2.json").write_text('{"key": "k-f-s0", "row": {"swe')  # cut short
    assert len(list(store)) == 1 and len(store.unreadable) == 1
    assert main(["store", "verify", "--store", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "unreadable: " in out and "b-t2.json" in out and "1 records readable, 1 unreadable" in out
    assert main(["store", "ls", "--store", str(tmp_path)]) == 0
    assert "1 records could not be read" in capsys.readouterr().err


def test_a_record_is_never_rewritten_by_another_run_of_the_same_sweep_name(tmp_path):
    """A copied run folder keeps its sweep's name and trial ids: resumed beside its original with one
    store, its record must not replace the original's (which would point at the copy's checkpoint)."""
    store = Store(str(tmp_path))
    first = store.put(record(checkpoint="/original/ckpt"))
    original = Path(first).read_bytes()
    assert store.put(record(checkpoint="/original/ckpt")) == first  # the same record again: a no-op
    second = store.put(record(checkpoint="/copy/ckpt"))
    assert second != first and Path(first).read_bytes() == original
    assert {r.row["checkpoint"] for r in store.records("k-f-s0")} == {"/original/ckpt", "/copy/ckpt"}
    store.remove(next(r for r in store.records("k-f-s0") if r.row["checkpoint"] == "/copy/ckpt"))
    assert [r.row["checkpoint"] for r in store.records("k-f-s0")] == ["/original/ckpt"]


def test_a_claim_is_held_by_one_trial_until_released_or_abandoned(tmp_path):
    store = Store(str(tmp_path))
    first, second = Claim(store, "k", "sweep1/t1"), Claim(store, "k", "sweep2/t1", stale_s=3600)
    assert first.try_take() and not second.try_take()
    assert first.try_take()  # the holder's own retry re-enters
    first.release()
    assert second.try_take() and not first.try_take()
    old = time.time() - 7200
    os.utime(second.path, (old, old))  # its holder stopped renewing it: a killed trial
    assert first.try_take()
    second.release()  # not its claim any more: left alone
    assert Path(first.path).read_text() == "sweep1/t1"
    assert [r for r in store] == []  # a claim is not a record


def test_a_resumed_trial_is_not_answered_by_its_own_record(tmp_path):
    """A driver killed after a trial's record was written but before Ray noted the trial finished
    reruns it on resume: its own record must not answer it as if another sweep had trained it
    (that would report its epochs a second time); another trial's record still does."""
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / CHECKPOINT).write_bytes(b"weights")
    store = Store(str(tmp_path / "store"))
    store.put(record(sweep="smoke", trial_id="t1", checkpoint=str(checkpoint)))
    assert store.answer("k-f-s0", 3, besides="smoke/t1") is None
    assert store.answer("k-f-s0", 3, besides="other/t1").source == "smoke/t1"


# -- history: one trial, one epoch, one row ----------------------------------------------------


def test_a_trial_trained_again_from_epoch_0_keeps_one_row_per_epoch(tmp_path):
    reports = [{"epoch": e, "top1_err": 90 - e, "attempt": 1} for e in (1, 2)]
    reports += [{"epoch": e, "top1_err": 80 - e, "attempt": 2} for e in (1, 2, 3)]
    (tmp_path / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    history = trial_history(SimpleNamespace(trial_id="t", path=str(tmp_path)))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["top1_err"] for row in history] == [79, 78, 77]  # the later attempt's


# -- a damaged sweep.json ---------------------------------------------------------------------------


def test_a_damaged_sweep_json_is_rebuilt_from_its_copy(tmp_path, capsys):
    from sksearch.search import plan_sweep
    from sksearch.search.plan import write_plan

    plan = plan_sweep(write_space(tmp_path, SMOKE_SPACE), storage=str(tmp_path / "runs"))
    write_plan(plan)
    run_dir = Path(plan.run_dir)
    intact = (run_dir / PLAN).read_bytes()
    (run_dir / PLAN).write_bytes(intact[:40])
    one_line_refusal(capsys, ["status", str(run_dir)], "unreadable sweep plan", f"sksearch repair {run_dir}")
    assert restore_plan(str(run_dir)) and (run_dir / PLAN).read_bytes() == intact
    assert load_plan(str(run_dir)).name == plan.name
    (run_dir / PLAN).unlink()
    one_line_refusal(capsys, ["status", str(run_dir)], f"has lost its {PLAN}")
    (run_dir / PLAN_COPY).write_text("{")
    with pytest.raises(ConfigError, match="unreadable sweep plan"):
        restore_plan(str(run_dir))


# -- storage that is full or read-only (a real small filesystem) ---------------------------------


def test_a_full_disk_refuses_a_write_in_one_line_and_leaves_the_old_file_whole(tmp_path):
    with small_filesystem(tmp_path / "small", 2) as small:
        target = small / "table.txt"
        atomic_write_text(target, "old")
        with pytest.raises(
            StorageError, match=r"table.txt: cannot be written: the disk is full; this write needs 3.00 MiB"
        ):
            atomic_write_text(target, "x" * (3 * 2**20))
        assert target.read_text() == "old" and sorted(p.name for p in small.iterdir()) == ["table.txt"]
        with pytest.raises(StorageError, match=r"MiB free and the sweep needs"):
            check_free_space(small)


def test_a_read_only_folder_refuses_writes_in_one_line_and_reads_still_work(tmp_path, capsys):
    with small_filesystem(tmp_path / "ro", 8) as folder:
        (folder / "store").mkdir()
        Store(str(folder / "store")).put(record())
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        with pytest.raises(StorageError, match="read-only"):
            atomic_write_text(folder / "t.txt", "x")
        assert main(["store", "ls", "--store", str(folder / "store")]) == 0
        assert "1 records of 1 keys" in capsys.readouterr().out
        assert main(["store", "verify", "--store", str(folder / "store")]) == 0
        capsys.readouterr()
        one_line_refusal(capsys, ["store", "gc", "--store", str(folder / "store")], "read-only", code=5)
