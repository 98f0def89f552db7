"""The only module that talks to a solver: HiGHS through Pyomo's `highs` interface.

`solve(data, options)` builds the MIP, solves it, and returns a `SolveResult` with a normalised
status. An infeasible problem is re-solved as an elastic copy whose slacks say what to relax and
by how much. Binding limits (power, racks, supply) are valued by re-solving with one more unit.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from planner.coefficients import RATE, USD, ModelData, rack_count
from planner.consolidate import consolidate, fit_fleet
from planner.decompose import period_bound, plan_cost, splits_by_period
from planner.formulation import build_model, pool_keys, serving_rate
from planner.polish import POLISH_GAP, Values, polish, values_of
from planner.schema import Objective
from planner.units import format_power_kw, format_usd


class Status(StrEnum):
    optimal = "optimal"
    feasible = "feasible"
    """A limit was hit: the incumbent is returned with its gap and bound."""
    infeasible = "infeasible"
    unbounded = "unbounded"
    no_solution = "no_solution"
    """A limit was hit before any integer-feasible point was found."""
    interrupted = "interrupted"
    error = "error"

    @property
    def has_plan(self) -> bool:
        return self in (Status.optimal, Status.feasible)


@dataclass(frozen=True)
class SolveOptions:
    time_limit_s: float = 60.0
    """Wall-clock limit of the whole solve: its stages, the diagnosis of an infeasible problem
    (at least DIAGNOSIS_FLOOR_S) and the values of binding limits (`solve`). `solve_problem`
    counts it from the start of candidate generation."""
    mip_gap: float = 1e-3
    """Relative gap (incumbent − best bound) ÷ incumbent at which solving stops."""
    threads: int | None = None
    """HiGHS threads (None: HiGHS decides)."""
    shadow_prices: bool = True
    """Re-solve with each binding limit relaxed by one unit to value it."""
    verbose: bool = False
    """Stream the HiGHS log."""
    node_limit: int | None = None
    """Branch-and-bound nodes after which each MIP HiGHS solves stops (its mip_max_nodes), in
    place of a share of the time limit: every stage then gets all the time left, no stage runs
    beside another, and the solve takes the same steps, so gives the same plan, run after run
    and under any load. The time limit still caps the whole solve; a note says when it ended a
    stage first (`_near_cap`)."""

    @property
    def by_nodes(self) -> bool:
        """Whether node limits, not time shares, end the MIP stages (`node_limit`)."""
        return self.node_limit is not None


@dataclass(frozen=True)
class Binding:
    """A limit the plan runs into, and what one more unit of it is worth."""

    kind: str
    """power, racks, supply, quota (a cloud site's accelerators) or budget (the policy's cap on
    the discounted total cost)."""
    site: str
    """The site, or for supply the system; empty for the budget."""
    period: str
    """The period, or for a quota (one per site, whatever the period) the periods it binds;
    empty for the budget (the whole horizon)."""
    used: float
    limit: float
    unit: str
    """MW, rack, system, accelerator or USD."""
    value_usd: float | None = None
    """Discounted cost saved over the horizon by `step` more units (None: not re-solved)."""
    value_scale: float | None = None
    """max_served_scale: how much more of the demand mix `step` more units serve, in units of
    the scale (None: not re-solved)."""
    step: float = 1.0
    """How much more of the limit is valued: one unit, or for a quota the accelerators of the
    smallest system the site offers (one more accelerator alone rents nothing)."""


@dataclass
class SolveResult:
    status: Status
    model: pyo.ConcreteModel | None
    data: ModelData
    objective: float = math.nan
    """Objective in model units ($M, or α for max_served_scale)."""
    bound: float = math.nan
    gap: float = math.nan
    seconds: float = 0.0
    served_scale: float | None = None
    """α of max_served_scale."""
    scale_bound: float | None = None
    """max_served_scale: the upper bound on α proven (`planner.scale`)."""
    message: str = ""
    diagnosis: list[str] = field(default_factory=list)
    """For infeasible problems: what to relax and by how much."""
    bindings: list[Binding] = field(default_factory=list)
    """Limits the plan runs into, with the value of one more unit (min_tco)."""
    interrupted: bool = False
    """Ctrl-C stopped the solve; the plan (if any) is the best found until then."""
    relaxation_seconds: float = 0.0
    """Build and solve time of the LP relaxation (min_tco): how long any re-solve of this
    problem takes at the least."""


_TERMINATION = {
    TerminationCondition.convergenceCriteriaSatisfied: Status.optimal,
    TerminationCondition.maxTimeLimit: Status.feasible,
    TerminationCondition.iterationLimit: Status.feasible,
    TerminationCondition.objectiveLimit: Status.feasible,
    TerminationCondition.minStepLength: Status.feasible,
    TerminationCondition.provenInfeasible: Status.infeasible,
    TerminationCondition.locallyInfeasible: Status.infeasible,
    TerminationCondition.infeasibleOrUnbounded: Status.infeasible,
    TerminationCondition.unbounded: Status.unbounded,
    TerminationCondition.interrupted: Status.interrupted,
}


class _Highs(Highs):
    """Pyomo's HiGHS interface plus a MIP start: `warm_start` maps id(Pyomo variable) to a value
    handed to HiGHS (setSolution) before it runs; and Ctrl-C that stops HiGHS with what it has.

    Pyomo runs HiGHS in this thread with highspy's keyboard-interrupt callbacks on. A Ctrl-C
    during the run raises KeyboardInterrupt inside one of those Python callbacks, and highspy
    1.16 drops it: the solve went on to its time limit as if nothing had happened (bench
    large, Ctrl-C 5–7 s into `planner solve`). So during the run Ctrl-C only sets a flag
    (`interrupt_held`), and our own interrupt callbacks tell HiGHS to stop."""

    def __init__(self, **kwds: Any) -> None:
        # Pyomo re-runs __init__ on every new instance (set_instance → _reinit), so a start
        # and a progress callback set before `solve` must survive it
        start: dict[int, float] = getattr(self, "warm_start", {})
        progress: Progress | None = getattr(self, "progress", None)
        ends_at: float | None = getattr(self, "ends_at", None)
        super().__init__(**kwds)
        self.warm_start = start
        self.progress = progress
        """Called at HiGHS's MIP interrupt checks (its bound) and with every better plan
        (`Progress`)."""
        self.ends_at = ends_at
        """When the run must end (`time.perf_counter()`), handing the model over included."""
        self.asked_to_stop = False
        """Ctrl-C came during the last run (HiGHS stopped, or had just finished)."""

    def _solve(self) -> Any:
        if self._solver_model is not None:
            self._hand_over_start()
            self._report_better_plans()
            self._limit_to_what_is_left()
        return self._solve_until_ctrl_c()

    def _limit_to_what_is_left(self) -> None:
        """HiGHS's time limit: what is left until `ends_at` once Pyomo has handed the model
        over (bench x-large's LP: 1.4 s, which had come on top of the limit), plus the run time
        of its earlier runs, against which HiGHS holds its limit (HiGHS issue 1477, to change in
        2.0: bench x-large's third LP re-solve stopped after 1.2 s of a 3.2 s limit)."""
        if self.ends_at is None:
            return
        left = max(self.ends_at - time.perf_counter(), MIN_HIGHS_SECONDS)
        self._active_config.time_limit = left + self._solver_model.getRunTime()

    def _hand_over_start(self) -> None:
        index = self._pyomo_var_to_solver_var_map
        pairs = [(index[v], value) for v, value in self.warm_start.items() if v in index]
        if pairs:
            import numpy as np

            cols = np.array([c for c, _ in pairs], dtype=np.int32)
            vals = np.array([v for _, v in pairs], dtype=np.float64)
            self._solver_model.setSolution(len(pairs), cols, vals)

    def _report_better_plans(self) -> None:
        if self.progress is None:
            return
        report, columns = self.progress, dict(self._pyomo_var_to_solver_var_map)

        def improved(event: Any) -> None:
            out = event.data_out
            solution = out.mip_solution
            report(out.mip_dual_bound, out.objective_function_value,
                   {var: float(solution[col]) for var, col in columns.items()})

        # the bound goes out at every interrupt check (`_solve_until_ctrl_c`), which comes
        # at least as often as a log line and carries the same bound
        self._solver_model.cbMipImprovingSolution.subscribe(improved)

    def _solve_until_ctrl_c(self) -> Any:
        """Run HiGHS; its interrupt callbacks stop it on Ctrl-C. The MIP's also report the
        bound as it rises (`progress`): HiGHS logs a line, and so calls cbMipLogging, only
        every few seconds, while its bound rises in the root's every cut round (bench large:
        61.94 after 1.9 s and 62.12 after 8.9 s, where the log said 61.70 and then 62.04 at
        5.8 s). HiGHS makes that check only in the top-level MIP (`checkLimits` skips it in
        sub-MIPs), so the bound is always the whole model's."""
        # a Ctrl-C held around this run (`solve` holds it throughout) stops HiGHS at once
        asked: list[int] = [signal.SIGINT] if ctrl_c_pending() else []
        report = self.progress

        def stop_if_asked(event: Any) -> None:
            if asked:
                event.interrupt()

        def stop_or_report(event: Any) -> None:
            if asked:
                event.interrupt()
            elif report is not None:
                out = event.data_out
                report(out.mip_dual_bound, out.mip_primal_bound, None)

        hooks = [] if self._solver_model is None else [
            (getattr(self._solver_model, name), stop_if_asked) for name in LP_INTERRUPTS] + [
            (self._solver_model.cbMipInterrupt, stop_or_report)]
        for hook, callback in hooks:
            hook.subscribe(callback)
        try:
            with interrupt_held(asked):
                results = super()._solve()
        finally:
            for hook, callback in hooks:
                hook.unsubscribe(callback)
        self.asked_to_stop = bool(asked)
        return results


LP_INTERRUPTS = ("cbSimplexInterrupt", "cbIpmInterrupt")
"""HiGHS's callbacks that may stop an LP (`_Highs`); cbMipInterrupt stops a MIP."""


class _KnownInterrupt(logging.Filter):
    """Pyomo warns of HiGHS's kInterrupt status as unhandled; `_run` handles it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kInterrupt" not in record.getMessage()


class _DuringCtrlC(logging.Filter):
    """Drops what Pyomo logs while a Ctrl-C is being handled: it logs the component or
    expression a KeyboardInterrupt cut short as an ERROR, which its handler prints to stdout
    (where a `--format json` reader would get it), before planner reports the interrupt."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not isinstance(sys.exc_info()[1], KeyboardInterrupt)


logging.getLogger("pyomo.contrib.solver.solvers.highs").addFilter(_KnownInterrupt())
for _handler in logging.getLogger("pyomo").handlers:  # every Pyomo logger's records reach it
    _handler.addFilter(_DuringCtrlC())
    if isinstance(_handler, logging.StreamHandler) and _handler.stream is sys.stdout:
        # stdout carries the plan (`--format json|csv`); a warning there broke the JSON
        _handler.setStream(sys.stderr)


Progress = Callable[[float, float, dict[int, float] | None], None]
"""A MIP's progress: best bound, best objective (inf without a plan), and a better plan by
id(Pyomo variable) when there is one."""


_scheduler: dict[str, int | None] = {}
"""The threads HiGHS's process-wide scheduler was started with ("threads": None for HiGHS's
own choice), once a solver has been made in this process."""


def _threads_for(options: SolveOptions) -> int | None:
    """HiGHS threads: `options.threads`, else one under a node limit (HiGHS's own choice
    follows the CPU count, and its search follows its threads: a node-limited plan must not
    depend on the machine), else HiGHS's choice. HiGHS refuses to run (kError) when a
    solver asks for other threads than its scheduler started with, so a change of threads
    within a process (a node-limited solve after another) restarts the scheduler."""
    import highspy

    threads = options.threads or (1 if options.node_limit is not None else None)
    if "threads" in _scheduler and threads is not None and _scheduler["threads"] != threads:
        highspy.Highs.resetGlobalScheduler(True)
        del _scheduler["threads"]
    _scheduler.setdefault("threads", threads)
    return threads


def _highs(options: SolveOptions, time_limit_s: float | None = None) -> _Highs:
    solver = _Highs()
    solver.config.load_solutions = False
    solver.config.raise_exception_on_nonoptimal_result = False
    solver.config.time_limit = time_limit_s if time_limit_s is not None else options.time_limit_s
    solver.config.rel_gap = options.mip_gap
    solver.config.tee = [sys.stderr] if options.verbose else []  # stdout stays the plan
    if threads := _threads_for(options):
        solver.config.threads = threads
    solver.config.solver_options["random_seed"] = 0
    if options.node_limit is not None:
        solver.config.solver_options["mip_max_nodes"] = options.node_limit
    # HiGHS 1.15's feasibility jump can run far past time_limit (minutes on an elastic copy
    # whose limit was 20 s); the other heuristics find incumbents as fast here
    solver.config.solver_options["mip_heuristic_run_feasibility_jump"] = False
    return solver


class Run(NamedTuple):
    """One HiGHS call: normalised status, objective, best bound, relative gap."""

    status: Status
    objective: float
    bound: float
    gap: float
    interrupted: bool = False
    """HiGHS stopped on Ctrl-C (it handles SIGINT itself and returns what it has)."""


def _run(model: pyo.ConcreteModel, options: SolveOptions,
         warm_start: dict[int, float] | None = None, progress: Progress | None = None,
         solver: _Highs | None = None) -> Run:
    """Solve once, for `options.time_limit_s`; load the solution if there is one. A `solver`
    that solved `model` before re-solves it from where it stopped (HiGHS keeps its basis; Pyomo
    passes on what changed)."""
    if solver is None:
        solver = _highs(options)
    solver.ends_at = time.perf_counter() + options.time_limit_s  # `_limit_to_what_is_left`
    solver.warm_start = warm_start or {}
    solver.progress = progress
    results = solver.solve(model)
    interrupted = (results.termination_condition == TerminationCondition.interrupted
                   or solver.asked_to_stop)
    status = _TERMINATION.get(results.termination_condition, Status.error)
    if solver.asked_to_stop and results.termination_condition == TerminationCondition.unknown:
        status = Status.interrupted  # HiGHS's kInterrupt, which Pyomo does not map
    has_solution = results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    if status in (Status.feasible, Status.interrupted) and not has_solution:
        status = Status.no_solution
    if status == Status.interrupted and has_solution:
        status = Status.feasible
    if status == Status.optimal and not has_solution:
        status = Status.error
    objective = bound = gap = math.nan
    if has_solution and status.has_plan:
        results.solution_loader.load_vars()
        objective = float(results.incumbent_objective)
        bound = float(results.objective_bound) if results.objective_bound is not None else math.nan
        if math.isfinite(bound):
            gap = abs(objective - bound) / max(abs(objective), 1e-9)
            if status == Status.optimal and gap > max(options.mip_gap * 1.01, 1e-6) and \
                    results.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
                status = Status.feasible
        else:
            gap = 0.0 if status == Status.optimal else math.nan
    elif results.objective_bound is not None and math.isfinite(results.objective_bound):
        bound = float(results.objective_bound)
    return Run(status, objective, bound, gap, interrupted)


def solve(data: ModelData, options: SolveOptions | None = None) -> SolveResult:
    """Solve the MIP for `data`; diagnose infeasibility with an elastic re-solve.

    min_tco runs in stages (`_two_stage`); max_served_scale finds the largest scale, then the
    cheapest plan at that scale (`planner.scale`). The time limit covers all of it, and the
    values of binding limits (`marginal_values`) get what is left of it. Ctrl-C stops the
    solve: the best plan found so far comes back with `interrupted` set (status feasible, its
    gap stated); with no plan yet, KeyboardInterrupt propagates.

    Ctrl-C is held throughout (`interrupt_held`): Pyomo's bare `except:` clauses turn a
    KeyboardInterrupt raised inside them into another error (a DeveloperError out of
    `relax_integer_vars`: `planner compare` on bench large, Ctrl-C 3.05 s in) or drop it. So
    a Ctrl-C stops HiGHS at its next interrupt check (or its next run), ends the stages, and
    KeyboardInterrupt is raised only here, where planner's state is whole."""
    options = options or SolveOptions()
    with interrupt_held():
        return _solve(data, options, time.perf_counter())


def _solve(data: ModelData, options: SolveOptions, started: float) -> SolveResult:
    if data.objective == Objective.min_tco:
        result = _two_stage(data, options, started)
    else:
        from planner.scale import solve_max_scale

        result = solve_max_scale(data, options, started)
    if result.interrupted and not result.status.has_plan:
        raise KeyboardInterrupt
    if options.verbose:
        print(coefficient_report(build_model(data)), file=sys.stderr)
    _explain_status(result, options, started)
    _note_limits(result, by_nodes=options.by_nodes and not _near_cap(result, options, started))
    if result.status.has_plan and result.model is not None:
        result.bindings = find_bindings(result.model, data)
        if options.shadow_prices and not result.interrupted:
            try:
                result.bindings = marginal_values(
                    data, (result.served_scale or 0.0) if data.objective ==
                    Objective.max_served_scale else result.objective, result.bindings, options,
                    ends_at=started + options.time_limit_s,
                    min_resolve_s=MARGINAL_OVER_LP * result.relaxation_seconds,
                    plan=result.model, lp_seconds=result.relaxation_seconds)
                _note_unvalued(result)
            except KeyboardInterrupt:
                result.interrupted = True
                result.message = "interrupted (Ctrl-C) while valuing binding limits; values not computed"
                _add_note(result, result.message)
    if options.by_nodes and _near_cap(result, options, started):
        _add_note(result, "the time limit ended part of the solve before the node limit did: "
                  "this plan can differ from run to run (raise --time-limit)")
    result.seconds = time.perf_counter() - started
    return result


NODE_CAP_MARGIN_S = 0.5
"""Under a node limit, a solve that ends within this much of its time limit (plus the child's
grace and two builds of the model, `_near_cap`) may have had a stage ended by the clock."""


def _near_cap(result: SolveResult, options: SolveOptions, started: float) -> bool:
    """Whether the solve came close enough to its time limit that the clock may have ended a
    stage: every stage under a node limit may use all the time left, so one the clock ended
    ends at the limit, less a MIP child's grace and the two builds its plan costs."""
    margin_s = NODE_CAP_MARGIN_S + CHILD_GRACE_S + 2 * result.relaxation_seconds
    return time.perf_counter() - started > options.time_limit_s - margin_s


def _two_stage(data: ModelData, options: SolveOptions, started: float,
               start: Values | None = None) -> SolveResult:
    """min_tco in five stages sharing one time limit; the gap is measured against the best
    lower bound of any stage. A `start` plan is the first best plan (max_served_scale's,
    `planner.scale`).

    (1) The LP relaxation: a lower bound in about a second on bench large, and a first plan by
    rounding its solution (`round_up`). A rounding that breaks a limit (power, racks, a quota,
    a purchase cap, the budget) is repaired by re-solving the LP with the broken limits lowered
    by the overshoot (`tighten`; by one system at least where the repair stalls,
    `repair_steps`), up to REPAIR_ROUNDS times, so even a fleet too large for the
    MIP gets a plan with its gap; the rounded plan then gives back the systems it does not need
    (`planner.consolidate`). (2) The full MIP restricted to the (candidate, site) pairs
    the LP or that plan used, for RESTRICTED_SHARE of the time left. (3) The best plan polished
    period by period (`planner.polish`), each period's purchases first free to move to or
    from the next period, then fixed, for POLISH_SHARE of the time left. (4) The full MIP
    for the rest; its bound can only raise the lower bound. When it runs in this process
    (the LP was quick) over two periods or more, it gets FULL_BEFORE_PERIODS of the time left,
    and (5) the period relaxation the rest
    (`planner.decompose.period_bound`: each period's MIP with the no-resale rule dropped, then
    priced back in by Lagrange multipliers; their bounds add up to a lower bound, and their
    plans may join into a plan); what its passes leave goes back to the full MIP. Each MIP
    starts from the best plan so far (a MIP start).
    When the LP was slow, the MIP stages run in a child process that is killed at the time
    limit, because HiGHS does not keep to it there (MIP_OVER_LP); the child streams HiGHS's
    bound and better plans, so a killed child's progress is kept. With a second CPU the full
    MIP's child runs for all the time left alongside (1)–(3), the polish until the child
    answers: the bound gets the whole time, and so does the search for plans. On a fleet of
    FULL_CHILD_COLUMNS replica columns or more it is launched as soon as the LP is built (its
    root cuts are what the bound waits for: bench large's first round takes 5 s), on a smaller
    one after the LP, when the LP proved slow.
    Under a node limit (`SolveOptions.node_limit`) the stages run one after the other, each
    with all the time left, so that HiGHS's node counts, not the clock, end them.
    Ctrl-C (HiGHS returns `interrupted`, or KeyboardInterrupt between calls) ends the stages
    and returns the best plan so far."""
    state = _Stages(data, options, started)
    _warm_forkserver(data)
    if start:
        state.start_from(start)
    try:
        if not state.interrupted:  # a Ctrl-C during the start's build
            state.relaxation()
        if state.go_on() and state.full_child is None and state.concurrent():
            state.launch_full()
        if state.go_on():
            state.restricted(share=RESTRICTED_SHARE)
        if state.go_on():
            state.polish(share=POLISH_SHARE)
        if state.go_on() and state.full_child is None and splits_by_period(data) \
                and state.periods_follow():
            state.full(share=FULL_BEFORE_PERIODS)
            if state.go_on():
                state.periods()
            if state.go_on():  # the passes stopped with time left: back to the full MIP
                state.full()
        elif state.go_on() or state.full_child is not None:
            state.full()
    except KeyboardInterrupt:
        state.interrupted = True
        if state.full_child is not None:
            state.full()
    finally:
        if state.full_child is not None:  # an error in a stage: leave no child behind
            state.full_child.stop()
    return state.result()


RESTRICTED_SHARE = 0.2
"""Share of the time left for the restricted MIP. On bench large its plan at 60 s is the same
with 0.5, and at 10 s only 0.2 leaves the polish enough time to improve the rounded LP's plan
(measured with a one-pass polish: 4.1% with 0.5, 3.7% with 0.2)."""
POLISH_SHARE = 0.4
"""Share of the time left after the restricted MIP for polishing its plan period by period
(`planner.polish`) when the full MIP runs after it, in this process; alongside a full MIP
child, the polish takes the time until the child answers."""
FULL_BEFORE_PERIODS = 0.3
"""Share of the time left after the polish for the full MIP when it runs in this process (its
LP was quick, `in_process`) and the period relaxation (`planner.decompose.period_bound`) gets
the rest: the full MIP finds the plans, the periods close the bound, and their Lagrangian
passes stop once it is within the gap of the best plan. Bench medium at 60 s: 0.088% in 28 s
with 0.3, 0.077% in 41 s with 0.5 (both optimal); at 10 s 0.170% with 0.3, 0.181% with 0.5,
0.390% with 0.7. Before the period relaxation, 0.477% at 60 s and 0.683% at 10 s."""
MIP_OVER_LP = 100.0
"""A MIP stage runs in this process only when the time it may use is at least this many times
what the LP took; otherwise in a child process killed when the time is up (`_solve_in_child`).
On a fleet where the LP alone takes seconds, HiGHS spends minutes in a MIP's root node (bound
propagation once it has an incumbent) without looking at the clock: on bench x-large, 42 s
against a 19 s limit, 135 s against 32 s (HiGHS 1.15.1) and 71 s against 50 s (1.16.0); on
bench large (LP 0.8 s) 62.6 s against 60 s in this process. The child streams its progress
(every better plan, the bound at HiGHS's log lines), so a kill loses only what came after."""
IN_PROCESS_LP_S = 0.1
"""A MIP stage always runs in this process when the LP took less than this: the first LP's
time includes the solver's warm-up (bench small: 32 ms, 8 ms warm), and a child costs more
than such a MIP (0.7 s to start the forkserver; bench small at 10 s solved in 1.2 s, not
0.06 s)."""
TABLES_OVER_BUILD = 0.3
"""The plan's tables and checks, after the solve, take about this share of a build of the model
(bench x-large: 0.5 s against a 1.6–2.0 s build); the stages leave it over. Bench x-large at
8 s had ended at 9.2 s, 0.65 s of it the solve's last stage and 0.54 s the tables."""
REPAIR_ROUNDS = 3
"""Re-solves of a relaxation with the limits its rounded plan broke lowered by the overshoot."""


class _Stages:
    """Bookkeeping of `_two_stage`: the best plan so far and the best lower bound."""

    def __init__(self, data: ModelData, options: SolveOptions, started: float) -> None:
        self.data, self.options, self.started = data, options, started
        self.lower = -math.inf
        self.best: SolveResult | None = None
        self.relaxed = Status.no_solution
        """Status of the relaxation (infeasible or unbounded: so is the MIP)."""
        self.used: list[tuple[int, str]] = []
        self.first_solve_seconds = 0.0
        """Build and solve time of the LP relaxation: how big the problem is for HiGHS."""
        self.build_seconds = 0.0
        """Time to build the model once (measured on the LP relaxation)."""
        self._stopped = False
        self.integer_infeasible = False
        """The full MIP proved that no integer plan exists (the relaxation had one)."""
        self.full_child: _ChildMip | None = None
        """The full MIP solving in a child process while this one restricts and polishes."""

    @property
    def interrupted(self) -> bool:
        """Ctrl-C came: a run stopped on it, or `solve` holds one (`ctrl_c_pending`)."""
        return self._stopped or ctrl_c_pending()

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        self._stopped = value

    def consider(self, model: pyo.ConcreteModel, cost: float) -> None:
        if self._replaces_best(cost):
            self.best = SolveResult(Status.feasible, model, self.data, cost)

    def _replaces_best(self, cost: float) -> bool:
        return self.best is None or cost < self.best.objective - 1e-12

    def good_enough(self) -> bool:
        return self.best is not None and _gap(self.best.objective, self.lower) <= \
            self.options.mip_gap + 1e-12

    def go_on(self) -> bool:
        return (not self.interrupted and self.relaxed.has_plan and not self.integer_infeasible
                and not self.good_enough() and self.left() > MIN_STAGE_SECONDS)

    def left(self) -> float:
        """Time left for the stages: the limit less what has passed and the plan's tables,
        which follow the solve (TABLES_OVER_BUILD)."""
        return (self.options.time_limit_s - (time.perf_counter() - self.started)
                - TABLES_OVER_BUILD * self.build_seconds)

    def _options(self, share: float = 1.0) -> SolveOptions:
        """The options of a stage for `share` of the time left (all of it under a node
        limit, which then ends the stage)."""
        if self.options.by_nodes:
            share = 1.0
        return replace(self.options, time_limit_s=max(self.left() * share, MIN_STAGE_SECONDS))

    def relaxation(self) -> None:
        """Solve the LP relaxation, take its bound, round its plan; where the rounding breaks a
        limit, lower that limit (`repair_steps`) in the LP and re-solve it from its basis
        (bench large: 0.06 s against 1.1 s to rebuild and solve), and round again. A rounding
        that keeps every limit is consolidated (`_consolidated`) and becomes the first plan."""
        began = time.perf_counter()
        relaxed = lp_relaxation(self.data)
        self.build_seconds = time.perf_counter() - began
        if _big_fleet(self.data) and self.may_run_beside() and self.child_has_time() \
                and not self.interrupted:
            self.launch_full()
        self.round_relaxation(relaxed, began)

    def round_relaxation(self, relaxed: pyo.ConcreteModel, began: float,
                         solver: _Highs | None = None, consolidated: bool = True,
                         rounds: int = REPAIR_ROUNDS) -> None:
        """`relaxation` once the LP `relaxed` (built from `began`) is there; `solver`, one that
        solved it before, re-solves it from its basis. Without `consolidated`, the rounded
        plan keeps every system it was given; `rounds`: re-solves with lowered limits."""
        # handing the LP to HiGHS alone takes seconds (x-large: 1.4 s), and cannot be stopped
        if self.left() <= MIN_STAGE_SECONDS or self.interrupted:
            return
        solver = solver or _highs(self.options)
        data = self.data
        broken_before: dict[Limit, float] = {}
        for attempt in range(rounds + 1):
            run = _run(relaxed, self._options(), solver=solver)
            if attempt and run.status == Status.error and not run.interrupted:
                # HiGHS can end a re-solve from its basis in "unknown" (bench large with seed
                # 14, the third repair round); from scratch it solves
                solver = _highs(self.options)
                run = _run(relaxed, self._options(), solver=solver)
            self.interrupted |= run.interrupted
            if attempt == 0:
                self._take_bound(run, relaxed)
                self.first_solve_seconds = time.perf_counter() - began
            if not run.status.has_plan:
                return
            round_up(relaxed, self.data)
            broken = limit_excess(relaxed, self.data)
            if not broken:
                if consolidated:
                    self._consolidated(relaxed)
                self.consider(relaxed, pyo.value(relaxed.cost))
                return
            lowered = tighten(data, repair_steps(relaxed, self.data, broken, broken_before))
            broken_before = broken
            if lowered is None or self.interrupted or self.left() <= MIN_STAGE_SECONDS:
                return
            data = fewer_held(relaxed, lowered)
            lower_limits(relaxed, data)

    def _consolidated(self, rounded: pyo.ConcreteModel) -> None:
        """`consolidate` the rounded plan in `rounded`, until Ctrl-C or the time limit; back
        to the rounded plan if that breaks a limit or saves nothing."""
        kept, cost = _values(rounded), pyo.value(rounded.cost)
        if not consolidate(rounded, self.data,
                           stop=lambda: self.interrupted or self.left() <= MIN_STAGE_SECONDS):
            return  # nothing given back: the model still holds the rounded plan
        if not limit_excess(rounded, self.data) and pyo.value(rounded.cost) < cost:
            return
        for (name, index), value in kept.items():
            getattr(rounded, name)[index].set_value(value, skip_validation=True)

    def _take_bound(self, run: Run, relaxed: pyo.ConcreteModel) -> None:
        if run.status.has_plan or run.status in (Status.infeasible, Status.unbounded):
            self.relaxed = run.status
        # an LP stopped early has no bound
        bound = run.bound if math.isfinite(run.bound) else (
            run.objective if run.status == Status.optimal else math.nan)
        if run.status.has_plan and math.isfinite(bound):
            self.lower = max(self.lower, bound)
            self.used = [(k, l) for k, l in self.data.kl
                         if any((relaxed.x[k, l, p].value or 0) > 1e-6 for p in self.data.periods)]

    def may_run_beside(self) -> bool:
        """Whether a child process may solve beside this one: there is a second CPU for it,
        this is not a worker process (`compare` runs one solve per CPU already), and no node
        limit asks for the same steps on every machine."""
        return (_cpus() >= 2 and multiprocessing.parent_process() is None
                and not self.options.by_nodes)

    def concurrent(self) -> bool:
        """Whether the full MIP should solve in a child process alongside the other stages: it
        would go to a child anyway (MIP_OVER_LP) and it may run beside this process."""
        return (self.may_run_beside() and self.first_solve_seconds * MIP_OVER_LP >= self.left()
                and self.child_has_time())

    def child_has_time(self, share: float = 1.0) -> bool:
        """Whether a MIP child for `share` of the time left would get any time to solve after
        the kill grace and the rebuild of its plan (`_child_options`)."""
        return self._child_time_s(share) > MIN_STAGE_SECONDS

    def launch_full(self) -> None:
        """Start the full MIP in a child process for all the time left, from the best plan."""
        self.full_child = _ChildMip(self.data, self._child_options(1.0), self._start())

    def _restricted_data(self) -> ModelData:
        """The data with only the (candidate, site) pairs the LP or the best plan uses."""
        pairs = set(self.used)
        if self.best is not None and self.best.model is not None:
            pairs |= {(k, l) for (k, l, _), var in self.best.model.x.items() if (var.value or 0) > 0.5}
        return replace(self.data, kl=[kl for kl in self.data.kl if kl in pairs])

    def restricted(self, share: float) -> None:
        solved = self._mip(self._restricted_data(), share)
        if solved is not None and solved[0] is not None:
            self.consider(solved[0], solved[1].objective)

    def polish(self, share: float) -> None:
        """Re-solve the best plan period by period (`polish`), first with only the pairs in
        use and each period's purchases free to move to or from the next, then with all pairs
        and the purchases fixed."""
        if self.best is None or self.best.model is None:
            return
        # the polished plan goes into the best plan's model, or, when that is the restricted
        # MIP's, into a model built here: then two builds come out of the share, because a
        # build's time varies; alongside a full MIP child, the polish takes the time until the
        # child answers
        rebuild_s = 0.0 if self._reusable() else 2 * self.build_seconds
        deadline = time.perf_counter() + self._options(share).time_limit_s - rebuild_s
        if self.full_child is not None:
            deadline = self.full_child.deadline - CHILD_GRACE_S - rebuild_s

        # first over the pairs in use, whose period MIPs HiGHS closes in a fraction of a second
        # (bench large: 31 pairs of 1,083; the rounded LP's plan from $64.36M to $63.16M in
        # 2.2 s), with purchases free to move a period (`polish`), then over all pairs with
        # the time left and the purchases fixed: those MIPs are bigger, and with purchases
        # free as well bench large at 60 s ended at $62.708M and $62.714M against $62.675M and
        # $62.672M
        values, improved = self._start(), 0
        for data, move_purchases in ((self._restricted_data(), True), (self.data, False)):
            if self.interrupted:  # Ctrl-C in the first pass ends the polish, not just the pass
                break
            values, better = polish(data, values, deadline, self._solve_period,
                                    share_time=not self.options.by_nodes,
                                    move_purchases=move_purchases)
            improved += better
        if improved:
            self.take(values)

    def _solve_period(self, model: pyo.ConcreteModel, start: Values, limit_s: float) -> Run:
        """One period's MIP (of the polish or the period relaxation) from `start`."""
        options = replace(self.options, time_limit_s=limit_s, mip_gap=POLISH_GAP)
        run = _run(model, options, _warm_start(start, model))
        self.interrupted |= run.interrupted
        return run

    def periods(self) -> None:
        """Bound the whole MIP by its periods one at a time, the no-resale rule dropped and
        then priced back in by Lagrange multipliers (`planner.decompose.period_bound`), each
        from the best plan, for the time left; take the plan they make when it is cheaper."""
        if not splits_by_period(self.data):
            return
        deadline = time.perf_counter() + self.left()
        upper = self.best.objective if self.best is not None else math.inf
        bound, joined = period_bound(self.data, self._start(), deadline, self._solve_period,
                                     upper, self.options.mip_gap,
                                     share_time=not self.options.by_nodes)
        if math.isfinite(bound):
            self.lower = max(self.lower, bound)
        if joined is not None:
            self.take(joined)

    def full(self, share: float = 1.0) -> None:
        """The full MIP, for `share` of the time left: its bound can only raise the lower
        bound. Collected from its child when it was launched alongside the other stages (at
        once when they were interrupted, reached the gap, or found the relaxation infeasible
        or unbounded)."""
        if self.full_child is None:
            solved = self._mip(self.data, share)
        else:
            settled = self.relaxed in (Status.infeasible, Status.unbounded)  # so is the MIP
            outcome = self.full_child.outcome(
                now=self.interrupted or self.good_enough() or settled)
            self.full_child = None
            solved = None if outcome is None else (self._plan_of(*outcome), outcome[0])
            if solved is not None:
                self.interrupted |= solved[1].interrupted
        if solved is None:
            return
        model, run = solved
        if math.isfinite(run.bound):
            self.lower = max(self.lower, run.bound)
        if model is not None:
            self.consider(model, run.objective)
        self.integer_infeasible = run.status == Status.infeasible

    def _mip(self, data: ModelData, share: float
             ) -> tuple[pyo.ConcreteModel | None, Run] | None:
        """Solve the MIP of `data` from the best plan so far, for `share` of the time left: in
        this process when the LP was quick (MIP_OVER_LP, IN_PROCESS_LP_S), else in a child
        process that is killed if HiGHS has not returned when the time is up (its last
        progress then, or None). The model holding its plan comes back only when there is a
        plan, and from a child or of the restricted data only when it is better, in a model of
        the whole data (`_plan_of`): so the best plan's model is always one that later plans
        can be written into (`_holding`)."""
        options = self._options(share)
        start = self._start()
        if self.in_process(options.time_limit_s):
            built = build_model(data)
            run = _run(built, options, _warm_start(start, built))
            model = built if run.status.has_plan else None
            if model is not None and data is not self.data:  # the restricted MIP's
                model = self._plan_of(run, _values(model))
        elif not self.child_has_time(share):
            return None
        else:
            outcome = _solve_in_child(data, self._child_options(share), start)
            if outcome is None:
                return None
            run, values = outcome
            model = self._plan_of(run, values)
        self.interrupted |= run.interrupted
        return model, run

    def _plan_of(self, run: Run, values: Values) -> pyo.ConcreteModel | None:
        """A child's plan in a model (`_holding`), or None when it has none or it would not
        replace the best (`consider`)."""
        if not run.status.has_plan or not self._replaces_best(run.objective):
            return None
        return self._holding(values)

    def start_from(self, values: Values) -> None:
        """Make the plan `values` the best, consolidated (`_consolidated`): a plan of a larger
        demand (max_served_scale's, which has more than its scale's floor) gives back what
        that floor does not need."""
        self.take(values)
        if self.best is not None and self.best.model is not None:
            self._consolidated(self.best.model)
            self.best.objective = pyo.value(self.best.model.cost)

    def take(self, values: Values) -> None:
        """Make the plan `values` the best when it is cheaper (`plan_cost`), in a model
        (`_holding`)."""
        if self._replaces_best(plan_cost(self.data, values)):
            model = self._holding(values)
            self.best = SolveResult(Status.feasible, model, self.data, pyo.value(model.cost))

    def _holding(self, values: Values) -> pyo.ConcreteModel:
        """A model of the whole data holding `values`, a plan (of the whole or the restricted
        data) that is to replace the best: the best plan's model written over when it has every
        column of the whole data (a restricted model has fewer `x`, and the restricted data
        differs only in its pairs), else a new one. A build took 1.6–2.2 s on x-large, most
        of what a Ctrl-C at the end of the polish then waited for."""
        if self.best is None or not self._reusable():
            return _load(self.data, values)
        _write(self.best.model, values)
        return self.best.model

    def _reusable(self) -> bool:
        """Whether the best plan's model has every column of the whole data (`_holding`)."""
        model = self.best.model if self.best is not None else None
        return model is not None and len(model.x) == len(self.data.kl) * len(self.data.periods)

    def periods_follow(self) -> bool:
        """Whether the full MIP gets FULL_BEFORE_PERIODS and the period relaxation follows it
        (`_two_stage`): when the full MIP would run in this process, and under a node limit,
        where the choice must not depend on a measured time, when the fleet is not big."""
        if self.options.by_nodes:
            return not _big_fleet(self.data)
        return self.in_process(self.left() * FULL_BEFORE_PERIODS)

    def in_process(self, limit_s: float) -> bool:
        """Whether a MIP stage of `limit_s` runs in this process: the LP was quick
        (MIP_OVER_LP, IN_PROCESS_LP_S)."""
        return (self.first_solve_seconds < IN_PROCESS_LP_S
                or self.first_solve_seconds * MIP_OVER_LP < limit_s)

    def _start(self) -> Values:
        return _values(self.best.model) if self.best is not None and self.best.model else {}

    def _child_options(self, share: float) -> SolveOptions:
        """Options of a MIP in a child for `share` of the time left. The child may run
        CHILD_GRACE_S past its limit before it is killed, and then its plan is written into
        the best plan's model (`_holding`) and the plan's tables are made, about a build's
        time: both come out of the stage's time. (Only a child that ends before any other
        stage found a plan needs a model built for its plan, a second build; bench large at
        10 s ended at 1.292% with two builds kept for every child, 1.194% with one.)"""
        return replace(self.options,
                       time_limit_s=max(self._child_time_s(share), MIN_STAGE_SECONDS))

    def _child_time_s(self, share: float) -> float:
        # `left` keeps TABLES_OVER_BUILD of the build for the tables already
        return (self._options(share).time_limit_s - CHILD_GRACE_S
                - (1 - TABLES_OVER_BUILD) * self.build_seconds)

    def result(self) -> SolveResult:
        if self.best is None:
            status = Status.no_solution if self.relaxed.has_plan else self.relaxed
            if self.integer_infeasible:
                status = Status.infeasible
            return SolveResult(status, None, self.data, interrupted=self.interrupted)
        best = self.best
        best.bound, best.gap = self.lower, _gap(best.objective, self.lower)
        best.status = Status.optimal if best.gap <= self.options.mip_gap + 1e-12 else Status.feasible
        best.interrupted = self.interrupted
        best.relaxation_seconds = self.first_solve_seconds
        if self.interrupted:
            best.status = Status.feasible
        return best


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def lp_relaxation(data: ModelData) -> pyo.ConcreteModel:
    """The MIP of `data` with every integer variable continuous."""
    model = build_model(data)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
    return model


MIN_STAGE_SECONDS = 0.05
"""A stage starts only with at least this much of the time limit left."""
MIN_HIGHS_SECONDS = 0.01
"""HiGHS's time limit when handing the model over used up the run's time: it stops at once."""


PLAN_VARIABLES = ("x", "n", "buy", "r", "y", "u")
"""The variables that make a plan (and a complete MIP start)."""


def _values(model: pyo.ConcreteModel) -> Values:
    """The plan in `model`, by (variable name, index)."""
    return values_of(model, PLAN_VARIABLES)


def _load(data: ModelData, values: Values) -> pyo.ConcreteModel:
    """A model of `data` holding the plan `values` (`_write`)."""
    model = build_model(data)
    _write(model, values)
    return model


def _write(model: pyo.ConcreteModel, values: Values) -> None:
    """Set `model`'s plan variables to `values` (those absent from it to 0) and clear the
    rest (`uses_vendor`), which would otherwise hold another plan's values."""
    for var in model.component_objects(pyo.Var):
        plan = var.local_name in PLAN_VARIABLES
        for index, data in var.items():
            data.set_value(values.get((var.local_name, index), 0.0) if plan else None,
                           skip_validation=True)


def _warm_start(start: Values, model: pyo.ConcreteModel) -> dict[int, float]:
    """`start` (a plan by variable name and index) for the variables of `model`, absent replica
    columns at 0: a complete MIP start for HiGHS; empty without a plan. Served rates above
    their bound (the demand) are cut to it: a plan may report what its replicas could serve,
    and HiGHS drops a start that breaks a bound. A max_served_scale model's α comes from
    `start`'s SCALE_KEY."""
    if not start:
        return {}
    values = {}
    for name in PLAN_VARIABLES:
        for index, var in getattr(model, name).items():
            value, upper = start.get((name, index), 0.0), var.ub
            values[id(var)] = value if upper is None else min(value, upper)
    if hasattr(model, "alpha") and SCALE_KEY in start:
        values[id(model.alpha)] = start[SCALE_KEY]
    return values


SCALE_KEY = ("alpha", None)
"""A max_served_scale start's α, beside its plan variables (`_warm_start`)."""


CHILD_GRACE_S = 0.25
"""How long past its time limit a MIP in a child process may take before it is killed."""


class _ChildMip:
    """`_child_mip` (or `target`, for tests) solving in a child process (forkserver, as
    `compare` does) while this process goes on. A thread here reads what the child reports
    (HiGHS's bound and better plans as it goes, then its answer), so the child never blocks on
    a full pipe; `outcome` waits for the answer until CHILD_GRACE_S after the child's time
    limit, then kills it and lets the last progress stand in for the answer. A `maximize`d
    objective (max_served_scale's α) is better when higher, and its bound falls."""

    def __init__(self, data: ModelData, options: SolveOptions, start: Values,
                 target: Any = None, maximize: bool = False) -> None:
        context = forkserver_context()
        receive, send = context.Pipe(duplex=False)
        # the limit counts from now: starting the child (the forkserver's first start imports
        # planner, about a second) and building its model come out of it
        self.deadline = time.perf_counter() + options.time_limit_s + CHILD_GRACE_S
        """When the child is killed if it has not answered (`time.perf_counter()`)."""
        ends_at = time.monotonic() + options.time_limit_s
        self.child = context.Process(target=target or _child_mip,
                                     args=(data, options, start, send, ends_at), daemon=True)
        self.sign = -1.0 if maximize else 1.0
        """+1 when the objective is minimized, -1 when maximized."""
        self.bound, self.objective = math.nan, self.sign * math.inf
        self.plan: Values = {}
        self.answer: tuple[Run, Values] | None = None
        self.finished = threading.Event()
        """Set when the child has answered, died or been killed."""
        self.reader = threading.Thread(target=self._read, args=(receive,), daemon=True)
        try:
            interrupted = _start_holding_interrupt(self.child)
            send.close()
            self.reader.start()
        except KeyboardInterrupt:  # one that came just after the handler was restored
            interrupted = True
        if interrupted:  # no child left behind
            self.stop()
            raise KeyboardInterrupt

    def _read(self, receive: Any) -> None:
        try:
            while True:
                message = receive.recv()
                if message[0] == "done":
                    self.answer = message[1:]
                    return
                _, bound, better, values = message
                if math.isnan(self.bound) or self.sign * bound > self.sign * self.bound:
                    self.bound = bound
                if values is not None and self.sign * better < self.sign * self.objective:
                    self.objective, self.plan = better, values
        except (EOFError, OSError):
            return
        finally:
            receive.close()
            self.finished.set()

    def stop(self) -> None:
        """Kill the child if it is still running; the reader then sees the pipe close."""
        if self.child.is_alive():
            self.child.kill()
        if self.child.pid is not None:
            self.child.join()
        if self.reader.ident is not None:  # started
            self.reader.join()

    def outcome(self, now: bool = False) -> tuple[Run, Values] | None:
        """The child's answer, or its last progress once it is killed: at the deadline, at
        once with `now` (what it reported so far), or on Ctrl-C (marked interrupted;
        KeyboardInterrupt again when it reported nothing). None when it died or was killed
        without reporting anything."""
        try:
            interrupted = _wait_or_ctrl_c(
                self.finished, 0.0 if now else max(0.0, self.deadline - time.perf_counter()))
        finally:
            self.stop()
        if self.answer is not None and not interrupted:
            return self.answer
        if not self.plan and not math.isfinite(self.bound):
            if interrupted:
                raise KeyboardInterrupt
            return None
        status = Status.feasible if self.plan else Status.no_solution
        objective = self.objective if self.plan else math.nan
        gap = (_gap(self.sign * objective, self.sign * self.bound)
               if self.plan and math.isfinite(self.bound) else math.nan)
        return Run(status, objective, self.bound, gap, interrupted), self.plan


@contextmanager
def _sigint_handled_by(handler: Any) -> Iterator[Any]:
    """SIGINT goes to `handler` inside the block (main thread only: `interrupt_held`), which
    gets the handler it replaced."""
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield previous
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None
                      else signal.default_int_handler)


_HELD: list[list[int]] = []
"""The lists of the `interrupt_held` blocks open in this process, outermost first."""


@contextmanager
def interrupt_held(caught: list[int] | None = None) -> Iterator[list[int]]:
    """Ctrl-C inside the block is noted in the list yielded (`caught`, if given), and in those
    of the blocks around it, instead of raised, for the code in and after the block to act on.
    Where the process ignores Ctrl-C, nothing changes and the list stays empty."""
    caught = [] if caught is None else caught
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN or \
            threading.current_thread() is not threading.main_thread():  # no handler runs there
        yield caught
        return

    def note(signum: int, frame: Any) -> None:
        for held in _HELD:
            held.append(signum)

    _HELD.append(caught)
    try:
        with _sigint_handled_by(note):
            yield caught
    finally:
        # by identity: lists that caught the same Ctrl-C are equal
        del _HELD[next(i for i, held in enumerate(_HELD) if held is caught)]


def ctrl_c_pending() -> bool:
    """Whether a Ctrl-C came inside an `interrupt_held` block that is still open."""
    return any(_HELD)


def _wait_or_ctrl_c(event: threading.Event, timeout_s: float) -> bool:
    """Wait for `event` up to `timeout_s`; True when a held Ctrl-C (`ctrl_c_pending`) or, with
    none held, a KeyboardInterrupt ended the wait first."""
    ends_at = time.perf_counter() + timeout_s
    try:
        while not event.wait(min(CTRL_C_POLL_S, max(0.0, ends_at - time.perf_counter()))):
            if ctrl_c_pending():
                return True
            if time.perf_counter() >= ends_at:
                return False
    except KeyboardInterrupt:
        return True
    return False


CTRL_C_POLL_S = 0.05
"""How often a wait looks for a held Ctrl-C."""


def _start_holding_interrupt(process: Any) -> bool:
    """Start `process` with Ctrl-C held until it has its data; True when Ctrl-C came meanwhile.
    An interrupt while the data is being sent leaves the child a truncated pickle, and the
    forkserver prints that traceback (bench large, Ctrl-C 4 s into a solve)."""
    with interrupt_held() as caught:
        process.start()
    return bool(caught)


def forkserver_context() -> Any:
    """The forkserver context MIP children and `compare`'s workers start from (it imports
    planner.solve once, with Ctrl-C held: `planner.forkserver_preload`)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["planner.forkserver_preload"])
    return context


FULL_CHILD_COLUMNS = 5_000
"""Replica columns from which, with a second CPU, the full MIP is launched in a child as soon
as the LP is built (`_two_stage`), and the forkserver is started with the solve: its first
start imports planner (about a second), which would otherwise hold up the launch."""


COLUMNS_PER_COMBINATION = 4
"""Replica columns per (system, workload, site, period) that `warm_children_for` assumes
(bench medium to x-large have 5 to 6)."""


def _big_fleet(data: ModelData) -> bool:
    return len(data.kl) * len(data.periods) >= FULL_CHILD_COLUMNS


def _warm_forkserver(data: ModelData) -> None:
    if _big_fleet(data):
        _start_forkserver()


def warm_children_for(combinations: int) -> None:
    """Start the forkserver before the candidates are generated when a problem of this many
    (system, workload, site, period) combinations will likely launch the full MIP's child
    (FULL_CHILD_COLUMNS): the child then starts with the solve, not a second later (three runs
    of bench large at 10 s: bounds of 61.98–62.02, against 61.70–61.99 without)."""
    if combinations * COLUMNS_PER_COMBINATION >= FULL_CHILD_COLUMNS:
        _start_forkserver()


def _start_forkserver() -> None:
    if _cpus() >= 2:
        start_forkserver()


def start_forkserver() -> None:
    """Start the forkserver now (a few ms; it imports planner in the background) with Ctrl-C
    blocked from its first instruction: it ignores SIGINT itself only once its imports are
    done, and until then Ctrl-C in a terminal made it print a traceback. The server inherits
    the mask, and `planner.forkserver_preload` ignores SIGINT and then unblocks it, so the
    processes it forks start with Ctrl-C ignored. Blocked rather than ignored here, a Ctrl-C
    that comes while the server starts is not lost: it reaches this process when the block
    ends. (The mask is this thread's: from another one, Ctrl-C still goes to the main
    thread meanwhile.)"""
    from multiprocessing import forkserver

    forkserver_context()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _solve_in_child(data: ModelData, options: SolveOptions, start: Values,
                    target: Any = None) -> tuple[Run, Values] | None:
    """Solve in a child process and wait for its answer (`_ChildMip`)."""
    return _ChildMip(data, options, start, target).outcome()


PROGRESS_EVERY_S = 0.5
"""A child sends an unchanged bound at most this often (`_progress_sender`)..."""
BOUND_EVERY_S = 0.05
"""... and a risen one at most this often."""


def _child_mip(data: ModelData, options: SolveOptions, start: Values, send: Any,
               ends_at: float) -> None:
    """Solve the MIP of `data` until `ends_at` (`time.monotonic()`, shared with the parent),
    sending progress and then the answer through `send`. Ctrl-C is the parent's to handle (it
    kills this child), so this child ignores it rather than print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    model = build_model(data)
    key_of = {id(var): (name, index)
              for name in PLAN_VARIABLES for index, var in getattr(model, name).items()}
    options = replace(options, time_limit_s=max(ends_at - time.monotonic(), MIN_STAGE_SECONDS))
    run = _run(model, options, _warm_start(start, model), _progress_sender(send, key_of))
    _send_or_exit(send, ("done", run, _values(model) if run.status.has_plan else {}))


def _send_or_exit(send: Any, message: tuple[Any, ...]) -> None:
    """Send `message` to the parent; exit quietly when the parent is gone (a `compare` worker
    stopped after Ctrl-C), rather than solve on and print a BrokenPipeError."""
    try:
        send.send(message)
    except OSError:
        os._exit(0)


def _progress_sender(send: Any, key_of: dict[int, tuple[str, Any]]) -> Progress:
    """A `Progress` that sends ("progress", bound, objective, plan by variable name and index)
    through `send`: every better plan, a rise of the bound at most every BOUND_EVERY_S
    (HiGHS reports it at every interrupt check, and the child may be killed any time), and
    anything else at most every PROGRESS_EVERY_S."""
    last, sent_bound = -math.inf, -math.inf

    def progress(bound: float, objective: float, plan: dict[int, float] | None) -> None:
        nonlocal last, sent_bound
        since = time.perf_counter() - last
        if plan is None and since < PROGRESS_EVERY_S and (
                bound <= sent_bound or since < BOUND_EVERY_S):
            return
        last, sent_bound = time.perf_counter(), max(sent_bound, bound)
        values = None if plan is None else {key_of[v]: x for v, x in plan.items() if v in key_of}
        _send_or_exit(send, ("progress", bound, objective, values))

    return progress


def _gap(objective: float, bound: float) -> float:
    return max(0.0, objective - bound) / max(abs(objective), 1e-9)


def round_up(model: pyo.ConcreteModel, data: ModelData) -> None:
    """Make a relaxed solution integral, keeping its served rates u and y.

    Per serving pool (workload, system@precision, site, period): every replica count is rounded
    down, then each side still short of u (aggregated + prefill ≥ u, aggregated + decode ≥ u)
    gets ⌈short ÷ ρ⌉ more replicas of the option that covers it with the fewest accelerators
    (rounding every count up instead buys whole racks for 10⁻⁶ of a replica); ρ is the rate the
    model's serving rows count (`serving_rate`), so the rounded plan keeps those rows. Then the
    fewest systems that hold the replicas (`fit_fleet`: n ≥ Σ a·x ÷ (A·availability)), purchases
    non-decreasing over the horizon, racks ⌈n ÷ per rack⌉. That may break power, space, a
    quota, a supply cap or the budget; `limit_excess` says where and by how much."""
    modes = data.candidates["mode"].to_numpy()
    workloads = data.candidates["workload"].to_numpy()
    pools = pool_keys(data)
    groups: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for (k, l, p), var in model.x.items():
        var.set_value(max(0, math.floor((var.value or 0.0) + 1e-6)), skip_validation=True)
        groups[(str(workloads[k]), pools[k], l, p)].append(k)
    for (w, s, l, p), ks in groups.items():
        served = model.u[w, s, l, p].value or 0.0
        for side in ("prefill", "decode"):
            options = [k for k in ks if modes[k] in ("aggregated", side)]
            rate = {k: serving_rate(data, k, w, p) for k in options}  # as in the model's rows
            short = served - sum(rate[k] * (model.x[k, l, p].value or 0.0) for k in options)
            if short <= 1e-9 * max(1.0, served):
                continue
            best = min(options, key=lambda k: (math.ceil(short / rate[k] - 1e-9)
                                               * data.replica_accelerators[k], -rate[k], k))
            var = model.x[best, l, p]
            var.set_value((var.value or 0) + math.ceil(short / rate[best] - 1e-9),
                          skip_validation=True)
    fit_fleet(model, data)


Limit = tuple[str, str, str]
"""A limit a plan can break: (kind, site or system, period); kind is power, racks, quota,
supply or budget."""


def limit_excess(model: pyo.ConcreteModel, data: ModelData) -> dict[Limit, float]:
    """How far the model's current values exceed each limit of `data` (model units: MW, racks,
    accelerators, systems, $M); only the limits a rounding can break, and only those broken.
    The used side is the model's own row body; the limit is taken from `data`, because the model
    may have been built from data whose limits `tighten` lowered (same rows, lower right-hand
    sides). Vendor-policy rows count too, as ("policy", row, "")."""
    excess: dict[Limit, float] = {}
    for key, con, limit in _limit_rows(model, data):
        used = pyo.value(con.body)
        if used > limit + 1e-6:
            excess[key] = used - limit
    if data.budget_musd is not None and pyo.value(model.cost) > data.budget_musd + 1e-9:
        excess[("budget", "", "")] = pyo.value(model.cost) - data.budget_musd
    for name in ("vendor_share", "vendor_link", "min_vendors"):
        for index, con in getattr(model, name, {}).items():
            amount = _violation(con)
            if amount > 1e-6:
                excess[("policy", f"{name}[{index}]", "")] = amount
    return excess


def _limit_rows(model: pyo.ConcreteModel, data: ModelData) -> Iterator[tuple[Limit, Any, float]]:
    """The rows of `model` for limits per site or system and period (power, racks, quota,
    supply), each with its `Limit` key and the limit `data` sets for it."""
    tables: list[tuple[str, str, Callable[[str, str], float]]] = [
        ("power", "power", lambda l, p: data.power_budget_mw[(l, p)]),
        ("racks", "space", lambda l, p: data.rack_limit[(l, p)]),
        ("quota", "quota", lambda l, p: data.max_accelerators[l]),
        ("supply", "supply", lambda s, p: float(data.max_purchases[s])),
    ]
    for kind, rows, limit in tables:
        for (where, period), con in getattr(model, rows, {}).items():
            yield (kind, where, period), con, limit(where, period)


def repair_steps(model: pyo.ConcreteModel, data: ModelData, excess: dict[Limit, float],
                 previous: dict[Limit, float] | None = None) -> dict[Limit, float]:
    """How far to lower each broken limit: its overshoot, and at least one of the largest
    systems installed under it (their facility MW for power, their accelerators for a quota)
    where the repair stalls: the overshoot is more than half the `previous` round's. Such an
    overshoot is the rounding's, not the LP's: lowered by that alone, the LP moves by a sliver
    of a system and rounds the same way again (bench large at 10× demand: 139 GB200 NVL72
    racks over a 21.1 MW hall by 0.2 kW, three rounds in a row, and no plan from the LP
    stage). Racks and purchase caps break by whole units already."""
    steps = dict(excess)
    for key, before in (previous or {}).items():
        if excess.get(key, 0.0) <= before / 2:
            continue
        kind, site, period = key
        installed = [s for s, l in data.sl
                     if l == site and (model.n[s, l, period].value or 0) > 0.5]
        if kind == "power" and installed:
            steps[key] = max(excess[key], max(data.power_mw[(s, site)] for s in installed))
        elif kind == "quota" and installed:
            steps[key] = max(excess[key], max(data.accelerators[s] for s in installed))
    return steps


def tighten(data: ModelData, excess: dict[Limit, float]) -> ModelData | None:
    """`data` with every broken limit lowered by how far it was broken, so that the next
    relaxation leaves room for its rounding; a quota or purchase cap is lowered in every period
    (they are not per period). None when a broken limit is a vendor policy, which has no
    amount to lower."""
    power, racks = dict(data.power_budget_mw), dict(data.rack_limit)
    quota, supply = dict(data.max_accelerators), dict(data.max_purchases)
    budget = data.budget_musd
    for (kind, where, period), amount in excess.items():
        if kind == "power":
            power[(where, period)] = max(0.0, power[(where, period)] - amount)
        elif kind == "racks":
            racks[(where, period)] = max(0.0, racks[(where, period)] - math.ceil(amount - 1e-9))
        elif kind == "quota":
            quota[where] = max(0.0, min(quota[where], data.max_accelerators[where] - amount))
        elif kind == "supply":
            supply[where] = max(0, min(supply[where],
                                       data.max_purchases[where] - math.ceil(amount - 1e-9)))
        elif kind == "budget" and budget is not None:
            budget = max(0.0, budget - amount)
        else:
            return None
    return replace(data, power_budget_mw=power, rack_limit=racks, max_accelerators=quota,
                   max_purchases=supply, budget_musd=budget)


def fewer_held(model: pyo.ConcreteModel, data: ModelData) -> ModelData:
    """`data` with the existing systems of a held system lowered wherever the rounded plan in
    `model` bought some: a held system's purchases are capped at 0, so the supply cap cannot be
    lowered further, and the next relaxation must leave the rounding room within what stands
    there instead."""
    existing = dict(data.existing)
    for (s, l, p), var in model.buy.items():
        if s in data.held and (var.value or 0.0) > 0.5:
            existing[(s, l, p)] = max(0, existing.get((s, l, p), 0) - round(var.value))
    return replace(data, existing=existing) if existing != data.existing else data


def lower_limits(model: pyo.ConcreteModel, data: ModelData) -> None:
    """Set the right-hand sides of `model`'s limit rows (power, racks, quota, supply, budget) to
    `data`'s, where they differ: a model of the data `tighten` returned, without a rebuild; and
    a held system's fleet rows to `data`'s existing systems (`fewer_held`)."""
    for s, l, p in getattr(model, "fleet", {}):
        if s in data.held:  # n = existing (purchases are 0): the row's constant is existing
            model.fleet[s, l, p].set_value(model.n[s, l, p] == data.existing.get((s, l, p), 0))
    for _, con, limit in _limit_rows(model, data):
        if pyo.value(con.upper) != limit:
            con.set_value((None, con.body, limit))
    if hasattr(model, "budget") and data.budget_musd is not None \
            and pyo.value(model.budget.upper) != data.budget_musd:
        model.budget.set_value((None, model.budget.body, data.budget_musd))


def _violation(con: Any) -> float:
    """How far the current values break one constraint (0 when they keep it)."""
    body = pyo.value(con.body)
    if con.has_ub() and body > pyo.value(con.upper):
        return body - pyo.value(con.upper)
    if con.has_lb() and body < pyo.value(con.lower):
        return pyo.value(con.lower) - body
    return 0.0


def _note_unvalued(result: SolveResult) -> None:
    """Say so when the time limit left binding limits without a value."""
    unvalued = [b for b in result.bindings[:MAX_MARGINAL_RESOLVES]
                if b.value_usd is None and b.value_scale is None
                and _has_value(b, result.data.objective)]
    if unvalued:
        _add_note(result, f"values of {len(unvalued)} binding limit(s) not computed: the time "
                  "limit was used up (raise --time-limit)")


def _note_limits(result: SolveResult, by_nodes: bool = False) -> None:
    """A plan cut short (time limit, node limit, or Ctrl-C) says so in its notes, with its gap
    and bound; `by_nodes`: node limits, not the clock, ended the stages."""
    if not result.status.has_plan or result.status == Status.optimal:
        return
    why = ("interrupted (Ctrl-C)" if result.interrupted else
           "stopped at the node limit" if by_nodes else "stopped at the time limit")
    gap = f"{result.gap:.3%}" if math.isfinite(result.gap) else "unknown"
    bound = (f"lower bound {result.bound:,.4f} $M" if math.isfinite(result.bound)
             else "bound unknown")
    result.message = f"{why}: best plan found so far, gap {gap} ({bound})"
    _add_note(result, result.message)


def _add_note(result: SolveResult, note: str) -> None:
    """Append `note` to the notes the plan will carry (`ModelData.notes`)."""
    result.data = replace(result.data, notes=[*result.data.notes, note])


def coefficient_ranges(model: pyo.ConcreteModel) -> dict[str, tuple[float, float]]:
    """Smallest and largest |nonzero| of the constraint matrix, the objective and the finite
    right-hand sides, as HiGHS sees them (its log's "Coefficient ranges")."""
    from pyomo.repn import generate_standard_repn

    ranges: dict[str, list[float]] = {"matrix": [], "cost": [], "rhs": []}
    for con in model.component_data_objects(pyo.Constraint, active=True):
        repn = generate_standard_repn(con.body, compute_values=True)
        ranges["matrix"] += [abs(c) for c in repn.linear_coefs if c]
        for side in (con.lower, con.upper):
            value = None if side is None else pyo.value(side) - (repn.constant or 0.0)
            if value is not None and value != 0 and math.isfinite(value):
                ranges["rhs"].append(abs(value))
    for obj in model.component_data_objects(pyo.Objective, active=True):
        repn = generate_standard_repn(obj.expr, compute_values=True)
        ranges["cost"] += [abs(c) for c in repn.linear_coefs if c]
    return {k: (min(v), max(v)) if v else (math.nan, math.nan) for k, v in ranges.items()}


def coefficient_report(model: pyo.ConcreteModel) -> str:
    """`coefficient_ranges` as text, one line per part, with its span in orders of magnitude."""
    lines = ["coefficient ranges (units: $M, thousand tok/s, MW):"]
    for name, (low, high) in coefficient_ranges(model).items():
        span = math.log10(high / low) if low > 0 else math.nan
        lines.append(f"  {name:<6} [{low:.1e}, {high:.1e}]  {span:.1f} decades")
    return "\n".join(lines)


def _explain_status(result: SolveResult, options: SolveOptions, started: float) -> None:
    data = result.data
    if result.status == Status.infeasible:
        result.diagnosis = diagnose(data, time_left(options, started, DIAGNOSIS_FLOOR_S))
        result.message = ("no plan satisfies every constraint; relax:" if result.diagnosis
                          else "no plan satisfies every constraint (the elastic re-solve found no "
                          "single cause)")
    elif result.status == Status.no_solution and options.by_nodes \
            and not _near_cap(result, options, started):
        result.message = (f"no integer-feasible plan found within {options.node_limit:,} "
                          "branch-and-bound nodes per MIP; raise --node-limit")
    elif result.status == Status.no_solution:
        result.message = (
            "no integer-feasible plan found within the time limit (the solver had "
            f"{options.time_limit_s:.3g} s of it); raise --time-limit"
        )
    elif result.status == Status.unbounded:
        result.message = (
            "the objective is unbounded: with max_served_scale, give every site a power budget "
            "or rack limit"
        )
    elif result.status == Status.error:
        result.message = "HiGHS returned no usable solution"


DIAGNOSIS_LIMIT = SolveOptions(time_limit_s=20.0, mip_gap=0.01, shadow_prices=False)
"""The elastic re-solve only has to say what to relax: a 1% gap and 20 s are plenty, and a
shortfall it overstates a little is still safe advice."""
DIAGNOSIS_NODES = 100_000
"""Under --node-limit, the elastic re-solve's node limit is at least this: a shortfall
measured from the first few nodes' plan was 7% too large (205 kW for 191)."""
DIAGNOSIS_FLOOR_S = 1.0
"""The elastic re-solve gets at least this long even when the solve used up its time limit:
an infeasible problem's diagnosis is its error message."""


def time_left(options: SolveOptions, started: float,
              floor_s: float = MIN_STAGE_SECONDS) -> SolveOptions:
    """`options` with the time limit cut to what is left of it since `started`
    (`time.perf_counter()`), but at least `floor_s`."""
    left = options.time_limit_s - (time.perf_counter() - started)
    return replace(options, time_limit_s=max(left, floor_s))


def diagnose(data: ModelData, options: SolveOptions) -> list[str]:
    """Solve the elastic copy; one line per relaxed quantity, largest first. A vendor policy
    no fleet could meet is named as such first (`_vendor_policy_causes`)."""
    causes = _vendor_policy_causes(data)
    if causes:
        return causes
    model = build_model(data, elastic=True)
    limits = replace(DIAGNOSIS_LIMIT, time_limit_s=options.time_limit_s if options.by_nodes
                     else min(options.time_limit_s, DIAGNOSIS_LIMIT.time_limit_s),
                     threads=options.threads, verbose=options.verbose,
                     node_limit=None if options.node_limit is None
                     else max(options.node_limit, DIAGNOSIS_NODES))
    run = _run(model, limits)
    if run.interrupted:  # a diagnosis cut short could name the wrong limits
        raise KeyboardInterrupt
    if not run.status.has_plan:
        return [f"the elastic re-solve ended {run.status.value}"]
    lines = _shortfalls(model, data)
    if run.status != Status.optimal:  # its amounts suffice, but may be more than is needed
        lines.append(f"(these amounts are enough, perhaps more than needed: the re-solve that "
                     f"measured them stopped at its limit, {run.gap:.1%} from its bound; a "
                     "longer --time-limit measures them exactly)")
    return lines


def _shortfalls(model: pyo.ConcreteModel, data: ModelData) -> list[str]:
    """One line per quantity the solved elastic `model` relaxed, largest penalty first."""
    lines: list[tuple[float, str]] = []
    for (w, p), var in getattr(model, "unserved", {}).items():
        short = (var.value or 0.0) * RATE
        # less than 0.1% of the demand is the elastic re-solve's 1% gap, not a cause
        if short > 1e-3 * max(1.0, data.demand[(w, p)] * RATE):
            need = data.demand[(w, p)] * RATE
            lines.append((1e9 + short, f"workload {w}, {p}: {short:,.0f} of {need:,.0f} output "
                          f"tok/s cannot be served {_serving_systems(data, w, p)}"))
    for (l, p), var in getattr(model, "power_slack", {}).items():
        if (var.value or 0.0) > 1e-6:
            lines.append((1e6 * var.value, f"site {l}, {p}: power short by "
                          f"{format_power_kw(var.value * 1000)} (budget "
                          f"{format_power_kw(data.power_budget_mw[(l, p)] * 1000)})"))
    for (l, p), var in getattr(model, "rack_slack", {}).items():
        if (var.value or 0.0) > 1e-6:
            lines.append((1e3 * var.value, f"site {l}, {p}: {math.ceil(var.value - 1e-6)} more rack "
                          f"positions needed (limit {data.rack_limit[(l, p)]:,.0f})"))
    for (l, p), var in getattr(model, "quota_slack", {}).items():
        if (var.value or 0.0) > 1e-6:
            lines.append((var.value, f"site {l}, {p}: accelerator quota short by "
                          f"{math.ceil(var.value - 1e-6)}"))
    if hasattr(model, "budget_slack") and (model.budget_slack.value or 0.0) > 1e-6:
        lines.append((1e5, f"budget short by {format_usd(model.budget_slack.value * USD)}"))
    for (s, p), var in getattr(model, "supply_slack", {}).items():
        if (var.value or 0.0) > 1e-6:
            lines.append((var.value, f"policy.max_purchases of {s}, {p}: "
                          f"{math.ceil(var.value - 1e-6)} more purchases needed (cap "
                          f"{data.max_purchases[s]:,})"))
    for (v, p), var in getattr(model, "share_slack", {}).items():
        if (var.value or 0.0) > 1e-6:
            lines.append((var.value, f"policy.max_vendor_share ({data.max_vendor_share:g}), "
                          f"{p}: {v} needs {math.ceil(var.value - 1e-6):,} accelerators more than "
                          "its share allows"))
    for p, var in getattr(model, "vendors_slack", {}).items():
        if (var.value or 0.0) > 1e-6:
            lines.append((var.value, f"policy.min_vendors ({data.min_vendors}), {p}: "
                          f"{math.ceil(var.value - 1e-6)} vendor(s) short: fewer vendors' "
                          "systems can stand or serve there then"))
    return [text for _, text in sorted(lines, key=lambda t: -t[0])]


def able_systems(data: ModelData, workload: str) -> set[str]:
    """The systems with a candidate deployment of `workload` at a site it may use."""
    systems = data.candidates["system"].to_numpy()
    workloads = data.candidates["workload"].to_numpy()
    return {str(systems[k]) for k, _ in data.kl if workloads[k] == workload}


def _serving_systems(data: ModelData, workload: str, period: str) -> str:
    """Why a workload's demand goes unserved even with every limit relaxed: no allowed system
    can serve it (SLO, precision, placement), and of the held ones only those standing then."""
    able = able_systems(data, workload)
    if able - set(data.held):
        return "by any allowed system within its SLO and sites"
    standing: dict[str, int] = defaultdict(int)  # over every site
    for (s, _, p), n in data.existing.items():
        if p == period and s in able and n:
            standing[s] += n
    if not standing:
        return ("by any allowed system within its SLO and sites, and no existing system that "
                "could stands there then")
    return ("by any allowed system within its SLO and sites; only the existing "
            + ", ".join(f"{n} × {s}" for s, n in sorted(standing.items()))
            + " can, and none is bought")


def _vendor_policy_causes(data: ModelData) -> list[str]:
    """policy.min_vendors beyond the vendors whose systems may stand at some site, or a
    policy.max_vendor_share below 1 ÷ those vendors: with n vendors one holds at least 1/n of
    the accelerators, so no count of them meets it."""
    vendors = sorted({data.vendor[s] for s, _ in data.sl})
    where = (f"the allowed systems that may stand at a site come from {len(vendors)} vendor(s): "
             f"{', '.join(vendors)}")
    if data.min_vendors is not None and data.min_vendors > len(vendors):
        return [f"policy.min_vendors is {data.min_vendors}, but {where}"]
    share = data.max_vendor_share
    if share is not None and vendors and share * len(vendors) < 1 - 1e-9 and \
            any(rate > 0 for rate in data.demand.values()):
        return [f"policy.max_vendor_share is {share:g}, but {where}, so one of them holds at "
                f"least 1/{len(vendors)} of the accelerators: expected a share of at least "
                f"{1 / len(vendors):.3g}, or systems of more vendors"]
    return []


def _one_mip_from(data: ModelData, options: SolveOptions, plan: Values,
                  lp_seconds: float) -> SolveResult:
    """The full MIP of `data` from `plan` (a MIP start), as a stage of `_two_stage` runs it (in
    this process or a child, by `lp_seconds`, the LP time of the solve the plan came from);
    no plan when it did not run."""
    state = _Stages(data, options, time.perf_counter())
    state.first_solve_seconds = state.build_seconds = lp_seconds
    model = _load(data, plan)
    state.consider(model, pyo.value(model.cost))
    solved = state._mip(data, 1.0)
    if solved is None:
        return SolveResult(Status.no_solution, None, data, interrupted=state.interrupted)
    if solved[0] is not None:
        state.consider(solved[0], solved[1].objective)
    return state.result()


MAX_MARGINAL_RESOLVES = 6
MARGINAL_LIMIT_S = 20.0
"""Time limit of one re-solve of `marginal_values`."""
MIN_MARGINAL_SECONDS = 0.2
"""A binding limit is valued only with at least this much of the time limit left for it."""
MARGINAL_OVER_LP = 3.0
"""... and at least this many times the LP relaxation's time: a re-solve builds and solves that
LP first (a 164k-variable fleet: 4 s to build, 10.8 s for a re-solve given 2.8 s)."""
BINDING_SHARE = 0.01
"""A limit with less than this share left counts as binding."""


def find_bindings(model: pyo.ConcreteModel, data: ModelData) -> list[Binding]:
    """Limits that are (nearly) used up: less than 1% left, or too little for one more of the
    smallest system that could stand there. Their worth is measured by `marginal_values`."""
    found: list[Binding] = []
    for (l, p), con in getattr(model, "power", {}).items():
        used = pyo.value(con.body)
        limit = data.power_budget_mw[(l, p)]
        smallest = min((data.power_mw[(s, l2)] for s, l2 in data.sl if l2 == l), default=0.0)
        if limit - used < max(smallest, BINDING_SHARE * limit) - 1e-9:
            found.append(Binding("power", l, p, used, limit, "MW"))
    for l, p in getattr(model, "space", {}):
        used = sum(rack_count(round(model.n[s, l2, p].value or 0), data.systems_per_rack[(s, l2)])
                   for s, l2 in data.sl if l2 == l)
        limit = data.rack_limit[(l, p)]
        if limit - used < max(1.0, BINDING_SHARE * limit) - 1e-6:
            found.append(Binding("racks", l, p, used, limit, "rack"))
    for (s, p), con in getattr(model, "supply", {}).items():
        used = pyo.value(con.body)
        if used >= data.max_purchases[s] - 1e-6 and s not in data.held:  # held: never bought
            found.append(Binding("supply", s, p, used, data.max_purchases[s], "system"))
    found.extend(_quota_bindings(model, data))
    if data.budget_musd is not None and hasattr(model, "budget"):
        used = pyo.value(model.cost)
        # the cheapest system for a single period: less than that left buys nothing more
        cheapest = min((cost + data.buy_cost.get(key, 0.0)
                        for key, cost in data.installed_cost.items()), default=0.0)
        if data.budget_musd - used < max(cheapest, BINDING_SHARE * data.budget_musd) - 1e-9:
            found.append(Binding("budget", "", "", used * USD, data.budget_musd * USD, "USD"))
    return found


def _quota_bindings(model: pyo.ConcreteModel, data: ModelData) -> Iterator[Binding]:
    """A cloud site's accelerator quota, once per site (the quota is the same in every period):
    binding where too little of it is left for one more of the smallest system it offers."""
    step: dict[str, int] = {}  # the accelerators of the smallest system offered at the site
    for s, l in data.sl:
        step[l] = min(step.get(l, data.accelerators[s]), data.accelerators[s])
    periods_of: dict[str, list[str]] = defaultdict(list)
    used_at: dict[str, float] = defaultdict(float)
    for (l, p), con in getattr(model, "quota", {}).items():
        used = pyo.value(con.body)
        if data.max_accelerators[l] - used < step[l] - 1e-6:
            periods_of[l].append(p)
            used_at[l] = max(used_at[l], used)
    for l, periods in periods_of.items():
        yield Binding("quota", l, ", ".join(periods), used_at[l], data.max_accelerators[l],
                      "accelerator", step=step[l])


def _has_value(binding: Binding, objective: Objective) -> bool:
    """Whether one more unit of `binding` can be worth anything: a budget that binds a cost
    minimum is no dearer plan's limit, so more of it saves nothing (`marginal_values` does not
    re-solve it, and no note calls its value missing)."""
    return binding.kind != "budget" or objective == Objective.max_served_scale


def marginal_values(
    data: ModelData, base: float, bindings: list[Binding], options: SolveOptions,
    ends_at: float = math.inf, min_resolve_s: float = 0.0,
    plan: pyo.ConcreteModel | None = None, lp_seconds: float = 0.0,
) -> list[Binding]:
    """Re-solve with one more unit of each binding limit; the cost saved ($M below `base`) is
    its value, or under max_served_scale the scale gained (above `base`, the scale served;
    `value_scale`, by the whole solve of `planner.scale` again).

    Integer fleets make LP duals meaningless here (a fixed fleet leaves power rows without
    free variables), so the value is measured the honest way: by a MIP re-solve. The
    re-solves share the time until `ends_at` (`time.perf_counter()`), each at most
    MARGINAL_LIMIT_S; a limit whose share would be under `min_resolve_s` (or
    MIN_MARGINAL_SECONDS) keeps value_usd None. Under a node limit, given the model that holds
    the plan (`plan`), each re-solve is one node-limited MIP from that plan (`_one_mip_from`;
    still a plan with the limit raised) that may use all the time left, and only
    MIN_MARGINAL_SECONDS left skips one: the whole staged solve again per limit took bench
    x-large past 12 minutes."""
    valued: list[Binding] = []
    todo = min(len(bindings), MAX_MARGINAL_RESOLVES)
    scale = data.objective == Objective.max_served_scale
    start = _values(plan) if options.by_nodes and plan is not None and bindings else None
    for i, b in enumerate(bindings):
        share_s = (ends_at - time.perf_counter()) / (1 if options.by_nodes else max(todo - i, 1))
        floor_s = MIN_MARGINAL_SECONDS if options.by_nodes else max(min_resolve_s,
                                                                     MIN_MARGINAL_SECONDS)
        if i >= todo or share_s < floor_s or not _has_value(b, data.objective):
            valued.append(b)
            continue
        quick = SolveOptions(
            time_limit_s=share_s if options.by_nodes else min(share_s, MARGINAL_LIMIT_S),
            mip_gap=options.mip_gap, threads=options.threads, shadow_prices=False,
            node_limit=options.node_limit)
        if b.kind == "power":
            changed = replace(data, power_budget_mw={**data.power_budget_mw,
                                                     (b.site, b.period): b.limit + 1.0})
        elif b.kind == "racks":
            changed = replace(data, rack_limit={**data.rack_limit, (b.site, b.period): b.limit + 1})
        elif b.kind == "quota":
            changed = replace(data, max_accelerators={**data.max_accelerators,
                                                      b.site: b.limit + b.step})
        elif b.kind == "budget":  # one more $M
            changed = replace(data, budget_musd=b.limit / USD + 1.0)
        else:
            changed = replace(data, max_purchases={**data.max_purchases, b.site: int(b.limit) + 1})
        if scale:
            from planner.scale import solve_max_scale

            again = solve_max_scale(changed, quick, time.perf_counter())
        elif start is not None:
            again = _one_mip_from(changed, quick, start, lp_seconds)
        else:
            again = _two_stage(changed, quick, time.perf_counter())
        if again.interrupted:  # its cost is not the re-solve's: no value, and no more re-solves
            raise KeyboardInterrupt
        if not again.status.has_plan:
            valued.append(b)
        elif scale:
            valued.append(replace(b, value_scale=max(0.0, (again.served_scale or 0.0) - base)))
        else:
            valued.append(replace(b, value_usd=max(0.0, (base - again.objective) * USD)))
    return valued
