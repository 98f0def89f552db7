"""How far HiGHS alone takes the whole MIP of a benchmark family in a long run.

`planner.solve` runs first for `--plan-seconds`; then the whole MIP, built once, starts from
that plan in HiGHS for `--time-limit` seconds. Prints the best bound and plan HiGHS had at a
few moments of that run (from its interrupt callback, which carries the bound of the whole
model) and at its end: what any plan's gap could be at those times, whoever found the plan.

    .venv/bin/python bench/full_mip.py [--family large] [--plan-seconds 60] [--time-limit 900]
                                       [--demand-scale 1]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from problems import family_data, family_parser, planner_plan  # noqa: E402

MOMENTS_S = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)


def main(argv: list[str] | None = None) -> int:
    parser = family_parser(__doc__)
    parser.add_argument("--plan-seconds", type=float, default=60.0, help="planner's solve, s")
    parser.add_argument("--time-limit", type=float, default=900.0, help="HiGHS on the MIP, s")
    args = parser.parse_args(argv)

    from planner.formulation import build_model
    from planner.solve import SolveOptions, _run, _warm_start

    data = family_data(args.family, args.demand_scale)
    if (first := planner_plan(data, args.plan_seconds)) is None:
        return 1
    solved, plan = first
    model = build_model(data)
    seen: list[tuple[float, float, float]] = []  # (s, bound, best plan) as HiGHS goes
    began = time.perf_counter()

    def record(bound: float, objective: float, _: object) -> None:
        seen.append((time.perf_counter() - began, bound, objective))

    run = _run(model, SolveOptions(time_limit_s=args.time_limit, mip_gap=1e-3,
                                   shadow_prices=False), _warm_start(plan, model), record)
    seconds = time.perf_counter() - began

    scaled = f" ×{args.demand_scale:g}" if args.demand_scale != 1 else ""
    print(f"full MIP: family {args.family}{scaled}, from planner's {args.plan_seconds:g} s plan "
          f"(${solved.objective:,.4f}M, bound ${solved.bound:,.4f}M), HiGHS alone for "
          f"{args.time_limit:g} s")
    print(f"{'after s':>8}{'bound $M':>12}{'plan $M':>12}{'gap':>9}")
    for moment in (m for m in MOMENTS_S if m < seconds):
        before = [row for row in seen if row[0] <= moment]
        if before:
            _, bound, objective = before[-1]
            print(f"{moment:>8g}{bound:>12,.4f}{objective:>12,.4f}"
                  f"{1 - bound / objective:>9.3%}")
    print(f"{seconds:>8.0f}{run.bound:>12,.4f}{run.objective:>12,.4f}{run.gap:>9.3%}"
          f"  {run.status.value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
