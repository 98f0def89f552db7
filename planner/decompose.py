"""A lower bound from one period at a time: the MIP with the no-resale rule dropped.

Capex is charged per period already: `buy_cost[s,l,p]` is the tail Σ_{q≥p} c[s,l,q] of the
discounted per-period capex c (`coefficients.build_data`), so with B[s,l,q] = Σ_{p≤q} buy[s,l,p]
the purchases that are installed in q,

    Σ_p buy_cost[s,l,p] · buy[s,l,p] = Σ_q c[s,l,q] · B[s,l,q],
    n[s,l,q] = existing[s,l,q] + B[s,l,q].

Every cost is then a sum over periods, and only three things tie the periods together: the
fleet rows (B never falls: no resale), the purchase caps on each period's buys, and the budget.
Relax them — B[s,l,q] ≥ 0 free in each period, Σ_l B[s,l,q] ≤ (q's position + 1) × cap, no
budget — and the MIP falls apart into one MIP per period whose optima sum to at most the whole
MIP's. Any lower bound of each period's MIP adds up to a lower bound of the whole MIP.

The relaxation breaks the rule where a period's best fleet is not a subset of the next one's;
Lagrange multipliers on the rule price it back in (`period_bound`), still one period at a time.

Why it is worth having: on bench large the no-resale rule does not bind in the LP (the twelve
period LPs sum to the whole LP, $61.205M), and HiGHS proves more of twelve small MIPs than of
one big one. With 30 s per period, two at a time, each from planner's 60 s plan, the bound is
$62.366M (`python bench/period_bound.py`), where the whole MIP has $62.239M after 60 s and
$62.23M after 600 s; on bench medium 1 s per period gives $10.638M, against $10.618M from the
whole MIP in 60 s (`--family medium --period-seconds 1`), and the Lagrange passes take it to
$10.660M, within 0.1% of the best plan. `solve` runs it after a full MIP that runs in the
solving process rather than a child (`solve.FULL_BEFORE_PERIODS`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pyomo.environ as pyo

from planner.coefficients import ModelData
from planner.formulation import build_model
from planner.polish import PERIOD_VARIABLES, Values, period_start, timed_periods, values_of
from planner.schema import Objective

Multipliers = dict[tuple[str, str, str], float]
"""μ[s,l,p] ≥ 0 per owned (system, site) and period after the first: the price of B[s,l,p] ≥
B[s,l,p−1] (no resale) in the Lagrangian."""


def period_relaxation(data: ModelData, period: str,
                      multipliers: Multipliers | None = None) -> ModelData:
    """The data of `period`'s MIP with the periods' ties relaxed: its `buy` is the purchases
    installed in the period (B above), charged that period's capex c[p] − μ[p] + μ[p+1] (the
    no-resale rows priced by `multipliers`, none by default); purchase caps are multiplied by
    the periods up to this one; no budget. Only for min_tco (maximizing the served scale
    shares one scale over all periods)."""
    if data.objective != Objective.min_tco:
        raise ValueError("the period relaxation bounds cost minimization only")
    position = data.periods.index(period)
    after = data.periods[position + 1] if position + 1 < len(data.periods) else None
    price = multipliers or {}
    capex = {
        (s, l, p): period_capex(data, s, l, p)
        - price.get((s, l, p), 0.0) + (price.get((s, l, after), 0.0) if after else 0.0)
        for (s, l, p) in data.buy_cost if p == period
    }
    caps = {s: cap * (position + 1) for s, cap in data.max_purchases.items()}
    return replace(data, periods=[period], buy_cost=capex, max_purchases=caps, budget_musd=None)


def period_capex(data: ModelData, system: str, site: str, period: str) -> float:
    """c[s,l,p]: the capex of a purchased system charged in `period` ($M), the difference of
    the tails `buy_cost` holds."""
    position = data.periods.index(period)
    after = data.periods[position + 1] if position + 1 < len(data.periods) else None
    later = data.buy_cost[(system, site, after)] if after is not None else 0.0
    return data.buy_cost[(system, site, period)] - later


def splits_by_period(data: ModelData) -> bool:
    """Whether the period relaxation applies and can tell more than the whole MIP: cost
    minimization over two periods or more."""
    return data.objective == Objective.min_tco and len(data.periods) >= 2


def period_relaxation_model(data: ModelData, period: str, values: Values | None = None,
                            multipliers: Multipliers | None = None
                            ) -> tuple[pyo.ConcreteModel, Values]:
    """`period_relaxation`'s model, and `values` (a plan of the whole MIP) as a start for it:
    its replicas, systems and racks in the period, and B = n − existing."""
    sliced = period_relaxation(data, period, multipliers)
    model = build_model(sliced)
    start: Values = {}
    if values:
        start = period_start(model, values)
        for index in model.buy:
            installed = values.get(("n", index), 0.0)
            start[("buy", index)] = max(0.0, installed - sliced.existing.get(index, 0))
    return model, start


LAGRANGE_PASSES = 8
"""Passes over the periods at most: the first with the no-resale rule dropped, each later one
with it priced back in by Lagrange multipliers moved along the subgradient."""
PASS_SHARE = 0.5
"""Share of the time left that each pass after the first gets. The first, the plain
relaxation, may take all of it: what its periods leave (HiGHS closes most of them before their
share is out) goes to the later passes."""
STEP_SHRINK = 0.8
"""Factor on the subgradient step after each pass (Polyak's step, θ from 1 down)."""


def period_bound(data: ModelData, values: Values, deadline: float,
                 solve_period: Callable[[pyo.ConcreteModel, Values, float], Any],
                 upper: float = math.inf, gap: float = 0.0,
                 share_time: bool = True) -> tuple[float, Values | None]:
    """A lower bound of the whole MIP from its periods one at a time, and the cheapest plan of
    the whole MIP their plans make (`join`), if any.

    Pass 0 solves each period's relaxation from the plan `values`; its bounds add up to a lower
    bound. Each later pass prices the no-resale rule back in, the Lagrangian

        L(μ) = Σ_p min [cost_p − (μ[p] − μ[p+1]) · B[p]] ≤ the whole MIP's optimum, μ ≥ 0,

    for one period at a time too, after a subgradient step towards the rule's breaches:
    μ[p] ← max(0, μ[p] + θ (upper − L) ÷ ‖g‖² · g[p]) with g[p] = B[p−1] − B[p], and μ kept
    where each period's capex stays ≥ 0 (so no period buys without end). The passes stop when
    the plans keep the rule (no component of g moves μ), the bound is within `gap` of `upper`
    (the best plan's cost), or the time runs out: the first pass may use all the time left
    before `deadline` (`time.perf_counter()`), each later one PASS_SHARE of it, split equally
    over its periods; without `share_time` every period may use all the time left (a node
    limit ends each MIP). `solve_period(model, start, time_limit_s)` runs HiGHS and returns its
    `Run`; a pass in which a period has no bound (no time left for it, or Ctrl-C) bounds
    nothing. Returns (nan, None) when no pass did."""
    multipliers: Multipliers = {}
    bound, best_plan, theta = math.nan, None, 1.0
    for done in range(LAGRANGE_PASSES):
        now = time.perf_counter()
        share = PASS_SHARE if 0 < done < LAGRANGE_PASSES - 1 and share_time else 1.0
        passed = _one_pass(data, values, now + (deadline - now) * share, solve_period, multipliers,
                           share_time)
        if passed is None:
            break
        lagrangian, plans = passed
        bound = lagrangian if math.isnan(bound) else max(bound, lagrangian)
        joined = join(data, plans)
        if joined is not None and plan_cost(data, joined) < upper:
            best_plan, upper = joined, plan_cost(data, joined)
        # the subgradient's components that move μ: breaches, and slack where μ is priced
        moving = {key: g for key, g in _breaches(data, plans).items()
                  if g > 0 or (g < 0 and multipliers.get(key, 0.0) > 0)}
        if not moving or not math.isfinite(upper) or upper - bound <= gap * abs(upper):
            break
        step = theta * (upper - lagrangian) / sum(g * g for g in moving.values())
        multipliers = _capped(data, {**multipliers, **{
            key: max(0.0, multipliers.get(key, 0.0) + step * g) for key, g in moving.items()}})
        theta *= STEP_SHRINK
    return bound, best_plan


def _one_pass(data: ModelData, values: Values, deadline: float,
              solve_period: Callable[[pyo.ConcreteModel, Values, float], Any],
              multipliers: Multipliers, share_time: bool = True
              ) -> tuple[float, dict[str, Values]] | None:
    """Each period's relaxation under `multipliers`, each with its share of the time left
    before `deadline` (`planner.polish.timed_periods`; all of it without `share_time`): the
    sum of their bounds (L(μ)) and their plans; None when a period has no bound or no time."""
    total, plans, bounded = 0.0, {}, 0
    for period, limit_s in timed_periods(data.periods, deadline, share_time):
        model, start = period_relaxation_model(data, period, values, multipliers)
        run = solve_period(model, start, limit_s)
        if run.interrupted or not math.isfinite(run.bound):
            return None
        total += run.bound
        bounded += 1
        if run.status.has_plan:
            plans[period] = values_of(model, (*PERIOD_VARIABLES, "buy"))
    return (total, plans) if bounded == len(data.periods) else None


def _breaches(data: ModelData, plans: dict[str, Values]) -> Multipliers:
    """g[s,l,p] = B[p−1] − B[p], the subgradient of L at μ: how far the period plans break the
    no-resale rule (negative where they keep it with room). Empty without a plan per period."""
    if len(plans) < len(data.periods):
        return {}
    breach: Multipliers = {}
    for s, l in _owned_pairs(data):
        for before, p in pairwise(data.periods):
            breach[(s, l, p)] = _installed(plans, s, l, before) - _installed(plans, s, l, p)
    return breach


def _installed(plans: dict[str, Values], system: str, site: str, period: str) -> int:
    """B[s,l,p] of the period plans: the purchased systems installed in `period`."""
    return round(plans[period].get(("buy", (system, site, period)), 0.0))


def _capped(data: ModelData, multipliers: Multipliers) -> Multipliers:
    """`multipliers` lowered, last period first, until every period's capex c[p] − μ[p] +
    μ[p+1] is ≥ 0: a negative price would have a period without a power or rack limit buy
    without end, and any μ ≥ 0 still gives a lower bound."""
    capped = dict(multipliers)
    for s, l in {(s, l) for s, l, _ in multipliers}:
        following = 0.0
        for p in reversed(data.periods[1:]):
            capped[(s, l, p)] = min(capped.get((s, l, p), 0.0),
                                    period_capex(data, s, l, p) + following)
            following = capped[(s, l, p)]
    return capped


def _owned_pairs(data: ModelData) -> list[tuple[str, str]]:
    return [(s, l) for s, l in data.sl if l in data.owned_sites]


def join(data: ModelData, plans: dict[str, Values]) -> Values | None:
    """The plan of the whole MIP that per-period plans (of `period_relaxation_model`s, by
    period) make, its purchases in p being B[p] − B[p−1]; None when they make none: purchases
    fall somewhere (that would be resale), a period buys more than a cap allows, or the whole
    costs more than the budget, or a period has no plan. Its cost is the sum of the period
    plans' costs under the relaxation's own prices (no multipliers)."""
    if any(p not in plans for p in data.periods):
        return None
    joined: Values = {key: value for plan in plans.values() for key, value in plan.items()
                      if key[0] != "buy"}
    for s, l in _owned_pairs(data):
        before = 0
        for p in data.periods:
            installed = _installed(plans, s, l, p)
            if installed < before:
                return None
            joined[("buy", (s, l, p))] = installed - before
            before = installed
    for s, cap in data.max_purchases.items():
        for p in data.periods:
            if sum(joined.get(("buy", (s, l, p)), 0.0) for l in data.owned_sites) > cap + 0.5:
                return None
    if data.budget_musd is not None and plan_cost(data, joined) > data.budget_musd + 1e-9:
        return None
    return joined


def plan_cost(data: ModelData, values: Values) -> float:
    """The objective of the whole MIP at `values` ($M): purchases, installed systems, busy
    replicas and occupied racks (`formulation.cost_expression`)."""
    buys = sum(cost * values.get(("buy", key), 0.0) for key, cost in data.buy_cost.items())
    installed = sum(cost * values.get(("n", key), 0.0) for key, cost in data.installed_cost.items())
    busy = sum(cost * values.get(("x", key), 0.0) for key, cost in data.replica_cost.items())
    racks = sum(data.rack_cost[(index[1], index[2])] * value
                for (name, index), value in values.items()
                if name == "r" and (index[1], index[2]) in data.rack_cost)
    return buys + installed + busy + racks
