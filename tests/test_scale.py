"""max_served_scale's stages (`planner.scale`): α's LP bound, its rounding to a plan, α's MIP
(in a child on a big fleet), and the cheapest plan at the scale found."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

import planner.scale as scale_module
import planner.solve as solve_module
from planner.coefficients import build_data
from planner.formulation import build_model
from planner.problem import load_problem
from planner.solve import SCALE_KEY, Run, SolveOptions, Status
from tests.conftest import candidate, candidates, toy_problem

TOY_B = candidates(candidate("toy-b", 1200))
"""One option: 1,200 tok/s per 5 kW toy-b system, against a demand of 10,000 tok/s."""


def _scale_problem(power_mw: float) -> dict[str, Any]:
    problem = toy_problem(objective="max_served_scale", systems=["toy-b"])
    problem["sites"][0]["power_mw"] = power_mw
    return problem


@pytest.fixture
def between_systems(write_problem):
    """102.5 kW: the LP fits 20.5 systems (α 2.46), whole systems 20 (α 2.4)."""
    return build_data(load_problem(write_problem(_scale_problem(0.1025))), TOY_B)


def test_rounding_the_lp_gives_a_scale_that_keeps_the_limits(between_systems) -> None:
    search = scale_module._ScaleSearch(between_systems, SolveOptions(mip_gap=0),
                                       time.perf_counter())
    search.relaxation()
    assert search.bound == pytest.approx(2.46)
    search.rounded()
    # 21 systems broke the power by 2.5 kW; the LP re-solved 2.5 kW lower fits 20 exactly
    assert search.alpha == pytest.approx(2.4)
    assert search.plan is not None
    assert sum(v for (name, _), v in search.plan.items() if name == "n") == pytest.approx(20)
    assert not search.proven()


def test_a_scale_not_proven_the_largest_says_how_far_it_may_be(solve_toy, monkeypatch) -> None:
    monkeypatch.setattr(scale_module._ScaleSearch, "mip", lambda self: None)  # out of time
    plan = solve_toy(_scale_problem(0.1025), TOY_B)
    assert plan.served_scale == pytest.approx(2.4) and plan.status.value == "feasible"
    assert "served scale 2.4000× is not proven the largest: at most 2.4600× (2.500% more); " \
           "raise --time-limit" in plan.notes
    assert plan.fleet["systems"].sum() == 20


def test_the_mip_proves_the_scale(solve_toy) -> None:
    plan = solve_toy(_scale_problem(0.1025), TOY_B)
    assert plan.served_scale == pytest.approx(2.4) and plan.status.value == "optimal"
    assert not any("not proven" in note for note in plan.notes)


def test_ctrl_c_in_the_scale_stages_keeps_the_rounded_plan(solve_toy, monkeypatch) -> None:
    monkeypatch.setattr(scale_module._ScaleSearch, "mip",
                        lambda self: setattr(self, "interrupted", True))
    plan = solve_toy(_scale_problem(0.1025), TOY_B)
    assert plan.served_scale == pytest.approx(2.4)
    assert any(note.startswith("interrupted (Ctrl-C)") for note in plan.notes)


def test_alpha_is_part_of_a_warm_start(between_systems) -> None:
    model = build_model(between_systems)
    start = {("n", ("toy-b", "dc1", "p1")): 20.0, SCALE_KEY: 2.4}
    values = solve_module._warm_start(start, model)
    assert values[id(model.alpha)] == 2.4
    assert values[id(model.n["toy-b", "dc1", "p1"])] == 20.0


def test_on_a_big_fleet_the_scale_mip_runs_in_a_child_that_maximizes(between_systems,
                                                                      monkeypatch) -> None:
    # HiGHS ran 46 s of a 9 s limit in this MIP's root on bench x-large, without an interrupt
    # check for 39 s of it: only a child process can be stopped on time
    launched: list[dict[str, Any]] = []

    class FakeChild:
        def __init__(self, data, options, start, maximize=False) -> None:
            launched.append({"start": start, "maximize": maximize})

        def outcome(self):
            return Run(Status.feasible, 2.4, 2.43, 0.0125), {("n", ("toy-b", "dc1", "p1")): 20.0}

    monkeypatch.setattr(scale_module, "_big_fleet", lambda data: True)
    monkeypatch.setattr(scale_module, "_ChildMip", FakeChild)
    search = scale_module._ScaleSearch(between_systems, SolveOptions(time_limit_s=30, mip_gap=0),
                                       time.perf_counter())
    search.relaxation()
    search.mip()
    assert launched == [{"start": {}, "maximize": True}]
    assert (search.alpha, search.bound) == (2.4, 2.43)


def _maximizing_progress_then_hang(data: object, options: object, start: object, send,
                                   ends_at: float) -> None:
    send.send(("progress", 3.0, -math.inf, None))
    send.send(("progress", 2.8, 2.0, {("n", ("s", "l", "p")): 1.0}))
    send.send(("progress", 2.7, 2.5, {("n", ("s", "l", "p")): 2.0}))
    send.send(("progress", 2.9, 2.2, {("n", ("s", "l", "p")): 3.0}))  # neither is better
    time.sleep(3600)


def test_a_killed_maximizing_child_keeps_its_highest_plan_and_lowest_bound() -> None:
    run, plan = solve_module._ChildMip(None, SolveOptions(time_limit_s=2.0), {},
                                       target=_maximizing_progress_then_hang,
                                       maximize=True).outcome()
    assert (run.status, run.objective, run.bound) == (Status.feasible, 2.5, 2.7)
    assert run.gap == pytest.approx(0.2 / 2.5)
    assert plan == {("n", ("s", "l", "p")): 2.0}


def test_no_room_at_all_is_a_scale_of_zero_proven(write_problem) -> None:
    data = build_data(load_problem(write_problem(_scale_problem(0))), TOY_B)
    result = scale_module.solve_max_scale(data, SolveOptions(mip_gap=0), time.perf_counter())
    assert (result.status, result.served_scale) == (Status.optimal, 0.0)


def test_the_cost_stage_minimizes_cost_at_the_floor_of_the_scale(write_problem) -> None:
    # toy-a and toy-b at 1 MW: the cost stage's plan is min_tco's at the scale found
    problem = _scale_problem(1.0)
    problem["systems"] = ["toy-a", "toy-b"]
    data = build_data(load_problem(write_problem(problem)),
                      candidates(candidate("toy-a", 1000), candidate("toy-b", 1200)))
    result = scale_module.solve_max_scale(data, SolveOptions(mip_gap=0), time.perf_counter())
    assert result.status == Status.optimal and result.served_scale is not None
    at_floor = scale_module.scaled(data, result.served_scale)
    assert result.objective == pytest.approx(
        solve_module.solve(at_floor, SolveOptions(mip_gap=0, shadow_prices=False)).objective)


def test_a_reused_solver_gets_its_limit_on_top_of_its_run_time(between_systems) -> None:
    # HiGHS holds a limit against the run time of all its runs: a third LP re-solve on bench
    # x-large stopped after 1.2 s of a 3.2 s limit
    model = solve_module.lp_relaxation(between_systems)
    solver = solve_module._highs(SolveOptions())
    solve_module._run(model, SolveOptions(time_limit_s=5.0), solver=solver)
    before = solver._solver_model.getRunTime()
    solve_module._run(model, SolveOptions(time_limit_s=5.0), solver=solver)
    assert solver._solver_model.getOptionValue("time_limit")[1] == pytest.approx(5.0 + before,
                                                                              abs=0.05)
    assert before > 0


def test_handing_the_model_over_comes_out_of_the_time_limit(between_systems,
                                                            monkeypatch) -> None:
    # Pyomo hands bench x-large's LP to HiGHS in 1.4 s before HiGHS's clock starts: a run of
    # 5 s took 6.4 s. Here the hand-over takes longer than the whole limit
    monkeypatch.setattr(solve_module._Highs, "_hand_over_start", lambda self: time.sleep(0.3))
    model = solve_module.lp_relaxation(between_systems)
    solver = solve_module._highs(SolveOptions())
    solve_module._run(model, SolveOptions(time_limit_s=0.2), solver=solver)
    assert solver._solver_model.getOptionValue("time_limit")[1] == pytest.approx(
        solve_module.MIN_HIGHS_SECONDS, abs=0.005)


def test_a_probe_proves_a_scale_that_whole_systems_serve_and_only_such_a_scale(
        between_systems) -> None:
    search = scale_module._ScaleSearch(between_systems, SolveOptions(mip_gap=0),
                                       time.perf_counter())
    search.relaxation()
    plan = search.feasible_at(2.4)  # 20 systems, 100 kW of 102.5
    assert plan is not None
    assert sum(v for (name, _), v in plan.items() if name == "n") == pytest.approx(20)
    assert search.feasible_at(2.45) is None  # 20.42 systems: 21 do not fit


def test_the_probes_bisect_towards_the_largest_scale_they_prove(between_systems,
                                                                 monkeypatch) -> None:
    probed: list[float] = []

    def serves_up_to_2_43(self: Any, scale: float) -> dict[Any, float] | None:
        probed.append(scale)
        return {("n", ("toy-b", "dc1", "p1")): 20.0} if scale <= 2.43 + 1e-12 else None

    monkeypatch.setattr(scale_module._ScaleSearch, "feasible_at", serves_up_to_2_43)
    search = scale_module._ScaleSearch(between_systems, SolveOptions(mip_gap=0),
                                       time.perf_counter())
    search.relaxation()
    search.rounded()
    search.probes()
    # from [2.4, 2.46]: 2.43 holds, 2.445 and 2.4375 fail, and the bracket is then 0.31% of α
    assert probed == pytest.approx([2.43, 2.445, 2.4375])
    assert search.alpha == pytest.approx(2.43)
    assert search.bound == pytest.approx(2.46)  # a failed probe proves nothing
