"""One trial: metrics, checkpoints, exact resume, divergence, the paper's recipes, DDP, the CLI."""

import json
import os
import socket

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import sksearch
from sksearch.cli import main
from sksearch.data import make_loaders
from sksearch.recipes import RECIPES, recipe_from
from sksearch.train import CHECKPOINT, learning_rate, load_checkpoint, train
from tests.test_data import write_cifar, write_image_folder

TINY = {"preset": "smoke", "epochs": 3, "train_samples": 96, "val_samples": 48, "batch_size": 32, "threads": 1}
TIMINGS = ("epoch_time", "images_per_s")


def tiny(**changes):
    return recipe_from({**TINY, **changes})


def without_timings(history):
    return [{k: v for k, v in metrics.items() if k not in TIMINGS} for metrics in history]


def test_a_trial_reports_every_epoch_and_checkpoints(tmp_path):
    reports = []
    result = train("sknet26", tiny(), tmp_path, report=lambda metrics, path: reports.append((metrics, path)))
    assert result.status == "completed" and result.epochs_run == 3
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3]
    first = reports[0][0]
    for key in (
        "train_loss",
        "top1_err",
        "top5_err",
        "epoch_time",
        "images_per_s",
        "lr",
        "params",
        "macs",
        "best_top1_err",
        "best_epoch",
    ):
        assert key in first
    assert 0 <= first["top5_err"] <= first["top1_err"] <= 100
    last = reports[-1][0]
    assert last["best_top1_err"] == min(m["top1_err"] for m, _ in reports)
    assert first["params"] == sksearch.complexity.count(tiny().adapt(sksearch.preset("sknet26"), 8)).params
    assert all(path == tmp_path / CHECKPOINT for _, path in reports)
    spec, weights, recipe = load_checkpoint(tmp_path / CHECKPOINT)  # weights_only=True inside
    assert spec.archid == result.archid and recipe["name"] == "smoke"
    sksearch.build(spec).load_state_dict(weights)


class Interrupted(Exception):
    pass


def test_resume_after_an_interruption_ends_exactly_like_an_uninterrupted_run(tmp_path):
    straight = train("sknet26", tiny(), tmp_path / "straight")

    def stop_after_first_epoch(metrics, path):
        if metrics["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train("sknet26", tiny(), tmp_path / "resumed", report=stop_after_first_epoch)
    resumed_reports = []
    resumed = train("sknet26", tiny(), tmp_path / "resumed", report=lambda m, p: resumed_reports.append(m["epoch"]))
    assert resumed_reports == [2, 3]  # epoch 1 was not run again
    assert without_timings(resumed.history) == without_timings(straight.history)
    _, straight_weights, _ = load_checkpoint(tmp_path / "straight" / CHECKPOINT)
    _, resumed_weights, _ = load_checkpoint(tmp_path / "resumed" / CHECKPOINT)
    for name, tensor in straight_weights.items():
        assert torch.equal(tensor, resumed_weights[name]), name


def test_a_diverging_trial_fails_with_its_reason(tmp_path):
    result = train("sknet26", tiny(lr=1e6, epochs=2, zero_init_last_bn=False), tmp_path)
    assert result.status == "failed"
    assert result.reason.startswith("diverged: loss ")


def test_channels_last_auto_is_on_for_cpu_only():
    assert tiny().uses_channels_last("cpu") and not tiny().uses_channels_last("cuda")
    assert not tiny(channels_last=False).uses_channels_last("cpu")
    assert tiny(channels_last=True).uses_channels_last("cuda")


def test_the_paper_recipes():
    imagenet, cifar = RECIPES["imagenet"], RECIPES["cifar"]
    assert (imagenet.batch_size, imagenet.momentum, imagenet.epochs, imagenet.label_smoothing) == (256, 0.9, 100, 0.1)
    assert [round(learning_rate(imagenet, e), 6) for e in (0, 29, 30, 59, 60, 90)] == [
        0.1,
        0.1,
        0.01,
        0.01,
        0.001,
        0.0001,
    ]
    assert imagenet.weight_decay_for(sksearch.preset("sknet50")) == 1e-4
    assert imagenet.weight_decay_for(sksearch.preset("shufflenetv2_x1_0_sk")) == 4e-5  # lightweight models
    assert (cifar.batch_size, cifar.epochs, cifar.weight_decay) == (128, 300, 5e-4)
    assert [round(learning_rate(cifar, e), 6) for e in (0, 149, 150, 224, 225)] == [0.1, 0.1, 0.01, 0.01, 0.001]
    assert recipe_from({"preset": "cifar", "dataset": "cifar100"}).base_lr() == 0.05
    # linear scaling with batch size
    assert recipe_from({"preset": "imagenet", "batch_size": 512}).scaled_lr() == pytest.approx(0.2)
    assert recipe_from({"preset": "cifar", "batch_size": 64}).scaled_lr() == pytest.approx(0.05)


def test_the_proxy_recipe_keeps_every_unit_and_gives_the_stages_large_maps():
    """The proxy trains Table 7's networks with the same units, depths, kernels, dilations and
    attention; only the channels (1/16), the input (32 px) and the stem (no 4x downsampling) change."""
    from sksearch.complexity import analytic_count

    proxy = RECIPES["proxy"]
    declared = sksearch.preset("sknet50_k3k5_sk")
    trained = proxy.adapt(declared, 8)
    assert trained.template == "cifar" and trained.input_size == 32 and trained.num_classes == 8
    assert [s.depth for s in trained.stages] == [s.depth for s in declared.stages] == [3, 4, 6, 3]
    assert [(b.kernel, b.dilation) for b in trained.unit.branches] == [(3, 1), (3, 2)]
    assert trained.unit.attention and [b.groups for b in trained.unit.branches] == [2, 2]  # 32 / 16, 4 channels each
    sizes = [part.name for part in analytic_count(trained, 32).parts]
    assert sizes[0] == "stem"
    model = sksearch.build(trained)
    maps = []
    for stage in model.stages:
        stage.register_forward_hook(lambda module, inputs, output: maps.append(output.shape[-1]))
    model.eval()(torch.randn(1, 3, 32, 32))
    assert maps == [32, 16, 8, 4]  # the paper's 56/28/14/7 at 224, here without the stem's 4x cut
    assert tiny().adapt(declared, 8).template == "imagenet"  # smoke keeps the ImageNet stem


def test_the_proxy_keeps_an_attention_that_can_select():
    """At 1/16 width L would scale to 2 and SE's hidden layer to 1 channel: the floor keeps both at 8."""
    from sksearch.complexity import count

    proxy = RECIPES["proxy"]
    trained = proxy.adapt(sksearch.preset("sknet50_k3k5_sk"), 8)
    assert trained.unit.min_dim == 8 and sksearch.preset("sknet50").scaled(0.0625).unit.min_dim == 2
    assert {trained.unit.attention_dim(stage.width) for stage in trained.stages} == {8}
    se = proxy.adapt(sksearch.preset("seresnext50_32x4d"), 8)
    assert se.se_min_dim == 8 and count(se).params > count(se.replace(se_min_dim=1)).params
    assert sksearch.build(se).stages[0][0].se.fc1.out_channels == 8  # max(16 // 16, 8)
    full = sksearch.preset("seresnext50_32x4d")
    assert full.replace(se_min_dim=8).archid != full.archid and full.replace(se=False, se_min_dim=8).archid == \
        full.replace(se=False).archid  # fmt: skip


def test_a_weight_average_is_the_network_reported_and_the_raw_errors_stay_beside_it(tmp_path):
    result = train("sknet26", tiny(weight_averaging="ema", ema_decay=0.9), tmp_path)
    assert all({"raw_top1_err", "raw_top5_err"} <= metrics.keys() for metrics in result.history)
    assert any(m["top1_err"] != m["raw_top1_err"] for m in result.history)  # two networks evaluated
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    _, weights, _ = load_checkpoint(tmp_path / CHECKPOINT)  # the average: what export and attention use
    assert weights.keys() == state["model"].keys()
    assert any(not torch.equal(weights[name], state["model"][name]) for name in weights)

    def stop_after_first_epoch(metrics, path):  # exact resume holds with the average too
        if metrics["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train("sknet26", tiny(weight_averaging="ema", ema_decay=0.9), tmp_path / "two", report=stop_after_first_epoch)
    resumed = train("sknet26", tiny(weight_averaging="ema", ema_decay=0.9), tmp_path / "two")
    assert without_timings(resumed.history) == without_timings(result.history)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs: must be >= 1"),
        ({"lr": -1}, "lr: must be > 0"),
        ({"momentum": 1.5}, "momentum: must be in [0, 1], got 1.5"),
        ({"schedule": "onecycle"}, "schedule: must be one of step, cosine, linear"),
        ({"dataset": "mnist"}, "dataset: must be one of"),
        ({"lr_milestones": [0.5, 1.5]}, "lr_milestones[1]: must be in (0, 1), got 1.5"),
        ({"amp": "fp8"}, "amp: must be one of"),
        ({"dataset": "cifar10", "data_root": "d", "num_classes": 7}, "num_classes: cifar10 has 10 classes, got 7"),
        ({"dataset": "cifar10"}, "data_root: is required for dataset cifar10"),
        ({"scale_range": [2, 1]}, "scale_range: must satisfy 0 < low <= high"),
        ({"epoch": 3}, "epoch: unknown recipe key (did you mean epochs?)"),
        ({"channels_last": "yes"}, "channels_last: must be true or false"),
        ({"small_input_stem": 1}, "small_input_stem: must be true or false"),
        ({"data_seed": -1}, "data_seed: must be >= 0"),
    ],
)
def test_bad_recipes_name_the_field(changes, message):
    with pytest.raises(sksearch.ConfigError) as caught:
        recipe_from({"preset": "smoke", **changes})
    assert str(caught.value).startswith(message)


def test_trains_on_cifar_and_image_folder_files(tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar", monkeypatch)
    cifar = recipe_from(
        {
            "preset": "cifar",
            "data_root": str(tmp_path / "cifar"),
            "epochs": 1,
            "batch_size": 25,
            "workers": 0,
            "width_multiplier": 0.125,
            "threads": 1,
        }
    )
    result = train("sknet29", cifar, tmp_path / "run_cifar")
    assert result.status == "completed" and 0 <= result.final["top1_err"] <= 100
    write_image_folder(tmp_path / "folder")
    folder = recipe_from(
        {
            "preset": "imagenet",
            "data_root": str(tmp_path / "folder"),
            "epochs": 1,
            "batch_size": 6,
            "workers": 0,
            "image_size": 32,
            "eval_size": 32,
            "width_multiplier": 0.125,
            "threads": 1,
        }
    )
    result = train("sknet26", folder, tmp_path / "run_folder")
    assert result.status == "completed" and result.final["params"] > 0


# -- data parallel: two processes, gloo, torch.distributed directly ------------------------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank, world_size, port, workdir, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        recipe = recipe_from({**TINY, "epochs": 2})
        reports = []
        result = train("sknet26", recipe, workdir, report=lambda m, path: reports.append((m, str(path))))
        weights = {k: v.clone() for k, v in torch.load(f"{workdir}/{CHECKPOINT}", weights_only=True)["model"].items()}
        torch.save(weights, f"{out}/weights_{rank}.pt")
        sampler = make_loaders(recipe, rank=rank, world_size=world_size).train.sampler  # as train() shards
        sampler.set_epoch(1)
        with open(f"{out}/rank_{rank}.json", "w") as handle:
            json.dump({"status": result.status, "reports": reports, "indices": list(sampler)}, handle)
    finally:
        dist.destroy_process_group()


def test_a_two_worker_data_parallel_trial(tmp_path):
    workdir, out = tmp_path / "trial", tmp_path / "out"
    out.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(workdir), str(out)), nprocs=2, join=True)
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["status"] for r in ranks] == ["completed", "completed"]
    metrics = [without_timings([m for m, _ in r["reports"]]) for r in ranks]
    assert metrics[0] == metrics[1]  # all-reduced: every rank reports the same numbers
    assert [path for _, path in ranks[0]["reports"]] == [str(workdir / CHECKPOINT)] * 2
    assert [path for _, path in ranks[1]["reports"]] == ["None"] * 2  # only rank 0 checkpoints
    # each rank saw its own half of the training set
    first, second = (set(r["indices"]) for r in ranks)
    assert len(first) == len(second) == TINY["train_samples"] // 2 and not first & second


def test_train_verb_writes_the_trial_files(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "sknet26",
        "--recipe",
        "smoke",
        "--set",
        "epochs=2",
        "--set",
        "train_samples=64",
        "--set",
        "val_samples=32",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "epoch   2" in text and "final top-1 error" in text
    history = pd.read_parquet(out / "history.parquet")
    assert list(history["epoch"]) == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert sksearch.read_spec(out / "declared_spec.yaml") == sksearch.preset("sknet26")
    # spec.yaml is the network as trained (1/8 of the channels under smoke): the weights fit it
    trained = sksearch.read_spec(out / "spec.yaml")
    assert trained == RECIPES["smoke"].adapt(sksearch.preset("sknet26"), 8)
    sksearch.build(trained).load_state_dict(torch.load(out / CHECKPOINT, weights_only=True)["model"])
    # the same folder with another schedule is refused, not silently resumed; --restart starts over
    assert main([*argv, "--set", "epochs=3"]) == 2
    assert capsys.readouterr().err == (
        f"sksearch train: error: {out}: holds a checkpoint of another recipe (epochs differ); "
        "--restart starts over, or choose another --out\n"
    )
    assert main([*argv, "--set", "epochs=3", "--restart"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == 3


def test_train_verb_bad_input(tmp_path, capsys):
    assert main(["train", "sknet26", "--set", "epochs", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "sksearch train: error: recipe.--set: expects key=value, got 'epochs'\n"
    assert main(["train", "sknet26", "--recipe", "smok", "--out", str(tmp_path / "x")]) == 2
    assert "recipe.preset: unknown recipe 'smok' (did you mean smoke?)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_numbers_in_scientific_notation_are_numbers(tmp_path):
    from sksearch.cli.common import parse_settings
    from sksearch.search import load_space

    settings = parse_settings(["weight_decay=5e-4", "lr=1e6", "label_smoothing=1.5E-1"])
    assert settings == {"weight_decay": 5e-4, "lr": 1e6, "label_smoothing": 0.15}
    assert recipe_from({"preset": "smoke", **settings}).weight_decay == 5e-4
    space = tmp_path / "space.yaml"
    space.write_text("base: sknet26\nknobs:\n  lr: {float: [1e-3, 1e-1], log: true}\n  weight_decay: 5e-4\n")
    knobs = {knob.name: knob for knob in load_space(space).knobs}
    assert (knobs["lr"].low, knobs["lr"].high, knobs["weight_decay"].values) == (1e-3, 1e-1, (5e-4,))
