"""A lower bound for a benchmark family from its periods one at a time (`planner.decompose`).

Solves each period's MIP with the no-resale rule dropped (`period_relaxation`) for
`--period-seconds`, `--workers` periods at a time, and adds up HiGHS's bounds: a lower bound of
the whole MIP. With `--plan-seconds`, `planner.solve` runs first; its plan starts every period
and is measured against that bound, which says how far the plan can be from the optimum (its
own gap is against the bound `solve` proved in its time). Also prints the plan of the whole MIP
the period plans make when their purchases never fall (`planner.decompose.join`).

    .venv/bin/python bench/period_bound.py [--family large] [--period-seconds 30]
                                           [--workers 2] [--plan-seconds 60]
                                           [--demand-scale 1]
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from problems import family_data, family_parser  # noqa: E402

_worker: dict[str, Any] = {}


def _start_worker(family: str, demand_scale: float, plan: dict[Any, float], seconds: float,
                  threads: int | None) -> None:
    _worker.update(data=family_data(family, demand_scale), plan=plan, seconds=seconds,
                   threads=threads)


def _solve_period(period: str) -> tuple[str, Any, float, dict[Any, float]]:
    from planner.decompose import period_relaxation, period_relaxation_model
    from planner.solve import SolveOptions, _run, _values, _warm_start, lp_relaxation

    data = _worker["data"]
    began = time.perf_counter()
    model, start = period_relaxation_model(data, period, _worker["plan"])
    options = SolveOptions(time_limit_s=_worker["seconds"], mip_gap=1e-4, shadow_prices=False,
                           threads=_worker["threads"])
    run = _run(model, options, _warm_start(start, model))
    seconds = time.perf_counter() - began
    values = _values(model)
    lp = _run(lp_relaxation(period_relaxation(data, period)), options).objective
    return period, (run, lp), seconds, values


def main(argv: list[str] | None = None) -> int:
    parser = family_parser(__doc__)
    parser.add_argument("--period-seconds", type=float, default=30.0, help="HiGHS per period, s")
    parser.add_argument("--workers", type=int, default=2, help="periods solved at a time")
    parser.add_argument("--plan-seconds", type=float, default=60.0,
                        help="planner's solve first, its plan the periods' start (0: none)")
    args = parser.parse_args(argv)

    from planner.decompose import join, plan_cost
    from planner.solve import SolveOptions, _values, solve

    data = family_data(args.family, args.demand_scale)
    plan: dict[Any, float] = {}
    if args.plan_seconds > 0:
        solved = solve(data, SolveOptions(time_limit_s=args.plan_seconds, shadow_prices=False))
        if solved.model is not None:
            plan = _values(solved.model)
    threads = 1 if args.workers > 1 else None
    # spawned, not forked: a fork of a process whose HiGHS has run copies HiGHS's thread pool
    # without its threads, and the child's solves fail at once
    with ProcessPoolExecutor(args.workers, multiprocessing.get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(args.family, args.demand_scale, plan, args.period_seconds,
                                       threads)) as pool:
        results = list(pool.map(_solve_period, data.periods))

    scaled = f" ×{args.demand_scale:g}" if args.demand_scale != 1 else ""
    print(f"period bound: family {args.family}{scaled}, no-resale rule dropped, {args.period_seconds:g} s "
          f"per period, {args.workers} at a time" + (", from planner's plan" if plan else ""))
    print(f"{'period':<8}{'LP $M':>10}{'plan $M':>10}{'bound $M':>10}{'gap':>9}{'s':>7}")
    bound = objective = lp_total = 0.0
    for period, (run, lp), seconds, _ in results:
        print(f"{period:<8}{lp:>10.4f}{run.objective:>10.4f}{run.bound:>10.4f}{run.gap:>9.3%}"
              f"{seconds:>7.1f}")
        bound, objective, lp_total = bound + run.bound, objective + run.objective, lp_total + lp
    print(f"{'sum':<8}{lp_total:>10.3f}{objective:>10.3f}{bound:>10.3f}")
    joined = join(data, {period: values for period, _, _, values in results})
    made = "none" if joined is None else f"${plan_cost(data, joined):,.3f}M"
    print(f"lower bound of the whole MIP: ${bound:,.3f}M; the plan the period plans make: {made}")
    if args.plan_seconds > 0 and plan:
        print(f"planner's plan in {args.plan_seconds:g} s: ${solved.objective:,.3f}M, "
              f"{solved.gap:.3%} over its own bound ${solved.bound:,.3f}M; "
              f"{1 - bound / solved.objective:.3%} over this bound")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
