"""Row filters (`results --where`) parsed by a small grammar, so user text never reaches `eval`.

The grammar: a comparison is `column OP literal` (or literal OP column, or column OP column), with
OP one of == != < <= > >=, `in` / `not in` a list of literals, chained comparisons (`4 < gmacs <
5`) allowed; a true/false column may stand alone (`attention`); these combine with `and`, `or`,
`not` and parentheses. Literals are numbers, quoted strings, True, False and None. Python's `ast`
only parses the text (it runs nothing); the walk below accepts those node kinds and refuses every
other one, so an attribute, a call, an `@variable` or a subscript is a refusal, never an evaluation.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

import pandas as pd

from sksearch.validation import ConfigError

MAX_LENGTH = 2000  # a condition longer than this is not typed by a person
_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_EXAMPLE = "write one such as \"status == 'completed' and gmacs < 4.5\""


def filter_rows(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows of `frame` for which the condition `where` holds (a missing value never matches)."""
    return frame[_mask(frame, _parse(where))]


def _parse(where: str) -> ast.expr:
    if len(where) > MAX_LENGTH:
        raise ConfigError("--where", f"is {len(where)} characters long; at most {MAX_LENGTH}")
    try:
        return ast.parse(where.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ConfigError("--where", f"{_shown(where)} is not a condition; {_EXAMPLE}") from None


def _mask(frame: pd.DataFrame, node: ast.expr, depth: int = 0) -> pd.Series:
    if depth > 100:
        raise ConfigError("--where", "is nested too deeply")
    if isinstance(node, ast.BoolOp):
        masks = [_mask(frame, value, depth + 1) for value in node.values]
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        result = masks[0]
        for mask in masks[1:]:
            result = combine(result, mask)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_mask(frame, node.operand, depth + 1)
    if isinstance(node, ast.Compare):
        return _compare(frame, node)
    if isinstance(node, ast.Name):  # a true/false column alone: `attention`, `not se`
        column = _operand(frame, node)
        if pd.api.types.is_bool_dtype(column) or set(column.dropna().unique()) <= {True, False}:
            return column.fillna(False).astype(bool)
        raise ConfigError("--where", f"column {node.id!r} is not true/false; compare it, e.g. {node.id} == ...")
    raise ConfigError("--where", f"{_shown(ast.unparse(node))} is not a comparison; {_EXAMPLE}")


def _compare(frame: pd.DataFrame, node: ast.Compare) -> pd.Series:
    result = pd.Series(True, index=frame.index)
    left = node.left
    for op, right in zip(node.ops, node.comparators, strict=True):
        result &= _one_comparison(frame, left, op, right)
        left = right
    return result


def _one_comparison(frame: pd.DataFrame, left: ast.expr, op: ast.cmpop, right: ast.expr) -> pd.Series:
    if isinstance(op, ast.In | ast.NotIn):
        column, choices = _operand(frame, left), _literal_list(right)
        if not isinstance(column, pd.Series):
            raise ConfigError("--where", f"the left of 'in' must be a column, got {_shown(ast.unparse(left))}")
        found = column.isin(choices)
        return ~found if isinstance(op, ast.NotIn) else found
    if type(op) not in _COMPARISONS:
        raise ConfigError("--where", f"unknown comparison in {_shown(ast.unparse(op))}")
    first, second = _operand(frame, left), _operand(frame, right)
    if not isinstance(first, pd.Series) and not isinstance(second, pd.Series):
        raise ConfigError("--where", "each comparison needs a column on one side")
    try:
        outcome = _COMPARISONS[type(op)](first, second)
    except (TypeError, ValueError):
        shown = ast.unparse(ast.Compare(left=left, ops=[op], comparators=[right]))
        raise ConfigError("--where", f"{_shown(shown)} compares values of different kinds") from None
    return pd.Series(outcome, index=frame.index).fillna(False).astype(bool)


def _operand(frame: pd.DataFrame, node: ast.expr) -> pd.Series | Any:
    """A column (a bare name) or a literal."""
    if isinstance(node, ast.Name):
        if node.id not in frame:
            raise ConfigError("--where", f"no column {node.id!r} in the results table")
        return frame[node.id]
    return _literal(node)


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool | type(None)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _literal(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    raise ConfigError("--where", f"{_shown(ast.unparse(node))} is neither a column nor a literal")


def _literal_list(node: ast.expr) -> list[Any]:
    if not isinstance(node, ast.List | ast.Tuple | ast.Set):
        raise ConfigError("--where", f"'in' needs a list of literals, got {_shown(ast.unparse(node))}")
    return [_literal(element) for element in node.elts]


def _shown(text: str) -> str:
    """The offending text, cut short so that the error stays one line."""
    text = " ".join(text.split())
    return repr(text if len(text) <= 80 else text[:77] + "...")
