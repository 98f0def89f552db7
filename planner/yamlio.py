"""Read YAML and CSV input files; every failure becomes an InputError naming the file."""

from __future__ import annotations

import math
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError

_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeys:
    """Mixin for a safe loader: a key given twice in one mapping is an error, not 'last wins'."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the mapping's own keys
            key = self.construct_object(key_node)  # type: ignore[attr-defined]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _FastLoader(_UniqueKeys, _FAST):  # type: ignore[valid-type,misc]
    pass


class _SlowLoader(_UniqueKeys, yaml.SafeLoader):
    pass


_AS_WRITTEN = re.compile(r"[-+]?(0[0-9_]+|[0-9][0-9_]*(:[0-5]?[0-9])+)")
"""What YAML 1.1 reads as an octal (`07`, `02027`) or base-60 (`1:30`) int: kept as the text
written, so ids like month `07` keep their name (02027 had become period 1047), and a number
field reads it as the decimal a person meant."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """An int, or inf past Python's 4,300 digits (int() refuses them): beyond every limit a
    field has, so validation names the field instead of the loader crashing. A leading zero or
    a colon keeps the text (`_AS_WRITTEN`)."""
    if _AS_WRITTEN.fullmatch(node.value):
        return node.value
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        return math.inf


for _loader in (_FastLoader, _SlowLoader):
    _loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_value(text: str) -> Any:
    """One YAML value given on the command line (`--set PATH=V1,V2`), with the file loaders'
    rules."""
    return yaml.load(text, Loader=_SlowLoader)


MAX_DEPTH = 32
"""Deepest nesting of lists and mappings a YAML file may have: the shipped problems, catalogs
and bench files nest five levels at most; a deeper one is a mistake, and Python's own recursion
fails past a few hundred."""


def read_text(path: Path, expected: str, missing: str = "file not found",
              encoding: str = "utf-8") -> str:
    """The text of the regular file at `path`. Every failure is an InputError naming the file:
    `missing` when there is none, `expected` (e.g. "a YAML file") after a directory, a pipe
    or a device (reading a FIFO waits for a writer forever, /dev/zero fills the memory), and
    what the system says of a path it cannot use (a NUL byte, a name too long, a symlink
    loop) or of bytes that are not text."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError([f"{path}: {missing}"]) from None
    except (OSError, ValueError) as exc:
        raise InputError([f"{path}: cannot read ({path_trouble(exc)})"]) from None
    if stat.S_ISDIR(mode):
        raise InputError([f"{path}: is a directory; expected {expected}"])
    if not stat.S_ISREG(mode):
        raise InputError([f"{path}: is not a regular file (a pipe or a device); expected "
                          f"{expected}"])
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise InputError([f"{path}: byte {exc.start}: not UTF-8 text; expected {expected}"]
                         ) from None
    except OSError as exc:
        raise InputError([f"{path}: cannot read ({path_trouble(exc)})"]) from None


def path_trouble(exc: Exception) -> str:
    """What the system said of a path it could not use ("Too many levels of symbolic links",
    "embedded null byte")."""
    return getattr(exc, "strerror", None) or str(exc)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors name the file, line and column; nesting deeper than
    MAX_DEPTH is refused."""
    text = read_text(path, "a YAML file")
    too_deep = InputError([f"{path}: lists or mappings nested more than {MAX_DEPTH} levels deep; "
                           "expected a problem or catalog file"])
    if _deeper_than(text, MAX_DEPTH):
        raise too_deep
    try:
        return _parse(path, text)
    except RecursionError:  # a depth the event scan could not see: not expected, but never a crash
        raise too_deep from None


def _parse(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastLoader)  # libyaml: ~8x faster than pure Python
    except yaml.YAMLError:
        pass
    try:  # the pure-Python parser words its errors better (it names the offending character)
        return yaml.load(text, Loader=_SlowLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([f"{path}: {where}YAML syntax error: {problem}"]) from None


def _deeper_than(text: str, levels: int) -> bool:
    """Whether lists and mappings nest more than `levels` deep in `text`, read from libyaml's
    events up to the first that does (loading such a file recursed past Python's limit at a
    thousand levels and crashed the interpreter at 100,000). Any other syntax error is left to
    `_parse`, which words it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_FastLoader):
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                depth += 1
                if depth > levels:
                    return True
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        # libyaml 0.2.5 as PyYAML 6.0.4 ships it stops at 1,000 flow levels while scanning
        # ahead, before it yields the events that go that deep
        return "maximum nesting depth" in str(exc)
    return False
