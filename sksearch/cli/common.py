"""What every verb shares: the verb registry, argument types, and printing or writing a table.

A verb module declares each verb as `@verb(name, help, flags)` on its handler, with the function
that adds its flags right above it; `sksearch.cli.build_parser` assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sksearch.spec import NetSpec, is_spec_file, read_spec
from sksearch.validation import ConfigError
from sksearch.yamlfiles import parse_yaml, read_yaml_file

Handler = Callable[[argparse.Namespace], int]
Flags = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Verb:
    name: str  # "space show": a sub-verb of `space`
    help: str
    flags: Flags
    handler: Handler


VERBS: list[Verb] = []


def verb(name: str, help_text: str, flags: Flags = lambda parser: None) -> Callable[[Handler], Handler]:
    """Registers the decorated handler as the verb `name`, with `flags` adding its arguments."""

    def register(handler: Handler) -> Handler:
        VERBS.append(Verb(name, help_text, flags, handler))
        return handler

    return register


def spec_argument(text: str) -> tuple[str, NetSpec]:
    """A preset name or a spec YAML file, with the label to show for it."""
    from sksearch.presets import preset

    if Path(text).is_dir():
        raise ConfigError(text, "is a folder, not a preset name or a spec file")
    if is_spec_file(text) or Path(text).is_file():
        return Path(text).stem, read_spec(text)
    return text, preset(text)


def check_exists(path: str) -> None:
    """A local path that is not there is refused at once (and nothing is created in its place)."""
    from sksearch.files import is_uri

    if not is_uri(path) and not Path(path).exists():
        raise ConfigError(path, "does not exist")


def check_space_file(path: str) -> None:
    """A space file that cannot be read, or is not YAML, is refused at once: before the search (and
    torch) is imported to load it."""
    read_yaml_file(path, lambda data: data)


def is_space_file(path: str | Path) -> bool:
    """A YAML file with a `knobs` section (a spec file has none)."""
    if not Path(path).is_file():
        return False
    try:
        data = parse_yaml(Path(path).read_text(errors="replace"))
    except ConfigError:
        return False
    return isinstance(data, dict) and "knobs" in data


def out_folder(text: str) -> str:
    """An --out folder this user can create or write into (checked before any work starts)."""
    from sksearch.files import check_writable_folder

    try:
        check_writable_folder(text, "--out")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(error.reason) from None
    return text


def int_list(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers separated by commas, got {text!r}") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def float_list(text: str, flag: str, count: int | None = None, positive: bool = False) -> list[float]:
    """Numbers separated by commas; `count` of them if given, each > 0 if `positive`."""
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise ConfigError(flag, f"must be numbers separated by commas, got {text!r}") from None
    if count is not None and len(values) != count:
        raise ConfigError(flag, f"needs {count} values, one per objective, got {len(values)}")
    if positive and any(value <= 0 for value in values):
        raise ConfigError(flag, f"must be positive, got {text!r}")
    return values


def parse_settings(pairs: Sequence[str], path: str = "--set") -> dict:
    """`key=value` pairs, values read as YAML (`epochs=3`, `lr=0.05`, `scale_range=[1, 3]`)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(path, f"expects key=value, got {pair!r}")
        settings[key.strip()] = parse_yaml(value) if value.strip() else None
    return settings


def add_set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")


def write_or_print(text: str, out: str | None) -> None:
    from sksearch.files import atomic_write_text

    if out:
        atomic_write_text(out, text if text.endswith("\n") else text + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
