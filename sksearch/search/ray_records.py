"""What Ray wrote about a run's trials, read back: their result logs (one row per epoch), their
errors in one line, their checkpoints' sizes, and the storage faults inside Tune's tracebacks.
Read only; the callbacks (sksearch.search.callbacks) and `run` use it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune import TuneError

from sksearch.files import StorageError, is_uri, join, read_bytes
from sksearch.runfiles import HISTORY_COLUMNS


def stand_in_for_lost_checkpoint(trial) -> None:
    """An empty folder where a trial's last checkpoint was deleted: Ray refuses to restore a trial
    from a path that is gone, while the trial itself, finding no checkpoint file there, continues
    from an older one or from epoch 0 and says so in its reason."""
    if trial.checkpoint is not None and not is_uri(trial.checkpoint.path):
        os.makedirs(trial.checkpoint.path, exist_ok=True)


def error_line(trial) -> str:
    """The exception of a trial's error and its message, in one line: from the error Ray holds
    (while it runs the trial) or the error.txt it wrote into the trial folder (read afterwards)."""
    try:
        error = trial.get_error()
    except Exception:  # read back without a Ray session, Ray cannot find its staging folder
        error = None
    if error is None:
        try:
            text = read_bytes(join(trial.path, "error.txt")).decode(errors="replace")
        except OSError:
            return "the trial crashed"
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure #")]
    raised = [match for line in lines if (match := _RAISED.match(line))]
    if raised:
        return f"{raised[-1]['name'].rsplit('.', 1)[-1]}: {raised[-1]['message']}"
    name = f"{type(error).__name__}: " if isinstance(error, Exception) and not isinstance(error, TuneError) else ""
    return name + (lines[0] if lines else "the trial crashed")


_RAISED = re.compile(r"(?P<name>[\w.]*(?:Error|Exception|Interrupt)): (?P<message>.+)")


def status_of(trial, last: Mapping[str, Any]) -> tuple[str, str]:
    """(status, reason) of an ended trial as the results table names them (ASHA's stops: stopped)."""
    if trial.status == "ERROR":
        return "error", error_line(trial)
    status = last.get("status")
    if status in ("completed", "failed"):
        return status, last.get("reason") or ""
    return "stopped", f"early stopping after epoch {last.get('epoch', 0)}"


def checkpoint_bytes(trial) -> int:
    """The size of the trial's last checkpoint folder (0 before its first)."""
    if trial.checkpoint is None or not os.path.isdir(trial.checkpoint.path):
        return 0
    return sum(entry.stat().st_size for entry in os.scandir(trial.checkpoint.path) if entry.is_file())


def trial_history(trial, received: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Per-epoch metrics from the trial's own result log (persisted by Ray, so a resumed run has
    them all) and the reports this driver `received` (the log in the run folder can lag a report
    behind them): one row per epoch, the last report of it (a trial that lost its checkpoint and was
    trained again from epoch 0 reported its first epochs twice; the earlier attempt is stale)."""
    records = [*reported_results(trial), *(record for record in received if _is_epoch_report(record))]
    by_epoch = {record.get("epoch"): record for record in records}
    return [
        {"trial_id": trial.trial_id, **{k: record.get(k) for k in HISTORY_COLUMNS}}
        for _, record in sorted(by_epoch.items(), key=lambda item: item[0] or 0)
    ]


def reported_results(trial) -> list[dict[str, Any]]:
    """The epochs a trial reported, from its result.json (a line cut short by a crash is skipped)."""
    try:
        text = read_bytes(join(trial.path, "result.json")).decode(errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if _is_epoch_report(record):
            records.append(record)
    return records


def _is_epoch_report(record: Mapping[str, Any]) -> bool:
    return "top1_err" in record


def storage_fault(text: str) -> StorageError | None:
    """The StorageError a Tune traceback's text ends in: ours (the free-space guard, a table write)
    or an OSError of Ray's own writes into a full or read-only run folder; None for other faults."""
    ours = re.search(rf"{StorageError.__module__}.{StorageError.__name__}: (.+?): (.+)", text)
    if ours:
        return StorageError(ours.group(1), ours.group(2))
    for found in re.finditer(r"\[Errno (\d+)\] ([^:\n]+): '([^'\n]+)'", text):
        fault = StorageError.of(OSError(int(found.group(1)), found.group(2)), found.group(3))
        if isinstance(fault, StorageError):
            return fault
    return None
