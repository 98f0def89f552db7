"""The period relaxation (`planner.decompose`): a hand-solved bound, and against the whole MIP
on random multi-period instances."""

from __future__ import annotations

import math
import random

import pyomo.environ as pyo
import pytest

from planner.coefficients import build_data
from planner.decompose import (
    join,
    period_bound,
    period_relaxation,
    period_relaxation_model,
    plan_cost,
)
from planner.formulation import build_model
from planner.problem import load_problem
from planner.schema import Objective
from planner.solve import Run, SolveOptions, Status, _run, _values
from tests.conftest import candidate, candidates, toy_problem

EXACT = SolveOptions(time_limit_s=30, mip_gap=0, shadow_prices=False)
TOY_A = candidates(candidate("toy-a", 1000))
HALF_YEARS = [{"id": "p1", "hours": 4380}, {"id": "p2", "hours": 4380}]


def _data(write_problem, problem, table=TOY_A):
    return build_data(load_problem(write_problem(problem)), table)


def _periods(data):
    """Each period's relaxation solved exactly: {period: (objective, plan)}."""
    solved = {}
    for period in data.periods:
        model, _ = period_relaxation_model(data, period)
        run = _run(model, EXACT)
        assert run.status == Status.optimal
        solved[period] = (run.objective, _values(model))
    return solved


def _whole(data):
    run = _run(build_model(data), EXACT)
    assert run.status == Status.optimal
    return run.objective


def test_falling_demand_is_where_the_bound_gives_way(write_problem):
    # toy-a: 1,000 tok/s, $50k per system per half-year. Demand 10,000 then 5,000 tok/s: with
    # no resale the whole MIP keeps 10 systems for both halves ($1M); one period at a time,
    # 10 then 5 ($750k), and the plans do not join: 5 of them would be sold in p2
    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 10000, "p2": 5000}
    data = _data(write_problem, problem)
    periods = _periods(data)
    assert _whole(data) == pytest.approx(1.0)
    assert sum(cost for cost, _ in periods.values()) == pytest.approx(0.75)
    assert join(data, {p: plan for p, (_, plan) in periods.items()}) is None


def test_growing_demand_bound_is_the_optimum(write_problem):
    # 5,000 then 10,000 tok/s: buy 5 in each half, $250k + $500k, one period at a time too
    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 5000, "p2": 10000}
    data = _data(write_problem, problem)
    periods = _periods(data)
    assert sum(cost for cost, _ in periods.values()) == pytest.approx(0.75) == _whole(data)
    joined = join(data, {p: plan for p, (_, plan) in periods.items()})
    assert joined is not None and plan_cost(data, joined) == pytest.approx(0.75)
    assert (joined[("buy", ("toy-a", "dc1", "p1"))], joined[("buy", ("toy-a", "dc1", "p2"))]) == (5, 5)
    assert join(data, {"p1": periods["p1"][1]}) is None  # p2 without a plan


def test_relaxation_charges_one_periods_capex_and_loosens_the_ties(write_problem):
    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"],
                          policy={"max_purchases": {"toy-a": 4}, "budget_usd": 2_000_000})
    data = _data(write_problem, problem)
    first, last = (period_relaxation(data, p) for p in data.periods)
    # buy_cost is the capex still to come: $100k bought in p1, $50k in p2
    assert data.buy_cost[("toy-a", "dc1", "p1")] == pytest.approx(0.1)
    assert first.buy_cost == {("toy-a", "dc1", "p1"): pytest.approx(0.05)}
    assert last.buy_cost == {("toy-a", "dc1", "p2"): pytest.approx(0.05)}
    assert (first.max_purchases, last.max_purchases) == ({"toy-a": 4}, {"toy-a": 8})
    assert first.budget_musd is None and first.periods == ["p1"]
    with pytest.raises(ValueError, match="cost minimization"):
        period_relaxation(_data(write_problem, {**problem, "objective": "max_served_scale"}),
                          "p1")
    assert data.objective == Objective.min_tco


def keeps_every_row(data, values) -> bool:
    """Whether the whole MIP with every variable fixed at `values` (0 where absent) is feasible
    to HiGHS."""
    model = build_model(data)
    for name in ("x", "n", "buy", "r", "y", "u"):
        for index, var in getattr(model, name).items():
            var.fix(values.get((name, index), 0.0))
    return _run(model, EXACT).status == Status.optimal


def _random_problem(seed: int) -> dict:
    rng = random.Random(seed)
    periods = [{"id": f"p{i + 1}", "hours": 2190} for i in range(rng.choice([2, 3]))]
    problem = toy_problem(periods=periods, systems=["toy-a", "toy-b"])
    problem["workloads"][0]["demand"] = {
        p["id"]: rng.randrange(1000, 12000, 500) for p in periods}
    problem["sites"][0].update(power_mw=rng.choice([0.06, 0.1, 1.0]), racks=rng.choice([3, 6, 50]))
    if rng.random() < 0.5:
        problem["existing"] = [{"site": "dc1", "system": "toy-a", "count": rng.randrange(1, 6),
                                "retires_after": periods[0]["id"]}]
    if rng.random() < 0.5:
        problem["policy"] = {"max_purchases": {"toy-b": rng.randrange(2, 6)}}
    if rng.random() < 0.5:
        problem["sites"].append({"id": "cloud", "kind": "cloud",
                                 "max_accelerators": rng.choice([16, 64])})
    return problem


@pytest.mark.parametrize("seed", range(20))
def test_period_bound_never_passes_the_whole_mip(seed, write_problem):
    # whole replicas of 1, 2 and 8 accelerators on two systems, falling or growing demand,
    # power and racks that bind, existing systems that retire, purchase caps, a cloud quota
    table = candidates(candidate("toy-a", 1000), candidate("toy-a", 140, accelerators=1),
                       candidate("toy-b", 1200), candidate("toy-b", 330, accelerators=2))
    data = _data(write_problem, _random_problem(seed), table)
    whole = _run(build_model(data), EXACT)
    if whole.status == Status.infeasible:
        return
    assert whole.status == Status.optimal
    periods = _periods(data)
    bound = sum(cost for cost, _ in periods.values())
    assert bound <= whole.objective + 1e-9
    joined = join(data, {p: plan for p, (_, plan) in periods.items()})
    if joined is not None:
        # the period plans make a plan of the whole MIP, which keeps all of its rows and costs
        # the bound: the bound is the optimum
        assert keeps_every_row(data, joined)
        assert plan_cost(data, joined) == pytest.approx(bound, abs=1e-9)
        assert bound == pytest.approx(whole.objective, rel=1e-9, abs=1e-9)


def _stages(data, values=None):
    import time

    from planner.solve import _load, _Stages

    state = _Stages(data, SolveOptions(time_limit_s=30, shadow_prices=False), time.perf_counter())
    if values is not None:
        model = _load(data, values)
        state.consider(model, pyo.value(model.cost))
    return state


def test_stage_raises_the_bound_and_takes_the_plan_the_periods_make(write_problem):
    # growing demand: the periods' bound, $750k, is the optimum, and their plan (5 + 5) beats
    # the plan it starts from (10 bought in p1 for $1M)
    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 5000, "p2": 10000}
    data = _data(write_problem, problem)
    start = {("n", ("toy-a", "dc1", p)): 10.0 for p in ("p1", "p2")}
    start |= {("buy", ("toy-a", "dc1", "p1")): 10.0, ("x", (0, "dc1", "p1")): 10.0,
              ("x", (0, "dc1", "p2")): 10.0}
    state = _stages(data, start)
    assert state.best.objective == pytest.approx(1.0)
    state.periods()
    assert state.lower == pytest.approx(0.75)
    assert state.best.objective == pytest.approx(0.75)
    assert state.good_enough()


def test_stage_leaves_one_period_and_the_served_scale_alone(write_problem):
    state = _stages(_data(write_problem, toy_problem(systems=["toy-a"])))
    state.periods()
    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"], objective="max_served_scale")
    scaled = _stages(_data(write_problem, problem))
    scaled.periods()
    assert state.lower == scaled.lower == -math.inf
    assert state.best is None and scaled.best is None


def test_a_period_without_a_bound_leaves_no_bound(write_problem):
    # Ctrl-C in a period, or a period stopped before its root LP: the sum would not be a bound
    import time

    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    data = _data(write_problem, problem)
    solved = []

    def solve_period(interrupted, bound):
        def run(model, start, limit_s):
            solved.append(limit_s)
            return Run(Status.feasible, 1.0, bound, 0.0, interrupted)
        return run

    later = time.perf_counter() + 10
    assert math.isnan(period_bound(data, {}, later, solve_period(True, 0.5))[0])
    assert math.isnan(period_bound(data, {}, later, solve_period(False, math.nan))[0])
    assert len(solved) == 2  # each stopped at its first period
    assert math.isnan(period_bound(data, {}, time.perf_counter(), solve_period(False, 0.5))[0])
    assert len(solved) == 2  # no time: no period solved
    assert period_bound(data, {}, later, solve_period(False, 0.5))[0] == pytest.approx(1.0)


def test_ctrl_c_in_the_stage_stops_it_without_a_bound(write_problem, monkeypatch):
    import planner.solve as solve_module

    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    state = _stages(_data(write_problem, problem))
    calls = []

    def interrupted(model, options, warm_start=None, **kwargs):
        calls.append(model)
        return Run(Status.feasible, 1.0, 0.5, 0.5, interrupted=True)

    monkeypatch.setattr(solve_module, "_run", interrupted)
    state.periods()
    assert len(calls) == 1  # the first period's Ctrl-C ends the stage
    assert state.interrupted and not state.go_on()
    assert state.lower == -math.inf and state.best is None


def test_lagrange_passes_price_the_no_resale_rule_back_in(write_problem):
    # falling demand, 10,000 then 5,000 tok/s: dropping the rule bounds the $1M optimum at
    # $750k (10 + 5 systems); pricing B[p2] ≥ B[p1] at μ gives L(μ) = 0.75 + 5μ for μ ≤ $50k
    # (p2's capex), so the passes climb to the optimum
    import time

    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 10000, "p2": 5000}
    data = _data(write_problem, problem)
    passes = []

    def solve_period(model, start, limit_s):
        run = _run(model, EXACT)
        passes.append(run.objective)
        return run

    bound, plan = period_bound(data, {}, time.perf_counter() + 30, solve_period, upper=1.0,
                               gap=1e-6)
    assert bound == pytest.approx(1.0)
    assert sum(passes[:2]) == pytest.approx(0.75)  # the first pass: the rule dropped
    assert len(passes) > 2 and plan is None  # no plan cheaper than the upper bound
    # without an upper bound there is no step to take: one pass
    passes.clear()
    assert period_bound(data, {}, time.perf_counter() + 30, solve_period)[0] == \
        pytest.approx(0.75)
    assert len(passes) == 2


def test_solve_runs_the_periods_between_two_full_mips(write_problem, monkeypatch):
    # the full MIP in this process: its share of the time, then the period relaxation, then
    # the full MIP with what the passes leave; the gap is never reached here
    from planner.solve import FULL_BEFORE_PERIODS, _Stages, solve

    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 10000, "p2": 5000}
    data = _data(write_problem, problem)
    calls = []
    for name in ("restricted", "polish", "periods", "full"):
        stage = getattr(_Stages, name)

        def traced(self, *args, stage=stage, name=name, **kwargs):
            calls.append((name, *args, *kwargs.values()))
            return stage(self, *args, **kwargs)

        monkeypatch.setattr(_Stages, name, traced)
    monkeypatch.setattr(_Stages, "good_enough", lambda self: False)
    # the LP's measured time decides where the full MIP runs: a slow first LP (a cold HiGHS,
    # a busy machine) had sent it to a child, and the periods never ran
    monkeypatch.setattr(_Stages, "in_process", lambda self, limit_s: True)
    monkeypatch.setattr(_Stages, "concurrent", lambda self: False)
    result = solve(data, SolveOptions(time_limit_s=20, shadow_prices=False))
    assert [c[0] for c in calls] == ["restricted", "polish", "full", "periods", "full"]
    assert calls[2] == ("full", FULL_BEFORE_PERIODS)
    assert result.objective == pytest.approx(1.0) and result.bound <= 1.0 + 1e-9


def test_plan_cost_is_the_models_objective_racks_and_all(write_problem):
    # two half-years, 20 kW racks of 2 toy-a at $20k a month: the cost of a plan's values
    # (used by the stages to compare plans) is what the model's objective says of them
    problem = toy_problem(periods=HALF_YEARS, systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 5000, "p2": 10000}
    problem["sites"][0].update(rack_power_kw=20, rack_usd_per_month=20_000)
    data = _data(write_problem, problem)
    model = build_model(data)
    assert _run(model, EXACT).status == Status.optimal
    racks = sum(round(v.value) for v in model.r.values())
    assert racks == 3 + 5  # 5 then 10 systems, 2 a rack
    assert plan_cost(data, _values(model)) == pytest.approx(pyo.value(model.cost), rel=1e-12)
    assert pyo.value(model.cost) == pytest.approx(0.05 * 15 + 0.12 * racks)
