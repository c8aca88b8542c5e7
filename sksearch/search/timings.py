"""Measured timings (sksearch.latency) of a preset, a spec or a space's networks, each measured once
per network, device, input size, batch, threads and memory format and cached in the trial store."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from sksearch.complexity import count
from sksearch.latency import Timing, device_name, measure, timing_key
from sksearch.recipes import Recipe
from sksearch.schema import TIMING_METRICS, network_names
from sksearch.search.plan import DEFAULT_STORAGE
from sksearch.search.spacefile import load_space
from sksearch.search.store import Store, store_location
from sksearch.spec import NetSpec
from sksearch.train import pick_device
from sksearch.validation import ConfigError


def check_device(device: str) -> torch.device:
    """The device, refused in one line when this machine cannot use it."""
    try:
        target = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError("--device", f"not a device: {device!r} (cpu, cuda or cuda:N)") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", f"{device} asked for, and this machine has no CUDA device")
    if target.type not in ("cpu", "cuda"):
        raise ConfigError("--device", f"must be cpu, cuda or cuda:N, got {device!r}")
    return target


def cached_timing(spec: NetSpec, store: Store, device: str = "cpu", remeasure: bool = False, **options) -> Timing:
    """The network's timing from the store, or measured now (and stored): always now with `remeasure`."""
    target = check_device(device)
    threads = options.get("threads") or torch.get_num_threads()
    key = timing_key(spec.archid, device_name(target), spec.input_size, options.get("batch", 8), threads,
                     options.get("channels_last", False))  # fmt: skip
    known = None if remeasure else store.timing(key)
    if known is not None:
        return Timing(**known)
    timing = measure(spec, device, **{**options, "threads": threads})
    store.put_timing(key, timing.to_dict())
    return timing


def trial_timing(spec: NetSpec, recipe: Recipe, store: Store, cpus: float, known: Mapping | None = None) -> dict:
    """Latency and throughput of the network as declared on a trial's device, threads and memory
    format: those `known` already (a stored trial's row), else from the store's cache or measured now."""
    if known is not None and not any(pd.isna(known.get(name)) for name in TIMING_METRICS):
        return {name: float(known[name]) for name in TIMING_METRICS}
    device = pick_device(recipe)
    threads = recipe.threads or max(1, int(cpus))
    timing = cached_timing(spec, store, str(device), batch=recipe.batch_size, threads=threads,
                           channels_last=recipe.uses_channels_last(device.type))  # fmt: skip
    return {"latency_ms": timing.latency_ms, "throughput": timing.throughput}


def space_networks(path: str | Path, samples: int) -> list[tuple[str, NetSpec]]:
    """(name, spec) of every network of a space file, or of `samples` drawn when it has a float range."""
    space = load_space(path)
    draw = space.enumerate() if space.finite else space.sample(samples)
    if not len(draw):
        raise ConfigError(str(path), f"no feasible network in space {space.name}: {draw.summary()}")
    names = network_names(draw.to_frame())
    return list(zip(names, (candidate.spec for candidate in draw), strict=True))


def network_timings(
    networks: list[tuple[str, NetSpec]],
    *,
    device: str = "cpu",
    batch: int = 8,
    threads: int | None = None,
    channels_last: bool = False,
    runs: int = 10,
    store: str | None = None,
    remeasure: bool = False,
) -> pd.DataFrame:
    """One row per network: its complexity and measured latency and throughput, with a progress
    bar over a space's networks; ms_per_gmac shows what MACs do not say. A network timed before on
    the same device and settings is answered from the store's cache (`cached`, with `measured_at`),
    unless `remeasure`."""
    check_device(device)
    cache = Store(store_location(store, os.path.abspath(DEFAULT_STORAGE)))
    rows = []
    for name, spec in tqdm(networks, desc="timing", unit="network", leave=False, disable=len(networks) == 1):
        started = time.time()
        timing = cached_timing(spec, cache, device, remeasure, batch=batch, threads=threads,
                               channels_last=channels_last, runs=runs)  # fmt: skip
        complexity = count(spec)
        rows.append({
            "network": name, "archid": spec.archid, "gmacs": complexity.gmacs, "params_m": complexity.params_m,
            "latency_ms": timing.latency_ms, "latency_spread": timing.latency_spread, "throughput": timing.throughput,
            "ms_per_gmac": timing.latency_ms / complexity.gmacs, "device": timing.device, "threads": timing.threads,
            "batch": timing.batch, "cached": timing.measured_at < started,
            "measured_at": pd.Timestamp(timing.measured_at, unit="s") if timing.measured_at else pd.NaT,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.attrs["store"] = cache.location  # where the cache is, for the reader of cached rows
    return frame
