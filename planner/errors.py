"""Errors that become one clear message per problem and an exit code, never a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class PlannerError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 2


class InputError(PlannerError):
    """Invalid input: each item of `problems` is one line naming file, field, found, expected."""

    exit_code = 2

    def __init__(self, problems: Iterable[str]):
        self.problems = [_one_line(p) for p in problems]
        super().__init__("\n".join(self.problems))


def _one_line(text: str) -> str:
    """Control characters (a newline in a quoted id) escaped, so one problem stays one line."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u202a-\u202e]",
                  lambda m: repr(m[0])[1:-1], str(text))


class NoPlanError(PlannerError):
    """The problem is infeasible or the solver failed; `diagnosis` says why, `status` is the
    solve's status (infeasible, no_solution, unbounded, error)."""

    exit_code = 1

    def __init__(self, message: str, diagnosis: list[str] | None = None,
                 status: str = "infeasible"):
        self.diagnosis = diagnosis or []
        self.status = status
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


def _is_branch(item: Any) -> bool:
    """A pydantic union-member tag in a location, e.g. `dict[str,float]`, `function-after[...]` or
    `constrained-int` (an `int` with bounds)."""
    return isinstance(item, str) and (
        ("[" in item and "]" in item) or re.fullmatch(r"constrained-\w+|lax-or-strict", item) is not None
    )


_SCALAR_ONLY = ("enum", "literal_error", "int_parsing", "float_parsing", "bool_parsing")
"""Error types of a union member that expects a scalar: noise when the value is a list or mapping."""


def _drop_union_noise(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Of the errors from the members of one union, keep the informative ones.

    A value that fails every member of `float | dict[str, float]` yields one error per member; the
    "input should be a valid dictionary" of the member that does not apply is noise, so type
    mismatches are dropped whenever another member says something more specific.
    """
    groups: dict[tuple[Any, ...], list[ErrorDetails]] = {}
    for err in errors:
        tags = [i for i, item in enumerate(err["loc"]) if _is_branch(item)]
        if tags:
            groups.setdefault(tuple(err["loc"][: tags[0]]), []).append(err)
    drop: set[int] = set()
    for members in groups.values():
        def is_noise(e: ErrorDetails) -> bool:
            return e["type"].endswith("_type") or (
                e["type"] in _SCALAR_ONLY and isinstance(e.get("input"), dict | list)
            )

        specific = [e for e in members if not is_noise(e)]
        noise = [e for e in members if is_noise(e)]
        for e in noise if specific else noise[1:]:
            drop.add(id(e))
    return [e for e in errors if id(e) not in drop]


def expected_phrase(msg: str) -> str:
    """Pydantic's 'Input should be greater than 0' -> 'a value greater than 0'."""
    msg = msg.removeprefix("Input should be ").split(", unable to parse")[0]
    msg = re.sub(r"^(greater|less) than", r"a value \1 than", msg)
    msg = re.sub(r"^String should match", "a string matching", msg)
    msg = re.sub(r"^String should have", "a string with", msg)
    msg = re.sub(r"^List should have", "a list with", msg)
    msg = re.sub(r"^Dictionary should have", "a mapping with", msg)
    msg = re.sub(r" after validation, not \d+$", "", msg)
    msg = msg.replace("a string matching pattern '^[A-Za-z0-9][A-Za-z0-9._-]*$'",
                      "an id of letters, digits, '.', '_' and '-', starting with a letter or digit")
    msg = msg.replace("a string matching pattern '^[a-z0-9][a-z0-9._-]*$'",
                      "a lowercase id of letters a-z, digits, '.', '_' and '-', starting with a "
                      "letter or digit")
    return msg[0].lower() + msg[1:] if msg else msg


_CROSS_CHECK = re.compile(r"^[\w.\[\]:-]+: ")


def _cross_check(message: str, loc: list[Any], data: Any, prefix: str) -> str:
    """A cross-field check's `existing.0.site: unknown site …` (or `workloads.chat.demand: …`,
    items by index or id) with its path written as every other message writes it,
    `existing[0].site` or `workloads[0:chat].demand`; left as it is when it does not resolve."""
    dotted, _, rest = message.partition(": ")
    node, full = data, list(loc)
    for item in loc:
        node = node[item] if isinstance(node, list) and isinstance(item, int) else (
            node.get(item) if isinstance(node, dict) else None)
    for token in dotted.split("."):
        if isinstance(node, list):
            ids = [str(e.get("id")) if isinstance(e, dict) else None for e in node]
            index = int(token) if token.isdigit() and int(token) < len(node) else (
                ids.index(token) if token in ids else None)
            if index is None:
                full = []
                break
            full.append(index)
            node = node[index]
        else:
            full.append(token)
            node = node.get(token) if isinstance(node, dict) else None
    path = _path(full, data) if full else f"{_path(loc, data)}.{dotted}".removeprefix(
        "(top level).")
    if prefix:
        path = f"{prefix}.{path}"
    return f"{path}: {rest}"


def describe_validation_error(
    error: ValidationError, file: Path | str, data: Any, prefix: str = ""
) -> list[str]:
    """One line per pydantic error: `file: path: what was found; what is expected`."""
    lines: list[str] = []
    seen: set[str] = set()
    for err in _drop_union_noise(error.errors(include_url=False)):
        loc = [x for x in err["loc"] if not _is_branch(x)]
        path = _path(loc, data)
        if prefix:
            path = f"{prefix}.{path}" if path != "(top level)" else prefix
        kind = err["type"]
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        found = err.get("input")
        shown = repr(found) if not isinstance(found, dict | list) else type(found).__name__
        if isinstance(found, bool):
            shown = str(found).lower()  # as YAML writes it
        if len(shown) > 60:
            shown = shown[:57] + "..."
        if kind == "extra_forbidden":
            found_lines = [f"{file}: {path}: unknown key (check the spelling; `planner schema` lists "
                           "the allowed keys)"]
        elif kind == "missing":
            found_lines = [f"{file}: {path}: required field is missing"]
        elif kind in ("value_error", "assertion_error") and isinstance(found, dict | list):
            # a cross-field check: its message says what is wrong, often for several fields
            parts = msg.split("; ")
            if all(_CROSS_CHECK.match(p) for p in parts):
                found_lines = [f"{file}: {_cross_check(p, loc, data, prefix)}" for p in parts]
            else:
                found_lines = [f"{file}: {path}: {msg}"]
        elif kind in ("value_error", "assertion_error"):
            text = f"{path}: {msg}" if str(found) in msg else f"{path}: found {shown}; {msg}"
            found_lines = [f"{file}: {text}"]
        else:
            line = f"{file}: {path}: found {shown}; expected {expected_phrase(msg)}"
            if kind in ("float_parsing", "int_parsing") and isinstance(found, str) and re.fullmatch(
                r"\s*[-+]?[\d.]+\s*[a-zA-Z/%]+\s*", found
            ):
                line += " (write the number alone: the unit is part of the field name)"
            found_lines = [line]
        for line in found_lines:
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return lines
