"""Improve a plan one period at a time, its owned fleet held fixed (fix-and-optimize).

Once the purchases are fixed, the only rows that tie periods together (the fleet rows
n[s,l,p] = existing + Σ_{q≤p} buy[s,l,q], the purchase caps, the budget) are settled, and the
MIP falls apart into one independent MIP per period: which replicas run where, and what is
rented at cloud sites. Each of those is a twelfth of bench large, small enough for HiGHS's
search, while on the whole model with the same fleet fixed HiGHS does not find a better plan
in a minute (`bench/gap_anatomy.py`, its last two rows). The result is a better plan, never a
bound: another fleet may still be cheaper.

With `move_purchases` the fleet may change a little too: each period's MIP may move purchases
between its period and the next (`period_slice`), which changes the fleet of that period only,
so the periods stay independent. Bench large at 10 s: $62.74–62.75M instead of $62.98M, mostly by
buying one GB200 NVL72 rack a period later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pyomo.environ as pyo

from planner.coefficients import ModelData
from planner.formulation import build_model

Values = dict[tuple[str, Any], float]
"""A plan by (variable name, index), as `solve._values` returns it."""

PERIOD_VARIABLES = ("x", "n", "r", "y", "u")
"""What a period's MIP may change (purchases stay as they are)."""

MIN_PERIOD_SECONDS = 0.05
"""A period is re-solved only with at least this much HiGHS time."""

POLISH_GAP = 1e-4
"""Relative gap at which a period's MIP stops: the periods' gaps add up to at most this."""


def period_slice(data: ModelData, period: str, values: Values,
                 move_purchases: bool = False) -> ModelData:
    """The MIP of one period with the plan's owned fleet as existing systems: the fleet rows
    read n[s,l,p] = n_plan + buy[s,l,p], and `period_model` fixes buy at 0. The budget row is
    dropped; a period's plan is taken only when it costs less, so the total stays within it.
    Every other table keeps its keys: the model looks up only this period's.

    With `move_purchases`, buy[s,l,p] = δ instead moves purchases between p and the next
    period (`purchase_moves`): only n[s,l,p] changes, by δ, so the other periods keep their
    plans, and the capex by δ · (C_p − C_{p+1}), C_p being the cost of a purchase in p (0 past
    the horizon, where a purchase moved out of it is not made); that difference is buy's cost
    here. Purchase caps are left to `purchase_moves`."""
    owned = set(data.owned_sites)
    existing = {(s, l, period): round(values.get(("n", (s, l, period)), 0.0))
                for s, l in data.sl if l in owned}
    sliced = replace(data, periods=[period], existing=existing, budget_musd=None)
    if not move_purchases:
        return sliced
    after = _next(data, period)
    buy_cost = dict(data.buy_cost)
    if after is not None:  # past the last period a purchase costs nothing: C_p stays
        for s, l in data.sl:
            if (s, l, period) in buy_cost:
                buy_cost[(s, l, period)] -= buy_cost[(s, l, after)]
    return replace(sliced, buy_cost=buy_cost, max_purchases={})


def purchase_moves(data: ModelData, period: str, values: Values
                   ) -> dict[tuple[str, str, str], tuple[int, int]]:
    """The range of δ (`period_slice`) per owned (system, site) in `period`: down to −b_p (all
    of p's purchases moved to the next period) and up to b_{p+1} (all of the next period's
    moved to p). Pairs with nothing to move are left out, and so is a system under a purchase
    cap, whose moves could break the cap of the period they move to: `period_model` fixes
    their δ at 0."""
    after = _next(data, period)
    moves = {}
    for s, l in data.sl:
        if l not in data.owned_sites or s in data.max_purchases:
            continue
        here = round(values.get(("buy", (s, l, period)), 0.0))
        later = round(values.get(("buy", (s, l, after)), 0.0)) if after is not None else 0
        if here or later:
            moves[(s, l, period)] = (-here, later)
    return moves


def _next(data: ModelData, period: str) -> str | None:
    i = data.periods.index(period)
    return data.periods[i + 1] if i + 1 < len(data.periods) else None


def values_of(model: pyo.ConcreteModel, names: tuple[str, ...]) -> Values:
    """The values of `model`'s variables `names`, by (variable name, index)."""
    return {(name, index): float(var.value or 0.0)
            for name in names for index, var in getattr(model, name).items()}


def period_start(model: pyo.ConcreteModel, values: Values) -> Values:
    """The plan `values` restricted to a period model's PERIOD_VARIABLES (0 where absent)."""
    return {(name, index): values.get((name, index), 0.0)
            for name in PERIOD_VARIABLES for index in getattr(model, name)}


def period_model(data: ModelData, period: str, values: Values, move_purchases: bool = False
                 ) -> tuple[pyo.ConcreteModel, Values]:
    """The period's model (purchases fixed at 0, or free to move to or from the next period
    with `move_purchases`) and the plan's values of its variables."""
    model = build_model(period_slice(data, period, values, move_purchases))
    moves = purchase_moves(data, period, values) if move_purchases else {}
    for index, var in model.buy.items():
        if index in moves:
            var.domain = pyo.Integers
            var.setlb(moves[index][0])
            var.setub(moves[index][1])
        else:
            var.fix(0)
    return model, period_start(model, values)


def _move_purchases(data: ModelData, period: str, model: pyo.ConcreteModel,
                    values: Values) -> None:
    """Move in `values` the purchases `model` (a `move_purchases` period model) moved."""
    after = _next(data, period)
    for (s, l, _), var in model.buy.items():
        delta = round(var.value or 0.0)
        if not delta:
            continue
        here = ("buy", (s, l, period))
        values[here] = values.get(here, 0.0) + delta
        if after is not None:  # past the last period there is nothing to move from or to
            later = ("buy", (s, l, after))
            values[later] = values.get(later, 0.0) - delta


def period_cost(data: ModelData, period: str, values: Values) -> float:
    """What `values` spends in `period` besides purchases ($M): installed systems, busy
    replicas and occupied racks, the objective of the period's model up to its fixed fleet."""
    installed = sum(data.installed_cost[(s, l, period)] * values.get(("n", (s, l, period)), 0.0)
                    for s, l in data.sl)
    busy = sum(data.replica_cost[(k, l, period)] * values.get(("x", (k, l, period)), 0.0)
               for k, l in data.kl if data.replica_cost[(k, l, period)])
    racks = sum(data.rack_cost[(l, period)] * values.get(("r", (s, l, period)), 0.0)
                for s, l in data.sl if (l, period) in data.rack_cost)
    return installed + busy + racks


def timed_periods(periods: list[str], deadline: float, share_time: bool = True
                  ) -> Iterator[tuple[str, float]]:
    """Each period with its HiGHS time limit, in order: an equal share of the time left before
    `deadline` (`time.perf_counter()`) less the most a period has taken beyond its limit so far
    (build, hand-over, load; measured when the next is asked for), or all of it without
    `share_time`. Ends early once a limit would be under MIN_PERIOD_SECONDS.
    The overrun is the largest so far, not an average: a period HiGHS closes early says
    nothing about it, and averaged in as a negative overrun it gave the periods after it more
    than the time left (bench large at half its demand, seed 22: the polish 0.8 s past its
    deadline, the solve 0.4 s past its limit)."""
    overhead_s = 0.0
    for i, period in enumerate(periods):
        began = time.perf_counter()
        limit_s = ((deadline - began) / (len(periods) - i) - overhead_s if share_time
                   else deadline - began)
        if limit_s < MIN_PERIOD_SECONDS:
            return
        yield period, limit_s
        overhead_s = max(overhead_s, time.perf_counter() - began - limit_s)


def polish(data: ModelData, values: Values, deadline: float,
           solve_period: Callable[[pyo.ConcreteModel, Values, float], Any],
           share_time: bool = True, move_purchases: bool = False) -> tuple[Values, int]:
    """Re-solve each period's MIP from the plan, in order, each with its share of the time
    left before `deadline` (`timed_periods`; all of it without `share_time`, where a node
    limit ends each MIP), and keep a period's new plan when it is cheaper.
    `solve_period(model, start, time_limit_s)` runs HiGHS and returns its `Run`
    (the solution loaded into `model`); an interrupted run ends the polish. Returns the plan
    and how many periods improved."""
    values = dict(values)
    improved = 0
    for period, limit_s in timed_periods(data.periods, deadline, share_time):
        model, start = period_model(data, period, values, move_purchases)
        before = period_cost(data, period, values)
        run = solve_period(model, start, limit_s)
        if run.status.has_plan and run.objective < before - 1e-9 * max(1.0, abs(before)):
            values.update(values_of(model, PERIOD_VARIABLES))
            if move_purchases:
                _move_purchases(data, period, model, values)
            improved += 1
        if run.interrupted:
            break
    return values, improved
