"""Read YAML and CSV input files; every failure becomes an InputError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors name the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise InputError([f"{path}: is a directory; expected a YAML file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([f"{path}: cannot read ({exc})"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([f"{path}: {where}YAML syntax error: {problem}"]) from None
