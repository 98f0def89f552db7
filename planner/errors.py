"""Errors that become one clear message per problem and an exit code, never a traceback."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError


class PlannerError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 2


class InputError(PlannerError):
    """Invalid input: each item of `problems` is one line naming file, field, found, expected."""

    exit_code = 2

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NoPlanError(PlannerError):
    """The problem is infeasible or the solver failed; `diagnosis` says why."""

    exit_code = 1

    def __init__(self, message: str, diagnosis: list[str] | None = None):
        self.diagnosis = diagnosis or []
        super().__init__(message)


def _path(loc: Iterable[Any], data: Any) -> str:
    """Turn a pydantic location into a readable path, naming list items by their id."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and 0 <= item < len(node):
            entry = node[item]
            label = entry.get("id") if isinstance(entry, dict) else None
            parts.append(f"[{item}]" if label is None else f"[{item}:{label}]")
            node = entry
        else:
            if item in ("function-after", "function-before", "union", "tagged-union"):
                continue
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def describe_validation_error(
    error: ValidationError, file: Path | str, data: Any, prefix: str = ""
) -> list[str]:
    """One line per pydantic error: `file: path: what was found; what is expected`."""
    lines: list[str] = []
    seen: set[str] = set()
    for err in error.errors(include_url=False):
        loc = [x for x in err["loc"] if not (isinstance(x, str) and "[" in x and "]" in x)]
        path = _path(loc, data)
        if prefix:
            path = f"{prefix}.{path}" if path != "(top level)" else prefix
        kind = err["type"]
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            line = f"{file}: {path}: unknown key (check the spelling; allowed keys are listed by `planner schema`)"
        elif kind == "missing":
            line = f"{file}: {path}: required field is missing"
        else:
            found = err.get("input")
            shown = repr(found) if not isinstance(found, dict | list) else type(found).__name__
            if len(shown) > 60:
                shown = shown[:57] + "..."
            line = f"{file}: {path}: found {shown}; expected {msg[0].lower() + msg[1:]}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines
