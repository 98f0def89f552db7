"""Render plans: terminal tables (rich), JSON, CSV, and atomic writes of every table."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from planner.atomic import write_atomically
from planner.plan import Plan, describe_binding
from planner.units import format_power_kw, format_rate, format_usd


def to_json(payload: Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, fixed indentation, NaN never emitted."""
    return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"


PLAN_FILES = ("plan.json", "summary.csv", "fleet.csv", "deployments.csv", "sites.csv",
              "demand.csv", "costs.csv", "binding.csv")
"""What `write_plan` writes into `--out` (checked against `plan_tables` by the tests)."""


def plan_tables(plan: Plan) -> dict[str, pd.DataFrame]:
    """The tables `--out` writes and `--format csv` prints."""
    # max_served_scale: the scale served is the answer, first
    scale = [] if plan.served_scale is None else [{"metric": "served_scale",
                                                   "value": plan.served_scale}]
    summary = pd.DataFrame(
        scale + [{"metric": k, "value": v} for k, v in plan.metrics.items()]
        + [{"metric": f"tco_{k}_usd", "value": v} for k, v in plan.tco_usd.items()]
    )
    return {
        "summary": summary,
        "fleet": plan.fleet,
        "deployments": plan.deployments,
        "sites": plan.sites,
        "demand": plan.demand,
        "costs": plan.costs,
        "binding": pd.DataFrame(plan.binding_rows(), columns=BINDING_COLUMNS),
    }


BINDING_COLUMNS = ["kind", "site", "system", "period", "used", "limit", "unit", "step",
                   "value_usd", "value_scale", "text"]

CSV_FLOAT_FORMAT = "%.12g"
"""Twelve significant digits: dollars to the cent up to $10 billion, without float noise (six
printed a $30,294,309 total as 3.02943e+07)."""


def frame_csv(frame: pd.DataFrame) -> str:
    """One table as CSV (CSV_FLOAT_FORMAT)."""
    return frame.to_csv(index=False, lineterminator="\n", float_format=CSV_FLOAT_FORMAT)


def tables_to_csv(tables: Mapping[str, pd.DataFrame]) -> str:
    """Several tables in one stream, each after a `# table: NAME` line."""
    return "".join(f"# table: {name}\n{frame_csv(frame)}" for name, frame in tables.items())


def write_plan(plan: Plan, directory: Path) -> list[Path]:
    """plan.json plus one CSV per table."""
    files = {"plan.json": to_json(plan.to_dict())}
    for name, frame in plan_tables(plan).items():
        files[f"{name}.csv"] = frame_csv(frame)
    return write_atomically(directory, files)


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def print_plan(plan: Plan, console: Console) -> None:
    """The terminal view: headline, fleet, deployments, cost breakdown, what binds."""
    m = plan.metrics
    gap = "" if plan.mip_gap is None or math.isnan(plan.mip_gap) else f", gap {plan.mip_gap:.3%}"
    console.print(f"[bold]{plan.name}[/bold] — {plan.status.value}{gap}, "
                  f"solved in {plan.solve_seconds:.2f} s")
    headline = Table(show_header=False, box=None, pad_edge=False)
    headline.add_row("Total cost (discounted)", format_usd(plan.tco_usd["total"]))
    per_million = plan.usd_per_million_output_tokens  # none delivered: undefined, not $nan
    headline.add_row("$ per million output tokens",
                     f"${per_million:,.3f}" if math.isfinite(per_million) else "-")
    headline.add_row("Delivered output / input tokens",
                     f"{format_rate(plan.delivered_output_tokens)} / "
                     f"{format_rate(plan.delivered_input_tokens)}")
    if plan.served_scale is not None:
        headline.add_row("Served scale of the demand mix", f"{plan.served_scale:,.3f}×")
    headline.add_row("Peak accelerators / systems / racks",
                     f"{m['peak_accelerators']:,.0f} / {m['peak_systems']:,.0f} / "
                     f"{m['peak_racks']:,.0f}")
    headline.add_row("Peak facility power", format_power_kw(m["peak_power_mw"] * 1000))
    headline.add_row("Output tok/s per accelerator / per MW (last period)",
                     f"{_fmt(m['output_tokens_per_s_per_accelerator'], 1)} / "
                     f"{format_rate(m['output_tokens_per_s_per_mw'])}"
                     if not math.isnan(m["output_tokens_per_s_per_mw"]) else
                     f"{_fmt(m['output_tokens_per_s_per_accelerator'], 1)} / -")
    headline.add_row("Cost basis", plan.cost_basis)
    console.print(headline)

    fleet = Table(title="Fleet", title_justify="left")
    for col in ("period", "site", "system", "systems", "accelerators", "racks", "power", "bought",
                "existing"):
        fleet.add_column(col, justify="right" if col not in ("period", "site", "system") else "left")
    for r in plan.fleet.itertuples(index=False):
        fleet.add_row(r.period, r.site, r.system, f"{r.systems:,}", f"{r.accelerators:,}",
                      f"{r.racks:,}", format_power_kw(r.power_kw), f"{r.purchased:,}",
                      f"{r.existing:,}")
    console.print(fleet)

    dep = Table(title="Deployments", title_justify="left")
    for col in ("period", "site", "workload", "system", "prec.", "mode", "TP×PP×EP", "conc.",
                "replicas", "accel.", "out tok/s", "TTFT ms", "TPOT ms"):
        dep.add_column(col, justify="left" if col in ("period", "site", "workload", "system",
                                                       "prec.", "mode") else "right")
    for r in plan.deployments.itertuples(index=False):
        mode = r.mode + (" +spec" if r.speculative else "")
        dep.add_row(r.period, r.site, r.workload, r.system, r.precision, mode,
                    f"{r.tp}×{r.pp}×{r.ep}",
                    str(r.concurrency), f"{r.replicas:,}", f"{r.accelerators:,}",
                    format_rate(r.output_tokens_per_s), f"{r.ttft_ms:,.0f}", f"{r.tpot_ms:,.1f}")
    console.print(dep)
    if "recipe" in plan.deployments:
        last = plan.deployments[plan.deployments["period"] == plan.deployments["period"].iloc[-1]] \
            if len(plan.deployments) else plan.deployments
        console.print("[bold]Serving recipes[/bold] (last period)")
        for r in last.drop_duplicates("recipe").itertuples(index=False):
            console.print(f"  {r.workload} on {r.system} ({r.mode}): {r.recipe}", highlight=False,
                          markup=False, soft_wrap=True)

    costs = Table(title="Cost breakdown (discounted)", title_justify="left")
    costs.add_column("component")
    costs.add_column("USD", justify="right")
    costs.add_column("share", justify="right")
    total = plan.tco_usd["total"] or 1.0
    for k, v in plan.tco_usd.items():
        if k != "total" and v:
            costs.add_row(k, format_usd(v), f"{v / total:.1%}")
    costs.add_row("[bold]total[/bold]", format_usd(plan.tco_usd["total"]), "100%")
    console.print(costs)

    sites = Table(title="Sites", title_justify="left")
    for col in ("period", "site", "power", "budget", "racks", "limit"):
        sites.add_column(col, justify="left" if col in ("period", "site") else "right")
    for r in plan.sites.itertuples(index=False):
        budget = r.power_budget_kw
        sites.add_row(r.period, r.site, format_power_kw(r.power_kw),
                      "-" if budget is None or pd.isna(budget) else format_power_kw(budget),
                      f"{r.racks:,}",
                      "-" if r.rack_limit is None or pd.isna(r.rack_limit) else f"{r.rack_limit:,.0f}")
    console.print(sites)

    if plan.bindings:
        console.print("[bold]What binds[/bold]")
        for b in plan.bindings:
            console.print(f"  • {describe_binding(b, plan.horizon_years)}")
    elif plan.objective == "max_served_scale":
        console.print("[bold]What binds:[/bold] no power, rack, supply, quota or budget limit "
                      "has less than 1% left; whole systems and replicas, or a vendor policy, "
                      "set the scale.")
    else:
        console.print("[bold]What binds:[/bold] no power, rack, supply, quota or budget limit "
                      "binds; the plan is set by demand and cost.")
    for note in plan.notes:
        console.print(f"[dim]note: {note}[/dim]")


def _rate_or_dash(value: float | None) -> str:
    """A rate, or '-' where it is undefined (per rack or per MW of a fleet all rented in the
    cloud, with no racks or power of its own): 0 would read as no throughput."""
    return "-" if value is None else format_rate(value)


def print_compare(outcomes: list[Any], by: str, console: Console) -> None:
    """One row per fleet: status, cost, $/M tokens, sizes, throughput densities."""
    from planner.compare import outcome_row

    table = Table(title=f"Optimal fleet per {by} (and the mixed optimum)", title_justify="left")
    # max_served_scale: how much of the demand mix each fleet serves comes first
    scaled = any(o.plan is not None and o.plan.served_scale is not None for o in outcomes)
    columns = ["fleet", "status", *(["scale"] if scaled else []), "TCO", "$/M out tok", "$/acc-h",
               "accel.", "systems", "racks", "peak MW", "tok/s/acc", "tok/s/system",
               "tok/s/rack", "tok/s/MW"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("fleet", "status") else "right")
    notes = []
    for o in outcomes:
        r = outcome_row(o)
        if o.plan is None:
            table.add_row(o.label, o.status, *["-"] * (len(columns) - 2))
            notes.append(f"{o.label}: {o.reason}")
            continue
        table.add_row(
            o.label, r["status"], *([f"{r['served_scale']:,.3f}×"] if scaled else []),
            format_usd(r["tco_usd"]["total"]),
            f"${r['usd_per_million_output_tokens']:,.3f}", f"${r['usd_per_accelerator_hour']:,.2f}",
            f"{r['accelerators']:,.0f}", f"{r['systems']:,.0f}", f"{r['racks']:,.0f}",
            f"{r['peak_power_kw'] / 1000:,.2f}",
            *[_rate_or_dash(r[f"output_tokens_per_s_per_{per}"])
              for per in ("accelerator", "system", "rack", "mw")],
        )
    console.print(table)
    for o in outcomes:
        if o.plan is not None:
            from planner.compare import configurations

            console.print(f"[bold]{o.label}[/bold]: {configurations(o.plan)}", highlight=False)
    for note in notes:
        console.print(f"[yellow]no plan[/yellow] {note}", highlight=False)


def print_sweep(frame: pd.DataFrame, axes: list[str], console: Console) -> None:
    """One row per grid point."""
    table = Table(title="Sweep", title_justify="left")
    columns = [*axes, "status", *(["served_scale"] if "served_scale" in frame.columns else []),
               "total_tco_usd", "usd_per_million_output_tokens", "accelerators", "peak_power_mw",
               "mix"]
    for col in columns:
        table.add_column(col.replace("_", " "), justify="left" if col in ("status", "mix") else "right")
    for row in frame.to_dict(orient="records"):
        cells = []
        for col in columns:
            value = row.get(col)
            if col == "total_tco_usd" and isinstance(value, float) and not math.isnan(value):
                cells.append(format_usd(value))
            elif isinstance(value, float):
                cells.append(_fmt(value, 3 if abs(value) < 100 else 0))
            else:
                cells.append("-" if value is None else str(value))
        table.add_row(*cells)
    console.print(table)
    for row in frame.to_dict(orient="records"):
        if row.get("status") == "infeasible":
            point = ", ".join(f"{a}={row[a]}" for a in axes)
            console.print(f"[yellow]{point}[/yellow]: {row.get('reason')}", highlight=False)
