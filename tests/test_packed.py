"""The fast ImageNet path on 2 cores: `sksearch prepare` packs a tiny folder of generated JPEGs and
reads it back equal; the fast recipe's resolution schedule, parameter groups and schedule; and a
training step at each resolution."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import sksearch.packed
from sksearch.cli import main
from sksearch.data import AtEpochSize, datasets, make_loaders
from sksearch.packed import PackedImages, prepare
from sksearch.recipes import RECIPES, recipe_from, recipe_identity
from sksearch.train import learning_rate, parameter_groups

CLASSES = ("cat", "dog", "eel")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ (5 images a class and one file that is no image) and val/ (2 a class), 120x100 px."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 5), ("val", 2)):
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                pixels = np.full((100, 120, 3), 60 * label, np.uint8) + rng.integers(0, 40, (100, 120, 3), np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index}.jpg", quality=90)
    (root / "train" / "dog" / "9.jpg").write_bytes(b"cut short")
    return root


def fast(root, **changes):
    base = {"preset": "imagenet-fast", "data_root": str(root), "image_size": 64, "start_image_size": 32,
            "eval_size": 48, "batch_size": 4, "workers": 0, "width_multiplier": 0.125, "epochs": 4}  # fmt: skip
    return recipe_from({**base, **changes})


def test_a_packed_folder_reads_back_with_its_labels_and_classes(folder, tmp_path, capsys):
    assert main(["prepare", str(folder), str(tmp_path / "packed"), "--max-side", "64"]) == 0
    out = capsys.readouterr().out
    assert "train: 15 images of 3 classes in 1 shards" in out and "1 skipped as unreadable" in out
    assert "skipped dog/9.jpg: cannot identify image file" in out
    for split, count in (("train", 5), ("val", 2)):
        packed = PackedImages(tmp_path / "packed" / split)
        assert packed.classes == list(CLASSES) and len(packed) == 3 * count
        assert packed.targets == [label for label in range(3) for _ in range(count)]  # ImageFolder's order
        image, label = packed[count]  # the first dog, decoded to a uint8 CHW tensor
        assert label == 1 and image.shape == (3, 53, 64) and image.dtype == torch.uint8  # longer side max_side
        assert abs(image.float().mean() - 60 - 19.5) < 3  # the same picture, re-encoded
    pack = json.loads((tmp_path / "packed" / "train" / "pack.json").read_text())
    assert pack["images"] == 15 and pack["images_found"] == 16 and len(pack["skipped"]) == 1


def test_an_interrupted_preparation_keeps_whole_shards_and_refuses_other_settings(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(sksearch.packed, "SHARD_IMAGES", 4)
    out = tmp_path / "packed"
    prepare(folder, out, max_side=48, workers=1)
    shards = sorted((out / "train").glob("shard-*.bin"))
    assert len(shards) == 4  # 16 files, 4 a shard
    kept = shards[0].stat().st_mtime_ns
    (out / "train" / "shard-00002.json").unlink()  # as if killed while writing shard 2
    (out / "train" / "pack.json").unlink()
    done = []
    packs = prepare(folder, out, max_side=48, workers=1, progress=done.append)
    assert done == [12, 4, 6]  # train: 3 whole shards kept, the fourth written again; val: kept whole
    assert shards[0].stat().st_mtime_ns == kept and packs["train"]["images"] == 15
    assert main(["prepare", str(folder), str(out), "--max-side", "64"]) == 2  # other settings: refused


def test_the_fast_recipe_grows_its_crops_and_peaks_its_rate_at_any_epoch_count():
    recipe = RECIPES["imagenet-fast"]
    assert [recipe.resolution_at(epoch) for epoch in range(16)] == [160] * 12 + [192] * 4
    assert recipe.eval_size == 224 and recipe.label_smoothing == 0.1 and not recipe.decay_norm_and_bias
    for epochs in (8, 16, 88):
        rates = [learning_rate(recipe.replace(epochs=epochs), epoch) for epoch in range(epochs)]
        peak = rates.index(max(rates))
        assert peak == round(0.125 * epochs) and rates[0] < rates[peak] and rates[-1] < rates[peak] / 5
        assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False))  # then only down


def test_batchnorm_weights_and_biases_are_not_decayed():
    from sksearch.nets import build
    from sksearch.presets import preset

    model = build(preset("sknet26").scaled(0.125))
    decayed, plain = parameter_groups(model, 1e-4, decay_all=False)
    assert decayed["weight_decay"] == 1e-4 and plain["weight_decay"] == 0.0
    names = {id(p): name for name, p in model.named_parameters()}
    assert all(p.ndim > 1 for p in decayed["params"]) and all(
        "bn" in names[id(p)] or p.ndim == 1 for p in plain["params"]
    )
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    (everything,) = parameter_groups(model, 1e-4, decay_all=True)  # the paper's recipes: as before
    assert everything["params"] == list(model.parameters())


def test_a_training_step_runs_at_each_resolution_on_packed_data(folder, tmp_path):
    prepare(folder, tmp_path / "packed", max_side=80, workers=1)
    recipe = fast(tmp_path / "packed")
    loaders = make_loaders(recipe)
    assert isinstance(loaders.train.sampler, AtEpochSize)
    seen = {}
    for epoch in (0, 3):
        loaders.train.sampler.set_epoch(epoch)
        images, labels = next(iter(loaders.train))
        seen[epoch] = images.shape[-1]
        assert images.dtype == torch.uint8 and len(labels) == 4  # normalised on the device (data.on_device)
    assert seen == {0: 32, 3: 64}
    images, _ = next(iter(loaders.val))
    assert images.shape[-2:] == (48, 48)
    from sksearch.train import train

    result = train("sknet26", recipe, tmp_path / "run", progress=False)
    assert result.status == "completed" and result.epochs_run == 4


def test_older_results_rows_keep_their_recipe_identity():
    """Fields added since (at their neutral values) do not split a table's recipes in two."""
    from pathlib import Path

    rows = pd.read_parquet(Path(__file__).parents[1] / "results" / "proxy" / "pilot" / "trials.parquet")
    old = rows["recipe_json"].iloc[0]
    assert "start_image_size" not in old and "attention_floor" in old  # written before this round's fields
    new = json.dumps(recipe_from(json.loads(old)).to_dict())
    assert recipe_identity(new) == recipe_identity(old)


def test_a_missing_pack_is_refused_in_one_line(tmp_path):
    from sksearch.validation import ConfigError

    with pytest.raises(ConfigError, match="is not a prepared split"):
        datasets(fast(tmp_path))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preset": "smoke", "start_image_size": 16}, "start_image_size: needs images to crop"),
        ({"start_image_size": 256}, "start_image_size: must be <= 192"),
        ({"resolution_ramp": [0.8, 0.5]}, "resolution_ramp: must satisfy start <= end"),
        ({"lr_warmup": 1.0}, "lr_warmup: "),
        ({"schedule": "triangle"}, "schedule: "),
    ],
)
def test_bad_fast_recipe_fields_are_refused(changes, message):
    from sksearch.validation import ConfigError

    with pytest.raises(ConfigError) as refused:
        recipe_from({"preset": "imagenet-fast", **changes})
    assert message in str(refused.value)
