"""Find, load and validate catalog YAML files; look entries up by id.

A catalog directory holds any number of `*.yaml` files, each with optional top-level lists
`accelerators`, `systems` and `models`, plus `calibration.yaml` (fitted performance
parameters, written by `planner calibrate`). Users add their own files or directories on top of
the shipped catalog; ids must be unique across all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.errors import InputError, describe_validation_error
from planner.schema import Accelerator, CalibrationFile, Catalog, CatalogFile, Model, System
from planner.yamlio import read_yaml

CALIBRATION_FILE = "calibration.yaml"


def default_catalog_dir() -> Path:
    """The shipped catalog (`catalogs/` beside the package), or $PLANNER_CATALOG_DIR."""
    env = os.environ.get("PLANNER_CATALOG_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "catalogs"


def catalog_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their YAML files, sorted for a deterministic load order; a file
    reached twice (a shipped file named again, a directory and one of its files) is read once,
    where its ids had been reported as duplicates of themselves."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.y*ml") if p.name != CALIBRATION_FILE))
        elif path.exists():
            files.append(path)
        else:
            raise InputError([f"{path}: catalog file or directory not found"])
    once: dict[Path, Path] = {}
    for file in files:
        once.setdefault(file.resolve(), file)
    return list(once.values())


def _parse_file(path: Path) -> tuple[CatalogFile | None, list[str]]:
    data = read_yaml(path)
    if data is None:
        return CatalogFile(), []
    if not isinstance(data, dict):
        return None, [
            f"{path}: (top level): found {type(data).__name__}; expected a mapping with "
            "accelerators, systems and/or models"
        ]
    try:
        return CatalogFile.model_validate(data), []
    except ValidationError as exc:
        return None, describe_validation_error(exc, path, data)


def _calibration_stacks(path: Path) -> dict[str, dict[str, Any]]:
    """The stacks of a `calibration.yaml`, validated (`schema.CalibrationFile`): the
    parameters each gives."""
    data = read_yaml(path)
    try:
        parsed = CalibrationFile.model_validate({} if data is None else data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, path, data)) from None
    return {stack: entry.model_dump(exclude_none=True) for stack, entry in parsed.stacks.items()}


def load_catalog(extra: Iterable[Path] = (), include_default: bool = True) -> Catalog:
    """Load and cross-check the shipped catalog plus `extra` files or directories."""
    roots = ([default_catalog_dir()] if include_default else []) + [Path(p) for p in extra]
    problems: list[str] = []
    accelerators: dict[str, Accelerator] = {}
    systems: dict[str, System] = {}
    models: dict[str, Model] = {}
    origin: dict[tuple[str, str], Path] = {}
    for path in catalog_files(roots):
        try:
            parsed, errors = _parse_file(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(errors)
        if parsed is None:
            continue
        for kind, entries, table in (
            ("accelerators", parsed.accelerators, accelerators),
            ("systems", parsed.systems, systems),
            ("models", parsed.models, models),
        ):
            for entry in entries:
                key = (kind, entry.id)
                if key in origin:
                    problems.append(
                        f"{path}: {kind}.{entry.id}: duplicate id; already defined in "
                        f"{origin[key]}"
                    )
                    continue
                origin[key] = path
                table[entry.id] = entry  # type: ignore[assignment]
    for system in systems.values():
        problems.extend(f"{origin[('systems', system.id)]}: systems.{system.id}.{mistake}"
                        for mistake in system_mistakes(system, accelerators))
    if problems:
        raise InputError(problems)
    calibration: dict[str, Any] = {}
    for root in roots:
        calib_path = root / CALIBRATION_FILE if root.is_dir() else None
        if calib_path is not None and calib_path.exists():
            calibration.update(_calibration_stacks(calib_path))
    return Catalog(
        accelerators=accelerators, systems=systems, models=models, calibration=calibration
    )


def system_mistakes(system: System, accelerators: dict[str, Accelerator]) -> list[str]:
    """`FIELD: found ...; expected ...` for what a system gets wrong against the accelerators:
    an unknown accelerator id, or a power below its accelerators' TDP."""
    if system.accelerator not in accelerators:
        return [f"accelerator: found '{system.accelerator}'; expected one of the accelerator ids "
                f"({', '.join(sorted(accelerators)) or 'none loaded'})"]
    tdp_w = accelerators[system.accelerator].tdp_w
    if tdp_w is not None and system.power_kw_max is not None and \
            system.accelerators * tdp_w > system.power_kw_max * 1000:
        return [f"power_kw_max: found {system.power_kw_max:g} kW; expected at least its "
                f"accelerators' TDP, {system.accelerators} × {tdp_w:g} W = "
                f"{system.accelerators * tdp_w / 1000:g} kW"]
    return []


@lru_cache(maxsize=8)
def _cached(extra: tuple[str, ...]) -> Catalog:
    return load_catalog([Path(p) for p in extra])


def get_catalog(extra: Iterable[Path | str] = ()) -> Catalog:
    """Cached `load_catalog` for callers that load the same catalog many times."""
    return _cached(tuple(str(p) for p in extra))


def lookup(catalog: Catalog, kind: str, entry_id: str) -> Any:
    """Find an entry by id; an unknown id is an InputError listing near matches."""
    table: dict[str, Any] = getattr(catalog, kind)
    if entry_id in table:
        return table[entry_id]
    import difflib

    near = difflib.get_close_matches(entry_id, list(table), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise InputError([f"unknown {kind[:-1]} id '{entry_id}'{hint}"])


def accelerator_of(catalog: Catalog, system: System) -> Accelerator:
    return catalog.accelerators[system.accelerator]
