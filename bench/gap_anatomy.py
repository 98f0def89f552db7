"""Where a benchmark family's optimality gap lives: which integrality costs what.

Solves one generated family (see `bench/problems.py`) four ways and prints their objectives and
lower bounds:

1. the LP relaxation (every integer continuous): the first bound `solve` reports;
2. systems integral, replicas continuous (n, buy, r integer; x continuous): how much whole
   systems and racks cost over the LP;
3. `planner.solve` with the time limit: the plan and the bound it reports;
4. the full MIP alone in HiGHS with the same time limit, from no start: its first plan and bound;
5. the whole MIP with (3)'s purchases fixed, from (3)'s plan, and
6. the same, one period at a time (`planner.polish`, each period an equal share of the time
   limit): what HiGHS finds when it is shown that the periods no longer interact. Both bounds
   hold only for that fleet.

The distance from (2) to the plan is what integer replicas cost, or what the solver has not
found; the distance from (2)'s bound to (3)'s bound is what HiGHS proved of it.

With `--period P`, rows 4–6 give way to one period of (3)'s plan with its owned fleet fixed
(`planner.polish.period_model`: what is left is which replicas run where and what the cloud
sites rent), solved four ways to a 0.01% gap: as an LP, with the replicas continuous, with the
systems continuous, and as the MIP. Which integrality moves it off its LP, and how long HiGHS
takes to prove that of a MIP of a few hundred columns.

    .venv/bin/python bench/gap_anatomy.py [--family large] [--time-limit 60] [--demand-scale 1]
                                          [--period P04] [--log]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from problems import family_data, family_parser  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = family_parser(__doc__)
    parser.add_argument("--time-limit", type=float, default=60.0, help="per MIP, s")
    parser.add_argument("--period", help="dissect this period of planner's plan instead, its "
                        "owned fleet fixed")
    parser.add_argument("--log", action="store_true", help="HiGHS's log of each solve to stderr")
    args = parser.parse_args(argv)

    import pyomo.environ as pyo

    from planner.formulation import build_model
    from planner.polish import POLISH_GAP, period_model, polish
    from planner.solve import (
        SolveOptions,
        Status,
        _load,
        _run,
        _values,
        _warm_start,
        lp_relaxation,
        solve,
    )

    data = family_data(args.family, args.demand_scale)
    options = SolveOptions(time_limit_s=args.time_limit, mip_gap=1e-3, shadow_prices=False,
                           verbose=args.log)
    rows: list[tuple[str, Any, float]] = []

    began = time.perf_counter()
    rows.append(("LP relaxation", _run(lp_relaxation(data), options), time.perf_counter() - began))

    began = time.perf_counter()
    systems_integral = build_model(data)
    for var in systems_integral.x.values():
        var.domain = pyo.NonNegativeReals
    rows.append(("systems integral, replicas continuous", _run(systems_integral, options),
                 time.perf_counter() - began))

    began = time.perf_counter()
    solved = solve(data, options)
    rows.append(("planner solve", solved, time.perf_counter() - began))
    plan = _values(solved.model)
    if args.period is not None:
        exact = SolveOptions(time_limit_s=args.time_limit, mip_gap=1e-4, verbose=args.log)
        for label, relaxed in (("LP", ("x", "n", "r")), ("replicas continuous", ("x",)),
                               ("systems continuous", ("n", "r")), ("MIP", ())):
            began = time.perf_counter()
            model, _ = period_model(data, args.period, plan)
            for name in relaxed:
                for var in getattr(model, name).values():
                    var.domain = pyo.NonNegativeReals
            rows.append((f"{args.period}, its fleet fixed: {label}", _run(model, exact),
                         time.perf_counter() - began))
        _print(args, rows)
        return 0

    began = time.perf_counter()
    rows.append(("full MIP in HiGHS, no start", _run(build_model(data), options),
                 time.perf_counter() - began))

    began = time.perf_counter()
    fixed = build_model(data)
    for name in ("buy", "r"):
        for index, var in getattr(fixed, name).items():
            var.fix(round(plan.get((name, index), 0.0)))
    for index, var in fixed.n.items():
        if index[1] in data.owned_sites:
            var.fix(round(plan.get(("n", index), 0.0)))
    rows.append(("its fleet fixed, whole model", _run(fixed, options, _warm_start(plan, fixed)),
                 time.perf_counter() - began))

    def solve_period(model: Any, start: Any, limit_s: float) -> Any:
        return _run(model, SolveOptions(time_limit_s=limit_s, mip_gap=POLISH_GAP),
                    _warm_start(start, model))

    began = time.perf_counter()
    polished, _ = polish(data, plan, time.perf_counter() + args.time_limit, solve_period)
    cost = pyo.value(_load(data, polished).cost)
    rows.append(("its fleet fixed, period by period", _Row(Status.feasible, cost),
                 time.perf_counter() - began))

    _print(args, rows)
    return 0


def _print(args: argparse.Namespace, rows: list[tuple[str, Any, float]]) -> None:
    print(f"gap anatomy: family {args.family}, demand x{args.demand_scale:g}, time limit "
          f"{args.time_limit:g} s per MIP, gap 0.1% (0.01% for one period)")
    print(f"{'stage':<44}{'status':>12}{'plan $M':>14}{'bound $M':>14}{'s':>8}")
    for label, run, seconds in rows:
        print(f"{label:<44}{run.status.value:>12}{run.objective:>14,.4f}{run.bound:>14,.4f}"
              f"{seconds:>8.1f}")


class _Row(NamedTuple):
    """A row without a bound of its own (the polish proves nothing)."""

    status: Any
    objective: float
    bound: float = float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
