"""Measured speed of a network: latency at batch 1 and throughput at a larger batch as declared, and
the images/s of its training steps (what a sweep's cost is planned from, sksearch.search.cost).

MACs are a proxy for what a deployment pays; SK units pay more than their MACs say (a split, a
pooled attention and a weighted sum per unit). So the time itself is measured, in inference mode on
the device given: warm-up runs first, then the median of `runs` timed runs (synchronised on CUDA),
with a fixed number of CPU threads, in channels_last when asked. A `Timing` says on what it was
measured; its `key` is what a cache of timings (the trial store's) files it under.
"""

from __future__ import annotations

import contextlib
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch

from sksearch.nets import build
from sksearch.spec import NetSpec


@dataclass(frozen=True)
class Timing:
    archid: str
    device: str  # the device's name: the CPU model, or the GPU's
    input_size: int
    batch: int  # of the throughput run; latency is at batch 1
    threads: int  # torch's intra-op threads (CPU)
    channels_last: bool
    latency_ms: float  # median over the timed runs, batch 1
    latency_spread: float  # interquartile range of those runs / their median
    throughput: float  # images/s at `batch`, from the median of its runs
    measured_at: float = 0.0  # when (Unix seconds; 0: a timing cached before this was recorded)

    @property
    def key(self) -> str:
        return timing_key(self.archid, self.device, self.input_size, self.batch, self.threads, self.channels_last)

    def to_dict(self) -> dict:
        return asdict(self)


def timing_key(archid: str, device: str, input_size: int, batch: int, threads: int, channels_last: bool) -> str:
    """A file-name-safe key: one timing per network, device, input size, batch, threads and format."""
    device_slug = re.sub(r"[^A-Za-z0-9]+", "_", device).strip("_")[:60]
    return f"{archid}-{device_slug}-{input_size}px-b{batch}-t{threads}{'-cl' if channels_last else ''}"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model() or platform.machine() or "cpu"


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _timed(run: Callable[[], None], device: torch.device, warmup: int, runs: int) -> list[float]:
    """Seconds of each of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(
    spec: NetSpec,
    device: str = "cpu",
    batch: int = 8,
    threads: int | None = None,
    channels_last: bool = False,
    warmup: int = 3,
    runs: int = 10,
) -> Timing:
    """Latency (batch 1) and throughput (`batch`) of the network as declared, random weights and inputs."""
    target = torch.device(device)
    threads = threads or torch.get_num_threads()
    size = spec.input_size
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = build(spec).eval().to(target, memory_format=memory)
    one = torch.randn(1, 3, size, size, device=target).contiguous(memory_format=memory)
    many = torch.randn(batch, 3, size, size, device=target).contiguous(memory_format=memory)
    with _threads(threads), torch.inference_mode():
        single = _timed(lambda: model(one), target, warmup, runs)
        batched = _timed(lambda: model(many), target, 1, max(3, runs // 3))
    median = statistics.median(single)
    quartiles = statistics.quantiles(single, n=4) if len(single) > 1 else [median, median, median]
    return Timing(
        archid=spec.archid,
        device=device_name(target),
        input_size=size,
        batch=batch,
        threads=threads,
        channels_last=channels_last,
        latency_ms=1000 * median,
        latency_spread=(quartiles[2] - quartiles[0]) / median,
        throughput=batch / statistics.median(batched),
        measured_at=time.time(),
    )


def training_throughput(
    spec: NetSpec,
    device: str = "cpu",
    batch: int = 8,
    threads: int | None = None,
    channels_last: bool = False,
    steps: int = 3,
) -> float:
    """Images/s of training steps (forward, cross-entropy, backward, SGD update) of the network at
    `batch`, random weights and inputs: the median of `steps` timed steps after one untimed."""
    target = torch.device(device)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = build(spec).train().to(target, memory_format=memory)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 3, spec.input_size, spec.input_size, device=target).contiguous(memory_format=memory)
    labels = torch.randint(0, spec.num_classes, (batch,), device=target)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    with _threads(threads or torch.get_num_threads()):
        seconds = _timed(step, target, 1, steps)
    return batch / statistics.median(seconds)
