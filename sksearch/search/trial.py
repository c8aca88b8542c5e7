"""One sweep trial: a space point's network trained by `train.train` under Ray Tune, every epoch
reported with a checkpoint; a retried trial continues from its last one. Data-parallel trials run
on Ray Train's TorchTrainer.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import tune

from sksearch.complexity import count
from sksearch.files import join, read_bytes
from sksearch.recipes import Recipe
from sksearch.schema import FINAL_METRICS, RUN_REPORTS
from sksearch.search.plan import SweepPlan
from sksearch.search.store import Claim, Record, Store, checkpoint_exists, trial_claim, trial_key
from sksearch.train import CHECKPOINT, TrialResult, read_checkpoint, train
from sksearch.validation import ConfigError


def run_trial(config: dict[str, Any], plan: SweepPlan) -> None:
    """One Tune trial: the config's network trained under the plan's recipe, every epoch reported
    with a checkpoint; a retried trial continues from its last checkpoint."""
    point, seed = plan.point_and_seed(config)
    candidate = plan.space.candidate(point)
    recipe = plan.recipe_for(point, seed)
    complexity = candidate.complexity  # of the network as declared: the objectives' gmacs / params_m
    static = {
        "status": "running",
        "params": complexity.params,
        "macs": complexity.macs,
        "params_m": complexity.params_m,
        "gmacs": complexity.gmacs,
        "fvcore_flops": _fvcore_flops(candidate.spec),
        "node_id": _node_id(),
    }
    if plan.timed:
        from sksearch.search.timings import trial_timing

        store = Store(plan.store_location)
        static.update(trial_timing(candidate.spec, recipe, store, plan.resources.cpus_per_trial))
        broken = plan.space.constraints.timing_violation(static)
        if broken:  # not trained: the network is too slow on this device
            _Reporter(static, recipe.epochs, _tune_report).fail(0, broken)
            return
    trial_id, key = tune.get_context().get_trial_id(), trial_key(candidate.spec, recipe)
    claim = trial_claim(plan.store_location, plan.name, candidate.spec, recipe, trial_id)
    answered = _claim_or_answer(plan, claim, key, recipe.epochs)
    if answered is not None:  # another sweep sharing the store trained it while this one waited
        _report_stored(answered, static)
        return
    if plan.resources.workers_per_trial > 1:
        _run_data_parallel(plan, candidate.spec, recipe, static)
        return
    workdir = Path(tempfile.mkdtemp(prefix="sksearch-trial-"))
    try:
        note = _restore_into(workdir, tune.get_checkpoint())
        if not (workdir / CHECKPOINT).exists():
            note = _continue_stored(workdir, plan, candidate.spec, recipe) or note
        if note:
            static["reason"] = note

        def report_and_renew(payload: dict[str, Any], checkpoint: Path | None) -> None:
            claim.renew()
            _tune_report(payload, checkpoint)

        reporter = _Reporter(static, recipe.epochs, report_and_renew)
        result = train(candidate.spec, recipe, workdir, report=reporter)
        if reporter.resumed_at is None and result.status == "completed" and not _recorded(plan, key, trial_id):
            reporter.repeat_last(result, workdir / CHECKPOINT)
        reporter.finish(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


CLAIM_POLL_S = 2.0


def _claim_or_answer(plan: SweepPlan, claim: Claim, key: str, epochs: int) -> Record | None:
    """Take the claim on `key` before training it; while another sweep's trial holds it, wait for
    that trial's record and return it (None: this trial trains). Without `plan.reuse`, no waiting.
    The trial's own record (written before a killed driver could note it finished) is no answer:
    resumed, the trial goes on from its checkpoint as any retried trial does."""
    if not plan.reuse:
        return None
    store = Store(plan.store_location)
    while True:
        record = store.answer(key, epochs, besides=claim.holder)
        if record is not None:
            return record
        if claim.try_take():
            return None
        time.sleep(CLAIM_POLL_S)


def _recorded(plan: SweepPlan, key: str, trial_id: str) -> bool:
    """Whether the trial's own record is in the store (written with its row when it ended)."""
    return Store(plan.store_location).record_of(key, sweep=plan.name, trial_id=trial_id) is not None


def _report_stored(record: Record, static: dict[str, Any]) -> None:
    """Report a stored trial's epochs as this trial's, the last with its checkpoint, result and a
    reason that names where it came from."""
    row, history = record.row, list(record.history)
    final = {name: row.get(name) for name in (*FINAL_METRICS, *RUN_REPORTS) if row.get(name) is not None}
    reason = f"answered from the store: trial {record.source} (another sweep trained it while this one waited)"
    for epoch in history[:-1]:
        _tune_report({**static, **epoch, "status": "running"}, None)
    last = {**(history[-1] if history else {}), **final, "epoch": row.get("epochs")}
    payload = {**static, **last, "status": row.get("status"), "reason": reason}
    checkpoint = row.get("checkpoint")
    if not isinstance(checkpoint, str) or not checkpoint or row.get("status") == "failed":
        _tune_report(payload, None)
        return
    with tempfile.TemporaryDirectory(prefix="sksearch-stored-") as folder:
        local = Path(folder) / CHECKPOINT  # the stored checkpoint may sit at a URI
        local.write_bytes(read_bytes(join(checkpoint, CHECKPOINT)))
        _tune_report(payload, local)


def _restore_into(workdir: Path, restored) -> str:
    """Copy the checkpoint a retried trial continues from into `workdir`. When its last checkpoint
    is gone, the newest older one that exists (or none: epoch 0) serves; the note says so."""
    if restored is None:
        return ""
    try:
        with restored.as_directory() as folder:
            shutil.copy(Path(folder) / CHECKPOINT, workdir / CHECKPOINT)
        if _readable(workdir / CHECKPOINT):
            return ""
    except FileNotFoundError:
        pass
    last = Path(restored.path)
    older = sorted(last.parent.glob(f"checkpoint_*/{CHECKPOINT}")) if last.parent.is_dir() else []
    for candidate in reversed([path for path in older if path.parent != last]):
        shutil.copy(candidate, workdir / CHECKPOINT)
        if _readable(workdir / CHECKPOINT):
            return f"its last checkpoint {last.name} was gone or damaged: continued from {candidate.parent.name}"
    (workdir / CHECKPOINT).unlink(missing_ok=True)
    return f"its last checkpoint {last.name} was gone or damaged: trained again from epoch 0"


def _readable(checkpoint: Path) -> bool:
    """Whether a checkpoint file loads (one cut short by a full disk does not)."""
    try:
        read_checkpoint(checkpoint)
        return True
    except ConfigError:
        return False


def _continue_stored(workdir: Path, plan: SweepPlan, spec, recipe: Recipe) -> str:
    """Start from the checkpoint of a stored trial of this network, recipe and seed that early
    stopping ended before the last epoch (the one that ran longest): asked for more epochs, it goes
    on from there instead of from scratch. The note names it."""
    if not plan.reuse:
        return ""
    stopped = [
        record
        for record in Store(plan.store_location).records(trial_key(spec, recipe))
        if record.row.get("status") == "stopped" and checkpoint_exists(record)
    ]
    if not stopped:
        return ""
    record = max(stopped, key=lambda record: int(record.row.get("epochs") or 0))
    (workdir / CHECKPOINT).write_bytes(read_bytes(join(record.row["checkpoint"], CHECKPOINT)))
    return f"continued from stored trial {record.source} after epoch {record.row.get('epochs')}"


class _Reporter:
    """Turns `train` reports into Tune/Train reports: declared-network complexity under the
    objective names, the trained network's as `trained_*`, the epoch this process started at, a status."""

    def __init__(self, static: dict[str, Any], epochs: int, send: Callable[[dict, Path | None], None]):
        self.static, self.epochs, self.send = static, epochs, send
        self.resumed_at: int | None = None

    def __call__(self, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        if self.resumed_at is None:
            self.resumed_at = metrics["epoch"] - 1
        payload = {
            **{k: v for k, v in metrics.items() if k not in ("archid", "params", "macs", "params_m", "gmacs")},
            "trained_archid": metrics["archid"],
            "trained_params": metrics["params"],
            "trained_macs": metrics["macs"],
            "trained_gmacs": metrics["gmacs"],
            "resumed_at_epoch": self.resumed_at,
            **self.static,
        }
        if metrics["epoch"] == self.epochs:
            payload["status"] = "completed"
        self.send(payload, checkpoint)

    def repeat_last(self, result: TrialResult, checkpoint: Path) -> None:
        """Report the last epoch again, with its checkpoint. The trial continued from its final
        checkpoint, so it trained nothing; Ray's saved state, older (a driver killed after the last
        epoch, before the trial's end was noted), would otherwise end it on an earlier epoch's result."""
        self.resumed_at = len(result.history)
        self(result.history[-1], checkpoint)

    def finish(self, result: TrialResult) -> None:
        if result.status == "failed":
            self.fail(result.epochs_run, result.reason)

    def fail(self, epochs: int, reason: str) -> None:
        """A failed trial's last report: its reason, and NaN errors (Optuna records a failed trial)."""
        errors = {name: float("nan") for name in ("top1_err", "top5_err", "train_loss")}
        self.send({**self.static, **errors, "epoch": epochs, "status": "failed", "reason": reason}, None)


def _tune_report(payload: dict[str, Any], checkpoint: Path | None) -> None:
    _report_with_checkpoint(tune.report, tune.Checkpoint, payload, checkpoint)


def _report_with_checkpoint(report, checkpoint_class, payload: dict[str, Any], checkpoint: Path | None) -> None:
    """Report, handing Ray a folder that holds only the checkpoint (Ray copies it to storage)."""
    if checkpoint is None:
        report(payload)
        return
    folder = Path(tempfile.mkdtemp(prefix="sksearch-ckpt-"))
    try:
        shutil.copy(checkpoint, folder / CHECKPOINT)
        report(payload, checkpoint=checkpoint_class.from_directory(str(folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fvcore_flops(spec) -> int | None:
    try:
        return count(spec, "fvcore").fvcore_flops
    except ImportError:  # a worker without fvcore still trains
        return None


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def _run_data_parallel(plan: SweepPlan, spec, recipe: Recipe, static: dict[str, Any]) -> None:
    """A data-parallel trial: Ray Train's TorchTrainer runs `_data_parallel_worker` on N workers
    (DDP over gloo on CPUs, NCCL on GPUs); rank 0's reports reach Tune."""
    from ray.train import RunConfig as TrainRunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    resources = plan.resources
    gpus = resources.gpus_per_trial or 0
    per_worker = {"CPU": resources.cpus_per_trial, **({"GPU": gpus} if gpus else {})}
    trainer = TorchTrainer(
        _data_parallel_worker,
        train_loop_config={"spec": spec.to_dict(), "recipe": recipe.to_dict(), "static": static},
        scaling_config=ScalingConfig(
            num_workers=resources.workers_per_trial, use_gpu=gpus > 0, resources_per_worker=per_worker
        ),
        run_config=TrainRunConfig(
            name=f"{tune.get_context().get_trial_id()}-workers",
            storage_path=plan.run_dir,
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()


def _data_parallel_worker(config: dict[str, Any]) -> None:
    import ray.train

    from sksearch.recipes import recipe_from
    from sksearch.spec import NetSpec

    spec, recipe = NetSpec.from_dict(config["spec"]), recipe_from(config["recipe"])
    workdir = Path(tempfile.mkdtemp(prefix="sksearch-worker-"))
    try:
        note = _restore_into(workdir, ray.train.get_checkpoint())
        if note:
            config["static"]["reason"] = note

        def send(payload: dict[str, Any], checkpoint: Path | None) -> None:
            _report_with_checkpoint(ray.train.report, ray.train.Checkpoint, payload, checkpoint)

        reporter = _Reporter(config["static"], recipe.epochs, send)
        reporter.finish(train(spec, recipe, workdir, report=reporter))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
