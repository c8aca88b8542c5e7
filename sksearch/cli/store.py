"""Verbs about the trial store: store ls, store show, store verify, store gc."""

from __future__ import annotations

import argparse
import json
import sys

from sksearch.cli.common import check_exists, verb
from sksearch.validation import ConfigError


def _store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="the store's folder or URI (default: results/store)")


def _open(args: argparse.Namespace):
    import os

    if args.store:
        check_exists(args.store)  # a mistyped store is refused, not read as an empty one

    from sksearch.search.plan import DEFAULT_STORAGE
    from sksearch.search.store import Store, store_location

    location = store_location(args.store, os.path.abspath(DEFAULT_STORAGE))
    return Store(location)


def _ls_flags(parser: argparse.ArgumentParser) -> None:
    _store_flag(parser)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")


@verb("store ls", "every stored trial: key, source, status, epochs, top-1 error", _ls_flags)
def cmd_store_ls(args: argparse.Namespace) -> int:
    import pandas as pd

    store = _open(args)
    frame = pd.DataFrame([_summary(record) for record in store])
    if frame.empty:
        print(f"no stored trials in {store.location}")
        return 0
    if args.format == "csv":
        print(frame.to_csv(index=False), end="")
    elif args.format == "json":
        print(frame.to_json(orient="records", indent=2))
    else:
        print(frame.to_string(index=False))
        print(f"{len(frame)} records of {frame['key'].nunique()} keys in {store.location}")
    if store.unreadable:
        print(store.unreadable_note(), file=sys.stderr)
    return 0


def _summary(record) -> dict:
    from sksearch.search.store import checkpoint_exists

    row = record.row
    return {
        "key": record.key,
        "source": record.source,
        "status": row.get("status"),
        "epochs": row.get("epochs"),
        "top1_err": row.get("top1_err"),
        "checkpoint": _checkpoint_state(record, checkpoint_exists(record)),
    }


def _checkpoint_state(record, exists: bool) -> str:
    """yes; none (a record that needs none: a failed trial, answered without it); or gone."""
    if not record.row.get("checkpoint"):
        return "none" if record.row.get("status") == "failed" else "gone"
    return "yes" if exists else "gone"


def _show_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="a key as `store ls` prints it (<archid>-<recipe>-s<seed>)")
    _store_flag(parser)


@verb("store show", "one key's stored trials, whole, as JSON", _show_flags)
def cmd_store_show(args: argparse.Namespace) -> int:
    records = _open(args).records(args.key)
    if not records:
        raise ConfigError("key", f"no stored trial has key {args.key!r} (`sksearch store ls` lists them)")
    print(json.dumps([json.loads(record.to_json()) for record in records], indent=2))
    return 0


@verb("store verify", "read every stored record; list those that cannot be read (exit 1 if any)", _store_flag)
def cmd_store_verify(args: argparse.Namespace) -> int:
    store = _open(args)
    readable = sum(1 for _ in store)
    for location, reason in sorted(store.unreadable.items()):
        print(f"unreadable: {location}: {reason}")
    print(f"{readable} records readable, {len(store.unreadable)} unreadable in {store.location}")
    return 1 if store.unreadable else 0


@verb("store gc", "remove stored trials whose checkpoints are gone", _store_flag)
def cmd_store_gc(args: argparse.Namespace) -> int:
    from sksearch.search.store import checkpoint_exists

    store = _open(args)
    gone = [record for record in store if not checkpoint_exists(record)]
    for record in gone:
        store.remove(record)
    print(f"removed {len(gone)} stored trials whose checkpoints are gone; {store.location}")
    return 0
