"""`solve.round_up`: a relaxed plan made integral without buying capacity it does not need."""

from __future__ import annotations

import math

import pyomo.environ as pyo

from planner.coefficients import build_data
from planner.formulation import build_model
from planner.problem import load_problem
from planner.solve import SolveOptions, _run, overshoot, round_up
from tests.conftest import candidate, candidates, toy_problem


def _data(write_problem, demand: float, *rows):
    problem = toy_problem(systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": demand}
    return build_data(load_problem(write_problem(problem)), candidates(*rows))


def test_solver_noise_above_a_whole_replica_buys_no_extra_system(write_problem) -> None:
    # 8 TP1 replicas of 1,000 tok/s fill one 8-GPU system exactly; a relaxation reporting
    # 8.000001 replicas must not round to 9 replicas and so to a second system
    data = _data(write_problem, 8000, candidate("toy-a", 1000, accelerators=1))
    m = build_model(data, relax_small_replicas=True)
    m.x[0, "dc1", "p1"].set_value(8.000001)
    for var in m.u.values():
        var.set_value(8.0)
    m.y["chat", "dc1", "p1"].set_value(8.0)
    assert round_up(m, data)
    assert m.x[0, "dc1", "p1"].value == 8
    assert m.n["toy-a", "dc1", "p1"].value == 1
    assert overshoot(m) == {}


def test_a_shortfall_is_topped_up_with_the_fewest_accelerators(write_problem) -> None:
    # 9,500 tok/s: 8 TP1 replicas (8,000) leave 1,500 short; one TP2 replica (2,100 tok/s,
    # 2 GPUs) covers it where TP1 needs 2 replicas (2 GPUs) too; the tie goes to the faster
    # option, and 10 GPUs need two systems
    data = _data(write_problem, 9500, candidate("toy-a", 1000, accelerators=1),
                 candidate("toy-a", 2100, accelerators=2))
    m = build_model(data, relax_small_replicas=True)
    m.x[0, "dc1", "p1"].set_value(8.3)
    m.x[1, "dc1", "p1"].set_value(0.35)
    for var in m.u.values():
        var.set_value(9.5)
    m.y["chat", "dc1", "p1"].set_value(9.5)
    assert round_up(m, data)
    assert (m.x[0, "dc1", "p1"].value, m.x[1, "dc1", "p1"].value) == (8, 1)
    assert m.n["toy-a", "dc1", "p1"].value == 2
    assert m.r["toy-a", "dc1", "p1"].value == math.ceil(2 / data.systems_per_rack[("toy-a", "dc1")])


def test_rounded_relaxation_of_a_real_solve_is_integral_and_covers_demand(write_problem) -> None:
    data = _data(write_problem, 123_456, candidate("toy-a", 1000, accelerators=1),
                 candidate("toy-a", 2500, accelerators=2), candidate("toy-a", 9000, accelerators=8))
    m = build_model(data, relax_small_replicas=True)
    run = _run(m, SolveOptions(time_limit_s=30, mip_gap=0))
    assert run.status.has_plan
    relaxed_cost = pyo.value(m.cost)
    assert round_up(m, data)
    assert all(float(v.value).is_integer() for v in m.x.values())
    capacity = sum(data.rate[k] * m.x[k, l, p].value for k, l, p in m.x)
    assert capacity >= data.demand[("chat", "p1")] - 1e-9
    assert pyo.value(m.cost) >= relaxed_cost - 1e-9
