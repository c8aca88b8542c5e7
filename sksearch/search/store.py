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
import dataclasses
import hashlib
import json
import os
import posixpath
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sksearch.files import (
    CHECKPOINT,
    delete_empty_folder,
    delete_file,
    exists,
    is_uri,
    join,
    listing,
    read_bytes,
    write_bytes,
)
from sksearch.recipes import RUN_ONLY_FIELDS, TRAINER_VERSION, Recipe, without_neutral
from sksearch.spec import NetSpec
from sksearch.validation import ConfigError, first_line

# Record statuses a later request can be answered from: the trial ran to its last epoch or ended
# itself (a diverged network diverges again); `stopped` answers requests for as many epochs as it ran.
REUSABLE = ("completed", "failed", "stopped")
TIMINGS = ".timings"  # a hidden folder: not a key


def recipe_fingerprint(recipe: Recipe) -> str:
    """A short hash of the recipe fields that change what a trial trains."""
    fields = without_neutral({k: v for k, v in recipe.to_dict().items() if k not in RUN_ONLY_FIELDS})
    fields["trainer_version"] = TRAINER_VERSION
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
    location: str = field(default="", compare=False)  # where the store read it from

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
        if not is_uri(location) and os.path.exists(location) and not os.path.isdir(location):
            raise ConfigError("--store", f"{location} is a file, not a store folder")
        self.location = location.rstrip("/")
        self.unreadable: dict[str, str] = {}  # location -> why, of every record that could not be read

    def _key_dir(self, key: str) -> str:
        return join(self.location, key)

    def put(self, record: Record) -> str:
        """Write one trial's record. A record is never rewritten: the same trial recorded again
        identically is a no-op, and a different trial under the same sweep name and trial id (a
        copied run folder resumed beside its original) gets a name of its own."""
        data = record.to_json().encode()
        location = join(self._key_dir(record.key), f"{record.row['sweep']}-{record.row['trial_id']}.json")
        if exists(location):
            with contextlib.suppress(OSError):
                if read_bytes(location) == data:
                    return location
            digest = hashlib.sha256(data).hexdigest()[:10]
            location = f"{location[: -len('.json')]}-{digest}.json"
        write_bytes(location, data)
        return location

    def records(self, key: str) -> list[Record]:
        """Every record of `key`, oldest name first. A record that cannot be read (damaged, or another
        program's file) is skipped and kept in `unreadable`, so that a caller can say how many."""
        found = []
        for location in listing(self._key_dir(key)):
            try:
                found.append(dataclasses.replace(Record.from_json(read_bytes(location).decode()), location=location))
            except (OSError, ValueError, KeyError, TypeError) as error:
                self.unreadable[location] = first_line(error)
        return found

    def record_of(self, key: str, **row: Any) -> Record | None:
        """The record of `key` whose row has these values (one trial's own record), or None."""
        matching = (record for record in self.records(key) if all(record.row.get(n) == v for n, v in row.items()))
        return next(matching, None)

    def unreadable_note(self) -> str:
        """One line saying how many records could not be read ("" when none), and how to list them."""
        if not self.unreadable:
            return ""
        return (f"{len(self.unreadable)} records could not be read and were left out; "
                f"`sksearch store verify --store {self.location}` lists them")  # fmt: skip

    def stored_keys(self) -> list[str]:
        return sorted(posixpath.basename(path.rstrip("/")) for path in listing(self.location, folders=True))

    def __iter__(self) -> Iterator[Record]:
        for key in self.stored_keys():
            yield from self.records(key)

    def answer(self, key: str, epochs: int, besides: str = "") -> Record | None:
        """The record that answers a request for `epochs` epochs of `key`: one that ran to the end
        or ended itself, or was stopped after at least `epochs`, and whose checkpoint still exists
        (a vanished checkpoint means the entry is treated as absent); the one with the most epochs.
        `besides` names a source (`<sweep>/<trial id>`) whose own record does not count."""
        usable = [
            record
            for record in self.records(key)
            if record.source != besides
            and record.row.get("status") in REUSABLE
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
        location = record.location or join(
            self._key_dir(record.key), f"{record.row['sweep']}-{record.row['trial_id']}.json"
        )
        delete_file(location)
        if not listing(self._key_dir(record.key)):  # the key's last record: its folder goes too
            delete_empty_folder(self._key_dir(record.key))


CLAIM = ".claim"  # `<store>/<key>/.claim`: a trial is training this key (hidden: not a record)
CLAIM_STALE_S = 900.0  # a claim its holder has not renewed for this long is abandoned (a killed trial)


class Claim:
    """A trial's claim on a key while it trains it, so that two sweeps sharing a store never train
    one network twice: the second waits for the first's record and is answered from it.

    The claim is a file created with O_CREAT | O_EXCL, which is atomic on a local filesystem and on
    NFS v3 or later; that is all it needs from shared storage. Its holder renews it (its time) every
    epoch; a claim older than CLAIM_STALE_S is taken over. A store at a URI (s3://, gs://) has no
    exclusive create: there, trials do not claim, and sweeps sharing such a store may train a network
    twice (each record stays whole). The holder's own retries (the same sweep and trial id) re-enter.
    """

    def __init__(self, store: Store, key: str, holder: str, stale_s: float = CLAIM_STALE_S):
        self.path = None if is_uri(store.location) else os.path.join(store.location, key, CLAIM)
        self.holder, self.stale_s = holder, stale_s

    def try_take(self) -> bool:
        """Take the claim, or renew our own; False while another live holder has it."""
        if self.path is None:
            return True
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                holder, age = self._current()
                if holder == self.holder:
                    self.renew()
                    return True
                if age is not None and age < self.stale_s:
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)  # abandoned: its holder stopped renewing it
                continue
            with os.fdopen(descriptor, "w") as claim:
                claim.write(self.holder)
            return True
        return False

    def renew(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def release(self) -> None:
        if self.path is not None and self._current()[0] == self.holder:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _current(self) -> tuple[str | None, float | None]:
        """(holder, seconds since renewed) of the claim there now; (None, None) when there is none."""
        try:
            with open(self.path) as claim:
                holder = claim.read()
            return holder, time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None, None


def trial_claim(location: str, sweep: str, spec: NetSpec, recipe: Recipe, trial_id: str) -> Claim:
    """The claim a sweep's trial holds on its key while it trains; the sweep's table callback
    releases it once the trial's record is in the store."""
    return Claim(Store(location), trial_key(spec, recipe), f"{sweep}/{trial_id}")


def checkpoint_exists(record: Record) -> bool:
    """Whether the record's checkpoint file is still there (a diverged trial needs none). Its folder
    alone is not enough: a driver killed while Ray persisted or pruned a checkpoint can leave it
    empty."""
    checkpoint = record.row.get("checkpoint")
    if record.row.get("status") == "failed":
        return True  # a diverged trial is answered by its record alone
    return isinstance(checkpoint, str) and exists(join(checkpoint, CHECKPOINT))


def store_location(location: str | None, storage: str) -> str:
    """`location` (a path made absolute, or a URI), or beside the sweeps: `<storage>/store`."""
    if location is None:
        return join(storage, "store")
    if not location.strip():
        raise ConfigError("--store", "must name a folder or a URI")
    return location if is_uri(location) else os.path.abspath(location)
