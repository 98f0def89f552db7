"""Benchmark: deployment options evaluated per second by the performance model.

Run: `.venv/bin/python bench/bench_performance.py`. Evaluates every option (layouts ×
concurrency × modes × speculative) of several workloads on every catalog system, without
pruning, and then the full `candidate_table` (with SLO filtering and Pareto pruning).
"""

from __future__ import annotations

import time

from planner.catalog import load_catalog
from planner.performance import WorkloadSpec, candidate_table, hardware_of, params_for
from planner.performance.enumerate import evaluate
from planner.schema import Precision, Speculative

MTP = Speculative(draft_tokens=3, acceptance_rate=0.7)
SPECS = [
    WorkloadSpec("llama-3.3-70b", Precision.fp8, 1024, 1024, 2000, 40, name="chat"),
    WorkloadSpec("deepseek-r1", Precision.fp8, 8192, 1024, 3000, 50, MTP, name="reason"),
    WorkloadSpec("llama-3.1-8b", Precision.fp8, 2048, 256, 1000, 30, name="small"),
    WorkloadSpec("qwen3-235b-a22b", Precision.fp8, 4096, 512, 2000, 40, name="moe"),
]


def main() -> None:
    cat = load_catalog()
    systems = list(cat.systems.values())
    n_opts = 0
    t0 = time.perf_counter()
    for _ in range(3):
        for spec in SPECS:
            for s in systems:
                opts = evaluate(spec, cat.models[spec.model], hardware_of(s, cat),
                                params_for(s, cat))
                n_opts += len(opts.data.get("mode", ()))
    dt = time.perf_counter() - t0
    print(f"evaluate: {n_opts:,} options in {dt:.3f} s = {n_opts / dt:,.0f} options/s")
    t0 = time.perf_counter()
    table = candidate_table(SPECS, systems, cat)
    dt = time.perf_counter() - t0
    print(f"candidate_table: {len(SPECS)} workloads x {len(systems)} systems -> "
          f"{len(table)} rows in {dt:.3f} s")


if __name__ == "__main__":
    main()
