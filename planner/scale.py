"""max_served_scale: the largest α such that α × every workload's demand can be served within
the limits, then the cheapest plan that serves that scale.

The stages share one time limit; α's (1–4) get SCALE_STAGE_SHARE of it, the cost stage the rest.

1. α's LP relaxation: an upper bound on α.
2. The LP's plan rounded as `solve._Stages` rounds min_tco's: replicas and systems up, and
   the limits the rounding breaks lowered by the overshoot in the LP, which is re-solved from
   its basis (`round_relaxation`). With α free, a lowered limit only lowers α, never leaves
   the LP without a plan, so this ends with a plan: the LP's α at the lowered limits, a lower
   bound on α. The LP here maximizes α less a small weight on cost (CHEAPER_BY), which picks
   a cheap plan among those with the most α: on bench x-large $457M instead of $662M, at 2.923
   instead of 2.904. Bench large: 2.479 against the LP's 2.722 in 0.8 s; bench x-large: 2.923
   against 3.067 in 5 s. Stage 2 always ends with a plan, which stage 3 cannot promise.
3. Probes between that α and α's bound, by bisection: min_tco's LP at a fixed scale, rounded
   and repaired as min_tco's first stage does (`_Stages.round_relaxation`); a probe that ends
   with a plan proves its scale. With the demand fixed, the repaired LP places the replicas
   differently from stage 2's, whose α falls at every repair: on bench large stage 2 ends at
   2.479, the probes at 2.555 (0.9–2.0 s each), where α's MIP had reached 2.547 in 60 s. On
   bench x-large they find nothing above stage 2's 2.92 (7 s a probe). A failed probe proves
   nothing; the bisection stops when its bracket is within PROBE_BRACKET of α, after
   MAX_PROBES probes, or when less time is left than PROBE_MARGIN × the longest probe.
4. α's MIP from the best plan so far: in a child process on a big fleet, killed at its time,
   because HiGHS does not keep to its limit in the root of this MIP (bench x-large: 46 s
   against a 9 s limit, without a single interrupt check for 39 s of it); in this process
   otherwise.
   Alone, from no start, HiGHS ended bench large's α at 0.0035 at 15 s.
5. The cheapest plan at α × (1 − gap): min_tco at that demand (`solve._two_stage`), from α's
   plan consolidated (it serves more than the floor). Minimizing cost with α ≥ a floor is
   min_tco at the floor: cost never falls as α rises (more demand, more replicas), so α sits
   at its floor. With less time left than stage 1 took, α's plan is the plan.

The plan's served scale is that floor; it is proven the largest (within the gap) only when α's
bound says so, and a note says how far it may be from the largest otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pyomo.environ as pyo

from planner.coefficients import ModelData
from planner.decompose import plan_cost
from planner.formulation import build_model
from planner.polish import Values
from planner.schema import Objective
from planner.solve import (
    CHILD_GRACE_S,
    MIN_STAGE_SECONDS,
    SCALE_KEY,
    SolveOptions,
    SolveResult,
    Status,
    _add_note,
    _big_fleet,
    _ChildMip,
    _Highs,
    _highs,
    _run,
    _Stages,
    _two_stage,
    _values,
    _warm_start,
    _write,
    ctrl_c_pending,
    lp_relaxation,
)

CHEAPER_BY = 1e-3
"""Stage 2 maximizes α − w·cost, w = CHEAPER_BY × α's LP bound ÷ the LP plan's cost: of the
plans with the most α, a cheap one, for at most this share of α."""
SCALE_REPAIR_ROUNDS = 8
"""Re-solves of α's LP with the limits its rounding broke lowered (min_tco's stage stops at 3,
where the MIP stages follow): α stays free, so each one has a plan, and bench large needed 4."""
SCALE_STAGE_SHARE = 0.6
"""Share of the time limit for finding α (stages 1–4); the cheapest plan at that scale gets
the rest. The rounding of stage 2 may take more when it has no plan yet: without one there is
nothing to cost."""
PROBE_BRACKET = 0.005
"""Stage 3's bisection stops when the scale it failed at is within this share of the largest
it proved, or after MAX_PROBES probes (from a bracket of 10%, 5 reach 0.5%)."""
MAX_PROBES = 6
"""At most this many probes in stage 3."""
PROBE_MARGIN = 1.2
"""A probe starts only when the time left is this many times the longest probe so far."""


def scaled(data: ModelData, scale: float) -> ModelData:
    """The min_tco data of `data` at `scale` × every demand."""
    return replace(
        data, objective=Objective.min_tco,
        demand={key: scale * v for key, v in data.demand.items()},
        site_demand={key: scale * v for key, v in data.site_demand.items()},
        delivered_tokens={key: scale * v for key, v in data.delivered_tokens.items()})


def solve_max_scale(data: ModelData, options: SolveOptions, started: float) -> SolveResult:
    """Find α (stages 1–4), then the cheapest plan at α × (1 − gap) (stage 5)."""
    search = _ScaleSearch(data, options, started)
    search.relaxation()
    if search.status.has_plan and search.bound > 1e-9 and not search.stopped():
        search.rounded()
    if search.plan is not None and not search.stopped() and not search.proven():
        search.probes()
    if search.status.has_plan and not search.stopped() and not search.proven():
        search.mip()
    return search.cheapest()


class _ScaleSearch:
    """The best α found so far, its plan (None without one) and α's upper bound."""

    def __init__(self, data: ModelData, options: SolveOptions, started: float) -> None:
        self.data, self.options, self.started = data, options, started
        share = 1.0 if options.by_nodes else SCALE_STAGE_SHARE
        self.ends_at = started + options.time_limit_s * share
        """When stages 1–4 end (`time.perf_counter()`)."""
        self.alpha = 0.0
        self.plan: Values | None = None
        self.bound = math.inf
        self.status = Status.no_solution
        """α's LP or MIP status (infeasible, unbounded, error: so is the problem)."""
        self.interrupted = False
        self.build_s = self.lp_s = 0.0
        """One build of the model, and the LP's build and solve (stage 1)."""
        self.relaxed: pyo.ConcreteModel | None = None
        self.solver: _Highs | None = None
        """The LP and the solver that solved it, for stage 2 to re-solve from its basis."""

    def offer(self, alpha: float, plan: Values) -> None:
        if self.plan is None or alpha > self.alpha:
            self.alpha, self.plan = alpha, plan

    def stopped(self) -> bool:
        return self.interrupted or ctrl_c_pending()

    def left(self, ends_at: float | None = None) -> float:
        return (self.ends_at if ends_at is None else ends_at) - time.perf_counter()

    def relaxation(self) -> None:
        """Stage 1: α's LP, an upper bound on α."""
        began = time.perf_counter()
        self.relaxed, self.solver = lp_relaxation(self.data), _highs(self.options)
        self.build_s = time.perf_counter() - began
        run = _run(self.relaxed, replace(
            self.options, time_limit_s=max(self.left(), MIN_STAGE_SECONDS)), solver=self.solver)
        self.lp_s = time.perf_counter() - began
        self.interrupted = run.interrupted
        if run.status == Status.optimal:
            self.bound, self.status = run.objective, Status.feasible
            if run.objective <= 1e-9:  # nothing fits: α = 0, proven
                self.offer(0.0, {})
        elif run.status in (Status.infeasible, Status.unbounded, Status.error):
            self.status = run.status

    def rounded(self) -> None:
        """Stage 2: α's LP rounded, its broken limits lowered until the rounding keeps them,
        until the time limit less the builds the plan's cost stage and tables need. Not
        consolidated: giving back systems lowers the cost, which is stage 5's (and took 6 s of
        bench x-large's 15)."""
        assert self.relaxed is not None
        began = time.perf_counter()
        relaxed = self.relaxed
        weight = CHEAPER_BY * self.bound / max(float(pyo.value(relaxed.cost)), 1e-9)
        relaxed.objective.deactivate()
        relaxed.cheaper = pyo.Objective(expr=relaxed.alpha - weight * relaxed.cost,
                                        sense=pyo.maximize)
        ends_at = max(self.ends_at, self.started + self.options.time_limit_s - 2 * self.build_s)
        stages = _Stages(self.data, replace(self.options, time_limit_s=self.left(ends_at)), began)
        stages.round_relaxation(relaxed, began, self.solver, consolidated=False,
                                rounds=SCALE_REPAIR_ROUNDS)
        self.interrupted |= stages.interrupted
        if stages.best is not None:
            self.offer(float(pyo.value(relaxed.alpha)), _values(relaxed))

    def probes(self) -> None:
        """Stage 3: bisect between the largest α proved and α's bound with min_tco's rounding
        at fixed scales (`feasible_at`), while a probe fits in the time left."""
        failed_at, longest_s = self.bound, self.lp_s
        for _ in range(MAX_PROBES):
            # probes near the largest scale repair more limits and take longer (bench large:
            # 0.9 s to fail far above it, 2.0 s close to it)
            if failed_at - self.alpha <= PROBE_BRACKET * self.alpha or self.stopped() \
                    or self.left() <= PROBE_MARGIN * longest_s:
                return
            began = time.perf_counter()
            middle = (self.alpha + failed_at) / 2
            plan = self.feasible_at(middle)
            if plan is None:
                failed_at = middle
            else:
                self.offer(middle, plan)
            longest_s = max(longest_s, time.perf_counter() - began)

    def feasible_at(self, scale: float) -> Values | None:
        """A plan that serves `scale` × the demand: min_tco's LP at that scale rounded, its
        broken limits lowered and re-solved (`_Stages.round_relaxation`), or None."""
        began = time.perf_counter()
        at = scaled(self.data, scale)
        stages = _Stages(at, replace(self.options, time_limit_s=self.left()), began)
        relaxed = lp_relaxation(at)
        stages.round_relaxation(relaxed, began, consolidated=False)
        self.interrupted |= stages.interrupted
        return _values(relaxed) if stages.best is not None else None

    def mip(self) -> None:
        """Stage 4: α's MIP from the best plan so far; in a child process on a big fleet."""
        start = {**self.plan, SCALE_KEY: self.alpha} if self.plan is not None else {}
        in_child = _big_fleet(self.data)
        limit_s = self.left() - (CHILD_GRACE_S if in_child else 0.0)
        if limit_s <= MIN_STAGE_SECONDS:
            return
        options = replace(self.options, time_limit_s=limit_s)
        if in_child:
            try:
                outcome = _ChildMip(self.data, options, start, maximize=True).outcome()
            except KeyboardInterrupt:  # before the child reported anything: keep the plan so far
                self.interrupted = True
                return
            if outcome is None:
                return
            run, values = outcome
        else:
            model = build_model(self.data)
            run = _run(model, options, _warm_start(start, model))
            values = _values(model) if run.status.has_plan else {}
        self.interrupted |= run.interrupted
        if run.status.has_plan:
            self.offer(run.objective, values)
        if math.isfinite(run.bound):
            self.bound = min(self.bound, run.bound)
        if run.status == Status.optimal:
            self.bound = min(self.bound, run.objective * (1 + self.options.mip_gap))
        elif run.status == Status.infeasible:
            self.status = Status.infeasible

    def proven(self) -> bool:
        """Whether α is the largest within the gap."""
        return self.plan is not None and \
            self.bound <= self.alpha * (1 + self.options.mip_gap) + 1e-9

    def cheapest(self) -> SolveResult:
        """Stage 5, and the result: the cheapest plan at α × (1 − gap), from α's plan; the
        served scale is that floor."""
        data, interrupted = self.data, self.stopped()
        if self.plan is None:
            status = Status.no_solution if self.status.has_plan else self.status
            return SolveResult(status, None, data, interrupted=interrupted)
        floor = self.alpha * (1 - self.options.mip_gap)
        if floor <= 1e-9:  # serves nothing: no plan (`pipeline.plan_from_result`)
            status = Status.optimal if self.proven() else Status.feasible
            return SolveResult(status, None, data, 0.0, served_scale=0.0,
                               interrupted=interrupted)
        at_floor = scaled(data, floor)
        start = _served_at(at_floor, self.plan)
        # min_tco's stages take a build for the start and the LP's time before they improve
        # on it: with less time left, the plan stays as stages 2–4 left it, written into α's
        # LP rather than a model built for it (1.4 s of a 2 s Ctrl-C on bench x-large)
        left_s = self.left(self.started + self.options.time_limit_s)
        if interrupted or left_s < self.build_s + self.lp_s:
            assert self.relaxed is not None  # stages 2 and 3 follow stage 1
            _write(self.relaxed, start)
            result = SolveResult(Status.feasible, self.relaxed, at_floor,
                                 plan_cost(at_floor, start), interrupted=interrupted)
        else:
            result = _two_stage(at_floor, self.options, self.started, start=start)
        result.data, result.served_scale = replace(data, notes=result.data.notes), floor
        result.scale_bound = self.bound
        if not self.proven():
            result.status = Status.feasible
            _add_note(result, f"served scale {floor:,.4f}× is not proven the largest: at most "
                      f"{self.bound:,.4f}× ({(self.bound - floor) / floor:.3%} more); raise "
                      "--time-limit")
        return result


def _served_at(data: ModelData, plan: Values) -> Values:
    """`plan` with its served rates cut to `data`'s demand, their bound in min_tco (a plan of a
    higher scale serves more)."""
    demand = data.demand
    return {key: min(value, demand[(key[1][0], key[1][-1])]) if key[0] in ("y", "u") else value
            for key, value in plan.items() if key != SCALE_KEY}
