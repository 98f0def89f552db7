"""Candidate enumeration: public columns, feasibility, pruning, infeasibility reasons."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from perf_fixtures import catalog

from planner.performance import (
    COLUMNS,
    WorkloadSpec,
    candidate_table,
    candidates,
    explain_infeasible,
)
from planner.performance.enumerate import KEEP_PER_GROUP, replica_sizes
from planner.schema import Precision, Speculative

CHAT = WorkloadSpec("llama-3.3-70b", Precision.fp8, 1024, 1024, 2000, 40, name="chat")
MTP = Speculative(draft_tokens=3, acceptance_rate=0.7)


def test_columns_and_slo() -> None:
    cat = catalog()
    df = candidates(CHAT, cat.systems["nvidia-hgx-h200"], cat)
    assert list(df.columns) == COLUMNS
    assert not df.empty
    assert set(df["mode"]) == {"aggregated", "prefill", "decode"}
    assert (df.loc[df["mode"] != "decode", "ttft_ms"] <= 2000).all()
    assert (df.loc[df["mode"] != "prefill", "tpot_ms"] <= 40).all()
    assert (df["accelerators"] == df["tp"] * df["pp"]).all()
    assert (df["source"] == "analytic").all()
    assert df.groupby(["mode", "accelerators", "speculative"]).size().max() <= KEEP_PER_GROUP
    assert (df["memory_gb_per_accelerator"] <= 141).all()


def test_replica_sizes_pack_domains() -> None:
    assert replica_sizes(8) == [1, 2, 4, 8, 16, 32, 64]
    for n in replica_sizes(72):
        assert 72 % n == 0 or n % 72 == 0


def test_missing_precision_yields_no_rows() -> None:
    cat = catalog()
    spec = WorkloadSpec("llama-3.3-70b", Precision.fp4, 1024, 1024, None, None)
    h200 = cat.systems["nvidia-hgx-h200"]
    assert candidates(spec, h200, cat).empty
    assert "fp4" in explain_infeasible(spec, h200, cat)


def test_memory_infeasibility_reason() -> None:
    cat = catalog()
    spec = WorkloadSpec("llama-3.1-405b", Precision.bf16, 1024, 1024, None, None)
    l40s = cat.systems["nvidia-l40s-pcie8"]
    why = explain_infeasible(spec, l40s, cat) if candidates(spec, l40s, cat).empty else ""
    # 811 GB of bf16 weights: does not fit one 8 × 48 GB server
    spec_big = WorkloadSpec("deepseek-r1", Precision.bf16, 1024, 1024, None, None)
    h100 = cat.systems["nvidia-hgx-h100"]
    df = candidates(spec_big, h100, cat)
    assert df.empty or (df["accelerators"] > 8).all()
    assert why == "" or "GB" in why


def test_slo_infeasibility_reason() -> None:
    cat = catalog()
    spec = WorkloadSpec("llama-3.1-405b", Precision.fp8, 1024, 1024, None, 1.0)
    h200 = cat.systems["nvidia-hgx-h200"]
    assert candidates(spec, h200, cat).empty
    why = explain_infeasible(spec, h200, cat)
    assert why.startswith("TPOT 1 ms unreachable: best")


def test_candidate_table_is_deterministic() -> None:
    cat = catalog()
    systems = [cat.systems["nvidia-hgx-h200"], cat.systems["amd-mi355x-oam8"]]
    specs = [CHAT, WorkloadSpec("llama-3.1-8b", Precision.fp4, 512, 256, 1000, 30, name="b")]
    a = candidate_table(specs, systems, cat)
    b = candidate_table(specs, systems, cat)
    assert a.equals(b)
    assert list(a["workload"].unique()) == ["chat", "b"]
    # fp4 on H200 yields no rows for workload b
    assert a[(a["workload"] == "b") & (a["system"] == "nvidia-hgx-h200")].empty


def _best_per_gpu(system: str, prec: Precision, isl: int, osl: int, tpot: float,
                  spec: Speculative | None) -> float:
    cat = catalog()
    w = WorkloadSpec("deepseek-r1", prec, isl, osl, None, tpot, speculative=spec,
                     disaggregated=False)
    df = candidates(w, cat.systems[system], cat)
    return float((df["output_tokens_per_s"] / df["accelerators"]).max())


def test_gb300_vs_h200_deepseek() -> None:
    """Seed: GB300 NVL72 (FP4 + MTP) ≈ 6,000 vs HGX H200 (FP8) ≈ 90 tok/s/GPU (~65×)."""
    for isl, osl, tpot in [(1024, 1024, 20.0), (8192, 1024, 30.0)]:
        h200 = _best_per_gpu("nvidia-hgx-h200", Precision.fp8, isl, osl, tpot, None)
        gb300 = _best_per_gpu("nvidia-gb300-nvl72", Precision.fp4, isl, osl, tpot, MTP)
        print(f"DeepSeek-R1 {isl}/{osl} TPOT {tpot} ms: H200 {h200:,.0f}, GB300 {gb300:,.0f} "
              f"tok/s/GPU ({gb300 / h200:.0f}×)")
        assert 20 <= h200 <= 400
        assert 1_000 <= gb300 <= 20_000
        assert 10 <= gb300 / h200 <= 300


def test_throughput_of_enumeration() -> None:
    from planner.performance import hardware_of, params_for
    from planner.performance.enumerate import evaluate

    cat = catalog()
    sysm = cat.systems["nvidia-gb200-nvl72"]
    w = WorkloadSpec("deepseek-r1", Precision.fp4, 1024, 1024, None, 50, speculative=MTP)
    t0 = time.perf_counter()
    n = 0
    for _ in range(3):
        n += len(evaluate(w, cat.models["deepseek-r1"], hardware_of(sysm, cat),
                          params_for(sysm, cat)).data["mode"])
    rate = n / (time.perf_counter() - t0)
    assert rate > 10_000


def _front_by_brute_force(df, keep):
    """Row i of a group is kept when no row before it in (latency, -throughput, position)
    order has throughput ≥ its own; the front is then thinned to `keep` evenly spread points."""
    import numpy as np

    thr = df["output_tokens_per_s"] / df["accelerators"]
    lat = np.where(df["mode"] == "prefill", df["ttft_ms"], df["tpot_ms"])
    rows = []
    groups: dict = {}
    for pos, key in enumerate(zip(df["mode"], df["accelerators"], df["speculative"], strict=True)):
        groups.setdefault(key, []).append(pos)
    for members in groups.values():
        ranked = sorted(members, key=lambda i: (lat[i], -thr.iloc[i], i))
        front = [i for n, i in enumerate(ranked)
                 if all(thr.iloc[j] < thr.iloc[i] for j in ranked[:n])]
        if len(front) > keep:
            front = [front[j] for j in sorted({round(x) for x in
                                               np.linspace(0, len(front) - 1, keep)})]
        rows += front
    return df.iloc[rows]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["aggregated", "prefill", "decode"]),
                          st.sampled_from([1, 2, 8]), st.booleans(),
                          st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=40),
       st.integers(1, 5))
def test_pareto_prune_keeps_the_thinned_front_of_each_group(rows, keep) -> None:
    """Against a brute-force front, ties in latency and throughput included (small integers)."""
    import pandas as pd

    from planner.performance.enumerate import pareto_prune

    df = pd.DataFrame(
        [{"mode": m, "accelerators": a, "speculative": s, "output_tokens_per_s": t * a,
          "ttft_ms": float(l), "tpot_ms": float(7 - l)} for m, a, s, t, l in rows],
        index=[f"r{i}" for i in range(len(rows))])
    got = pareto_prune(df, keep)
    want = _front_by_brute_force(df, keep)
    assert list(got.index) == list(want.index)
    assert got.equals(want)
