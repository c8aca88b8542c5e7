"""SK attention vs. object scale (paper Sec. 4.4, Fig. 3 and 4): a trained network's selection
weights recorded on images whose objects are enlarged (or drawn at fixed sizes), per SK unit and
channel, written as CSV/Parquet and drawn like the paper's Fig. 3.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sksearch.files import atomic_write, atomic_write_text
from sksearch.layers import record_attention
from sksearch.plots import pyplot, save_figure
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError


def load_model(source: str | Path):
    """(model, spec, recipe dict) from an export folder, a checkpoint file or a folder holding one."""
    from sksearch.results import load_export
    from sksearch.train import CHECKPOINT, load_checkpoint

    source = Path(source)
    if (source / "weights.safetensors").exists():
        model, spec = load_export(source)
        recipe = json.loads((source / "recipe.json").read_text()) if (source / "recipe.json").exists() else {}
        return model, spec, recipe
    file = source / CHECKPOINT if source.is_dir() else source
    if not file.exists():
        raise ConfigError(str(source), "is neither an export folder (weights.safetensors) nor a checkpoint")
    from sksearch.nets import build

    spec, weights, recipe = load_checkpoint(file)
    model = build(spec)
    model.load_state_dict(weights)
    return model, spec, recipe


def enlarge_by_cropping(images: torch.Tensor, factor: float) -> torch.Tensor:
    """The paper's enlargement of a real image: crop the central 1/factor and resize it back."""
    size = images.shape[-1]
    crop = max(1, round(size / factor))
    start = (size - crop) // 2
    centre = images[..., start : start + crop, start : start + crop]
    return torch.nn.functional.interpolate(centre, size=(size, size), mode="bilinear", align_corners=False)


def attention_by_scale(
    model: torch.nn.Module,
    spec: NetSpec,
    batches: dict[float, torch.Tensor],
    batch_size: int = 64,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per unit and scale: mean attention of each branch, `difference` = the branch with the
    largest receptive kernel minus the smallest (mean over images and channels, with the std over
    images) and `departure` = mean |a_k - 1/M| over images, channels and branches (0: no
    selection); and per channel, the mean attention of every branch."""
    kernels = [branch.receptive_kernel for branch in spec.unit.branches]
    large, small = int(np.argmax(kernels)), int(np.argmin(kernels))
    if large == small:
        raise ConfigError("model", "needs branches of different receptive sizes to compare")
    model.eval()
    units, channels = [], []
    for scale, images in batches.items():
        recorded: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                with record_attention(model) as weights:
                    model(images[start : start + batch_size])
                for label, value in weights.items():
                    recorded.setdefault(label, []).append(value)
        if not recorded:
            raise ConfigError("model", "has no SK unit with attention to record")
        for label, parts in recorded.items():
            attention = torch.cat(parts)  # (images, M, channels)
            per_image = attention.mean(dim=2)  # (images, M)
            difference = per_image[:, large] - per_image[:, small]
            units.append(
                {
                    "unit": label,
                    "scale": scale,
                    **{f"attention_branch{m}": float(per_image[:, m].mean()) for m in range(attention.shape[1])},
                    "large_branch": large,
                    "large_kernel": spec.unit.branches[large].label,
                    "small_kernel": spec.unit.branches[small].label,
                    "attention_small": float(per_image[:, small].mean()),
                    "attention_large": float(per_image[:, large].mean()),
                    "difference": float(difference.mean()),
                    "difference_std": float(difference.std()) if len(difference) > 1 else 0.0,
                    # how far the selection departs from an even split, per image and channel
                    "departure": float((attention - 1 / attention.shape[1]).abs().mean()),
                    "images": len(attention),
                }
            )
            mean = attention.mean(dim=0)  # (M, channels)
            for branch in range(mean.shape[0]):
                channels.append(
                    pd.DataFrame(
                        {
                            "unit": label,
                            "scale": scale,
                            "branch": branch,
                            "channel": np.arange(mean.shape[1]),
                            "attention": mean[branch].numpy(),
                        }
                    )
                )
    return pd.DataFrame(units), pd.concat(channels, ignore_index=True)


def synthetic_sets(
    spec: NetSpec,
    recipe: dict,
    scales: Sequence[float],
    samples: int,
    seed: int | None = None,
    fixed_sizes: bool = False,
):
    """The synthetic validation images the network was evaluated on (the recipe's data seed, unless
    `seed` picks others), re-rendered with the objects enlarged by each scale. With `fixed_sizes`,
    every object of a set has one size instead: the scale in units of the smallest object the
    recipe trains on (so 1..high/low spans the trained sizes), which separates size from the spread
    of sizes within a batch."""
    from sksearch.data import SyntheticShapes

    low, high = tuple(recipe.get("scale_range", (1.0, 3.0)))
    base = SyntheticShapes(
        samples,
        num_classes=spec.num_classes,
        image_size=spec.input_size,
        scale_range=(high, high) if fixed_sizes else (low, high),  # (high, high): every object the largest
        seed=recipe.get("data_seed", 0) if seed is None else seed,
        split="val",
    )
    factor = low / high if fixed_sizes else 1.0
    return {scale: base.enlarged(scale * factor) for scale in scales}


def folder_batches(root: str | Path, spec: NetSpec, scales: Sequence[float], samples: int):
    """Images of an ImageFolder tree, centre-cropped and resized to enlarge their objects."""
    from torchvision import datasets, transforms

    from sksearch.data import IMAGENET_MEAN, IMAGENET_STD

    size = spec.input_size
    transform = transforms.Compose(
        [
            transforms.Resize(size),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    try:
        dataset = datasets.ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, RuntimeError) as error:
        raise ConfigError("--data-root", str(error)) from None
    images = torch.stack([dataset[i][0] for i in range(min(samples, len(dataset)))])
    return {scale: enlarge_by_cropping(images, scale) for scale in scales}


def plot_attention(
    units: pd.DataFrame, channels: pd.DataFrame, out: str | Path, title: str = "", scale_name: str = "object scale"
) -> Path:
    """Like Fig. 3: larger-minus-smaller kernel attention per SK unit, one line per scale, with
    bars of one std over images (left), and the deepest unit's per-channel attention of the larger
    kernel at each scale (right). A table without the kernels' names (older analyses) is refused."""
    missing = [column for column in ("large_branch", "large_kernel", "small_kernel") if column not in units]
    if missing:
        raise ConfigError("attention.csv", f"lacks {', '.join(missing)}: run `sksearch attention` again to redraw")
    plt = pyplot()
    order = list(dict.fromkeys(units["unit"]))
    figure, (axes, detail) = plt.subplots(
        1, 2, figsize=(max(6.4, 0.45 * len(order)) + 5.0, 4.0), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    scales = units.groupby("scale", sort=True)
    for index, (scale, group) in enumerate(scales):
        group = group.set_index("unit").loc[order]
        dodge = (index - (scales.ngroups - 1) / 2) * 0.6 / scales.ngroups  # bars of one unit side by side
        axes.errorbar(np.arange(len(order)) + dodge, group["difference"], yerr=group["difference_std"], marker="o",
                      markersize=4, capsize=2, label=f"{scale:g}x")  # fmt: skip
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_xticks(range(len(order)), order, rotation=60, fontsize=7)
    large_kernel, small_kernel = units["large_kernel"].iloc[0], units["small_kernel"].iloc[0]
    axes.set_ylabel(f"attention of {large_kernel} minus {small_kernel}")
    axes.set_xlabel("SK unit (stage_unit)")
    axes.set_title("every SK unit: mean over images and channels; bars: 1 std over images", fontsize=9)
    axes.legend(title=scale_name)
    axes.grid(alpha=0.3)
    deepest = order[-1]
    large = int(units[units["unit"] == deepest]["large_branch"].iloc[0])
    shown = channels[(channels["unit"] == deepest) & (channels["branch"] == large)]
    for scale, group in shown.groupby("scale", sort=True):
        detail.plot(group["channel"], group["attention"], linewidth=0.8, label=f"{scale:g}x")
    detail.set_xlabel(f"channel of {deepest}")
    detail.set_ylabel(f"attention of the {large_kernel} branch")
    detail.set_title(f"{deepest}, per channel (mean over images)", fontsize=9)
    detail.legend(title=scale_name, fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    detail.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=9)
    return save_figure(figure, out)


def write_attention(
    units: pd.DataFrame, channels: pd.DataFrame, out_dir: str | Path, title: str = "", scale_name: str = "object scale"
) -> list[Path]:
    out_dir = Path(out_dir)
    csv = atomic_write_text(out_dir / "attention.csv", units.to_csv(index=False))
    table = atomic_write(out_dir / "attention_channels.parquet", lambda temporary: channels.to_parquet(temporary))
    return [csv, table, plot_attention(units, channels, out_dir / "attention.png", title, scale_name)]
