"""Benchmark of the whole pipeline on generated problem families (`make bench`).

Every family (see `bench/problems.py`) is written as a problem file to a temp directory and run
through the real pipeline: load_problem → candidates_for → build_data → solve → plan (with its
invariant checks). The time limit counts from the load, as `planner solve`'s counts from
candidate generation, so `total s` is end to end. Each family runs in its own subprocess, so
the peak memory (ru_maxrss) is that family's own; `child MB` is the largest of the processes it
started (MIP children, the forkserver), sampled from /proc. Prints one row per family, the
share of time spent building Pyomo models versus inside HiGHS, and the wall time of
`planner --help`.

    .venv/bin/python bench/run.py [--families small,medium] [--time-limit 60] [--gap 0.001]
                                  [--demand-scale 1,10] [--seed 3,14] [--shadow-prices]
                                  [--objective max_served_scale] [--performance] [--json]

`--demand-scale` runs each family at each listed multiple of its demand (site power and racks
follow it; the cloud quota does not), one row each, labelled `large ×10`; `--seed` draws each
family's demand and sites from each listed seed instead of the family's own (`large s14`).
`--objective max_served_scale` asks each family for the largest multiple of its demand its
limits serve; the table adds that scale and its proven upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from problems import FAMILIES, write_problem  # noqa: E402

COLUMNS = [
    ("family", "family", "{}"), ("candidates", "cand.", "{:,}"), ("variables", "vars", "{:,}"),
    ("integers", "int", "{:,}"), ("constraints", "cons", "{:,}"), ("load_s", "load s", "{:.2f}"),
    ("candidates_s", "cand. s", "{:.2f}"), ("data_s", "data s", "{:.2f}"),
    ("build_s", "build s", "{:.2f}"), ("solve_s", "solve s", "{:.2f}"),
    ("highs_s", "HiGHS s", "{:.2f}"), ("total_s", "total s", "{:.2f}"), ("status", "status", "{}"),
    ("gap", "gap", "{:.3%}"), ("objective_musd", "obj $M", "{:,.3f}"),
    ("build_share", "build/solve", "{:.0%}"), ("peak_mb", "peak MB", "{:,.0f}"),
    ("child_mb", "child MB", "{:,.0f}"),
]
SCALE_COLUMNS = [("served_scale", "scale", "{:.4f}"), ("scale_bound", "at most", "{:.4f}")]
"""With `--objective max_served_scale`: the scale served and its upper bound."""


class DescendantPeak:
    """Largest peak RSS (VmHWM) of this process's descendants, sampled from /proc every
    `every_s` in a thread. MIP children are the forkserver's children, not this process's, so
    RUSAGE_CHILDREN never sees them; VmHWM is a high-water mark, so a sample just before a
    child ends holds its peak. None where /proc is missing."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.peak_kb: float | None = 0.0 if Path("/proc/self/status").exists() else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)

    def __enter__(self) -> DescendantPeak:
        if self.peak_kb is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            for pid in _descendants(os.getpid()):
                self.peak_kb = max(self.peak_kb or 0.0, _hwm_kb(pid))


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _hwm_kb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def run_family(name: str, time_limit: float, gap: float, shadow_prices: bool,
               demand_scale: float = 1.0, seed: int | None = None,
               objective: str = "min_tco") -> dict[str, Any]:
    """Run one family, its demand times `demand_scale`, drawn from `seed` (None: the
    family's), with `objective`, in this process; returns its row."""
    import pyomo.environ as pyo

    import planner.solve as solve_module
    from planner.coefficients import build_data
    from planner.formulation import build_model
    from planner.pipeline import candidates_for, plan_from_result, warm_children
    from planner.problem import load_problem
    from planner.solve import SolveOptions, solve, time_left

    building = {"s": 0.0, "calls": 0}

    def timed_build(*args: Any, **kwargs: Any) -> pyo.ConcreteModel:
        t = time.perf_counter()
        try:
            return build_model(*args, **kwargs)
        finally:
            building["s"] += time.perf_counter() - t
            building["calls"] += 1

    solve_module.build_model = timed_build  # count every model built inside solve
    row: dict[str, Any] = {"family": _label(name, demand_scale, seed)}
    family = FAMILIES[name] if seed is None else replace(FAMILIES[name], seed=seed)
    with tempfile.TemporaryDirectory() as tmp, DescendantPeak() as children:
        path = write_problem(family, Path(tmp), demand_scale, objective)
        t0 = time.perf_counter()
        inputs = load_problem(path)
        t1 = time.perf_counter()
        warm_children(inputs)  # as `solve_problem` does
        table = candidates_for(inputs)
        t2 = time.perf_counter()
        data = build_data(inputs, table)
        t3 = time.perf_counter()
        # the time limit counts from the load, as `solve_problem` counts it from candidates
        result = solve(data, time_left(SolveOptions(time_limit_s=time_limit, mip_gap=gap,
                                                    shadow_prices=shadow_prices), t0))
        t4 = time.perf_counter()
        if result.status.has_plan:
            plan_from_result(inputs, result)  # invariants re-checked from the plan's tables
        t5 = time.perf_counter()
    solve_s = t4 - t3
    row.update(
        candidates=len(data.candidates), load_s=t1 - t0, candidates_s=t2 - t1, data_s=t3 - t2,
        solve_s=solve_s, highs_s=solve_s - building["s"],
        solve_builds=building["calls"], total_s=t5 - t0, status=result.status.value,
        gap=result.gap, objective_musd=result.objective, bound_musd=result.bound,
        served_scale=result.served_scale, scale_bound=result.scale_bound,
        build_share=building["s"] / max(t5 - t0, 1e-9),
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        child_mb=None if children.peak_kb is None else children.peak_kb / 1024,
    )
    began = time.perf_counter()  # after the clock: one build of the whole model, to time
    model = build_model(data)      # and count it (`solve` also builds period models)
    row.update(_size(model), build_s=time.perf_counter() - began)
    return row


def _label(name: str, demand_scale: float, seed: int | None = None) -> str:
    scaled = "" if demand_scale == 1 else f" ×{demand_scale:g}"
    return name + scaled + ("" if seed is None else f" s{seed}")


def _size(model: Any) -> dict[str, int]:
    import pyomo.environ as pyo

    variables = list(model.component_data_objects(pyo.Var))
    return {
        "variables": len(variables),
        "integers": sum(1 for v in variables if v.is_integer() or v.is_binary()),
        "constraints": sum(1 for _ in model.component_data_objects(pyo.Constraint, active=True)),
    }


def help_seconds() -> float:
    """Wall time of `planner --help` in a fresh process (best of 3)."""
    exe = Path(sys.executable).with_name("planner")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "planner.cli", "--help"]
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = COLUMNS + (SCALE_COLUMNS if any(r.get("served_scale") is not None for r in rows)
                         else [])
    cells = [[label for _, label, _ in columns]]
    for row in rows:
        cells.append([_fmt(row.get(key), fmt) for key, _, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                     strict=True))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated subset of " + ", ".join(FAMILIES))
    parser.add_argument("--time-limit", type=float, default=60.0, help="time limit per family, s, end to end")
    parser.add_argument("--gap", type=float, default=1e-3, help="relative MIP gap")
    parser.add_argument("--demand-scale", default="1",
                        help="comma-separated multiples of every family's demand, e.g. 1,10")
    parser.add_argument("--seed", default=None,
                        help="comma-separated seeds of the families' demand and sites, e.g. 3,14")
    parser.add_argument("--shadow-prices", action="store_true",
                        help="also value binding limits by re-solving (planner solve's default)")
    parser.add_argument("--performance", action="store_true",
                        help="also run bench/bench_performance.py")
    parser.add_argument("--objective", choices=["min_tco", "max_served_scale"], default="min_tco",
                        help="the families' objective")
    parser.add_argument("--json", action="store_true", help="print rows as JSON lines")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        scales = [float(x) for x in args.demand_scale.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--demand-scale: expected numbers like 1,10, found {args.demand_scale!r}")
    if not scales or min(scales) <= 0:
        parser.error(f"--demand-scale: expected positive numbers, found {args.demand_scale!r}")
    try:
        seeds: list[int | None] = [None] if args.seed is None else [
            int(x) for x in args.seed.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--seed: expected integers like 3,14, found {args.seed!r}")
    if args.one:
        row = run_family(args.one, args.time_limit, args.gap, args.shadow_prices, scales[0],
                         seeds[0], args.objective)
        print(json.dumps(row))
        return 0
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    print(f"planner benchmark: time limit {args.time_limit:g} s, gap {args.gap:g}, "
          f"{os.cpu_count()} CPUs, shadow prices {'on' if args.shadow_prices else 'off'}"
          + ("" if args.objective == "min_tco" else f", objective {args.objective}"), flush=True)
    rows = []
    for name, scale, seed in [(n, x, s) for n in names for x in scales for s in seeds]:
        cmd = [sys.executable, __file__, "--one", name, "--time-limit", str(args.time_limit),
               "--gap", str(args.gap), "--demand-scale", repr(scale),
               "--objective", args.objective] + (
                   ["--shadow-prices"] if args.shadow_prices else []) + (
                   [] if seed is None else ["--seed", str(seed)])
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            label = _label(name, scale, seed)
            print(f"{label}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            rows.append({"family": label, "status": "crashed"})
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    print()
    print_table(rows)
    print(f"\nplanner --help: {help_seconds():.2f} s (best of 3)")
    print("build s = one build of the model; build/solve = share of end-to-end time spent "
          "building Pyomo models (all stages); HiGHS s = solve s minus the builds inside it")
    if args.performance:
        subprocess.run([sys.executable, str(BENCH / "bench_performance.py")], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
