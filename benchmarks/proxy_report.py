"""The report half of benchmarks/proxy_tables.py: what the proxy sweeps say, written to results/proxy/."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from sksearch.attention import attention_by_scale, load_model, synthetic_sets, write_attention
from sksearch.data import make_loaders
from sksearch.files import atomic_write_text
from sksearch.nets import build
from sksearch.paper import table_models
from sksearch.presets import preset
from sksearch.recipes import recipe_from
from sksearch.results import compare, load_results, paper_table, rank_agreement, render_paper_table
from sksearch.results.statistics import pooled_seed_std
from sksearch.runfiles import read_history

SWEEP_FILES = ("sweep.json", "trials.parquet", "history.parquet")
SCALES = (1.0, 1.5, 2.0)
ATTENTION_SAMPLES = 1024


def report(runs: Path, out: Path, timing: dict[str, float], finished: list[str]) -> None:
    """The findings of the `finished` sweeps (table7, and table6 once it has run) into `out`."""
    for name in finished:
        for file in SWEEP_FILES:
            (out / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(runs / name / file, out / name / file)
    table7 = load_results([out / "table7"])
    frames = {"table7": table7}
    if "table6" in finished:
        both = load_results([out / "table7", out / "table6"])
        frames["table6"] = both[both["archid"].isin({preset(model).archid for model in table_models("T6")})]
    figures: dict[str, object] = {"sweeps": finished}
    for name, frame in frames.items():
        table = paper_table(frame, name)
        atomic_write_text(out / f"paper_{name}.md", render_paper_table(table, name, list(frame["recipe"])))
        atomic_write_text(out / f"paper_{name}.csv", table.to_csv(index=False))
        tau, ranked, _ = rank_agreement(table)
        figures[f"{name}_kendall_tau"] = {"tau": tau, "rows": ranked}
        print(render_paper_table(table, name, list(frame["recipe"])))
    comparison = compare(table7, "attention", ["top1_err"])
    atomic_write_text(out / "compare_table7_attention.csv", comparison.to_csv(index=False))
    print(comparison[["pair", "n", "diff", "ci_low", "ci_high", "verdict", "holm_verdict", "seeds_power",
                      "published_diff"]])  # fmt: skip
    figures.update(targets(table7, read_history(str(out / "table7")), timing))
    figures["data_cost"] = data_cost(recipe_from(json.loads(table7["recipe_json"].iloc[0])))
    figures["attention_by_stage"] = attention_analysis(table7, out / "attention")
    figures["attention_departure"] = {row["stage"]: row["departure"] for row in figures["attention_by_stage"]}
    atomic_write_text(out / "targets.json", json.dumps(figures, indent=2, default=float))
    print(json.dumps(figures, indent=2, default=float))


def targets(frame: pd.DataFrame, history: pd.DataFrame, timing: dict[str, float]) -> dict[str, object]:
    """The issue's figures: every row's mean error against a third of chance, the pooled seed std,
    the last epoch's swing of the reported error, the wall time."""
    classes = json.loads(frame["recipe_json"].iloc[0])["num_classes"]
    chance_error = 100 * (1 - 1 / classes)
    by_row = frame.groupby("archid")["top1_err"]
    last_two = history.sort_values("epoch").groupby("trial_id")["top1_err"].apply(lambda s: s.tail(2).diff().abs())
    return {
        "last_epoch_swing": float(last_two.dropna().mean()),
        "chance_error": chance_error,
        "row_mean_error_max": float(by_row.mean().max()),
        "row_mean_error_min": float(by_row.mean().min()),
        "target_row_mean_error": chance_error / 3,
        "pooled_seed_std": pooled_seed_std(frame, "top1_err")[0],
        "seeds_per_row": int(by_row.size().min()),
        "table7_wall_time_min": timing.get("table7", float("nan")) / 60,
        "table7_wall_time_min_alone": wall_time_alone(frame, history),
        "table6_wall_time_min": timing.get("table6", float("nan")) / 60,
    }


def wall_time_alone(frame: pd.DataFrame, history: pd.DataFrame, slots: int = 2) -> float:
    """The table's wall time on `slots` cores with nothing else running, in minutes: the sweeps
    shared the cores with other work, so each trial's time is its epochs x its 10th-percentile
    epoch time (its quietest epochs, two trials at a time), each row takes its seeds' median."""
    quiet = history.groupby("trial_id")["epoch_time"].quantile(0.1) * history.groupby("trial_id").size()
    per_row = frame.assign(quiet=frame["trial_id"].map(quiet)).groupby("archid")["quiet"]
    return float((per_row.median() * per_row.size()).sum() / slots / 60)


def data_cost(recipe, batches: int = 40) -> dict[str, float]:
    """Rendering (once per trial) plus fetching a batch, as a fraction of a training step of the
    cheapest Table 7 network (K3), on one thread as the sweeps ran."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    loaders = make_loaders(recipe)
    render = time.perf_counter() - started
    started = time.perf_counter()
    fetched = [batch for _, batch in zip(range(batches), loaders.train, strict=False)]
    fetch = (time.perf_counter() - started) / len(fetched)
    model = build(recipe.adapt(preset("sknet50_k3"), loaders.num_classes)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for index, (images, labels) in enumerate(fetched):
        if index == 5:
            started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(images.to(memory_format=torch.channels_last)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step = (time.perf_counter() - started) / (len(fetched) - 5)
    steps = recipe.epochs * len(loaders.train)
    return {
        "render_s": render,
        "fetch_ms": 1000 * fetch,
        "step_ms": 1000 * step,
        "data_fraction_of_step": (fetch + render / steps) / step,
    }


def attention_analysis(frame: pd.DataFrame, out: Path) -> list[dict[str, object]]:
    """Sec. 4.4 on the K3+K5 SK network (seed 0): per stage, does K5's attention grow with scale?"""
    trial = frame[(frame["archid"] == preset("sknet50_k3k5_sk").archid) & (frame["seed"] == 0)].iloc[0]
    model, spec, recipe = load_model(Path(trial["checkpoint"]))
    sets = synthetic_sets(spec, recipe, SCALES, ATTENTION_SAMPLES)
    batches = {scale: dataset.images.float() for scale, dataset in sets.items()}
    units, channels = attention_by_scale(model, spec, batches)
    title = (f"SKNet-50 K3+K5 SK under the proxy recipe (seed 0), {ATTENTION_SAMPLES} synthetic validation "
             "images per scale")  # fmt: skip
    write_attention(units, channels, out, title)
    units["stage"] = units["unit"].str.split("_").str[1].map(lambda stage: f"conv{stage}_x")
    stages = units.groupby(["stage", "scale"])["difference"].mean().unstack("scale")
    rows = []
    for stage, differences in stages.iterrows():
        values = [float(differences[scale]) for scale in SCALES]
        row = {"stage": stage, **{f"scale_{scale:g}": value for scale, value in zip(SCALES, values, strict=True)}}
        row["grows_with_scale"] = all(later > earlier for earlier, later in itertools.pairwise(values))
        row["departure"] = float(units[(units["stage"] == stage) & (units["scale"] == 1.0)]["departure"].mean())
        rows.append(row)
    atomic_write_text(out / "attention_by_stage.csv", pd.DataFrame(rows).to_csv(index=False))
    return rows
