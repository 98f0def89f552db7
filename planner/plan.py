"""Turn a solved model into a `Plan`: tidy tables and headline metrics.

Every figure is recomputed from the model's variable values and the coefficient tables, so the
plan can be checked against its own tables (demand covered, power within budget, racks within
positions, accelerators used within installed × availability).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from planner.coefficients import MW, RATE, USD, ModelData, rack_count
from planner.costs import SystemCosts, usd_per_million_tokens
from planner.performance import UNCALIBRATED, uncalibrated_note
from planner.solve import Binding, SolveResult, Status
from planner.units import json_number

COST_COMPONENTS = ["capex", "energy", "facility", "opex", "rent", "all_in"]

FLEET_COLUMNS = ["period", "site", "system", "vendor", "systems", "accelerators", "racks",
                 "power_kw", "purchased", "existing"]
DEPLOYMENT_COLUMNS = ["period", "site", "workload", "system", "precision", "mode", "tp", "pp", "ep",
                      "concurrency", "speculative", "replicas", "accelerators",
                      "output_tokens_per_s", "ttft_ms", "tpot_ms", "memory_gb_per_accelerator",
                      "source"]
SITE_COLUMNS = ["period", "site", "power_kw", "power_budget_kw", "racks", "rack_limit"]
DEMAND_COLUMNS = ["period", "workload", "output_tokens_per_s", "served_output_tokens_per_s",
                  "input_tokens_per_s"]
COST_COLUMNS = ["period", "site", "system", "component", "usd"]


@dataclass
class Plan:
    """A capacity plan: status, money, tables and headline metrics."""

    name: str
    status: Status
    objective: str
    fleet: pd.DataFrame
    deployments: pd.DataFrame
    sites: pd.DataFrame
    demand: pd.DataFrame
    costs: pd.DataFrame
    tco_usd: dict[str, float]
    delivered_output_tokens: float
    delivered_input_tokens: float
    """Input tokens of the delivered requests (each workload's output × its input ÷ output)."""
    usd_per_million_output_tokens: float
    mip_gap: float
    bound_usd: float
    solve_seconds: float
    served_scale: float | None = None
    bindings: list[Binding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cost_basis: str = "capex"
    horizon_years: float = 1.0
    period_hours: dict[str, float] = field(default_factory=dict)
    candidates: pd.DataFrame | None = None
    """The full candidate table the plan chose from (for reports; not part of the JSON)."""
    interrupted: bool = False
    """Ctrl-C stopped the solve: this is the best plan found by then (its notes say so)."""

    @property
    def metrics(self) -> dict[str, float]:
        """Headline metrics (peaks over periods where a quantity changes with time)."""
        fleet, dep = self.fleet, self.deployments
        per_period = fleet.groupby("period", sort=False)[["accelerators", "racks", "power_kw",
                                                          "systems"]].sum()
        capacity = _capacity_by_period(dep)
        peak_kw = float(per_period["power_kw"].max()) if len(per_period) else 0.0
        peak_acc = float(per_period["accelerators"].max()) if len(per_period) else 0.0
        last = per_period.index[-1] if len(per_period) else None
        cap_last = float(capacity.get(last, 0.0)) if last is not None else 0.0

        def capacity_where(column: str) -> float:
            """The last period's capacity on the sites with `column` (racks, power) then: per
            rack and per MW count only those, as a rented cloud fleet has neither (counted, it
            made both look better than the owned halls are)."""
            sites = fleet.loc[(fleet["period"] == last) & (fleet[column] > 0), "site"]
            return float(_capacity_by_period(dep[dep["site"].isin(sites)]).get(last, 0.0))

        acc_last = float(per_period.loc[last, "accelerators"]) if last is not None else 0.0
        sys_last = float(per_period.loc[last, "systems"]) if last is not None else 0.0
        racks_last = float(per_period.loc[last, "racks"]) if last is not None else 0.0
        kw_last = float(per_period.loc[last, "power_kw"]) if last is not None else 0.0
        acc_hours = float(
            (fleet["accelerators"] * fleet["period"].map(self.period_hours)).sum()
        ) if len(fleet) else 0.0
        return {
            "total_tco_usd": self.tco_usd["total"],
            "usd_per_million_output_tokens": self.usd_per_million_output_tokens,
            "peak_accelerators": peak_acc,
            "peak_systems": float(per_period["systems"].max()) if len(per_period) else 0.0,
            "peak_racks": float(per_period["racks"].max()) if len(per_period) else 0.0,
            "peak_power_mw": peak_kw / 1000,
            "output_tokens_per_s_capacity": cap_last,
            "output_tokens_per_s_per_accelerator": _ratio(cap_last, acc_last),
            "output_tokens_per_s_per_system": _ratio(cap_last, sys_last),
            "output_tokens_per_s_per_rack": _ratio(capacity_where("racks"), racks_last),
            "output_tokens_per_s_per_mw": _ratio(capacity_where("power_kw"), kw_last / 1000),
            "usd_per_accelerator_hour": _ratio(self.tco_usd["total"], acc_hours),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `planner solve --format json` (see ARCHITECTURE.md)."""
        return {
            "name": self.name,
            "status": self.status.value,
            "objective": self.objective,
            "cost_basis": self.cost_basis,
            "objective_usd": json_number(self.tco_usd["total"]),
            "tco_usd": {k: json_number(v) for k, v in self.tco_usd.items()},
            "usd_per_million_output_tokens": json_number(self.usd_per_million_output_tokens),
            "delivered_output_tokens": json_number(self.delivered_output_tokens),
            "delivered_input_tokens": json_number(self.delivered_input_tokens),
            "mip_gap": json_number(self.mip_gap),
            "bound_usd": json_number(self.bound_usd),
            "served_scale": json_number(self.served_scale) if self.served_scale is not None else None,
            "metrics": {k: json_number(v) for k, v in self.metrics.items()},
            "fleet": _records(self.fleet),
            "deployments": _records(self.deployments),
            "sites": _records(self.sites),
            "demand": _records(self.demand),
            "costs": _records(self.costs),
            "binding": [{**row, **{k: json_number(row[k]) for k in ("used", "limit", "step",
                                                                "value_usd", "value_scale")}}
                        for row in self.binding_rows()],
            "notes": list(self.notes),
            "timing": {"solve_seconds": json_number(self.solve_seconds)},
        }

    def binding_rows(self) -> list[dict[str, Any]]:
        """What binds, one record per limit, with its sentence (`describe_binding`)."""
        # a purchase cap is a system's, at no one site, and the budget the whole horizon's:
        # null where a limit has no site (or period), the capped system in its own column
        return [{"kind": b.kind, "site": b.site if b.kind not in ("supply", "budget") else None,
                 "system": b.site if b.kind == "supply" else None, "period": b.period or None,
                 "used": b.used, "limit": b.limit, "unit": b.unit, "step": b.step,
                 "value_usd": b.value_usd, "value_scale": b.value_scale,
                 "text": describe_binding(b, self.horizon_years)} for b in self.bindings]


def describe_binding(b: Binding, horizon_years: float) -> str:
    """'one more MW at dc1 in 2027H2 is worth $X over the horizon (≈$Y/year)'."""
    what = {"power": f"power at {b.site} in {b.period}: {b.used:,.2f} of {b.limit:,.2f} MW used",
            "racks": f"racks at {b.site} in {b.period}: {b.used:,.0f} of {b.limit:,.0f} used",
            "supply": f"supply of {b.site} in {b.period}: {b.used:,.0f} of {b.limit:,.0f} "
                      "purchases",
            "quota": f"quota at {b.site} in {b.period}: {b.used:,.0f} of {b.limit:,.0f} "
                     "accelerators rented",
            "budget": f"budget: ${b.used:,.0f} of ${b.limit:,.0f} spent (discounted, over the "
                      "horizon)"}[b.kind]
    one = {"power": "one more MW", "racks": "one more rack", "supply": "one more system",
           "quota": f"{b.step:,.0f} more accelerators (one more system)",
           "budget": "one more $1M"}[b.kind]
    if b.value_scale is not None:
        return f"{what}; {one} serves {b.value_scale:,.3f}× more of the demand mix"
    if b.value_usd is None:
        return what + " (binds)"
    per_year = b.value_usd / horizon_years if horizon_years > 0 else b.value_usd
    return f"{what}; {one} is worth ${b.value_usd:,.0f} over the horizon (≈${per_year:,.0f}/year)"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dict(orient="records")
    return [{k: (json_number(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def _capacity_by_period(dep: pd.DataFrame) -> pd.Series:
    """Deliverable output tok/s per period: per workload, site, system and precision,
    agg + min(prefill, decode) (pools are matched within a system type and precision)."""
    if dep.empty:
        return pd.Series(dtype=float)
    out: dict[str, float] = {}
    for (period, *_), group in dep.groupby(["period", "site", "workload", "system", "precision"],
                                           sort=False):
        by_mode = group.groupby("mode")["output_tokens_per_s"].sum()
        agg = float(by_mode.get("aggregated", 0.0))
        pre, dec = float(by_mode.get("prefill", 0.0)), float(by_mode.get("decode", 0.0))
        out[period] = out.get(period, 0.0) + agg + min(pre, dec)
    return pd.Series(out)


def _value(var: Any) -> float:
    return float(var.value) if var.value is not None else 0.0


def build_plan(name: str, result: SolveResult, horizon_notes: list[str] | None = None) -> Plan:
    """Extract tables from a solved model (status must have a plan)."""
    if not result.status.has_plan or result.model is None:
        raise ValueError("build_plan needs a solved model")
    m, d = result.model, result.data
    cand = d.candidates
    alpha = result.served_scale if result.served_scale is not None else 1.0

    fleet_rows = []
    cost_rows = []
    for s, l, p in m.SLP:
        n = round(_value(m.n[s, l, p]))
        if n == 0:
            continue
        owned = l in d.owned_sites
        existing = d.existing.get((s, l, p), 0)
        bought = round(_value(m.buy[s, l, p])) if owned else 0
        racks = rack_count(n, d.systems_per_rack[(s, l)]) if owned else 0
        fleet_rows.append({
            "period": p, "site": l, "system": s, "vendor": d.vendor[s], "systems": n,
            "accelerators": n * d.accelerators[s], "racks": racks,
            "power_kw": n * d.power_mw[(s, l)] * MW, "purchased": bought, "existing": existing,
        })
        line: SystemCosts = d.cost_lines[(s, l, p)]  # type: ignore[assignment]
        disc = d.discount[p]
        for component, usd in (
            ("capex", line.capex * (n - existing)), ("energy", line.energy_idle * n),
            ("facility", line.facility * n), ("opex", line.opex * n), ("rent", line.rent * n),
            ("all_in", line.all_in * n),
        ):
            if usd:
                cost_rows.append({"period": p, "site": l, "system": s, "component": component,
                                  "usd": disc * usd})
        if racks and (l, p) in d.rack_cost:  # discounted already
            cost_rows.append({"period": p, "site": l, "system": s, "component": "facility",
                              "usd": racks * d.rack_cost[(l, p)] * USD})

    dep_rows = []
    for k, l, p in m.KLP:
        x = round(_value(m.x[k, l, p]))
        if x == 0:
            continue
        row = cand.loc[k]
        dep_rows.append({
            "period": p, "site": l, "workload": row["workload"], "system": row["system"],
            "precision": row.get("precision", ""),
            "mode": row["mode"], "tp": int(row["tp"]), "pp": int(row["pp"]), "ep": int(row["ep"]),
            "concurrency": int(row["concurrency"]), "speculative": bool(row["speculative"]),
            "replicas": x, "accelerators": x * int(row["accelerators"]),
            "output_tokens_per_s": x * float(row["output_tokens_per_s"]),
            "ttft_ms": float(row["ttft_ms"]), "tpot_ms": float(row["tpot_ms"]),
            "memory_gb_per_accelerator": float(row["memory_gb_per_accelerator"]),
            "source": row["source"],
        })
        busy = d.replica_cost.get((k, l, p), 0.0) * x * USD
        if busy:
            cost_rows.append({"period": p, "site": l, "system": row["system"],
                              "component": "energy", "usd": busy})

    site_rows = []
    for l in d.sites:
        for p in d.periods:
            used = [r for r in fleet_rows if r["site"] == l and r["period"] == p]
            budget = d.power_budget_mw[(l, p)]
            limit = d.rack_limit[(l, p)]
            site_rows.append({
                "period": p, "site": l, "power_kw": sum(r["power_kw"] for r in used),
                "power_budget_kw": budget * MW if math.isfinite(budget) else None,
                "racks": sum(r["racks"] for r in used),
                "rack_limit": limit if math.isfinite(limit) else None,
            })

    demand_rows = []
    for w in d.workloads:
        for p in d.periods:
            served = sum(_value(m.y[w, l, p]) for l in d.sites if (w, l, p) in m.WLP)
            demand_rows.append({
                "period": p, "workload": w,
                "output_tokens_per_s": alpha * d.demand[(w, p)] * RATE,
                "served_output_tokens_per_s": served * RATE,
                "input_tokens_per_s": alpha * d.demand[(w, p)] * RATE * d.input_per_output[w],
            })

    fleet = _frame(fleet_rows, FLEET_COLUMNS, ["period", "site", "system"], d.periods)
    deployments = _frame(dep_rows, DEPLOYMENT_COLUMNS,
                         ["period", "site", "workload", "system", "mode", "tp", "pp", "ep",
                          "concurrency"], d.periods)
    costs = _frame(cost_rows, COST_COLUMNS, ["period", "site", "system", "component"], d.periods)
    costs = costs.groupby(["period", "site", "system", "component"], sort=False,
                          as_index=False)["usd"].sum()
    tco = {c: float(costs.loc[costs["component"] == c, "usd"].sum()) for c in COST_COMPONENTS}
    tco["total"] = sum(tco.values())
    delivered = {key: alpha * v for key, v in d.delivered_tokens.items()}
    discounted_tokens = sum(d.discount[p] * v for (_, p), v in delivered.items())
    hours = sum(d.hours.values())
    plan = Plan(
        name=name,
        status=result.status,
        objective=d.objective.value,
        fleet=fleet,
        deployments=deployments,
        sites=_frame(site_rows, SITE_COLUMNS, ["period", "site"], d.periods),
        demand=_frame(demand_rows, DEMAND_COLUMNS, ["period", "workload"], d.periods),
        costs=costs,
        tco_usd=tco,
        delivered_output_tokens=sum(delivered.values()),
        delivered_input_tokens=sum(v * d.input_per_output[w] for (w, _), v in delivered.items()),
        usd_per_million_output_tokens=usd_per_million_tokens(tco["total"], discounted_tokens),
        mip_gap=result.gap,
        bound_usd=result.bound * USD if d.objective.value == "min_tco" else math.nan,
        solve_seconds=result.seconds,
        served_scale=result.served_scale,
        bindings=list(result.bindings),
        notes=[*d.notes, *_uncalibrated_notes(deployments), *(horizon_notes or [])],
        horizon_years=hours / 8760.0,
        period_hours=dict(d.hours),
        interrupted=result.interrupted,
    )
    return plan


def uncalibrated_systems(deployments: pd.DataFrame) -> list[str]:
    """Systems whose deployments come from the performance model's uncalibrated defaults."""
    if deployments.empty:
        return []
    return sorted(set(deployments.loc[deployments["source"] == UNCALIBRATED, "system"]))


def _uncalibrated_notes(deployments: pd.DataFrame) -> list[str]:
    """A note naming the systems whose deployments in the plan come from the performance
    model's uncalibrated defaults: their rates are the least certain numbers of the plan."""
    systems = uncalibrated_systems(deployments)
    return [uncalibrated_note(systems)] if systems else []


def _frame(rows: list[dict[str, Any]], columns: list[str], order: list[str],
           periods: list[str]) -> pd.DataFrame:
    """A DataFrame with fixed columns, sorted by period (in horizon order) then `order`."""
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    rank = {p: i for i, p in enumerate(periods)}
    frame = frame.assign(_rank=frame["period"].map(rank))
    frame = frame.sort_values(["_rank", *[c for c in order if c != "period"]], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)


SOLVER_SLACK = 1e-3
"""Absolute slack of the demand (tok/s) and power (kW) checks: HiGHS keeps rows to 1e-7 in
model units (thousand tok/s, MW), 1e-4 of these; a demand of 1e-6 tok/s was "covered" by no
replica at all, and the check called the plan numerical trouble."""


def check_invariants(plan: Plan, data: ModelData, tolerance: float = 1e-6) -> list[str]:
    """Recompute the plan's promises from its own tables; return every violation.

    demand covered per workload and period (per-mode capacity ≥ demand), power ≤ budget,
    racks ≤ positions, accelerators used ≤ installed × availability per system/site/period,
    none of a held system (`ModelData.held`) bought; each to a relative `tolerance` and an
    absolute SOLVER_SLACK."""
    problems: list[str] = []
    dep, fleet = plan.deployments, plan.fleet
    for row in plan.demand.itertuples(index=False):
        rows = dep[(dep["workload"] == row.workload) & (dep["period"] == row.period)]
        cap = 0.0
        for _, site_rows in rows.groupby(["site", "system", "precision"]):
            by_mode = site_rows.groupby("mode")["output_tokens_per_s"].sum()
            agg = float(by_mode.get("aggregated", 0.0))
            cap += agg + min(float(by_mode.get("prefill", 0.0)), float(by_mode.get("decode", 0.0)))
        if cap < row.output_tokens_per_s * (1 - tolerance) - SOLVER_SLACK:
            problems.append(f"demand of {row.workload} in {row.period} not covered: capacity "
                            f"{cap:,.1f} < {row.output_tokens_per_s:,.1f} tok/s")
    for row in plan.sites.itertuples(index=False):
        if row.power_budget_kw is not None and not pd.isna(row.power_budget_kw) and \
                row.power_kw > row.power_budget_kw * (1 + tolerance) + SOLVER_SLACK:
            problems.append(f"power at {row.site} in {row.period}: {row.power_kw:,.1f} kW > "
                            f"budget {row.power_budget_kw:,.1f} kW")
        if row.rack_limit is not None and not pd.isna(row.rack_limit) and \
                row.racks > row.rack_limit + tolerance:
            problems.append(f"racks at {row.site} in {row.period}: {row.racks} > {row.rack_limit}")
    used = dep.groupby(["period", "site", "system"])["accelerators"].sum()
    installed = fleet.set_index(["period", "site", "system"])["accelerators"]
    for key, acc in used.items():
        have = float(installed.get(key, 0)) * data.availability[key[2]]
        if acc > have * (1 + tolerance) + 1e-6:
            problems.append(f"{key[2]} at {key[1]} in {key[0]}: {acc} accelerators used > "
                            f"{have:,.2f} installed × availability")
    for row in fleet[fleet["system"].isin(data.held) & (fleet["purchased"] > 0)].itertuples():
        problems.append(f"{row.system} at {row.site} in {row.period}: {row.purchased} bought, "
                        "but only those that stand there may be used")
    return problems
