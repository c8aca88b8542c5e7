"""Training recipes: the paper's (Sec. 4.1, Appendix D) and a CPU-sized `smoke` one.

A recipe is plain data. It also says how a spec is adapted to it before training: `smoke` shrinks
the channels and the input so that an ImageNet-scale space (Tables 6/7) runs on a laptop.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sksearch.spec import MAX_CHANNELS, MAX_CLASSES, MAX_INPUT_SIZE, NetSpec
from sksearch.validation import ConfigError, boolean, check_keys, integer, number, one_of

DATASETS = {"synthetic": None, "cifar10": 10, "cifar100": 100, "imagefolder": None, "packed": None}
SCHEDULES = ("step", "cosine", "linear")
AMP_MODES = ("auto", "bf16", "fp16", "off")
AVERAGING = ("none", "ema")
# The version of everything that turns (spec, recipe, seed) into trained numbers: the builder, the
# trainer and the data. Bump it with any change that alters a trained number; it is part of every
# recipe fingerprint, so the trial store never answers with an older trainer's result.
# 2: the weight average and attention floor (the converged proxy); 1: before (unversioned).
TRAINER_VERSION = 2
DEVICES = ("auto", "cpu", "cuda")
# Fields that say how a run goes (its name, threads, workers, device, downloading), not what it
# trains: a checkpoint may resume under other values, and the trial store's key leaves them out.
RUN_ONLY_FIELDS = ("name", "threads", "workers", "device", "download")
# Fields added after recipes were first stored, with the value that trains as before they existed:
# at that value a field is left out of a recipe's fingerprint and identity, so that older stored
# trials and results rows still match the recipe they were trained under.
NEUTRAL_FIELDS = {"start_image_size": None, "resolution_ramp": [0.0, 0.0], "decay_norm_and_bias": True,
                  "lr_warmup": 0.0}  # fmt: skip
# Upper bounds of the integer fields: beyond them a value is a typo, not a plan
_MAXIMA = {"epochs": 100_000, "batch_size": 65_536, "reference_batch_size": 65_536, "image_size": MAX_INPUT_SIZE,
           "eval_size": MAX_INPUT_SIZE, "num_classes": MAX_CLASSES, "train_samples": 100_000_000,
           "val_samples": 100_000_000, "threads": 4_096}  # fmt: skip
MAX_SYNTHETIC_BYTES = 16 * 2**30


@dataclass(frozen=True)
class Recipe:
    """Everything a trial needs besides the network. Fields left None resolve from the paper's rules."""

    name: str = "custom"
    dataset: str = "synthetic"
    data_root: str | None = None
    download: bool = False
    num_classes: int | None = None  # synthetic / imagefolder; CIFAR fixes its own
    train_samples: int | None = None  # synthetic size, or a subset of a real dataset
    val_samples: int | None = None
    image_size: int = 32
    eval_size: int | None = None  # centre crop for evaluation (224 or 320 on ImageNet)
    scale_range: tuple[float, float] = (1.0, 3.0)  # synthetic object scales (largest / smallest = 3)
    data_seed: int = 0  # the synthetic images; fixed across training seeds, so runs pair by image
    epochs: int = 3
    batch_size: int = 64
    reference_batch_size: int = 64  # the batch `lr` is quoted for; lr scales linearly from it
    lr: float | None = None  # None: 0.1, or 0.05 on CIFAR-100 (Appendix D)
    momentum: float = 0.9
    weight_decay: float | None = None  # None: 1e-4, or 4e-5 for lightweight (ShuffleNetV2) models
    schedule: str = "step"
    lr_milestones: tuple[float, ...] = (0.5, 0.75)  # step schedule: fractions of the epochs
    lr_decay: float = 0.1
    label_smoothing: float = 0.0
    lr_warmup: float = 0.0  # the linear schedule: the fraction of the epochs the rate rises over, from a tenth
    decay_norm_and_bias: bool = True  # False: no weight decay on BatchNorm weights and biases
    # progressive resolution: training crops grow from start_image_size to image_size between these
    # fractions of the epochs (in steps of 32 px); evaluation stays at eval_size
    start_image_size: int | None = None
    resolution_ramp: tuple[float, float] = (0.0, 0.0)
    width_multiplier: float = 1.0  # channels of the trained network (smoke: a fraction)
    # the floor of the SK fuse width d and of SE's hidden width in the trained network: scaling the
    # channels by 1/16 would leave d = 2 and an SE bottleneck of 1, with nothing to select with
    attention_floor: int = 0
    weight_averaging: str = "none"  # ema: evaluate an exponential moving average of the weights
    ema_decay: float = 0.998  # per step
    small_input_stem: bool = False  # imagenet template: a 3x3/1 stem instead of 7x7/2 + max pool (see adapt)
    zero_init_last_bn: bool = False
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False
    channels_last: bool | str = "auto"  # auto: on for CPU (measured faster), off for CUDA (published: slower)
    threads: int | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        one_of(self.dataset, DATASETS, "dataset")
        for name in ("epochs", "batch_size", "reference_batch_size", "image_size"):
            integer(getattr(self, name), name, minimum=1, maximum=_MAXIMA.get(name))
        for name in ("num_classes", "train_samples", "val_samples", "eval_size", "threads"):
            if getattr(self, name) is not None:
                integer(getattr(self, name), name, minimum=2 if name == "num_classes" else 1, maximum=_MAXIMA.get(name))
        self._check_synthetic_memory()
        for name in ("seed", "data_seed", "workers"):
            integer(getattr(self, name), name, minimum=0)
        for name in ("download", "zero_init_last_bn", "compile", "small_input_stem", "decay_norm_and_bias"):
            boolean(getattr(self, name), name)
        if self.channels_last != "auto":
            boolean(self.channels_last, "channels_last")
        for name, strictly_positive in (("lr", True), ("weight_decay", False), ("width_multiplier", True)):
            if getattr(self, name) is not None:
                number(getattr(self, name), name, 0, open_low=strictly_positive)
        for name in ("momentum", "lr_decay", "label_smoothing"):
            number(getattr(self, name), name, 0, 1)
        number(self.lr_warmup, "lr_warmup", 0, 1, open_high=True)
        self._check_resolution()
        one_of(self.schedule, SCHEDULES, "schedule")
        for index, fraction in enumerate(self.lr_milestones):
            number(fraction, f"lr_milestones[{index}]", 0, 1, open_low=True, open_high=True)
        _check_scale_range(self.scale_range)
        one_of(self.amp, AMP_MODES, "amp")
        one_of(self.weight_averaging, AVERAGING, "weight_averaging")
        number(self.ema_decay, "ema_decay", 0, 1, open_low=True, open_high=True)
        integer(self.attention_floor, "attention_floor", minimum=0, maximum=MAX_CHANNELS)
        one_of(self.device, DEVICES, "device")
        if self.dataset != "synthetic" and not self.data_root:
            raise ConfigError("data_root", f"is required for dataset {self.dataset}")
        if DATASETS[self.dataset] and self.num_classes not in (None, DATASETS[self.dataset]):
            raise ConfigError(
                "num_classes", f"{self.dataset} has {DATASETS[self.dataset]} classes, got {self.num_classes}"
            )

    def _check_resolution(self) -> None:
        if self.start_image_size is None:
            return
        if self.dataset not in ("imagefolder", "packed"):
            raise ConfigError("start_image_size", f"needs images to crop (imagefolder or packed), not {self.dataset}")
        integer(self.start_image_size, "start_image_size", minimum=1, maximum=self.image_size)
        ramp = self.resolution_ramp
        if not isinstance(ramp, tuple) or len(ramp) != 2:
            raise ConfigError("resolution_ramp", f"must be a pair [start, end], got {ramp!r}")
        for index, fraction in enumerate(ramp):
            number(fraction, f"resolution_ramp[{index}]", 0, 1)
        if ramp[0] > ramp[1]:
            raise ConfigError("resolution_ramp", f"must satisfy start <= end, got {list(ramp)}")

    def resolution_at(self, epoch: int) -> int:
        """The training crop of `epoch` (0-based): start_image_size up to the ramp's start, image_size
        after its end, rising linearly between (rounded down to a multiple of 32, as FFCV's recipe)."""
        if self.start_image_size is None:
            return self.image_size
        start, end = (round(fraction * self.epochs) for fraction in self.resolution_ramp)
        if epoch < start:
            return self.start_image_size
        if epoch >= end:
            return self.image_size
        size = self.start_image_size + (self.image_size - self.start_image_size) * (epoch - start) / (end - start)
        return max(self.start_image_size, int(size) // 32 * 32)

    def _check_synthetic_memory(self) -> None:
        """The synthetic images are drawn into memory: refuse a size that cannot fit before drawing."""
        if self.dataset != "synthetic":
            return
        samples = (self.train_samples or 0) + (self.val_samples or 0)
        needed = samples * 3 * self.image_size**2 * 2  # float16 pixels (sksearch.data.SyntheticShapes)
        if needed > MAX_SYNTHETIC_BYTES:
            limit = MAX_SYNTHETIC_BYTES // 2**30
            raise ConfigError("train_samples", f"{samples:,} synthetic images of {self.image_size} px need "
                              f"{needed / 2**30:,.0f} GiB of memory; at most {limit} GiB")  # fmt: skip

    # -- rules of the paper, resolved against the model ------------------------------------------

    @property
    def classes(self) -> int | None:
        """The number of classes where the recipe knows it (an image folder knows its own)."""
        if self.dataset == "synthetic":
            return self.num_classes or 8
        return DATASETS[self.dataset] or self.num_classes

    def base_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 0.05 if self.dataset == "cifar100" else 0.1

    def scaled_lr(self) -> float:
        """Linear scaling: lr grows with the batch relative to the batch it was quoted for."""
        return self.base_lr() * self.batch_size / self.reference_batch_size

    def weight_decay_for(self, spec: NetSpec) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 4e-5 if spec.template == "shufflenetv2" else 1e-4

    def uses_channels_last(self, device_type: str) -> bool:
        """On a CPU channels_last trains SKNets about 1.2x faster (benchmarks/RESULTS.md); on CUDA
        timm's published figures show it slowing SK units down, so `auto` leaves it off there."""
        return device_type == "cpu" if self.channels_last == "auto" else bool(self.channels_last)

    def adapt(self, spec: NetSpec, num_classes: int) -> NetSpec:
        """The network this recipe trains: channels scaled, the recipe's input size and classes.

        With `small_input_stem` an ImageNet network takes the CIFAR stem (one 3x3 stride-1 conv):
        the ImageNet stem exists to cut a 224 px image by 4 cheaply, and on a 32 px image it would
        leave 8/4/2/1 px maps, where a dilated 3x3 sees mostly padding. Without it the four stages
        run at 32/16/8/4 px, close to the paper's 56/28/14/7; every unit is unchanged.
        """
        adapted = spec.scaled(self.width_multiplier) if self.width_multiplier != 1 else spec
        if self.attention_floor:
            unit = dataclasses.replace(adapted.unit, min_dim=max(adapted.unit.min_dim, self.attention_floor))
            adapted = adapted.replace(unit=unit, se_min_dim=max(adapted.se_min_dim, self.attention_floor))
        if self.small_input_stem and adapted.template == "imagenet":
            adapted = adapted.replace(template="cifar", deep_stem=False)  # the 3x3 stem replaces either stem
        return adapted.replace(input_size=self.image_size, num_classes=num_classes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("scale_range", "lr_milestones", "resolution_ramp"):
            data[name] = list(getattr(self, name))
        return data

    def replace(self, **changes: Any) -> Recipe:
        return recipe_from(changes, base=self)


def recipe_identity(recipe_json: Any, ignore: Sequence[str] = ()) -> str:
    """What a results row's recipe trains, without its seed: its JSON less the seed, the fields that
    only say how a run goes (RUN_ONLY_FIELDS) and `ignore`d ones (knobs a sweep varies). Fronts
    average seeds, and comparisons pair runs, within one identity; "" for a row without a recipe."""
    if not isinstance(recipe_json, str) or not recipe_json:
        return ""
    data = json.loads(recipe_json)
    for name in ("seed", *RUN_ONLY_FIELDS, *ignore):
        data.pop(name, None)
    return json.dumps(without_neutral(data), sort_keys=True)


def without_neutral(data: dict[str, Any]) -> dict[str, Any]:
    """A recipe's fields less those at their NEUTRAL_FIELDS value (they train as if absent)."""
    return {name: value for name, value in data.items() if NEUTRAL_FIELDS.get(name, data) != value}


def _check_scale_range(scales: Any) -> None:
    if not isinstance(scales, tuple) or len(scales) != 2:
        raise ConfigError("scale_range", f"must be a pair [low, high], got {scales!r}")
    for index, value in enumerate(scales):
        number(value, f"scale_range[{index}]")
    if not 0 < scales[0] <= scales[1]:
        raise ConfigError("scale_range", f"must satisfy 0 < low <= high, got {list(scales)}")


_IMAGENET = Recipe(
    name="imagenet",
    dataset="imagefolder",
    data_root="data/imagenet",
    image_size=224,
    eval_size=224,
    epochs=100,
    batch_size=256,
    reference_batch_size=256,
    lr=0.1,
    schedule="step",
    lr_milestones=(0.3, 0.6, 0.9),  # divided by 10 every 30 of 100 epochs
    label_smoothing=0.1,
    workers=8,
)

RECIPES: dict[str, Recipe] = {
    "imagenet": _IMAGENET,
    # Fast ImageNet (docs/proxy.md, "A fast ImageNet recipe"): the shape of FFCV's ResNet-50 recipe.
    # Packed JPEGs (`sksearch prepare`), 160 px crops rising to 192 for the last quarter, tested at
    # 224; label smoothing; no weight decay on BatchNorm and biases; a linear schedule that peaks
    # after 2 of 16 epochs whatever the epoch count (the fidelity knob); bf16 and channels_last on CUDA.
    "imagenet-fast": dataclasses.replace(
        _IMAGENET,
        name="imagenet-fast",
        dataset="packed",
        data_root="data/imagenet-packed",
        image_size=192,
        start_image_size=160,
        resolution_ramp=(0.5, 0.75),
        eval_size=224,
        epochs=16,
        lr=0.5,
        schedule="linear",
        lr_warmup=0.125,
        decay_norm_and_bias=False,
        amp="auto",
        channels_last=True,
    ),
    "cifar": Recipe(
        name="cifar",
        dataset="cifar10",
        data_root="data/cifar",
        image_size=32,
        epochs=300,
        batch_size=128,
        reference_batch_size=128,
        weight_decay=5e-4,
        schedule="step",
        lr_milestones=(0.5, 0.75),
        workers=4,
    ),
    # CPU-sized: the same structure at 1/8 of the channels on 32x32 synthetic images, in seconds
    "smoke": Recipe(
        name="smoke",
        dataset="synthetic",
        num_classes=8,
        train_samples=2048,
        val_samples=512,
        image_size=32,
        epochs=8,
        batch_size=64,
        reference_batch_size=64,
        lr=0.1,
        weight_decay=5e-4,
        schedule="cosine",
        width_multiplier=0.125,
        zero_init_last_bn=True,
        amp="off",
    ),
}
# CPU proxy of the ImageNet tables: the same units, depths, kernels, dilations and attention at 1/16
# of the channels on 32 px synthetic images with stage maps of 32/16/8/4 (docs/proxy.md: the CPU proxy).
# The attention keeps a fuse width (and SE a hidden width) of at least 8, and the error reported is
# that of an exponential moving average of the weights (the raw weights' beside it). 16 epochs: on
# the single-kernel rows they cut the seed-to-seed spread about 3x against 8 (benchmarks/RESULTS.md).
RECIPES["proxy"] = dataclasses.replace(
    RECIPES["smoke"],
    name="proxy",
    epochs=16,
    train_samples=8192,
    val_samples=4096,
    lr=0.05,
    width_multiplier=0.0625,
    small_input_stem=True,
    attention_floor=8,
    weight_averaging="ema",
    ema_decay=0.998,
)


def recipe_from(data: Any, base: Recipe | None = None) -> Recipe:
    """A recipe from a preset name, or a mapping (`preset:` picks the preset it starts from)."""
    if isinstance(data, str):
        return _preset(data, "")
    if not isinstance(data, Mapping):
        raise ConfigError("", f"must be a recipe name or a mapping, got {type(data).__name__}")
    values = dict(data)
    if "preset" in values:
        base = _preset(values.pop("preset"), "preset")
    base = base or Recipe()
    check_keys(values, (f.name for f in dataclasses.fields(Recipe)), what="recipe key")
    for key in ("scale_range", "lr_milestones", "resolution_ramp"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    changes = {"name": values.get("name", base.name), **values}
    return dataclasses.replace(base, **changes)


def _preset(name: Any, path: str) -> Recipe:
    return RECIPES[one_of(name, RECIPES, path, what="recipe")]
