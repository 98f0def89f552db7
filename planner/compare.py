"""Run one solve per fleet variant (per vendor or per system, plus the mixed optimum) and lay
the optimal fleets side by side, with every metric the seeds use."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import NoPlanError, PlannerError
from planner.plan import Plan
from planner.problem import Overrides, load_problem
from planner.solve import SolveOptions, forkserver_context, start_forkserver

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
        return Outcome(variant.label, None, summarize(exc), status="infeasible")
    except PlannerError as exc:
        return Outcome(variant.label, None, str(exc), status="error")
    return Outcome(variant.label, plan, status=plan.status.value)


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
    """Solve every variant, in parallel processes when `workers` > 1; results in variant order."""
    todo = variants(problem, by, overrides)
    outcomes: dict[str, Outcome] = {}
    if workers <= 1 or len(todo) == 1:
        for v in todo:
            outcomes[v.label] = _solve_one(problem, v, options)
            if on_done:
                on_done(outcomes[v.label])
    else:
        # forkserver, not fork: a child forked from a parent whose HiGHS thread pool is running
        # inherits its locks (HiGHS 1.16 children spun at 100% CPU forever); the MIP children's
        # forkserver, which preloads planner with Ctrl-C held (`planner.forkserver_preload`)
        start_forkserver()
        context = forkserver_context()
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_solve_one, problem, v, options): v for v in todo}
            try:
                for future in as_completed(futures):
                    outcome = future.result()
                    outcomes[outcome.label] = outcome
                    if on_done:
                        on_done(outcome)
            except KeyboardInterrupt:
                # Ctrl-C reached the workers too, and their solves stop with what they have;
                # the variants not started yet are dropped rather than solved in full
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return [outcomes[v.label] for v in todo]


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
]


def outcome_row(outcome: Outcome) -> dict[str, Any]:
    """One comparison row (the JSON contract of `planner compare`)."""
    row: dict[str, Any] = {"fleet": outcome.label, "status": outcome.status,
                           "reason": outcome.reason or None}
    plan = outcome.plan
    if plan is None:
        row.update({"tco_usd": None, **dict.fromkeys(ROW_METRICS), "configurations": None})
        return row
    m = plan.metrics
    row.update({
        "tco_usd": {k: _num(v) for k, v in plan.tco_usd.items()},
        "usd_per_million_output_tokens": _num(plan.usd_per_million_output_tokens),
        "accelerators": _num(m["peak_accelerators"]),
        "systems": _num(m["peak_systems"]),
        "racks": _num(m["peak_racks"]),
        "peak_power_kw": _num(m["peak_power_mw"] * 1000),
        "output_tokens_per_s_per_accelerator": _num(m["output_tokens_per_s_per_accelerator"]),
        "output_tokens_per_s_per_system": _num(m["output_tokens_per_s_per_system"]),
        "output_tokens_per_s_per_rack": _num(m["output_tokens_per_s_per_rack"]),
        "output_tokens_per_s_per_mw": _num(m["output_tokens_per_s_per_mw"]),
        "usd_per_accelerator_hour": _num(m["usd_per_accelerator_hour"]),
        "mip_gap": _num(plan.mip_gap),
        "configurations": configurations(plan),
    })
    return row


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def compare_frame(outcomes: Sequence[Outcome]) -> pd.DataFrame:
    """Flat table (one row per variant) for CSV and the terminal."""
    rows = []
    for o in outcomes:
        row = outcome_row(o)
        tco = row.pop("tco_usd") or {}
        row.update({f"tco_{k}_usd": v for k, v in tco.items()})
        rows.append(row)
    return pd.DataFrame(rows)
