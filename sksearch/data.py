"""Datasets: the embedded synthetic multi-scale set (default, no download), CIFAR-10/100 and
ImageFolder (ImageNet layout) through torchvision, with the paper's augmentation.

The synthetic set is what lets a laptop exercise SK: a class is a shape with a texture, drawn at
a random scale in `scale_range`, so the receptive field a neuron needs varies from image to image.
Every sample is rendered from its own seed, so the same sample can be re-rendered with its object
enlarged 1.5x or 2x (Sec. 4.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from sksearch.packed import PACK, PackedImages
from sksearch.recipes import Recipe
from sksearch.validation import ConfigError

SHAPES = ("disk", "square", "triangle", "ring", "cross", "diamond")
TEXTURES = ("solid", "stripes", "checker", "dots")
MAX_SYNTHETIC_CLASSES = len(SHAPES) * len(TEXTURES)
SPLIT_SEEDS = {"train": 0, "val": 1}
MAX_RADIUS = 0.75  # of the half-width: the largest object spans 75% of the image
_CHUNK = 256  # samples rendered together

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class SyntheticShapes(Dataset):
    """A deterministic, procedurally rendered classification set with objects of varying scale.

    Label = texture * len(SHAPES) + shape: the first six classes differ by shape alone. The texture
    is drawn in the object's own coordinates, so it scales with the object; colours, position,
    rotation and background are random and carry no label information. The whole split is rendered
    once, on construction, in vectorised chunks (about 0.2 s per thousand images at 32 px), so a
    training step never waits for data. Sample i depends only on (seed, split, i): a larger split
    starts with the same images. `enlarged(f)` is the same dataset with every object f times larger.
    """

    def __init__(
        self,
        num_samples: int,
        num_classes: int = 8,
        image_size: int = 32,
        scale_range: tuple[float, float] = (1.0, 3.0),
        seed: int = 0,
        split: str = "train",
        enlarge: float = 1.0,
    ):
        if not 2 <= num_classes <= MAX_SYNTHETIC_CLASSES:
            raise ConfigError(
                "num_classes", f"the synthetic set has 2..{MAX_SYNTHETIC_CLASSES} classes, got {num_classes}"
            )
        self.num_samples, self.num_classes, self.image_size = num_samples, num_classes, image_size
        self.scale_range, self.seed, self.split, self.enlarge = scale_range, seed, split, enlarge
        chunks = [self._render_chunk(index) for index in range(math.ceil(num_samples / _CHUNK))]
        self.images = torch.cat([images for images, _, _ in chunks])[:num_samples]
        self.labels = torch.cat([labels for _, labels, _ in chunks])[:num_samples]
        self.radii = torch.cat([radii for _, _, radii in chunks])[:num_samples]  # of the half-width

    def __len__(self) -> int:
        return self.num_samples

    def enlarged(self, factor: float) -> SyntheticShapes:
        return SyntheticShapes(
            self.num_samples, self.num_classes, self.image_size, self.scale_range, self.seed, self.split, factor
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        return self.images[index].float(), int(self.labels[index])

    def _render_chunk(self, chunk: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """_CHUNK samples drawn from a generator of their own, so a sample never depends on the split size."""
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + SPLIT_SEEDS[self.split]) * 10_007 + chunk)
        n, size = _CHUNK, self.image_size

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            return low + (high - low) * torch.rand((n, *shape), generator=generator)

        labels = torch.randint(self.num_classes, (n,), generator=generator)
        low, high = self.scale_range
        base_radius = MAX_RADIUS * uniform(low, high) / high  # the largest object spans MAX_RADIUS of the image
        centre = uniform(-0.5, 0.5, 2) * (1 - base_radius[:, None])  # the same for every enlargement
        angle = uniform(0, math.pi)
        phase = uniform(0, 2 * math.pi)
        tone = uniform(0.2, 0.8, 3)
        slope = uniform(-1, 1, 3)
        jitter = uniform(-0.1, 0.1, 3)
        noise = torch.randn((n, 3, size, size), generator=generator)

        axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        radius = (base_radius * self.enlarge)[:, None, None]
        dx, dy = (x - centre[:, 0, None, None]) / radius, (y - centre[:, 1, None, None]) / radius
        cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        shapes = torch.stack([_shape_mask(shape, u, v) for shape in SHAPES])  # (shape, n, H, W)
        inside = shapes.gather(0, (labels % len(SHAPES))[None, :, None, None].expand(1, n, size, size))[0]
        textures = torch.stack([_texture(texture, u, v, phase[:, None, None]) for texture in TEXTURES])
        pattern = textures.gather(0, (labels // len(SHAPES))[None, :, None, None].expand(1, n, size, size))[0]
        tone, slope, jitter = tone[..., None, None], slope[..., None, None], jitter[..., None, None]
        background = tone + 0.15 * x * slope + 0.04 * noise
        # the object always contrasts with the background; its colours carry no label information
        foreground = torch.where(tone > 0.5, tone - 0.45, tone + 0.45) + jitter
        accent = 0.5 * (foreground + tone)
        image = torch.where(inside[:, None], torch.where(pattern[:, None], foreground, accent), background)
        return ((image - 0.5) / 0.25).half(), labels, radius.flatten()


def _shape_mask(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    radius = torch.sqrt(u * u + v * v)
    if shape == "disk":
        return radius < 1
    if shape == "square":
        return torch.maximum(u.abs(), v.abs()) < 0.8
    if shape == "triangle":
        return (v > -0.5) & (v < 1 - 1.7 * u.abs())
    if shape == "ring":
        return (radius < 1) & (radius > 0.55)
    if shape == "cross":
        return ((u.abs() < 0.3) & (v.abs() < 1)) | ((v.abs() < 0.3) & (u.abs() < 1))
    return u.abs() + v.abs() < 1  # diamond


def _texture(texture: str, u: torch.Tensor, v: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    frequency = 1.5 * math.pi  # about three bands across an object, whatever its size
    if texture == "solid":
        return torch.ones_like(u, dtype=torch.bool)
    if texture == "stripes":
        return torch.sin(frequency * u + phase) > 0
    if texture == "checker":
        return torch.sin(frequency * u + phase) * torch.sin(frequency * v + phase) > 0
    return torch.cos(frequency * u + phase) + torch.cos(frequency * v + phase) > 1  # dots


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    num_classes: int
    train_sampler: DistributedSampler | None = None


def datasets(recipe: Recipe, lightweight: bool = False) -> tuple[Dataset, Dataset, int]:
    """The (train, val) datasets of a recipe and their number of classes; a problem with the data
    is a ConfigError on the recipe's field (`recipe.data_root: ...`)."""
    try:
        return _datasets(recipe, lightweight)
    except ConfigError as error:
        raise error.within("recipe") from None


# (train, val) images of the sets whose size the recipe does not have to say
KNOWN_SIZES = {"synthetic": (2048, 512), "cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}


def epoch_sizes(recipe: Recipe) -> tuple[int | None, int | None]:
    """(train, val) images per epoch as far as the recipe fixes them: the synthetic set's size (its
    own or the default), a subset of CIFAR or an image folder; None where the folder decides."""
    known = KNOWN_SIZES.get(recipe.dataset, (None, None))
    sizes = []
    for default, asked in zip(known, (recipe.train_samples, recipe.val_samples), strict=True):
        if recipe.dataset == "synthetic" or not (default and asked):
            sizes.append(asked or default)
        else:
            sizes.append(min(default, asked))
    return sizes[0], sizes[1]


def _datasets(recipe: Recipe, lightweight: bool) -> tuple[Dataset, Dataset, int]:
    if recipe.dataset == "synthetic":
        classes = recipe.classes
        common = {"num_classes": classes, "image_size": recipe.image_size, "scale_range": recipe.scale_range}
        train_size, val_size = epoch_sizes(recipe)
        train = SyntheticShapes(train_size, seed=recipe.data_seed, split="train", **common)
        val = SyntheticShapes(val_size, seed=recipe.data_seed, split="val", **common)
        return train, val, classes
    if recipe.dataset in ("cifar10", "cifar100"):
        train, val = _cifar(recipe)
        return _limit(train, recipe.train_samples), _limit(val, recipe.val_samples), len(train.classes)
    train, val, crops = _image_folder(recipe, lightweight)
    classes = len(train.classes)
    train = _limit(train, recipe.train_samples)
    if recipe.start_image_size is not None:  # the crop size is the sampler's, per epoch
        train = AtSize(train, crops)
    return train, _limit(val, recipe.val_samples), classes


class AtSize(Dataset):
    """Progressive resolution: a training set whose key is (index, size), its image cropped by
    `crops(size)`; `AtEpochSize` gives each epoch's size (Recipe.resolution_at)."""

    def __init__(self, images: Dataset, crops: Callable[[int], Callable]):
        self.images, self.crops, self._at = images, crops, {}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, size = key
        if size not in self._at:
            self._at[size] = self.crops(size)
        image, label = self.images[index]
        return self._at[size](image), label


class AtEpochSize(torch.utils.data.Sampler):
    """A sampler's indices, each with the recipe's crop size of the current epoch."""

    def __init__(self, sampler: torch.utils.data.Sampler, recipe: Recipe):
        self.sampler, self.recipe, self.epoch = sampler, recipe, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        size = self.recipe.resolution_at(self.epoch)
        return ((index, size) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def _limit(dataset: Dataset, count: int | None) -> Dataset:
    return Subset(dataset, range(min(count, len(dataset)))) if count else dataset


def _cifar(recipe: Recipe) -> tuple[Dataset, Dataset]:
    from torchvision import datasets as tv_datasets
    from torchvision import transforms

    factory = tv_datasets.CIFAR10 if recipe.dataset == "cifar10" else tv_datasets.CIFAR100
    normalise = transforms.Normalize(CIFAR_MEAN, CIFAR_STD)
    augment = transforms.Compose(
        [
            transforms.RandomCrop(recipe.image_size, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalise,
        ]
    )
    plain = transforms.Compose([transforms.ToTensor(), normalise])
    try:
        train = factory(recipe.data_root, train=True, transform=augment, download=recipe.download)
        val = factory(recipe.data_root, train=False, transform=plain, download=False)
    except RuntimeError:  # torchvision: not found or corrupted (its own md5 check)
        raise ConfigError(
            "data_root", f"no {recipe.dataset} at {recipe.data_root} (set download: true to fetch it)"
        ) from None
    return train, val


def check_data_root(recipe: Recipe) -> None:
    """Refuse, before a sweep launches, a recipe whose data is not where it says (on this machine):
    an image folder without train/ and val/, a dataset that is neither there nor to be downloaded."""
    if recipe.dataset == "synthetic":
        return
    root = Path(recipe.data_root)
    if recipe.dataset == "imagefolder":
        for split in ("train", "val"):
            if not (root / split).is_dir():
                raise ConfigError("data_root", f"{root / split} is not a folder (expected {root}/train and {root}/val)")
    elif recipe.dataset == "packed":
        for split in ("train", "val"):
            if not (root / split / PACK).is_file():
                raise ConfigError("data_root", f"{root / split} is not a prepared split (`sksearch prepare "
                                  "IMAGEFOLDER OUT` writes OUT/train and OUT/val; data_root is OUT)")  # fmt: skip
    elif not recipe.download and not root.is_dir():
        raise ConfigError("data_root", f"no {recipe.dataset} at {root} (set download: true to fetch it)")


def _image_folder(recipe: Recipe, lightweight: bool) -> tuple[Dataset, Dataset, Callable[[int], Callable]]:
    """ImageNet layout (root/train/<class>/*, root/val/<class>/*), as files or packed (sksearch.packed).
    Random-size crop and flip for training (less aggressive scale for lightweight models, Sec. 4.1),
    resize + centre crop at `eval_size` (224 or 320) for evaluation; also the training crops at a
    size (progressive resolution). Packed images leave the loaders as uint8, normalised on the device."""
    from torchvision import datasets as tv_datasets

    check_data_root(recipe)
    root = Path(recipe.data_root)
    crops, evaluate = _pipelines(recipe, lightweight)
    augment = None if recipe.start_image_size is not None else crops(recipe.image_size)
    try:
        if recipe.dataset == "packed":
            train, val = PackedImages(root / "train", augment), PackedImages(root / "val", evaluate)
        else:
            train = tv_datasets.ImageFolder(str(root / "train"), transform=augment)
            val = tv_datasets.ImageFolder(str(root / "val"), transform=evaluate)
    except (FileNotFoundError, RuntimeError) as error:
        raise ConfigError("data_root", str(error)) from None
    if train.classes != val.classes:
        raise ConfigError("data_root", f"{root}/train and {root}/val have different class folders")
    return train, val, crops


def _pipelines(recipe: Recipe, lightweight: bool) -> tuple[Callable[[int], Callable], Callable]:
    """The training crops at a size, and the evaluation transform. Files go through PIL and leave as
    normalised floats (torchvision.transforms); packed images are uint8 tensors already, cropped and
    resized as such (transforms.v2) and normalised on the device."""
    from torchvision import transforms
    from torchvision.transforms import v2

    crop_scale = (0.25, 1.0) if lightweight else (0.08, 1.0)
    eval_size = recipe.eval_size or recipe.image_size
    if recipe.dataset == "packed":
        evaluate = v2.Compose([v2.Resize(round(eval_size / 0.875), antialias=True), v2.CenterCrop(eval_size)])
        return (lambda size: v2.Compose([v2.RandomResizedCrop(size, scale=crop_scale, antialias=True),
                                         v2.RandomHorizontalFlip()])), evaluate  # fmt: skip
    finish = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    evaluate = transforms.Compose([transforms.Resize(round(eval_size / 0.875)), transforms.CenterCrop(eval_size),
                                   *finish])  # fmt: skip
    return (lambda size: transforms.Compose([transforms.RandomResizedCrop(size, scale=crop_scale),
                                             transforms.RandomHorizontalFlip(), *finish])), evaluate  # fmt: skip


def make_loaders(recipe: Recipe, lightweight: bool = False, rank: int = 0, world_size: int = 1) -> Loaders:
    """Loaders for one trial; with world_size > 1 each rank reads its own shard (DDP).
    The training order is reshuffled per epoch from (seed, epoch): call `set_epoch`."""
    train, val, classes = datasets(recipe, lightweight)
    per_rank_batch = max(1, recipe.batch_size // world_size)
    sampler = (
        DistributedSampler(train, world_size, rank, shuffle=True, seed=recipe.seed, drop_last=True)
        if world_size > 1
        else _EpochShuffle(train, recipe.seed)
    )
    if recipe.start_image_size is not None:
        sampler = AtEpochSize(sampler, recipe)
    val_sampler = DistributedSampler(val, world_size, rank, shuffle=False) if world_size > 1 else None
    common = {"num_workers": recipe.workers, "persistent_workers": recipe.workers > 0}
    train_loader = DataLoader(train, per_rank_batch, sampler=sampler, drop_last=len(train) > per_rank_batch, **common)
    val_loader = DataLoader(val, per_rank_batch, sampler=val_sampler, **common)
    return Loaders(train_loader, val_loader, classes, sampler)


def on_device(images: torch.Tensor, device: torch.device, memory_format: torch.memory_format) -> torch.Tensor:
    """A batch on the device. Float pixels come normalised already; uint8 pixels (the packed path)
    are converted and normalised there, which spares the loaders' CPU that work."""
    images = images.to(device, memory_format=memory_format, non_blocking=True)
    if images.dtype != torch.uint8:
        return images
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    return ((images.float() - mean) / std).contiguous(memory_format=memory_format)


class _EpochShuffle(torch.utils.data.Sampler):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order."""

    def __init__(self, dataset: Dataset, seed: int):
        self.size, self.seed, self.epoch = len(dataset), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size
