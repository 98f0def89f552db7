"""What-ifs: one solve per point of a grid of `--set PATH=V1,V2,...` assignments.

A path addresses the problem file (`sites.dc1.electricity_usd_per_kwh`, `finance.discount_rate`,
`workloads.chat.slo.tpot_ms`; list items by id), the catalog (`catalog.systems.ID.price_usd`),
or the demand scale (`demand_scale`, multiplying every workload's demand).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from planner.catalog import system_mistakes
from planner.errors import InputError, NoPlanError, expected_phrase
from planner.problem import Inputs, Overrides, load_problem
from planner.schema import MAX_DEMAND_TOK_S, MIN_DEMAND_TOK_S
from planner.solve import SolveOptions, Status
from planner.units import json_number
from planner.yamlio import load_value

DEMAND_SCALE = "demand_scale"
CATALOG_PREFIX = "catalog.systems."


@dataclass(frozen=True)
class Axis:
    path: str
    values: list[Any]


def parse_sets(texts: Sequence[str]) -> list[Axis]:
    """The grid's axes, one per `--set`; a path given twice is an error (the grid would take
    one of them and drop the other)."""
    axes = [parse_set(text) for text in texts]
    paths = [a.path for a in axes]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise InputError([f"--set {p}: given more than once; expected each path once, with all "
                          "its values in one --set (PATH=V1,V2,...)" for p in repeated])
    return axes


def parse_set(text: str) -> Axis:
    """`PATH=V1,V2,...` → Axis; each value is read as a YAML scalar (numbers, 20MW, true)."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip() or not raw.strip():
        raise InputError([f"--set {text}: expected PATH=V1,V2,... (e.g. finance.discount_rate=0.06,0.1)"])
    values = []
    for item in raw.split(","):
        try:
            values.append(load_value(item.strip()))
        except yaml.YAMLError:
            values.append(item.strip())
    return Axis(path.strip(), values)


def _apply_catalog(inputs: Inputs, path: str, value: Any) -> Inputs:
    """Change one field of one catalog system for this point (re-validated)."""
    rest = path.removeprefix(CATALOG_PREFIX)
    system_id, _, field = rest.partition(".")
    system = inputs.catalog.systems.get(system_id)
    if system is None or not field:
        raise InputError([f"--set {path}: expected catalog.systems.<system id>.<field>; "
                          f"unknown system '{system_id}'"])
    data = system.model_dump()
    if field not in data:
        raise InputError([f"--set {path}: system has no field '{field}'"])
    if field == "id":
        raise InputError([f"--set {path}: a system's id names it; expected another field"])
    data[field] = value
    try:
        changed = type(system).model_validate(data)
    except ValidationError as exc:
        raise InputError([f"--set {path}={value}: found {value!r}; expected "
                          f"{expected_phrase(e['msg'])}" for e in exc.errors()]) from None
    mistakes = system_mistakes(changed, inputs.catalog.accelerators)
    if mistakes:
        raise InputError([f"--set {path}={value}: {m}" for m in mistakes])
    catalog = inputs.catalog.model_copy(update={"systems": {**inputs.catalog.systems,
                                                            system_id: changed}})
    return replace(inputs, catalog=catalog,
                   systems=[changed if s.id == system_id else s for s in inputs.systems],
                   held=[changed if s.id == system_id else s for s in inputs.held])


def point_inputs(problem: Path, overrides: Overrides, point: dict[str, Any]) -> Inputs:
    """Inputs of one grid point."""
    plain = [(p, v) for p, v in point.items() if p != DEMAND_SCALE and not p.startswith(CATALOG_PREFIX)]
    inputs = load_problem(problem, replace(overrides, assignments=(*overrides.assignments, *plain)))
    for path, value in point.items():
        if path.startswith(CATALOG_PREFIX):
            inputs = _apply_catalog(inputs, path, value)
    if DEMAND_SCALE in point:
        scale = _demand_scale(point[DEMAND_SCALE], [v for v in inputs.demand.values() if v > 0])
        inputs = replace(
            inputs,
            demand={k: v * scale for k, v in inputs.demand.items()},
            site_demand={k: v * scale for k, v in inputs.site_demand.items()},
        )
    return inputs


def _demand_scale(value: Any, demands_tok_s: list[float]) -> float:
    """`value` as a demand scale: a finite number ≥ 0 that keeps every demand (the positive
    ones given) within what a problem file may state (MIN_DEMAND_TOK_S to MAX_DEMAND_TOK_S)."""
    where = f"--set {DEMAND_SCALE}={value}"
    try:
        if isinstance(value, bool):
            raise ValueError
        scale = float(value)  # a str too: YAML reads 1e3 (no dot) as one
    except (TypeError, ValueError):
        raise InputError([f"{where}: expected a finite number ≥ 0"]) from None
    if not math.isfinite(scale) or scale < 0:
        raise InputError([f"{where}: expected a finite number ≥ 0"])
    peak, least = max(demands_tok_s, default=0.0), min(demands_tok_s, default=0.0)
    if scale * peak > MAX_DEMAND_TOK_S:
        raise InputError([f"{where}: the largest demand would be {scale * peak:.3g} output "
                          f"tokens/s; expected at most {MAX_DEMAND_TOK_S:g}, so a scale of at "
                          f"most {MAX_DEMAND_TOK_S / peak:.3g}"])
    if 0 < scale * least < MIN_DEMAND_TOK_S:
        raise InputError([f"{where}: the smallest demand would be {scale * least:.3g} output "
                          f"tokens/s; expected 0 or at least {MIN_DEMAND_TOK_S:g}, so a scale of "
                          f"0 or at least {MIN_DEMAND_TOK_S / least:.3g}"])
    return scale


def grid(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Cartesian product of the axes, first axis slowest."""
    return [dict(zip([a.path for a in axes], combo, strict=True))
            for combo in itertools.product(*[a.values for a in axes])]


INTERRUPTED = Status.interrupted.value
"""Status of a grid point (or `compare` variant) that Ctrl-C left unsolved."""
NOT_SOLVED = "not solved: interrupted (Ctrl-C)"


def run_sweep(
    problem: Path,
    axes: Sequence[Axis],
    overrides: Overrides,
    options: SolveOptions,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """One solve per grid point; a row per point with its headline metrics or its reason.
    Ctrl-C stops the sweep: the point being solved keeps its best plan so far, and the points
    after it get status "interrupted"."""
    from planner.pipeline import solve_problem

    points = grid(axes)
    for point in points:  # validate every point before the first solve
        try:
            point_inputs(problem, overrides, point)
        except InputError as exc:  # the file is fine without the --set values: name them
            sets = ", ".join(f"{path}={value}" for path, value in point.items())
            raise InputError([m if m.startswith("--set ") else f"{m} (with --set {sets})"
                              for m in exc.problems]) from None
    rows: list[dict[str, Any]] = []
    stopped = False  # by Ctrl-C: the points after it are not solved
    for point in points:
        row: dict[str, Any] = dict(point)
        if stopped:
            rows.append({**row, "status": INTERRUPTED, "reason": NOT_SOLVED})
            continue
        try:
            plan = solve_problem(point_inputs(problem, overrides, point), options)
        except KeyboardInterrupt:  # before this point had a plan
            row.update(status=INTERRUPTED, reason=NOT_SOLVED)
            stopped = True
        except NoPlanError as exc:
            row.update(status=exc.status, reason="; ".join(exc.diagnosis) or str(exc))
        else:
            m = plan.metrics
            stopped = plan.interrupted
            row.update(
                status=plan.status.value,
                reason=next((n for n in plan.notes if n.startswith("interrupted")), None),
                total_tco_usd=plan.tco_usd["total"],
                usd_per_million_output_tokens=plan.usd_per_million_output_tokens,
                accelerators=m["peak_accelerators"], racks=m["peak_racks"],
                peak_power_mw=m["peak_power_mw"],
                output_tokens_per_s_per_mw=m["output_tokens_per_s_per_mw"],
                mix=", ".join(sorted(set(plan.fleet["system"]))),
                mip_gap=plan.mip_gap,
            )
            if plan.served_scale is not None:  # max_served_scale: how much each point serves
                row["served_scale"] = plan.served_scale
        rows.append(row)
        if on_done:
            on_done(row)
    return pd.DataFrame(rows)


COUNTS = ("accelerators", "racks")
"""Columns of whole numbers: a point without a plan makes pandas store them as floats."""


def sweep_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of `run_sweep` for JSON: what a point has not (the metrics of an infeasible
    one, the reason of a solved one) is null, not NaN, which JSON cannot carry; counts stay
    whole numbers (1344, not 1344.0) beside an infeasible point."""
    def cell(key: str, value: Any) -> Any:
        if not isinstance(value, float):
            return value
        number = json_number(value)
        return int(number) if key in COUNTS and number is not None else number

    return [{key: cell(key, value) for key, value in row.items()}
            for row in frame.to_dict(orient="records")]


HEADLINES = ["total_tco_usd", "usd_per_million_output_tokens", "accelerators", "peak_power_mw"]


CHART_FORMATS = ("png", "svg", "pdf")
"""What `--chart` can write, by the file's extension."""


def sweep_chart(frame: pd.DataFrame, axes: Sequence[Axis], chart_format: str = "png") -> bytes:
    """A chart (CHART_FORMATS) with one panel per headline metric against the first axis (one
    line per value of the second axis, if any)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = axes[0].path
    series = axes[1].path if len(axes) > 1 else None
    fig, panels = plt.subplots(1, len(HEADLINES), figsize=(4 * len(HEADLINES), 3.4))
    for ax, metric in zip(panels, HEADLINES, strict=True):
        groups = frame.groupby(series, sort=False) if series else [(None, frame)]
        for label, group in groups:
            if metric in group:
                ax.plot(group[x].astype(str), group[metric], marker="o",
                        label=None if label is None else f"{series}={label}")
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format=chart_format, dpi=110)
    plt.close(fig)
    return image.getvalue()
