"""The one validator: unknown keys and value checks for specs, recipes and spaces.

Every check raises `ConfigError(path, reason)`, whose message starts with the field path, so that
a bad file or flag is reported as one line naming the field (`unit.reduction: must be >= 1, got 0`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A spec, recipe, space or option that cannot be used. The message starts with the field path."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)

    def __reduce__(self):
        """Rebuilt from its two fields, so it crosses a process (a Ray trial's error) as itself."""
        return ConfigError, (self.path, self.reason)

    def within(self, prefix: str) -> ConfigError:
        """The same error, seen from an enclosing object whose field is `prefix`."""
        return ConfigError(join_path(prefix, self.path), self.reason)

    def in_file(self, file: str | Path) -> ConfigError:
        """The same error, located in `file` (`spaces/x.yaml: unit.reduction: must be >= 1`)."""
        return ConfigError(f"{file}: {self.path}" if self.path else str(file), self.reason)


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none), so that a
    refusal that quotes it stays one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def check_keys(
    data: Any, known: Iterable[str], path: str = "", required: Iterable[str] = (), what: str = "key"
) -> dict[str, Any]:
    """`data` as a dict, after refusing a non-mapping, an unknown key (with a close match if there
    is one) and a missing required key."""
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"must be a mapping, got {type(data).__name__}")
    known = list(known)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
            raise ConfigError(join_path(path, str(key)), f"unknown {what} ({hint})")
    for key in required:
        if key not in data:
            raise ConfigError(join_path(path, key), "is required")
    return dict(data)


def integer(value: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(path, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        shown = f", got {value:,}" if value < 10**30 else ""  # a 30-digit number helps nobody
        raise ConfigError(path, f"must be <= {maximum:,}{shown}")
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {value!r}")
    return value


def number(value: Any, path: str, low: float | None = None, high: float | None = None, *, open_low: bool = False,
           open_high: bool = False) -> float:  # fmt: skip
    """A real number within [low, high] (either end open or absent)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"must be a number, got {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        raise ConfigError(path, "must be a finite number" + (f", got {value!r}" if isinstance(value, float) else ""))
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        raise ConfigError(path, f"must be {_interval(low, high, open_low, open_high)}, got {value}")
    return float(value)


def _interval(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if high is None:
        return f"{'>' if open_low else '>='} {low:g}"
    if low is None:
        return f"{'<' if open_high else '<='} {high:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def one_of(value: Any, choices: Iterable[Any], path: str, what: str = "") -> Any:
    """`value` if it is one of `choices`; else "must be one of ..." (or "unknown <what> ...")."""
    choices = list(choices)
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        listed = ", ".join(str(c) for c in choices)
        if what:
            raise ConfigError(path, f"unknown {what} {value!r}" + (hint or f" (known: {listed})"))
        raise ConfigError(path, f"must be one of {listed}, got {value!r}{hint}")
    return value


def name_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, f"must be a list of names, got {value!r}")
    return value
