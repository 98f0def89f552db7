"""Run one solve per fleet variant (per vendor or per system, plus the mixed optimum) and lay
the optimal fleets side by side, with every metric the seeds use."""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import NoPlanError, PlannerError
from planner.plan import Plan, uncalibrated_systems
from planner.problem import Overrides, load_problem
from planner.solve import SolveOptions, forkserver_context, interrupt_held, start_forkserver
from planner.sweep import INTERRUPTED, NOT_SOLVED
from planner.units import json_number

MIXED = "mixed"
"""Label of the unrestricted variant: every allowed system of every vendor."""


@dataclass
class Variant:
    label: str
    overrides: Overrides


@dataclass
class Outcome:
    """One variant's result: a plan, or why there is none."""

    label: str
    plan: Plan | None
    reason: str = ""
    status: str = "optimal"

    @property
    def interrupted(self) -> bool:
        """Ctrl-C stopped this variant: not solved, or its plan is the best found by then."""
        return self.status == INTERRUPTED or (self.plan is not None and self.plan.interrupted)


def variants(problem: Path, by: str, overrides: Overrides) -> list[Variant]:
    """The mixed optimum first, then one variant per vendor (or per system) of the problem's
    allowed systems, in a stable order."""
    inputs = load_problem(problem, overrides)
    if by == "vendor":
        keys = sorted({s.vendor for s in inputs.systems})
        made = [Variant(v, replace(overrides, vendors=(v,))) for v in keys]
    elif by == "system":
        made = [Variant(s.id, replace(overrides, systems=(s.id,), vendors=()))
                for s in sorted(inputs.systems, key=lambda s: (s.vendor, s.id))]
    else:
        raise ValueError(f"by must be vendor or system, not {by}")
    return [Variant(MIXED, overrides), *made]


def _solve_one(problem: Path, variant: Variant, options: SolveOptions) -> Outcome:
    from planner.pipeline import solve_problem

    try:
        plan = solve_problem(load_problem(problem, variant.overrides), options)
    except NoPlanError as exc:
        return Outcome(variant.label, None, summarize(exc), status=exc.status)
    except PlannerError as exc:
        return Outcome(variant.label, None, str(exc), status="error")
    return Outcome(variant.label, plan, status=plan.status.value)


_stopped: Any = None
"""In a worker: the event the parent sets on Ctrl-C (`_start_worker`)."""
_interruptible = False
"""In a worker: whether Ctrl-C may stop its solves (the parent does not ignore it)."""


def _start_worker(stopped: Any, interruptible: bool) -> None:
    global _stopped, _interruptible
    _stopped, _interruptible = stopped, interruptible


def _solve_in_worker(problem: Path, variant: Variant, options: SolveOptions) -> Outcome:
    """`_solve_one` in a pool worker. The worker was forked with Ctrl-C ignored
    (`planner.forkserver_preload`) and takes Python's handler for the task only (an idle
    worker interrupted in the executor's loop dies with a traceback); a Ctrl-C it missed
    meanwhile is seen in the event the parent sets."""
    if _interruptible:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if _stopped is not None and _stopped.is_set():
            return not_solved(variant.label)
        return _solve_one(problem, variant, options)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def summarize(exc: NoPlanError) -> str:
    """A short reason for a table cell, from a no-plan diagnosis."""
    text = " ".join(exc.diagnosis) or str(exc)
    if "cannot be placed" in text and "unreachable" not in text:
        return "cannot be placed at any site (needs liquid-cooled or higher-power racks, or rental)"
    if "unreachable" in text:
        return "SLO unreachable: " + _first_clause(text, "unreachable")
    if "weights" in text and "usable" in text:
        return "model does not fit: " + _first_clause(text, "weights")
    return exc.diagnosis[0] if exc.diagnosis else str(exc)


def _first_clause(text: str, word: str) -> str:
    start = text.find(word)
    begin = text.rfind(":", 0, start) + 1
    end = text.find(";", start)
    return text[begin: end if end > 0 else None].strip()


def run_compare(
    problem: Path,
    by: str,
    overrides: Overrides,
    options: SolveOptions,
    workers: int = 1,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Solve every variant, in parallel processes when `workers` > 1; results in variant order.

    Ctrl-C stops the comparison with what is known: a variant being solved keeps the best
    plan found so far (`Plan.interrupted`), and the variants not solved come back as
    `not_solved` outcomes (status "interrupted")."""
    todo = variants(problem, by, overrides)
    outcomes: dict[str, Outcome] = {}

    def take(outcome: Outcome) -> None:
        outcomes[outcome.label] = outcome
        if on_done:
            on_done(outcome)

    if workers <= 1 or len(todo) == 1:
        for v in todo:
            try:
                take(_solve_one(problem, v, options))
            except KeyboardInterrupt:  # before the variant had a plan
                break
            if outcomes[v.label].interrupted:
                break
    else:
        _solve_in_pool(problem, todo, options, workers, take)
    return [outcomes.get(v.label) or not_solved(v.label) for v in todo]


GRACE_S = 10.0
"""After Ctrl-C, how long `compare` waits for the variants being solved to return their best
plan (their HiGHS got Ctrl-C too) before it stops their workers."""


def not_solved(label: str) -> Outcome:
    return Outcome(label, None, NOT_SOLVED, status=INTERRUPTED)


def _solve_in_pool(problem: Path, todo: list[Variant], options: SolveOptions, workers: int,
                   take: Callable[[Outcome], None]) -> None:
    # forkserver, not fork: a child forked from a parent whose HiGHS thread pool is running
    # inherits its locks (HiGHS 1.16 children spun at 100% CPU forever); the MIP children's
    # forkserver, which preloads planner with Ctrl-C held (`planner.forkserver_preload`)
    start_forkserver()
    context = forkserver_context()
    stopped = context.Event()
    interruptible = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context,
                             initializer=_start_worker,
                             initargs=(stopped, interruptible)) as pool:
        # a worker whose start Ctrl-C cut short is never joined, and printed a
        # FileNotFoundError for the semaphore the exiting parent had removed
        with interrupt_held() as caught:
            futures = {pool.submit(_solve_in_worker, problem, v, options): v for v in todo}
        taken: set[Future[Outcome]] = set()
        try:
            if caught:
                raise KeyboardInterrupt
            for future in as_completed(futures):
                taken.add(future)
                take(future.result())
        except KeyboardInterrupt:
            stopped.set()
            # cancelled here, not by shutdown(cancel_futures=True): a future the executor's
            # thread cancels never tells `as_completed`, which then waits out its timeout
            left = [f for f in futures if f not in taken and not f.cancel()]
            _finish_running(pool, left, take)


def _finish_running(pool: ProcessPoolExecutor, left: list[Future[Outcome]],
                    take: Callable[[Outcome], None]) -> None:
    """After Ctrl-C: take what the variants being solved return within GRACE_S, then stop
    their workers (one that lost its Ctrl-C, say while it started, would solve in full)."""
    try:
        for future in as_completed(left, timeout=GRACE_S):
            # no outcome: the variant had no plan yet, or its worker was stopped
            with suppress(KeyboardInterrupt, BrokenProcessPool, CancelledError):
                take(future.result())
    except (TimeoutError, KeyboardInterrupt):  # a second Ctrl-C stops them at once
        _kill_workers(pool)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    kill = getattr(pool, "kill_workers", None)  # Python ≥ 3.14
    if kill is not None:
        kill()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


def configurations(plan: Plan) -> str:
    """The deployments of the last period in one line: system precision mode TP×PP×EP@conc ×n."""
    dep = plan.deployments
    if dep.empty:
        return ""
    last = dep[dep["period"] == dep["period"].iloc[-1]]
    parts = []
    for r in last.itertuples(index=False):
        spec = " +spec" if r.speculative else ""
        parts.append(f"{r.workload}: {r.system} {r.precision} {r.mode}{spec} "
                     f"{r.tp}×{r.pp}×{r.ep}@{r.concurrency} ×{r.replicas}")
    return "; ".join(parts)


ROW_METRICS = [
    "usd_per_million_output_tokens", "accelerators", "systems", "racks", "peak_power_kw",
    "output_tokens_per_s_per_accelerator", "output_tokens_per_s_per_system",
    "output_tokens_per_s_per_rack", "output_tokens_per_s_per_mw", "usd_per_accelerator_hour",
    "served_scale",
]


def outcome_row(outcome: Outcome) -> dict[str, Any]:
    """One comparison row (the JSON contract of `planner compare`)."""
    row: dict[str, Any] = {"fleet": outcome.label, "status": outcome.status,
                           "reason": outcome.reason or None}
    plan = outcome.plan
    if plan is None:
        row.update({"tco_usd": None, **dict.fromkeys(ROW_METRICS), "mip_gap": None,
                    "configurations": None, "uncalibrated_systems": None,
                    "kept_existing": None})
        return row
    m = plan.metrics
    row.update({
        "tco_usd": {k: json_number(v) for k, v in plan.tco_usd.items()},
        "usd_per_million_output_tokens": json_number(plan.usd_per_million_output_tokens),
        "accelerators": json_number(m["peak_accelerators"]),
        "systems": json_number(m["peak_systems"]),
        "racks": json_number(m["peak_racks"]),
        "peak_power_kw": json_number(m["peak_power_mw"] * 1000),
        "output_tokens_per_s_per_accelerator": json_number(m["output_tokens_per_s_per_accelerator"]),
        "output_tokens_per_s_per_system": json_number(m["output_tokens_per_s_per_system"]),
        "output_tokens_per_s_per_rack": json_number(m["output_tokens_per_s_per_rack"]),
        "output_tokens_per_s_per_mw": json_number(m["output_tokens_per_s_per_mw"]),
        "usd_per_accelerator_hour": json_number(m["usd_per_accelerator_hour"]),
        "served_scale": json_number(plan.served_scale),  # max_served_scale: how much each fleet serves
        "mip_gap": json_number(plan.mip_gap),
        "configurations": configurations(plan),
        "uncalibrated_systems": uncalibrated_systems(plan.deployments),
        "kept_existing": kept_existing(outcome.label, plan),
    })
    return row


def kept_existing(label: str, plan: Plan) -> list[str]:
    """Systems of an owned fleet outside the row's vendor (or system) that its plan keeps and
    uses: an existing fleet stays whatever may be bought (none of them is), so such a row is
    not its vendor's alone."""
    if label == MIXED or plan.fleet.empty:
        return []
    fleet = plan.fleet
    other = fleet[(fleet["system"] != label) & (fleet["vendor"] != label) & (fleet["systems"] > 0)]
    return sorted(set(other["system"]))


def compare_frame(outcomes: Sequence[Outcome]) -> pd.DataFrame:
    """Flat table (one row per variant) for CSV and the terminal."""
    rows = []
    for o in outcomes:
        row = outcome_row(o)
        tco = row.pop("tco_usd") or {}
        row.update({f"tco_{k}_usd": v for k, v in tco.items()})
        for key in ("uncalibrated_systems", "kept_existing"):
            row[key] = " ".join(row[key] or [])
        rows.append(row)
    return pd.DataFrame(rows)
