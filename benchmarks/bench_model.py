"""Training-step throughput: sksearch SKNet-50 vs timm's skresnext50_32x4d vs sksearch ResNeXt-50.

The models are measured alternately, round after round, in one process, so that they see the same
machine state; the median round counts. Printed: images/s per model and the ratios the goals
name (sksearch SKNet-50 >= 1.15x timm's SKNet-50; SKNet-50 time / ResNeXt-50 time <= 1.3, where the
MAC ratio alone would be 1.055).

    .venv/bin/python benchmarks/bench_model.py                       # CPU, fp32
    .venv/bin/python benchmarks/bench_model.py --device cuda --batch 128 --amp bf16 --channels-last
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

import sksearch


def models(include_timm: bool) -> dict[str, nn.Module]:
    chosen = {
        "sksearch sknet50": sksearch.build("sknet50"),
        "sksearch resnext50_32x4d": sksearch.build("resnext50_32x4d"),
    }
    if include_timm:
        import timm

        chosen["timm skresnext50_32x4d"] = timm.create_model("skresnext50_32x4d")
    return chosen


def step_time(model, optimizer, images, labels, steps: int, amp_dtype, device) -> float:
    """Seconds per training step (forward, backward, SGD update), averaged over `steps`."""
    loss_fn = nn.CrossEntropyLoss()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-timm", action="store_true", help="skip timm (when it is not installed)")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    images = torch.randn(args.batch, 3, args.size, args.size, device=device).to(memory_format=memory_format)
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    runs = {}
    for name, model in models(not args.no_timm).items():
        model = model.to(device, memory_format=memory_format).train()
        runner = torch.compile(model) if args.compile else model
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        step_time(runner, optimizer, images, labels, 2, amp_dtype, device)  # warm-up (and compilation)
        runs[name] = (runner, optimizer, [])
    for _ in range(args.rounds):
        for runner, optimizer, times in runs.values():
            times.append(step_time(runner, optimizer, images, labels, args.steps, amp_dtype, device))

    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    )
    print(
        f"device {machine}; torch {torch.__version__}; batch {args.batch} at {args.size}px; amp {args.amp}; "
        f"channels_last {args.channels_last}; compile {args.compile}; {args.rounds} rounds x {args.steps} steps"
    )
    seconds = {name: statistics.median(times) for name, (_, _, times) in runs.items()}
    for name, value in seconds.items():
        print(f"{name:28s} {args.batch / value:9.1f} img/s   {1000 * value:8.1f} ms/step")
    sk, resnext = seconds["sksearch sknet50"], seconds["sksearch resnext50_32x4d"]
    if "timm skresnext50_32x4d" in seconds:
        print(f"sksearch SKNet-50 throughput / timm's: {seconds['timm skresnext50_32x4d'] / sk:.3f}x   (goal >= 1.15)")
    print(f"SKNet-50 time / ResNeXt-50 time: {sk / resnext:.3f}   (goal <= 1.3; the MAC ratio is 1.055)")


if __name__ == "__main__":
    main()
