"""The trial store: every finished, stopped or failed trial of every sweep, so that no network is
trained twice under the same recipe and seed.

A trial's key is the archid of the network as trained, a fingerprint of the recipe fields that
change training (all but threads, workers, device, download and the recipe's name) and the seed.
Each trial is one immutable JSON record, `<store>/<key>/<sweep>-<trial id>.json`, written atomically
(a rename, or one put at a URI): writers on many nodes never rewrite a shared file, so none can lose
or corrupt another's record. A record holds the trial's results-table row (metrics, complexity,
wall time, status and reason, checkpoint) and its per-epoch history. Measured timings of networks
(sksearch.latency) are cached beside them, `<store>/.timings/<timing key>.json`. No Ray here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sksearch.files import exists, is_uri, join, read_bytes, write_bytes
from sksearch.recipes import RUN_ONLY_FIELDS, Recipe
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError

# Record statuses a later request can be answered from: the trial ran to its last epoch or ended
# itself (a diverged network diverges again); `stopped` answers requests for as many epochs as it ran.
REUSABLE = ("completed", "failed", "stopped")
TIMINGS = ".timings"  # a hidden folder: not a key


def recipe_fingerprint(recipe: Recipe) -> str:
    """A short hash of the recipe fields that change what a trial trains."""
    fields = {k: v for k, v in recipe.to_dict().items() if k not in RUN_ONLY_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]


def trial_key(spec: NetSpec, recipe: Recipe) -> str:
    """`<archid as trained>-<recipe fingerprint>-s<seed>`: the network the recipe trains from the
    declared `spec`, under this recipe and seed."""
    trained = recipe.adapt(spec, recipe.classes or spec.num_classes)
    return f"{trained.archid}-{recipe_fingerprint(recipe)}-s{recipe.seed}"


@dataclass(frozen=True)
class Record:
    key: str
    row: Mapping[str, Any]  # the trial's row of its sweep's results table (sksearch.schema)
    history: tuple[Mapping[str, Any], ...]  # one entry per epoch run

    @property
    def source(self) -> str:
        """`<sweep>/<trial id>`: where the record came from."""
        return f"{self.row['sweep']}/{self.row['trial_id']}"

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "row": dict(self.row), "history": list(self.history)}, default=_plain)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        return cls(key=data["key"], row=data["row"], history=tuple(data["history"]))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


class Store:
    """The records under one folder or URI (`results/store` by default)."""

    def __init__(self, location: str):
        self.location = location.rstrip("/")

    def _key_dir(self, key: str) -> str:
        return join(self.location, key)

    def put(self, record: Record) -> str:
        """Write one trial's record (again, identically, if the trial is recorded twice)."""
        name = f"{record.row['sweep']}-{record.row['trial_id']}.json"
        location = join(self._key_dir(record.key), name)
        write_bytes(location, record.to_json().encode())
        return location

    def records(self, key: str) -> list[Record]:
        """Every record of `key`, oldest name first; a record that cannot be read is skipped (a
        record is written whole or not at all, so this is another program's file)."""
        found = []
        for location in self._list(self._key_dir(key)):
            try:
                found.append(Record.from_json(read_bytes(location).decode()))
            except (OSError, ValueError, KeyError):
                continue
        return found

    def stored_keys(self) -> list[str]:
        return sorted(posixpath.basename(path.rstrip("/")) for path in self._list(self.location, folders=True))

    def __iter__(self) -> Iterator[Record]:
        for key in self.stored_keys():
            yield from self.records(key)

    def answer(self, key: str, epochs: int) -> Record | None:
        """The record that answers a request for `epochs` epochs of `key`: one that ran to the end
        or ended itself, or was stopped after at least `epochs`, and whose checkpoint still exists
        (a vanished checkpoint means the entry is treated as absent); the one with the most epochs."""
        usable = [
            record
            for record in self.records(key)
            if record.row.get("status") in REUSABLE
            and (record.row.get("status") != "stopped" or int(record.row.get("epochs") or 0) >= epochs)
            and checkpoint_exists(record)
        ]
        return max(usable, key=lambda record: int(record.row.get("epochs") or 0), default=None)

    def timing(self, key: str) -> dict | None:
        """A cached measured timing (sksearch.latency.Timing as a dict), or None."""
        location = join(self.location, TIMINGS, f"{key}.json")
        try:
            return json.loads(read_bytes(location)) if exists(location) else None
        except (OSError, ValueError):
            return None

    def put_timing(self, key: str, timing: dict) -> None:
        write_bytes(join(self.location, TIMINGS, f"{key}.json"), json.dumps(timing, sort_keys=True).encode())

    def remove(self, record: Record) -> None:
        name = f"{record.row['sweep']}-{record.row['trial_id']}.json"
        location = join(self._key_dir(record.key), name)
        if is_uri(location):
            filesystem, path = _filesystem(location)
            filesystem.delete_file(path)
        else:
            os.unlink(location)
        if not self._list(self._key_dir(record.key)):  # the key's last record: its folder goes too
            with contextlib.suppress(OSError):  # unless another writer's file is arriving
                if is_uri(location):
                    filesystem.delete_dir(posixpath.dirname(path))
                else:
                    os.rmdir(self._key_dir(record.key))

    def _list(self, location: str, folders: bool = False) -> list[str]:
        if not exists(location):
            return []
        import pyarrow.fs

        filesystem, path = _filesystem(location) if is_uri(location) else (pyarrow.fs.LocalFileSystem(), location)
        infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path))
        kind = pyarrow.fs.FileType.Directory if folders else pyarrow.fs.FileType.File
        chosen = sorted(info.path for info in infos if info.type == kind and not info.base_name.startswith("."))
        if is_uri(location):
            scheme = location.split("://", 1)[0]
            return [f"{scheme}://{path}" if not path.startswith(f"{scheme}://") else path for path in chosen]
        return chosen


def _filesystem(location: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(location)


def checkpoint_exists(record: Record) -> bool:
    """Whether the record's checkpoint is still there (a diverged trial needs none)."""
    checkpoint = record.row.get("checkpoint")
    if record.row.get("status") == "failed":
        return True  # a diverged trial is answered by its record alone
    return isinstance(checkpoint, str) and exists(checkpoint)


def store_location(location: str | None, storage: str) -> str:
    """`location` (a path made absolute, or a URI), or beside the sweeps: `<storage>/store`."""
    if location is None:
        return join(storage, "store")
    if not location.strip():
        raise ConfigError("--store", "must name a folder or a URI")
    return location if is_uri(location) else os.path.abspath(location)
