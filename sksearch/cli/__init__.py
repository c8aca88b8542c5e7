"""The `sksearch` command. Each verb module declares its verbs (flags beside handlers) and calls
into the library; nothing is computed or written here that a Python user could not get too.

Bad input of any kind ends in one line on stderr naming the field and the reason, exit code 2;
storage that refuses a write (full, read-only) in one line naming the path, exit code 5.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sksearch import __version__
from sksearch.cli import analysis, models, results, spaces, store, sweeps, training
from sksearch.cli.common import VERBS
from sksearch.files import StorageError
from sksearch.validation import ConfigError

STORAGE_FAULT = 5  # the exit status when the storage refused a write (full, read-only)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


_GROUPS = {"space": "inspect a search space file", "store": "the trial store: what is there, one entry, cleaning"}
# the order verbs are listed in: networks, training, sweeps, the store, spaces, results, pictures
_MODULES = [module.__name__ for module in (models, training, sweeps, store, spaces, results, analysis)]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sksearch", description="Ablation and architecture search for SKNets.")
    parser.add_argument("--version", action="version", version=f"sksearch {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for entry in sorted(VERBS, key=lambda entry: _MODULES.index(entry.handler.__module__)):
        group, _, sub = entry.name.partition(" ")
        if sub and group not in groups:
            holder = verbs.add_parser(group, help=_GROUPS[group], description=_GROUPS[group])
            groups[group] = holder.add_subparsers(dest=f"{group}_verb", required=True, parser_class=_Parser)
        target = groups[group] if sub else verbs
        text = entry.help.replace("%", "%%")  # argparse formats help strings with %
        verb = target.add_parser(sub or group, help=text, description=text)
        entry.flags(verb)
        verb.set_defaults(handler=entry.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # `sksearch` alone: the verbs, as a usage error
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except StorageError as error:  # full or read-only storage: nothing half-written, resume continues
        sys.stderr.write(f"sksearch {args.verb}: error: {error}\n")
        return STORAGE_FAULT
    except ConfigError as error:
        sys.stderr.write(f"sksearch {args.verb}: error: {error}\n")
        return 2
    except KeyboardInterrupt as interrupt:  # a sweep's says how to resume it
        sys.stderr.write(f"sksearch {args.verb}: {interrupt or 'interrupted'}\n")
        return 130
    except BrokenPipeError:  # the reader (| head) left: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout for the interpreter's exit
        return 0
