"""The mixed-integer program: `build_model(data) -> pyo.ConcreteModel`.

Index sets are sparse: a replica variable exists only for a (candidate, site) pair where the
candidate's workload may be served and its system may stand, times the periods. Families are
added in a fixed order, one function each; each docstring states its math. Units: $M,
thousand tokens/s, MW (see `coefficients`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyomo.environ as pyo

from planner.coefficients import ModelData
from planner.schema import Objective

ELASTIC_PENALTY = {"demand": 1e5, "power": 1e3, "racks": 10.0, "budget": 1e2, "quota": 10.0,
                   "supply": 10.0, "share": 1.0, "vendors": 1e2}
"""Penalties of the elastic model per unit of slack ($M per thousand tok/s, per MW, per rack,
per $M, per accelerator): unserved demand is the last resort, so power and space are relaxed
first and the diagnosis names them."""


def build_model(data: ModelData, elastic: bool = False) -> pyo.ConcreteModel:
    """Build the MIP. With `elastic`, demand, power, racks, budget and quotas get penalized
    slack so the model is always feasible and the slack says what to relax."""
    m = pyo.ConcreteModel(name="planner")
    m.elastic = elastic
    add_sets(m, data)
    add_variables(m, data)
    add_demand(m, data)
    add_serving(m, data)
    add_accelerators(m, data)
    add_fleet(m, data)
    add_racks(m, data)
    add_space(m, data)
    add_power(m, data)
    add_policy(m, data)
    add_objective(m, data)
    return m


def add_sets(m: pyo.ConcreteModel, d: ModelData) -> None:
    """P periods (ordered), L sites, S systems, W workloads; sparse KLP, SLP, WLP."""
    m.P = pyo.Set(initialize=d.periods, ordered=True)
    m.L = pyo.Set(initialize=d.sites, ordered=True)
    m.S = pyo.Set(initialize=d.systems, ordered=True)
    m.W = pyo.Set(initialize=d.workloads, ordered=True)
    m.KLP = pyo.Set(dimen=3, initialize=[(k, l, p) for k, l in d.kl for p in d.periods])
    m.SLP = pyo.Set(dimen=3, initialize=[(s, l, p) for s, l in d.sl for p in d.periods])
    owned = set(d.owned_sites)
    m.SLP_owned = pyo.Set(dimen=3, initialize=[t for t in m.SLP if t[1] in owned])
    m.WLP = pyo.Set(dimen=3, initialize=[(w, l, p) for w, l in d.wl for p in d.periods])


def add_variables(m: pyo.ConcreteModel, d: ModelData) -> None:
    """x[k,l,p] ∈ ℤ≥0 replicas; n[s,l,p] ∈ ℤ≥0 installed (or rented) systems; buy[s,l,p] ∈ ℤ≥0
    purchases (owned sites), 0 for a held system (`ModelData.held`); r[s,l,p] ∈ ℤ≥0 racks;
    y[w,l,p] ≥ 0 served rate.

    When minimizing cost, x[k,l,p] ≤ ⌈demand[w,p] ÷ ρ_kp⌉ and y[w,l,p], u[w,s,l,p] ≤
    demand[w,p] (`replica_limit`): replicas beyond those that alone serve the whole demand
    only add cost and use accelerators, so the bounds cut off no optimal plan; they leave
    HiGHS domains of tens instead of hundreds to propagate, and its first round of root cuts
    on bench large ends at 5 s instead of 11 s."""
    bounded = _bounded_by_demand(d)
    workloads = d.candidates["workload"].to_numpy()
    m.x = pyo.Var(m.KLP, within=pyo.NonNegativeIntegers, bounds=lambda m, k, l, p: (
        0, replica_limit(d, k, str(workloads[k]), p) if bounded else None))
    m.n = pyo.Var(m.SLP, within=pyo.NonNegativeIntegers)
    held = set(d.held)  # owned already, never bought (its supply row, cap 0, flags a rounding)
    m.buy = pyo.Var(m.SLP_owned, within=pyo.NonNegativeIntegers,
                    bounds=lambda m, s, l, p: (0, 0 if s in held else None))
    m.r = pyo.Var(m.SLP_owned, within=pyo.NonNegativeIntegers)
    m.y = pyo.Var(m.WLP, within=pyo.NonNegativeReals,
                  bounds=lambda m, w, l, p: (0, d.demand[(w, p)] if bounded else None))
    if d.objective == Objective.max_served_scale:
        m.alpha = pyo.Var(within=pyo.NonNegativeReals)


def _bounded_by_demand(d: ModelData) -> bool:
    """Whether replica counts and served rates (y, u) are bounded by the demand
    (`add_variables`): only when minimizing cost, where the demand is a constant."""
    return d.objective == Objective.min_tco


def _scale(m: pyo.ConcreteModel) -> pyo.Expression | float:
    return m.alpha if hasattr(m, "alpha") else 1.0


def add_demand(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Σ_l y[w,l,p] ≥ α · demand[w,p] · (1 + headroom) for every workload and period
    (α = 1 unless maximizing the served scale); y[w,l,p] ≥ site share where a forecast pins
    demand to a site. Elastic: + unserved[w,p] on the left."""
    sites_of: dict[str, list[str]] = defaultdict(list)
    for w, l in d.wl:
        sites_of[w].append(l)
    m.WP = pyo.Set(dimen=2, initialize=[(w, p) for w in d.workloads for p in d.periods])
    if m.elastic:
        m.unserved = pyo.Var(m.WP, within=pyo.NonNegativeReals)

    def rule(m: pyo.ConcreteModel, w: str, p: str) -> object:
        served = sum(m.y[w, l, p] for l in sites_of[w])
        if m.elastic:
            served = served + m.unserved[w, p]
        if isinstance(served, int):  # no allowed site at all
            return pyo.Constraint.Feasible if d.demand[(w, p)] == 0 else pyo.Constraint.Infeasible
        return served >= _scale(m) * d.demand[(w, p)]

    m.demand = pyo.Constraint(m.WP, rule=rule)
    pinned = [(w, l, p) for (w, p, l) in d.site_demand if (w, l, p) in m.WLP]
    m.site_demand = pyo.Constraint(
        pinned, rule=lambda m, w, l, p: m.y[w, l, p] >= _scale(m) * d.site_demand[(w, p, l)]
    )


def add_serving(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Rate matching per system: u[w,s,l,p] ≤ Σ_{k agg} ρ_kp x + Σ_{k prefill} ρ_kp x and
    u[w,s,l,p] ≤ Σ_{k agg} ρ_kp x + Σ_{k decode} ρ_kp x, and y[w,l,p] ≤ Σ_s u[w,s,l,p], with
    ρ_kp = min(rate_k, demand[w,p]) when minimizing cost (`serving_rate`). The cap changes no
    integer plan (a replica that alone covers the demand still covers it) but a fraction of a
    replica faster than the whole demand no longer serves all of it in the relaxation: one
    wide-EP DeepSeek-R1 decode replica on an NVL72 serves 2.5–5.6× bench large's R1 demand,
    and the relaxation priced it at a fifth of a rack.
    Rates are output tokens/s of the workload (a prefill pool's rate is the output-token rate
    of the requests it prefills). s here is a pool: one system type at one precision, because
    KV caches move between prefill and decode replicas of the same hardware and weights, not
    across vendors or quantizations."""
    by_mode: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    modes = d.candidates["mode"].to_numpy()
    workloads = d.candidates["workload"].to_numpy()
    pools = pool_keys(d)
    for k, l in d.kl:
        by_mode[(str(workloads[k]), pools[k], l, str(modes[k]))].append(k)
    wsl = sorted({(w, s, l) for (w, s, l, _) in by_mode})
    m.WSLP = pyo.Set(dimen=4, initialize=[(w, s, l, p) for w, s, l in wsl for p in d.periods])
    bounded = _bounded_by_demand(d)
    m.u = pyo.Var(m.WSLP, within=pyo.NonNegativeReals,
                  bounds=lambda m, w, s, l, p: (0, d.demand[(w, p)] if bounded else None))

    def capacity(m: pyo.ConcreteModel, w: str, s: str, l: str, p: str, mode: str) -> Any:
        return sum(serving_rate(d, k, w, p) * m.x[k, l, p]
                   for k in by_mode.get((w, s, l, mode), []))

    def prefill(m: pyo.ConcreteModel, w: str, s: str, l: str, p: str) -> object:
        return m.u[w, s, l, p] <= capacity(m, w, s, l, p, "aggregated") + capacity(
            m, w, s, l, p, "prefill")

    def decode(m: pyo.ConcreteModel, w: str, s: str, l: str, p: str) -> object:
        if not by_mode.get((w, s, l, "prefill")) and not by_mode.get((w, s, l, "decode")):
            return pyo.Constraint.Skip  # same row as `prefill`
        return m.u[w, s, l, p] <= capacity(m, w, s, l, p, "aggregated") + capacity(
            m, w, s, l, p, "decode")

    systems_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    for w, s, l in wsl:
        systems_of[(w, l)].append(s)
    m.serve_prefill = pyo.Constraint(m.WSLP, rule=prefill)
    m.serve_decode = pyo.Constraint(m.WSLP, rule=decode)
    m.serve = pyo.Constraint(
        m.WLP, rule=lambda m, w, l, p: m.y[w, l, p] <= sum(m.u[w, s, l, p]
                                                          for s in systems_of[(w, l)])
    )


def serving_rate(d: ModelData, k: int, w: str, p: str) -> float:
    """ρ_kp = min(rate_k, demand[w,p]): what one replica of k can serve towards w's demand in
    p (thousand tok/s). Only when minimizing cost: maximizing the served scale multiplies the
    demand by a variable."""
    if d.objective != Objective.min_tco:
        return d.rate[k]
    return min(d.rate[k], d.demand[(w, p)])


def replica_limit(d: ModelData, k: int, w: str, p: str) -> int:
    """⌈demand[w,p] ÷ ρ_kp⌉: replicas of k (serving w) that alone serve all of w's demand in p."""
    rate = serving_rate(d, k, w, p)
    return math.ceil(d.demand[(w, p)] / rate - 1e-9) if rate > 0 else 0


def pool_keys(d: ModelData) -> list[str]:
    """Per candidate, the pool its prefill and decode replicas must match within."""
    systems = d.candidates["system"].astype(str)
    if "precision" not in d.candidates.columns:
        return list(systems)
    return list(systems + "@" + d.candidates["precision"].astype(str))


def add_accelerators(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Σ_{k of system s} accelerators_k · x[k,l,p] ≤ accelerators_s · availability_s ·
    n[s,l,p]. Replica sizes divide, or are multiples of, the scale-up domain, so packing whole
    replicas into the counted accelerators is valid."""
    systems = d.candidates["system"].to_numpy()
    by_system: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k, l in d.kl:
        by_system[(str(systems[k]), l)].append(k)

    def rule(m: pyo.ConcreteModel, s: str, l: str, p: str) -> object:
        used = sum(d.replica_accelerators[k] * m.x[k, l, p] for k in by_system.get((s, l), []))
        if isinstance(used, int):
            return pyo.Constraint.Skip
        return used <= d.accelerators[s] * d.availability[s] * m.n[s, l, p]

    m.accelerators = pyo.Constraint(m.SLP, rule=rule)


def add_fleet(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Owned sites: n[s,l,p] = existing[s,l,p] + Σ_{q ≤ p} buy[s,l,q] (no resale inside the
    horizon; existing units leave after their last period). Supply caps:
    Σ_l buy[s,l,p] ≤ max_purchases[s]. Cloud sites rent n freely per period (with a quota:
    Σ_s accelerators_s · n[s,l,p] ≤ max_accelerators[l])."""
    order = {p: i for i, p in enumerate(d.periods)}

    def rule(m: pyo.ConcreteModel, s: str, l: str, p: str) -> object:
        bought = sum(m.buy[s, l, q] for q in d.periods[: order[p] + 1])
        return m.n[s, l, p] == d.existing.get((s, l, p), 0) + bought

    m.fleet = pyo.Constraint(m.SLP_owned, rule=rule)

    owned_sites_of: dict[str, list[str]] = defaultdict(list)
    systems_at = _systems_at(d)
    for s, l in d.sl:
        if l in d.owned_sites:
            owned_sites_of[s].append(l)
    # a cap on a system that can be bought nowhere, or a quota at a site where nothing can be
    # rented, constrains nothing: those rows are left out rather than written as `0 ≤ cap`
    capped = [(s, p) for s in d.systems if s in d.max_purchases and owned_sites_of[s]
              for p in d.periods]
    if m.elastic:
        m.supply_slack = pyo.Var(capped, within=pyo.NonNegativeReals)
    m.supply = pyo.Constraint(
        capped,
        rule=lambda m, s, p: sum(m.buy[s, l, p] for l in owned_sites_of[s])
        <= d.max_purchases[s] + (m.supply_slack[s, p] if m.elastic else 0),
    )
    quota_lp = [
        (l, p) for l in d.sites if math.isfinite(d.max_accelerators[l]) and systems_at[l]
        for p in d.periods
    ]
    if m.elastic:
        m.quota_slack = pyo.Var(quota_lp, within=pyo.NonNegativeReals)
    m.quota = pyo.Constraint(
        quota_lp,
        rule=lambda m, l, p: sum(d.accelerators[s] * m.n[s, l, p] for s in systems_at[l])
        <= d.max_accelerators[l] + (m.quota_slack[l, p] if m.elastic else 0),
    )


def add_racks(m: pyo.ConcreteModel, d: ModelData) -> None:
    """n[s,l,p] ≤ systems_per_rack[s,l] · r[s,l,p]; systems per rack = min(⌊rack kW ÷ system
    kW⌋, ⌊rack U ÷ system U⌋), 1 for a whole-rack system; a system that does not fit a site's
    racks (power or cooling) has no (s, l) pair at all."""
    m.racks = pyo.Constraint(
        m.SLP_owned,
        rule=lambda m, s, l, p: m.n[s, l, p] <= d.systems_per_rack[(s, l)] * m.r[s, l, p],
    )


def add_space(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Σ_s r[s,l,p] ≤ rack positions[l,p] (sites with a finite limit)."""
    systems_at = _systems_at(d)
    limited = [
        (l, p) for l in d.owned_sites for p in d.periods
        if math.isfinite(d.rack_limit[(l, p)]) and systems_at[l]
    ]
    if m.elastic:
        m.rack_slack = pyo.Var(limited, within=pyo.NonNegativeReals)
    m.space = pyo.Constraint(
        limited,
        rule=lambda m, l, p: sum(m.r[s, l, p] for s in systems_at[l])
        <= d.rack_limit[(l, p)] + (m.rack_slack[l, p] if m.elastic else 0),
    )


def add_power(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Σ_s facility MW_s · n[s,l,p] ≤ power budget[l,p], facility MW = max IT kW × PUE (or the
    all-in kW per accelerator under the tier cost basis)."""
    limited = [
        (l, p)
        for l in d.owned_sites
        for p in d.periods
        if math.isfinite(d.power_budget_mw[(l, p)])
    ]
    if m.elastic:
        m.power_slack = pyo.Var(limited, within=pyo.NonNegativeReals)
    systems_at = _systems_at(d)

    def rule(m: pyo.ConcreteModel, l: str, p: str) -> object:
        lhs = sum(d.power_mw[(s, l)] * m.n[s, l, p] for s in systems_at[l])
        rhs = d.power_budget_mw[(l, p)] + (m.power_slack[l, p] if m.elastic else 0)
        return pyo.Constraint.Skip if isinstance(lhs, int) else lhs <= rhs

    m.power = pyo.Constraint(limited, rule=rule)


def add_policy(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Vendor share: Σ_{s of v} acc_s n ≤ share · Σ_s acc_s n per period; minimum vendors:
    z[v,p] ≤ Σ_{s of v, l} n[s,l,p] (a vendor counts only if it has systems), Σ_v z[v,p] ≥
    min_vendors (z binary; elastic: + vendors_slack[p]); the budget cap is added with the
    objective."""
    vendors = sorted(set(d.vendor.values()))
    if d.max_vendor_share is not None:
        if m.elastic:
            m.share_slack = pyo.Var(vendors, d.periods, within=pyo.NonNegativeReals)
        m.vendor_share = pyo.Constraint(
            vendors, d.periods,
            rule=lambda m, v, p: sum(
                d.accelerators[s] * m.n[s, l, p] for s, l in d.sl if d.vendor[s] == v
            ) <= d.max_vendor_share * sum(d.accelerators[s] * m.n[s, l, p] for s, l in d.sl)
            + (m.share_slack[v, p] if m.elastic else 0),
        )
    if d.min_vendors is not None:
        m.uses_vendor = pyo.Var(vendors, d.periods, within=pyo.Binary)
        m.vendor_link = pyo.Constraint(
            vendors, d.periods,
            rule=lambda m, v, p: m.uses_vendor[v, p]
            <= sum(m.n[s, l, p] for s, l in d.sl if d.vendor[s] == v),
        )
        if m.elastic:  # a held system that retires can leave fewer vendors than asked
            m.vendors_slack = pyo.Var(d.periods, within=pyo.NonNegativeReals)
        m.min_vendors = pyo.Constraint(
            d.periods, rule=lambda m, p: sum(m.uses_vendor[v, p] for v in vendors)
            + (m.vendors_slack[p] if m.elastic else 0) >= d.min_vendors
        )


def cost_expression(m: pyo.ConcreteModel, d: ModelData) -> object:
    """Σ discounted cost ($M): capex of purchases (annuities over the rest of the horizon)
    + per-installed costs (idle energy, facility, opex, rent, all-in tier) + busy energy
    + occupied racks (rack_cost[l,p] · r[s,l,p])."""
    buys = sum(d.buy_cost[t] * m.buy[t] for t in m.SLP_owned)
    installed = sum(d.installed_cost[t] * m.n[t] for t in m.SLP)
    busy = sum(d.replica_cost[t] * m.x[t] for t in m.KLP if d.replica_cost[t])
    racks = sum(d.rack_cost[(l, p)] * m.r[s, l, p] for s, l, p in m.SLP_owned
                if (l, p) in d.rack_cost)
    return buys + installed + busy + racks


def add_objective(m: pyo.ConcreteModel, d: ModelData) -> None:
    """min_tco: minimize discounted cost. max_served_scale: maximize α (`planner.scale` then
    finds the cheapest plan at that scale). Elastic: + penalties on every slack."""
    m.cost = pyo.Expression(expr=cost_expression(m, d))
    if d.budget_musd is not None:
        if m.elastic:
            m.budget_slack = pyo.Var(within=pyo.NonNegativeReals)
        m.budget = pyo.Constraint(
            expr=m.cost <= d.budget_musd + (m.budget_slack if m.elastic else 0)
        )
    penalty: object = 0
    if m.elastic:
        penalty = ELASTIC_PENALTY["demand"] * sum(m.unserved.values())
        for name, var in (("power", "power_slack"), ("racks", "rack_slack"),
                          ("budget", "budget_slack"), ("quota", "quota_slack"),
                          ("supply", "supply_slack"), ("share", "share_slack"),
                          ("vendors", "vendors_slack")):
            if hasattr(m, var):
                penalty = penalty + ELASTIC_PENALTY[name] * sum(getattr(m, var).values())
    if d.objective == Objective.max_served_scale and not m.elastic:
        m.objective = pyo.Objective(expr=m.alpha, sense=pyo.maximize)
    else:
        m.objective = pyo.Objective(expr=m.cost + penalty, sense=pyo.minimize)


def _systems_at(d: ModelData) -> dict[str, list[str]]:
    at: dict[str, list[str]] = defaultdict(list)
    for s, l in d.sl:
        at[l].append(s)
    return at
