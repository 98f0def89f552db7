"""How hard one period of a benchmark family is for HiGHS once the fleet is settled.

Solves the family with `planner.solve` (the time limit), fixes the plan's owned fleet, and
gives HiGHS each period's MIP on its own (`planner.polish.period_model`: which replicas run
where, what is rented; a twelfth of bench large) for `--period-seconds`, from the plan, to a
0.1% gap. Prints per period the plan's cost, HiGHS's plan and bound, its gap and time. The
bounds hold for that fleet only: they say how far the plan's operations are from their best,
not how far the fleet is from the best fleet.

    .venv/bin/python bench/period_gaps.py [--family large] [--time-limit 60]
                                          [--period-seconds 60] [--demand-scale 1]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from problems import family_data, family_parser, planner_plan  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = family_parser(__doc__)
    parser.add_argument("--time-limit", type=float, default=60.0, help="of planner's solve, s")
    parser.add_argument("--period-seconds", type=float, default=60.0, help="per period, s")
    args = parser.parse_args(argv)

    from planner.polish import period_cost, period_model
    from planner.solve import SolveOptions, _run, _warm_start

    data = family_data(args.family, args.demand_scale)
    if (first := planner_plan(data, args.time_limit)) is None:
        return 1
    solved, plan = first
    print(f"period gaps: family {args.family}, planner's plan ${solved.objective:,.3f}M "
          f"({solved.gap:.3%} in {args.time_limit:g} s), its owned fleet fixed, "
          f"{args.period_seconds:g} s per period, gap 0.1%")
    print(f"{'period':<8}{'plan $M':>10}{'HiGHS $M':>10}{'bound $M':>10}{'gap':>9}{'s':>7}")
    options = SolveOptions(time_limit_s=args.period_seconds, mip_gap=1e-3, shadow_prices=False)
    for period in data.periods:
        model, start = period_model(data, period, plan)
        began = time.perf_counter()
        run = _run(model, options, _warm_start(start, model))
        print(f"{period:<8}{period_cost(data, period, plan):>10.4f}{run.objective:>10.4f}"
              f"{run.bound:>10.4f}{run.gap:>9.3%}{time.perf_counter() - began:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
