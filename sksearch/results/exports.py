"""Exported configurations: the chosen trials as folders that rebuild the exact model with its weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sksearch.complexity import count
from sksearch.files import atomic_write, atomic_write_text, exists, join
from sksearch.results.fronts import Objectives, pareto
from sksearch.schema import best_trial, best_trials, parse_objectives, results_of
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError


def select_for_export(
    frame: pd.DataFrame,
    *,
    front_objectives: Objectives | None = None,
    best: str | None = None,
    top: int = 1,
    archid: str | None = None,
) -> pd.DataFrame:
    """The trials to export: the Pareto front (best seed of each point), the top K by a metric, or
    the best trial of one archid."""
    done = results_of(frame)
    if front_objectives:
        front = pareto(done, front_objectives)
        if front.empty:
            raise ConfigError("--pareto", "no completed trial has every objective: there is no front to export")
        first, mode = front_objectives[0]
        ids = [best_trial(done[done["trial_id"].isin(ids)], first, mode)["trial_id"] for ids in front["trial_ids"]]
        return done[done["trial_id"].isin(ids)]
    if best:
        metric, _, mode = best.partition(":")
        mode = mode or ("max" if metric == "images_per_s" else "min")
        ((metric, mode),) = parse_objectives(f"{metric}:{mode}", "--best", done, range(1, 2))
        return best_trials(done, metric, mode).head(top)
    if archid:
        chosen = done[done["archid"] == archid]
        if chosen.empty:
            raise ConfigError("--archid", f"no completed trial has archid {archid!r}")
        return done[done["trial_id"] == best_trial(chosen, "top1_err", "min")["trial_id"]]
    raise ConfigError("export", "choose --pareto, --best METRIC or --archid ID")


def export(trials: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """One folder per trial: spec.yaml (the network as trained: the weights fit it), declared_spec.yaml,
    complexity.json, recipe.json, metrics.json and weights.safetensors."""
    from safetensors.torch import save_file

    from sksearch.train import CHECKPOINT, load_checkpoint

    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise ConfigError("--out", f"{out_dir} is not empty; export into a new or empty folder")
    rows = trials.to_dict("records")
    for row in rows:  # every checkpoint is there before the first file is written
        checkpoint = row.get("checkpoint")
        if not isinstance(checkpoint, str) or not exists(join(checkpoint, CHECKPOINT)):
            raise ConfigError(f"trial {row['trial_id']}", f"has no checkpoint to export (checkpoint: {checkpoint!r})")
    folders = []
    for row in rows:
        folder = out_dir / f"{row['archid']}-{row['trial_id']}"
        checkpoint = row["checkpoint"]
        trained, weights, recipe = load_checkpoint(_local(join(checkpoint, CHECKPOINT)))
        declared = NetSpec.from_dict(json.loads(row["spec"]))
        atomic_write_text(folder / "spec.yaml", trained.to_yaml())
        atomic_write_text(folder / "declared_spec.yaml", declared.to_yaml())
        atomic_write_text(folder / "complexity.json", json.dumps(_complexity_record(trained, declared), indent=2))
        atomic_write_text(folder / "recipe.json", json.dumps(recipe, indent=2))
        metrics = {
            k: _plain(row.get(k))
            for k in (
                "trial_id",
                "sweep",
                "seed",
                "top1_err",
                "top5_err",
                "train_loss",
                "best_top1_err",
                "best_top5_err",
                "best_epoch",
                "epochs",
            )
        }
        atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2))
        tensors = {name: tensor.contiguous() for name, tensor in weights.items()}
        atomic_write(folder / "weights.safetensors", lambda temporary, t=tensors: save_file(t, str(temporary)))
        folders.append(folder)
    return folders


def _local(location: str) -> str:
    """A checkpoint file a torch.load can open (URIs are copied to a temporary file first)."""
    from sksearch.files import is_uri, read_bytes

    if not is_uri(location):
        return location
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pt", delete=False) as handle:
        handle.write(read_bytes(location))
    return handle.name


def _complexity_record(trained: NetSpec, declared: NetSpec) -> dict[str, Any]:
    def record(spec: NetSpec) -> dict[str, Any]:
        complexity = count(spec)
        return {
            "archid": spec.archid,
            "params": complexity.params,
            "macs": complexity.macs,
            "gmacs": complexity.gmacs,
            "input_size": spec.input_size,
        }

    return {"trained": record(trained), "declared": record(declared)}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_export(folder: str | Path):
    """(model, spec) from an export folder: the model built from spec.yaml with the exported
    weights, in eval mode."""
    from safetensors.torch import load_file

    from sksearch.nets import build
    from sksearch.spec import read_spec

    folder = Path(folder)
    spec = read_spec(folder / "spec.yaml")
    model = build(spec)
    model.load_state_dict(load_file(str(folder / "weights.safetensors")))
    return model.eval(), spec
