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

Why it is worth having: on bench large the no-resale rule does not bind in the LP (the twelve
period LPs sum to the whole LP, $61.205M), and HiGHS proves more of twelve small MIPs than of
one big one. With 30 s per period, two at a time, each from planner's 60 s plan, the bound is
$62.366M (`python bench/period_bound.py`), where the whole MIP has $62.239M after 60 s and
$62.23M after 600 s; on bench medium 1 s per period gives $10.638M, against $10.618M from the
whole MIP in 60 s (`--family medium --period-seconds 1`). `solve` runs it as a stage before a full MIP that
runs in its own process (`solve.PERIODS_SHARE`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyomo.environ as pyo

from planner.coefficients import ModelData
from planner.formulation import build_model
from planner.polish import MIN_PERIOD_SECONDS, PERIOD_VARIABLES, Values
from planner.schema import Objective


def period_relaxation(data: ModelData, period: str) -> ModelData:
    """The data of `period`'s MIP with the periods' ties relaxed: its `buy` is the purchases
    installed in the period (B above), charged that period's capex only; purchase caps are
    multiplied by the periods up to this one; no budget. Only for min_tco (maximizing the
    served scale shares one scale over all periods)."""
    if data.objective != Objective.min_tco:
        raise ValueError("the period relaxation bounds cost minimization only")
    position = data.periods.index(period)
    after = data.periods[position + 1] if position + 1 < len(data.periods) else None
    capex = {
        (s, l, p): tail - (data.buy_cost[(s, l, after)] if after is not None else 0.0)
        for (s, l, p), tail in data.buy_cost.items() if p == period
    }
    caps = {s: cap * (position + 1) for s, cap in data.max_purchases.items()}
    return replace(data, periods=[period], buy_cost=capex, max_purchases=caps, budget_musd=None)


def splits_by_period(data: ModelData) -> bool:
    """Whether the period relaxation applies and can tell more than the whole MIP: cost
    minimization over two periods or more."""
    return data.objective == Objective.min_tco and len(data.periods) >= 2


def period_relaxation_model(data: ModelData, period: str,
                            values: Values | None = None) -> tuple[pyo.ConcreteModel, Values]:
    """`period_relaxation`'s model, and `values` (a plan of the whole MIP) as a start for it:
    its replicas, systems and racks in the period, and B = n − existing."""
    sliced = period_relaxation(data, period)
    model = build_model(sliced)
    start: Values = {}
    if values:
        for name in ("x", "n", "r", "y", "u"):
            for index in getattr(model, name):
                start[(name, index)] = values.get((name, index), 0.0)
        for index in model.buy:
            installed = values.get(("n", index), 0.0)
            start[("buy", index)] = max(0.0, installed - sliced.existing.get(index, 0))
    return model, start


def period_bound(data: ModelData, values: Values, deadline: float,
                 solve_period: Callable[[pyo.ConcreteModel, Values, float], Any]
                 ) -> tuple[float, Values | None]:
    """Solve each period's relaxation from the plan `values`, in order, each with an equal
    share of the time left before `deadline` (`time.perf_counter()`); `solve_period(model,
    start, time_limit_s)` runs HiGHS and returns its `Run`. Returns the sum of the periods'
    bounds, a lower bound of the whole MIP (nan when a period has none: no time left for it,
    or Ctrl-C), and the plan of the whole MIP the period plans make (`join`), if any."""
    bound, plans = 0.0, {}
    for i, period in enumerate(data.periods):
        limit_s = (deadline - time.perf_counter()) / (len(data.periods) - i)
        if limit_s < MIN_PERIOD_SECONDS:
            return math.nan, None
        model, start = period_relaxation_model(data, period, values)
        run = solve_period(model, start, limit_s)
        if run.interrupted or not math.isfinite(run.bound):
            return math.nan, None
        bound += run.bound
        if run.status.has_plan:
            plans[period] = {(name, index): float(var.value or 0.0)
                             for name in (*PERIOD_VARIABLES, "buy")
                             for index, var in getattr(model, name).items()}
    return bound, join(data, plans) if len(plans) == len(data.periods) else None


def join(data: ModelData, plans: dict[str, Values]) -> Values | None:
    """The plan of the whole MIP that per-period plans (of `period_relaxation_model`s, by
    period) make, its purchases in p being B[p] − B[p−1]; None when they make none: purchases
    fall somewhere (that would be resale), a period buys more than a cap allows, or the whole
    costs more than the budget. Its cost is the sum of the period plans' costs."""
    joined: Values = {key: value for plan in plans.values() for key, value in plan.items()
                      if key[0] != "buy"}
    for s, l in data.sl:
        if l not in data.owned_sites:
            continue
        before = 0
        for p in data.periods:
            installed = round(plans[p].get(("buy", (s, l, p)), 0.0))
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
    """The objective of the whole MIP at `values` ($M): purchases, installed systems and busy
    replicas (`formulation.cost_expression`)."""
    buys = sum(cost * values.get(("buy", key), 0.0) for key, cost in data.buy_cost.items())
    installed = sum(cost * values.get(("n", key), 0.0) for key, cost in data.installed_cost.items())
    busy = sum(cost * values.get(("x", key), 0.0) for key, cost in data.replica_cost.items())
    return buys + installed + busy
