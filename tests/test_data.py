"""Datasets: the synthetic set, and the real CIFAR / ImageFolder loaders on files written here."""

import hashlib
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tv_datasets

import sksearch
from sksearch.data import MAX_SYNTHETIC_CLASSES, SyntheticShapes, datasets, make_loaders
from sksearch.recipes import recipe_from


def test_synthetic_samples_are_deterministic_per_seed_and_split():
    first, again = SyntheticShapes(16, seed=3), SyntheticShapes(16, seed=3)
    for index in range(16):
        image, label = first[index]
        torch.testing.assert_close(image, again[index][0])
        assert label == again[index][1]
    other_seed, val = SyntheticShapes(16, seed=4), SyntheticShapes(16, seed=3, split="val")
    assert not torch.equal(first[0][0], other_seed[0][0])
    assert not torch.equal(first[0][0], val[0][0])


def test_a_sample_does_not_depend_on_the_split_size():
    small, large = SyntheticShapes(10, seed=2), SyntheticShapes(700, seed=2)
    torch.testing.assert_close(small.images, large.images[:10])
    assert torch.equal(small.labels, large.labels[:10])


def test_training_seeds_share_the_images_and_the_data_seed_changes_them():
    common = {"preset": "smoke", "train_samples": 32, "val_samples": 32}
    first, second = (datasets(recipe_from({**common, "seed": seed})) for seed in (0, 1))
    for split in (0, 1):
        torch.testing.assert_close(first[split].images, second[split].images)
    other = datasets(recipe_from({**common, "data_seed": 5}))
    assert not torch.equal(first[1].images, other[1].images)


def test_synthetic_labels_cover_the_classes_and_images_are_normalised():
    data = SyntheticShapes(600, num_classes=12, image_size=24)
    labels = [data[i][1] for i in range(len(data))]
    assert set(labels) == set(range(12))
    images = torch.stack([data[i][0] for i in range(64)])
    assert images.shape == (64, 3, 24, 24)
    assert abs(images.mean()) < 0.5 and 0.5 < images.std() < 2


def test_enlarged_rerenders_the_same_sample_with_a_bigger_object():
    data = SyntheticShapes(128, num_classes=6, image_size=48, scale_range=(1.0, 3.0))
    for factor in (1.5, 2.0):
        enlarged = data.enlarged(factor)
        torch.testing.assert_close(enlarged.radii, data.radii * factor)
        fits = enlarged.radii <= 0.6  # the enlarged object still leaves the background the median colour
        assert fits.sum() >= 8
        for index in fits.nonzero().flatten().tolist():
            (small, label), (big, big_label) = data[index], enlarged[index]
            assert label == big_label
            # the object covers more pixels: more of the image differs from its own median colour
            assert _object_area(big) > _object_area(small)
    torch.testing.assert_close(data.enlarged(1.0)[5][0], data[5][0])


def _object_area(image):
    background = image.flatten(1).median(dim=1).values[:, None, None]
    return int(((image - background).abs().amax(dim=0) > 1.0).sum())


def test_synthetic_rejects_impossible_class_counts():
    with pytest.raises(sksearch.ConfigError, match="num_classes"):
        SyntheticShapes(8, num_classes=MAX_SYNTHETIC_CLASSES + 1)


def test_training_order_depends_only_on_seed_and_epoch():
    recipe = recipe_from({"preset": "smoke", "train_samples": 64, "val_samples": 16, "batch_size": 16})
    loaders = make_loaders(recipe)
    orders = []
    for epoch in (0, 1, 0):
        loaders.train_sampler.set_epoch(epoch)
        orders.append(list(loaders.train_sampler))
    assert orders[0] == orders[2] != orders[1]


# -- CIFAR in its real on-disk format (python pickles), read by torchvision's own loader ---------


def _write_pickle(path, data):
    path.write_bytes(pickle.dumps(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root, monkeypatch, hundred=False, per_file=20):
    rng = np.random.default_rng(0)
    classes = 100 if hundred else 10
    label_key = "fine_labels" if hundred else "labels"

    def batch():
        return {
            "data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
            label_key: [int(x) for x in rng.integers(0, classes, per_file)],
            **({"coarse_labels": [0] * per_file} if hundred else {}),
        }

    if hundred:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        train = [["train", _write_pickle(folder / "train", batch())]]
        test = [["test", _write_pickle(folder / "test", batch())]]
        meta = {"filename": "meta", "key": "fine_label_names"}
        meta["md5"] = _write_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
        cls = tv_datasets.CIFAR100
    else:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        train = [[f"data_batch_{i}", _write_pickle(folder / f"data_batch_{i}", batch())] for i in range(1, 6)]
        test = [["test_batch", _write_pickle(folder / "test_batch", batch())]]
        meta = {"filename": "batches.meta", "key": "label_names"}
        meta["md5"] = _write_pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
        cls = tv_datasets.CIFAR10
    # torchvision checks the official files' MD5s; these are our files' own checksums
    monkeypatch.setattr(cls, "train_list", train)
    monkeypatch.setattr(cls, "test_list", test)
    monkeypatch.setattr(cls, "meta", meta)


@pytest.mark.parametrize("hundred", [False, True], ids=["cifar10", "cifar100"])
def test_cifar_is_read_from_its_on_disk_format(tmp_path, monkeypatch, hundred):
    write_cifar(tmp_path, monkeypatch, hundred)
    name = "cifar100" if hundred else "cifar10"
    recipe = recipe_from({"preset": "cifar", "dataset": name, "data_root": str(tmp_path)})
    train, val, classes = datasets(recipe)
    assert classes == (100 if hundred else 10)
    assert len(train) == (20 if hundred else 100) and len(val) == 20
    image, label = train[0]
    assert image.shape == (3, 32, 32) and 0 <= label < classes
    assert recipe.base_lr() == (0.05 if hundred else 0.1)


def test_missing_cifar_is_a_config_error(tmp_path):
    recipe = recipe_from({"preset": "cifar", "data_root": str(tmp_path / "nowhere")})
    with pytest.raises(sksearch.ConfigError, match=r"^recipe.data_root: no cifar10 at .*download: true"):
        datasets(recipe)


# -- ImageFolder (ImageNet layout) ----------------------------------------------------------------


def write_image_folder(root, classes=("cat", "dog", "fox"), per_class=4, size=40):
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(per_class):
                pixels = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.{'png' if index % 2 else 'jpg'}")
    return root


def test_image_folder_uses_the_paper_augmentation(tmp_path):
    write_image_folder(tmp_path)
    recipe = recipe_from(
        {"preset": "imagenet", "data_root": str(tmp_path), "image_size": 32, "eval_size": 24, "workers": 0}
    )
    train, val, classes = datasets(recipe)
    assert classes == 3 and len(train) == 12 and len(val) == 12
    assert train[0][0].shape == (3, 32, 32)  # random-size crop to image_size
    assert val[0][0].shape == (3, 24, 24)  # resize + centre crop to eval_size
    draws = []
    for seed in (0, 1):  # evaluation is deterministic, training augmentation is not
        torch.manual_seed(seed)
        draws.append((val[3][0], train[3][0]))
    torch.testing.assert_close(draws[0][0], draws[1][0])
    assert not torch.equal(draws[0][1], draws[1][1])


def test_image_folder_needs_train_and_val(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    recipe = recipe_from({"preset": "imagenet", "data_root": str(tmp_path)})
    with pytest.raises(sksearch.ConfigError, match=r"^recipe.data_root: .*val is not a folder"):
        datasets(recipe)
