"""What a sweep will cost, before it runs: its networks and trials, each network's params, MACs and
training throughput, and from them the device-hours and the wall time on G devices.

A trial's time is its epochs x (training images / images per second + validation images / (3 x
images per second)): a forward pass costs about a third of a training step (forward and backward).
Every trial runs all its epochs, so early stopping only spends less. Throughput is either measured
here (a few timed training steps of each network as the recipe trains it, on this machine's device,
sksearch.latency.training_throughput) or read from a table measured on the target device: this
module's own CSV output (`archid`, `train_images_per_s`), made there with `sksearch plan ... --format
csv`. Trials sharing a device (fractional `gpus_per_trial`) split its throughput; the wall time
packs trials onto the devices' slots longest first.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from sksearch.complexity import count
from sksearch.data import epoch_sizes
from sksearch.latency import device_name, training_throughput
from sksearch.recipes import Recipe
from sksearch.results.statistics import pooled_seed_std, seeds_for_power, std_range
from sksearch.schema import RESULT_STATUSES, network_names
from sksearch.search.plan import SweepPlan
from sksearch.validation import ConfigError

IMAGENET_SIZES = (1_281_167, 50_000)  # ImageNet-1k's train and val images: an image folder's assumed size
FORWARD_SHARE = 1 / 3  # a validation image's cost, as a share of a training image's
THROUGHPUT_COLUMNS = ("archid", "train_images_per_s")


@dataclass(frozen=True)
class Measuring:
    """How throughput is measured here: device, batch, timed steps, torch's threads."""

    device: str = "cpu"
    batch: int = 8
    steps: int = 3
    threads: int | None = None


def epoch_images(recipe: Recipe, train_images: int | None = None) -> tuple[int, int, str]:
    """(train, val) images of one epoch, and where the figures come from."""
    train, val = epoch_sizes(recipe)
    if train_images:
        return train_images, val or IMAGENET_SIZES[1], "as given (--train-images)"
    if train is None:
        return IMAGENET_SIZES[0], val or IMAGENET_SIZES[1], "ImageNet-1k's size, assumed (--train-images to change)"
    return train, val or 0, f"the {recipe.dataset} set of the recipe"


def read_throughput(path: str | Path) -> pd.DataFrame:
    """A throughput table (CSV with archid and train_images_per_s), refused in one line if unreadable."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ConfigError("--throughput", f"cannot read {path}: {str(error).splitlines()[0]}") from None
    missing = [column for column in THROUGHPUT_COLUMNS if column not in table]
    if missing:
        raise ConfigError("--throughput", f"{path} lacks column {', '.join(missing)} (it needs "
                          f"{', '.join(THROUGHPUT_COLUMNS)}: `sksearch plan ... --format csv` writes one)")  # fmt: skip
    rates = pd.to_numeric(table["train_images_per_s"], errors="coerce")
    if rates.isna().any() or (rates <= 0).any():
        raise ConfigError("--throughput", f"{path}: train_images_per_s must be positive numbers")
    return table.assign(archid=table["archid"].astype(str), train_images_per_s=rates)


def network_costs(
    plan: SweepPlan, measuring: Measuring, throughput: pd.DataFrame | None = None, train_images: int | None = None
) -> pd.DataFrame:
    """One row per network the sweep runs (a grid's every one; a random, TPE or NSGA-II search's
    draw of num_samples): its counts as declared and as trained, its training images/s, and the
    hours of one trial of it."""
    draw = plan.candidates
    if not len(draw):
        raise ConfigError(plan.space_file, f"no feasible network in space {plan.space.name}: {draw.summary()}")
    names = network_names(draw.to_frame())
    rows = []
    for name, candidate in tqdm(list(zip(names, draw, strict=True)), desc="throughput", unit="network", leave=False,
                                disable=throughput is not None or len(draw) == 1):  # fmt: skip
        recipe = plan.recipe_for(dict(candidate.point), plan.space.search.seeds[0])
        trained = recipe.adapt(candidate.spec, recipe.classes or 1000)
        declared, as_trained = count(candidate.spec), count(trained)
        rate = _rate(candidate.spec.archid, trained, recipe, measuring, throughput)
        train, val, _ = epoch_images(recipe, train_images)
        trial_s = recipe.epochs * (train + FORWARD_SHARE * val) / rate
        rows.append({"network": name, "archid": candidate.spec.archid, "params_m": declared.params_m,
                     "gmacs": declared.gmacs, "trained_gmacs": as_trained.gmacs, "image_size": recipe.image_size,
                     "epochs": recipe.epochs, "train_images_per_s": rate, "trial_hours": trial_s / 3600})  # fmt: skip
    return pd.DataFrame(rows)


def _rate(archid: str, trained, recipe: Recipe, measuring: Measuring, throughput: pd.DataFrame | None) -> float:
    if throughput is None:
        channels_last = recipe.uses_channels_last(measuring.device.split(":")[0])
        return training_throughput(trained, measuring.device, min(measuring.batch, recipe.batch_size),
                                   measuring.threads, channels_last, measuring.steps)  # fmt: skip
    known = throughput[throughput["archid"] == archid]
    if known.empty:
        raise ConfigError("--throughput", f"has no row for network {archid} (measure it where the table was made)")
    return float(known["train_images_per_s"].iloc[0])


def wall_hours(trial_hours: Sequence[float], devices: int, per_trial: float) -> float:
    """The wall time of running the trials on `devices`, `per_trial` of a device each (fractions
    share one, and split its throughput), longest first onto the slot that frees up first."""
    slots = max(1, math.floor(devices / per_trial + 1e-9))
    share = min(per_trial, 1.0)  # a trial on a fraction of a device runs that much slower
    ends = [0.0] * slots
    for hours in sorted(trial_hours, reverse=True):
        heapq.heapreplace(ends, ends[0] + hours / share)
    return max(ends)


def sweep_cost(
    plan: SweepPlan,
    networks: pd.DataFrame,
    devices: int,
    train_images: int | None = None,
    effect: float | None = None,
    noise: tuple[float, int | None] | None = None,
) -> dict:
    """The sweep's totals: trials, device-hours and the wall time on `devices`; with an `effect`
    and a `noise` (a run's std over seeds, and the runs it was measured from, None if given), the
    seeds 80% power needs to see it between two networks, as a range when the std is estimated."""
    search = plan.space.search
    per_network = len(search.seeds) if search.algorithm in ("grid", "random") else None
    if per_network is None:  # TPE / NSGA-II: num_samples trials of networks like the ones drawn
        trials = [hours for hours in networks["trial_hours"]] * math.ceil(plan.total_trials / len(networks))
        trials = trials[: plan.total_trials]
    else:
        trials = [hours for hours in networks["trial_hours"] for _ in range(per_network)]
    per_trial = plan.resources.gpus_per_trial or 1.0
    recipe = plan.space.recipe
    train, val, source = epoch_images(recipe, train_images)
    summary = {
        "space": plan.space.name, "algorithm": search.algorithm, "recipe": recipe.name, "networks": len(networks),
        "networks_drawn": per_network is None, "trials": len(trials), "seeds": list(search.seeds),
        "epochs": recipe.epochs, "train_images": train, "val_images": val, "images_from": source,
        "device_hours": sum(trials) * per_trial, "devices": devices, "device_per_trial": per_trial,
        "wall_hours": wall_hours(trials, devices, per_trial), "early_stopping": search.early_stopping,
    }  # fmt: skip
    if effect is not None and noise is not None:
        summary.update(_seeds_for(effect, *noise))
    return summary


def _seeds_for(effect: float, run_std: float, runs: int | None) -> dict:
    """Seeds for 80% power at `effect`: a seed-paired difference of two networks has at most
    sqrt(2) times a run's std (pairing by seed can only lower it)."""
    spread = math.sqrt(2) * run_std
    low, high = std_range(spread, runs) if runs and runs >= 2 and spread > 0 else (spread, spread)
    seeds = {"effect": effect, "run_std": run_std, "std_from_runs": runs}
    for suffix, std in (("", spread), ("_low", low), ("_high", high)):  # _low: at the low end of the std
        seeds[f"seeds_for_effect{suffix}"] = seeds_for_power(effect, std)
    return seeds


def pilot_noise(frame: pd.DataFrame, metric: str = "top1_err") -> tuple[float, int]:
    """A run's std over seeds, pooled over a pilot's networks (each with 2+ seeds), and the degrees
    of freedom plus one it rests on."""
    std, dof = pooled_seed_std(frame[frame["status"].isin(RESULT_STATUSES)], metric)
    if not dof:
        raise ConfigError("--pilot", "has no network with two or more finished seeds: no spread to plan from")
    return std, dof + 1


def describe_device(measuring: Measuring) -> str:
    import torch

    return device_name(torch.device(measuring.device))
