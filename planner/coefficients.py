"""Turn a problem and its candidate table into the scaled coefficient tables of the MIP.

This is the data object (Egret's habit: data apart from the model). Scaling, so that HiGHS sees
coefficients near 1: money in $M, token rates in thousands of tokens/s, power in MW.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from planner.costs import (
    busy_energy_usd,
    discount_factors,
    rack_usd,
    rent_price,
    system_costs,
    system_power_kw,
    tier_price,
)
from planner.errors import InputError
from planner.problem import Inputs
from planner.schema import CostBasis, Objective, Site, SiteKind, System, site_value

USD = 1e6
"""Money unit of the model: $M."""
RATE = 1e3
"""Rate unit of the model: thousand output tokens/s."""
MW = 1e3
"""Power unit of the model: MW (coefficients are given in kW and divided by this)."""

CANDIDATE_COLUMNS = [
    "workload", "system", "mode", "tp", "pp", "ep", "concurrency", "speculative",
    "accelerators", "output_tokens_per_s", "requests_per_s", "input_tokens_per_s",
    "ttft_ms", "tpot_ms", "memory_gb_per_accelerator", "power_kw", "source",
]


@dataclass
class ModelData:
    """Everything `formulation.build_model` needs, indexed by plain ids."""

    periods: list[str]
    hours: dict[str, float]
    discount: dict[str, float]
    sites: list[str]
    owned_sites: list[str]
    systems: list[str]
    workloads: list[str]
    vendor: dict[str, str]
    candidates: pd.DataFrame
    """Candidate table (one row per deployment option), index k = 0..K-1."""
    kl: list[tuple[int, str]]
    """Allowed (candidate, site) pairs."""
    sl: list[tuple[str, str]]
    """Allowed (system, site) pairs."""
    wl: list[tuple[str, str]]
    """Allowed (workload, site) pairs."""
    demand: dict[tuple[str, str], float]
    """Peak demand incl. headroom per (workload, period), thousand tok/s."""
    site_demand: dict[tuple[str, str, str], float]
    """Part of demand that a given site must serve (workload, period, site), thousand tok/s."""
    delivered_tokens: dict[tuple[str, str], float]
    """Average delivered output tokens per (workload, period): demand × utilization × hours."""
    accelerators: dict[str, int]
    availability: dict[str, float]
    rate: dict[int, float]
    """Per-replica output rate, thousand tok/s."""
    replica_accelerators: dict[int, int]
    buy_cost: dict[tuple[str, str, str], float]
    """Discounted capex of buying one system in period p, summed over the rest of the horizon, $M."""
    installed_cost: dict[tuple[str, str, str], float]
    """Discounted per-installed-system cost in period p ($M)."""
    replica_cost: dict[tuple[int, str, str], float]
    """Discounted busy energy of one replica ($M) per (k, site, period)."""
    power_mw: dict[tuple[str, str], float]
    """Facility MW per installed system at a site."""
    power_budget_mw: dict[tuple[str, str], float]
    """Site power budget per (site, period), MW (inf when unlimited)."""
    systems_per_rack: dict[tuple[str, str], int]
    rack_limit: dict[tuple[str, str], float]
    existing: dict[tuple[str, str, str], int]
    """Existing systems per (system, site, period)."""
    rack_cost: dict[tuple[str, str], float]
    """Discounted cost of one occupied rack position per (site, period), $M; only where it
    is not 0."""
    max_accelerators: dict[str, float]
    objective: Objective
    max_vendor_share: float | None = None
    min_vendors: int | None = None
    budget_musd: float | None = None
    max_purchases: dict[str, int] = field(default_factory=dict)
    cost_lines: dict[tuple[str, str, str], object] = field(default_factory=dict)
    """Undiscounted SystemCosts per (system, site, period), for reporting."""
    notes: list[str] = field(default_factory=list)
    """What the data step dropped or assumed, for the plan's explanation."""
    held: list[str] = field(default_factory=list)
    """Systems of the existing fleet that may not be bought (`Inputs.held`): their purchase
    cap is 0."""
    input_per_output: dict[str, float] = field(default_factory=dict)
    """Input tokens per output token of each workload (input_tokens ÷ output_tokens): input
    volumes are reported beside the output the plan is sized for."""


def _cannot_stand(system: System, site: Site) -> str:
    """Why `system` cannot stand in `site`'s racks ("" if it can)."""
    if system.rent_only:
        return "the catalog offers the system for rent only"
    if system.cooling.value == "liquid" and not site.liquid_cooling:
        return "they need liquid cooling, which the site does not have"
    if rack_fit(system, site.rack_power_kw, site.rack_units) > 0:
        return ""
    if (system.power_kw_max or 0.0) > site.rack_power_kw:
        return (f"{system.power_kw_max:g} kW each is over the site's rack_power_kw of "
                f"{site.rack_power_kw:g}")
    return f"{system.rack_units} U each is over the site's rack_units of {site.rack_units}"


def rack_fit(system: System, rack_power_kw: float, rack_units: int) -> int:
    """Systems per rack: min(⌊rack kW ÷ system kW⌋, ⌊rack U ÷ system U⌋); whole-rack → 1 or 0."""
    kw = system.power_kw_max or 0.0
    by_power = math.floor(rack_power_kw / kw + 1e-9) if kw > 0 else 10**6
    if system.whole_rack:
        return 1 if by_power >= 1 else 0
    by_space = rack_units // (system.rack_units or 1)
    return max(0, min(by_power, by_space))


ENERGY_TOLERANCE = 0.01
"""Relative slack on busy energy per token when one shape is judged to dominate another."""


def rack_count(systems: int, per_rack: int) -> int:
    """Racks a number of systems needs: ⌈n ÷ systems per rack⌉ (the MIP's r may carry slack)."""
    return -(-systems // per_rack)


def prune_dominated(candidates: pd.DataFrame, idle_kw_per_accelerator: dict[str, float]
                    ) -> pd.DataFrame:
    """Drop candidates the MIP does not need.

    1. Within one replica shape (workload, system, mode, precision, TP, PP, EP, speculative),
       keep the highest-rate option: a replica can always run below its largest SLO-feasible
       concurrency, so lower concurrencies add nothing.
    2. Across shapes, j is dominated by i when i's replica size divides j's, q = a_j / a_i
       replicas of i deliver at least j's rate, q · rate_i ≥ rate_j, and i spends no more busy
       energy per token, busy_i / rate_i ≤ (1 + tol) · busy_j / rate_j (busy = replica kW −
       idle kW of its accelerators). The q replicas use exactly j's accelerators and, run at
       j's load, draw no more busy power (busy power scales with load).
    Every option left meets the SLO already, so latency plays no part. Ties keep the first
    row, so the result is deterministic.
    """
    if candidates.empty:
        return candidates
    keys = [c for c in ("workload", "system", "mode", "precision") if c in candidates.columns]
    shape = [*keys, "tp", "pp", "ep", "speculative"]
    best = candidates.sort_values("output_tokens_per_s", ascending=False, kind="stable")
    best = best.drop_duplicates(shape, keep="first").sort_index()
    keep: list[int] = []
    for key, group in best.groupby(keys, sort=False):
        idle = idle_kw_per_accelerator.get(str(key[1]), 0.0)
        acc = group["accelerators"].to_numpy()
        rate = group["output_tokens_per_s"].to_numpy()
        busy = (group["power_kw"].to_numpy() - idle * acc).clip(min=0.0)
        per_token = busy / rate
        index = group.index.to_numpy()
        for j in range(len(group)):
            dominated = False
            for i in range(len(group)):
                if i == j or acc[j] % acc[i]:
                    continue
                q = acc[j] // acc[i]
                covers = (q * rate[i] >= rate[j]
                          and per_token[i] <= per_token[j] * (1 + ENERGY_TOLERANCE) + 1e-15)
                if covers and (q * rate[i] > rate[j] or i < j):
                    dominated = True
                    break
            if not dominated:
                keep.append(int(index[j]))
    return candidates.loc[sorted(keep)]


def build_data(inputs: Inputs, candidates: pd.DataFrame) -> ModelData:
    """Coefficient tables of the MIP for `inputs`, given the candidate deployment table."""
    problem = inputs.problem
    finance = problem.finance
    periods = inputs.period_ids
    hours = {p.id: p.hours for p in problem.periods}
    discount = dict(zip(periods, discount_factors([hours[p] for p in periods],
                                                  finance.discount_rate), strict=True))
    systems = {s.id: s for s in inputs.fleet_systems}
    workloads = {w.id: w for w in problem.workloads}
    sites = {s.id: s for s in problem.sites}
    notes: list[str] = list(inputs.notes)

    offered = candidates[candidates["system"].isin(list(systems))]
    idle = {s.id: s.idle_kw / s.accelerators for s in inputs.fleet_systems}
    cand = prune_dominated(offered, idle).reset_index(drop=True)
    if len(cand) < len(offered):
        notes.append(f"{len(offered) - len(cand)} of {len(offered)} candidate deployments pruned "
                     "as dominated (see coefficients.prune_dominated)")

    # (system, site) pairs where a system may stand
    sl: list[tuple[str, str]] = []
    systems_per_rack: dict[tuple[str, str], int] = {}
    held = {s.id for s in inputs.held}
    standing = {(e.system, e.site) for e in problem.existing}
    for site in problem.sites:
        for s in inputs.fleet_systems:
            if s.id in held and (s.id, site.id) not in standing:
                continue  # never bought: only where some already stand
            if site.kind == SiteKind.cloud:
                if rent_price(s) is None:
                    continue
            else:
                if s.rent_only:
                    continue
                if finance.cost_basis == CostBasis.tco_tier and tier_price(s, finance.tco_tier) is None:
                    notes.append(f"{s.id} has no {finance.tco_tier.value} tier price; not offered")
                    continue
                if _cannot_stand(s, site):  # cooling, rack power or rack units
                    continue
                systems_per_rack[(s.id, site.id)] = rack_fit(s, site.rack_power_kw,
                                                             site.rack_units)
            sl.append((s.id, site.id))
    sl_set = set(sl)

    wl = [
        (w.id, site.id)
        for w in problem.workloads
        for site in problem.sites
        if w.sites is None or site.id in w.sites
    ]
    wl_set = set(wl)
    kl = [
        (int(k), site.id)
        for k, row in zip(cand.index, cand.itertuples(index=False), strict=True)
        for site in problem.sites
        if (row.workload, site.id) in wl_set and (row.system, site.id) in sl_set
    ]

    demand = {
        (w, p): inputs.demand[(w, p)] * (1 + workloads[w].headroom) / RATE
        for w in workloads for p in periods
    }
    site_demand = {
        key: value * (1 + workloads[key[0]].headroom) / RATE
        for key, value in inputs.site_demand.items()
    }
    delivered = {
        (w, p): inputs.demand[(w, p)] * workloads[w].utilization * hours[p] * 3600
        for w in workloads for p in periods
    }

    installed_cost: dict[tuple[str, str, str], float] = {}
    buy_cost: dict[tuple[str, str, str], float] = {}
    cost_lines: dict[tuple[str, str, str], object] = {}
    for sid, lid in sl:
        capex_tail = 0.0
        lines = {p: system_costs(systems[sid], sites[lid], finance, hours[p]) for p in periods}
        for p in reversed(periods):
            capex_tail += discount[p] * lines[p].capex
            buy_cost[(sid, lid, p)] = capex_tail / USD
            installed_cost[(sid, lid, p)] = discount[p] * lines[p].per_installed / USD
            cost_lines[(sid, lid, p)] = lines[p]

    replica_cost: dict[tuple[int, str, str], float] = {}
    for k, lid in kl:
        row = cand.loc[k]
        system = systems[row["system"]]
        idle_share = system.idle_kw * row["accelerators"] / system.accelerators
        busy_kw = max(0.0, float(row["power_kw"]) - idle_share)
        util = workloads[row["workload"]].utilization
        for p in periods:
            usd = busy_energy_usd(busy_kw, util, sites[lid], finance, hours[p])
            replica_cost[(k, lid, p)] = discount[p] * usd / USD

    existing: dict[tuple[str, str, str], int] = {}
    misplaced: list[str] = []
    for i, e in enumerate(problem.existing):
        if (e.system, e.site) not in sl_set:
            why = _cannot_stand(systems[e.system], sites[e.site])
            if why:  # what stands there cannot: the site's description is wrong
                misplaced.append(f"{inputs.path}: existing[{i}]: {e.count} × {e.system} at "
                                 f"{e.site}: {why}; expected a site whose racks hold them")
            else:
                notes.append(f"existing {e.count} × {e.system} at {e.site} ignored: it has no "
                             f"{finance.tco_tier.value} tier price to cost it by")
            continue
        if e.system in held:
            notes.append(f"existing {e.count} × {e.system} at {e.site} kept and used; none "
                         "bought (the system is not among the allowed ones)")
        last = periods.index(e.retires_after) if e.retires_after else len(periods) - 1
        for p in periods[: last + 1]:
            key = (e.system, e.site, p)
            existing[key] = existing.get(key, 0) + e.count

    if misplaced:
        raise InputError(misplaced)
    policy = problem.policy
    return ModelData(
        periods=periods,
        hours=hours,
        discount=discount,
        sites=list(sites),
        owned_sites=[s.id for s in problem.sites if s.kind == SiteKind.owned],
        systems=[s.id for s in inputs.fleet_systems],
        workloads=list(workloads),
        vendor={s.id: s.vendor for s in inputs.fleet_systems},
        candidates=cand,
        kl=kl,
        sl=sl,
        wl=wl,
        demand=demand,
        site_demand=site_demand,
        delivered_tokens=delivered,
        input_per_output={w: spec.input_tokens / spec.output_tokens
                          for w, spec in workloads.items()},
        accelerators={s.id: s.accelerators for s in inputs.fleet_systems},
        availability={s.id: s.availability for s in inputs.fleet_systems},
        rate={int(k): float(v) / RATE for k, v in cand["output_tokens_per_s"].items()},
        replica_accelerators={int(k): int(v) for k, v in cand["accelerators"].items()},
        buy_cost=buy_cost,
        installed_cost=installed_cost,
        replica_cost=replica_cost,
        power_mw={
            (s, l): system_power_kw(systems[s], sites[l], finance) / MW for s, l in sl
        },
        power_budget_mw={
            (s.id, p): site_value(s.power_mw, p) for s in problem.sites for p in periods
        },
        systems_per_rack=systems_per_rack,
        rack_limit={(s.id, p): site_value(s.racks, p) for s in problem.sites for p in periods},
        rack_cost={key: usd for key, usd in (
            ((s.id, p), discount[p] * rack_usd(s, finance, hours[p]) / USD)
            for s in problem.sites for p in periods) if usd},
        existing=existing,
        max_accelerators={
            s.id: (math.inf if s.max_accelerators is None else s.max_accelerators)
            for s in problem.sites
        },
        objective=problem.objective,
        max_vendor_share=policy.max_vendor_share,
        min_vendors=policy.min_vendors,
        budget_musd=None if policy.budget_usd is None else policy.budget_usd / USD,
        max_purchases={**(policy.max_purchases or {}), **{sid: 0 for sid in held}},
        held=sorted(held),
        cost_lines=cost_lines,
        notes=notes,
    )

