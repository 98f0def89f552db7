"""Read a problem file (+ forecast CSV, CLI overrides), resolve catalog references.

The result, `Inputs`, is everything later steps need and nothing they must look up again:
the validated problem, the catalog, the systems allowed, and demand per (workload, period).
"""

from __future__ import annotations

import copy
import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.catalog import catalog_files, default_catalog_dir, load_catalog
from planner.errors import InputError, describe_validation_error
from planner.schema import (
    MAX_DEMAND_TOK_S,
    MAX_POWER_MW,
    MIN_DEMAND_TOK_S,
    Catalog,
    Problem,
    SiteKind,
    System,
)
from planner.units import UnitError, parse_quantity
from planner.yamlio import path_trouble, read_text, read_yaml


@dataclass(frozen=True)
class Overrides:
    """What the CLI may change without editing the problem file."""

    power_budget: Sequence[str] = ()
    """`20MW` (the only owned site) or `SITE=20MW`, repeatable."""
    demand_csv: Path | None = None
    """Forecast CSV replacing the problem's demand."""
    vendors: Sequence[str] = ()
    """Restrict to these vendors."""
    systems: Sequence[str] = ()
    """Restrict to these system ids."""
    assignments: Sequence[tuple[str, Any]] = ()
    """(dotted path, value) pairs applied to the raw YAML before validation (sweeps)."""


@dataclass(frozen=True)
class Inputs:
    """A validated problem with its catalog references resolved."""

    problem: Problem
    path: Path
    catalog: Catalog
    systems: list[System]
    """Systems allowed, in a stable order."""
    demand: dict[tuple[str, str], float]
    """Peak output tokens/s per (workload, period), before headroom."""
    site_demand: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """Part of the demand that must be served at a given site: (workload, period, site)."""
    measured_csv: Path | None = None
    """Measured-performance CSV, if the problem names one."""
    notes: list[str] = field(default_factory=list)
    """What the plan should say about how the inputs were read (periods given no demand)."""
    held: list[System] = field(default_factory=list)
    """Systems of the existing fleet that are not allowed (not in `systems:`, or filtered out
    by vendor or system): owned already, so they stay and serve where they stand, but none is
    bought."""

    @property
    def period_ids(self) -> list[str]:
        return [p.id for p in self.problem.periods]

    @property
    def fleet_systems(self) -> list[System]:
        """The allowed systems, then the held ones: every system a plan may run."""
        return [*self.systems, *self.held]


def load_problem(path: Path | str, overrides: Overrides | None = None) -> Inputs:
    """Read, override, validate and resolve a problem file. Raises InputError (exit 2)."""
    path = Path(path)
    overrides = overrides or Overrides()
    data = read_yaml(path)
    if data is None:
        raise InputError([f"{path}: (top level): the file is empty; expected a mapping with name, "
                          "periods, sites and workloads"])
    if not isinstance(data, dict):
        raise InputError([f"{path}: (top level): found {type(data).__name__}; expected a mapping"])
    data = copy.deepcopy(data)
    for dotted, value in overrides.assignments:
        _assign(data, dotted, value, path)
    _apply_power_budget(data, overrides.power_budget, path)
    try:
        problem = Problem.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, path, data)) from None

    catalog = load_catalog(_catalog_paths(problem, path))
    systems = _allowed_systems(problem, catalog, overrides, path)
    _check_references(problem, catalog, path)

    demand = {(w.id, p.id): 0.0 for w in problem.workloads for p in problem.periods}
    site_demand: dict[tuple[str, str, str], float] = {}
    forecast = overrides.demand_csv or (
        _relative(path, problem.forecast) if problem.forecast else None
    )
    notes: list[str] = []
    unseen = [f"{path}: workloads[{i}:{w.id}].demand: found {w.demand!r}; expected a CSV file "
              f"(not found: {_relative(path, w.demand)})" for i, w in enumerate(problem.workloads)
              if isinstance(w.demand, str) and not _exists(_relative(path, w.demand))]
    if unseen:  # checked with a forecast too, which would replace what they say
        raise InputError(unseen)
    if forecast is not None:
        forecast_demand, site_demand = read_forecast(Path(forecast), problem)
        notes = _undemanded(f"forecast {Path(forecast).name} has no row", problem,
                            forecast_demand)
        demand = {key: forecast_demand.get(key, 0.0) for key in demand}
    else:
        given = {(w.id, period): rate for w in problem.workloads
                 if isinstance(w.demand, dict) for period, rate in w.demand.items()}
        for w in problem.workloads:
            if isinstance(w.demand, str):  # a CSV of this workload alone
                rows, sites = read_forecast(_relative(path, w.demand), problem, workload=w.id)
                given.update(rows)
                site_demand.update(sites)
        demand.update(given)
        notes = _undemanded(f"{path.name} gives no demand", problem, given)
        missing = [(i, w.id) for i, w in enumerate(problem.workloads) if w.demand is None]
        if missing:
            raise InputError(
                [
                    f"{path}: workloads[{i}:{w}].demand: required field is missing (give demand "
                    "per period, or a `forecast:` CSV)"
                    for i, w in missing
                ]
            )
    measured = _relative(path, problem.performance) if problem.performance else None
    if measured is not None and not _exists(measured):
        raise InputError([f"{path}: performance: file not found: {measured}"])
    allowed = {s.id for s in systems}
    held = [catalog.systems[sid] for sid in sorted({e.system for e in problem.existing})
            if sid not in allowed and sid in catalog.systems]
    outside = [s for s in overrides.systems if problem.systems is not None
               and s not in problem.systems]
    if outside:  # asked for by name: planned with, but the file did not list them
        notes.append(f"--system {', '.join(dict.fromkeys(outside))}: not among {path.name}'s "
                     "systems; planned with as asked")
    return Inputs(problem, path, catalog, systems, demand, site_demand, measured, notes, held)


def _undemanded(what: str, problem: Problem, demand: dict[tuple[str, str], float]) -> list[str]:
    """A note per workload for the periods given no demand: it is 0 there (a forecast replaces
    the problem file's demand), which a forgotten row or key would silently be."""
    notes = []
    for w in problem.workloads:
        missing = [p.id for p in problem.periods if (w.id, p.id) not in demand]
        if missing:
            notes.append(f"{what} for {w.id} in {', '.join(missing)}: no demand there")
    return notes


def _catalog_paths(problem: Problem, path: Path) -> list[Path]:
    """The problem's `catalog:` entries, checked here so that a mistake names `catalog[i]`.

    A directory holding the problem file itself is expanded without it (the problem is not a
    catalog file); naming the problem file itself is an error; a file or directory listed twice
    (or the shipped catalog) is loaded once.
    """
    errors: list[str] = []
    paths: list[Path] = []
    seen = {default_catalog_dir().resolve()}  # loaded anyway
    for i, entry in enumerate(problem.catalog):
        resolved = _relative(path, entry)
        try:
            resolved.stat()
            canonical = resolved.resolve(strict=True)
        except FileNotFoundError:
            canonical = None
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL, a name too long, a loop
            errors.append(f"{path}: catalog[{i}]: found {entry!r}; expected a catalog file or "
                          f"directory (cannot use this path: {path_trouble(exc)})")
            continue
        if canonical is not None and canonical in seen:
            continue  # listed twice: load once
        seen.add(canonical or resolved)
        if canonical is None:
            errors.append(f"{path}: catalog[{i}]: found {entry!r}; expected a catalog file or "
                          f"directory (not found: {resolved})")
        elif resolved.is_dir() and path.resolve().parent == canonical:
            paths.extend(f for f in catalog_files([resolved]) if f.resolve() != path.resolve())
        elif canonical == path.resolve():
            errors.append(f"{path}: catalog[{i}]: found {entry!r}, the problem file itself; expected "
                          "a catalog file or directory")
        else:
            paths.append(resolved)
    if errors:
        raise InputError(errors)
    return paths


def _exists(path: Path) -> bool:
    """Whether `path` exists; a path the system cannot use (a NUL byte, a name too long, a
    symlink loop) does not."""
    try:
        path.stat()
    except (OSError, ValueError):
        return False
    return True


def _relative(problem_path: Path, other: str) -> Path:
    p = Path(other)
    return p if p.is_absolute() else problem_path.parent / p


def _assign(data: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    """Set `a.b.c` in nested YAML data; list items are addressed by their `id` or index."""
    keys = dotted.split(".")
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            match = [x for x in node if isinstance(x, dict) and x.get("id") == key]
            if match:
                index = node.index(match[0])
            elif key.isdigit() and int(key) < len(node):
                index = int(key)
            else:
                ids = [str(x["id"]) for x in node if isinstance(x, dict) and "id" in x]
                known = f"ids: {', '.join(ids)}" if ids else f"indexes 0 to {len(node) - 1}"
                raise InputError(
                    [f"--set {dotted}: no item '{key}' in {'.'.join(keys[:i])} ({known})"]
                )
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if key not in node or node[key] is None:
                    node[key] = {}
                node = node[key]
        else:
            raise InputError([f"--set {dotted}: '{'.'.join(keys[:i])}' is not a mapping or list"])


def _apply_power_budget(data: dict[str, Any], budgets: Sequence[str], path: Path) -> None:
    """Set `power_mw` of the owned sites named by `--power-budget SITE=20MW` (or of the only
    owned site by `--power-budget 20MW`); each value is checked here, so that a message names
    the option rather than the problem file's field."""
    sites = data.get("sites")
    if not budgets:
        return
    if not isinstance(sites, list):
        raise InputError([f"{path}: sites: expected a list of sites to apply --power-budget to"])
    owned = [s for s in sites if isinstance(s, dict) and s.get("kind", "owned") == "owned"]
    ids = ", ".join(str(s.get("id")) for s in owned)
    given: dict[str, str] = {}  # site id: the option that set it
    for text in budgets:
        site_id, equals, amount = text.rpartition("=")
        try:
            mw = parse_quantity(amount, "MW")
        except UnitError as exc:
            raise InputError([f"--power-budget {text}: {exc}"]) from None
        if not 0 <= mw <= MAX_POWER_MW:
            raise InputError([f"--power-budget {text}: found {mw:g} MW; expected a power from 0 "
                              f"to {MAX_POWER_MW:g} MW"])
        if not owned:
            raise InputError([f"--power-budget {text}: the problem has no owned site, and cloud "
                              "sites have no power budget"])
        if equals and not site_id:
            raise InputError([f"--power-budget {text}: no site before '='; expected SITE={amount}"
                              f" with SITE one of {ids}"])
        if site_id:
            targets = [s for s in owned if s.get("id") == site_id]
            if not targets:
                raise InputError(
                    [f"--power-budget {text}: unknown owned site '{site_id}'; expected one of {ids}"]
                )
        else:
            if len(owned) != 1:
                raise InputError(
                    [f"--power-budget {text}: {len(owned)} owned sites ({ids}); write SITE={amount}"]
                )
            targets = owned
        for site in targets:
            if str(site.get("id")) in given:
                raise InputError([f"--power-budget {text}: site {site.get('id')} already has a "
                                  f"budget ({given[str(site.get('id'))]}); expected one per site"])
            given[str(site.get("id"))] = text
            site["power_mw"] = mw


def _allowed_systems(
    problem: Problem, catalog: Catalog, overrides: Overrides, path: Path
) -> list[System]:
    errors: list[str] = []
    ids = problem.systems if problem.systems is not None else sorted(catalog.systems)
    for i, sid in enumerate(ids):
        if sid not in catalog.systems:
            errors.append(_unknown(path, f"systems[{i}]", sid, catalog.systems))
    for sid in overrides.systems:
        if sid not in catalog.systems:
            errors.append(_unknown("--system", "", sid, catalog.systems))
    vendors = {s.vendor for s in catalog.systems.values()}
    known = ", ".join(sorted(vendors))
    for v in overrides.vendors:
        if v.lower() not in vendors:
            errors.append(f"--vendor {v}: unknown vendor; expected one of {known}")
    for i, v in enumerate(problem.policy.vendors or []):
        if v.lower() not in vendors:
            errors.append(f"{path}: policy.vendors[{i}]: found '{v}'; expected a vendor, one of {known}")
    if errors:
        raise InputError(errors)
    chosen = [catalog.systems[s] for s in ids]
    if overrides.systems:
        chosen = [catalog.systems[s] for s in dict.fromkeys(overrides.systems)]  # each once
    allowed_vendors = {v.lower() for v in overrides.vendors} or None
    if problem.policy.vendors:
        policy_vendors = {v.lower() for v in problem.policy.vendors}
        allowed_vendors = policy_vendors if allowed_vendors is None else allowed_vendors & policy_vendors
    if allowed_vendors is not None:
        chosen = [s for s in chosen if s.vendor in allowed_vendors]
    if not chosen:
        raise InputError([f"{path}: systems: no system left after the vendor/system filters"])
    return chosen


def _unknown(path: Path | str, field_path: str, value: str, known: dict[str, Any]) -> str:
    import difflib

    near = difflib.get_close_matches(value.lower(), list(known), n=3, cutoff=0.5)  # ids are lowercase
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    where = f"{path}: {field_path}: " if field_path else f"{path} "
    return f"{where}found '{value}'; expected a catalog id{hint}"


def _check_references(problem: Problem, catalog: Catalog, path: Path) -> None:
    errors: list[str] = []
    for i, w in enumerate(problem.workloads):
        if w.model not in catalog.models:
            errors.append(_unknown(path, f"workloads[{i}:{w.id}].model", w.model, catalog.models))
        elif too_long := beyond_context(catalog, w.model, w.input_tokens, w.output_tokens):
            errors.append(f"{path}: workloads[{i}:{w.id}]: {too_long}")
    for i, e in enumerate(problem.existing):
        if e.system not in catalog.systems:
            errors.append(_unknown(path, f"existing[{i}].system", e.system, catalog.systems))
        elif problem.site(e.site).kind == SiteKind.cloud:
            errors.append(f"{path}: existing[{i}].site: '{e.site}' is a cloud site; expected an owned site")
    for sid in problem.policy.max_purchases or {}:
        if sid not in catalog.systems:
            errors.append(_unknown(path, "policy.max_purchases", sid, catalog.systems))
    if errors:
        raise InputError(errors)


def beyond_context(catalog: Catalog, model: str, input_tokens: int, output_tokens: int) -> str:
    """What is wrong when a request of these lengths does not fit `model`'s context window
    (no deployment could serve it), else ''."""
    context = catalog.models[model].max_context_tokens
    if input_tokens + output_tokens <= context:
        return ""
    return (f"input_tokens + output_tokens = {input_tokens + output_tokens:,}; expected at most "
            f"{model}'s context of {context:,} tokens")


def read_forecast(
    path: Path, problem: Problem, workload: str | None = None
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str, str], float]]:
    """Read `period,workload,output_tokens_per_s` (or `requests_per_s`) [,site] rows; for one
    `workload`'s own CSV (`demand: FILE.csv`) the workload column may be left out, and where
    it is given it must name that workload.

    Requests/s are turned into output tokens/s with the workload's output tokens per request.
    Rows for the same (period, workload[, site]) are an error, not silently summed. The demand
    has a key only where there are rows.
    """
    text = read_text(path, "a forecast CSV", "forecast file not found",
                     encoding="utf-8-sig")  # -sig: Excel's BOM
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
        rows = [(reader.line_num, row) for row in reader]  # line_num: blank lines count
        header = [str(c).strip() for c in reader.fieldnames or []]
    except csv.Error as exc:
        raise InputError([f"{path}: cannot read forecast CSV ({exc})"]) from None
    columns = set(header)
    errors: list[str] = []
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:  # csv.DictReader keeps the last such column: the others' cells would be lost
        raise InputError([f"{path}: line 1 (header): column '{c}' appears more than once; "
                          "expected each column once" for c in repeated])
    if not rows:
        raise InputError([f"{path}: no rows; expected a header period,workload,output_tokens_per_s "
                          "and one row per period and workload"])
    rate_column = "output_tokens_per_s" if "output_tokens_per_s" in columns else "requests_per_s"
    if {"output_tokens_per_s", "requests_per_s"} <= columns:
        errors.append(f"{path}: line 1 (header): both output_tokens_per_s and requests_per_s; "
                      "expected one of them")
    for required in ("period", "workload") if workload is None else ("period",):
        if required not in columns:
            errors.append(f"{path}: line 1 (header): missing column '{required}'")
    if rate_column not in columns:
        errors.append(
            f"{path}: line 1 (header): missing column 'output_tokens_per_s' (or 'requests_per_s')"
        )
    unknown = columns - {"period", "workload", "site", "output_tokens_per_s", "requests_per_s"}
    if unknown:
        errors.append(
            f"{path}: line 1 (header): unknown column(s) {', '.join(sorted(unknown))}; expected "
            "period, workload, output_tokens_per_s or requests_per_s, and optional site"
        )
    if errors:
        raise InputError(errors)
    periods = [p.id for p in problem.periods]
    workloads = {w.id: w for w in problem.workloads}
    sites = {s.id for s in problem.sites}
    demand: dict[tuple[str, str], float] = {}  # only what has rows: `_undemanded`
    site_demand: dict[tuple[str, str, str], float] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for line, raw in rows:
        where = f"{path}: line {line}"
        if None in raw:
            errors.append(f"{where}: found {len(header) + len(raw[None])} cells; expected "
                          f"{len(header)}, one per header column")
            continue
        if None in raw.values():
            cells = sum(v is not None for v in raw.values())
            errors.append(f"{where}: found {cells} cells; expected {len(header)}, one per header column")
            continue
        row = {str(k).strip(): v.strip() if isinstance(v, str) else v for k, v in raw.items()}
        period, site = row.get("period"), row.get("site") or ""
        named = row.get("workload", workload)
        if workload is not None and named != workload:
            errors.append(f"{where}: workload: found '{named}'; expected '{workload}' (this is "
                          f"workload {workload}'s demand) or no workload column")
            continue
        if period not in periods:
            errors.append(f"{where}: period: found '{period}'; expected one of {', '.join(periods)}")
            continue
        if named not in workloads:
            errors.append(
                f"{where}: workload: found '{named}'; expected one of {', '.join(workloads)}"
            )
            continue
        if site and site not in sites:
            errors.append(f"{where}: site: found '{site}'; expected one of {', '.join(sorted(sites))}")
            continue
        allowed = workloads[named].sites
        if site and allowed is not None and site not in allowed:
            errors.append(f"{where}: site: found '{site}', where workload {named} may not be "
                          f"served; expected one of its sites, {', '.join(allowed)}")
            continue
        try:
            value = float(row.get(rate_column) or "")
        except ValueError:
            errors.append(f"{where}: {rate_column}: found '{row.get(rate_column)}'; expected a number")
            continue
        if not math.isfinite(value) or value < 0:
            errors.append(f"{where}: {rate_column}: found {value}; expected a finite number ≥ 0")
            continue
        tokens = value * (workloads[named].output_tokens if rate_column == "requests_per_s" else 1)
        if tokens > MAX_DEMAND_TOK_S or 0 < tokens < MIN_DEMAND_TOK_S:
            errors.append(f"{where}: {rate_column}: found {value:g}; expected 0 or from "
                          f"{MIN_DEMAND_TOK_S:g} to {MAX_DEMAND_TOK_S:g} output tokens/s")
            continue
        key = (period, named, site)
        if key in seen:
            errors.append(f"{where}: duplicate row for period {period}, workload {named}"
                          + (f", site {site}" if site else "") + f" (first at line {seen[key]})")
            continue
        seen[key] = line
        if rate_column == "requests_per_s":
            value *= workloads[named].output_tokens
        demand[(named, period)] = demand.get((named, period), 0.0) + value
        if site:
            site_demand[(named, period, site)] = value
    if errors:
        raise InputError(errors)
    return demand, site_demand
