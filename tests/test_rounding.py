"""`solve.round_up`: a relaxed plan made integral without buying capacity it does not need."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pyomo.environ as pyo
import pytest

from planner import solve as solve_module
from planner.coefficients import build_data
from planner.formulation import build_model
from planner.problem import load_problem
from planner.solve import (
    SolveOptions,
    _run,
    _Stages,
    _violation,
    limit_excess,
    lower_limits,
    lp_relaxation,
    repair_steps,
    round_up,
    solve,
    tighten,
)
from tests.conftest import candidate, candidates, toy_problem


def overshoot(model: pyo.ConcreteModel) -> dict[str, float]:
    """Every constraint the current values break, by name, with how far."""
    broken = {con.name: _violation(con)
              for con in model.component_data_objects(pyo.Constraint, active=True)}
    return {name: amount for name, amount in broken.items() if amount > 1e-6}


def _data(write_problem, demand: float, *rows, sites=None):
    """Toy-a systems only, `demand` tok/s in one period, the candidate `rows` (at `sites`,
    default the toy problem's one)."""
    problem = toy_problem(systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": demand}
    if sites is not None:
        problem["sites"] = sites
    return build_data(load_problem(write_problem(problem)), candidates(*rows))


def _round_serving(m: pyo.ConcreteModel, data, served: float) -> None:
    """Round a hand-set relaxed plan of dc1 that serves `served` thousand tok/s; it must keep
    every limit."""
    for var in m.u.values():
        var.set_value(served)
    m.y["chat", "dc1", "p1"].set_value(served)
    round_up(m, data)
    assert limit_excess(m, data) == {}


def test_solver_noise_above_a_whole_replica_buys_no_extra_system(write_problem) -> None:
    # 8 TP1 replicas of 1,000 tok/s fill one 8-GPU system exactly; a relaxation reporting
    # 8.000001 replicas must not round to 9 replicas and so to a second system
    data = _data(write_problem, 8000, candidate("toy-a", 1000, accelerators=1))
    m = lp_relaxation(data)
    m.x[0, "dc1", "p1"].set_value(8.000001)
    _round_serving(m, data, 8.0)
    assert m.x[0, "dc1", "p1"].value == 8
    assert m.n["toy-a", "dc1", "p1"].value == 1
    assert overshoot(m) == {}


def test_a_shortfall_is_topped_up_with_the_fewest_accelerators(write_problem) -> None:
    # 9,500 tok/s: 8 TP1 replicas (8,000) leave 1,500 short; one TP2 replica (2,100 tok/s,
    # 2 GPUs) covers it where TP1 needs 2 replicas (2 GPUs) too; the tie goes to the faster
    # option, and 10 GPUs need two systems
    data = _data(write_problem, 9500, candidate("toy-a", 1000, accelerators=1),
                 candidate("toy-a", 2100, accelerators=2))
    m = lp_relaxation(data)
    m.x[0, "dc1", "p1"].set_value(8.3)
    m.x[1, "dc1", "p1"].set_value(0.35)
    _round_serving(m, data, 9.5)
    assert (m.x[0, "dc1", "p1"].value, m.x[1, "dc1", "p1"].value) == (8, 1)
    assert m.n["toy-a", "dc1", "p1"].value == 2
    assert m.r["toy-a", "dc1", "p1"].value == math.ceil(2 / data.systems_per_rack[("toy-a", "dc1")])


def test_a_replica_faster_than_the_demand_counts_only_the_demand_when_rounding(
        write_problem) -> None:
    # demand 1,000 tok/s; the model counts a 100,000 tok/s replica as 1,000 (serving_rate).
    # 1.2 of them serving 1,200 round down to one, which the serving rows count as 1,000, so
    # 200 tok/s are still short there: one 200 tok/s TP1 replica, and the rows hold
    data = _data(write_problem, 1000, candidate("toy-a", 100_000),
                 candidate("toy-a", 200, accelerators=1))
    m = lp_relaxation(data)
    m.x[0, "dc1", "p1"].set_value(1.2)
    _round_serving(m, data, 1.2)
    assert (m.x[0, "dc1", "p1"].value, m.x[1, "dc1", "p1"].value) == (1, 1)
    assert overshoot(m) == {}


def test_rounded_relaxation_of_a_real_solve_is_integral_and_covers_demand(write_problem) -> None:
    data = _data(write_problem, 123_456, candidate("toy-a", 1000, accelerators=1),
                 candidate("toy-a", 2500, accelerators=2), candidate("toy-a", 9000, accelerators=8))
    m = lp_relaxation(data)
    run = _run(m, SolveOptions(time_limit_s=30, mip_gap=0))
    assert run.status.has_plan
    relaxed_cost = pyo.value(m.cost)
    round_up(m, data)
    assert limit_excess(m, data) == {}
    assert all(float(v.value).is_integer() for v in m.x.values())
    capacity = sum(data.rate[k] * m.x[k, l, p].value for k, l, p in m.x)
    assert capacity >= data.demand[("chat", "p1")] - 1e-9
    assert pyo.value(m.cost) >= relaxed_cost - 1e-9


def _two_sites(write_problem):
    # dc1 is cheaper (no colocation fee) but holds 2.5 toy-a systems of 10 kW; dc2 charges
    # colocation. 3,000 tok/s of 1,000-tok/s single-system replicas: the LP puts 2.5 systems in
    # dc1 and 0.5 in dc2; rounding dc1 up to 3 systems breaks its power by 5 kW
    problem = toy_problem(systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 3000}
    problem["sites"][0]["power_mw"] = 0.025
    problem["sites"].append({**problem["sites"][0], "id": "dc2", "power_mw": 1,
                             "colocation_usd_per_kw_month": 100})
    return build_data(load_problem(write_problem(problem)), candidates(
        candidate("toy-a", 1000, accelerators=8)))


def test_rounding_that_breaks_a_limit_reports_it(write_problem) -> None:
    data = _two_sites(write_problem)
    m = lp_relaxation(data)
    _run(m, SolveOptions(time_limit_s=30, mip_gap=0))
    assert m.n["toy-a", "dc1", "p1"].value == pytest.approx(2.5)
    round_up(m, data)
    assert m.n["toy-a", "dc1", "p1"].value == 3
    assert limit_excess(m, data) == {("power", "dc1", "p1"): pytest.approx(0.005)}


def test_lp_stage_repairs_a_broken_limit_into_the_optimal_plan(write_problem) -> None:
    data = _two_sites(write_problem)
    state = _Stages(data, SolveOptions(time_limit_s=30), time.perf_counter())
    state.relaxation()
    assert state.best is not None
    plan = state.best.model
    assert limit_excess(plan, data) == {}
    assert (plan.n["toy-a", "dc1", "p1"].value, plan.n["toy-a", "dc2", "p1"].value) == (2, 1)
    # the same plan as the MIP's optimum: 3 systems of $100k plus one at dc2 paying 10 kW of
    # colocation for a year
    assert state.best.objective == pytest.approx(0.3 + 10 * 100 * 12 / 1e6)
    assert solve(data, SolveOptions(shadow_prices=False)).objective == \
        pytest.approx(state.best.objective)


def test_an_overshoot_below_one_system_lowers_the_limit_by_a_system(write_problem) -> None:
    # dc1 holds 2.99 toy-a systems of 10 kW: the LP fills it, and rounding to 3 breaks its
    # power by 0.1 kW. Lowered by 0.1 kW only, the LP keeps 2.98, 2.97, ... systems there and
    # rounds to 3 every time; once the overshoot stops shrinking, it is lowered by one
    # system's 10 kW and rounds to 2 (the rest at dc2)
    data = _two_sites(write_problem)
    data = replace(data, power_budget_mw={**data.power_budget_mw, ("dc1", "p1"): 0.0299})
    m = lp_relaxation(data)
    _run(m, SolveOptions(time_limit_s=30, mip_gap=0))
    round_up(m, data)
    broken = limit_excess(m, data)
    assert broken == {("power", "dc1", "p1"): pytest.approx(0.0001)}
    assert repair_steps(m, data, broken) == broken  # the first time, by the overshoot
    key = ("power", "dc1", "p1")
    assert repair_steps(m, data, broken, previous={key: 0.0003}) == broken  # it shrank
    assert repair_steps(m, data, broken, previous=broken) == {key: pytest.approx(0.010)}
    state = _Stages(data, SolveOptions(time_limit_s=30), time.perf_counter())
    state.relaxation()
    assert state.best is not None
    plan = state.best.model
    assert limit_excess(plan, data) == {}
    assert plan.n["toy-a", "dc1", "p1"].value == 2


def test_a_repair_round_that_ends_in_error_is_solved_again_from_scratch(
        write_problem, monkeypatch) -> None:
    # HiGHS can end a re-solve from its basis in "unknown" (an error here): the round is
    # solved again with a fresh solver, and the repair goes on
    data = _two_sites(write_problem)
    calls: list[object] = []
    real_run = solve_module._run

    def run(model, options, warm_start=None, progress=None, solver=None):
        calls.append(solver)
        if len(calls) == 2:
            return solve_module.Run(solve_module.Status.error, math.nan, math.nan, math.nan)
        return real_run(model, options, warm_start, progress, solver)

    monkeypatch.setattr(solve_module, "_run", run)
    state = _Stages(data, SolveOptions(time_limit_s=30), time.perf_counter())
    state.relaxation()
    assert len(calls) == 3 and calls[2] is not calls[1]
    assert state.best is not None and limit_excess(state.best.model, data) == {}


def test_tighten_lowers_each_broken_limit_by_its_overshoot(write_problem) -> None:
    data = _two_sites(write_problem)
    data = replace(data, max_accelerators={**data.max_accelerators, "dc2": 64},
                   max_purchases={"toy-a": 5}, budget_musd=1.0)
    lower = tighten(data, {("power", "dc1", "p1"): 0.005, ("racks", "dc2", "p1"): 0.5,
                           ("quota", "dc2", "p1"): 8, ("supply", "toy-a", "p1"): 1,
                           ("budget", "", ""): 0.25})
    assert lower is not None
    assert lower.power_budget_mw[("dc1", "p1")] == pytest.approx(0.020)
    assert lower.rack_limit[("dc2", "p1")] == data.rack_limit[("dc2", "p1")] - 1
    assert lower.max_accelerators["dc2"] == 56
    assert lower.max_purchases["toy-a"] == 4
    assert lower.budget_musd == pytest.approx(0.75)
    assert data.power_budget_mw[("dc1", "p1")] == pytest.approx(0.025)  # a copy, not in place
    assert tighten(data, {("policy", "min_vendors[p1]", ""): 1.0}) is None


def test_lower_limits_gives_the_rows_of_the_tightened_data(write_problem) -> None:
    # the repair re-solves the LP it has, with the broken limits lowered in place: its limit
    # rows must read exactly as a model built from the tightened data
    data = _two_sites(write_problem)
    data = replace(data, max_accelerators={**data.max_accelerators, "dc2": 64},
                   max_purchases={"toy-a": 5}, budget_musd=1.0)
    lower = tighten(data, {("power", "dc1", "p1"): 0.005, ("quota", "dc2", "p1"): 8,
                           ("supply", "toy-a", "p1"): 1, ("budget", "", ""): 0.25})
    assert lower is not None
    model, fresh, original = build_model(data), build_model(lower), build_model(data)
    lower_limits(model, lower)
    changed = 0
    for name in ("power", "space", "quota", "supply", "budget"):
        uppers = {index: pyo.value(con.upper) for index, con in getattr(model, name).items()}
        assert uppers == {index: pyo.value(con.upper) for index, con in getattr(fresh, name).items()}
        changed += sum(pyo.value(con.upper) != uppers[index]
                       for index, con in getattr(original, name).items())
    assert changed == 4


def test_a_rounding_past_a_held_fleet_uses_less_of_it_rather_than_buying(write_problem) -> None:
    # 5 toy-b stand at dc1 and may not be bought: 40 accelerators hold 13⅓ of its 3-accelerator
    # replicas in the LP; rounded up to 14 they need a sixth toy-b, a purchase its cap of 0
    # refuses. The repair leaves the LP 4 toy-b to fill, whose rounding fits in the 5
    problem = toy_problem(systems=["toy-a"], existing=[{"site": "dc1", "system": "toy-b",
                                                        "count": 5}])
    problem["workloads"][0]["demand"] = {"p1": 10000}
    data = build_data(load_problem(write_problem(problem)),
                      candidates(candidate("toy-a", 1000), candidate("toy-b", 450, 3)))
    assert data.held == ["toy-b"]
    state = _Stages(data, SolveOptions(time_limit_s=30), time.perf_counter())
    state.relaxation()
    assert state.best is not None
    plan = state.best.model
    assert limit_excess(plan, data) == {}
    assert plan.buy["toy-b", "dc1", "p1"].value == 0 and plan.n["toy-b", "dc1", "p1"].value == 5
