"""Measured latency and throughput: the measurement, its cache in the trial store, the `latency`
verb, and sweeps that use them as an objective or a constraint (SKNet-26 at 64 px, CPU)."""

import json
import textwrap

import pandas as pd
import pytest

from sksearch.cli import main
from sksearch.latency import measure, timing_key
from sksearch.presets import preset
from sksearch.search import plan_sweep, run_sweep
from sksearch.search.store import Store
from sksearch.search.timings import cached_timing, space_networks
from sksearch.spec import NetSpec

SMALL_SPACE = """\
base: sknet26
knobs:
  input_size: 64
  branches: {grid: [K3+K5, K3+K7]}
recipe: {preset: smoke, batch_size: 4, epochs: 1, train_samples: 64, val_samples: 32}
search:
  algorithm: grid
  objectives: [top1_err:min, latency_ms:min]
"""


def small_spec() -> NetSpec:
    return NetSpec.from_dict({**preset("sknet26").to_dict(), "input_size": 64})


def test_a_measurement_says_what_it_measured():
    timing = measure(small_spec(), batch=2, threads=1, runs=3, warmup=1)
    assert timing.archid == small_spec().archid and (timing.input_size, timing.batch, timing.threads) == (64, 2, 1)
    assert timing.latency_ms > 0 and timing.throughput > 0 and timing.latency_spread >= 0
    assert timing.key == timing_key(timing.archid, timing.device, 64, 2, 1, False)
    assert "/" not in timing.key and " " not in timing.key


def test_a_timing_is_measured_once_and_then_read_from_the_store(tmp_path):
    store = Store(str(tmp_path / "store"))
    first = cached_timing(small_spec(), store, batch=2, threads=1, runs=2)
    (cached,) = (tmp_path / "store" / ".timings").iterdir()
    assert cached.name == f"{first.key}.json"
    marked = {**json.loads(cached.read_text()), "latency_ms": 123.0}  # what the cache says is what comes back
    cached.write_text(json.dumps(marked))
    assert cached_timing(small_spec(), store, batch=2, threads=1, runs=2).latency_ms == 123.0
    assert store.stored_keys() == []  # the cache is no trial key
    assert cached_timing(small_spec(), store, batch=2, threads=1, channels_last=True, runs=2).key != first.key


def test_the_latency_verb_on_a_space_with_its_gap_to_macs(tmp_path, capsys):
    space = tmp_path / "small.yaml"
    space.write_text(SMALL_SPACE)
    args = ["latency", str(space), "--runs", "2", "--batch", "2", "--threads", "1", "--store", str(tmp_path / "s")]
    assert main([*args, "--format", "json"]) == 0
    rows = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert list(rows["network"]) == [name for name, _ in space_networks(space, 20)] == ["K3+K5", "K3+K7"]
    assert rows["ms_per_gmac"].tolist() == pytest.approx((rows["latency_ms"] / rows["gmacs"]).tolist())
    assert (rows["threads"] == 1).all() and not rows["cached"].any()
    assert main(args) == 0  # timed already: answered from the cache, and it says so, with when
    out = capsys.readouterr().out
    assert "measured on" in out and f"2 of 2 from the cache in {tmp_path / 's'} (measured 20" in out
    assert "--remeasure times them again" in out
    assert main([*args, "--remeasure"]) == 0
    assert f"measured now; cached in {tmp_path / 's'}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sknet26", "--device", "cuda"], "--device: cuda asked for, and this machine has no CUDA device"),
        (["sknet26", "--device", "tpu"], "--device: "),
        (["nonsense"], "unknown preset 'nonsense'"),
    ],
)
def test_bad_latency_input_is_one_line(capsys, args, message):
    assert main(["latency", *args]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_latency_as_an_objective_and_as_a_constraint(tmp_path):
    space = tmp_path / "small.yaml"
    space.write_text(SMALL_SPACE)
    table = run_sweep(plan_sweep(space, settings={"threads": 1}, storage=str(tmp_path), name="timed"), progress=False)
    assert set(table["status"]) == {"completed"} and (table["latency_ms"] > 0).all() and (table["throughput"] > 0).all()
    assert main(["pareto", str(tmp_path / "timed"), "--objectives", "top1_err:min,latency_ms:min"]) == 0
    bounded = tmp_path / "bounded.yaml"
    bounded.write_text(SMALL_SPACE + "constraints:\n  max_latency_ms: 0.001\n")
    fresh = plan_sweep(bounded, settings={"threads": 1}, storage=str(tmp_path), name="fresh", reuse=False)
    table = run_sweep(fresh, progress=False)  # trials measure (the cached timing) and end before training
    assert set(table["status"]) == {"failed"} and (table["epochs"] == 0).all()
    assert table["reason"].str.fullmatch(r"latency [\d.]+ ms > max_latency_ms 0.001").all()
    table = run_sweep(
        plan_sweep(bounded, settings={"threads": 1}, storage=str(tmp_path), name="answered"), progress=False
    )
    assert set(table["status"]) == {"failed"}  # the store's completed trials, too slow for this sweep
    assert table["reason"].str.fullmatch(r"latency [\d.]+ ms > max_latency_ms 0.001 \(the network of timed/\w+\)").all()


@pytest.mark.usefixtures("local_ray")  # the refusal comes from the cluster it joins
def test_a_latency_constraint_on_a_device_the_sweep_cannot_use_is_refused(tmp_path, capsys):
    space = tmp_path / "cuda.yaml"
    space.write_text(textwrap.dedent(SMALL_SPACE) + "constraints:\n  max_latency_ms: 50\n")
    args = ["sweep", str(space), "--set", "device=cuda", "--storage", str(tmp_path), "--num-cpus", "2", "--quiet"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.strip().endswith("latency is measured on the trial's device, the recipe's cuda, and this sweep's "
                                  "trials get no GPU"), error  # fmt: skip
    assert not (tmp_path / "small").exists() and not (tmp_path / "cuda").exists()
