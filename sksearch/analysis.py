"""Pictures and the attention analysis: Pareto scatters, EDFs of error per design choice (pycls
style), learning curves, and attention vs. object scale (paper Sec. 4.4, Fig. 3 and 4).

Plots are PNG files drawn with matplotlib's Agg backend (no display needed).
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
from sksearch.results import Objectives, knee, pareto, seed_means
from sksearch.schema import axis_label, best_trials, design_columns, is_spec_column, network_names, results_of
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, out: str | Path) -> Path:
    """Write the figure in the format its suffix names (PNG by default). A PNG records the figure's
    title in its Title text chunk and its panels' titles, axis labels, legend entries and labels in its
    Description chunk, so a reader or a test can tell what was drawn without a viewer."""
    plt = _pyplot()
    kind = Path(out).suffix.lower().lstrip(".") or "png"
    formats = figure.canvas.get_supported_filetypes()
    if kind not in formats:
        plt.close(figure)
        raise ConfigError(str(out), f"cannot draw a .{kind} file (formats: {', '.join(sorted(formats))})")
    metadata = None
    if kind == "png":
        metadata = {"Software": "sksearch", "Title": figure.get_suptitle(), "Description": json.dumps(_drawn(figure))}
    path = atomic_write(
        out,
        lambda temporary: figure.savefig(temporary, format=kind, dpi=120, bbox_inches="tight", metadata=metadata),
    )
    plt.close(figure)
    return path


def _drawn(figure) -> list[dict]:
    panels = []
    for axes in figure.axes:
        legend = axes.get_legend()
        panels.append(
            {
                "title": axes.get_title(),
                "xlabel": axes.get_xlabel(),
                "ylabel": axes.get_ylabel(),
                "legend": [text.get_text() for text in legend.get_texts()] if legend else [],
                "legend_title": legend.get_title().get_text() if legend else "",
                "labels": [text.get_text() for text in axes.texts],  # text placed on the plot (point names)
            }
        )
    return panels


# -- plots of a sweep ---------------------------------------------------------------------------


def plot_pareto(
    frame: pd.DataFrame, objectives: Objectives, out: str | Path, paper: pd.DataFrame | None = None
) -> Path:
    """Every trial (seed means), the front with its knee, and `paper`'s published points
    (results.published_points), on numeric axes labelled with their units, titled by sweep and recipe."""
    plt = _pyplot()
    (x, _), (y, _) = objectives[0], objectives[1]
    points, front = seed_means(frame, objectives), pareto(frame, objectives)
    if front.empty:
        raise ConfigError("RUN_DIR", "no completed trial has every objective: there is no front to plot")
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    color = points[objectives[2][0]] if len(objectives) == 3 else None
    scatter = axes.scatter(points[x], points[y], c=color, s=18, alpha=0.6, label="trials (seed mean)")
    if color is not None:
        figure.colorbar(scatter, ax=axes, label=axis_label(objectives[2][0]))
    ordered = front.sort_values(x)
    axes.errorbar(ordered[x], ordered[y], xerr=ordered[f"{x}_std"], yerr=ordered[f"{y}_std"], fmt="o-",
                  color="tab:red", label="Pareto front", capsize=2)  # fmt: skip
    corner = front.iloc[knee(front, objectives)]
    axes.scatter([corner[x]], [corner[y]], s=160, facecolors="none", edgecolors="black", label="knee")
    _label_points(axes, ordered, x, y)
    if paper is not None and x in paper and y in paper:
        shown = paper.dropna(subset=[x, y])
        if len(shown):
            axes.scatter(shown[x], shown[y], marker="*", s=120, color="black", label="published (paper)")
    axes.set_xlabel(axis_label(x))
    axes.set_ylabel(axis_label(y))
    axes.ticklabel_format(useOffset=False)  # GMACs that differ in the 4th decimal read as themselves
    axes.set_title(_sweeps_and_recipes(frame), fontsize=9)
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, out)


def _label_points(axes, front: pd.DataFrame, x: str, y: str, most: int = 12) -> None:
    """Each front point's readable name beside it (at most `most`, spread along the front)."""
    shown = front.iloc[np.unique(np.linspace(0, len(front) - 1, min(most, len(front))).round().astype(int))]
    for _, row in shown.iterrows():
        axes.annotate(str(row["name"]), (row[x], row[y]), xytext=(4, 4), textcoords="offset points", fontsize=7)


def _sweeps_and_recipes(frame: pd.DataFrame) -> str:
    sweeps = ", ".join(sorted(map(str, frame["sweep"].dropna().unique()))) if "sweep" in frame else ""
    recipes = ", ".join(sorted(map(str, frame["recipe"].dropna().unique()))) if "recipe" in frame else ""
    return f"sweep {sweeps or '-'}, recipe {recipes or '-'}"


def edf(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Fraction of models with error below each value of `grid` (the empirical distribution)."""
    values = np.sort(np.asarray(values, dtype=float))
    return np.searchsorted(values, grid, side="right") / max(len(values), 1)


def design_choices(frame: pd.DataFrame) -> list[str]:
    """Design columns (sksearch.schema) worth an EDF, with 2..12 distinct values: the sweeps' own
    knobs, or the spec columns (which restate them) when no knob varies."""
    varying = [c for c in design_columns(frame) if 2 <= frame[c].nunique() <= 12]
    knobs = [c for c in varying if not is_spec_column(c)]
    return knobs or varying


def plot_edf(frame: pd.DataFrame, out: str | Path, by: Sequence[str] | None = None, metric: str = "top1_err") -> Path:
    """One panel per design choice, one EDF curve per value of it."""
    plt = _pyplot()
    _check_metric(frame, metric)
    done = results_of(frame).dropna(subset=[metric])
    columns = list(by) if by else design_choices(done)
    for column in columns:
        if column not in done:
            raise ConfigError("--by", f"no column {column!r} in the results table")
    if not columns:
        raise ConfigError("--by", "no design choice varies across the finished trials")
    grid = np.linspace(done[metric].min(), done[metric].max(), 200)
    figure, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    for panel, column in zip(axes[0], columns, strict=True):
        for value, group in done.groupby(column, sort=True):
            panel.plot(grid, edf(group[metric], grid), label=f"{value} (n={len(group)})")
        panel.set_title(column)
        panel.set_xlabel(axis_label(metric))
        panel.set_ylabel(f"fraction of models with {metric} < e")
        panel.legend(fontsize=7)
        panel.grid(alpha=0.3)
    return _save(figure, out)


def _check_metric(frame: pd.DataFrame, metric: str) -> None:
    if metric not in frame or not pd.api.types.is_numeric_dtype(frame[metric]):
        raise ConfigError("--metric", f"{metric!r} is not a numeric column of the results")


def plot_curves(
    history: pd.DataFrame, frame: pd.DataFrame, out: str | Path, top: int = 5, metric: str = "top1_err"
) -> Path:
    """Learning curves of the `top` best trials (by final `metric`)."""
    plt = _pyplot()
    if history.empty:
        raise ConfigError("RUN_DIR", "has no history.parquet yet (it is written when a sweep run ends)")
    _check_metric(history, metric)
    done = results_of(frame).assign(name=network_names)
    best = best_trials(done, metric).head(top)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for row in best.to_dict("records"):
        curve = history[history["trial_id"] == row["trial_id"]].sort_values("epoch")
        axes.plot(
            curve["epoch"], curve[metric], marker="o", label=f"{row['name']} ({row['archid']}, {row['trial_id']})"
        )
    axes.set_xlabel("epoch")
    axes.set_ylabel(axis_label(metric))
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return _save(figure, out)


def plot_replay(curves: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Anytime hypervolume of replayed search algorithms: the median over repeats and its
    interquartile band, against the fraction of the table's compute (left) and trial-epochs (right)."""
    plt = _pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    axes = (("compute", "compute spent (fraction of the table's seconds)"), ("trial_epochs", "trial-epochs spent"))
    for panel, (axis, label) in zip(panels, axes, strict=True):
        for algorithm, curve in curves[curves["axis"] == axis].groupby("algorithm", sort=False):
            line = panel.step(curve["at"], curve["hv_fraction_median"], where="post", label=f"{algorithm} (median)")[0]
            panel.fill_between(curve["at"], curve["hv_fraction_q25"], curve["hv_fraction_q75"],
                               color=line.get_color(), alpha=0.15, step="post")  # fmt: skip
        panel.set_xlabel(label)
        panel.grid(alpha=0.3)
    panels[0].set_ylabel("hypervolume / the whole table's")
    repeats = int(curves["repeats"].max())
    panels[0].legend(title=f"shaded: quartiles over {repeats} repeats", fontsize=8, title_fontsize=8)
    figure.suptitle(title)
    return _save(figure, out)


# -- attention vs. object scale (Sec. 4.4) ------------------------------------------------------


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


def synthetic_batches(
    spec: NetSpec,
    recipe: dict,
    scales: Sequence[float],
    samples: int,
    seed: int | None = None,
    fixed_sizes: bool = False,
):
    """The images of `synthetic_sets`, one batch per scale."""
    sets = synthetic_sets(spec, recipe, scales, samples, seed, fixed_sizes)
    return {scale: dataset.images.float() for scale, dataset in sets.items()}


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
    plt = _pyplot()
    order = list(dict.fromkeys(units["unit"]))
    figure, (axes, detail) = plt.subplots(
        1, 2, figsize=(max(6.4, 0.45 * len(order)) + 5.0, 4.0), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    for scale, group in units.groupby("scale", sort=True):
        group = group.set_index("unit").loc[order]
        axes.errorbar(range(len(order)), group["difference"], yerr=group["difference_std"], marker="o", capsize=2,
                      label=f"{scale:g}x")  # fmt: skip
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
    detail.legend(title=scale_name)
    detail.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=9)
    return _save(figure, out)


def write_attention(
    units: pd.DataFrame, channels: pd.DataFrame, out_dir: str | Path, title: str = "", scale_name: str = "object scale"
) -> list[Path]:
    out_dir = Path(out_dir)
    csv = atomic_write_text(out_dir / "attention.csv", units.to_csv(index=False))
    table = atomic_write(out_dir / "attention_channels.parquet", lambda temporary: channels.to_parquet(temporary))
    return [csv, table, plot_attention(units, channels, out_dir / "attention.png", title, scale_name)]
