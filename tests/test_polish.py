"""`planner.polish`: a plan re-solved period by period, its purchases fixed or moved a period."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyomo.environ as pyo
import pytest

from planner.coefficients import build_data
from planner.formulation import build_model
from planner.pipeline import candidates_for
from planner.polish import period_cost, polish, timed_periods
from planner.problem import load_problem
from planner.solve import Run, SolveOptions, Status, _load, _run, _values, _warm_start, solve
from tests.conftest import REPO
from tests.test_rounding import overshoot

sys.path.insert(0, str(REPO / "bench"))
from problems import FAMILIES, write_problem

OPTIONS = SolveOptions(time_limit_s=90, mip_gap=1e-6, shadow_prices=False)
"""To optimality: forecast-multi-period closes in 6-9 s, but took 25-30 s in some runs on a
machine busy with other solves, and 30 s then ended it short of 1e-6."""


@pytest.fixture(scope="module")
def cloud_plan():
    """multi-site-cloud solved to optimality: owned halls, a cloud region, two periods."""
    inputs = load_problem(REPO / "problems" / "multi-site-cloud.yaml")
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, OPTIONS)
    assert result.status.value == "optimal"
    return data, _values(result.model), result.objective


def _solve_period(model: pyo.ConcreteModel, start: dict, limit_s: float):
    return _run(model, SolveOptions(time_limit_s=limit_s, mip_gap=1e-6), _warm_start(start, model))


def _wasteful(data, values: dict) -> dict:
    """The plan with two more systems rented at every cloud site in every period."""
    wasteful = dict(values)
    for s, l in data.sl:
        if l not in data.owned_sites:
            for p in data.periods:
                wasteful[("n", (s, l, p))] = wasteful.get(("n", (s, l, p)), 0.0) + 2
    return wasteful


def _total(data, values: dict) -> float:
    return pyo.value(_load(data, values).cost)


def test_polish_returns_each_period_to_its_optimum_and_keeps_the_purchases(cloud_plan) -> None:
    data, optimal, optimum = cloud_plan
    wasteful = _wasteful(data, optimal)
    assert _total(data, wasteful) > optimum + 1e-6
    polished, improved = polish(data, wasteful, time.perf_counter() + 60, _solve_period)
    assert improved == len(data.periods)
    # with the optimal fleet fixed, each period's optimum is the optimal plan's period
    assert _total(data, polished) == pytest.approx(optimum, rel=1e-6)
    for p in data.periods:
        assert period_cost(data, p, polished) == pytest.approx(period_cost(data, p, optimal),
                                                               rel=1e-6)
    for key, value in wasteful.items():
        if key[0] == "buy" or (key[0] == "n" and key[1][1] in data.owned_sites):
            assert polished[key] == value
    assert overshoot(_load(data, polished)) == {}


def test_polish_keeps_a_plan_it_cannot_improve(cloud_plan) -> None:
    data, optimal, _ = cloud_plan
    polished, improved = polish(data, optimal, time.perf_counter() + 60, _solve_period)
    assert improved == 0 and polished == optimal


def test_polish_with_no_time_left_changes_nothing(cloud_plan) -> None:
    data, optimal, _ = cloud_plan
    wasteful = _wasteful(data, optimal)
    calls: list[float] = []

    def never(model: object, start: object, limit_s: float) -> None:
        calls.append(limit_s)

    assert polish(data, wasteful, time.perf_counter(), never) == (wasteful, 0)
    assert calls == []


def test_a_period_closed_early_leaves_the_next_no_more_than_the_time_left(cloud_plan) -> None:
    # the first period ends at once, well within its half of the time: the second may use what
    # is left, not that plus what the first did not use
    data, optimal, _ = cloud_plan
    limits: list[float] = []
    ended = [time.perf_counter()]  # before each period began

    def at_once(model: object, start: object, limit_s: float) -> Run:
        limits.append(limit_s)
        ended.append(time.perf_counter())
        return Run(Status.no_solution, math.nan, math.nan, math.nan)

    deadline = ended[0] + 10
    polish(data, optimal, deadline, at_once)
    assert len(limits) == 2
    assert all(limit_s <= deadline - before for limit_s, before in zip(limits, ended, strict=False))


def test_polish_stops_at_an_interrupted_period(cloud_plan) -> None:
    # Ctrl-C inside HiGHS on the first period: its plan is kept if better, no period follows
    data, optimal, _ = cloud_plan
    wasteful = _wasteful(data, optimal)
    seen: list[float] = []

    def interrupted(model: pyo.ConcreteModel, start: dict, limit_s: float):
        seen.append(limit_s)
        return _solve_period(model, start, limit_s)._replace(interrupted=True)

    polished, improved = polish(data, wasteful, time.perf_counter() + 60, interrupted)
    assert len(seen) == 1 and improved == 1
    first, *rest = data.periods
    assert period_cost(data, first, polished) < period_cost(data, first, wasteful)
    assert all(period_cost(data, p, polished) == period_cost(data, p, wasteful) for p in rest)


def test_bench_shape_polish_never_raises_the_cost(tmp_path: Path) -> None:
    # the benchmark's medium family solved briefly: polishing its plan keeps every row and
    # costs no more
    inputs = load_problem(write_problem(FAMILIES["medium"], tmp_path))
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=3, shadow_prices=False))
    values = _values(result.model)
    polished, _ = polish(data, values, time.perf_counter() + 10, _solve_period)
    assert _total(data, polished) <= _total(data, values) + 1e-9
    assert overshoot(_load(data, polished)) == {}


@pytest.fixture(scope="module")
def buying_plan():
    """forecast-multi-period solved to optimality: one owned hall, four periods, B200s bought
    in the last two (15, then 8)."""
    inputs = load_problem(REPO / "problems" / "forecast-multi-period.yaml")
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, OPTIONS)
    assert result.status.value == "optimal"
    values = _values(result.model)
    b200 = [key for key, value in values.items() if key[0] == "buy" and value > 0.5
            and key[1][0] == "nvidia-hgx-b200"]
    assert [round(values[key]) for key in sorted(b200, key=lambda k: data.periods.index(k[1][2]))
            ] == [15, 8]
    return data, values, result.objective


def _bought(data, values: dict, system: str, period: str, extra: int) -> dict:
    """`values` with `extra` more of `system` bought in `period` (installed from then on)."""
    (site,) = data.owned_sites
    changed = dict(values)
    key = ("buy", (system, site, period))
    changed[key] = changed.get(key, 0.0) + extra
    for p in data.periods[data.periods.index(period):]:
        n = changed.get(("n", (system, site, p)), 0.0) + extra
        changed[("n", (system, site, p))] = n
        changed[("r", (system, site, p))] = math.ceil(n / data.systems_per_rack[(system, site)])
    return changed


def _bought_early(data, values: dict) -> dict:
    """`values` with the 8 B200s of 2028H2 bought in 2028H1 instead."""
    early = _bought(data, values, "nvidia-hgx-b200", "2028H1", 8)
    return _bought(data, early, "nvidia-hgx-b200", "2028H2", -8)


def _bought_no_more_often(data, after: dict, before: dict) -> bool:
    """Whether no owned (system, site) is bought more often over the horizon in `after` than
    in `before`."""
    def total(values: dict, s: str, l: str) -> float:
        return sum(values.get(("buy", (s, l, p)), 0.0) for p in data.periods)

    return all(total(after, s, l) <= total(before, s, l) + 1e-9
               for s, l in data.sl if l in data.owned_sites)


def _purchases(values: dict) -> dict:
    return {key: round(value) for key, value in values.items() if key[0] == "buy" and value > 0.5}


def test_moving_purchases_buys_a_period_later_what_was_bought_too_early(buying_plan) -> None:
    # the 8 B200s of 2028H2 bought in 2028H1 instead: idle a period, and their capex starts
    # early. Fixed purchases keep them; free to move a period, they go back to 2028H2
    data, optimal, optimum = buying_plan
    early = _bought_early(data, optimal)
    assert _total(data, early) > optimum + 1e-6 and overshoot(_load(data, early)) == {}

    kept, _ = polish(data, early, time.perf_counter() + 60, _solve_period)
    assert _purchases(kept) == _purchases(early) and _total(data, kept) > optimum + 1e-6

    moved, _ = polish(data, early, time.perf_counter() + 60, _solve_period, move_purchases=True)
    assert _purchases(moved) == _purchases(optimal)
    assert _total(data, moved) == pytest.approx(optimum, rel=1e-6)
    assert overshoot(_load(data, moved)) == {}


def test_a_purchase_moved_past_the_last_period_is_not_made(buying_plan) -> None:
    # three B200s too many in the last period: only moving them out of the horizon saves
    # their capex, and the saving is that period's annuity
    data, optimal, optimum = buying_plan
    extra = _bought(data, optimal, "nvidia-hgx-b200", data.periods[-1], 3)
    moved, improved = polish(data, extra, time.perf_counter() + 60, _solve_period,
                             move_purchases=True)
    assert improved == 1
    assert _purchases(moved) == _purchases(optimal)
    assert _total(data, moved) == pytest.approx(optimum, rel=1e-6)


def test_purchases_under_a_cap_do_not_move(buying_plan) -> None:
    # a move could break the cap of the period it moves to, so a capped system keeps its
    # purchases even where moving them would pay; the uncapped MI300Xs, not needed in 2028H1
    # beside 8 more B200s, move to 2028H2
    data, optimal, _ = buying_plan
    capped = replace(data, max_purchases={"nvidia-hgx-b200": 40})
    early = _bought_early(data, optimal)
    kept, _ = polish(capped, early, time.perf_counter() + 60, _solve_period,
                     move_purchases=True)
    assert _purchases(kept) == {
        ("buy", ("nvidia-hgx-b200", "dc1", "2028H1")): 23,
        ("buy", ("amd-mi300x-oam8", "dc1", "2028H2")): 2,
    }


def test_bench_shape_moving_purchases_never_raises_the_cost_or_adds_a_purchase(
        tmp_path: Path) -> None:
    # bench large's shape, small: an owned fleet bought over periods and a cloud region.
    # Moved purchases only shift a period or leave the horizon, so no system is bought more
    # often than before, and every row still holds
    inputs = load_problem(write_problem(FAMILIES["medium"], tmp_path))
    data = build_data(inputs, candidates_for(inputs))
    result = solve(data, SolveOptions(time_limit_s=3, shadow_prices=False))
    values = _values(result.model)
    moved, _ = polish(data, values, time.perf_counter() + 10, _solve_period, move_purchases=True)
    assert _total(data, moved) <= _total(data, values) + 1e-9
    assert overshoot(_load(data, moved)) == {}
    assert _bought_no_more_often(data, moved, values)


@pytest.mark.parametrize("seed", range(40))
def test_a_purchase_pulled_a_period_early_is_moved_on_random_instances(seed, write_problem) -> None:
    # the period relaxation's random instances (falling or growing demand, binding power and
    # racks, retiring systems, purchase caps, a cloud quota), from their optimum with one
    # purchase made a period early (where that breaks no row): the polish undoes it or finds
    # another move that pays, since undoing it alone saves capex, so the plan costs less than
    # that start and no less than the optimum, keeps every row of the whole MIP with all its
    # variables fixed, and buys no system more often. 21 of the 40 seeds have such a start;
    # on 20 the polish returns to the optimum's cost (on seed 0 the first period takes the
    # purchase moved early into it, and the second can no longer move it)
    from tests.conftest import candidate, candidates
    from tests.test_decompose import EXACT, _data, _random_problem, keeps_every_row

    table = candidates(candidate("toy-a", 1000), candidate("toy-a", 140, accelerators=1),
                       candidate("toy-b", 1200), candidate("toy-b", 330, accelerators=2))
    data = _data(write_problem, _random_problem(seed), table)
    model = build_model(data)
    whole = _run(model, EXACT)
    if whole.status == Status.infeasible:
        return
    optimal = _values(model)
    later = [(s, p, q) for s, l in data.sl for p, q in zip(data.periods, data.periods[1:],
                                                           strict=False)
             if l in data.owned_sites and s not in data.max_purchases
             and optimal.get(("buy", (s, l, q)), 0.0) > 0.5]
    if not later:
        return
    system, period, after = later[0]
    early = _bought(data, _bought(data, optimal, system, period, 1), system, after, -1)
    if overshoot(_load(data, early)):
        return
    moved, _ = polish(data, early, time.perf_counter() + 30, _solve_period, move_purchases=True)
    assert keeps_every_row(data, moved)
    assert whole.objective - 1e-9 <= _total(data, moved) < _total(data, early) - 1e-9
    assert _bought_no_more_often(data, moved, early)


def test_each_period_gets_its_share_less_the_largest_overrun_so_far(monkeypatch) -> None:
    # a clock the test moves: a takes 1 s beyond its 3 s, b closes early (no negative
    # overrun), c takes its limit exactly; each share is the time left over the periods left,
    # less 1 s. The period relaxation's passes share their time the same way
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    taken = {"a": 4.0, "b": 0.5, "c": 2.75, "d": 0.0}
    limits = []
    for period, limit_s in timed_periods(["a", "b", "c", "d"], deadline=12.0):
        limits.append(limit_s)
        clock[0] += taken[period]
    assert limits == pytest.approx([3.0, 8 / 3 - 1, 2.75, 3.75])
    # all the time left without shares; none once under MIN_PERIOD_SECONDS
    clock[0] = 0.0
    assert [limit for _, limit in timed_periods(["a", "b"], 5.0, share_time=False)] == [5.0, 5.0]
    clock[0] = 11.99
    assert list(timed_periods(["a"], deadline=12.0)) == []
