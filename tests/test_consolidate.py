"""`consolidate`: a rounded plan gives back the systems it does not need."""

from __future__ import annotations

import time

import pyomo.environ as pyo
import pytest

from planner.coefficients import build_data
from planner.consolidate import consolidate, fit_fleet
from planner.problem import load_problem
from planner.solve import SolveOptions, _Stages, limit_excess, lp_relaxation
from tests.conftest import candidate, candidates, toy_problem
from tests.test_rounding import _data, overshoot


def _plan(data, replicas: dict[tuple[int, str], int]) -> pyo.ConcreteModel:
    """A model holding an integral plan: `replicas` per (candidate, site), the fewest systems
    that hold them."""
    model = lp_relaxation(data)
    for (k, l, _), var in model.x.items():
        var.set_value(replicas.get((k, l), 0))
    fit_fleet(model, data)
    return model


def test_a_replica_beyond_the_demand_goes_with_its_system(write_problem) -> None:
    # 9 TP1 replicas of 1,000 tok/s for 8,000 tok/s: the ninth needs a second 8-GPU system
    data = _data(write_problem, 8000, candidate("toy-a", 1000, accelerators=1))
    model = _plan(data, {(0, "dc1"): 9})
    assert model.n["toy-a", "dc1", "p1"].value == 2
    before = pyo.value(model.cost)
    assert consolidate(model, data) == 1
    assert (model.x[0, "dc1", "p1"].value, model.n["toy-a", "dc1", "p1"].value) == (8, 1)
    assert overshoot(model) == {}
    assert pyo.value(model.cost) == pytest.approx(before - 0.1)  # one $100k system


def test_a_consolidation_told_to_stop_gives_back_no_more(write_problem) -> None:
    # Ctrl-C or the time limit: on bench x-large at 2.9× its demand consolidating took 6 s
    data = _data(write_problem, 8000, candidate("toy-a", 1000, accelerators=1))
    model = _plan(data, {(0, "dc1"): 9})
    assert consolidate(model, data, stop=lambda: True) == 0
    assert (model.x[0, "dc1", "p1"].value, model.n["toy-a", "dc1", "p1"].value) == (9, 2)


def test_replicas_move_to_room_on_systems_already_counted(write_problem) -> None:
    # 6 replicas at dc1 and 2 at dc2, one system each: dc2's (with its colocation fee) goes,
    # its 2 replicas fill dc1's system
    site = toy_problem()["sites"][0]
    sites = [site, {**site, "id": "dc2", "colocation_usd_per_kw_month": 100}]
    data = _data(write_problem, 8000, candidate("toy-a", 1000, accelerators=1), sites=sites)
    model = _plan(data, {(0, "dc1"): 6, (0, "dc2"): 2})
    assert consolidate(model, data) == 1
    assert model.x[0, "dc1", "p1"].value == 8
    assert model.x[0, "dc2", "p1"].value == 0
    assert (model.n["toy-a", "dc1", "p1"].value, model.n["toy-a", "dc2", "p1"].value) == (1, 0)
    assert overshoot(model) == {}


def test_the_racks_a_system_frees_count_in_its_saving(write_problem) -> None:
    # 2 replicas on dc1's system, 6 on dc2's. Moving dc1's two to dc2 costs $175,200 of energy
    # there (10 kW each at $1/kWh for a year), more than dc1's $100k system but less than the
    # system and its rack ($10k a month): the plan is cheaper without dc1's system
    site = toy_problem()["sites"][0]
    sites = [{**site, "rack_usd_per_month": 10_000},
             {**site, "id": "dc2", "electricity_usd_per_kwh": 1.0}]
    data = _data(write_problem, 8000, candidate("toy-a", 1000, accelerators=1, power_kw=10),
                 sites=sites)
    model = _plan(data, {(0, "dc1"): 2, (0, "dc2"): 6})
    before = pyo.value(model.cost)
    assert consolidate(model, data) == 1
    assert (model.n["toy-a", "dc1", "p1"].value, model.x[0, "dc2", "p1"].value) == (0, 8)
    assert pyo.value(model.cost) == pytest.approx(before - 0.1 - 0.12 + 2 * 0.0876)


def test_a_smaller_replica_takes_the_place_of_a_larger_one(write_problem) -> None:
    # two TP4 replicas of 4,000 tok/s and a TP2 of 1,900 for 7,800 tok/s: 10 GPUs, two
    # systems; one TP4 and two TP2 serve the 7,800 on 8 GPUs, one system
    data = _data(write_problem, 7800, candidate("toy-a", 4000, accelerators=4),
                 candidate("toy-a", 1900, accelerators=2))
    model = _plan(data, {(0, "dc1"): 2, (1, "dc1"): 1})
    assert model.n["toy-a", "dc1", "p1"].value == 2
    assert consolidate(model, data) == 1
    assert (model.x[0, "dc1", "p1"].value, model.x[1, "dc1", "p1"].value) == (1, 2)
    assert model.n["toy-a", "dc1", "p1"].value == 1
    assert overshoot(model) == {}


def test_nothing_goes_that_the_demand_needs(write_problem) -> None:
    # 9 replicas for 8,500 tok/s: all are needed, and there is no smaller option
    data = _data(write_problem, 8500, candidate("toy-a", 1000, accelerators=1))
    model = _plan(data, {(0, "dc1"): 9})
    assert consolidate(model, data) == 0
    assert (model.x[0, "dc1", "p1"].value, model.n["toy-a", "dc1", "p1"].value) == (9, 2)


def test_an_owned_system_bought_earlier_is_not_given_back(write_problem) -> None:
    # demand falls from 16,000 to 8,000 tok/s: the second system, bought in p1, stays in p2
    # (no resale), so dropping p2's ninth replica saves nothing and is not done
    problem = toy_problem(systems=["toy-a"], periods=[{"id": "p1", "hours": 4380},
                                                      {"id": "p2", "hours": 4380}])
    problem["workloads"][0]["demand"] = {"p1": 16000, "p2": 8000}
    data = build_data(load_problem(write_problem(problem)),
                      candidates(candidate("toy-a", 1000, accelerators=1)))
    model = _plan(data, {(0, "dc1"): 16})
    model.x[0, "dc1", "p2"].set_value(9)
    fit_fleet(model, data)
    assert consolidate(model, data) == 0
    assert model.x[0, "dc1", "p2"].value == 9


def _two_vendors(write_problem, min_vendors: int | None):
    # 6 replicas on a toy-a (toyco) and 2 on a toy-b (otherco), 8,000 tok/s: toy-b's replicas
    # fit on toy-a's system
    problem = toy_problem(policy={"min_vendors": min_vendors} if min_vendors else {})
    problem["workloads"][0]["demand"] = {"p1": 8000}
    data = build_data(load_problem(write_problem(problem)), candidates(
        candidate("toy-a", 1000, accelerators=1), candidate("toy-b", 1000, accelerators=1)))
    model = _plan(data, {(0, "dc1"): 6, (1, "dc1"): 2})
    if min_vendors:
        for var in model.uses_vendor.values():
            var.set_value(1)
    return data, model


def test_the_lp_stage_keeps_a_consolidation_that_saves(write_problem) -> None:
    data, model = _two_vendors(write_problem, None)
    state = _Stages(data, SolveOptions(time_limit_s=30), time.perf_counter())
    state._consolidated(model)
    assert model.n["toy-b", "dc1", "p1"].value == 0
    assert model.x[0, "dc1", "p1"].value == 8
    assert limit_excess(model, data) == {} and overshoot(model) == {}


def test_the_lp_stage_undoes_a_consolidation_that_breaks_a_policy(write_problem) -> None:
    # with two vendors required, dropping the toy-b system breaks the policy: the rounded plan
    # stays as it was
    data, model = _two_vendors(write_problem, 2)
    assert limit_excess(model, data) == {}
    state = _Stages(data, SolveOptions(time_limit_s=30), time.perf_counter())
    state._consolidated(model)
    assert (model.n["toy-a", "dc1", "p1"].value, model.n["toy-b", "dc1", "p1"].value) == (1, 1)
    assert (model.x[0, "dc1", "p1"].value, model.x[1, "dc1", "p1"].value) == (6, 2)
    assert limit_excess(model, data) == {}
