"""The figures that say whether a tabulated benchmark tells networks apart (benchmarks/tabulate_proxy.py):
known answers on small made-up tables."""

import pandas as pd
import pytest

from benchmarks.tabulate_proxy import front_stability, reliability, rung_spearman


def table(errors_seed0, repeated_offset=2.0, repeated=4):
    rows = [{"archid": f"n{i}", "seed": 0, "trial_id": f"t{i}", "top1_err": error, "gmacs": 1.0 + i}
            for i, error in enumerate(errors_seed0)]  # fmt: skip
    rows += [{**row, "seed": 1, "trial_id": row["trial_id"] + "b", "top1_err": row["top1_err"] + repeated_offset}
             for row in rows[:repeated]]  # fmt: skip
    return pd.DataFrame(rows)


def test_reliability_is_the_share_of_variance_between_networks():
    finals = table([10.0 + i for i in range(10)])  # a run's variance 9.1667; a pair 2 apart has variance 2
    found = reliability(finals)
    assert found["reliability"] == pytest.approx(1 - 2 / (110 / 12))
    assert found["seed_std"] == pytest.approx(2**0.5) and found["seed_dof"] == 4


def test_a_front_without_noise_stays_and_one_swamped_by_noise_does_not():
    finals = table(
        [20.0 - 2 * i for i in range(10)], repeated_offset=0.0
    )  # error falls as GMACs grow: all on the front
    assert front_stability(finals, seed_std=0.0, draws=20) == 1.0
    assert front_stability(finals, seed_std=50.0, draws=200) < 0.6


def test_rung_correlation_with_the_final_error():
    finals = table([10.0 + i for i in range(6)], repeated=0)
    history = pd.concat([
        pd.DataFrame({"trial_id": finals["trial_id"], "epoch": 1, "top1_err": -finals["top1_err"]}),  # reversed
        pd.DataFrame({"trial_id": finals["trial_id"], "epoch": 4, "top1_err": finals["top1_err"] + 5}),  # same order
    ])  # fmt: skip
    assert rung_spearman(history, finals, epochs=16) == {"1": pytest.approx(-1.0), "4": pytest.approx(1.0)}


def test_the_committed_benchmarks_figures_follow_from_its_committed_tables():
    import json
    from pathlib import Path

    from benchmarks.tabulate_proxy import targets

    bench = Path(__file__).parents[1] / "results" / "bench_sknet26"
    committed = json.loads((bench / "targets.json").read_text())
    assert json.loads(json.dumps(targets([bench / "bench26", bench / "bench26_seed1"]))) == committed
    assert committed["networks"] >= 48 and committed["runs"] - committed["networks"] >= 12  # the sizes
