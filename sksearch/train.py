"""One trial: train one spec under one recipe, report every epoch, checkpoint, resume exactly.

The same function runs alone (`sksearch train`), inside a Ray Tune trial, and on each worker of a
data-parallel trial (torch.distributed initialised by the caller, e.g. Ray Train's TorchTrainer).

Exact resume: the learning rate is a pure function of the epoch, the training order depends only
on (seed, epoch), and the checkpoint holds model, optimizer, epoch and RNG state; a run interrupted
after epoch k and resumed ends with the same weights and metrics as one that was not.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sksearch.complexity import count
from sksearch.data import make_loaders, on_device
from sksearch.files import CHECKPOINT, atomic_write, atomic_write_text
from sksearch.nets import build, resolve_spec
from sksearch.recipes import RUN_ONLY_FIELDS, Recipe, without_neutral
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError

Report = Callable[[dict[str, Any], Path | None], None]


class Diverged(Exception):
    """The loss became NaN or infinite."""


@dataclass
class TrialResult:
    status: str  # "completed" or "failed"
    reason: str
    archid: str  # of the network as trained (after the recipe adapted it)
    params: int
    macs: int
    epochs_run: int
    wall_time: float
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: str | None = None

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def best(self) -> dict[str, Any]:
        return min(self.history, key=lambda metrics: metrics["top1_err"]) if self.history else {}


def learning_rate(recipe: Recipe, epoch: int) -> float:
    """The learning rate of `epoch` (0-based): linear-scaled base, then step decay, cosine, or linear
    (a rise from a tenth of the base over `lr_warmup` of the epochs, then a straight line down to
    the last epoch: the same shape at any epoch count)."""
    base = recipe.scaled_lr()
    if recipe.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / recipe.epochs))
    if recipe.schedule == "linear":
        peak = round(recipe.lr_warmup * recipe.epochs)
        if epoch < peak:
            return base * (0.1 + 0.9 * epoch / peak)
        return base * (recipe.epochs - epoch) / (recipe.epochs - peak)
    passed = sum(epoch >= round(fraction * recipe.epochs) for fraction in recipe.lr_milestones)
    return base * recipe.lr_decay**passed


def pick_device(recipe: Recipe) -> torch.device:
    if recipe.device == "cpu" or (recipe.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device", "cuda was asked for but no GPU is visible")
    return torch.device("cuda", torch.cuda.current_device())  # an index: DDP needs device_ids


def _autocast_dtype(recipe: Recipe, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16 (with a scaler); CPUs train in fp32."""
    if device.type != "cuda" or recipe.amp == "off":
        return None
    if recipe.amp == "bf16" or (recipe.amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum per-rank totals over the data-parallel group (a no-op alone)."""
    if _world()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def train(
    spec_or_name: NetSpec | str,
    recipe: Recipe,
    workdir: str | Path,
    report: Report | None = None,
    resume: bool = True,
    progress: bool = False,
) -> TrialResult:
    """Train, evaluating and checkpointing after every epoch; returns the trial's record.

    `report(metrics, checkpoint_path)` is called after each epoch on every rank (the path only on
    rank 0). A diverging loss ends the trial with status "failed" and its reason.
    """
    started = time.perf_counter()
    workdir = Path(workdir)
    rank, world_size = _world()
    spec = resolve_spec(spec_or_name)
    device = pick_device(recipe)
    if device.type == "cpu" and recipe.threads:
        torch.set_num_threads(recipe.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # deterministic mode makes dilated convs 10-80x slower
    torch.manual_seed(recipe.seed)

    loaders = make_loaders(recipe, spec.template == "shufflenetv2", rank, world_size)
    trained_spec = recipe.adapt(spec, loaders.num_classes)
    complexity = count(trained_spec)
    memory_format = torch.channels_last if recipe.uses_channels_last(device.type) else torch.contiguous_format
    model = build(trained_spec, zero_init_last_bn=recipe.zero_init_last_bn).to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(
        parameter_groups(model, recipe.weight_decay_for(spec), recipe.decay_norm_and_bias),
        lr=learning_rate(recipe, 0),
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay_for(spec),
    )
    amp_dtype = _autocast_dtype(recipe, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    average = weight_average(model, recipe)
    checkpoint_path = workdir / CHECKPOINT
    start_epoch, history = 0, []
    if resume and checkpoint_path.exists():
        start_epoch, history = _restore(checkpoint_path, model, optimizer, scaler, average, trained_spec, recipe)

    network: nn.Module = model
    if world_size > 1:
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    runner = torch.compile(network) if recipe.compile else network
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    static = {
        "archid": trained_spec.archid,
        "params": complexity.params,
        "macs": complexity.macs,
        "params_m": round(complexity.params_m, 4),
        "gmacs": round(complexity.gmacs, 6),
    }

    def result(status: str, reason: str = "") -> TrialResult:
        return TrialResult(
            status=status,
            reason=reason,
            archid=trained_spec.archid,
            params=complexity.params,
            macs=complexity.macs,
            epochs_run=len(history),
            wall_time=time.perf_counter() - started,
            history=history,
            checkpoint=str(checkpoint_path) if checkpoint_path.exists() else None,
        )

    for epoch in range(start_epoch, recipe.epochs):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(recipe, epoch)
        loaders.train.sampler.set_epoch(epoch)
        try:
            train_loss, images, seconds = _train_epoch(
                runner,
                loaders.train,
                loss_fn,
                optimizer,
                scaler,
                amp_dtype,
                device,
                memory_format,
                epoch,
                progress and rank == 0,
                average,
            )
        except Diverged as error:
            return result("failed", f"diverged: {error}")
        top1_err, top5_err = _evaluate(runner, loaders.val, amp_dtype, device, memory_format, loaders.num_classes)
        errors = {"top1_err": top1_err, "top5_err": top5_err}
        if average is not None:  # the average is the network reported; the raw weights' errors stay beside
            averaged = _evaluate(average, loaders.val, amp_dtype, device, memory_format, loaders.num_classes)
            errors = {"top1_err": averaged[0], "top5_err": averaged[1], "raw_top1_err": top1_err,
                      "raw_top5_err": top5_err}  # fmt: skip
        metrics = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            **errors,
            "epoch_time": seconds,
            "images_per_s": images / seconds if seconds > 0 else float("nan"),
            "lr": learning_rate(recipe, epoch),
            **static,
        }
        best = min([*history, metrics], key=lambda m: m["top1_err"])  # over every epoch, restored ones too
        metrics.update(best_top1_err=best["top1_err"], best_top5_err=best["top5_err"], best_epoch=best["epoch"])
        history.append(metrics)
        if rank == 0:
            _save(checkpoint_path, epoch, model, optimizer, scaler, average, history, trained_spec, recipe)
        if world_size > 1:
            dist.barrier()
        if report is not None:
            report(metrics, checkpoint_path if rank == 0 else None)
    return result("completed")


def parameter_groups(model: nn.Module, weight_decay: float, decay_all: bool) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one decayed group, or (not `decay_all`) the BatchNorm
    weights and every bias apart, without weight decay (as in FFCV's and timm's fast recipes)."""
    if decay_all:
        return [{"params": list(model.parameters())}]
    plain = [p for name, p in model.named_parameters() if p.ndim <= 1 or name.endswith(".bias")]
    seen = {id(p) for p in plain}
    decayed = [p for p in model.parameters() if id(p) not in seen]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def weight_average(model: nn.Module, recipe: Recipe) -> AveragedModel | None:
    """The exponential moving average of the weights and BN statistics (torch.optim.swa_utils'
    AveragedModel; buffers averaged too, as timm's ModelEmaV2 keeps them, so no BN pass is needed),
    or None. Its decay warms up as timm's does, min(decay, (1 + n) / (10 + n)) after n updates, so
    that the early epochs' average is not the random initialisation's."""
    if recipe.weight_averaging == "none":
        return None

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        decay = min(recipe.ema_decay, (1 + float(updates)) / (10 + float(updates)))
        get_ema_multi_avg_fn(decay)(averaged, current, updates)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def _train_epoch(
    model, loader, loss_fn, optimizer, scaler, amp_dtype, device, memory_format, epoch, progress, average=None
):
    model.train()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    batches = loader
    if progress:
        from tqdm import tqdm

        batches = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", leave=False)
    start = time.perf_counter()
    for step, (images, labels) in enumerate(batches):
        images = on_device(images, device, memory_format)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            loss = loss_fn(model(images), labels)
        if not torch.isfinite(loss):
            raise Diverged(f"loss {loss.item()} at epoch {epoch + 1}, step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if average is not None:
            average.update_parameters(model.module if hasattr(model, "module") else model)
        total_loss += loss.detach().double() * len(labels)
        seen += len(labels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    loss_sum, count_ = _all_sum([total_loss.item(), seen], device)
    return loss_sum / max(count_, 1), count_, seconds


@torch.no_grad()
def _evaluate(model, loader, amp_dtype, device, memory_format, num_classes: int) -> tuple[float, float]:
    """Top-1 and top-5 error (%) on the held-out split."""
    model.eval()
    top_k = min(5, num_classes)
    correct1 = correct5 = total = 0
    for images, labels in loader:
        images = on_device(images, device, memory_format)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            logits = model(images)
        ranked = logits.float().topk(top_k, dim=1).indices
        hits = ranked.eq(labels[:, None])
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
        total += len(labels)
    correct1, correct5, total = _all_sum([correct1, correct5, total], device)
    return 100.0 * (1 - correct1 / total), 100.0 * (1 - correct5 / total)


def _save(path: Path, epoch: int, model, optimizer, scaler, average, history, spec: NetSpec, recipe: Recipe) -> None:
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        **({"average": average.state_dict()} if average is not None else {}),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "schedule": {"kind": recipe.schedule, "lr": optimizer.param_groups[0]["lr"]},  # a function of epoch
        "history": history,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "spec": spec.to_dict(),
        "recipe": recipe.to_dict(),
    }
    atomic_write(path, lambda temporary: torch.save(state, temporary))


# Recipe fields that may change on resume: how the run goes, and where the data lives (the data may
# move; the trial store's key keeps data_root, since other data would give other results).
_RESUMABLE_CHANGES = (*RUN_ONLY_FIELDS, "data_root")


def _restore(
    path: Path, model, optimizer, scaler, average, spec: NetSpec, recipe: Recipe
) -> tuple[int, list[dict[str, Any]]]:
    """Continue from a checkpoint of the same network and recipe; another run's checkpoint is refused
    (resuming it would silently train under a changed schedule)."""
    state = read_checkpoint(path)
    now, then = without_neutral(recipe.to_dict()), without_neutral(dict(state["recipe"]))
    changed = [k for k in now if k not in _RESUMABLE_CHANGES and now[k] != then.get(k)]
    if state["spec"] != spec.to_dict() or changed:
        what = f"recipe ({', '.join(changed)} differ)" if changed else "network"
        raise ConfigError(
            str(path.parent), f"holds a checkpoint of another {what}; --restart starts over, or choose another --out"
        )
    model.load_state_dict(state["model"])
    if average is not None:
        average.load_state_dict(state["average"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["epoch"] + 1, list(state["history"])


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state, loaded with weights_only=True; any other file is refused in one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises anything from UnpicklingError to IndexError on a non-checkpoint
        raise ConfigError(str(path), f"is not a readable sksearch checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or not {"spec", "model", "recipe"} <= state.keys():
        raise ConfigError(str(path), "is a torch file but not a sksearch checkpoint (no spec, model and recipe)")
    return state


def load_checkpoint(path: str | Path) -> tuple[NetSpec, dict[str, torch.Tensor], dict[str, Any]]:
    """(spec, weights, recipe dict) of a trial checkpoint: the weights whose errors were reported,
    the average where the recipe kept one."""
    state = read_checkpoint(path)
    weights = state["model"]
    if "average" in state:
        weights = {name[len("module.") :]: value for name, value in state["average"].items() if name != "n_averaged"}
    return NetSpec.from_dict(state["spec"]), weights, state["recipe"]


def write_summary(result: TrialResult, spec: NetSpec, recipe: Recipe, out_dir: str | Path) -> Path:
    """The trial's files beside its checkpoint: history.parquet, summary.json, recipe.json,
    spec.yaml (the network as trained, which the checkpoint's weights fit, as in an export) and
    declared_spec.yaml (`spec`, as declared)."""
    import pandas as pd

    out_dir = Path(out_dir)
    if result.history:
        frame = pd.DataFrame(result.history)
        atomic_write(out_dir / "history.parquet", lambda temporary: frame.to_parquet(temporary, index=False))
    summary = {k: v for k, v in asdict(result).items() if k != "history"}
    summary.update(final=result.final, best=result.best)
    if (out_dir / CHECKPOINT).exists():
        atomic_write_text(out_dir / "spec.yaml", load_checkpoint(out_dir / CHECKPOINT)[0].to_yaml())
    atomic_write_text(out_dir / "declared_spec.yaml", spec.to_yaml())
    atomic_write_text(out_dir / "recipe.json", json.dumps(recipe.to_dict(), indent=2))
    return atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=str))
