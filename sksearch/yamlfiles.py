"""Reading YAML the way every file of the tool is read: safely, with numbers as researchers write
them, and every problem a ConfigError that names the file (specs, spaces, recipes, sweep files)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sksearch.validation import ConfigError

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """YAML as researchers write numbers: `5e-4` and `1e6` are floats (YAML 1.2), not strings; a key
    written twice in one mapping is refused (a safe loader otherwise keeps the later one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges; its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base loader says so
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Safe-load YAML (numbers in scientific notation included); a syntax error becomes a
    ConfigError with its line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise ConfigError("", "not valid YAML (nested too deeply)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "syntax error"
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError("", f"not valid YAML ({problem}{where})") from None


def read_yaml_file(path: str | Path, parse: Callable[[Any], T]) -> T:
    """Read a YAML file and `parse` its data; every problem is a ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), f"cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), f"is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                          f"{error.start}); a YAML file must be") from None  # fmt: skip
    try:
        return parse(parse_yaml(text))
    except ConfigError as error:
        raise error.in_file(path) from None
